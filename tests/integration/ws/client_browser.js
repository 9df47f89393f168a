// client_browser.js URL CHANNEL READY_FILE - headless Chromium (Debian's, driven by npm's
// playwright-core) opens a page whose script speaks the protocol, as the web viewer does:
// hello, subscribe to CHANNEL; READY_FILE is touched once subscribed; the first event's JSON
// is printed. Exit 1 after 30 s without one.
const fs = require("fs");
const { chromium } = require("playwright-core");
const [url, channel, ready] = process.argv.slice(2);

(async () => {
  const timer = setTimeout(() => { console.error("no event in 30 s"); process.exit(1); }, 30000);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--headless=new"],
  });
  const page = await browser.newPage();
  await page.exposeFunction("fvReady", () => fs.writeFileSync(ready, ""));
  const event = await page.evaluate(([u, ch]) => new Promise((resolve, reject) => {
    const ws = new WebSocket(u);
    ws.onopen = () => ws.send(JSON.stringify({type: "hello", client: "chromium", version: "1"}));
    ws.onerror = () => reject(new Error("websocket error"));
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      if (msg.type === "welcome") ws.send(JSON.stringify({type: "subscribe", id: 1, channels: [ch]}));
      else if (msg.type === "ack") window.fvReady();
      else if (msg.type === "event") resolve(msg);
    };
  }), [url, channel]);
  console.log(JSON.stringify(event));
  clearTimeout(timer);
  await browser.close();
})().catch((e) => { console.error(e.message); process.exit(1); });
