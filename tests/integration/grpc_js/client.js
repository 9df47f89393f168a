// client.js - grpc-js (a gRPC implementation nobody here wrote) calls a server: unary,
// server-streaming, deadline exceeded, cancellation, metadata round trip, an unknown method,
// health Check. The server serves grpc.testing.TestService and grpc.health.v1.Health.
// Usage: node client.js PORT GRPC_PROTO_DIR HEALTH_PROTO_DIR
// Prints "PASS <case>" or "FAIL <case>: why" per case; exits 1 when any failed.
'use strict';
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');

const [port, protoDir, healthDir] = process.argv.slice(2);
const opts = { keepCase: true, longs: Number, enums: String, defaults: true };
const test = grpc.loadPackageDefinition(
    loader.loadSync('grpc/testing/test.proto', { ...opts, includeDirs: [protoDir] }));
const health = grpc.loadPackageDefinition(
    loader.loadSync('health.proto', { ...opts, includeDirs: [healthDir] }));

const addr = '127.0.0.1:' + port;
const creds = grpc.credentials.createInsecure();
const svc = new test.grpc.testing.TestService(addr, creds);
const unimpl = new test.grpc.testing.UnimplementedService(addr, creds);
const hc = new health.grpc.health.v1.Health(addr, creds);

const deadline = (ms) => ({ deadline: new Date(Date.now() + ms) });
const zeros = (n) => ({ type: 'COMPRESSABLE', body: Buffer.alloc(n) });
function expect(cond, what) { if (!cond) throw new Error(what); }
const unary = (client, name, req, md, o) => new Promise((resolve) => {
    const call = client[name](req, md || new grpc.Metadata(), o || deadline(10000),
        (err, resp) => resolve({ err, resp, call }));
    call.on('metadata', (m) => { call.headers = m; });
    call.on('status', (s) => { call.trailers = s.metadata; });
});

const cases = {
    async unary() {
        const { err, resp } = await unary(svc, 'UnaryCall',
            { response_size: 31415, payload: zeros(27182) });
        expect(!err, 'error ' + (err && err.message));
        expect(resp.payload.body.length === 31415, 'payload of ' + resp.payload.body.length);
    },
    async near_size_limit() {
        // 4 MiB is grpc.max_message_bytes by default; the prefix and fields take a few bytes
        const n = 4 * 1024 * 1024 - 64;
        const { err, resp } = await unary(svc, 'UnaryCall',
            { response_size: n, payload: zeros(n) });
        expect(!err, 'error ' + (err && err.message));
        expect(resp.payload.body.length === n, 'payload of ' + resp.payload.body.length);
    },
    async server_streaming() {
        const sizes = [31415, 9, 2653, 58979];
        const got = await new Promise((resolve, reject) => {
            const out = [];
            const call = svc.StreamingOutputCall({
                response_parameters: sizes.map((size) => ({ size })) }, deadline(10000));
            call.on('data', (m) => out.push(m.payload.body.length));
            call.on('error', reject);
            call.on('end', () => resolve(out));
        });
        expect(JSON.stringify(got) === JSON.stringify(sizes), 'sizes ' + JSON.stringify(got));
    },
    async deadline_exceeded() {
        // a bidirectional call that sends one message and never half-closes: the server
        // answers it and waits for more, until the 200 ms deadline ends the call
        const err = await new Promise((resolve) => {
            const call = svc.FullDuplexCall(deadline(200));
            call.on('data', () => {});
            call.on('error', resolve);
            call.on('end', () => resolve(null));
            call.write({ response_parameters: [{ size: 31415 }], payload: zeros(27182) });
        });
        expect(err && err.code === grpc.status.DEADLINE_EXCEEDED,
            'status ' + (err ? err.code : 'OK'));
    },
    async cancellation() {
        // a bidirectional call answered once, then cancelled while the server waits for more
        const err = await new Promise((resolve) => {
            const call = svc.FullDuplexCall(deadline(20000));
            call.on('data', () => call.cancel());
            call.on('error', resolve);
            call.on('end', () => resolve(null));
            call.write({ response_parameters: [{ size: 31415 }], payload: zeros(27182) });
        });
        expect(err && err.code === grpc.status.CANCELLED, 'status ' + (err ? err.code : 'OK'));
    },
    async metadata_round_trip() {
        const md = new grpc.Metadata();
        md.set('x-grpc-test-echo-initial', 'test_initial_metadata_value');
        md.set('x-grpc-test-echo-trailing-bin', Buffer.from([0xab, 0xab, 0xab, 0x00, 0xff]));
        const { err, call } = await unary(svc, 'UnaryCall',
            { response_size: 1, payload: zeros(1) }, md);
        expect(!err, 'error ' + (err && err.message));
        const ini = call.headers && call.headers.get('x-grpc-test-echo-initial');
        expect(ini && ini[0] === 'test_initial_metadata_value', 'initial ' + JSON.stringify(ini));
        const tr = call.trailers && call.trailers.get('x-grpc-test-echo-trailing-bin');
        expect(tr && Buffer.compare(tr[0], Buffer.from([0xab, 0xab, 0xab, 0x00, 0xff])) === 0,
            'trailing ' + JSON.stringify(tr));
    },
    async status_and_message() {
        const { err } = await unary(svc, 'UnaryCall',
            { response_status: { code: 2, message: 'test status message \t\n\u00e9 done' } });
        expect(err && err.code === 2, 'status ' + (err ? err.code : 'OK'));
        expect(err.details === 'test status message \t\n\u00e9 done',
            'message ' + JSON.stringify(err.details));
    },
    async unknown_method() {
        const { err } = await unary(unimpl, 'UnimplementedCall', {});
        expect(err && err.code === grpc.status.UNIMPLEMENTED, 'status ' + (err ? err.code : 'OK'));
        const r = await unary(svc, 'UnimplementedCall', {});
        expect(r.err && r.err.code === grpc.status.UNIMPLEMENTED,
            'TestService status ' + (r.err ? r.err.code : 'OK'));
    },
    async health_check() {
        const { err, resp } = await unary(hc, 'Check', { service: '' });
        expect(!err, 'error ' + (err && err.message));
        expect(resp.status === 'SERVING', 'status ' + resp.status);
    },
};

(async () => {
    let failed = 0;
    const only = process.argv.slice(5);
    for (const [name, fn] of Object.entries(cases)) {
        if (only.length && !only.includes(name)) continue;
        try {
            await fn();
            console.log('PASS ' + name);
        } catch (e) {
            failed++;
            console.log('FAIL ' + name + ': ' + e.message);
        }
    }
    svc.close(); unimpl.close(); hc.close();
    process.exit(failed ? 1 : 0);
})();
