#!/usr/bin/env node
// grpcprobe: a grpcurl stand-in that knows nothing about our .proto files.
// Everything comes from the server's reflection service, as with grpcurl.
//   node grpcprobe.js HOST:PORT list
//   node grpcprobe.js HOST:PORT describe SYMBOL
//   node grpcprobe.js HOST:PORT call SERVICE/METHOD 'JSON'     (one JSON line per response)
//   node grpcprobe.js HOST:PORT health [SERVICE]               (grpc.health.v1.Health/Check via reflection)
// Errors: "ERROR: code=N (NAME) message" on stderr, exit 1.
'use strict';
const grpc = require('@grpc/grpc-js');
const { GrpcReflection } = require('grpc-js-reflection-client');

const CODE_NAMES = Object.fromEntries(Object.entries(grpc.status).map(([k, v]) => [v, k]));

function lowerCamel(name) {
  return name.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
}

// Accepts proto or lowerCamelCase field names and rejects unknown ones, as grpcurl does.
function jsonIn(type, obj) {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    throw new Error(`expected a JSON object for ${type.fullName}`);
  }
  const out = {};
  for (const [key, value] of Object.entries(obj)) {
    const field = type.fields[key] || Object.values(type.fields).find((f) => lowerCamel(f.name) === key);
    if (!field) throw new Error(`message type ${type.fullName.replace(/^\./, '')} has no known field named ${key}`);
    field.resolve();
    const conv = (v) => (field.resolvedType && field.resolvedType.fields ? jsonIn(field.resolvedType, v) : v);
    out[field.name] = field.repeated && Array.isArray(value) ? value.map(conv) : conv(value);
  }
  return out;
}

// Output keys in lowerCamelCase and Timestamps as RFC 3339, like grpcurl /
// the protobuf JSON mapping.
function jsonOut(type, obj) {
  if (type.fullName === '.google.protobuf.Timestamp') {
    const ms = Number(obj.seconds || 0) * 1000 + Math.floor((obj.nanos || 0) / 1e6);
    return new Date(ms).toISOString();
  }
  const out = {};
  for (const [key, value] of Object.entries(obj)) {
    const field = type.fields[key];
    if (field) field.resolve();
    const sub = field && field.resolvedType && field.resolvedType.fields ? field.resolvedType : null;
    const conv = (v) => (sub && v && typeof v === 'object' ? jsonOut(sub, v) : v);
    out[lowerCamel(key)] = Array.isArray(value) ? value.map(conv) : conv(value);
  }
  return out;
}

async function resolveMethod(refl, full) {
  const slash = full.lastIndexOf('/');
  const svc = full.slice(0, slash);
  const method = full.slice(slash + 1);
  const root = (await refl.getDescriptorBySymbol(svc)).getProtobufJsRoot();
  const m = root.lookupService(svc).methods[method];
  if (!m) throw new Error(`service ${svc} has no method ${method}`);
  m.resolve();
  return { svc, method, m, Req: m.resolvedRequestType, Res: m.resolvedResponseType };
}

function metadataFromEnv() {
  const md = new grpc.Metadata();
  for (const line of (process.env.GRPC_HEADERS || '').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) md.add(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return md;
}

async function call(host, creds, refl, full, input) {
  const { svc, method, m, Req, Res } = await resolveMethod(refl, full);
  const client = new grpc.Client(host, creds);
  const ser = (o) => Buffer.from(Req.encode(Req.fromObject(jsonIn(Req, o))).finish());
  const de = (b) => jsonOut(Res, Res.toObject(Res.decode(b), { longs: String, enums: String, bytes: String, json: true }));
  const deadline = Date.now() + Number(process.env.GRPC_DEADLINE_MS || 30000);
  const path = `/${svc}/${method}`;
  return new Promise((resolve, reject) => {
    if (m.responseStream) {
      const stream = client.makeServerStreamRequest(path, ser, de, input, metadataFromEnv(), { deadline });
      stream.on('data', (msg) => process.stdout.write(JSON.stringify(msg) + '\n'));
      stream.on('error', reject);
      stream.on('end', resolve);
    } else {
      client.makeUnaryRequest(path, ser, de, input, metadataFromEnv(), { deadline }, (err, res) => {
        if (err) return reject(err);
        process.stdout.write(JSON.stringify(res) + '\n');
        resolve();
      });
    }
  });
}

async function main() {
  const [host, cmd, arg, json] = process.argv.slice(2);
  if (!host || !cmd) throw new Error('usage: grpcprobe HOST:PORT list|describe|call|health ...');
  const creds = grpc.credentials.createInsecure();
  const refl = new GrpcReflection(host, creds);
  if (cmd === 'list') {
    for (const s of (await refl.listServices()).sort()) console.log(s);
  } else if (cmd === 'describe') {
    const root = (await refl.getDescriptorBySymbol(arg)).getProtobufJsRoot();
    const obj = root.lookup(arg);
    if (obj.methods) {
      for (const [name, m] of Object.entries(obj.methods)) {
        m.resolve();
        const stream = m.responseStream ? 'stream ' : '';
        console.log(`rpc ${name}(${m.resolvedRequestType.fullName.slice(1)}) returns (${stream}${m.resolvedResponseType.fullName.slice(1)})`);
      }
    } else if (obj.fields) {
      for (const f of Object.values(obj.fields)) console.log(`${f.repeated ? 'repeated ' : ''}${f.type} ${f.name} = ${f.id};`);
    } else {
      console.log(JSON.stringify(obj.toJSON()));
    }
  } else if (cmd === 'call') {
    await call(host, creds, refl, arg, JSON.parse(json || '{}'));
  } else if (cmd === 'health') {
    await call(host, creds, refl, 'grpc.health.v1.Health/Check', { service: arg || '' });
  } else {
    throw new Error(`unknown command ${cmd}`);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    if (err && typeof err.code === 'number') {
      process.stderr.write(`ERROR: code=${err.code} (${CODE_NAMES[err.code]}) ${err.details}\n`);
    } else {
      process.stderr.write(`ERROR: ${err && err.message ? err.message : err}\n`);
    }
    process.exit(1);
  },
);
