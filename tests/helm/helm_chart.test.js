// Offline check of deploy/helm/blueprint-sync (no helm, no cluster):
//  - renders the chart with helmlite (tests/helm/helmlite, built by CMake) for the
//    defaults, every ci/*-values.yaml, and with/without the Prometheus Operator API;
//    both store modes: sqlite (one replica, Recreate, PVC) and postgres (several replicas,
//    RollingUpdate, PDB, the URI from a Secret, no data volume);
//  - validates the merged values against values.schema.json (ajv, draft-07, as helm does);
//  - type-checks every rendered document with `tsc --strict` against kubernetes-types,
//    so unknown fields and wrong types fail (excess-property checks);
//  - asserts what matters for this server, with the facts read from its source
//    (service/server/*.cc: BLUEPRINT_SYNC_* variables, health names, drain default,
//    Tencent sites / endpoint styles / region refresh range) so chart and server cannot
//    drift apart;
//  - checks the optional PrometheusRule with promtool and against the metric names
//    service/metrics exports, the `helm test` Pod (plaintext, TLS, mTLS) against the CLI's
//    flags, and the CLI variables in the server container against client/'s names;
//  - requires the chart's README.md to be what chart_readme.js generates from values.yaml;
//  - proves the checks can fail: tests/helm/bad-values/*.yaml must be rejected by the
//    schema and/or the chart's own render-time checks, and a manifest with an unknown field
//    or a wrong type must be rejected by tsc.
// Env: HELMLITE (renderer binary, required), HELM_CHECK_WORKDIR (where generated
// files go; a temp dir otherwise).
'use strict';

const { test, describe, before } = require('node:test');
const assert = require('node:assert/strict');
const childProcess = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const HERE = __dirname;
const REPO = path.resolve(HERE, '..', '..');
const CHART = path.join(REPO, 'deploy', 'helm', 'blueprint-sync');
const HELMLITE = process.env.HELMLITE || '';
const WORK = path.resolve(process.env.HELM_CHECK_WORKDIR || fs.mkdtempSync(path.join(os.tmpdir(), 'helm-check-')));
const MONITORING = 'monitoring.coreos.com/v1';

function requireTooling() {
  const hint = 'run scripts/install-deps (npm ci in tests/helm) and build the helmlite target';
  assert.ok(HELMLITE && fs.existsSync(HELMLITE), `renderer not found (HELMLITE=${HELMLITE}): ${hint}`);
  for (const m of ['ajv', 'typescript', 'kubernetes-types']) {
    assert.ok(fs.existsSync(path.join(HERE, 'node_modules', m)), `node module ${m} missing: ${hint}`);
  }
}

// ---------------------------------------------------------------------------
// What the server actually reads and registers, parsed from its source.

// blueprint-syncd's main.cc composes units of service/server (the flag table, the store,
// health): every non-test source there, read as one text.
function serverSources() {
  const dir = path.join(REPO, 'service', 'server');
  return fs.readdirSync(dir).filter((f) => /\.(cc|h)$/.test(f) && !f.endsWith('_test.cc')).sort()
    .map((f) => fs.readFileSync(path.join(dir, f), 'utf8')).join('\n');
}

function serverFacts() {
  const main = serverSources();
  const envVars = new Set([...main.matchAll(/"(BLUEPRINT_SYNC_[A-Z0-9_]+)"/g)].map((m) => m[1]));
  const loop = main.match(/for\s*\(\s*const\s+char\s*\*\s*name\s*:\s*\{([^}]*)\}\s*\)\s*\{\s*health->SetServingStatus\(\s*name\s*,\s*true\s*\)/);
  assert.ok(loop, 'service/server: health-name registration loop not found; update this check with the server');
  // "" always exists in gRPC's default health service; the rest are set SERVING explicitly.
  const healthNames = new Set(['', ...[...loop[1].matchAll(/"([^"]*)"/g)].map((m) => m[1])]);
  // The plaintext health port (--health-listen) reports the same names: main.cc sets them
  // through a MirroredHealth that includes the health port's service.
  const healthListen = /\{\s*"health-listen"\s*,\s*"BLUEPRINT_SYNC_HEALTH_LISTEN"/.test(main);
  const healthMirrored = /MirroredHealth\s+\w+\(\s*\{[^}]*health_port->health\(\)/.test(main) ||
    (/MirroredHealth\s+mirrored_health_;/.test(main) &&
     /mirrored_health_\(\s*\{[^}]*health_port_->health\(\)/.test(main));
  const drain = main.match(/\{\s*"drain-timeout"\s*,\s*"BLUEPRINT_SYNC_DRAIN_TIMEOUT"\s*,\s*"(\d+)s"/);
  assert.ok(drain, 'service/server: drain-timeout flag not found');
  // postgres mode: the names main.cc turns NOT_SERVING while the shared store is unreachable
  // (readiness must be among them, the name liveness probes use must not), the DSN prefixes
  // that select the PostgreSQL store, and the accepted ranges of its two durations.
  const storeLoop = main.match(/store_reachable\(\)[\s\S]{0,1500}?for\s*\(\s*const\s+char\s*\*\s*name\s*:\s*\{([^}]*)\}\s*\)\s*\{\s*health->SetServingStatus\(\s*name\s*,\s*(?:reachable|ready)\s*\)/);
  const storeFollowingNames = storeLoop ? new Set([...storeLoop[1].matchAll(/"([^"]*)"/g)].map((m) => m[1])) : null;
  const postgresPrefixes = [...main.matchAll(/StartsWith\(\s*store_spec\s*,\s*"(postgres(?:ql)?:\/\/)"\s*\)/g)].map((m) => m[1]);
  const durationRange = (flag) => {
    const m = main.match(new RegExp(`flags\\.Duration\\(\\s*"${flag}"\\s*,\\s*absl::(\\w+)\\((\\d+)\\)\\s*,\\s*absl::(\\w+)\\((\\d+)\\)\\s*\\)`));
    return m ? [abslMs(m[1], m[2]), abslMs(m[3], m[4])] : null;
  };
  const ranges = { leaderLease: durationRange('leader-lease'), followInterval: durationRange('follow-interval') };
  // The Tencent site / endpoint style the server accepts, and its region refresh bounds.
  const oneOf = (flag) => {
    const m = main.match(new RegExp(`OneOf\\(\\s*flags\\s*,\\s*"${flag}"\\s*,\\s*\\{([^}]*)\\}`));
    return m ? [...m[1].matchAll(/"([^"]*)"/g)].map((x) => x[1]) : null;
  };
  const tencent = { site: oneOf('tencent-site'), style: oneOf('tencent-endpoint-style') };
  assert.ok(tencent.site && tencent.style, 'service/server: OneOf for tencent-site / tencent-endpoint-style not found');
  const refresh = main.match(/flags\.Duration\(\s*"region-refresh-interval"\s*,\s*absl::ZeroDuration\(\)\s*,\s*absl::Hours\(([0-9 *]+)\)\s*\)/);
  assert.ok(refresh, 'service/server: the range of region-refresh-interval was not found');
  ranges.regionRefresh = [0, refresh[1].split('*').reduce((a, x) => a * Number(x.trim()), 1) * 3.6e6];
  const creds = fs.readFileSync(path.join(REPO, 'service', 'tencent', 'credentials.cc'), 'utf8');
  const credentialEnv = new Set([...creds.matchAll(/"(TENCENTCLOUD_[A-Z_]+)"/g)].map((m) => m[1]));
  // Guard against a parser that silently finds nothing.
  assert.ok(envVars.size >= 10, `only ${envVars.size} BLUEPRINT_SYNC_* names parsed from service/server`);
  assert.ok(healthNames.size >= 3, `health names parsed: ${[...healthNames]}`);
  assert.ok(credentialEnv.has('TENCENTCLOUD_SECRET_ID') && credentialEnv.has('TENCENTCLOUD_SECRET_KEY'));
  // Every series blueprint-syncd exports (the PrometheusRule may name no other).
  const metricsSrc = fs.readFileSync(path.join(REPO, 'service', 'metrics', 'metrics.cc'), 'utf8');
  const metricNames = new Set([...metricsSrc.matchAll(/"((?:blueprintsync|grpc_server)_[a-z_]+)"/g)].map((m) => m[1]));
  assert.ok(metricNames.has('blueprintsync_leader') && metricNames.size >= 20, `metric names parsed: ${[...metricNames]}`);
  // The CLI's commands and flags (the helm test Pod runs it).
  const cliSrc = fs.readFileSync(path.join(REPO, 'client', 'cli_options.cc'), 'utf8');
  const cliFlags = new Set([...cliSrc.matchAll(/\{"([a-z][a-z-]*)",\s*(?:"[A-Z_]*"|k[A-Za-z]+Env|"")/g)].map((m) => m[1]));
  const cliCommands = new Set([...cliSrc.matchAll(/\{"([a-z ]+)",\s*Command::k\w+\}/g)].map((m) => m[1]));
  assert.ok(cliFlags.has('server') && cliCommands.has('list'), `CLI parsed: ${[...cliFlags]} / ${[...cliCommands]}`);
  // The CLI's environment variables (client/*.h kXxxEnv constants).
  const cliEnv = new Set(fs.readdirSync(path.join(REPO, 'client')).filter((f) => f.endsWith('.h'))
    .flatMap((f) => [...fs.readFileSync(path.join(REPO, 'client', f), 'utf8')
      .matchAll(/k[A-Za-z]+Env\[\]\s*=\s*"(BLUEPRINT_SYNC_[A-Z_]+)"/g)].map((m) => m[1])));
  for (const v of ['BLUEPRINT_SYNC_SERVER', 'BLUEPRINT_SYNC_CACERT', 'BLUEPRINT_SYNC_SERVER_NAME', 'BLUEPRINT_SYNC_TLS']) {
    assert.ok(cliEnv.has(v), `client/: ${v} not found (CLI env parsed: ${[...cliEnv]})`);
  }
  return { envVars, healthNames, drainDefaultSeconds: Number(drain[1]), credentialEnv, healthListen, healthMirrored,
           storeFollowingNames, postgresPrefixes, ranges, metricNames, cliFlags, cliCommands, cliEnv, tencent };
}

// absl::Seconds(15) -> 15000; "1m30s" -> 90000 (Go/Abseil duration syntax, as the schema allows).
function abslMs(unit, n) {
  const f = { Nanoseconds: 1e-6, Microseconds: 1e-3, Milliseconds: 1, Seconds: 1e3, Minutes: 6e4, Hours: 3.6e6 }[unit];
  assert.ok(f, `service/server: unknown absl duration unit ${unit}`);
  return Number(n) * f;
}
function durationMs(text) {
  const units = { ns: 1e-6, us: 1e-3, ms: 1, s: 1e3, m: 6e4, h: 3.6e6 };
  assert.match(text, /^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$/, `duration ${text}`);
  return [...text.matchAll(/([0-9]+(?:\.[0-9]+)?)(ns|us|ms|s|m|h)/g)].reduce((t, m) => t + Number(m[1]) * units[m[2]], 0);
}

function dockerFacts() {
  const df = fs.readFileSync(path.join(REPO, 'deploy', 'docker', 'Dockerfile'), 'utf8');
  const uid = df.match(/--uid\s+(\d+)/);
  const expose = df.match(/^EXPOSE\s+(\d+)/m);
  const store = df.match(/BLUEPRINT_SYNC_STORE=(\S+)/);
  assert.ok(uid && expose && store, 'Dockerfile: uid / EXPOSE / BLUEPRINT_SYNC_STORE not found');
  return { uid: Number(uid[1]), port: Number(expose[1]), store: store[1] };
}

// ---------------------------------------------------------------------------
// Rendering and validation.

function helmlite(args) {
  return childProcess.spawnSync(HELMLITE, args, { encoding: 'utf8' });
}

let caseCounter = 0;
function render({ files = [], sets = [], apiVersions = [], name = 'bps', kubeVersion = '' } = {}) {
  const id = `r${caseCounter++}`;
  const valuesOut = path.join(WORK, `${id}.values.json`);
  const notesOut = path.join(WORK, `${id}.NOTES.txt`);
  const args = ['--strict', '--output', 'json', '--name', name, '--namespace', 'images',
                '--values-out', valuesOut, '--notes', notesOut];
  for (const f of files) args.push('-f', f);
  for (const s of sets) args.push('--set', s);
  for (const a of apiVersions) args.push('--api-versions', a);
  if (kubeVersion) args.push('--kube-version', kubeVersion);
  args.push(CHART);
  const r = helmlite(args);
  return {
    id, name, status: r.status, stderr: r.stderr,
    docs: r.status === 0 ? JSON.parse(r.stdout) : null,
    values: fs.existsSync(valuesOut) ? JSON.parse(fs.readFileSync(valuesOut, 'utf8')) : null,
    notes: fs.existsSync(notesOut) ? fs.readFileSync(notesOut, 'utf8') : '',
    apiVersions, kubeVersion: kubeVersion || 'v1.29.0', // helmlite's default
  };
}

let validateValues;
function schemaValidator() {
  if (!validateValues) {
    const Ajv = require('ajv');
    // strict: a schema typo (unknown keyword) is an error, not a silently ignored rule.
    const ajv = new Ajv({ strict: true, allowUnionTypes: true, allErrors: true });
    validateValues = ajv.compile(JSON.parse(fs.readFileSync(path.join(CHART, 'values.schema.json'), 'utf8')));
  }
  return validateValues;
}
function schemaErrors(values) {
  const v = schemaValidator();
  return v(values) ? [] : v.errors.map((e) => ({ path: e.instancePath || '/', keyword: e.keyword, message: e.message }));
}

// apiVersion/kind -> [module, type]. A kind missing here fails the check: every
// rendered object must be type-checked.
const TYPES = {
  'v1/ConfigMap': ['kubernetes-types/core/v1', 'ConfigMap'],
  'v1/Secret': ['kubernetes-types/core/v1', 'Secret'],
  'v1/Service': ['kubernetes-types/core/v1', 'Service'],
  'v1/ServiceAccount': ['kubernetes-types/core/v1', 'ServiceAccount'],
  'v1/PersistentVolumeClaim': ['kubernetes-types/core/v1', 'PersistentVolumeClaim'],
  'apps/v1/Deployment': ['kubernetes-types/apps/v1', 'Deployment'],
  'policy/v1/PodDisruptionBudget': ['kubernetes-types/policy/v1', 'PodDisruptionBudget'],
  'networking.k8s.io/v1/NetworkPolicy': ['kubernetes-types/networking/v1', 'NetworkPolicy'],
  'v1/Pod': ['kubernetes-types/core/v1', 'Pod'],
  'monitoring.coreos.com/v1/ServiceMonitor': ['./monitoring-v1', 'ServiceMonitor'],
  'monitoring.coreos.com/v1/PrometheusRule': ['./monitoring-v1', 'PrometheusRule'],
};

function writeTypeScript(file, docs) {
  const imports = new Map();
  const lines = [];
  docs.forEach((d, i) => {
    const key = `${d.object.apiVersion}/${d.object.kind}`;
    const t = TYPES[key];
    assert.ok(t, `${d.source}: no TypeScript type for ${key}`);
    const alias = `${t[1]}_${t[0].replace(/[^a-z0-9]/gi, '_')}`;
    imports.set(alias, `import type { ${t[1]} as ${alias} } from '${t[0]}';`);
    lines.push(`// ${d.source}\nexport const doc${i}: ${alias} = ${JSON.stringify(d.object, null, 2)};`);
  });
  fs.writeFileSync(file, [...imports.values(), '', ...lines, ''].join('\n'));
}

function setUpTypeScriptDir() {
  // Generated files resolve kubernetes-types through this link, as if they lived in tests/helm.
  const link = path.join(WORK, 'node_modules');
  fs.rmSync(link, { force: true }); // a stale or dangling link from another checkout
  fs.symlinkSync(path.join(HERE, 'node_modules'), link, 'dir');
  fs.copyFileSync(path.join(HERE, 'types', 'monitoring-v1.ts'), path.join(WORK, 'monitoring-v1.ts'));
  // CommonJS: nodenext then resolves extensionless subpaths like 'kubernetes-types/apps/v1'.
  fs.writeFileSync(path.join(WORK, 'package.json'), '{"private": true, "type": "commonjs"}\n');
}

let tsconfigCounter = 0;
function tsc(files) {
  // A project file per run: `types: []` keeps tsc from loading unrelated @types packages.
  const project = path.join(WORK, `tsconfig.${tsconfigCounter++}.json`);
  fs.writeFileSync(project, JSON.stringify({
    compilerOptions: { noEmit: true, strict: true, skipLibCheck: true, module: 'nodenext',
                       moduleResolution: 'nodenext', target: 'es2022', types: [] },
    files,
  }, null, 2));
  const bin = path.join(HERE, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = childProcess.spawnSync(process.execPath, [bin, '--project', project, '--pretty', 'false'],
    { cwd: WORK, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

// ---------------------------------------------------------------------------
// Assertions on one render.

const byKind = (docs, kind) => docs.filter((d) => d.object.kind === kind).map((d) => d.object);
const one = (docs, kind) => {
  const xs = byKind(docs, kind);
  assert.equal(xs.length, 1, `expected exactly one ${kind}, got ${xs.length}`);
  return xs[0];
};
const svc0 = (docs) => one(docs, 'Service');
const subset = (small, big) => Object.entries(small || {}).every(([k, v]) => big && big[k] === v);

function checkRender(r, facts, docker) {
  const docs = r.docs;
  const values = r.values;
  for (const d of docs) {
    const o = d.object;
    assert.ok(o.apiVersion && o.kind && o.metadata && o.metadata.name, `${d.source}: apiVersion/kind/name`);
    assert.match(o.metadata.name, /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, `${d.source}: name is not a DNS label`);
    const labels = o.metadata.labels || {};
    for (const l of ['app.kubernetes.io/name', 'app.kubernetes.io/instance', 'app.kubernetes.io/version',
                     'app.kubernetes.io/managed-by', 'helm.sh/chart']) {
      assert.ok(labels[l], `${o.kind}: label ${l} missing`);
    }
  }

  // Two modes (values store.type): sqlite = one writer, Recreate, PVC; postgres = several
  // replicas on a shared store, RollingUpdate, PDB, no data volume.
  const pg = values.store.type === 'postgres';
  assert.ok(pg || values.store.type === 'sqlite', `store.type ${values.store.type}`);
  const deploy = one(docs, 'Deployment');
  if (pg) {
    assert.equal(deploy.spec.replicas, values.replicaCount, 'postgres: replicas from replicaCount');
    assert.deepEqual(deploy.spec.strategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      'postgres: RollingUpdate that never goes below the replica count');
  } else {
    assert.equal(deploy.spec.replicas, 1, 'replicas must be 1 (SQLite, one writer)');
    assert.deepEqual(deploy.spec.strategy, { type: 'Recreate' }, 'strategy must be Recreate');
  }
  const pod = deploy.spec.template.spec;
  const podLabels = deploy.spec.template.metadata.labels;
  assert.ok(subset(deploy.spec.selector.matchLabels, podLabels), 'selector does not match pod labels');
  // The h2Guard sidecar (nghttpx) fronts the gRPC port unless TLS is on (or it is off).
  const guardOn = values.h2Guard.enabled === true || (values.h2Guard.enabled == null && !values.tls.enabled);
  assert.ok(!(guardOn && values.tls.enabled), 'h2Guard rendered with TLS: the server would lose the client identity');
  assert.equal(pod.containers.length, guardOn ? 2 : 1);
  const c = pod.containers[0];
  assert.equal(c.name, 'blueprint-syncd');
  const guard = guardOn ? pod.containers[1] : null;

  // One numeric gRPC port for the container (the guard's when it is on), the probes, the
  // Service and the server's listen address.
  const grpcPort = (guardOn ? guard : c).ports.find((p) => p.name === 'grpc');
  if (guardOn) assert.ok(!(c.ports || []).some((p) => p.name === 'grpc' || p.containerPort === values.server.port),
    'behind the guard blueprint-syncd must not expose the gRPC port');
  assert.ok(grpcPort && Number.isInteger(grpcPort.containerPort), 'container port "grpc" (numeric)');
  const port = grpcPort.containerPort;
  assert.equal(port, values.server.port);

  // The probes use the plaintext health port when it is on (always with TLS: kubelet gRPC
  // probes cannot do TLS), else the gRPC port.
  const healthOn = values.healthPort.enabled || values.tls.enabled;
  const healthPort = c.ports.find((p) => p.name === 'health');
  assert.equal(Boolean(healthPort), healthOn, 'container port "health" iff the health port is on');
  let probePort = port;
  if (healthOn) {
    assert.ok(facts.healthListen && facts.healthMirrored,
      'service/server: --health-listen / MirroredHealth not found; the health port would not mirror the gRPC port');
    probePort = healthPort.containerPort;
    assert.equal(probePort, values.healthPort.port);
    assert.notEqual(probePort, port, 'health port == gRPC port');
  }
  const probes = { startupProbe: 'liveness', livenessProbe: 'liveness', readinessProbe: 'readiness' };
  for (const [kind, service] of Object.entries(probes)) {
    const p = c[kind];
    assert.ok(p, `${kind} missing`);
    assert.deepEqual(Object.keys(p).filter((k) => ['grpc', 'httpGet', 'tcpSocket', 'exec'].includes(k)), ['grpc'],
      `${kind} must be a native gRPC probe`);
    assert.equal(typeof p.grpc.port, 'number', `${kind}: gRPC probes need a numeric port`);
    assert.equal(p.grpc.port, probePort, `${kind}: probe port != ${healthOn ? 'health' : 'gRPC'} container port`);
    assert.ok(facts.healthNames.has(p.grpc.service),
      `${kind}: health name "${p.grpc.service}" is not registered by the server (${[...facts.healthNames]})`);
    assert.equal(p.grpc.service, service, `${kind}: health name`);
  }

  const svc = one(docs, 'Service');
  assert.ok(subset(svc.spec.selector, podLabels) && Object.keys(svc.spec.selector).length > 0,
    'Service selector does not select the pod');
  if (pg) {
    // readiness follows the database (a replica that cannot record jobs takes no calls);
    // liveness and startup must probe a name that stays SERVING, or an outage of
    // PostgreSQL would restart every pod.
    assert.ok(facts.storeFollowingNames,
      'service/server: the loop that sets readiness from elector->store_reachable() was not found; update this check with the server');
    assert.ok(facts.storeFollowingNames.has(c.readinessProbe.grpc.service),
      `readinessProbe "${c.readinessProbe.grpc.service}" does not follow the store (${[...facts.storeFollowingNames]})`);
    for (const kind of ['livenessProbe', 'startupProbe']) {
      assert.ok(!facts.storeFollowingNames.has(c[kind].grpc.service),
        `${kind} "${c[kind].grpc.service}" turns NOT_SERVING while PostgreSQL is unreachable: pods would be restarted`);
    }
  }
  const sp = svc.spec.ports.find((p) => p.name === 'grpc');
  assert.ok(sp, 'Service port "grpc"');
  assert.equal(sp.appProtocol, 'grpc');
  const target = typeof sp.targetPort === 'string'
    ? (pod.containers.flatMap((x) => x.ports || []).find((p) => p.name === sp.targetPort) || {}).containerPort
    : sp.targetPort;
  assert.equal(target, port, 'Service targetPort does not reach the container gRPC port');

  // Environment: every ConfigMap key is a variable the server reads; LISTEN uses the same port.
  assert.equal(c.envFrom.length, 1);
  const cmName = c.envFrom[0].configMapRef.name;
  const cm = byKind(docs, 'ConfigMap').find((x) => x.metadata.name === cmName);
  assert.ok(cm, `ConfigMap ${cmName} referenced by envFrom is not rendered`);
  for (const k of Object.keys(cm.data)) {
    assert.ok(facts.envVars.has(k), `ConfigMap sets ${k}, which blueprint-syncd does not read`);
  }
  checkTencentEndpoint(cm, values, facts);
  if (guardOn) {
    const backend = values.h2Guard.backendPort;
    assert.notEqual(backend, port);
    assert.equal(cm.data.BLUEPRINT_SYNC_LISTEN, `127.0.0.1:${backend}`, 'behind the guard: loopback only');
    checkGuard(guard, c, pod, values, port, backend, Number(cm.data.BLUEPRINT_SYNC_DRAIN_TIMEOUT.replace(/s$/, '')));
  } else {
    assert.equal(cm.data.BLUEPRINT_SYNC_LISTEN, `0.0.0.0:${port}`);
  }
  assert.equal(cm.data.BLUEPRINT_SYNC_HEALTH_LISTEN, healthOn ? `0.0.0.0:${probePort}` : undefined,
    'BLUEPRINT_SYNC_HEALTH_LISTEN must serve the port the probes use');
  assert.ok(!svc0(docs).spec.ports.some((p) => p.targetPort === 'health' || p.port === probePort && healthOn),
    'the health port is for the kubelet, not the Service');

  // TLS: the Secret mounted read-only as a whole (no subPath, so renewals arrive), and
  // the server pointed at its files.
  const mountOf = (file) => c.volumeMounts.find((m) => file.startsWith(`${m.mountPath}/`));
  const tlsVars = ['BLUEPRINT_SYNC_TLS_CERT', 'BLUEPRINT_SYNC_TLS_KEY', 'BLUEPRINT_SYNC_TLS_CLIENT_CA'];
  if (values.tls.enabled) {
    const wantFiles = { BLUEPRINT_SYNC_TLS_CERT: 'tls.crt', BLUEPRINT_SYNC_TLS_KEY: 'tls.key',
                        BLUEPRINT_SYNC_TLS_CLIENT_CA: values.tls.mtls ? 'ca.crt' : undefined };
    for (const v of tlsVars) {
      if (!wantFiles[v]) {
        assert.equal(cm.data[v], undefined, `${v} without tls.mtls`);
        continue;
      }
      const file = cm.data[v];
      assert.ok(file && file.endsWith(`/${wantFiles[v]}`), `${v}=${file}`);
      const m = mountOf(file);
      assert.ok(m, `${v}: nothing mounted at ${file}`);
      assert.equal(m.readOnly, true, `${m.name} must be read-only`);
      assert.equal(m.subPath, undefined, `${m.name}: a subPath mount never sees a renewed certificate`);
      const vol = pod.volumes.find((x) => x.name === m.name);
      assert.ok(vol.secret && vol.secret.secretName === values.tls.secretName, `${v}: not from Secret ${values.tls.secretName}`);
    }
    assert.match(cm.data.BLUEPRINT_SYNC_TLS_RELOAD_INTERVAL, /^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$/);
  } else {
    for (const v of [...tlsVars, 'BLUEPRINT_SYNC_TLS_RELOAD_INTERVAL']) assert.equal(cm.data[v], undefined, v);
  }

  // Authorization policy: a mounted policy.json, only with mTLS.
  if (values.authz.enabled) {
    assert.ok(values.tls.enabled && values.tls.mtls, 'authz without mTLS rendered');
    const file = cm.data.BLUEPRINT_SYNC_AUTHZ_POLICY;
    assert.ok(file && file.endsWith('/policy.json'), `BLUEPRINT_SYNC_AUTHZ_POLICY=${file}`);
    const m = mountOf(file);
    assert.ok(m && m.readOnly === true, 'authz policy mount (read-only)');
    const vol = pod.volumes.find((x) => x.name === m.name);
    if (values.authz.existingSecret) {
      assert.equal(vol.secret.secretName, values.authz.existingSecret);
    } else {
      const name = vol.configMap.name;
      if (values.authz.existingConfigMap) {
        assert.equal(name, values.authz.existingConfigMap);
      } else {
        const policyCm = byKind(docs, 'ConfigMap').find((x) => x.metadata.name === name);
        assert.ok(policyCm, `authz ConfigMap ${name} is not rendered`);
        const policy = JSON.parse(policyCm.data['policy.json']);
        assert.deepEqual(policy, { writers: values.authz.writers, readers: values.authz.readers });
        for (const id of [...policy.writers, ...policy.readers]) {
          assert.match(id, /^(\*|(dns|uri|cn):.+)$/, `identity ${id}`);
        }
        assert.ok(/^[0-9a-f]{64}$/.test(deploy.spec.template.metadata.annotations['checksum/authz']),
          'checksum/authz annotation (the server reads the policy at start)');
      }
    }
  } else {
    assert.equal(cm.data.BLUEPRINT_SYNC_AUTHZ_POLICY, undefined);
  }
  const env = c.env || [];
  const envNamed = (n) => env.filter((e) => e.name === n);
  if (pg) {
    // The URI (it may carry the password) comes from the existing Secret only.
    assert.equal(cm.data.BLUEPRINT_SYNC_STORE, undefined, 'postgres: BLUEPRINT_SYNC_STORE must not be in the ConfigMap');
    for (const v of ['BLUEPRINT_SYNC_STORE', 'BLUEPRINT_SYNC_LEADER_LEASE', 'BLUEPRINT_SYNC_FOLLOW_INTERVAL']) {
      assert.ok(facts.envVars.has(v), `${v} is not read by blueprint-syncd (service/server)`);
    }
    const store = envNamed('BLUEPRINT_SYNC_STORE');
    assert.equal(store.length, 1, 'postgres: exactly one BLUEPRINT_SYNC_STORE env entry');
    assert.deepEqual(store[0].valueFrom, { secretKeyRef: { name: values.store.postgres.existingSecret, key: values.store.postgres.key } },
      'postgres: BLUEPRINT_SYNC_STORE from store.postgres.existingSecret / key');
    assert.equal(store[0].value, undefined);
    assert.ok(facts.postgresPrefixes.includes('postgres://'), 'service/server no longer selects the PostgreSQL store by "postgres://"');
    const pw = envNamed('PGPASSWORD');
    if (values.store.postgres.passwordSecret.name) {
      assert.equal(pw.length, 1);
      assert.deepEqual(pw[0].valueFrom, { secretKeyRef: { name: values.store.postgres.passwordSecret.name,
                                                          key: values.store.postgres.passwordSecret.key } });
    } else {
      assert.equal(pw.length, 0, 'PGPASSWORD without store.postgres.passwordSecret');
    }
    assert.equal(cm.data.BLUEPRINT_SYNC_LEADER_LEASE, values.store.postgres.leaderLease);
    assert.equal(cm.data.BLUEPRINT_SYNC_FOLLOW_INTERVAL, values.store.postgres.followInterval);
    for (const [k, v] of [['leaderLease', 'BLUEPRINT_SYNC_LEADER_LEASE'], ['followInterval', 'BLUEPRINT_SYNC_FOLLOW_INTERVAL']]) {
      const range = facts.ranges[k];
      assert.ok(range, `service/server: range of ${v} not found`);
      const ms = durationMs(cm.data[v]);
      assert.ok(ms >= range[0] && ms <= range[1], `${v}=${cm.data[v]} outside what the server accepts (${range[0]}-${range[1]} ms)`);
    }
  } else {
    assert.equal(cm.data.BLUEPRINT_SYNC_STORE, docker.store, 'store path differs from the image default');
    for (const v of ['BLUEPRINT_SYNC_LEADER_LEASE', 'BLUEPRINT_SYNC_FOLLOW_INTERVAL']) assert.equal(cm.data[v], undefined, `${v} in sqlite mode`);
    assert.equal(envNamed('BLUEPRINT_SYNC_STORE').length + envNamed('PGPASSWORD').length, 0, 'sqlite mode: store env from a Secret');
  }
  // No connection URI in clear in any ConfigMap.
  for (const x of byKind(docs, 'ConfigMap')) {
    for (const [k, v] of Object.entries(x.data || {})) {
      assert.doesNotMatch(String(v), /postgres(ql)?:\/\//, `ConfigMap ${x.metadata.name} ${k} holds a PostgreSQL URI`);
    }
  }
  if (cm.data.BLUEPRINT_SYNC_MIN_POLL_INTERVAL !== undefined) {
    assert.match(cm.data.BLUEPRINT_SYNC_MIN_POLL_INTERVAL, /^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$/, 'MIN_POLL_INTERVAL duration');
  }
  for (const k of ['POLL_INTERVAL', 'JOB_DEADLINE', 'HTTP_TIMEOUT', 'CONNECT_TIMEOUT', 'RECONCILE_GRACE', 'DRAIN_TIMEOUT']) {
    assert.match(cm.data[`BLUEPRINT_SYNC_${k}`], /^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$/, `${k} duration`);
  }
  for (const k of ['MAX_CONNECTION_IDLE', 'MAX_CONNECTION_AGE', 'MAX_CONNECTION_AGE_GRACE', 'DELIVERY_TIMEOUT']) {
    assert.match(cm.data[`BLUEPRINT_SYNC_${k}`], /^(0|([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+)$/, `${k} duration`);
  }
  for (const k of ['WORKERS', 'MAX_MESSAGE_BYTES', 'MAX_CONCURRENT_STREAMS', 'GRPC_MEMORY', 'RESPONSE_BUDGET']) {
    assert.match(cm.data[`BLUEPRINT_SYNC_${k}`], /^[0-9]+$/, `${k} must be a plain integer`);
  }
  for (const k of ['SYNC_RATE', 'DESCRIBE_RATE', 'POLL_BUDGET_SHARE']) {
    assert.match(cm.data[`BLUEPRINT_SYNC_${k}`], /^[0-9]+(\.[0-9]+)?$/, `${k} must be a plain number`);
  }
  assert.ok(/^[0-9a-f]{64}$/.test(deploy.spec.template.metadata.annotations['checksum/config']),
    'checksum/config annotation');

  // The /data mount holds the SQLite file and must be the PVC when persistence is on.
  // postgres mode: nothing on disk but /tmp, whatever persistence.* says.
  const dataMount = pg ? null : c.volumeMounts.find((m) => cm.data.BLUEPRINT_SYNC_STORE.startsWith(`sqlite:${m.mountPath}/`));
  assert.ok(pg || dataMount, 'no volume mounted where BLUEPRINT_SYNC_STORE points');
  const dataVol = dataMount && pod.volumes.find((v) => v.name === dataMount.name);
  if (pg) {
    assert.equal(byKind(docs, 'PersistentVolumeClaim').length, 0, 'postgres: no PVC');
    assert.ok(!pod.volumes.some((v) => v.persistentVolumeClaim), 'postgres: no claim mounted');
    assert.ok(!c.volumeMounts.some((m) => m.mountPath === '/data'), 'postgres: no /data volume');
  } else if (values.persistence.enabled) {
    assert.ok(dataVol.persistentVolumeClaim, 'persistence on: data must be a PVC');
    const claim = dataVol.persistentVolumeClaim.claimName;
    if (values.persistence.existingClaim) {
      assert.equal(claim, values.persistence.existingClaim);
      assert.equal(byKind(docs, 'PersistentVolumeClaim').length, 0);
    } else {
      const pvc = one(docs, 'PersistentVolumeClaim');
      assert.equal(pvc.metadata.name, claim);
      assert.deepEqual(pvc.spec.accessModes, ['ReadWriteOnce']);
    }
  } else {
    assert.ok(dataVol.emptyDir, 'persistence off: data is an emptyDir');
    assert.equal(byKind(docs, 'PersistentVolumeClaim').length, 0);
  }
  const tmp = c.volumeMounts.find((m) => m.mountPath === '/tmp');
  assert.ok(tmp && pod.volumes.find((v) => v.name === tmp.name).emptyDir, '/tmp must be a writable emptyDir');

  // Restricted security context, with the image's uid.
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.equal(pod.securityContext.runAsUser, docker.uid, 'pod uid != Dockerfile uid');
  assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault');
  const sc = c.securityContext;
  assert.equal(sc.runAsNonRoot, true);
  assert.equal(sc.runAsUser, docker.uid);
  assert.equal(sc.readOnlyRootFilesystem, true);
  assert.equal(sc.allowPrivilegeEscalation, false);
  assert.ok(sc.capabilities.drop.includes('ALL'), 'capabilities.drop ALL');
  assert.equal(sc.capabilities.add, undefined);
  assert.equal(sc.seccompProfile.type, 'RuntimeDefault');
  assert.equal(pod.automountServiceAccountToken, false);

  // Graceful shutdown: the kubelet waits for preStop + the server's drain.
  const drain = Number(cm.data.BLUEPRINT_SYNC_DRAIN_TIMEOUT.replace(/s$/, ''));
  const ps = c.lifecycle.preStop;
  const sleep = ps.sleep ? ps.sleep.seconds : Number(ps.exec.command[ps.exec.command.length - 1]);
  assert.ok(sleep > 0, 'preStop delay');
  assert.ok(pod.terminationGracePeriodSeconds >= sleep + drain + 5,
    `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} < preStop ${sleep} + drain ${drain} + 5`);
  assert.ok(c.livenessProbe.periodSeconds * c.livenessProbe.failureThreshold > drain,
    'liveness would restart a draining pod');

  // Credentials: only variables the credential chain reads, from the right Secret.
  const storeEnv = pg ? ['BLUEPRINT_SYNC_STORE', 'PGPASSWORD'] : [];
  const secretEnv = env.filter((e) => e.valueFrom && e.valueFrom.secretKeyRef && !storeEnv.includes(e.name));
  const cred = values.credentials;
  // A chart-created Secret is keyed by the variable names; an existing one by existingSecretKeys.
  const keyOf = cred.existingSecret
    ? { TENCENTCLOUD_SECRET_ID: cred.existingSecretKeys.secretId, TENCENTCLOUD_SECRET_KEY: cred.existingSecretKeys.secretKey,
        TENCENTCLOUD_SESSION_TOKEN: cred.existingSecretKeys.sessionToken }
    : { TENCENTCLOUD_SECRET_ID: 'TENCENTCLOUD_SECRET_ID', TENCENTCLOUD_SECRET_KEY: 'TENCENTCLOUD_SECRET_KEY' };
  for (const e of secretEnv) {
    assert.ok(facts.credentialEnv.has(e.name), `${e.name} is not read by the credential chain`);
    assert.equal(e.valueFrom.secretKeyRef.key, keyOf[e.name], `${e.name}: key in the Secret`);
  }
  const secrets = byKind(docs, 'Secret');
  if (cred.existingSecret) {
    assert.equal(secrets.length, 0, 'existingSecret: the chart must not create a Secret');
    const names = ['TENCENTCLOUD_SECRET_ID', 'TENCENTCLOUD_SECRET_KEY',
                   ...(cred.existingSecretKeys.sessionToken ? ['TENCENTCLOUD_SESSION_TOKEN'] : [])];
    assert.deepEqual(secretEnv.map((e) => e.name), names, 'existingSecret: the key, and the token when its key is set');
    assert.ok(secretEnv.every((e) => e.valueFrom.secretKeyRef.name === cred.existingSecret));
  } else if (cred.secretId) {
    const s = one(docs, 'Secret');
    assert.deepEqual(Object.keys(s.data).sort(), ['TENCENTCLOUD_SECRET_ID', 'TENCENTCLOUD_SECRET_KEY']);
    assert.equal(Buffer.from(s.data.TENCENTCLOUD_SECRET_KEY, 'base64').toString(), cred.secretKey);
    assert.deepEqual(secretEnv.map((e) => e.valueFrom.secretKeyRef.name), [s.metadata.name, s.metadata.name]);
    assert.ok(/^[0-9a-f]{64}$/.test(deploy.spec.template.metadata.annotations['checksum/secret']),
      'checksum/secret annotation');
  } else {
    assert.equal(secrets.length, 0);
    assert.equal(secretEnv.length, 0, 'no credentials configured: no secret env');
  }
  for (const e of env) {
    if (pg && e.name === 'BLUEPRINT_SYNC_STORE') continue; // from the Secret, checked above
    assert.ok(!facts.envVars.has(e.name), `${e.name} set outside the ConfigMap`);
  }
  // Secrets never sit in the ConfigMap.
  assert.ok(!Object.keys(cm.data).some((k) => k.startsWith('TENCENTCLOUD_')));

  // ServiceAccount and its annotations (TKE workload identity).
  const saName = pod.serviceAccountName;
  if (values.serviceAccount.create) {
    const sa = one(docs, 'ServiceAccount');
    assert.equal(sa.metadata.name, saName);
    assert.deepEqual(sa.metadata.annotations || {}, values.serviceAccount.annotations);
  }

  // Metrics plumbing only when asked for; the ServiceMonitor also needs the CRD's API.
  const metricsPorts = [...c.ports, ...svc.spec.ports].filter((p) => p.name === 'metrics');
  assert.equal(metricsPorts.length, values.metrics.enabled ? 2 : 0, 'metrics ports');
  const sms = byKind(docs, 'ServiceMonitor');
  const wantSM = values.metrics.enabled && values.metrics.serviceMonitor.enabled && r.apiVersions.includes(MONITORING);
  assert.equal(sms.length, wantSM ? 1 : 0, 'ServiceMonitor presence');
  if (wantSM) {
    assert.ok(subset(sms[0].spec.selector.matchLabels, svc.metadata.labels), 'ServiceMonitor selects the Service');
    const ep = sms[0].spec.endpoints[0];
    assert.equal(ep.port, 'metrics');
    const sm = values.metrics.serviceMonitor;
    assert.deepEqual(ep.relabelings || [], sm.relabelings, 'ServiceMonitor relabelings from values');
    assert.deepEqual(ep.metricRelabelings || [], sm.metricRelabelings, 'ServiceMonitor metricRelabelings from values');
  }
  checkPrometheusRule(r, facts, svc, pg);

  // Image: [global.imageRegistry || image.registry /]repository, then @digest or :tag.
  const registry = (values.global && values.global.imageRegistry) || values.image.registry;
  const repo = registry ? `${registry.replace(/\/$/, '')}/${values.image.repository}` : values.image.repository;
  const wantImage = values.image.digest ? `${repo}@${values.image.digest}` : `${repo}:${values.image.tag || chartYaml().appVersion}`;
  for (const x of pod.containers) assert.equal(x.image, wantImage, `${x.name}: image`);

  // Topology spread: null = derived (postgres with several replicas: zones, soft); a list
  // is passed through, each item selecting this release's pods unless it says otherwise.
  const selector = { matchLabels: deploy.spec.selector.matchLabels };
  let wantSpread = values.topologySpreadConstraints;
  if (wantSpread === null) {
    wantSpread = pg && values.replicaCount > 1
      ? [{ maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: selector }]
      : [];
  } else {
    wantSpread = wantSpread.map((c) => ({ labelSelector: selector, ...c }));
  }
  assert.deepEqual(pod.topologySpreadConstraints || [], wantSpread, 'topologySpreadConstraints');
  for (const c of pod.topologySpreadConstraints || []) {
    if (c.labelSelector && c.labelSelector.matchLabels) {
      assert.ok(subset(c.labelSelector.matchLabels, podLabels), 'a spread constraint that does not select the pods does nothing');
    }
  }

  checkTestPod(r, facts, deploy, svc, c);
  checkCliEnv(r, facts, c, pod, port);

  // NetworkPolicy: selects the pod, admits the gRPC port, allows DNS and HTTPS out.
  const nps = byKind(docs, 'NetworkPolicy');
  assert.equal(nps.length, values.networkPolicy.enabled ? 1 : 0);
  if (nps.length) {
    const np = nps[0];
    assert.ok(subset(np.spec.podSelector.matchLabels, podLabels));
    assert.ok(np.spec.ingress.some((rule) => rule.ports.some((p) => p.port === port && p.protocol === 'TCP')));
    if (healthOn) {
      assert.ok(np.spec.ingress.some((rule) => rule.ports.some((p) => p.port === probePort && p.protocol === 'TCP')),
        'NetworkPolicy must admit the health port');
    }
    const egressPorts = np.spec.egress.flatMap((rule) => rule.ports || []).map((p) => `${p.protocol}/${p.port}`);
    if (values.networkPolicy.allowDNS) assert.ok(egressPorts.includes('UDP/53') && egressPorts.includes('TCP/53'));
    if (values.networkPolicy.allowHTTPS) assert.ok(egressPorts.includes('TCP/443'));
    const u = new URL(lighthouseEndpoint(values).replace('{region}', 'ap-guangzhou'));
    const upstream = u.port || (u.protocol === 'http:' ? '80' : '443');
    assert.ok(egressPorts.includes(`TCP/${upstream}`), `egress to the Lighthouse endpoint port ${upstream}`);
    // The CVM metadata service (the credential chain's last resort) when no static key is
    // given, or when asked for.
    const md = values.networkPolicy.cvmMetadata;
    const wantMetadata = md.enabled === true || (md.enabled === null && !cred.existingSecret && !cred.secretId);
    const mdRules = np.spec.egress.filter((x) => (x.to || []).some((t) => t.ipBlock && t.ipBlock.cidr === md.cidr));
    assert.equal(mdRules.length, wantMetadata ? 1 : 0, 'egress to the CVM metadata service');
    if (wantMetadata) {
      assert.deepEqual(mdRules[0], { ports: [{ port: 80, protocol: 'TCP' }], to: [{ ipBlock: { cidr: md.cidr } }] });
      // The address the server's CVM role provider calls, by name, on port 80.
      const cvm = fs.readFileSync(path.join(REPO, 'service', 'tencent', 'cvm_role_credentials.h'), 'utf8');
      assert.match(cvm, /"http:\/\/metadata\.tencentyun\.com\/latest\/meta-data\/cam\/security-credentials\/"/);
    }
    // A restricted gRPC port still admits this release's helm test Pod.
    const testPod = byKind(docs, 'Pod')[0];
    const grpcRule = np.spec.ingress.find((rule) => rule.ports.some((p) => p.port === port));
    if (testPod && grpcRule.from) {
      assert.ok(grpcRule.from.some((peer) => peer.podSelector && !peer.namespaceSelector
        && subset(peer.podSelector.matchLabels, testPod.metadata.labels)), 'NetworkPolicy blocks the helm test Pod');
    }
    if (pg) {
      const rule = np.spec.egress.find((x) => (x.ports || []).some((p) => p.port === values.store.postgres.port && p.protocol === 'TCP'));
      assert.ok(rule, `postgres: egress to the database port ${values.store.postgres.port}`);
      assert.deepEqual(rule.to || [], values.store.postgres.networkPolicyTo, 'postgres: egress peers from store.postgres.networkPolicyTo');
    }
  }

  // PodDisruptionBudget: pdb.create true, or auto in postgres mode with several replicas
  // (see values.yaml). In postgres mode it keeps minAvailable replicas and selects exactly
  // the Deployment's pods; it must leave room for an eviction.
  const pdbs = byKind(docs, 'PodDisruptionBudget');
  const wantPdb = values.pdb.create === true || (values.pdb.create === 'auto' && pg && values.replicaCount > 1);
  assert.equal(pdbs.length, wantPdb ? 1 : 0, 'PodDisruptionBudget presence');
  if (wantPdb) {
    const pdb = pdbs[0];
    assert.deepEqual(pdb.spec.selector.matchLabels, deploy.spec.selector.matchLabels, 'PDB selector != Deployment selector');
    assert.ok(subset(pdb.spec.selector.matchLabels, podLabels), 'PDB does not select the pods');
    if (pg) {
      assert.equal(pdb.spec.maxUnavailable, undefined);
      assert.equal(pdb.spec.minAvailable, values.pdb.minAvailable, 'postgres: PDB minAvailable');
      if (typeof pdb.spec.minAvailable === 'number') {
        assert.ok(pdb.spec.minAvailable >= 1 && pdb.spec.minAvailable < deploy.spec.replicas,
          `PDB minAvailable ${pdb.spec.minAvailable} with ${deploy.spec.replicas} replicas: no drain could proceed`);
      }
      const minor = Number(r.kubeVersion.replace(/^v/, '').split('.')[1]);
      assert.equal(pdb.spec.unhealthyPodEvictionPolicy,
        values.pdb.unhealthyPodEvictionPolicy && minor >= 27 ? values.pdb.unhealthyPodEvictionPolicy : undefined,
        'unhealthyPodEvictionPolicy (Kubernetes >= 1.27 only)');
    } else {
      assert.equal(pdb.spec.minAvailable, undefined);
      assert.equal(pdb.spec.maxUnavailable, values.pdb.maxUnavailable);
    }
  }

  // postgres mode: replicas spread over nodes unless affinity is given.
  if (pg && Object.keys(values.affinity).length === 0) {
    const anti = (pod.affinity || {}).podAntiAffinity || {};
    const terms = anti.preferredDuringSchedulingIgnoredDuringExecution || [];
    assert.ok(terms.some((t) => t.podAffinityTerm.topologyKey === 'kubernetes.io/hostname'
      && subset(t.podAffinityTerm.labelSelector.matchLabels, podLabels)
      && subset(deploy.spec.selector.matchLabels, t.podAffinityTerm.labelSelector.matchLabels)),
      'postgres: preferred pod anti-affinity by hostname across the replicas');
  } else if (Object.keys(values.affinity).length === 0) {
    assert.equal(pod.affinity, undefined, 'sqlite: no default affinity');
  } else {
    assert.deepEqual(pod.affinity, values.affinity);
  }

  // NOTES: how to reach it, and why one replica.
  const svcPort = sp.port;
  assert.match(r.notes, new RegExp(`port-forward svc/${svc.metadata.name} ${svcPort}:${svcPort}`));
  assert.match(r.notes, /grpc\.health\.v1\.Health\/Check/);
  if (values.tls.enabled) {
    assert.match(r.notes, values.tls.mtls ? /grpcurl -cacert ca\.crt -cert client\.crt -key client\.key .*127\.0\.0\.1:\d+ list/
      : /grpcurl -cacert ca\.crt .*127\.0\.0\.1:\d+ list/);
    assert.doesNotMatch(r.notes, /-plaintext/, 'NOTES suggest plaintext against a TLS port');
  } else {
    assert.match(r.notes, /grpcurl -plaintext 127\.0\.0\.1:\d+ list/);
  }
  assert.match(r.notes, /blueprintsync\.v1\.BlueprintSync\/SyncBlueprint/);
  if (pg) {
    assert.match(r.notes, new RegExp(`${values.replicaCount} replicas? share one PostgreSQL job store`));
    assert.match(r.notes, new RegExp(`Secret ${values.store.postgres.existingSecret}, key ${values.store.postgres.key}`));
    assert.doesNotMatch(r.notes, /One replica, Recreate strategy/);
  } else {
    assert.match(r.notes, /One replica, Recreate strategy/);
  }
  const pods = byKind(docs, 'Pod');
  if (pods.length) assert.match(r.notes, new RegExp(`helm test ${r.name} -n images`));
  const prs = byKind(docs, 'PrometheusRule');
  if (prs.length && !values.metrics.serviceMonitor.enabled) assert.match(r.notes, /BlueprintSyncAbsent fires/);
}

let chartYamlCache;
function chartYaml() {
  if (!chartYamlCache) chartYamlCache = require('yaml').parse(fs.readFileSync(path.join(CHART, 'Chart.yaml'), 'utf8'));
  return chartYamlCache;
}

// PrometheusRule: only with metrics on, the rule asked for and the operator's API; it
// selects the series by the job label the ServiceMonitor's scrape sets (the Service's name)
// and names only metrics the server exports; promtool accepts its groups.
function checkPrometheusRule(r, facts, svc, pg) {
  const values = r.values;
  const rules = byKind(r.docs, 'PrometheusRule');
  const want = values.metrics.enabled && values.metrics.prometheusRule.enabled && r.apiVersions.includes(MONITORING);
  assert.equal(rules.length, want ? 1 : 0, 'PrometheusRule presence');
  if (!want) return;
  const pr = rules[0];
  assert.equal(pr.metadata.namespace, values.metrics.prometheusRule.namespace || 'images');
  assert.ok(subset(values.metrics.prometheusRule.labels, pr.metadata.labels), 'PrometheusRule labels from values');
  const all = pr.spec.groups.flatMap((g) => g.rules);
  const own = all.filter((x) => !values.metrics.prometheusRule.extraRules.some((e) => e.alert === x.alert));
  const alerts = own.map((x) => x.alert);
  for (const a of ['BlueprintSyncTargetDown', 'BlueprintSyncAbsent', 'BlueprintSyncStoreUnhealthy', 'BlueprintSyncJobsFailing',
                   'BlueprintSyncUpstreamThrottled', 'BlueprintSyncCredentialsRefreshFailing']) {
    assert.ok(alerts.includes(a), `alert ${a} missing`);
  }
  assert.equal(alerts.includes('BlueprintSyncNoLeader'), Boolean(pg), 'NoLeader alert in postgres mode only');
  for (const x of all) {
    for (const name of String(x.expr).match(/\b[a-z_]+(?=\s*\{)/g) || []) {
      if (['up', 'absent', 'sum', 'rate', 'increase', 'by', 'max', 'min'].includes(name)) continue;
      const base = name.replace(/_(bucket|sum|count)$/, '');
      assert.ok(facts.metricNames.has(name) || facts.metricNames.has(base),
        `${x.alert}: ${name} is not a series blueprint-syncd exports (service/metrics/metrics.cc)`);
    }
  }
  for (const x of own) {
    assert.ok(x.expr.includes(`job="${svc.metadata.name}", namespace="images"`), `${x.alert}: not scoped to this release: ${x.expr}`);
    assert.ok(['critical', 'warning'].includes(x.labels.severity), `${x.alert}: severity`);
    assert.ok(subset(values.metrics.prometheusRule.alertLabels, x.labels), `${x.alert}: alertLabels`);
    assert.ok(x.annotations.summary && x.annotations.description, `${x.alert}: summary and description`);
  }
  // promtool (Debian package prometheus) parses the groups as a Prometheus rule file.
  const file = path.join(WORK, `${r.id}.rules.json`);
  fs.writeFileSync(file, JSON.stringify({ groups: pr.spec.groups }, null, 2));
  const res = childProcess.spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
  assert.ok(!res.error, `promtool not runnable (${res.error}): run scripts/install-deps (package prometheus)`);
  assert.equal(res.status, 0, `promtool check rules:\n${res.stdout}${res.stderr}`);
  assert.match(res.stdout, new RegExp(`SUCCESS: ${all.length} rules found`));
}

// The Lighthouse endpoint the server will call: named outright, or derived as the server
// derives it (service/tencent/lighthouse_client.cc LighthouseEndpointFor).
function lighthouseEndpoint(values) {
  const s = values.server;
  if (s.lighthouseEndpoint) return s.lighthouseEndpoint;
  if (s.tencentEndpointStyle === 'regional') return 'https://lighthouse.{region}.tencentcloudapi.com';
  return s.tencentSite === 'intl' ? 'https://lighthouse.intl.tencentcloudapi.com' : 'https://lighthouse.tencentcloudapi.com';
}

// Site, endpoint style and region refresh: one form of the endpoint only (the server refuses
// an endpoint beside a site or style that is set at all), values the server accepts.
function checkTencentEndpoint(cm, values, facts) {
  const s = values.server;
  const d = cm.data;
  if (s.lighthouseEndpoint) {
    assert.equal(d.BLUEPRINT_SYNC_LIGHTHOUSE_ENDPOINT, s.lighthouseEndpoint);
    assert.equal(d.BLUEPRINT_SYNC_TENCENT_SITE, undefined, 'a site beside an explicit endpoint stops the server');
    assert.equal(d.BLUEPRINT_SYNC_TENCENT_ENDPOINT_STYLE, undefined, 'a style beside an explicit endpoint stops the server');
  } else {
    assert.equal(d.BLUEPRINT_SYNC_LIGHTHOUSE_ENDPOINT, undefined, 'an empty endpoint is still "set" for the server');
    assert.equal(d.BLUEPRINT_SYNC_TENCENT_SITE, s.tencentSite, 'BLUEPRINT_SYNC_TENCENT_SITE from server.tencentSite');
    assert.equal(d.BLUEPRINT_SYNC_TENCENT_ENDPOINT_STYLE, s.tencentEndpointStyle,
      'BLUEPRINT_SYNC_TENCENT_ENDPOINT_STYLE from server.tencentEndpointStyle');
    assert.ok(facts.tencent.site.includes(d.BLUEPRINT_SYNC_TENCENT_SITE), `site ${d.BLUEPRINT_SYNC_TENCENT_SITE} not in ${facts.tencent.site}`);
    assert.ok(facts.tencent.style.includes(d.BLUEPRINT_SYNC_TENCENT_ENDPOINT_STYLE),
      `endpoint style ${d.BLUEPRINT_SYNC_TENCENT_ENDPOINT_STYLE} not in ${facts.tencent.style}`);
  }
  const r = d.BLUEPRINT_SYNC_REGION_REFRESH_INTERVAL;
  assert.equal(r, String(s.regionRefreshInterval), 'BLUEPRINT_SYNC_REGION_REFRESH_INTERVAL from server.regionRefreshInterval');
  const ms = r === '0' ? 0 : durationMs(r);
  const [lo, hi] = facts.ranges.regionRefresh;
  assert.ok(ms === 0 || (ms >= 1000 && ms >= lo && ms <= hi), `BLUEPRINT_SYNC_REGION_REFRESH_INTERVAL=${r} outside 0 | 1s-${hi} ms`);
}

// The name the chart's TLS clients verify: tls.serverName, or the Service's DNS name.
const tlsServerName = (values, svc) => values.tls.serverName || `${svc.metadata.name}.images.svc`;

// The CLI in the server container: its own variables (never a server setting), pointed at
// this pod's gRPC port, and with TLS at a CA file that is really mounted there.
function checkCliEnv(r, facts, c, pod, port) {
  const values = r.values;
  const svc = svc0(r.docs);
  for (const v of facts.cliEnv) {
    assert.ok(!facts.envVars.has(v), `${v} is read by both the CLI and blueprint-syncd: setting it for one changes the other`);
  }
  const env = Object.fromEntries((c.env || []).filter((e) => facts.cliEnv.has(e.name)).map((e) => [e.name, e.value]));
  const want = { BLUEPRINT_SYNC_SERVER: `127.0.0.1:${port}` };
  if (values.tls.enabled) {
    if (values.tls.caKey) want.BLUEPRINT_SYNC_CACERT = `/etc/blueprint-sync/tls/${values.tls.caKey}`;
    else want.BLUEPRINT_SYNC_TLS = 'true';
    want.BLUEPRINT_SYNC_SERVER_NAME = tlsServerName(values, svc);
  }
  assert.deepEqual(env, want, 'CLI environment in the server container');
  if (want.BLUEPRINT_SYNC_CACERT) {
    const m = c.volumeMounts.find((x) => want.BLUEPRINT_SYNC_CACERT.startsWith(`${x.mountPath}/`));
    assert.ok(m, `BLUEPRINT_SYNC_CACERT: nothing mounted at ${want.BLUEPRINT_SYNC_CACERT}`);
    const vol = pod.volumes.find((x) => x.name === m.name);
    assert.ok(vol.secret && vol.secret.secretName === values.tls.secretName && !vol.secret.items,
      'BLUEPRINT_SYNC_CACERT: not the whole TLS Secret');
  }
  if (values.tls.enabled) {
    assert.match(r.notes, /exec deploy\/\S+ -c blueprint-syncd -- blueprint-sync list/, 'NOTES: the in-pod CLI');
  }
}

// The `helm test` Pod: a hook that runs the image's CLI against the Service, as restricted
// as the server, never selected by the release's own selectors. With TLS it trusts only the
// CA key of the server's Secret and checks the server name; with mTLS it needs
// helmTest.clientCertSecret (no Pod, and a NOTE saying why, without one).
function checkTestPod(r, facts, deploy, svc, server) {
  const values = r.values;
  const pods = byKind(r.docs, 'Pod');
  const tls = values.tls.enabled;
  const client = tls && values.tls.mtls ? values.helmTest.clientCertSecret : '';
  const needsClient = tls && values.tls.mtls && !client;
  assert.equal(pods.length, values.helmTest.enabled && !needsClient ? 1 : 0, 'helm test Pod presence');
  assert.equal(/NOTE: no helm test Pod: tls\.mtls requires a client certificate/.test(r.notes),
    values.helmTest.enabled && needsClient, 'NOTES explain a missing helm test exactly when mTLS left it out');
  if (!pods.length) return;
  const p = pods[0];
  assert.equal(p.metadata.annotations['helm.sh/hook'], 'test');
  assert.equal(p.spec.restartPolicy, 'Never');
  assert.equal(p.spec.automountServiceAccountToken, false);
  for (const [what, sel] of [['Service', svc.spec.selector], ['Deployment', deploy.spec.selector.matchLabels],
    ...byKind(r.docs, 'PodDisruptionBudget').map((x) => ['PDB', x.spec.selector.matchLabels]),
    ...byKind(r.docs, 'NetworkPolicy').map((x) => ['NetworkPolicy', x.spec.podSelector.matchLabels])]) {
    assert.ok(!subset(sel, p.metadata.labels), `the ${what} selects the helm test Pod`);
  }
  assert.deepEqual(p.spec.securityContext, deploy.spec.template.spec.securityContext);
  const [t] = p.spec.containers;
  assert.equal(p.spec.containers.length, 1);
  assert.equal(t.image, server.image, 'the test runs the deployed image');
  assert.deepEqual(t.securityContext, server.securityContext);
  assert.deepEqual(t.command, ['/usr/local/bin/blueprint-sync']);
  const df = fs.readFileSync(path.join(REPO, 'deploy', 'docker', 'Dockerfile'), 'utf8');
  assert.match(df, /COPY --from=build .*build\/bin\/blueprint-sync .*\/usr\/local\/bin\//, 'the image ships the CLI at /usr/local/bin');
  const port = svc.spec.ports.find((x) => x.name === 'grpc').port;
  const tlsArgs = [];
  if (tls) {
    tlsArgs.push(values.tls.caKey ? '--cacert=/etc/blueprint-sync/server-ca/ca.crt' : '--tls');
    tlsArgs.push(`--server-name=${tlsServerName(values, svc)}`);
  }
  if (client) tlsArgs.push('--cert=/etc/blueprint-sync/client/tls.crt', '--key=/etc/blueprint-sync/client/tls.key');
  assert.deepEqual(t.args, [`--server=${svc.metadata.name}.images.svc:${port}`, `--timeout=${values.helmTest.timeout}`,
                            ...tlsArgs, 'list', '--page-size=1']);
  // Every file a flag names is mounted read-only from the right Secret key, and the server's
  // private key (tls.key of tls.secretName) never reaches the test Pod.
  const vols = Object.fromEntries((p.spec.volumes || []).map((v) => [v.name, v]));
  for (const a of t.args.filter((x) => /^--(cacert|cert|key)=/.test(x))) {
    const file = a.split('=')[1];
    const m = (t.volumeMounts || []).find((x) => file.startsWith(`${x.mountPath}/`));
    assert.ok(m && m.readOnly === true, `${a}: no read-only mount`);
    const v = vols[m.name];
    const item = v.secret.items.find((i) => i.path === file.slice(m.mountPath.length + 1));
    assert.ok(item, `${a}: the mounted Secret has no item at that path`);
    if (a.startsWith('--cacert')) {
      assert.equal(v.secret.secretName, values.tls.secretName, '--cacert from tls.secretName');
      assert.equal(item.key, values.tls.caKey, '--cacert from tls.caKey');
    } else {
      assert.equal(v.secret.secretName, client, `${a} from helmTest.clientCertSecret`);
      assert.equal(item.key, a.startsWith('--cert') ? 'tls.crt' : 'tls.key');
    }
  }
  for (const v of Object.values(vols)) {
    if (v.secret && v.secret.secretName === values.tls.secretName) {
      assert.ok(v.secret.items && v.secret.items.every((i) => i.key === values.tls.caKey),
        'the helm test Pod mounts more of the server\'s TLS Secret than its CA');
    }
  }
  assert.equal(Object.keys(vols).length, (tls && values.tls.caKey ? 1 : 0) + (client ? 1 : 0), 'helm test volumes');
  for (const a of t.args.filter((x) => x.startsWith('--'))) {
    assert.ok(facts.cliFlags.has(a.slice(2).split('=')[0]), `the CLI has no flag ${a}`);
  }
  assert.ok(facts.cliCommands.has('list'));
}

// The nghttpx sidecar: the image's nghttpx (runtime-packages.txt), no configuration file,
// plaintext h2 on the gRPC port, h2 to blueprint-syncd on loopback, the server's stream
// limit, the same restricted security context, and a graceful stop that lasts the drain.
function checkGuard(guard, c, pod, values, port, backend, drain) {
  assert.equal(guard.name, 'h2-guard');
  assert.equal(guard.image, c.image, 'the guard runs from the same image');
  const packages = fs.readFileSync(path.join(REPO, 'deploy', 'docker', 'runtime-packages.txt'), 'utf8');
  assert.match(packages, /^nghttp2-proxy\b/m, 'runtime-packages.txt must install nghttp2-proxy (nghttpx)');
  assert.deepEqual(guard.command, ['/usr/sbin/nghttpx']);
  const args = guard.args;
  for (const want of ['--conf=/dev/null', `--frontend=*,${port};no-tls`, `--backend=127.0.0.1,${backend};;proto=h2`,
                      `--workers=${values.h2Guard.workers}`,
                      `--worker-frontend-connections=${values.h2Guard.maxConnections}`,
                      `--frontend-http2-max-concurrent-streams=${values.server.maxConcurrentStreams}`]) {
    assert.ok(args.includes(want), `h2-guard args lack ${want}: ${JSON.stringify(args)}`);
  }
  assert.deepEqual(guard.ports, [{ name: 'grpc', containerPort: port, protocol: 'TCP' }]);
  assert.deepEqual(guard.securityContext, c.securityContext, 'the guard must be as restricted as the server');
  assert.equal(guard.livenessProbe.tcpSocket.port, port);
  const cmd = guard.lifecycle.preStop.exec.command;
  assert.equal(cmd[0], '/bin/sh');
  const m = cmd[2].match(/^sleep (\d+); kill -QUIT 1; sleep (\d+)$/);
  assert.ok(m, `h2-guard preStop: ${cmd[2]}`);
  assert.equal(Number(m[2]), drain, 'the guard stops gracefully for as long as the server drains');
  assert.ok(Number(m[1]) + Number(m[2]) < pod.terminationGracePeriodSeconds, 'guard preStop outlasts the grace period');
  if (values.h2Guard.resources) assert.deepEqual(guard.resources, values.h2Guard.resources);
}

// ---------------------------------------------------------------------------

// More postgres settings (lists and maps, which --set cannot express); written in before().
const POSTGRES_EXTRA = path.join(WORK, 'postgres-extra-values.yaml');
const POSTGRES_EXTRA_VALUES = {
  store: { postgres: { passwordSecret: { name: 'blueprint-sync-db-password', key: 'password' }, networkPolicyTo: [] } },
  affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [
    { topologyKey: 'topology.kubernetes.io/zone', labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'blueprint-sync' } } },
  ] } },
};

const ciFiles = fs.existsSync(path.join(CHART, 'ci'))
  ? fs.readdirSync(path.join(CHART, 'ci')).filter((f) => f.endsWith('-values.yaml')).sort() : [];
const CASES = [
  { label: 'defaults' },
  { label: 'defaults with the Prometheus Operator API', apiVersions: [MONITORING] },
  { label: 'release name longer than 63 characters', name: `r${'x'.repeat(70)}` },
  ...ciFiles.flatMap((f) => [
    { label: `ci/${f}`, files: [path.join(CHART, 'ci', f)] },
    { label: `ci/${f} with the Prometheus Operator API`, files: [path.join(CHART, 'ci', f)], apiVersions: [MONITORING] },
  ]),
  { label: 'postgres on Kubernetes 1.26 (no unhealthyPodEvictionPolicy)', kubeVersion: 'v1.26.3',
    files: [path.join(CHART, 'ci', 'postgres-values.yaml')] },
  { label: 'postgres, password from its own Secret, TLS, own affinity, any database address, 2 replicas',
    files: [path.join(CHART, 'ci', 'postgres-values.yaml'), path.join(CHART, 'ci', 'mtls-values.yaml'), POSTGRES_EXTRA],
    sets: ['replicaCount=2'] },
  { label: 'postgres with one replica (no PDB) and pdb.create false',
    sets: ['store.type=postgres', 'store.postgres.existingSecret=db', 'pdb.create=false'] },
  { label: 'h2Guard off (the server on the gRPC port itself)', sets: ['h2Guard.enabled=false'] },
  { label: 'h2Guard on with the health port and other ports', sets: ['healthPort.enabled=true', 'h2Guard.backendPort=6000',
    'h2Guard.workers=2', 'server.maxConcurrentStreams=50'] },
  { label: 'TLS without mTLS, a publicly trusted certificate (system roots) for another name',
    sets: ['tls.enabled=true', 'tls.secretName=grpc-example-com', 'tls.caKey=', 'tls.serverName=grpc.example.com'] },
  { label: 'TLS without mTLS, cert-manager CA', sets: ['tls.enabled=true', 'tls.secretName=bps-tls'] },
  { label: 'mTLS without a client certificate for the helm test: no test Pod, a NOTE',
    files: [path.join(CHART, 'ci', 'mtls-values.yaml')], sets: ['helmTest.clientCertSecret='] },
  { label: 'an endpoint named outright (the emulator): no site or style rendered',
    sets: ['server.lighthouseEndpoint=http://lighthouse-emulator.test.svc:8080'] },
  { label: 'postgres with one replica: auto makes no PDB',
    sets: ['store.type=postgres', 'store.postgres.existingSecret=db'] },
];

describe('helm chart blueprint-sync', () => {
  let facts;
  let docker;
  const rendered = [];

  before(() => {
    requireTooling();
    fs.mkdirSync(WORK, { recursive: true });
    fs.writeFileSync(POSTGRES_EXTRA, `${JSON.stringify(POSTGRES_EXTRA_VALUES, null, 2)}\n`); // JSON is YAML
    setUpTypeScriptDir();
    facts = serverFacts();
    docker = dockerFacts();
  });

  test('ci/ has the example values files', () => {
    for (const f of ['static-secret-values.yaml', 'tke-identity-values.yaml', 'metrics-values.yaml', 'mtls-values.yaml',
                     'postgres-values.yaml', 'tencent-intl-values.yaml']) {
      assert.ok(ciFiles.includes(f), `ci/${f} missing`);
    }
  });

  test('defaults agree with the server and the image', () => {
    assert.equal(facts.drainDefaultSeconds,
      Number(fs.readFileSync(path.join(CHART, 'values.yaml'), 'utf8').match(/^\s*drainTimeoutSeconds:\s*(\d+)/m)[1]),
      'values.yaml server.drainTimeoutSeconds differs from the server default');
    assert.equal(docker.port, 50051);
    const r = render();
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.values.server.port, docker.port, 'default port differs from the Dockerfile EXPOSE');
    // The metrics port: one default everywhere, and not 9090 (the Prometheus server's own, so
    // a sidecar or a host-network Prometheus would collide with it).
    const serverMetrics = serverSources().match(/"BLUEPRINT_SYNC_METRICS_LISTEN",\s*"0\.0\.0\.0:(\d+)"/);
    assert.ok(serverMetrics, 'service/server: default of BLUEPRINT_SYNC_METRICS_LISTEN not found');
    const metricsPort = Number(serverMetrics[1]);
    assert.notEqual(metricsPort, 9090, 'the server metrics port defaults to the Prometheus server\'s 9090');
    assert.equal(r.values.metrics.port, metricsPort, 'values.yaml metrics.port differs from the server default');
    const exposed = [...fs.readFileSync(path.join(REPO, 'deploy', 'docker', 'Dockerfile'), 'utf8')
      .matchAll(/^EXPOSE\s+(\d+)/gm)].map((m) => Number(m[1]));
    assert.ok(exposed.includes(metricsPort), `the Dockerfile does not EXPOSE the metrics port ${metricsPort}`);
    // Tencent site / endpoint style: the schema offers what the server accepts, and the
    // chart's defaults are the server's (so the default render changes nothing upstream).
    const schema = JSON.parse(fs.readFileSync(path.join(CHART, 'values.schema.json'), 'utf8')).properties.server.properties;
    assert.deepEqual(schema.tencentSite.enum, facts.tencent.site, 'schema server.tencentSite vs the server');
    assert.deepEqual(schema.tencentEndpointStyle.enum, facts.tencent.style, 'schema server.tencentEndpointStyle vs the server');
    const src = serverSources();
    for (const [key, flag] of [['tencentSite', 'tencent-site'], ['tencentEndpointStyle', 'tencent-endpoint-style'],
                               ['regionRefreshInterval', 'region-refresh-interval']]) {
      const m = src.match(new RegExp(`\\{\\s*"${flag}"\\s*,\\s*"[A-Z_]+"\\s*,\\s*"([^"]*)"`));
      assert.ok(m, `service/server: flag ${flag} not found`);
      assert.equal(r.values.server[key], m[1], `values.yaml server.${key} differs from the server default`);
    }
    assert.equal(r.values.server.lighthouseEndpoint, '', 'the endpoint is derived by default');
  });

  for (const k of CASES) {
    test(`renders, passes the schema and the checks: ${k.label}`, () => {
      const r = render(k);
      assert.equal(r.status, 0, `render failed: ${r.stderr}`);
      assert.deepEqual(schemaErrors(r.values), [], 'values.schema.json rejects the values');
      checkRender(r, facts, docker);
      const ts = path.join(WORK, `${r.id}.ts`);
      writeTypeScript(ts, r.docs);
      rendered.push({ label: k.label, ts });
    });
  }

  test('every rendered document type-checks strictly against kubernetes-types', () => {
    assert.equal(rendered.length, CASES.length, 'some renders failed');
    const res = tsc(rendered.map((x) => path.basename(x.ts)));
    assert.equal(res.status, 0, `tsc rejected rendered manifests:\n${res.output}`);
  });

  test('a config change changes the checksum that rolls the pod', () => {
    const sum = (r) => one(r.docs, 'Deployment').spec.template.metadata.annotations['checksum/config'];
    const a = render();
    const b = render();
    const c = render({ sets: ['server.logLevel=debug'] });
    assert.equal(sum(a), sum(b));
    assert.notEqual(sum(a), sum(c));
    // The annotation is a digest of the rendered ConfigMap, not of something constant.
    assert.notEqual(sum(a), crypto.createHash('sha256').update('').digest('hex'));
  });

  test('ci/postgres-values.yaml: 3 replicas on PostgreSQL, URI from a Secret', () => {
    const r = render({ files: [path.join(CHART, 'ci', 'postgres-values.yaml')] });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.values.store.type, 'postgres');
    const deploy = one(r.docs, 'Deployment');
    const podLabels = deploy.spec.template.metadata.labels;
    assert.equal(deploy.spec.replicas, 3);
    assert.equal(deploy.spec.strategy.type, 'RollingUpdate');
    assert.equal(deploy.spec.strategy.rollingUpdate.maxUnavailable, 0);
    const pdb = one(r.docs, 'PodDisruptionBudget');
    assert.equal(pdb.spec.minAvailable, 1);
    assert.ok(subset(pdb.spec.selector.matchLabels, podLabels), 'PDB selects the pods');
    assert.equal(byKind(r.docs, 'PersistentVolumeClaim').length, 0, 'no PVC');
    const pod = deploy.spec.template.spec;
    assert.deepEqual(pod.volumes.map((v) => Object.keys(v).filter((k) => k !== 'name')), [['emptyDir']], 'only /tmp');
    const env = pod.containers[0].env;
    const store = env.find((e) => e.name === 'BLUEPRINT_SYNC_STORE');
    assert.ok(store && store.valueFrom && store.valueFrom.secretKeyRef, 'BLUEPRINT_SYNC_STORE from a secretKeyRef');
    assert.equal(store.valueFrom.secretKeyRef.name, r.values.store.postgres.existingSecret);
    // Every server variable the mode adds is one main.cc reads.
    const cm = one(r.docs, 'ConfigMap');
    for (const v of ['BLUEPRINT_SYNC_STORE', 'BLUEPRINT_SYNC_LEADER_LEASE', 'BLUEPRINT_SYNC_FOLLOW_INTERVAL']) {
      assert.ok(facts.envVars.has(v), `${v} not in service/server`);
    }
    assert.ok(cm.data.BLUEPRINT_SYNC_LEADER_LEASE && cm.data.BLUEPRINT_SYNC_FOLLOW_INTERVAL);
    // The chart creates no Secret here: the URI stays in the one the database operator made.
    assert.equal(byKind(r.docs, 'Secret').length, 0);
  });

  test('terminationGracePeriodSeconds follows preStop and the drain unless set', () => {
    const grace = (r) => one(r.docs, 'Deployment').spec.template.spec.terminationGracePeriodSeconds;
    const byDefault = render();
    assert.equal(byDefault.status, 0, byDefault.stderr);
    assert.equal(byDefault.values.terminationGracePeriodSeconds, null, 'the default is derived');
    assert.equal(grace(byDefault), 5 + 20 + 5);
    // A longer drain (and preStop) moves the grace period with it: no render failure.
    const longer = render({ sets: ['server.drainTimeoutSeconds=40', 'preStop.sleepSeconds=8',
                                   'probes.liveness.failureThreshold=20'] });
    assert.equal(longer.status, 0, longer.stderr);
    assert.equal(grace(longer), 8 + 40 + 5);
    // An explicit value wins when it is long enough, and must pass the schema.
    const explicit = render({ sets: ['terminationGracePeriodSeconds=90'] });
    assert.equal(explicit.status, 0, explicit.stderr);
    assert.equal(grace(explicit), 90);
    assert.deepEqual(schemaErrors(explicit.values), []);
    assert.deepEqual(schemaErrors(byDefault.values), []);
  });

  test('region refresh: the chart accepts exactly what the server accepts', () => {
    const hi = facts.ranges.regionRefresh[1] / 1000;
    const ok = render({ sets: [`server.regionRefreshInterval=${hi}s`] });
    assert.equal(ok.status, 0, `the server's own maximum (${hi}s) must render: ${ok.stderr}`);
    const over = render({ sets: [`server.regionRefreshInterval=${hi / 60}m1s`] });
    assert.notEqual(over.status, 0, `${hi + 1}s is above the server's maximum and must not render`);
    assert.match(over.stderr, /server\.regionRefreshInterval .* is longer than the server accepts/);
  });

  test('minPollInterval reaches the server only when set', () => {
    // The server refuses a minimum above the poll interval when the minimum is set on
    // purpose (an environment variable is): a rendered default of 500ms would stop every
    // install whose pollInterval is shorter.
    const cmOf = (r) => byKind(r.docs, 'ConfigMap').find((x) => 'BLUEPRINT_SYNC_POLL_INTERVAL' in (x.data || {}));
    const short = render({ sets: ['server.pollInterval=200ms'] });
    assert.equal(short.status, 0, short.stderr);
    assert.equal(cmOf(short).data.BLUEPRINT_SYNC_POLL_INTERVAL, '200ms');
    assert.equal(cmOf(short).data.BLUEPRINT_SYNC_MIN_POLL_INTERVAL, undefined, 'an unset minPollInterval must not be rendered');
    const set = render({ sets: ['server.minPollInterval=2s'] });
    assert.equal(set.status, 0, set.stderr);
    assert.equal(cmOf(set).data.BLUEPRINT_SYNC_MIN_POLL_INTERVAL, '2s');
  });

  test('postgres: a leader lease change rolls the pods', () => {
    const sum = (r) => one(r.docs, 'Deployment').spec.template.metadata.annotations['checksum/config'];
    const a = render({ files: [path.join(CHART, 'ci', 'postgres-values.yaml')] });
    const b = render({ files: [path.join(CHART, 'ci', 'postgres-values.yaml')], sets: ['store.postgres.leaderLease=20s'] });
    assert.equal(a.status, 0, a.stderr);
    assert.equal(b.status, 0, b.stderr);
    assert.notEqual(sum(a), sum(b), 'a leader lease change must roll the pods');
  });

  // The failure paths: each file says what must reject it and why.
  const badDir = path.join(HERE, 'bad-values');
  const badFiles = fs.readdirSync(badDir).filter((f) => f.endsWith('.yaml')).sort();
  test('bad-values/ is not empty', () => assert.ok(badFiles.length >= 5));
  for (const f of badFiles) {
    test(`rejects bad-values/${f}`, () => {
      const text = fs.readFileSync(path.join(badDir, f), 'utf8');
      const schemaExp = text.match(/^# expect-schema: (\S+) (\S+)$/m);
      const renderExp = text.match(/^# expect-render: (.+)$/m);
      // Both lines: the schema rejects it AND so does the chart itself (for installs that
      // skip schema validation); render alone: valid types the chart must still refuse.
      assert.ok(schemaExp || renderExp, `${f}: needs an expect-schema and/or expect-render line`);
      const r = render({ files: [path.join(badDir, f)] });
      assert.ok(r.values, `${f}: values were not merged: ${r.stderr}`);
      const errors = schemaErrors(r.values);
      if (schemaExp) {
        assert.ok(errors.some((e) => e.path === schemaExp[1] && e.keyword === schemaExp[2]),
          `${f}: expected schema error ${schemaExp[1]} ${schemaExp[2]}, got ${JSON.stringify(errors)}`);
      } else {
        assert.deepEqual(errors, [], `${f}: must pass the schema so the render check is what rejects it`);
      }
      if (renderExp) {
        assert.notEqual(r.status, 0, `${f}: render should have failed`);
        assert.ok(r.stderr.includes(renderExp[1]), `${f}: render error was: ${r.stderr}`);
      }
    });
  }

  test('tsc rejects a manifest with an unknown field or a wrong type', () => {
    const r = render();
    assert.equal(r.status, 0, r.stderr);
    const deploy = r.docs.find((d) => d.object.kind === 'Deployment');
    const unknown = JSON.parse(JSON.stringify(deploy));
    unknown.object.spec.template.spec.containers[0].bogusField = true;
    const wrongType = JSON.parse(JSON.stringify(deploy));
    wrongType.object.spec.replicas = '1';
    const svc = JSON.parse(JSON.stringify(r.docs.find((d) => d.object.kind === 'Service')));
    svc.object.spec.ports[0].apProtocol = 'grpc'; // misspelt field deep in a list
    const cases = [[unknown, /bogusField/], [wrongType, /TS2322/], [svc, /apProtocol/]];
    cases.forEach(([doc, want], i) => {
      const file = path.join(WORK, `broken${i}.ts`);
      writeTypeScript(file, [doc]);
      const res = tsc([path.basename(file)]);
      assert.notEqual(res.status, 0, `tsc accepted broken manifest ${i}`);
      assert.match(res.output, want);
      assert.match(res.output, new RegExp(`broken${i}\\.ts`));
    });
  });

  test('README.md is generated from Chart.yaml and values.yaml (node tests/helm/chart_readme.js --write)', () => {
    const { generate, README } = require('./chart_readme');
    const want = generate();
    const have = fs.existsSync(README) ? fs.readFileSync(README, 'utf8') : '';
    if (have !== want) {
      const a = have.split('\n');
      const b = want.split('\n');
      let i = 0;
      while (i < a.length && i < b.length && a[i] === b[i]) i++;
      assert.fail(`deploy/helm/blueprint-sync/README.md is stale: run node tests/helm/chart_readme.js --write\n` +
                  `line ${i + 1}:\n  README:    ${a[i]}\n  generated: ${b[i]}`);
    }
    // Every default value is documented: its key (or a mapping documented as a unit above it).
    const r = render();
    assert.equal(r.status, 0, r.stderr);
    const rows = new Set([...want.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]));
    const leaves = (v, prefix) => (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length
      ? Object.entries(v).flatMap(([k, x]) => leaves(x, prefix ? `${prefix}.${k}` : k)) : [prefix]);
    for (const key of leaves(r.values, '')) {
      const parts = key.split('.');
      assert.ok(parts.some((_, n) => rows.has(parts.slice(0, n + 1).join('.'))), `README has no row for ${key}`);
    }
  });

  test('Chart.yaml carries the metadata an operator and a chart index expect', () => {
    const c = chartYaml();
    assert.equal(c.apiVersion, 'v2');
    assert.match(c.version, /^\d+\.\d+\.\d+$/);
    assert.ok(c.kubeVersion && c.description && c.keywords.length >= 3);
    assert.ok(c.maintainers.length >= 1 && c.maintainers.every((m) => m.name));
    for (const u of [c.home, ...(c.sources || [])].filter(Boolean)) assert.match(u, /^https:\/\//);
    // Artifact Hub's image list names what the chart deploys by default.
    const images = require('yaml').parse(c.annotations['artifacthub.io/images']);
    const r = render();
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(images.map((x) => x.image), [one(r.docs, 'Deployment').spec.template.spec.containers[0].image]);
  });

  test('as a subchart: any global is accepted, the root stays strict', () => {
    const r = render({ sets: ['global.imageRegistry=registry.example.com', 'global.storageClass=ssd', 'global.postgresql.auth.username=x'] });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(schemaErrors(r.values), []);
    assert.equal(one(r.docs, 'Deployment').spec.template.spec.containers[0].image, `registry.example.com/blueprint-sync:${chartYaml().appVersion}`);
    const strict = render({ sets: ['globals.imageRegistry=x'] });
    assert.ok(schemaErrors(strict.values).some((e) => e.path === '/' && e.keyword === 'additionalProperties'));
  });

  test('a kind without a known type is not waved through', () => {
    const file = path.join(WORK, 'unknown-kind.ts');
    assert.throws(() => writeTypeScript(file, [{ source: 'x', object: { apiVersion: 'example.com/v1', kind: 'Thing', metadata: { name: 'x' } } }]),
      /no TypeScript type for example\.com\/v1\/Thing/);
  });
});
