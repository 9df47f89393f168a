// client_node.js URL CHANNEL READY_FILE - a client on npm's ws: hello, subscribe to CHANNEL,
// touch READY_FILE, then print the first event's JSON and exit 0 (exit 1 after 20 s).
const fs = require("fs");
const WebSocket = require("ws");
const [url, channel, ready] = process.argv.slice(2);
const ws = new WebSocket(url);
setTimeout(() => { console.error("no event in 20 s"); process.exit(1); }, 20000);
ws.on("open", () => ws.send(JSON.stringify({type: "hello", client: "node-ws", version: "1"})));
ws.on("message", (data) => {
  const m = JSON.parse(data);
  if (m.type === "welcome") ws.send(JSON.stringify({type: "subscribe", id: 1, channels: [channel]}));
  else if (m.type === "ack") fs.writeFileSync(ready, "");
  else if (m.type === "event") { console.log(JSON.stringify(m)); process.exit(0); }
  else { console.error("unexpected", m); process.exit(1); }
});
ws.on("error", (e) => { console.error(e.message); process.exit(1); });
