// gateway_page.js MODE GATEWAY_URL PAGE_URL - the API gateway as real clients use it; prints
// one JSON summary on stdout for test_gateway_browser.sh to check fact by fact.
//   browser: headless Chromium (Debian's, driven by npm's playwright-core) opens PAGE_URL, a
//     page on another origin, and from its script (fetch and WebSocket, nothing else) registers,
//     logs in, calls /api/auth/me and every module through the gateway, rotates its refresh
//     token, opens ws://<gateway>/ws with its access token, subscribes, and logs out.
//   direct: node's own HTTP client: sign-in, refresh reuse revoking the family, and the doors a
//     page on a foreign origin must find shut (CORS preflight, Origin on the /ws upgrade).
// Each step that fails is named in the summary's "error" rather than ending the script, so the
// shell test can say which step broke. Exit 1 only when the script itself cannot run.
const http = require("http");
const [mode, gw, pageUrl] = process.argv.slice(2);
const PAGE_ORIGIN = new URL(pageUrl).origin;
const EVIL = "http://evil.example";
const PASSWORD = "correct horse battery";
const MODULES = ["websocket-gateway", "song-engine", "world-engine", "echo-engine",
  "ai-orchestra", "story-engine", "harmony-service", "asset-service", "community",
  "silence-service", "procedural-gen", "behavior-ai", "api-gateway", "service-registry"];

// Names are unique whatever their case; a run that reuses a data dir must not collide.
const uniqueName = (prefix) =>
  prefix + Date.now().toString(36) + Math.floor(Math.random() * 1e6).toString(36);

// Runs inside the page: only what any web page has (fetch, WebSocket, JSON).
async function inPage([gw, name, password, modules]) {
  const r = {origin: location.origin};
  const call = async (method, path, {body, token} = {}) => {
    const headers = {};
    // application/json and Authorization are not CORS-safelisted: every call is preflighted
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = "Bearer " + token;
    const res = await fetch(gw + path, {method, headers,
      body: body === undefined ? undefined : JSON.stringify(body)});
    let json = null;
    try { json = await res.json(); } catch (e) { /* a bodyless answer */ }
    return {status: res.status, json, request_id: res.headers.get("X-Request-Id"),
      rate_remaining: res.headers.get("RateLimit-Remaining")};
  };
  // A socket whose messages are read in order; events (the world may publish on a region at any
  // time) are counted and skipped so that they cannot stand in for an answer.
  const openWs = (url) => new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const queue = [], waiters = [];
    const sock = {ws, events: 0, close_code: null};
    sock.closed = new Promise((res) => {
      ws.onclose = (e) => { sock.close_code = e.code; res(); };
    });
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      if (msg.type === "event") { sock.events++; return; }
      const w = waiters.shift();
      if (w) w(msg); else queue.push(msg);
    };
    sock.next = (ms = 5000) => new Promise((res, rej) => {
      if (queue.length) return res(queue.shift());
      const t = setTimeout(() => rej(new Error(`no answer in ${ms} ms`)), ms);
      waiters.push((msg) => { clearTimeout(t); res(msg); });
    });
    const t = setTimeout(() => reject(new Error("socket not open after 5 s")), 5000);
    ws.onopen = () => { clearTimeout(t); resolve(sock); };
    ws.onerror = () => {
      clearTimeout(t);
      reject(new Error("websocket error (handshake refused?)"));
    };
  });
  const wsUrl = gw.replace(/^http/, "ws") + "/ws";
  try {
    r.at = "register";
    const reg = await call("POST", "/api/auth/register", {body: {name, password}});
    r.register = {status: reg.status, id: reg.json?.player?.id, name: reg.json?.player?.name};

    r.at = "login";
    // the name in another case: names are one whatever their case
    const login = await call("POST", "/api/auth/login",
      {body: {name: name.toUpperCase(), password}});
    const s1 = login.json || {};
    r.login = {status: login.status, token_type: s1.token_type, expires_in: s1.expires_in,
      has_access: typeof s1.access_token === "string" && s1.access_token.split(".").length === 3,
      has_refresh: typeof s1.refresh_token === "string", id: s1.player?.id};

    r.at = "me";
    const me = await call("GET", "/api/auth/me", {token: s1.access_token});
    r.me = {status: me.status, id: me.json?.player?.id, name: me.json?.player?.name,
      guest: me.json?.player?.guest};

    r.at = "world-engine regions";
    const regions = await call("GET", "/api/world-engine/regions", {token: s1.access_token});
    r.regions = {status: regions.status, ids: (regions.json?.regions || []).map((x) => x.id),
      request_id: regions.request_id, rate_remaining: regions.rate_remaining};

    r.at = "every module's /health";
    r.health = {};
    for (const m of modules) {
      // one module the browser refuses must not hide the steps after this one
      try {
        const h = await call("GET", `/api/${m}/health`, {token: s1.access_token});
        r.health[m] = h.status === 200 ? h.json?.service : `status ${h.status}`;
      } catch (e) {
        r.health[m] = `refused by the browser: ${e.message}`;
      }
    }

    r.at = "refresh";
    const ref = await call("POST", "/api/auth/refresh", {body: {refresh_token: s1.refresh_token}});
    const s2 = ref.json || {};
    r.refresh = {status: ref.status, id: s2.player?.id,
      new_access: !!s2.access_token && s2.access_token !== s1.access_token,
      new_refresh: !!s2.refresh_token && s2.refresh_token !== s1.refresh_token};
    const me2 = await call("GET", "/api/auth/me", {token: s2.access_token});
    r.me_after_refresh = {status: me2.status, id: me2.json?.player?.id};

    r.at = "websocket";
    const sock = await openWs(wsUrl);
    sock.ws.send(JSON.stringify({type: "hello", token: s2.access_token, client: "page"}));
    const welcome = await sock.next();
    r.welcome = {type: welcome.type, id: welcome.player?.id, name: welcome.player?.name,
      guest: welcome.player?.guest, subscriptions: welcome.subscriptions, code: welcome.code};
    r.at = "websocket subscribe";
    // the player's own channel is granted only to that player: the token's identity is used
    sock.ws.send(JSON.stringify({type: "subscribe", id: 1,
      channels: ["region:terra-nova", "player:" + s2.player?.id]}));
    r.ack = await sock.next();
    sock.ws.send(JSON.stringify({type: "subscribe", id: 2, channels: ["player:someone-else"]}));
    const denied = await sock.next();
    r.other_player = {type: denied.type, code: denied.code, id: denied.id};
    sock.ws.send(JSON.stringify({type: "ping", id: 3}));
    r.pong = (await sock.next()).type;
    sock.ws.close(1000);
    await Promise.race([sock.closed, new Promise((res) => setTimeout(res, 3000))]);
    r.ws_closed = sock.close_code;

    r.at = "logout";
    const out = await call("POST", "/api/auth/logout",
      {body: {refresh_token: s2.refresh_token}, token: s2.access_token});
    r.logout = {status: out.status, logged_out: out.json?.logged_out};

    r.at = "after logout";
    const again = await call("POST", "/api/auth/refresh",
      {body: {refresh_token: s2.refresh_token}});
    r.refresh_after_logout = {status: again.status, code: again.json?.error?.code};
    const me3 = await call("GET", "/api/auth/me", {token: s2.access_token});
    r.me_after_logout = me3.status;
    const sock2 = await openWs(wsUrl);
    sock2.ws.send(JSON.stringify({type: "hello", token: s2.access_token}));
    const refused = await sock2.next();
    await Promise.race([sock2.closed, new Promise((res) => setTimeout(res, 3000))]);
    r.hello_after_logout = {type: refused.type, code: refused.code, close: sock2.close_code};
    r.at = "done";
  } catch (e) {
    r.error = `${r.at}: ${e.message}`;
  }
  return r;
}

async function browser() {
  const { chromium } = require("playwright-core");
  const b = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--headless=new"],
  });
  try {
    const page = await b.newPage();
    const consoleErrors = [];
    // Chromium reports CORS refusals only on the console; kept for the failure message
    page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
    const nav = await page.goto(pageUrl);
    const r = await page.evaluate(inPage, [gw, uniqueName("page"), PASSWORD, MODULES]);
    r.page_status = nav ? nav.status() : null;
    r.console_errors = [...new Set(consoleErrors)].slice(0, 4);
    return r;
  } finally {
    await b.close();
  }
}

// node's http rather than fetch: fetch may drop or refuse a hand-set Origin header.
function req(method, path, {headers = {}, body} = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const rq = http.request(gw + path, {method, headers, timeout: 5000}, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c) => { text += c; });
      res.on("end", () => {
        let json = null;
        try { json = JSON.parse(text); } catch (e) { /* not JSON */ }
        resolve({status: res.statusCode, headers: res.headers, json});
      });
    });
    rq.on("timeout", () => rq.destroy(new Error(`${method} ${path}: no answer in 5 s`)));
    rq.on("error", reject);
    rq.end(data);
  });
}

// The handshake's status only: 101 means the socket would have opened.
function upgradeStatus(origin) {
  return new Promise((resolve, reject) => {
    const rq = http.request(gw + "/ws", {timeout: 5000, headers: {
      Connection: "Upgrade", Upgrade: "websocket", "Sec-WebSocket-Version": "13",
      "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", Origin: origin}});
    rq.on("upgrade", (res, socket) => { socket.destroy(); resolve(res.statusCode); });
    rq.on("response", (res) => { res.resume(); resolve(res.statusCode); });
    rq.on("timeout", () => rq.destroy(new Error("/ws: no answer in 5 s")));
    rq.on("error", reject);
    rq.end();
  });
}

async function direct() {
  const r = {};
  const name = uniqueName("node");
  const refresh = (token) => req("POST", "/api/auth/refresh", {body: {refresh_token: token}});
  try {
    r.at = "register";
    const reg = await req("POST", "/api/auth/register", {body: {name, password: PASSWORD}});
    r.register = reg.status;
    r.at = "login";
    const login = await req("POST", "/api/auth/login", {body: {name, password: PASSWORD}});
    const s1 = login.json || {};
    r.login = {status: login.status, id: s1.player?.id};
    r.at = "me";
    const me = await req("GET", "/api/auth/me",
      {headers: {Authorization: "Bearer " + s1.access_token}});
    r.me = {status: me.status, id: me.json?.player?.id};

    r.at = "refresh";
    const a = await refresh(s1.refresh_token);
    const b = await refresh(a.json?.refresh_token);
    r.refresh = [a.status, b.status];
    r.at = "refresh reuse";
    const reuse = await refresh(s1.refresh_token);
    r.reuse = {status: reuse.status, message: reuse.json?.error?.message};
    const newest = await refresh(b.json?.refresh_token);
    r.newest_after_reuse = newest.status;

    r.at = "preflight";
    const preflight = (origin) => req("OPTIONS", "/api/auth/login", {headers: {Origin: origin,
      "Access-Control-Request-Method": "POST",
      "Access-Control-Request-Headers": "content-type, authorization"}});
    const good = await preflight(PAGE_ORIGIN);
    r.preflight_page = {status: good.status,
      allow_origin: good.headers["access-control-allow-origin"] || null};
    const evil = await preflight(EVIL);
    r.preflight_evil = {status: evil.status, code: evil.json?.error?.code,
      allow_headers: Object.keys(evil.headers)
        .filter((h) => h.startsWith("access-control-allow-"))};
    r.at = "actual request from another origin";
    const act = await req("GET", "/api/world-engine/regions", {headers: {Origin: EVIL}});
    r.actual_evil = {status: act.status,
      allow_origin: act.headers["access-control-allow-origin"] || null,
      vary: act.headers.vary || null};

    r.at = "/ws upgrade";
    r.ws_upgrade_page = await upgradeStatus(PAGE_ORIGIN);
    r.ws_upgrade_evil = await upgradeStatus(EVIL);
    r.at = "done";
  } catch (e) {
    r.error = `${r.at}: ${e.message}`;
  }
  return r;
}

(async () => {
  const timer = setTimeout(() => { console.error(`${mode}: not done in 30 s`); process.exit(1); },
    30000);
  const r = mode === "browser" ? await browser() : await direct();
  console.log(JSON.stringify(r));
  clearTimeout(timer);
})().catch((e) => { console.error(e.stack || e.message); process.exit(1); });
