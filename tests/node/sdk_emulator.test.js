'use strict';
// Proves the Lighthouse emulator faithful from the client side: every call
// below goes through the OFFICIAL Tencent Cloud Node SDK (signing, headers,
// error parsing), so if the emulator accepts what the real SDK sends and the
// SDK parses what the emulator answers, our C++ client tested against the
// emulator is tested against the real wire contract.
//
// Run: EMULATOR_BIN=<build>/bin/lighthouse-emulator node --test sdk_emulator.test.js
// (ctest target node_sdk_against_emulator does this).

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const readline = require('node:readline');

// A missing node_modules must fail the test run loudly, not skip it: a skipped
// faithfulness check would look like a passing one in CI.
const INSTALL_HINT =
  'tests/node/node_modules is missing or incomplete. Run scripts/install-deps ' +
  '(it runs `npm ci` in tests/node) and re-run the test.';
let tencentcloud;
let Sign;
try {
  tencentcloud = require('tencentcloud-sdk-nodejs');
  Sign = require('tencentcloud-sdk-nodejs/tencentcloud/common/sign').default;
} catch (e) {
  throw new Error(`${INSTALL_HINT} (require failed: ${e.message})`);
}
const LighthouseClient = tencentcloud.lighthouse.v20200324.Client;

// Emulator defaults (documented fake keys, not secrets of any real account).
const PERM = {
  secretId: 'AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE',
  secretKey: 'Gu5t9xGARNpq86cd98joQYCN3EXAMPLE',
};
const TEMP = {
  secretId: 'AKIDTMPEMULATOR000000000000000000000',
  secretKey: 'TmpEmulatorSecretKey00000000000000',
  token: 'emulator-session-token',
};
const API_HOST = 'lighthouse.tencentcloudapi.com';
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const BLUEPRINT_ID_RE = /^lhbp-[0-9a-z]{8}$/;
const ISO_UTC_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

let emulator;  // ChildProcess
let port;
let stderrTail = '';
// Rejections this file provokes, compared with the emulator's counters at the end.
const provoked = { authFailures: 0, signatureFailures: 0 };
let baselineStats;

function startEmulator() {
  const bin = process.env.EMULATOR_BIN;
  if (!bin) throw new Error('EMULATOR_BIN is not set (path to the lighthouse-emulator binary)');
  if (!fs.existsSync(bin)) throw new Error(`EMULATOR_BIN does not exist: ${bin}`);
  emulator = spawn(bin, ['--listen', '127.0.0.1:0', '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
  emulator.stderr.on('data', (d) => { stderrTail = (stderrTail + d.toString()).slice(-4000); });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`emulator did not announce its port in 15 s; stderr: ${stderrTail}`)), 15000);
    emulator.once('error', (e) => { clearTimeout(timer); reject(e); });
    emulator.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`emulator exited early (code ${code}, signal ${sig}); stderr: ${stderrTail}`));
    });
    const rl = readline.createInterface({ input: emulator.stdout });
    rl.once('line', (line) => {
      clearTimeout(timer);
      const m = /^lighthouse-emulator listening on http:\/\/127\.0\.0\.1:(\d+)$/.exec(line);
      if (!m) {
        reject(new Error(`unexpected first stdout line from emulator: ${JSON.stringify(line)}`));
        return;
      }
      port = Number(m[1]);
      // Keep draining stdout so the emulator never blocks on a full pipe.
      rl.on('line', () => {});
      emulator.removeAllListeners('exit');
      resolve();
    });
  });
}

// Agent that keeps Host / the TC3 credential scope on the real API domain
// (service "lighthouse") while the socket goes to the local emulator.
function redirectAgent() {
  const agent = new http.Agent();
  agent.createConnection = (_opts, cb) => net.createConnection({ host: '127.0.0.1', port }, cb);
  return agent;
}

function client(region, credential = PERM, extraHttpProfile = {}) {
  return new LighthouseClient({
    credential,
    region,
    profile: {
      httpProfile: {
        endpoint: API_HOST,
        protocol: 'http://',
        agent: redirectAgent(),
        reqTimeout: 20,
        ...extraHttpProfile,
      },
    },
  });
}

// Plain HTTP helper for the unsigned admin API and hand-built API requests.
function rawRequest({ method = 'GET', path: p = '/', headers = {}, body }) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.setTimeout(20000, () => req.destroy(new Error(`timeout on ${method} ${p}`)));
    if (body !== undefined) req.write(body);
    req.end();
  });
}

async function adminJson(method, p, obj) {
  const body = obj === undefined ? undefined : JSON.stringify(obj);
  const res = await rawRequest({
    method,
    path: p,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
    body,
  });
  assert.equal(res.status, 200, `${method} ${p} -> HTTP ${res.status}: ${res.text}`);
  return JSON.parse(res.text);
}

const stats = () => adminJson('GET', '/_emulator/stats');
async function setSyncDuration(ms) {
  const cfg = await adminJson('POST', '/_emulator/config', { sync_duration_ms: ms });
  assert.equal(cfg.sync_duration_ms, ms, `config not applied: ${JSON.stringify(cfg)}`);
}

// Awaits an SDK call that must be rejected by the API with `code`; returns the error.
async function expectApiError(promise, code) {
  let err;
  try {
    const ok = await promise;
    assert.fail(`expected ${code}, but the call succeeded: ${JSON.stringify(ok)}`);
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    err = e;
  }
  assert.equal(err.constructor.name, 'TencentCloudSDKHttpException', `not an SDK API error: ${err.stack}`);
  assert.equal(err.httpCode, undefined, `API errors must come back as HTTP 200 (got HTTP ${err.httpCode})`);
  assert.equal(err.code, code, `wrong error code (message: ${err.message})`);
  assert.match(err.requestId, UUID_RE, 'error RequestId must be a UUID');
  assert.ok(err.message.length > 0, 'error Message must not be empty');
  return err;
}

async function expectAuthError(promise, code) {
  const err = await expectApiError(promise, code);
  provoked.authFailures += 1;
  if (code === 'AuthFailure.SignatureFailure') provoked.signatureFailures += 1;
  return err;
}

async function describeOne(region, id) {
  const res = await client(region).DescribeBlueprints({ BlueprintIds: [id] });
  assert.match(res.RequestId, UUID_RE);
  assert.equal(res.TotalCount, 1, `DescribeBlueprints(${region}, ${id}) TotalCount`);
  assert.equal(res.BlueprintSet.length, 1);
  assert.equal(res.BlueprintSet[0].BlueprintId, id);
  return res.BlueprintSet[0];
}

// Bounded poll: the emulator's sync duration is configured to a couple of
// seconds, so 60 s without reaching `state` is a real failure, not slowness.
async function waitForState(region, id, state, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = (await describeOne(region, id)).BlueprintState;
    if (last === state) return;
    if (Date.now() > deadline) assert.fail(`${region}/${id} still ${last} after ${timeoutMs} ms, want ${state}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// Field names of `interface Blueprint` in the SDK's lighthouse typings.
const SDK_BLUEPRINT_FIELDS = (() => {
  const dts = fs.readFileSync(path.join(path.dirname(require.resolve('tencentcloud-sdk-nodejs/package.json')),
    'tencentcloud/services/lighthouse/v20200324/lighthouse_models.d.ts'), 'utf8');
  const body = /^export interface Blueprint \{\n([\s\S]*?)^\}/m.exec(dts);
  if (!body) throw new Error('interface Blueprint not found in the SDK typings');
  return [...body[1].matchAll(/^\s+(\w+)\?: /gm)].map((m) => m[1]).sort();
})();

// The documented Lighthouse Blueprint structure (API 2020-03-24); the SDK
// typings mark Description, CreatedTime and DockerVersion as nullable.
function assertBlueprintShape(bp) {
  const strOrNull = (v) => v === null || typeof v === 'string';
  const fields = {
    BlueprintId: (v) => typeof v === 'string' && BLUEPRINT_ID_RE.test(v),
    DisplayTitle: (v) => typeof v === 'string',
    DisplayVersion: (v) => typeof v === 'string',
    Description: strOrNull,
    OsName: (v) => typeof v === 'string',
    Platform: (v) => typeof v === 'string',
    PlatformType: (v) => v === 'LINUX_UNIX' || v === 'WINDOWS',
    BlueprintType: (v) => ['APP_OS', 'PURE_OS', 'DOCKER', 'PRIVATE', 'SHARED', 'GAME_PORTAL'].includes(v),
    ImageUrl: (v) => typeof v === 'string',
    RequiredSystemDiskSize: (v) => Number.isInteger(v) && v > 0,
    BlueprintState: (v) => ['NORMAL', 'SYNCING', 'SYNCING_FAILED', 'OFFLINE', 'CREATEFAILED', 'ISOLATING',
      'ISOLATED', 'DELETING', 'DESTROYING'].includes(v),
    CreatedTime: (v) => v === null || (typeof v === 'string' && ISO_UTC_RE.test(v)),
    BlueprintName: (v) => typeof v === 'string',
    SupportAutomationTools: (v) => typeof v === 'boolean',
    RequiredMemorySize: (v) => Number.isInteger(v) && v > 0,
    ImageId: (v) => typeof v === 'string',
    CommunityUrl: (v) => typeof v === 'string',
    GuideUrl: (v) => typeof v === 'string',
    SceneIdSet: (v) => Array.isArray(v) && v.every((s) => typeof s === 'string'),
    DockerVersion: strOrNull,
    BlueprintShared: (v) => typeof v === 'boolean',
    Tags: (v) => Array.isArray(v) && v.every((t) => typeof t.Key === 'string' && typeof t.Value === 'string'),
  };
  // The field list must be the SDK's own documented Blueprint interface, so an
  // SDK upgrade that changes the shape shows up here.
  assert.deepEqual(Object.keys(fields).sort(), SDK_BLUEPRINT_FIELDS);
  assert.deepEqual(Object.keys(bp).sort(), SDK_BLUEPRINT_FIELDS, 'Blueprint has exactly the documented fields');
  // Report every offending field at once, so one run shows the whole gap.
  const bad = Object.entries(fields).filter(([name, ok]) => !ok(bp[name]))
    .map(([name]) => `${name}=${JSON.stringify(bp[name])}`);
  assert.deepEqual(bad, [], `${bp.BlueprintId}: fields with undocumented values (only Description, ` +
    'CreatedTime and DockerVersion may be null)');
}

before(async () => {
  await startEmulator();
  // This file checks wire and state-machine faithfulness, not throttling: the
  // account-wide 10/s DescribeBlueprints limit would otherwise trip on the
  // paging walk and the state polls below.
  await adminJson('POST', '/_emulator/config', { rate_limits: { DescribeBlueprints: 0, DescribeRegions: 0, SyncBlueprint: 0 } });
  baselineStats = await stats();
});

after(async () => {
  if (!emulator || emulator.exitCode !== null || emulator.signalCode !== null) return;
  const exited = new Promise((r) => emulator.once('exit', r));
  emulator.kill('SIGTERM');
  const timer = setTimeout(() => emulator.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
});

test('SyncBlueprint gz -> [beijing, shanghai] via the SDK, destinations SYNCING then NORMAL', async () => {
  const SRC = 'lhbp-gzbase01';
  const source = await describeOne('ap-guangzhou', SRC);
  assertBlueprintShape(source);
  assert.equal(source.BlueprintState, 'NORMAL');
  assert.equal(source.BlueprintType, 'PRIVATE');
  assert.equal(source.BlueprintName, 'web-base');

  // Long enough that the immediate SYNCING checks cannot race the completion,
  // short enough that the bounded poll below finishes quickly.
  await setSyncDuration(4000);
  const s0 = await stats();

  const res = await client('ap-guangzhou').SyncBlueprint({
    BlueprintId: SRC,
    DestinationRegions: ['ap-beijing', 'ap-shanghai'],
  });
  assert.match(res.RequestId, UUID_RE);
  assert.equal(res.DestinationRegionBlueprintSet.length, 2);
  for (const d of res.DestinationRegionBlueprintSet) assert.deepEqual(Object.keys(d).sort(), ['BlueprintId', 'Region']);
  assert.deepEqual(res.DestinationRegionBlueprintSet.map((d) => d.Region), ['ap-beijing', 'ap-shanghai']);
  const [bj, sh] = res.DestinationRegionBlueprintSet.map((d) => d.BlueprintId);
  assert.match(bj, BLUEPRINT_ID_RE);
  assert.match(sh, BLUEPRINT_ID_RE);
  assert.notEqual(bj, sh);
  assert.notEqual(bj, SRC);
  assert.notEqual(sh, SRC);

  const bjBp = await describeOne('ap-beijing', bj);
  assertBlueprintShape(bjBp);
  assert.equal(bjBp.BlueprintState, 'SYNCING');
  assert.equal(bjBp.BlueprintType, 'PRIVATE');
  assert.equal(bjBp.BlueprintName, source.BlueprintName);
  assert.equal(bjBp.PlatformType, source.PlatformType);
  assert.equal((await describeOne('ap-shanghai', sh)).BlueprintState, 'SYNCING');
  assert.equal((await describeOne('ap-guangzhou', SRC)).BlueprintState, 'SYNCING');
  // A destination id lives in its own region only.
  const elsewhere = await client('ap-guangzhou').DescribeBlueprints({ BlueprintIds: [bj] });
  assert.equal(elsewhere.TotalCount, 0);
  assert.deepEqual(elsewhere.BlueprintSet, []);

  const mid = await stats();
  assert.equal(mid.actions.SyncBlueprint.executed - s0.actions.SyncBlueprint.executed, 1,
    'exactly one SyncBlueprint executed');
  assert.equal(mid.actions.SyncBlueprint.errors - s0.actions.SyncBlueprint.errors, 0);
  // The emulator recorded the submission the SDK made, under the RequestId it answered.
  assert.equal(mid.sync_submissions.length - s0.sync_submissions.length, 1);
  const sub = mid.sync_submissions[mid.sync_submissions.length - 1];
  assert.equal(sub.RequestId, res.RequestId);
  assert.equal(sub.Region, 'ap-guangzhou');
  assert.equal(sub.BlueprintId, SRC);
  assert.deepEqual(sub.DestinationRegions, ['ap-beijing', 'ap-shanghai']);
  assert.deepEqual(sub.DestinationBlueprintIds, [bj, sh]);

  // While the source is SYNCING a second sync is refused.
  await expectApiError(
    client('ap-guangzhou').SyncBlueprint({ BlueprintId: SRC, DestinationRegions: ['ap-chengdu'] }),
    'OperationDenied.BlueprintOperationInProgress');

  await waitForState('ap-beijing', bj, 'NORMAL');
  await waitForState('ap-shanghai', sh, 'NORMAL');
  await waitForState('ap-guangzhou', SRC, 'NORMAL');
  assertBlueprintShape(await describeOne('ap-beijing', bj));

  const end = await stats();
  assert.equal(end.actions.SyncBlueprint.executed - s0.actions.SyncBlueprint.executed, 1,
    'a refused SyncBlueprint must not count as executed');
  assert.equal(end.actions.SyncBlueprint.received - s0.actions.SyncBlueprint.received, 2);
  assert.equal(end.actions.SyncBlueprint.errors - s0.actions.SyncBlueprint.errors, 1);
});

test('DescribeBlueprints Filters, Offset/Limit and ParameterConflict', async () => {
  const gz = client('ap-guangzhou');

  const byName = await gz.DescribeBlueprints({ Filters: [{ Name: 'blueprint-name', Values: ['web-base'] }] });
  assert.match(byName.RequestId, UUID_RE);
  // The default seed has exactly one "web-base" in ap-guangzhou (db-base etc. must not match).
  assert.equal(byName.TotalCount, 1);
  assert.deepEqual(byName.BlueprintSet.map((b) => b.BlueprintId), ['lhbp-gzbase01']);
  assert.equal(byName.BlueprintSet[0].BlueprintName, 'web-base');
  assertBlueprintShape(byName.BlueprintSet[0]);

  const failed = await gz.DescribeBlueprints({ Filters: [{ Name: 'blueprint-state', Values: ['CREATEFAILED'] }] });
  assert.deepEqual(failed.BlueprintSet.map((b) => b.BlueprintId), ['lhbp-gzfail01']);
  assert.equal(failed.TotalCount, 1);

  const none = await gz.DescribeBlueprints({ Filters: [{ Name: 'blueprint-name', Values: ['no-such-name-xyz'] }] });
  assert.equal(none.TotalCount, 0);
  assert.deepEqual(none.BlueprintSet, []);

  // Paging: walking the region with Limit 1 yields the same ids, in the same
  // order, as one page of 100, and every page reports the full TotalCount.
  const all = await gz.DescribeBlueprints({ Limit: 100 });
  assert.ok(all.TotalCount >= 3, `ap-guangzhou seeds at least 3 blueprints, got ${all.TotalCount}`);
  assert.equal(all.BlueprintSet.length, all.TotalCount);
  const paged = [];
  for (let off = 0; off < all.TotalCount; off += 1) {
    const page = await gz.DescribeBlueprints({ Offset: off, Limit: 1 });
    assert.equal(page.TotalCount, all.TotalCount);
    assert.equal(page.BlueprintSet.length, 1);
    paged.push(page.BlueprintSet[0].BlueprintId);
  }
  assert.deepEqual(paged, all.BlueprintSet.map((b) => b.BlueprintId));
  const past = await gz.DescribeBlueprints({ Offset: all.TotalCount, Limit: 5 });
  assert.equal(past.TotalCount, all.TotalCount);
  assert.deepEqual(past.BlueprintSet, []);

  await expectApiError(
    gz.DescribeBlueprints({ BlueprintIds: ['lhbp-gzbase01'], Filters: [{ Name: 'blueprint-name', Values: ['web-base'] }] }),
    'InvalidParameter.ParameterConflict');
});

test('DescribeRegions returns the 15 regions with IsChinaMainland', async () => {
  const res = await client('ap-guangzhou').DescribeRegions({});
  assert.match(res.RequestId, UUID_RE);
  assert.equal(res.RegionSet.length, 15);
  const byRegion = new Map(res.RegionSet.map((r) => [r.Region, r]));
  assert.equal(byRegion.size, 15, 'regions are unique');
  assert.equal(byRegion.get('ap-beijing').IsChinaMainland, true);
  assert.equal(byRegion.get('ap-guangzhou').IsChinaMainland, true);
  assert.equal(byRegion.get('ap-hongkong').IsChinaMainland, false);
  assert.equal(byRegion.get('ap-singapore').IsChinaMainland, false);
  for (const r of res.RegionSet) {
    assert.equal(typeof r.RegionName, 'string');
    assert.equal(r.RegionState, 'AVAILABLE');
    assert.equal(typeof r.IsChinaMainland, 'boolean');
  }
});

test('temporary credentials need their session token', async () => {
  const ok = await client('ap-guangzhou', TEMP).DescribeRegions({});
  assert.equal(ok.RegionSet.length, 15);
  await expectAuthError(
    client('ap-guangzhou', { secretId: TEMP.secretId, secretKey: TEMP.secretKey }).DescribeRegions({}),
    'AuthFailure.TokenFailure');
  await expectAuthError(
    client('ap-guangzhou', { ...TEMP, token: 'not-the-session-token' }).DescribeRegions({}),
    'AuthFailure.TokenFailure');
});

test('wrong secret key and unknown SecretId are rejected', async () => {
  await expectAuthError(
    client('ap-guangzhou', { secretId: PERM.secretId, secretKey: `${PERM.secretKey}x` }).DescribeRegions({}),
    'AuthFailure.SignatureFailure');
  await expectAuthError(
    client('ap-guangzhou', { secretId: 'AKIDunknownunknownunknownunknown1234', secretKey: PERM.secretKey }).DescribeRegions({}),
    'AuthFailure.SecretIdNotFound');
});

// Sends `sentBody` with an Authorization computed by the SDK's own signer over `signedBody`.
async function signedRawCall(action, region, signedBody, sentBody) {
  const timestamp = Math.floor(Date.now() / 1000);
  const headers = {
    'Content-Type': 'application/json',
    Host: API_HOST,
    'X-TC-Action': action,
    'X-TC-Region': region,
    'X-TC-Timestamp': String(timestamp),
    'X-TC-Version': '2020-03-24',
  };
  headers.Authorization = Sign.sign3({
    method: 'POST',
    url: `https://${API_HOST}/`,
    payload: Buffer.from(signedBody),
    timestamp,
    service: 'lighthouse',
    secretId: PERM.secretId,
    secretKey: PERM.secretKey,
    headers,
  });
  headers['Content-Length'] = Buffer.byteLength(sentBody);
  const res = await rawRequest({ method: 'POST', path: '/', headers, body: sentBody });
  assert.equal(res.status, 200, `API answers HTTP 200 even on errors, got ${res.status}`);
  return JSON.parse(res.text).Response;
}

test('tampered body (signed one body, sent another) is rejected', async () => {
  const signed = '{"BlueprintIds":["lhbp-gzbase01"]}';
  // Control: the hand-built request is valid when the body is untouched, so
  // the rejection below is caused by the tampering alone.
  const good = await signedRawCall('DescribeBlueprints', 'ap-guangzhou', signed, signed);
  assert.equal(good.Error, undefined, JSON.stringify(good.Error));
  assert.equal(good.TotalCount, 1);

  const bad = await signedRawCall('DescribeBlueprints', 'ap-guangzhou', signed, '{"BlueprintIds":["lhbp-gzbase02"]}');
  assert.ok(bad.Error, 'tampered request must fail');
  assert.equal(bad.Error.Code, 'AuthFailure.SignatureFailure');
  assert.match(bad.RequestId, UUID_RE);
  assert.equal(bad.TotalCount, undefined);
  provoked.authFailures += 1;
  provoked.signatureFailures += 1;
});

test('timestamp 10 minutes old is rejected with SignatureExpire', async () => {
  const realGetTime = Date.prototype.getTime;
  // The SDK reads the clock as new Date().getTime() inside the request; skew it
  // for this one call only.
  Date.prototype.getTime = function skewed() { return realGetTime.call(this) - 10 * 60 * 1000; };
  let call;
  try {
    call = client('ap-guangzhou').DescribeRegions({});
    await expectAuthError(call, 'AuthFailure.SignatureExpire');
  } finally {
    Date.prototype.getTime = realGetTime;
  }
  // And the same client works again with the real clock.
  assert.equal((await client('ap-guangzhou').DescribeRegions({})).RegionSet.length, 15);
});

test('endpoint mode (credential scope service "127") is rejected with InvalidAuthorization', async () => {
  const c = new LighthouseClient({
    credential: PERM,
    region: 'ap-guangzhou',
    // A plain (non keep-alive) agent: without one node-fetch falls back to
    // Node's keep-alive global agent and the idle socket delays emulator shutdown.
    profile: { httpProfile: { endpoint: `127.0.0.1:${port}`, protocol: 'http://', agent: new http.Agent(), reqTimeout: 20 } },
  });
  await expectAuthError(c.DescribeRegions({}), 'AuthFailure.InvalidAuthorization');
});

test('rule errors surface through the SDK with RequestId', async () => {
  const gz = client('ap-guangzhou');
  const sync = (id, dests) => gz.SyncBlueprint({ BlueprintId: id, DestinationRegions: dests });
  const s0 = await stats();

  await expectApiError(sync('lhbp-gzbase02', ['ap-guangzhou']), 'InvalidParameterValue.DestinationRegionSameAsSourceRegion');
  await expectApiError(sync('lhbp-gzbase02', ['ap-beijing', 'ap-beijing']), 'InvalidParameterValue.Duplicated');
  await expectApiError(sync('lhbp-gzbase02', ['ap-singapore']), 'InvalidParameterValue.NotSupportCrossBorderSyncBlueprint');
  await expectApiError(sync('lhbp-gzbase02', ['ap-nowhere-1']), 'InvalidParameterValue.UnavailableRegion');
  await expectApiError(sync('not-a-blueprint', ['ap-beijing']), 'InvalidParameterValue.BlueprintIdMalformed');
  await expectApiError(sync('lhbp-zzzzzzzz', ['ap-beijing']), 'ResourceNotFound.PrivateBlueprintNotFound');
  await expectApiError(sync('lhbp-gzfail01', ['ap-beijing']), 'UnsupportedOperation.BlueprintCurStateInvalid');
  // A blueprint of another region is not visible from this one.
  await expectApiError(sync('lhbp-shbase01', ['ap-beijing']), 'ResourceNotFound.PrivateBlueprintNotFound');

  // None of the refused calls touched the source.
  assert.equal((await describeOne('ap-guangzhou', 'lhbp-gzbase02')).BlueprintState, 'NORMAL');
  const end = await stats();
  assert.equal(end.actions.SyncBlueprint.received - s0.actions.SyncBlueprint.received, 8);
  assert.equal(end.actions.SyncBlueprint.errors - s0.actions.SyncBlueprint.errors, 8);
  assert.equal(end.actions.SyncBlueprint.executed - s0.actions.SyncBlueprint.executed, 0);
});

test('DeleteBlueprints via the SDK: a NORMAL copy is deleted and gone from every view', async () => {
  // Copies finish at once, so the copy is NORMAL (deletable) right away.
  await setSyncDuration(0);
  const sync = await client('ap-guangzhou').SyncBlueprint({
    BlueprintId: 'lhbp-gzbase02',
    DestinationRegions: ['ap-chengdu'],
  });
  const copy = sync.DestinationRegionBlueprintSet[0].BlueprintId;
  assert.equal((await describeOne('ap-chengdu', copy)).BlueprintState, 'NORMAL');
  const s0 = await stats();

  const res = await client('ap-chengdu').DeleteBlueprints({ BlueprintIds: [copy] });
  assert.match(res.RequestId, UUID_RE);
  assert.deepEqual(Object.keys(res), ['RequestId'], 'the answer is the RequestId alone');

  const gone = await client('ap-chengdu').DescribeBlueprints({ BlueprintIds: [copy] });
  assert.equal(gone.TotalCount, 0);
  assert.deepEqual(gone.BlueprintSet, []);
  const listing = await adminJson('GET', '/_emulator/blueprints?region=ap-chengdu');
  assert.ok(!listing.blueprints.some((b) => b.BlueprintId === copy), 'admin listing still shows the copy');
  // The source is untouched.
  assert.equal((await describeOne('ap-guangzhou', 'lhbp-gzbase02')).BlueprintState, 'NORMAL');

  const s1 = await stats();
  assert.equal(s1.actions.DeleteBlueprints.executed - s0.actions.DeleteBlueprints.executed, 1);
  assert.equal(s1.deleted_blueprints_total - s0.deleted_blueprints_total, 1);
  const rec = s1.deleted_blueprints[s1.deleted_blueprints.length - 1];
  assert.deepEqual([rec.RequestId, rec.Region, rec.BlueprintId], [res.RequestId, 'ap-chengdu', copy]);

  // Deleting it again: the SDK sees the documented not-found code.
  await expectApiError(client('ap-chengdu').DeleteBlueprints({ BlueprintIds: [copy] }),
    'ResourceNotFound.PrivateBlueprintNotFound');
});

test('DeleteBlueprints rule errors surface through the SDK, deleting nothing', async () => {
  const sg = client('ap-singapore');
  const del = (ids) => sg.DeleteBlueprints({ BlueprintIds: ids });
  const s0 = await stats();

  await expectApiError(del(['lhbp-zzzzzzzz']), 'ResourceNotFound.PrivateBlueprintNotFound');
  await expectApiError(del(['lhbp-pubos001']), 'ResourceNotFound.PrivateBlueprintNotFound');
  await expectApiError(del(['lhbp-sgoffl01']), 'UnsupportedOperation.BlueprintCurStateInvalid');
  await expectApiError(del(['not-a-blueprint']), 'InvalidParameterValue.BlueprintIdMalformed');
  await expectApiError(del([]), 'MissingParameter');
  // All or nothing: the deletable first id survives the unknown second one.
  await expectApiError(del(['lhbp-sgbase01', 'lhbp-zzzzzzzz']), 'ResourceNotFound.PrivateBlueprintNotFound');
  assert.equal((await describeOne('ap-singapore', 'lhbp-sgbase01')).BlueprintState, 'NORMAL');

  // The source of a running sync is occupied (long enough not to finish here).
  await setSyncDuration(60000);
  await client('ap-hongkong').SyncBlueprint({ BlueprintId: 'lhbp-hkbase01', DestinationRegions: ['ap-tokyo'] });
  await expectApiError(client('ap-hongkong').DeleteBlueprints({ BlueprintIds: ['lhbp-hkbase01'] }),
    'UnsupportedOperation.BlueprintOccupied');

  const end = await stats();
  assert.equal(end.actions.DeleteBlueprints.received - s0.actions.DeleteBlueprints.received, 7);
  assert.equal(end.actions.DeleteBlueprints.errors - s0.actions.DeleteBlueprints.errors, 7);
  assert.equal(end.actions.DeleteBlueprints.executed - s0.actions.DeleteBlueprints.executed, 0);
  assert.equal(end.deleted_blueprints_total, s0.deleted_blueprints_total);
});

test('emulator counted exactly the rejected signatures this file provoked', async () => {
  const s = await stats();
  assert.ok(provoked.signatureFailures >= 2 && provoked.authFailures >= 7,
    `earlier tests did not all run (provoked ${JSON.stringify(provoked)})`);
  assert.equal(s.signature_failures - baselineStats.signature_failures, provoked.signatureFailures);
  assert.equal(s.auth_failures - baselineStats.auth_failures, provoked.authFailures);
  assert.ok(s.requests_total > baselineStats.requests_total);
});
