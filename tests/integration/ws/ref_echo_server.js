// ref_echo_server.js PORT LIMIT - a server on npm's ws (the reference implementation the case
// runner is checked against): it answers pings and closes as ws does, limits messages to
// LIMIT bytes, and otherwise echoes.
const WebSocket = require("ws");
const [port, limit] = process.argv.slice(2).map(Number);
const wss = new WebSocket.Server({ port, host: "127.0.0.1", maxPayload: limit,
  perMessageDeflate: false });
// a protocol error is reported on the socket (ws closes it with the right code by itself)
wss.on("connection", (ws) => {
  ws.on("error", () => {});
  ws.on("message", (d, binary) => ws.send(d, { binary }));
});
wss.on("listening", () => console.log("ready"));
