// register_many.js - N registrations, WINDOW in flight, while another module's /health is asked
// every few milliseconds: prints that probe's latencies (p50, p99, max). Measured, not asserted:
// the machines tests run on are shared. Every registration and every probe must answer 200.
// usage: node register_many.js REGISTRY_PORT TOKEN N WINDOW HEALTH_URL
'use strict';
const http = require('http');

const [port, token, nStr, windowStr, healthUrl] = process.argv.slice(2);
const n = Number(nStr), window = Number(windowStr);
const agent = new http.Agent({keepAlive: true, maxSockets: window});
const probeAgent = new http.Agent({keepAlive: true, maxSockets: 1});

function request(opts, body, ag) {
    return new Promise((resolve) => {
        const req = http.request({...opts, agent: ag, timeout: 30000}, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode));
        });
        req.on('error', (e) => resolve(String(e)));
        req.on('timeout', () => req.destroy(new Error('timeout')));
        if (body) req.write(body);
        req.end();
    });
}

let bad = 0, next = 0, probesBad = 0, done = false;
const lat = [];
async function worker() {
    while (next < n) {
        const i = next++;
        const body = JSON.stringify({Name: `bulk-${i % 500}`, ID: `bulk-${i}`, Address: '127.0.0.1',
                                     Port: 10000 + (i % 20000), Tags: ['t'], Meta: {k: 'v'},
                                     Check: {TTL: '10m'}});
        const code = await request({host: '127.0.0.1', port, method: 'PUT',
                                    path: '/v1/agent/service/register',
                                    headers: {'X-Consul-Token': token,
                                              'Content-Type': 'application/json'}}, body, agent);
        if (code !== 200) bad++;
    }
}
async function prober() {
    const u = new URL(healthUrl);
    while (!done) {
        const t0 = process.hrtime.bigint();
        const code = await request({host: u.hostname, port: u.port, path: u.pathname}, null,
                                   probeAgent);
        lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
        if (code !== 200) probesBad++;
        await new Promise((r) => setTimeout(r, 5));
    }
}
(async () => {
    const t0 = Date.now();
    const p = prober();
    await Promise.all(Array.from({length: window}, worker));
    const secs = (Date.now() - t0) / 1000;
    done = true;
    await p;
    lat.sort((a, b) => a - b);
    const q = (f) => lat[Math.min(lat.length - 1, Math.floor(f * lat.length))].toFixed(2);
    console.log(`# ${n} registrations in ${secs.toFixed(2)} s (${Math.round(n / secs)}/s), ` +
                `${bad} not 200`);
    console.log(`# /health meanwhile: ${lat.length} probes, p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, ` +
                `max ${lat[lat.length - 1].toFixed(2)} ms, ${probesBad} not 200`);
    process.exit(bad || probesBad || lat.length === 0 ? 1 : 0);
})();
