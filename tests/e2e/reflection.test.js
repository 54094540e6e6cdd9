'use strict';
// End-to-end, grpcurl's way: a client that has no .proto files and learns
// everything from the server's reflection service (tests/node/grpcprobe.js).
// Starts its own lighthouse-emulator and blueprint-syncd (real TCP, real
// SQLite in a temp dir).
//
// Run (ctest target e2e_reflection_client does this, from tests/node so
// node_modules resolve):
//   BLUEPRINT_SYNCD=... LIGHTHOUSE_EMULATOR=... GRPCPROBE=.../grpcprobe.js \
//     node --test tests/e2e/reflection.test.js

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

const SECRET_ID = 'AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE';
const SECRET_KEY = 'Gu5t9xGARNpq86cd98joQYCN3EXAMPLE';

function requiredEnv(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  if (!fs.existsSync(v)) throw new Error(`${name} does not exist: ${v}`);
  return v;
}
const SERVER_BIN = requiredEnv('BLUEPRINT_SYNCD');
const EMULATOR_BIN = requiredEnv('LIGHTHOUSE_EMULATOR');
const PROBE = requiredEnv('GRPCPROBE');

// The children see neither our BLUEPRINT_SYNC_* / TENCENTCLOUD_* settings nor proxies.
function childEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('BLUEPRINT_SYNC_') || k.startsWith('TENCENTCLOUD_')) continue;
    if (/^(https?|all|grpc)_proxy$/i.test(k)) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

const children = [];
let tmp;
let address;
let emulatorUrl;

// Spawns `bin` and resolves with the first stdout line matching `re`.
function startAndWait(bin, args, env, re, label) {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  children.push(child);
  let tail = '';
  const keep = (d) => { tail = (tail + d.toString()).slice(-4000); };
  child.stderr.on('data', keep);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label} not ready in 20 s: ${tail}`)), 20000);
    child.once('error', (e) => { clearTimeout(timer); reject(e); });
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`${label} exited early (code ${code}, signal ${sig}): ${tail}`));
    });
    const rl = readline.createInterface({ input: child.stdout });
    rl.on('line', (line) => {
      keep(line + '\n');
      const m = re.exec(line);
      if (m) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve(m);
      }
    });
  });
}

// Runs grpcprobe; resolves with { code, stdout, stderr } (never rejects on exit 1).
function probe(...args) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [PROBE, address, ...args],
      { timeout: 30000, env: childEnv({}), cwd: path.dirname(PROBE) },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') return reject(err);
        resolve({ code: err ? err.code : 0, stdout, stderr });
      });
  });
}

function jsonLines(text) {
  return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bps_e2e_reflection_'));
  const emu = await startAndWait(EMULATOR_BIN,
    ['--listen', '127.0.0.1:0', '--sync-duration-ms', '1500', '--quiet'], childEnv({}),
    /^lighthouse-emulator listening on (http:\/\/127\.0\.0\.1:\d+)$/, 'lighthouse-emulator');
  emulatorUrl = emu[1];
  const srv = await startAndWait(SERVER_BIN,
    ['--listen', '127.0.0.1:0', '--lighthouse-endpoint', emulatorUrl,
      '--store', `sqlite:${path.join(tmp, 'jobs.db')}`, '--poll-interval', '200ms',
      '--metrics-listen', '127.0.0.1:0'],
    childEnv({ TENCENTCLOUD_SECRET_ID: SECRET_ID, TENCENTCLOUD_SECRET_KEY: SECRET_KEY }),
    /"msg":"serving".*"address":"(127\.0\.0\.1:\d+)"/, 'blueprint-syncd');
  address = srv[1];
});

after(() => {
  for (const c of children.reverse()) {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('list shows the API, health and reflection services', async () => {
  const r = await probe('list');
  assert.equal(r.code, 0, r.stderr);
  const services = r.stdout.split('\n').filter(Boolean);
  for (const s of ['blueprintsync.v1.BlueprintSync', 'grpc.health.v1.Health',
    'grpc.reflection.v1alpha.ServerReflection']) {
    assert.ok(services.includes(s), `${s} missing from ${JSON.stringify(services)}`);
  }
});

test('describe BlueprintSync shows its twelve rpcs', async () => {
  const r = await probe('describe', 'blueprintsync.v1.BlueprintSync');
  assert.equal(r.code, 0, r.stderr);
  const rpcs = r.stdout.split('\n').filter((l) => l.startsWith('rpc '));
  assert.equal(rpcs.length, 12, r.stdout);
  assert.ok(rpcs.includes('rpc SyncBlueprint(blueprintsync.v1.SyncBlueprintRequest) returns (blueprintsync.v1.SyncJob)'), r.stdout);
  assert.ok(rpcs.includes('rpc GetSyncJob(blueprintsync.v1.GetSyncJobRequest) returns (blueprintsync.v1.SyncJob)'), r.stdout);
  assert.ok(rpcs.includes('rpc ListSyncJobs(blueprintsync.v1.ListSyncJobsRequest) returns (blueprintsync.v1.ListSyncJobsResponse)'), r.stdout);
  assert.ok(rpcs.includes('rpc WatchSyncJob(blueprintsync.v1.WatchSyncJobRequest) returns (stream blueprintsync.v1.SyncJob)'), r.stdout);
  assert.ok(rpcs.includes('rpc CancelSyncJob(blueprintsync.v1.CancelSyncJobRequest) returns (blueprintsync.v1.SyncJob)'), r.stdout);
  assert.ok(rpcs.includes('rpc RetrySyncJob(blueprintsync.v1.RetrySyncJobRequest) returns (blueprintsync.v1.SyncJob)'), r.stdout);
  assert.ok(rpcs.includes('rpc DeleteSyncJob(blueprintsync.v1.DeleteSyncJobRequest) returns (google.protobuf.Empty)'), r.stdout);
  assert.ok(rpcs.includes('rpc CreateSyncPolicy(blueprintsync.v1.CreateSyncPolicyRequest) returns (blueprintsync.v1.SyncPolicy)'), r.stdout);
  assert.ok(rpcs.includes('rpc GetSyncPolicy(blueprintsync.v1.GetSyncPolicyRequest) returns (blueprintsync.v1.SyncPolicy)'), r.stdout);
  assert.ok(rpcs.includes('rpc ListSyncPolicies(blueprintsync.v1.ListSyncPoliciesRequest) returns (blueprintsync.v1.ListSyncPoliciesResponse)'), r.stdout);
  assert.ok(rpcs.includes('rpc UpdateSyncPolicy(blueprintsync.v1.UpdateSyncPolicyRequest) returns (blueprintsync.v1.SyncPolicy)'), r.stdout);
  assert.ok(rpcs.includes('rpc DeleteSyncPolicy(blueprintsync.v1.DeleteSyncPolicyRequest) returns (google.protobuf.Empty)'), r.stdout);
});

test('health reports SERVING for the server and for the API service', async () => {
  for (const service of ['', 'blueprintsync.v1.BlueprintSync']) {
    const r = await probe('health', service);
    assert.equal(r.code, 0, `health "${service}": ${r.stderr}`);
    const [answer] = jsonLines(r.stdout);
    assert.equal(answer.status, 'SERVING', `health "${service}": ${r.stdout}`);
  }
});

test('SyncBlueprint from camelCase JSON returns a RUNNING job that can be watched to SUCCEEDED', async () => {
  const r = await probe('call', 'blueprintsync.v1.BlueprintSync/SyncBlueprint', JSON.stringify({
    sourceRegion: 'ap-guangzhou',
    blueprintId: 'lhbp-gzbase01',
    destinationRegions: ['ap-beijing', 'ap-shanghai'],
  }));
  assert.equal(r.code, 0, r.stderr);
  const [job] = jsonLines(r.stdout);
  assert.match(job.name, /^syncJobs\/[0-9a-f-]{36}$/);
  assert.equal(job.state, 'RUNNING', r.stdout);
  assert.equal(job.sourceRegion, 'ap-guangzhou');
  assert.deepEqual(job.destinations.map((d) => d.region), ['ap-beijing', 'ap-shanghai']);
  for (const d of job.destinations) {
    assert.match(d.blueprintId, /^lhbp-[0-9a-z]{8}$/, r.stdout);
    assert.equal(d.state, 'SYNCING', r.stdout);
  }

  const got = await probe('call', 'blueprintsync.v1.BlueprintSync/GetSyncJob', JSON.stringify({ name: job.name }));
  assert.equal(got.code, 0, got.stderr);
  assert.equal(jsonLines(got.stdout)[0].name, job.name);

  const watched = await probe('call', 'blueprintsync.v1.BlueprintSync/WatchSyncJob', JSON.stringify({ name: job.name }));
  assert.equal(watched.code, 0, watched.stderr);
  const states = jsonLines(watched.stdout).map((m) => m.state);
  assert.ok(states.length >= 1, watched.stdout);
  assert.equal(states[states.length - 1], 'SUCCEEDED', watched.stdout);
});

test('an invalid request prints code=3 INVALID_ARGUMENT', async () => {
  const r = await probe('call', 'blueprintsync.v1.BlueprintSync/SyncBlueprint', JSON.stringify({
    sourceRegion: 'ap-guangzhou',
    blueprintId: 'lhbp-gzbase01',
    destinationRegions: ['ap-singapore'],
  }));
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stderr, /code=3 \(INVALID_ARGUMENT\)/);
  assert.match(r.stderr, /destination_regions/);
});
