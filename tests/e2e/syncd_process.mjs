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

// Resolves to {grpcPort, httpPort, stop()} once syncd says it is serving.
export function startSyncd(databaseUrl, extraArgs = []) {
  const child = spawn(env('SYNCD_BIN'), ['serve', '--database-url', databaseUrl,
    '--grpc-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', ...extraArgs]);
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`syncd did not start:\n${output}`)), 20000);
    const onData = (chunk) => {
      output += chunk;
      const m = output.match(/serving gRPC on port (\d+).*HTTP \/healthz on port (\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({
          grpcPort: Number(m[1]),
          httpPort: Number(m[2]),
          stop: () => new Promise((done) => { child.once('exit', done); child.kill('SIGTERM'); }),
        });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`syncd exited (${code}):\n${output}`)));
  });
}
