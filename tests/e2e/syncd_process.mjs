// Starts syncd for end-to-end tests on a fresh database of the PostgreSQL
// server scripts/test runs (SYNC_TEST_DATABASE_URL, SYNCD_BIN).
import { spawn, spawnSync } from 'node:child_process';

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the tests through scripts/test`);
  return v;
}

export function createDatabase() {
  const admin = env('SYNC_TEST_DATABASE_URL');
  const name = `e2e_${process.pid}_${Date.now()}`;
  const r = spawnSync('psql', [admin, '-v', 'ON_ERROR_STOP=1', '-qc', `CREATE DATABASE ${name}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`createdb failed: ${r.stderr}`);
  const url = admin.replace(/\/[^/?]*(\?|$)/, `/${name}$1`);
  const m = spawnSync(env('SYNCD_BIN'), ['migrate', 'up', '--database-url', url], { encoding: 'utf8' });
  if (m.status !== 0) throw new Error(`migrate failed: ${m.stdout}${m.stderr}`);
  return {
    url,
    drop() {
      spawnSync('psql', [admin, '-qc', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`]);
    },
  };
}

// Starts `bin args...` and resolves once its output matches `ready`, to
// {match, child, output(), stop(signal) -> exit code}. `env` is added to
// this process's environment.
function startProcess(bin, args, ready, what, env = {}) {
  const child = spawn(bin, args, { env: { ...process.env, ...env } });
  let output = '';
  let exited = null;
  child.once('exit', (code, signal) => { exited = code ?? signal; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start:\n${output}`)), 20000);
    const onData = (chunk) => {
      output += chunk;
      const m = output.match(ready);
      if (m) {
        clearTimeout(timer);
        resolve({
          match: m,
          child,
          output: () => output,
          stop: (signal = 'SIGTERM') => new Promise((done) => {
            if (exited !== null) return done(exited);
            child.once('exit', (code, sig) => done(code ?? sig));
            child.kill(signal);
          }),
        });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${what} exited (${code}):\n${output}`)));
  });
}

// Resolves to {grpcPort, httpPort, stop()} once syncd says it is serving.
// `grpcPort` may be given to restart an instance on the same port.
export async function startSyncd(databaseUrl, extraArgs = [], grpcPort = 0) {
  const p = await startProcess(env('SYNCD_BIN'), ['serve', '--database-url', databaseUrl,
    '--grpc-listen', `127.0.0.1:${grpcPort}`, '--http-listen', '127.0.0.1:0', ...extraArgs],
  /serving gRPC on port (\d+).*HTTP on port (\d+)/, 'syncd');
  return { ...p, grpcPort: Number(p.match[1]), httpPort: Number(p.match[2]) };
}

// Resolves to {port, url, stop()} once sync-bridge listens. `extraEnv` is
// added to its environment.
export async function startBridge(upstreamPort, extraArgs = [], port = 0, extraEnv = {}) {
  const p = await startProcess(env('SYNC_BRIDGE_BIN'), ['--listen', `127.0.0.1:${port}`,
    '--upstream', `127.0.0.1:${upstreamPort}`, ...extraArgs], /listening on port (\d+)/, 'sync-bridge', extraEnv);
  const bound = Number(p.match[1]);
  return { ...p, port: bound, url: `ws://127.0.0.1:${bound}`, http: `http://127.0.0.1:${bound}` };
}

// Stops a process of startSyncd / startBridge: SIGTERM, then SIGKILL if it
// has not exited `ms` later (and says so, since a stop that hangs is news).
// Resolves to its exit code or signal.
export async function stopProcess(proc, name, ms = 20000) {
  let timer;
  const killed = new Promise((resolve) => {
    timer = setTimeout(() => {
      console.log(`# ${name} did not exit within ${ms} ms of SIGTERM; killed`);
      resolve(proc.stop('SIGKILL'));
    }, ms);
  });
  const code = await Promise.race([proc.stop('SIGTERM'), killed]);
  clearTimeout(timer);
  return code;
}
