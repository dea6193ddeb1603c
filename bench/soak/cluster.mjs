// The processes under test, owned by the soak so it can kill them: a
// private PostgreSQL cluster (initdb'ed into a temp dir, as pg_start in
// scripts/lib/common.sh does), syncd instances and sync-bridges, each
// restarted on the same port after it dies.
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { log, sleep } from './util.mjs';

const PG_BIN = '/usr/lib/postgresql/15/bin';
const isRoot = process.getuid?.() === 0;

// PostgreSQL refuses to run as root: then its tools run as `postgres`.
function asPg(cmd, args) {
  return isRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}` };
}

export class PgCluster {
  constructor(port) {
    this.port = port;
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'soak-pg-'));
    this.database = 'soak';
    this.url = `postgresql://syncd@127.0.0.1:${port}/${this.database}`;
    this.adminUrl = `postgresql://syncd@127.0.0.1:${port}/postgres`;
  }

  init() {
    if (!existsSync(`${PG_BIN}/initdb`)) throw new Error(`${PG_BIN}/initdb not found (Debian package postgresql-15)`);
    if (isRoot) {
      chownSync(this.dir, Number(run('id', ['-u', 'postgres']).out.trim()), Number(run('id', ['-g', 'postgres']).out.trim()));
    }
    const [cmd, args] = asPg(`${PG_BIN}/initdb`, ['-D', this.dir, '-U', 'syncd', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8']);
    const r = run(cmd, args);
    if (!r.ok) throw new Error(`initdb failed:\n${r.out}`);
    // The same durable settings as scripts/lib/common.sh: a crash must not
    // lose a commit the service has acknowledged.
    appendFileSync(path.join(this.dir, 'postgresql.conf'), [
      "listen_addresses = '127.0.0.1'",
      `unix_socket_directories = '${this.dir}'`,
      'fsync = on', 'synchronous_commit = on', 'full_page_writes = on',
      'max_connections = 200', 'max_wal_size = 4GB', '',
    ].join('\n'));
  }

  // Starts the postmaster and waits until it accepts connections. After a
  // kill -9, orphaned backends may still hold the shared memory for a
  // moment, so a failed start is retried.
  async start(timeoutMs = 60000) {
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 1; ; attempt++) {
      const [cmd, args] = asPg(`${PG_BIN}/pg_ctl`, ['-D', this.dir, '-o', `-p ${this.port}`,
        '-l', path.join(this.dir, 'server.log'), '-w', '-t', '60', 'start']);
      const r = await runAsync(cmd, args);
      if (r.ok) return attempt;
      if (Date.now() > deadline) throw new Error(`PostgreSQL did not start:\n${r.out}\n${this.logTail()}`);
      await sleep(500);
    }
  }

  logTail(lines = 20) {
    try {
      return readFileSync(path.join(this.dir, 'server.log'), 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  postmasterPid() {
    try {
      return Number(readFileSync(path.join(this.dir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    } catch {
      return null;
    }
  }

  // kill -9 of the postmaster: the next start goes through crash recovery.
  async kill9() {
    const pid = this.postmasterPid();
    if (!pid) throw new Error('no postmaster.pid: PostgreSQL is not running');
    process.kill(pid, 'SIGKILL');
    // Backends notice the postmaster's death and exit on their own.
    for (let i = 0; i < 100 && alive(pid); i++) await sleep(20);
  }

  async createDatabase() {
    const r = await this.psql(`CREATE DATABASE ${this.database}`, this.adminUrl);
    if (!r.ok) throw new Error(`CREATE DATABASE failed: ${r.out}`);
  }

  // Runs SQL through psql (tab-separated, unaligned, no headers).
  psql(sql, url = this.url) {
    return runAsync('psql', [url, '-v', 'ON_ERROR_STOP=1', '-X', '-q', '-At', '-F', '\t', '-f', '-'], sql);
  }

  // Synchronous, for exit handlers: stop hard and delete the cluster.
  removeSync() {
    if (this.postmasterPid()) {
      const [cmd, args] = asPg(`${PG_BIN}/pg_ctl`, ['-D', this.dir, '-m', 'immediate', '-w', '-t', '10', 'stop']);
      run(cmd, args);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// Running, and not a zombie waiting for its parent to reap it.
function alive(pid) {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0] !== 'Z';
  } catch {
    return false;
  }
}

export function runAsync(cmd, args, input) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.once('error', (e) => resolve({ ok: false, out: e.message, stdout: '' }));
    child.once('close', (code) => {
      const stdout = Buffer.concat(out).toString('utf8');
      resolve({ ok: code === 0, stdout, out: stdout + Buffer.concat(err).toString('utf8') });
    });
    child.stdin.end(input ?? '');
  });
}

// One server process (syncd or sync-bridge) kept running on a fixed port.
// It is restarted whenever it exits; exits the soak did not cause are
// recorded as crashes.
export class Service {
  // `argsFor(port)`: its command line; `readyRe`: the log line saying it
  // serves, whose first group is the bound port.
  constructor({ name, bin, argsFor, readyRe, logDir }) {
    Object.assign(this, { name, bin, argsFor, readyRe });
    this.logFile = path.join(logDir, `${name}.log`);
    writeFileSync(this.logFile, '');
    this.port = 0;
    this.child = null;
    this.up = false;
    this.killing = false;
    this.stopped = false;
    this.starts = 0;
    this.crashes = [];
    this.match = null;
  }

  // Starts it, retrying (with the same port) until it says it serves: syncd
  // exits at once while its database is unreachable, and a binary being
  // rebuilt may be missing for a moment.
  async start(timeoutMs = 120000) {
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 0; !this.stopped; attempt++) {
      if (existsSync(this.bin)) {
        const err = await this.spawnOnce();
        if (!err) return;
        if (Date.now() > deadline) throw new Error(`${this.name} did not start: ${err}`);
      } else if (Date.now() > deadline) {
        throw new Error(`${this.name}: ${this.bin} is missing`);
      }
      await sleep(Math.min(2000, 200 * (attempt + 1)));
    }
  }

  spawnOnce() {
    return new Promise((resolve) => {
      const child = spawn(this.bin, this.argsFor(this.port), { stdio: ['ignore', 'pipe', 'pipe'] });
      this.spawning = child;
      let output = '';
      let settled = false;
      const settle = (err) => {
        if (settled) return;
        settled = true;
        this.spawning = null;
        clearTimeout(timer);
        resolve(err);
      };
      const timer = setTimeout(() => { child.kill('SIGKILL'); settle('no ready line in 20 s'); }, 20000);
      const onData = (chunk) => {
        appendFileSync(this.logFile, chunk);
        if (settled) return;
        output += chunk;
        const m = output.match(this.readyRe);
        if (m) {
          this.match = m;
          this.port = Number(m[1]);
          this.child = child;
          this.up = true;
          this.starts++;
          settle(null);
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('error', (e) => settle(e.message));
      child.once('exit', (code, signal) => {
        appendFileSync(this.logFile, `\n--- exited code=${code} signal=${signal}\n`);
        if (!settled) return settle(`exited ${code ?? signal}: ${output.trim().split('\n').slice(-3).join(' | ')}`);
        this.onExit(child, code, signal);
      });
    });
  }

  onExit(child, code, signal) {
    if (child !== this.child) return;
    this.up = false;
    this.child = null;
    if (this.stopped || this.killing) return;
    // Nobody asked it to stop: a crash. Recorded, then restarted.
    const crash = { at: Date.now(), code, signal };
    this.crashes.push(crash);
    log(`!! ${this.name} exited by itself (code=${code} signal=${signal}); restarting (see ${this.logFile})`);
    this.start().catch((e) => log(`!! ${this.name}: ${e.message}`));
  }

  // kill -9, then the same port again.
  async kill9AndRestart() {
    if (!this.child) return this.start();
    this.killing = true;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGKILL');
    await exited;
    this.killing = false;
    await this.start();
  }

  killSync() {
    this.stopped = true;
    this.child?.kill('SIGKILL');
    this.spawning?.kill('SIGKILL');
  }
}
