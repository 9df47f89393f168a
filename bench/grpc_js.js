// grpc_js.js - npm @grpc/grpc-js on both ends of bench/grpc.sh:
//   node grpc_js.js server PORT
//       a generic echo at /finalverse.testing.v1.Probe/Echo (answers each request's bytes,
//       decoding nothing, as bench/grpc_echo_server.cc does) and the interop service's
//       /grpc.testing.TestService/StreamingOutputCall (one response of each requested size);
//   node grpc_js.js unary PORT SECONDS CONCURRENCY
//       keeps CONCURRENCY Echo calls of a 32-byte EchoMessage in flight for SECONDS on one
//       channel; prints "calls_per_second p50_ms p99_ms failed";
//   node grpc_js.js stream PORT SECONDS
//       StreamingOutputCall asking for 1,000 responses of 32 bytes, again and again, 4 calls
//       at a time, for SECONDS; prints "messages_per_second failed".
// Messages are hand-encoded protobuf: the bench needs no .proto at run time.
const grpc = require("@grpc/grpc-js");

const id = (b) => b;
const method = (path, responseStream) => ({
  path, requestStream: false, responseStream,
  requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id,
});
const ECHO = method("/finalverse.testing.v1.Probe/Echo", false);
const STREAM = method("/grpc.testing.TestService/StreamingOutputCall", true);

function varint(n) {
  const out = [];
  do { out.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0)); n >>>= 7; } while (n);
  return out;
}
function readVarint(buf, i) {
  let n = 0, shift = 0, b;
  do { b = buf[i++]; n += (b & 0x7f) * 2 ** shift; shift += 7; } while (b & 0x80);
  return [n, i];
}
// the sizes of a StreamingOutputCallRequest's response_parameters (field 2, size field 1)
function sizes(req) {
  const out = [];
  for (let i = 0; i < req.length;) {
    const [tag, j] = readVarint(req, i);
    if ((tag & 7) === 2) {
      const [len, k] = readVarint(req, j);
      if (tag >> 3 === 2) {
        const sub = req.slice(k, k + len);
        for (let m = 0; m < sub.length;) {
          const [t, p] = readVarint(sub, m);
          const [v, q] = readVarint(sub, p);
          if (t === 0x08) out.push(v);
          m = q;
        }
      }
      i = k + len;
    } else {
      i = readVarint(req, j)[1];
    }
  }
  return out;
}
// StreamingOutputCallResponse{payload: Payload{body: size bytes}}
function response(size) {
  const payload = Buffer.concat([Buffer.from([0x12, ...varint(size)]), Buffer.alloc(size, 0x61)]);
  return Buffer.concat([Buffer.from([0x0a, ...varint(payload.length)]), payload]);
}

const [mode, port, secs, conc] = process.argv.slice(2);
const target = `127.0.0.1:${port}`;

if (mode === "server") {
  const server = new grpc.Server();
  server.addService({Echo: ECHO}, {Echo: (call, cb) => cb(null, call.request)});
  server.addService({StreamingOutputCall: STREAM}, {
    StreamingOutputCall: (call) => {
      for (const n of sizes(call.request)) call.write(response(n));
      call.end();
    },
  });
  server.bindAsync(target, grpc.ServerCredentials.createInsecure(), (err) => {
    if (err) { console.error(err.message); process.exit(1); }
    console.log("ready");
  });
} else {
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  const until = Date.now() + Number(secs) * 1000;
  let done = 0, failed = 0;
  if (mode === "unary") {
    const req = Buffer.concat([Buffer.from([0x0a, 0x20]), Buffer.alloc(32, 0x78)]);
    const lat = [];
    const one = () => {
      if (Date.now() >= until) return finish();
      const t0 = process.hrtime.bigint();
      client.makeUnaryRequest(ECHO.path, id, id, req, (err) => {
        if (err) failed++; else { done++; lat.push(Number(process.hrtime.bigint() - t0) / 1e6); }
        one();
      });
    };
    let running = Number(conc);
    const finish = () => {
      if (--running) return;
      lat.sort((a, b) => a - b);
      const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] : 0);
      console.log(`${(done / Number(secs)).toFixed(0)} ${q(0.5).toFixed(3)} ${q(0.99).toFixed(3)} ${failed}`);
      process.exit(0);
    };
    for (let i = 0; i < Number(conc); i++) one();
  } else {
    const params = Buffer.concat(Array.from({length: 1000}, () => Buffer.from([0x12, 0x02, 0x08, 0x20])));
    let running = 4;
    const one = () => {
      if (Date.now() >= until) {
        if (--running === 0) {
          console.log(`${(done / Number(secs)).toFixed(0)} ${failed}`);
          process.exit(0);
        }
        return;
      }
      const call = client.makeServerStreamRequest(STREAM.path, id, id, params);
      call.on("data", () => done++);
      call.on("error", () => { failed++; one(); });
      call.on("end", one);
    };
    for (let i = 0; i < 4; i++) one();
  }
}
