// ws_ref_server.js PORT REDIS_PORT - the reference for bench/ws.sh: the same job as our
// websocket-gateway, written the way a Node.js team would with npm's ws. It speaks the same
// JSON (hello -> welcome, subscribe -> ack, ping -> pong), takes events from Redis (channel
// bench.raw, RESP read by hand) and sends each subscriber of region:bench
// {"type":"event","seq":N,"channel":...,"event":...,"data":PAYLOAD} with its own sequence
// number, the event part built once per event.
const net = require("net");
const WebSocket = require("ws");
const [port, redisPort] = process.argv.slice(2).map(Number);

const subscribers = new Set();
const wss = new WebSocket.Server({ port, host: "127.0.0.1", perMessageDeflate: false });
wss.on("connection", (ws) => {
  ws.seq = 0;
  ws.on("error", () => {});
  ws.on("message", (data) => {
    let m;
    try { m = JSON.parse(data); } catch (e) {
      ws.send(JSON.stringify({ type: "error", code: "invalid_argument", message: e.message }));
      return;
    }
    if (m.type === "hello") {
      ws.send(JSON.stringify({ type: "welcome", session_id: "s" + Math.random().toString(16).slice(2),
        server_time: Date.now(), heartbeat_ms: 25000,
        player: { id: "guest", name: "Guest", guest: true, region: "terra-nova",
          position: { x: 512, y: 0, z: 512 } } }));
    } else if (m.type === "subscribe") {
      if ((m.channels || []).includes("region:bench")) subscribers.add(ws);
      ws.send(JSON.stringify({ type: "ack", id: m.id }));
    } else if (m.type === "ping") {
      ws.send(JSON.stringify({ type: "pong", id: m.id, server_time: Date.now() }));
    }
  });
  ws.on("close", () => subscribers.delete(ws));
});

function broadcast(payload) {
  const body = '"channel":"region:bench","event":"bench.tick","data":' + payload + "}";
  for (const ws of subscribers) {
    ws.seq++;
    ws.send('{"type":"event","seq":' + ws.seq + "," + body);
  }
}

// A minimal RESP reader for the pub/sub pushes: *3 $7 message $N channel $N payload.
const redis = net.connect(redisPort, "127.0.0.1", () => redis.write("SUBSCRIBE bench.raw\r\n"));
let buf = Buffer.alloc(0);
redis.on("data", (chunk) => {
  buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
  for (;;) {
    const parts = [];
    let off = 0;
    if (buf[0] !== 0x2a) break;
    let nl = buf.indexOf("\r\n", off);
    if (nl < 0) break;
    const count = Number(buf.toString("latin1", 1, nl));
    off = nl + 2;
    let ok = true;
    for (let i = 0; i < count; i++) {
      nl = buf.indexOf("\r\n", off);
      if (nl < 0) { ok = false; break; }
      if (buf[off] === 0x3a) { parts.push(buf.toString("latin1", off + 1, nl)); off = nl + 2; continue; }
      const len = Number(buf.toString("latin1", off + 1, nl));
      if (buf.length < nl + 2 + len + 2) { ok = false; break; }
      parts.push(buf.toString("utf8", nl + 2, nl + 2 + len));
      off = nl + 2 + len + 2;
    }
    if (!ok) break;
    buf = buf.subarray(off);
    if (parts[0] === "message") broadcast(parts[2]);
  }
});
console.log("ready");
