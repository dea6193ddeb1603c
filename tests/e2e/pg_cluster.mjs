// Private PostgreSQL 15 clusters for fault tests: each in its own temporary
// directory on a free port, durable (fsync and synchronous_commit on), with a
// superuser `syncd` that reaches it from 127.0.0.1 without a password. A
// cluster can be stopped, started, crashed (kill -9 of the postmaster) and
// restarted; two of them can form a primary and a synchronous hot standby.
// Everything is removed when the process exits.
//
// PostgreSQL refuses to run as root: as root, its programs run as `postgres`
// (runuser), like scripts/lib/common.sh's pg_start.
//
// Every operation that may run while a test drives load is asynchronous, so
// the load keeps flowing while a cluster starts or stops.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';
const isRoot = process.getuid?.() === 0;

// A TCP port on 127.0.0.1 that nothing listens on (just now).
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// Runs a PostgreSQL program (as `postgres` when we are root); resolves to
// {code, stdout, stderr}.
function pgRun(program, args, { timeout = 120000 } = {}) {
  const bin = program.includes('/') ? program : path.join(PG_BIN, program);
  const [cmd, argv] = isRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  return new Promise((resolve) => {
    execFile(cmd, argv, { encoding: 'utf8', timeout, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout: stdout ?? '', stderr: `${stderr ?? ''}${err && !stderr ? err.message : ''}` });
    });
  });
}

async function pgRunOk(program, args, what, opts) {
  const r = await pgRun(program, args, opts);
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}):\n${r.stdout}${r.stderr}`);
  return r;
}

// psql as the `syncd` superuser; resolves to stdout (unaligned, tuples only).
export function psql(url, sql, { timeout = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = execFile('psql', [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-tA', '-f', '-'],
      { encoding: 'utf8', timeout, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`psql ${url}: ${stderr || err.message}`));
        else resolve(stdout);
      });
    child.stdin.end(sql);
  });
}

// Is pid alive (a zombie counts as dead)?
function alive(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

// Processes whose parent is `pid`.
function childrenOf(pid) {
  const out = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid) out.push(Number(name));
    } catch { /* gone meanwhile */ }
  }
  return out;
}

const live = new Set();  // clusters to tear down at exit
let hooked = false;
function cleanupAll() {
  for (const c of live) c.destroySync();
}
function hookExit() {
  if (hooked) return;
  hooked = true;
  process.once('exit', cleanupAll);
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => {
      cleanupAll();
      process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
    });
  }
}

let postgresIds = null;
function postgresOwner() {
  if (!postgresIds) {
    postgresIds = {
      uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()),
      gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()),
    };
  }
  return postgresIds;
}

// A scratch directory the cluster's user may write.
function scratchDir(prefix) {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  if (isRoot) {
    const { uid, gid } = postgresOwner();
    chownSync(dir, uid, gid);
  }
  return dir;
}

export class PgCluster {
  constructor(dir, port, name) {
    this.dir = dir;                      // owned by the cluster's user
    this.data = path.join(dir, 'data');  // the data directory
    this.port = port;
    this.name = name;
    this.log = path.join(dir, 'server.log');
  }

  // initdb of a fresh cluster (not started). `conf`: extra postgresql.conf lines.
  static async create({ name = 'pg', conf = [] } = {}) {
    hookExit();
    const c = new PgCluster(scratchDir(`syncd-${name}-`), await freePort(), name);
    live.add(c);
    // --no-sync only skips initdb's own final flush; the server runs with fsync on.
    await pgRunOk('initdb', ['-D', c.data, '-U', 'syncd', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync'],
      `initdb ${c.data}`);
    c.configure([
      ...c.localSettings(),
      'fsync = on',
      'synchronous_commit = on',
      'full_page_writes = on',
      'max_connections = 100',
      'shared_buffers = 32MB',
      'wal_level = replica',
      'max_wal_senders = 10',
      'hot_standby = on',
      'max_wal_size = 1GB',
      `cluster_name = '${name}'`,
      ...conf,
    ]);
    return c;
  }

  localSettings() {
    return ["listen_addresses = '127.0.0.1'", `port = ${this.port}`, `unix_socket_directories = '${this.dir}'`];
  }

  // Appends lines to postgresql.conf (later lines win).
  configure(lines) {
    appendFileSync(path.join(this.data, 'postgresql.conf'), `\n${lines.join('\n')}\n`);
  }

  url(database = 'postgres') { return `postgresql://syncd@127.0.0.1:${this.port}/${database}`; }
  hostPort() { return `127.0.0.1:${this.port}`; }

  // pg_ctl start -w: resolves once the server accepts connections. Right after
  // a crash the old backends may still hold the shared memory for a moment,
  // so a refused start is retried until `timeout`.
  async start({ timeout = 60000 } = {}) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const r = await pgRun('pg_ctl', ['-D', this.data, '-l', this.log, '-w', '-t', '60', 'start']);
      if (r.code === 0) return;
      if (Date.now() > deadline) throw new Error(`pg_ctl start ${this.name} failed:\n${r.stdout}${r.stderr}\n${this.tail()}`);
      await sleep(200);
    }
  }

  async stop(mode = 'fast') {
    if (!existsSync(path.join(this.data, 'postmaster.pid'))) return;
    await pgRun('pg_ctl', ['-D', this.data, '-m', mode, '-w', '-t', '60', 'stop']);
  }

  // The postmaster's pid: the first line of postmaster.pid (null if none).
  postmasterPid() {
    try {
      const pid = Number(readFileSync(path.join(this.data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return pid > 0 ? pid : null;
    } catch {
      return null;
    }
  }

  // kill -9 of the postmaster, as in a crash. Resolves once it and every
  // process it had started are gone (a backend notices its postmaster's death
  // and exits; one that lingers past `grace` ms is killed too), so the port is
  // closed and the cluster can start again. Resolves to the killed pid.
  async kill9({ grace = 5000 } = {}) {
    const pid = this.postmasterPid();
    if (!pid || !alive(pid)) throw new Error(`${this.name} is not running`);
    const children = childrenOf(pid);
    process.kill(pid, 'SIGKILL');
    const deadline = Date.now() + grace;
    while ([pid, ...children].some(alive)) {
      if (Date.now() > deadline) {
        for (const c of children.filter(alive)) {
          try { process.kill(c, 'SIGKILL'); } catch { /* gone */ }
        }
      }
      if (Date.now() > deadline + 10000) throw new Error(`processes of ${this.name} outlived kill -9`);
      await sleep(20);
    }
    return pid;
  }

  // Stops (or crashes, with {crash: true}) and starts the cluster again.
  async restart({ crash = false, downFor = 0 } = {}) {
    if (crash) await this.kill9();
    else await this.stop();
    if (downFor) await sleep(downFor);
    await this.start();
  }

  // Does the server accept connections? (pg_isready)
  async ready() {
    return (await pgRun('pg_isready', ['-h', '127.0.0.1', '-p', String(this.port), '-U', 'syncd', '-t', '2'])).code === 0;
  }

  sql(sql, database = 'postgres') { return psql(this.url(database), sql); }

  // CREATE DATABASE `name`, then `syncd migrate up` on it; resolves to its URL.
  async createDatabase(name = 'sync') {
    await this.sql(`CREATE DATABASE ${name}`);
    const url = this.url(name);
    await migrate(url);
    return url;
  }

  // The last lines of the server log, for error messages.
  tail(lines = 30) {
    try {
      return readFileSync(this.log, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  // Stops the server at once and removes its directory (synchronous: also
  // runs from the process's exit hook).
  destroySync() {
    if (!live.has(this)) return;
    live.delete(this);
    const pid = this.postmasterPid();
    if (pid && alive(pid)) {
      const bin = path.join(PG_BIN, 'pg_ctl');
      const args = ['-D', this.data, '-m', 'immediate', '-w', '-t', '30', 'stop'];
      const r = isRoot ? spawnSync('runuser', ['-u', 'postgres', '--', bin, ...args]) : spawnSync(bin, args);
      if (r.status !== 0 && alive(pid)) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  async destroy() {
    await this.stop('immediate');
    this.destroySync();
  }
}

// `syncd migrate up` on `url` (SYNCD_BIN).
export function migrate(url) {
  const bin = process.env.SYNCD_BIN;
  if (!bin) throw new Error('SYNCD_BIN is not set: run the tests through scripts/test');
  return new Promise((resolve, reject) => {
    execFile(bin, ['migrate', 'up', '--database-url', url], { encoding: 'utf8', timeout: 60000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`migrate failed: ${stdout}${stderr}`));
      else resolve();
    });
  });
}

// A fresh cluster, started.
export async function startCluster(opts) {
  const c = await PgCluster.create(opts);
  await c.start();
  return c;
}

// A primary and a hot standby streaming from it, with the standby as the
// primary's synchronous standby: a commit the primary acknowledges is
// flushed on both. `database`: created and migrated on the primary first
// (replication carries it over). Resolves to {primary, standby, url, multiUrl}:
// `url` names the primary alone, `multiUrl` both hosts for libpq to try in
// turn, taking the one that accepts writes.
export async function startReplicatedPair({ database = 'sync' } = {}) {
  const primary = await startCluster({ name: 'primary' });
  const url = database ? await primary.createDatabase(database) : primary.url();

  const standby = new PgCluster(scratchDir('syncd-standby-'), await freePort(), 'standby');
  live.add(standby);
  // -R writes standby.signal and primary_conninfo; the standby's cluster_name
  // (set below) becomes its application_name on the primary.
  await pgRunOk('pg_basebackup', ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'syncd', '-D', standby.data,
    '-R', '-X', 'stream', '--checkpoint=fast', '--no-sync'], 'pg_basebackup');
  standby.configure([...standby.localSettings(), "cluster_name = 'standby'"]);
  await standby.start();

  // Only now, so the standby's copy of the configuration does not carry it:
  // once promoted it has no standby of its own to wait for.
  await primary.sql("ALTER SYSTEM SET synchronous_standby_names = 'standby'; SELECT pg_reload_conf();");
  const deadline = Date.now() + 30000;
  for (;;) {
    const state = (await primary.sql("SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby'")).trim();
    if (state === 'sync') break;
    if (Date.now() > deadline) throw new Error(`the standby never became synchronous (sync_state "${state}")\n${standby.tail()}`);
    await sleep(100);
  }
  const multiUrl = `postgresql://syncd@${primary.hostPort()},${standby.hostPort()}/${database ?? 'postgres'}?target_session_attrs=read-write`;
  return { primary, standby, url, multiUrl };
}

// pg_ctl promote -w: resolves once the standby accepts writes.
export async function promote(standby) {
  await pgRunOk('pg_ctl', ['-D', standby.data, '-w', '-t', '60', 'promote'], `promote ${standby.name}`);
}
