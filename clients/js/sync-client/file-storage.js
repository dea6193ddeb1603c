// A client's durable state in a directory, for Node (sync-client.js loads
// this module only for a string `storage` option, so browsers never fetch
// it). It implements SyncStorage (sync-client.d.ts). The directory holds:
//
//   checkpoint.json   the last checkpoint (Persistence, persistence.js):
//                     {format, generation G, channel, clientId, version,
//                     nodes, edges, arrived, pending}
//   pending-G.log     patches appended after checkpoint G: one JSON patch
//                     and a newline per line
//   lock              the pid of the process using the directory
//
// Invariants:
//  - checkpoint.json is replaced whole: written to a temporary file, fsynced,
//    renamed over the old one, and the directory fsynced. A crash leaves the
//    old checkpoint or the new one, never a mix.
//  - A line of pending-G.log is durable (written and fdatasynced) before
//    appendPending resolves, which is before the patch is sent. A crash
//    mid-append leaves at most one torn last line, of patches never sent:
//    load() drops it and cuts the file back to its last newline. Any other
//    line that does not parse means damage after the fact: an error.
//  - Checkpoint G+1 is renamed into place before pending-G.log is removed,
//    and only pending-<the checkpoint's G>.log is ever read: a crash between
//    the two leaves a stale log that load() removes.

import { link, mkdir, open, readdir, readFile, rename, truncate, unlink } from 'node:fs/promises';
import path from 'node:path';

const FORMAT = 'syncd-client-checkpoint/1';
const CHECKPOINT = 'checkpoint.json';
const logName = (generation) => `pending-${generation}.log`;
const LOG_NAME = /^pending-(\d+)\.log$/;

const isRecord = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const isPatch = (v) => isRecord(v) && typeof v.id === 'string';
const isEntries = (v) => Array.isArray(v) && v.every((e) => Array.isArray(e) && e.length === 2 && typeof e[0] === 'string' && isRecord(e[1]));

async function syncDir(dir) {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

// Writes dir/name whole or not at all (a temporary file, fsynced, renamed
// over it); the rename itself is durable once the directory is fsynced,
// which is the caller's last step (syncDir).
async function replaceFile(dir, name, text) {
  const tmp = path.join(dir, `${name}.tmp`);
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path.join(dir, name));
}

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
};

// One client per directory: two writing the same log would interleave it.
// The lock file is created whole (a link to a file holding the pid), so a
// reader never sees it empty; one left by a process that died is taken over.
async function lock(dir) {
  const file = path.join(dir, 'lock');
  const tmp = path.join(dir, `lock.${process.pid}.tmp`);
  await replaceFile(dir, path.basename(tmp), String(process.pid));
  await syncDir(dir);
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await link(tmp, file);
        return;
      } catch (e) {
        if (e.code !== 'EEXIST') throw e;
      }
      const holder = Number(await readFile(file, 'utf8').catch(() => ''));
      if (Number.isSafeInteger(holder) && holder > 0 && alive(holder)) {
        throw new Error(`storage ${dir} is in use by process ${holder}${holder === process.pid ? ' (this one)' : ''}: ` +
          'a storage directory serves one client at a time; close that client or give this one its own directory');
      }
      await unlink(file).catch(() => {});
    }
    throw new Error(`storage ${dir}: could not take its lock file; another process is starting on it`);
  } finally {
    await unlink(tmp).catch(() => {});
  }
}

const damaged = (file, what) => new Error(`storage ${file}: ${what}. It was damaged or not written by this client; ` +
  'move its directory aside to start afresh (edits it holds that never reached the server would be lost)');

function parseCheckpoint(file, text) {
  let cp;
  try {
    cp = JSON.parse(text);
  } catch (e) {
    throw damaged(file, `not JSON (${e.message})`);
  }
  if (!isRecord(cp) || cp.format !== FORMAT) throw damaged(file, `not a checkpoint of format ${FORMAT}`);
  const ok = Number.isSafeInteger(cp.generation) && cp.generation > 0 && typeof cp.channel === 'string' &&
    typeof cp.clientId === 'string' && Number.isSafeInteger(cp.version) && cp.version >= 0 && isEntries(cp.nodes) &&
    isEntries(cp.edges) && Array.isArray(cp.arrived) && cp.arrived.every(isPatch) && Array.isArray(cp.pending) &&
    cp.pending.every(isPatch);
  if (!ok) throw damaged(file, 'a field is missing or of the wrong type');
  return cp;
}

export class FileStorage {
  /** Opens (creating it if need be) and locks the directory `dir`. */
  static async open(dir) {
    const abs = path.resolve(dir);
    await mkdir(abs, { recursive: true });
    await lock(abs);
    return new FileStorage(abs);
  }

  constructor(dir) {
    this.dir = dir;
    this.generation = 0;  // the checkpoint's; appends go to pending-<generation>.log
    this.log = null;      // that file, open for appending once something was appended
  }

  file(name) { return path.join(this.dir, name); }

  async load() {
    const names = await readdir(this.dir);
    const logs = names.filter((n) => LOG_NAME.test(n));
    if (!names.includes(CHECKPOINT)) {
      // The first checkpoint is written before the first append.
      if (logs.length > 0) throw damaged(this.file(logs[0]), `a pending log without ${CHECKPOINT}`);
      return null;
    }
    const cp = parseCheckpoint(this.file(CHECKPOINT), await readFile(this.file(CHECKPOINT), 'utf8'));
    this.generation = cp.generation;
    for (const n of names) {
      if (n === `${CHECKPOINT}.tmp` || (LOG_NAME.test(n) && n !== logName(cp.generation))) await unlink(this.file(n));
    }
    const appended = await this.readLog(this.file(logName(cp.generation)));
    const { format, generation, ...state } = cp;
    return { ...state, pending: [...cp.pending, ...appended] };
  }

  async readLog(file) {
    let buf;
    try {
      buf = await readFile(file);
    } catch (e) {
      if (e.code === 'ENOENT') return [];
      throw e;
    }
    const end = buf.lastIndexOf(0x0a) + 1;
    if (end < buf.length) await truncate(file, end);  // a torn last append: never sent
    const lines = buf.subarray(0, end).toString('utf8').split('\n').slice(0, -1);
    return lines.map((line, i) => {
      let patch;
      try {
        patch = JSON.parse(line);
      } catch (e) {
        throw damaged(file, `line ${i + 1} is not JSON (${e.message})`);
      }
      if (!isPatch(patch)) throw damaged(file, `line ${i + 1} is not a patch`);
      return patch;
    });
  }

  async appendPending(patches) {
    if (this.log === null) {
      this.log = await open(this.file(logName(this.generation)), 'a');
      await syncDir(this.dir);  // the new file's name is durable too
    }
    // A failed append is cut back off, so a retry cannot leave a torn line
    // in the middle of the log (which load() would take for damage).
    const { size } = await this.log.stat();
    try {
      await this.log.write(patches.map((p) => `${JSON.stringify(p)}\n`).join(''));
      await this.log.datasync();
    } catch (e) {
      await this.log.truncate(size).catch(() => {});
      throw e;
    }
  }

  async saveCheckpoint(state) {
    const next = this.generation + 1;
    await replaceFile(this.dir, CHECKPOINT, JSON.stringify({ format: FORMAT, generation: next, ...state }));
    // Renamed: from now on a load may read checkpoint G+1, and with it only
    // pending-(G+1).log, so appends must go there even if what follows fails.
    const old = this.generation;
    this.generation = next;
    await this.log?.close();
    this.log = null;
    await syncDir(this.dir);
    await unlink(this.file(logName(old))).catch((e) => { if (e.code !== 'ENOENT') throw e; });
  }

  async close() {
    await this.log?.close();
    this.log = null;
    await unlink(this.file('lock')).catch(() => {});
  }
}
