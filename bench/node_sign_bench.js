// Times the official Tencent Cloud Node SDK's TC3 signer (Sign.sign3 from
// tencentcloud-sdk-nodejs, as installed for tests/node) on the inputs
// bench/signing_benchmark.cc uses, and prints "<CPU ns_per_op> <Authorization>".
// The payload is passed as a Buffer so the SDK hashes these exact bytes
// (an object would be re-serialized).
//
//   node node_sign_bench.js PAYLOAD_FILE TIMESTAMP HOST CONTENT_TYPE SECRET_ID SECRET_KEY
'use strict';
const fs = require('fs');
const path = require('path');

const sign = require(path.join(__dirname, '..', 'tests', 'node', 'node_modules',
                               'tencentcloud-sdk-nodejs', 'tencentcloud', 'common', 'sign')).default;

const [payloadFile, ts, host, contentType, secretId, secretKey] = process.argv.slice(2);
const payload = fs.readFileSync(payloadFile);
const args = {
  method: 'POST',
  url: `https://${host}/`,
  payload,
  timestamp: Number(ts),
  service: 'lighthouse',
  secretId,
  secretKey,
  multipart: false,
  boundary: undefined,
  headers: { 'Content-Type': contentType },
};

// CPU time (user + system) rather than wall time, like the C++ side: other
// processes on a small shared machine would otherwise inflate it.
function run(n) {
  let last = '';
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) last = sign.sign3(args);
  const used = process.cpuUsage(start);
  return [(used.user + used.system) * 1000 / n, last];
}

run(20000);  // JIT warm-up
const samples = [];
let auth = '';
for (let r = 0; r < 5; r++) {
  const [ns, a] = run(40000);
  samples.push(ns);
  auth = a;
}
samples.sort((a, b) => a - b);
process.stdout.write(`${samples[2].toFixed(1)} ${auth}\n`);
