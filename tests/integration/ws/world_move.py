#!/usr/bin/env python3
"""world_move.py URL PROCGEN - moves through the WebSocket gateway to the world engine, as two clients
in our dialect and one in the first viewer's: a step is taken as asked, a jump is cut to the
speed cap, NaN (not JSON) is an error on an open connection, an unknown region is refused, the
other client sees the move as a player.moved event on the region's channel, and the legacy
move_player (100, 50, 200) comes back as position_updated close to the spawn. Prints one JSON
line of facts for the shell test and exits 0, or fails an assertion (exit 1)."""
import asyncio
import json
import math
import sys

import urllib.request

import websockets


def ground(procgen, x, z):
    """The ground under region-local (x, z) of terra-nova at integer metres, from the terrain
    patch procedural-gen serves: where a move is taken as asked (water counts as 0)."""
    cx, cy, i, j = int(x) // 64, int(z) // 64, int(x) % 64, int(z) % 64
    with urllib.request.urlopen(f"{procgen}/regions/terra-nova/cells/{cx}/{cy}/terrain",
                                timeout=10) as r:
        h = json.load(r)["heights"][j * 65 + i]
    return max(h, 0)


async def recv_type(ws, want):
    while True:
        msg = json.loads(await ws.recv())
        if msg.get("type") == want:
            return msg


async def main(url, procgen):
    facts = {}
    gy = ground(procgen, 513, 512)
    async with websockets.connect(url) as a, websockets.connect(url) as b:
        await a.send(json.dumps({"type": "hello", "name": "mover"}))
        wa = await recv_type(a, "welcome")
        await b.send(json.dumps({"type": "hello", "name": "watcher"}))
        await recv_type(b, "welcome")
        await b.send(json.dumps({"type": "subscribe", "id": 1, "channels": ["region:terra-nova"]}))
        assert (await recv_type(b, "ack"))["id"] == 1
        me = wa["player"]["id"]
        facts["player"] = me

        await a.send(json.dumps({"type": "move", "id": 1,
                                 "position": {"x": 513, "y": gy, "z": 512}, "yaw": 0.5}))
        m = await recv_type(a, "moved")
        assert m["id"] == 1 and not m["corrected"] and not m["refused"], m
        pos = m["position"]
        assert (pos["region"], pos["x"], pos["z"]) == ("terra-nova", 513, 512), m
        assert abs(pos["y"] - gy) < 1e-6, m              # on the ground (as a float has it)

        await a.send(json.dumps({"type": "move", "id": 2,
                                 "position": {"x": 900, "y": -20, "z": 512}}))
        m = await recv_type(a, "moved")
        assert m["corrected"] and m["reason"] == "too_fast", m
        x = m["position"]["x"]
        assert 513 < x < 900 - 300, m
        assert m["position"]["y"] >= 0, m                 # lifted onto the ground
        facts["corrected_x"] = x

        # NaN is not JSON: an error, and the connection stays open
        await a.send('{"type":"move","id":3,"position":{"x":NaN,"y":0,"z":1}}')
        e = await recv_type(a, "error")
        assert e["code"] == "invalid_argument", e
        await a.send(json.dumps({"type": "move", "id": 4, "region": "atlantis",
                                 "position": {"x": 1, "y": 0, "z": 1}}))
        m = await recv_type(a, "moved")
        assert m["refused"] and m["reason"] == "unknown_region", m
        assert m["position"]["x"] == x, m

        # the watcher sees the mover on the region's channel
        while True:
            ev = await recv_type(b, "event")
            if ev["event"] == "player.moved" and ev["data"]["player_id"] == me:
                break
        assert ev["channel"] == "region:terra-nova", ev
        facts["seen_x"] = ev["data"]["position"]["at"]["x"]

    async with websockets.connect(url) as v:
        await v.send(json.dumps({"type": "connect",
                                 "data": {"name": "viewer", "client_version": "1.0"}}))
        pa = await recv_type(v, "player_assigned")
        facts["legacy_player"] = pa["data"]["player_id"]
        await v.send(json.dumps({"type": "move_player", "data": {"x": 100, "y": 50, "z": 200}}))
        p = (await recv_type(v, "position_updated"))["data"]
        d = math.hypot(p["x"] - 512, p["z"] - 512)
        assert 0 < d <= 26 + 1e-6 and p["x"] < 512 and p["z"] < 512, p
        assert p["y"] == 50, p
        facts["legacy"] = p
    print(json.dumps(facts))


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(sys.argv[1], sys.argv[2]), 30))
