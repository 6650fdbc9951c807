// Serves one open filecache cache, from the component transpiled by jco and run
// on Node.js's WASI shim, to the Rust conformance suite (tests/src/jco.rs).
//
//   node cache-server.mjs <transpiled dir> <host cache dir>
//
// The host directory is preopened as `/cache`. Requests and replies are one JSON
// object per line: `{"op": "get", "key": "k"}` -> `{"ok": "76"}` or
// `{"err": {"kind": "invalid-input", "message": "..."}}`. Bytes travel as hex,
// 64-bit integers as decimal strings (JSON numbers lose them past 2^53).

import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { _setPreopens } from '@bytecodealliance/preview2-shim/filesystem';

const [transpiled, hostDir] = process.argv.slice(2);
if (!transpiled || !hostDir) {
  console.error('usage: node cache-server.mjs <transpiled dir> <host cache dir>');
  process.exit(2);
}
_setPreopens({ '/cache': hostDir });
const { store } = await import(pathToFileURL(join(transpiled, 'filecache.js')).href);

const bytes = (hex) => Uint8Array.from(Buffer.from(hex, 'hex'));
const hex = (value) => Buffer.from(value).toString('hex');
const big = (text) => (text === null || text === undefined ? undefined : BigInt(text));
const expiry = ({ tag, val }) => (tag === 'never' ? { tag } : { tag, val: BigInt(val) });

function openOptions(o) {
  return {
    durable: o.durable ?? undefined,
    maxKeyBytes: o.maxKeyBytes ?? undefined,
    maxValueBytes: big(o.maxValueBytes),
    leaseMs: big(o.leaseMs),
    lockTimeoutMs: big(o.lockTimeoutMs),
    maxEntries: big(o.maxEntries),
    maxBytes: big(o.maxBytes),
    groupShared: o.groupShared ?? undefined,
  };
}

let cache = null;

function run(request) {
  const { op } = request;
  if (op === 'open') {
    cache = store.Cache.open('/cache', openOptions(request.options));
    return null;
  }
  switch (op) {
    case 'get': {
      const value = cache.get(request.key);
      return value === undefined ? null : hex(value);
    }
    case 'insert':
      return cache.insert(request.key, bytes(request.value), expiry(request.expiry)) ?? null;
    case 'remove':
      return cache.remove(request.key) ?? null;
    case 'contains-key':
      return cache.containsKey(request.key);
    case 'add':
      return cache.add(request.key, bytes(request.value), expiry(request.expiry));
    case 'increment':
      return cache.increment(request.key, BigInt(request.delta)).toString();
    case 'compare-and-swap': {
      const expected = request.expected === null ? undefined : bytes(request.expected);
      return cache.compareAndSwap(request.key, expected, bytes(request.new), expiry(request.expiry));
    }
    case 'touch':
      return cache.touch(request.key, expiry(request.expiry));
    case 'clear':
      return cache.clear() ?? null;
    case 'approx-size':
      return cache.approxSize().toString();
    case 'stats':
      return Object.fromEntries(Object.entries(cache.stats()).map(([k, v]) => [k, v.toString()]));
    case 'list-keys': {
      const page = cache.listKeys(request.cursor ?? undefined);
      return { keys: page.keys, cursor: page.cursor ?? null };
    }
    default:
      throw new Error(`unknown op ${op}`);
  }
}

function failure(e) {
  // A `result::err` of the WIT interface arrives as a ComponentError whose
  // payload is the `error` variant; anything else is a failure of the host.
  const payload = e?.payload;
  if (payload && typeof payload.tag === 'string') {
    const val = payload.val;
    const message =
      typeof val === 'string' ? val : `${val.operation} ${val.path}: ${val.message}`;
    return { kind: payload.tag, message };
  }
  return { kind: 'runtime', message: String(e?.stack ?? e) };
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (!line) continue;
  let reply;
  try {
    reply = { ok: run(JSON.parse(line)) };
  } catch (e) {
    reply = { err: failure(e) };
  }
  process.stdout.write(JSON.stringify(reply) + '\n');
}
