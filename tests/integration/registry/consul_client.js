// consul_client.js - the npm `consul` client (2.x) against our registry, as an operator's tool
// would use it: with the stack's token everything works; without one, with one nobody issued,
// or with one whose rules do not cover the instance, writes are refused with 403.
// usage: node consul_client.js PORT STACK_TOKEN SONGS_TOKEN
'use strict';
const path = require('path');
const Consul = require(path.join(__dirname, '..', '..', 'support', 'node_modules', 'consul'));

const [port, stackToken, songsToken] = process.argv.slice(2);
let fails = 0;
function check(what, ok, detail) {
    console.log(`${ok ? 'ok' : 'FAIL'} - ${what}${ok || detail === undefined ? '' : ': ' + detail}`);
    if (!ok) fails++;
}
const client = (token) => new Consul({host: '127.0.0.1', port: Number(port),
                                      defaults: token ? {token} : {}});
async function status(p) {
    try { await p; return 200; } catch (e) { return e.response ? e.response.statusCode : String(e); }
}

(async () => {
    const stack = client(stackToken), anon = client(null), bogus = client('nobody-issued-this-1');
    const songs = client(songsToken);
    const svc = {name: 'song-extra', id: 'song-extra-1', address: '127.0.0.1', port: 4101,
                 tags: ['v1'], meta: {zone: 'a'}, check: {ttl: '30s'}};

    check('register with the stack token', await status(stack.agent.service.register(svc)) === 200);
    check('check pass with the stack token',
          await status(stack.agent.check.pass('service:song-extra-1')) === 200);
    const list = await stack.agent.service.list();
    check('agent service list has it with its meta',
          list['song-extra-1'] && list['song-extra-1'].Meta.zone === 'a', JSON.stringify(list));
    const nodes = await stack.catalog.service.nodes('song-extra');
    check('catalog service nodes', nodes.length === 1 && nodes[0].ServicePort === 4101,
          JSON.stringify(nodes));
    const health = await stack.health.service({service: 'song-extra', passing: true});
    check('health service passing', health.length === 1 && health[0].Service.ID === 'song-extra-1',
          JSON.stringify(health));
    const services = await stack.catalog.service.list();
    check('catalog service list', Object.prototype.hasOwnProperty.call(services, 'song-extra'));

    // Under deny, no token: nothing to read or write; an unknown token: 403 whatever it does.
    check('register without a token is refused (403)',
          await status(anon.agent.service.register({...svc, id: 'song-extra-2'})) === 403);
    check('reading without a token is refused under deny (403)',
          await status(anon.agent.service.list()) === 403);
    check('a token nobody issued is refused (403)',
          await status(bogus.agent.service.list()) === 403);
    // A token with write on song-* may register its own, but not take over another's instance
    // outside its names, nor fail or deregister it.
    check('a song-* token registers song-solo',
          await status(songs.agent.service.register({name: 'song-solo', id: 'song-solo-1',
                                                     port: 4102})) === 200);
    await status(stack.agent.service.register({name: 'world-x', id: 'world-x-1', port: 4103}));
    check('the song-* token cannot re-register world-x-1 (403)',
          await status(songs.agent.service.register({name: 'song-x', id: 'world-x-1',
                                                     port: 1})) === 403);
    check('the song-* token cannot fail world-x-1 (403)',
          await status(songs.agent.check.fail('service:world-x-1')) === 403);
    check('the song-* token cannot deregister world-x-1 (403)',
          await status(songs.agent.service.deregister('world-x-1')) === 403);
    const still = await stack.agent.service.list();
    check('world-x-1 is untouched', still['world-x-1'] && still['world-x-1'].Port === 4103);

    check('deregister with the stack token',
          await status(stack.agent.service.deregister('song-extra-1')) === 200);
    const after = await stack.agent.service.list();
    check('it is gone', !after['song-extra-1']);
    process.exit(fails ? 1 : 0);
})().catch((e) => { console.log('FAIL - ' + (e.stack || e)); process.exit(1); });
