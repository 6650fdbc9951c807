"""Serves one open filecache cache, from the component run in wasmtime-py (the
Python embedding of wasmtime, its component API), to the Rust conformance suite
(tests/src/wasmtime_py.rs).

    python cache-server.py <filecache.wasm> <host cache dir>

The host directory is preopened as `/cache`. The protocol is the jco server's
(tests/jco/cache-server.mjs): one JSON object per line, `{"op": "get", "key":
"k"}` -> `{"ok": "76"}` or `{"err": {"kind": "invalid-input", "message": ...}}`;
bytes travel as hex, 64-bit integers as decimal strings.

wasmtime-py lifts a `result` without tags when its cases cannot be confused:
`ok` comes back as the value, `err` as the `error` variant (a `Variant`), so a
`Variant` whose tag is one of the error's cases is an error.
"""

import json
import sys

import wasmtime
from wasmtime.component import Component, Linker, Record, Variant

ERROR_TAGS = {"invalid-input", "io", "storage-full", "busy", "corrupt"}


class CacheError(Exception):
    """The `error` variant a call returned."""

    def __init__(self, variant):
        super().__init__(variant.tag)
        self.variant = variant


class Server:
    def __init__(self, wasm, host_dir):
        engine = wasmtime.Engine()
        self.store = wasmtime.Store(engine)
        wasi = wasmtime.WasiConfig()
        wasi.preopen_dir(host_dir, "/cache")
        self.store.set_wasi(wasi)
        linker = Linker(engine)
        linker.add_wasip2()
        self.instance = linker.instantiate(self.store, Component.from_file(engine, wasm))
        self.interface = self.instance.get_export_index(self.store, "filecache:cache/store@0.1.0")
        self.funcs = {}
        self.cache = None

    def call(self, name, *args):
        func = self.funcs.get(name)
        if func is None:
            index = self.instance.get_export_index(self.store, name, self.interface)
            func = self.instance.get_func(self.store, index)
            self.funcs[name] = func
        result = func(self.store, *args)
        func.post_return(self.store)
        if isinstance(result, Variant) and result.tag in ERROR_TAGS:
            raise CacheError(result)
        return result

    def method(self, name, *args):
        return self.call(f"[method]cache.{name}", self.cache, *args)

    def run(self, request):
        op = request["op"]
        if op == "open":
            self.cache = self.call("[static]cache.open", "/cache", options(request["options"]))
            return None
        if op == "get":
            value = self.method("get", request["key"])
            return None if value is None else value.hex()
        if op == "insert":
            self.method("insert", request["key"], unhex(request["value"]), expiry(request["expiry"]))
            return None
        if op == "remove":
            self.method("remove", request["key"])
            return None
        if op == "contains-key":
            return self.method("contains-key", request["key"])
        if op == "add":
            return self.method("add", request["key"], unhex(request["value"]), expiry(request["expiry"]))
        if op == "increment":
            return str(self.method("increment", request["key"], int(request["delta"])))
        if op == "compare-and-swap":
            expected = request["expected"]
            return self.method(
                "compare-and-swap",
                request["key"],
                None if expected is None else unhex(expected),
                unhex(request["new"]),
                expiry(request["expiry"]),
            )
        if op == "touch":
            return self.method("touch", request["key"], expiry(request["expiry"]))
        if op == "clear":
            self.method("clear")
            return None
        if op == "approx-size":
            return str(self.method("approx-size"))
        if op == "stats":
            stats = self.method("stats")
            names = {
                "entries": "entries",
                "bytes": "bytes",
                "hits": "hits",
                "misses": "misses",
                "expiredRemoved": "expired-removed",
                "evicted": "evicted",
                "corruptRemoved": "corrupt-removed",
            }
            return {name: str(getattr(stats, field)) for name, field in names.items()}
        if op == "list-keys":
            page = self.method("list-keys", request["cursor"])
            return {"keys": list(page.keys), "cursor": page.cursor}
        raise ValueError(f"unknown op {op}")


def unhex(text):
    return bytes.fromhex(text)


def number(text):
    return None if text is None else int(text)


def options(o):
    record = Record()
    setattr(record, "durable", o.get("durable"))
    setattr(record, "max-key-bytes", o.get("maxKeyBytes"))
    setattr(record, "max-value-bytes", number(o.get("maxValueBytes")))
    setattr(record, "lease-ms", number(o.get("leaseMs")))
    setattr(record, "lock-timeout-ms", number(o.get("lockTimeoutMs")))
    setattr(record, "max-entries", number(o.get("maxEntries")))
    setattr(record, "max-bytes", number(o.get("maxBytes")))
    setattr(record, "group-shared", o.get("groupShared"))
    return record


def expiry(e):
    if e["tag"] == "never":
        return Variant("never")
    return Variant(e["tag"], int(e["val"]))


def failure(e):
    if isinstance(e, CacheError):
        payload = e.variant.payload
        if isinstance(payload, str):
            message = payload
        else:
            message = f"{payload.operation} {payload.path}: {payload.message}"
        return {"kind": e.variant.tag, "message": message}
    return {"kind": "runtime", "message": f"{type(e).__name__}: {e}"}


def main():
    if len(sys.argv) != 3:
        print("usage: python cache-server.py <filecache.wasm> <host cache dir>", file=sys.stderr)
        sys.exit(2)
    server = Server(sys.argv[1], sys.argv[2])
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            reply = {"ok": server.run(json.loads(line))}
        except Exception as e:  # noqa: BLE001 - every failure goes back as a reply
            reply = {"err": failure(e)}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
