// Minimal reproductions of the jco Node.js WASI shim (@bytecodealliance/preview2-shim)
// behaviours that the filecache guest works around or documents (see
// guest/src/platform/wasi.rs and the README).
// Calls the shim's wasi:filesystem implementation directly, no component involved:
//
//   node shim-bugs.mjs
//
// Prints one line per behaviour: `present` (the guest's workaround is needed) or
// `fixed`. Exits non-zero only if the script itself cannot run.

import {
  existsSync,
  mkdtempSync,
  mkdirSync,
  renameSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { _setPreopens, preopens } from '@bytecodealliance/preview2-shim/filesystem';

const host = mkdtempSync(join(tmpdir(), 'shim-bugs-'));
_setPreopens({ '/d': host });
const [[dir]] = preopens.getDirectories();
const follow = { symlinkFollow: true };
const createNew = { create: true, exclusive: true };
const at = (seconds) => ({ tag: 'timestamp', val: { seconds: BigInt(seconds), nanoseconds: 0 } });
const SEPT_2001 = 1_000_000_000; // Unix seconds
const report = (name, present, detail) =>
  console.log(`${present ? 'present' : 'fixed'}: ${name}: ${detail}`);

// 1. wasi-libc opens files for writing with `write | mutate-directory`; the
//    shim's `open-at` refuses `mutate-directory` outright.
try {
  dir.openAt(follow, 'created-by-libc', createNew, { write: true, mutateDirectory: true });
  report('open-at with mutate-directory', false, 'the file was created');
} catch (e) {
  report('open-at with mutate-directory', true, `refused with ${JSON.stringify(e)} (expected a file)`);
}

// 2. `descriptor.set-times` passes milliseconds to Node's `futimes`, which takes seconds.
const file = dir.openAt(follow, 'f', createNew, { write: true });
file.setTimes(at(SEPT_2001), at(SEPT_2001));
const afterSetTimes = statSync(join(host, 'f')).mtimeMs / 1000;
report(
  'descriptor.set-times units',
  afterSetTimes !== SEPT_2001,
  `asked for mtime ${SEPT_2001} s, got ${afterSetTimes} s`,
);

// 3. `set-times-at` with `now` sets a time in January 1970.
writeFileSync(join(host, 'g'), '');
dir.setTimesAt(follow, 'g', { tag: 'now' }, { tag: 'now' });
const nowSet = statSync(join(host, 'g')).mtimeMs / 1000;
report(
  'set-times-at now',
  Math.abs(nowSet - Date.now() / 1000) > 60,
  `asked for now (${Math.round(Date.now() / 1000)} s), got ${nowSet} s`,
);

// 4. `set-times-at` with `no-change` for one time stats the directory
//    descriptor instead of the file (a preopen: `invalid`).
try {
  dir.setTimesAt(follow, 'g', { tag: 'no-change' }, at(SEPT_2001));
  const kept = statSync(join(host, 'g')).mtimeMs / 1000;
  report('set-times-at no-change', kept !== SEPT_2001, `mtime is ${kept} s`);
} catch (e) {
  report('set-times-at no-change', true, `refused with ${JSON.stringify(e)}`);
}

// 5. A directory descriptor is its path (Node has no `openat`): replace the
//    directory by a link after opening it, and `open-at` on the old descriptor
//    follows the link — even to a directory outside every preopen. A real
//    descriptor stays on the directory it opened.
const outside = mkdtempSync(join(tmpdir(), 'shim-bugs-outside-'));
mkdirSync(join(host, 'held'));
const held = dir.openAt({}, 'held', { directory: true }, { read: true });
renameSync(join(host, 'held'), join(host, 'held-moved'));
symlinkSync(outside, join(host, 'held'));
try {
  held.openAt({}, 'created', createNew, { write: true });
} catch {
  // A host that refuses is one that held the directory: the check below says so.
}
const escaped = existsSync(join(outside, 'created'));
report(
  'a held directory follows a link planted in its place, out of the preopen',
  escaped,
  escaped
    ? 'the file was created outside the preopen, where the link points'
    : 'the file went into the held directory (or was refused)',
);
