// Offline check of deploy/helm/blueprint-sync (no helm, no cluster):
//  - renders the chart with helmlite (tests/helm/helmlite, built by CMake) for the
//    defaults, every ci/*-values.yaml, and with/without the Prometheus Operator API;
//  - validates the merged values against values.schema.json (ajv, draft-07, as helm does);
//  - type-checks every rendered document with `tsc --strict` against kubernetes-types,
//    so unknown fields and wrong types fail (excess-property checks);
//  - asserts what matters for this server, with the facts read from its source
//    (service/server/main.cc: BLUEPRINT_SYNC_* variables, health names, drain default)
//    so chart and server cannot drift apart;
//  - proves the checks can fail: tests/helm/bad-values/*.yaml must be rejected by the
//    schema or the chart's own render-time checks, and a manifest with an unknown field
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

function serverFacts() {
  const main = fs.readFileSync(path.join(REPO, 'service', 'server', 'main.cc'), 'utf8');
  const envVars = new Set([...main.matchAll(/"(BLUEPRINT_SYNC_[A-Z0-9_]+)"/g)].map((m) => m[1]));
  const loop = main.match(/for\s*\(\s*const\s+char\s*\*\s*name\s*:\s*\{([^}]*)\}\s*\)\s*\{\s*health->SetServingStatus\(\s*name\s*,\s*true\s*\)/);
  assert.ok(loop, 'main.cc: health-name registration loop not found; update this check with the server');
  // "" always exists in gRPC's default health service; the rest are set SERVING explicitly.
  const healthNames = new Set(['', ...[...loop[1].matchAll(/"([^"]*)"/g)].map((m) => m[1])]);
  const drain = main.match(/\{\s*"drain-timeout"\s*,\s*"BLUEPRINT_SYNC_DRAIN_TIMEOUT"\s*,\s*"(\d+)s"/);
  assert.ok(drain, 'main.cc: drain-timeout flag not found');
  const creds = fs.readFileSync(path.join(REPO, 'service', 'tencent', 'credentials.cc'), 'utf8');
  const credentialEnv = new Set([...creds.matchAll(/"(TENCENTCLOUD_[A-Z_]+)"/g)].map((m) => m[1]));
  // Guard against a parser that silently finds nothing.
  assert.ok(envVars.size >= 10, `only ${envVars.size} BLUEPRINT_SYNC_* names parsed from main.cc`);
  assert.ok(healthNames.size >= 3, `health names parsed: ${[...healthNames]}`);
  assert.ok(credentialEnv.has('TENCENTCLOUD_SECRET_ID') && credentialEnv.has('TENCENTCLOUD_SECRET_KEY'));
  return { envVars, healthNames, drainDefaultSeconds: Number(drain[1]), credentialEnv };
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
function render({ files = [], sets = [], apiVersions = [], name = 'bps' } = {}) {
  const id = `r${caseCounter++}`;
  const valuesOut = path.join(WORK, `${id}.values.json`);
  const notesOut = path.join(WORK, `${id}.NOTES.txt`);
  const args = ['--strict', '--output', 'json', '--name', name, '--namespace', 'images',
                '--values-out', valuesOut, '--notes', notesOut];
  for (const f of files) args.push('-f', f);
  for (const s of sets) args.push('--set', s);
  for (const a of apiVersions) args.push('--api-versions', a);
  args.push(CHART);
  const r = helmlite(args);
  return {
    id, status: r.status, stderr: r.stderr,
    docs: r.status === 0 ? JSON.parse(r.stdout) : null,
    values: fs.existsSync(valuesOut) ? JSON.parse(fs.readFileSync(valuesOut, 'utf8')) : null,
    notes: fs.existsSync(notesOut) ? fs.readFileSync(notesOut, 'utf8') : '',
    apiVersions,
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
  'monitoring.coreos.com/v1/ServiceMonitor': ['./monitoring-v1', 'ServiceMonitor'],
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

  const deploy = one(docs, 'Deployment');
  assert.equal(deploy.spec.replicas, 1, 'replicas must be 1 (SQLite, one writer)');
  assert.deepEqual(deploy.spec.strategy, { type: 'Recreate' }, 'strategy must be Recreate');
  const pod = deploy.spec.template.spec;
  const podLabels = deploy.spec.template.metadata.labels;
  assert.ok(subset(deploy.spec.selector.matchLabels, podLabels), 'selector does not match pod labels');
  assert.equal(pod.containers.length, 1);
  const c = pod.containers[0];

  // One numeric gRPC port for the container, the probes, the Service and the server's listen address.
  const grpcPort = c.ports.find((p) => p.name === 'grpc');
  assert.ok(grpcPort && Number.isInteger(grpcPort.containerPort), 'container port "grpc" (numeric)');
  const port = grpcPort.containerPort;
  assert.equal(port, values.server.port);

  const probes = { startupProbe: 'liveness', livenessProbe: 'liveness', readinessProbe: 'readiness' };
  for (const [kind, service] of Object.entries(probes)) {
    const p = c[kind];
    assert.ok(p, `${kind} missing`);
    assert.deepEqual(Object.keys(p).filter((k) => ['grpc', 'httpGet', 'tcpSocket', 'exec'].includes(k)), ['grpc'],
      `${kind} must be a native gRPC probe`);
    assert.equal(typeof p.grpc.port, 'number', `${kind}: gRPC probes need a numeric port`);
    assert.equal(p.grpc.port, port, `${kind}: probe port != container port`);
    assert.ok(facts.healthNames.has(p.grpc.service),
      `${kind}: health name "${p.grpc.service}" is not registered by the server (${[...facts.healthNames]})`);
    assert.equal(p.grpc.service, service, `${kind}: health name`);
  }

  const svc = one(docs, 'Service');
  assert.ok(subset(svc.spec.selector, podLabels) && Object.keys(svc.spec.selector).length > 0,
    'Service selector does not select the pod');
  const sp = svc.spec.ports.find((p) => p.name === 'grpc');
  assert.ok(sp, 'Service port "grpc"');
  assert.equal(sp.appProtocol, 'grpc');
  const target = typeof sp.targetPort === 'string'
    ? (c.ports.find((p) => p.name === sp.targetPort) || {}).containerPort : sp.targetPort;
  assert.equal(target, port, 'Service targetPort does not reach the container gRPC port');

  // Environment: every ConfigMap key is a variable the server reads; LISTEN uses the same port.
  assert.equal(c.envFrom.length, 1);
  const cmName = c.envFrom[0].configMapRef.name;
  const cm = byKind(docs, 'ConfigMap').find((x) => x.metadata.name === cmName);
  assert.ok(cm, `ConfigMap ${cmName} referenced by envFrom is not rendered`);
  for (const k of Object.keys(cm.data)) {
    assert.ok(facts.envVars.has(k), `ConfigMap sets ${k}, which blueprint-syncd does not read`);
  }
  assert.equal(cm.data.BLUEPRINT_SYNC_LISTEN, `0.0.0.0:${port}`);
  assert.equal(cm.data.BLUEPRINT_SYNC_STORE, docker.store, 'store path differs from the image default');
  for (const k of ['POLL_INTERVAL', 'JOB_DEADLINE', 'HTTP_TIMEOUT', 'CONNECT_TIMEOUT', 'RECONCILE_GRACE', 'DRAIN_TIMEOUT']) {
    assert.match(cm.data[`BLUEPRINT_SYNC_${k}`], /^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$/, `${k} duration`);
  }
  for (const k of ['WORKERS', 'MAX_MESSAGE_BYTES']) {
    assert.match(cm.data[`BLUEPRINT_SYNC_${k}`], /^[0-9]+$/, `${k} must be a plain integer`);
  }
  for (const k of ['SYNC_RATE', 'DESCRIBE_RATE']) {
    assert.match(cm.data[`BLUEPRINT_SYNC_${k}`], /^[0-9]+(\.[0-9]+)?$/, `${k} must be a plain number`);
  }
  assert.ok(/^[0-9a-f]{64}$/.test(deploy.spec.template.metadata.annotations['checksum/config']),
    'checksum/config annotation');

  // The /data mount holds the SQLite file and must be the PVC when persistence is on.
  const dataMount = c.volumeMounts.find((m) => cm.data.BLUEPRINT_SYNC_STORE.startsWith(`sqlite:${m.mountPath}/`));
  assert.ok(dataMount, 'no volume mounted where BLUEPRINT_SYNC_STORE points');
  const dataVol = pod.volumes.find((v) => v.name === dataMount.name);
  if (values.persistence.enabled) {
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
  const env = c.env || [];
  const secretEnv = env.filter((e) => e.valueFrom && e.valueFrom.secretKeyRef);
  for (const e of secretEnv) {
    assert.ok(facts.credentialEnv.has(e.name), `${e.name} is not read by the credential chain`);
    assert.equal(e.valueFrom.secretKeyRef.key, e.name);
  }
  const secrets = byKind(docs, 'Secret');
  const cred = values.credentials;
  if (cred.existingSecret) {
    assert.equal(secrets.length, 0, 'existingSecret: the chart must not create a Secret');
    assert.deepEqual(secretEnv.map((e) => e.valueFrom.secretKeyRef.name), [cred.existingSecret, cred.existingSecret]);
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
    assert.equal(sms[0].spec.endpoints[0].port, 'metrics');
  }

  // NetworkPolicy: selects the pod, admits the gRPC port, allows DNS and HTTPS out.
  const nps = byKind(docs, 'NetworkPolicy');
  assert.equal(nps.length, values.networkPolicy.enabled ? 1 : 0);
  if (nps.length) {
    const np = nps[0];
    assert.ok(subset(np.spec.podSelector.matchLabels, podLabels));
    assert.ok(np.spec.ingress.some((rule) => rule.ports.some((p) => p.port === port && p.protocol === 'TCP')));
    const egressPorts = np.spec.egress.flatMap((rule) => rule.ports || []).map((p) => `${p.protocol}/${p.port}`);
    if (values.networkPolicy.allowDNS) assert.ok(egressPorts.includes('UDP/53') && egressPorts.includes('TCP/53'));
    if (values.networkPolicy.allowHTTPS) assert.ok(egressPorts.includes('TCP/443'));
    const u = new URL(values.server.lighthouseEndpoint);
    const upstream = u.port || (u.protocol === 'http:' ? '80' : '443');
    assert.ok(egressPorts.includes(`TCP/${upstream}`), `egress to the Lighthouse endpoint port ${upstream}`);
  }

  // PodDisruptionBudget only on request (see values.yaml).
  assert.equal(byKind(docs, 'PodDisruptionBudget').length, values.pdb.create ? 1 : 0);

  // NOTES: how to reach it, and why one replica.
  const svcPort = sp.port;
  assert.match(r.notes, new RegExp(`port-forward svc/${svc.metadata.name} ${svcPort}:${svcPort}`));
  assert.match(r.notes, /grpc\.health\.v1\.Health\/Check/);
  assert.match(r.notes, /grpcurl -plaintext 127\.0\.0\.1:\d+ list/);
  assert.match(r.notes, /blueprintsync\.v1\.BlueprintSync\/SyncBlueprint/);
  assert.match(r.notes, /One replica, Recreate strategy/);
}

// ---------------------------------------------------------------------------

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
];

describe('helm chart blueprint-sync', () => {
  let facts;
  let docker;
  const rendered = [];

  before(() => {
    requireTooling();
    fs.mkdirSync(WORK, { recursive: true });
    setUpTypeScriptDir();
    facts = serverFacts();
    docker = dockerFacts();
  });

  test('ci/ has the example values files', () => {
    for (const f of ['static-secret-values.yaml', 'tke-identity-values.yaml', 'metrics-values.yaml']) {
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

  // The failure paths: each file says what must reject it and why.
  const badDir = path.join(HERE, 'bad-values');
  const badFiles = fs.readdirSync(badDir).filter((f) => f.endsWith('.yaml')).sort();
  test('bad-values/ is not empty', () => assert.ok(badFiles.length >= 5));
  for (const f of badFiles) {
    test(`rejects bad-values/${f}`, () => {
      const text = fs.readFileSync(path.join(badDir, f), 'utf8');
      const schemaExp = text.match(/^# expect-schema: (\S+) (\S+)$/m);
      const renderExp = text.match(/^# expect-render: (.+)$/m);
      assert.ok(Boolean(schemaExp) !== Boolean(renderExp), `${f}: needs exactly one expect-schema/expect-render line`);
      const r = render({ files: [path.join(badDir, f)] });
      assert.ok(r.values, `${f}: values were not merged: ${r.stderr}`);
      const errors = schemaErrors(r.values);
      if (schemaExp) {
        assert.ok(errors.some((e) => e.path === schemaExp[1] && e.keyword === schemaExp[2]),
          `${f}: expected schema error ${schemaExp[1]} ${schemaExp[2]}, got ${JSON.stringify(errors)}`);
      } else {
        assert.deepEqual(errors, [], `${f}: must pass the schema so the render check is what rejects it`);
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

  test('a kind without a known type is not waved through', () => {
    const file = path.join(WORK, 'unknown-kind.ts');
    assert.throws(() => writeTypeScript(file, [{ source: 'x', object: { apiVersion: 'example.com/v1', kind: 'Thing', metadata: { name: 'x' } } }]),
      /no TypeScript type for example\.com\/v1\/Thing/);
  });
});
