"""Python peers of filecache, measured like `filecache-bench` measures its systems:
diskcache and Django's FileBasedCache, each against a raw-file floor written in
Python and measured in the same run (`just bench-python` makes the venv).

Same workload: 10,000 keys, values of 100 B and 4 KiB, phases insert, get hit
(shuffled, every value verified), get miss, contains, remove; the median of
three rounds; µs/op and the ratio to the Python floor. Writes a Markdown table
to stdout and JSON to the path given as the first argument.
"""

import hashlib
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time

KEYS = int(os.environ.get("BENCH_KEYS", "10000"))
# Django's set lists the whole cache directory (to decide whether to cull), so
# its inserts cost O(entries): it is measured on fewer keys, which flatters it.
DJANGO_KEYS = min(KEYS, 2000)
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
PHASES = ["insert", "get hit", "get miss", "contains", "remove"]


class Raw:
    """The floor: write temp + rename, read, stat, unlink, on hashed names."""

    name = "python raw floor"

    def __init__(self, root):
        self.root = root
        self.tmp = os.path.join(root, "tmp")
        os.makedirs(self.tmp, exist_ok=True)
        self.n = 0

    def path(self, key):
        h = hashlib.blake2b(key.encode(), digest_size=32).hexdigest()
        return os.path.join(self.root, h[:2], h)

    def insert(self, key, value):
        self.n += 1
        temp = os.path.join(self.tmp, f"{self.n}.tmp")
        with open(temp, "xb") as f:
            f.write(value)
        path = self.path(key)
        try:
            os.replace(temp, path)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.replace(temp, path)

    def get(self, key):
        try:
            with open(self.path(key), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def contains(self, key):
        return os.path.exists(self.path(key))

    def remove(self, key):
        try:
            os.remove(self.path(key))
        except FileNotFoundError:
            pass


class DiskCache:
    name = "diskcache"

    def __init__(self, root):
        import diskcache

        self.cache = diskcache.Cache(root)

    def insert(self, key, value):
        self.cache.set(key, value)

    def get(self, key):
        return self.cache.get(key)

    def contains(self, key):
        return key in self.cache

    def remove(self, key):
        self.cache.delete(key)


class Django:
    name = "django FileBasedCache"

    def __init__(self, root):
        import django
        from django.conf import settings

        if not settings.configured:
            settings.configure(CACHES={})
            django.setup()
        from django.core.cache.backends.filebased import FileBasedCache

        # Django culls a third of its entries past MAX_ENTRIES (default 300), scanning
        # the directory on every set: give it room, as filecache has no limit here.
        self.cache = FileBasedCache(root, {"TIMEOUT": None, "OPTIONS": {"MAX_ENTRIES": 10 * KEYS}})

    def insert(self, key, value):
        self.cache.set(key, value)

    def get(self, key):
        return self.cache.get(key)

    def contains(self, key):
        return self.cache.has_key(key)

    def remove(self, key):
        self.cache.delete(key)


def per_op(count, op):
    started = time.perf_counter()
    for i in range(count):
        op(i)
    return (time.perf_counter() - started) * 1e6 / count


def suite(base, size, results):
    keys = [f"bench:key:{i}" for i in range(KEYS)]
    absent = [f"bench:absent:{i}" for i in range(KEYS)]
    values = [hashlib.blake2b(i.to_bytes(8, "little")).digest() * (size // 64 + 1) for i in range(KEYS)]
    values = [v[:size] for v in values]
    order = list(range(KEYS))
    random.Random(7).shuffle(order)
    systems = [Raw, DiskCache, Django]
    count = {Raw: KEYS, DiskCache: KEYS, Django: DJANGO_KEYS}
    samples = {}
    opened = {}
    for r in range(ROUNDS):
        for kind in systems[r % 3 :] + systems[: r % 3]:
            s = kind(os.path.join(base, f"{size}-r{r}-{kind.__name__}"))
            opened[(r, kind)] = s
            samples.setdefault((kind.name, "insert"), []).append(per_op(count[kind], lambda i: s.insert(keys[i], values[i])))
    for r in range(ROUNDS):
        for kind in systems:
            s = opened[(r, kind)]
            n = count[kind]
            mine = [k for k in order if k < n]
            for k in keys[:n]:
                assert s.get(k) is not None
            def hit(i):
                k = mine[i]
                assert s.get(keys[k]) == values[k]
            samples.setdefault((kind.name, "get hit"), []).append(per_op(n, hit))
            samples.setdefault((kind.name, "get miss"), []).append(per_op(n, lambda i: s.get(absent[i])))
            samples.setdefault((kind.name, "contains"), []).append(per_op(n, lambda i: s.contains(keys[mine[i]])))
    for r in range(ROUNDS):
        for kind in systems:
            s = opened[(r, kind)]
            samples.setdefault((kind.name, "remove"), []).append(per_op(count[kind], lambda i: s.remove(keys[i])))
    for (system, phase), times in samples.items():
        results.append({"group": f"{size} B", "system": system, "phase": phase,
                        "us_per_op": statistics.median(times), "rounds": times})


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "python-results.json"
    base = tempfile.mkdtemp(prefix="filecache-pybench-", dir=os.environ.get("BENCH_DIR"))
    results = []
    try:
        for size in (100, 4096):
            suite(base, size, results)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    with open(out, "w") as f:
        json.dump(results, f, indent=1)
    names = ["python raw floor", "diskcache", "django FileBasedCache"]
    for group in ("100 B", "4096 B"):
        print(f"\n**{group} values, Python** — µs/op (ratio to the Python floor), median of {ROUNDS} rounds, {KEYS} keys ({DJANGO_KEYS} for Django):\n")
        print("| phase | " + " | ".join(names) + " |")
        print("|---|" + "---:|" * len(names))
        for phase in PHASES:
            get = {r["system"]: r["us_per_op"] for r in results if r["group"] == group and r["phase"] == phase}
            raw = get[names[0]]
            cells = [f"{raw:.1f}"] + [f"{get[n]:.1f} ({get[n] / raw:.2f}×)" for n in names[1:]]
            print(f"| {phase} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
