// grpc_peer_server.js PORT - a gRPC server nobody here wrote (npm @grpc/grpc-js), serving what
// our cross-process transport calls: "/world-engine/<Method>" with common.proto's IdRequest in
// and Status out (hand-encoded: two string fields). Echo answers Status{service: id}; Sleep
// waits id milliseconds and notes a cancel on stderr; Big answers a service of id bytes;
// Unavail answers UNAVAILABLE for the first two calls of each id, then echoes; Meta sends each
// request metadata pair "x-..." or "...-bin" back as "echo-<name>" in its headers and as
// "trail-<name>" in its trailers; Count (server-streaming) answers "N" or "N:MS" with N
// messages Status{service: "0"}, ... MS milliseconds apart, noting a cancel on stderr. Beside
// them, npm's own grpc.health.v1.Health ("" and "world-engine" SERVING; SetHealth sets
// world-engine's to its id) and server reflection (listing proto/health.proto's service).
// Prints "ready" once listening on 127.0.0.1:PORT.
const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const {HealthImplementation} = require("grpc-health-check");
const {ReflectionService} = require("@grpc/reflection");

function str1(buf) {          // field 1 (a string) of a message, or ""
  let i = 0;
  while (i < buf.length) {
    const tag = buf[i++];
    let len = 0, shift = 0, b;
    do { b = buf[i++]; len |= (b & 0x7f) << shift; shift += 7; } while (b & 0x80);
    if (tag === 0x0a) return buf.slice(i, i + len).toString();
    i += len;
  }
  return "";
}
function status(service) {    // Status{service}
  const s = Buffer.from(service);
  const len = [];
  let n = s.length;
  do { len.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0)); n >>>= 7; } while (n);
  return Buffer.concat([Buffer.from([0x0a, ...len]), s]);
}
const unary = (path) => ({
  path, requestStream: false, responseStream: false,
  requestSerialize: (b) => b, requestDeserialize: (b) => b,
  responseSerialize: (b) => b, responseDeserialize: (b) => b,
});
const def = {
  Meta: unary("/world-engine/Meta"),
  SetHealth: unary("/world-engine/SetHealth"),
  Count: {...unary("/world-engine/Count"), responseStream: true},
  Echo: unary("/world-engine/Echo"), Sleep: unary("/world-engine/Sleep"),
  Big: unary("/world-engine/Big"), Unavail: unary("/world-engine/Unavail"),
};
const seen = {};
function echoed(md, prefix) {   // the request's custom pairs under prefix + name
  const out = new grpc.Metadata();
  for (const [k, v] of Object.entries(md.getMap()))
    if (k.startsWith("x-") || k.endsWith("-bin")) out.add(prefix + k, v);
  return out;
}
const server = new grpc.Server({"grpc.max_send_message_length": 8 << 20});
const health = new HealthImplementation({"": "SERVING", "world-engine": "SERVING"});
health.addToServer(server);
new ReflectionService(protoLoader.loadSync(path.join(__dirname, "../../proto/health.proto")))
  .addToServer(server);
server.addService(def, {
  SetHealth: (call, cb) => {
    health.setStatus("world-engine", str1(call.request));
    cb(null, status("set"));
  },
  Meta: (call, cb) => {
    call.sendMetadata(echoed(call.metadata, "echo-"));
    cb(null, status("meta"), echoed(call.metadata, "trail-"));
  },
  Count: (call) => {
    const [n, ms] = str1(call.request).split(":").map(Number);
    let i = 0, done = false;
    call.on("cancelled", () => { done = true; console.error("stream cancelled"); });
    const next = () => {
      if (done) return;
      if (i === n) { call.end(); return; }
      call.write(status(String(i++)));
      if (ms) setTimeout(next, ms); else setImmediate(next);
    };
    next();
  },
  Echo: (call, cb) => cb(null, status(str1(call.request))),
  Sleep: (call, cb) => {
    const t = setTimeout(() => cb(null, status("slept")), Number(str1(call.request)));
    call.on("cancelled", () => { clearTimeout(t); console.error("cancelled"); });
  },
  Big: (call, cb) => cb(null, status("x".repeat(Number(str1(call.request))))),
  Unavail: (call, cb) => {
    const id = str1(call.request);
    seen[id] = (seen[id] || 0) + 1;
    if (seen[id] <= 2) cb({code: grpc.status.UNAVAILABLE, details: "not yet"});
    else cb(null, status(id + ":" + seen[id]));
  },
});
server.bindAsync(`127.0.0.1:${process.argv[2]}`, grpc.ServerCredentials.createInsecure(),
  (err) => {
    if (err) { console.error(err.message); process.exit(1); }
    console.log("ready");
  });
