#!/usr/bin/env python3
"""world_stream.py URL PROCGEN [DESCRIPTOR_SET] - spatial streaming through the WebSocket gateway: two clients
in terra-nova, a few metres apart, each get cell_enter for the cells around them (terrain equal
to the bytes of GET .../terrain?format=bin, the cell's state, the entities in it, the other
player among them); one steps west into the next cell and gets cell_enter for the column that
came into view; the other sees that step in an entities_delta (position in centimetres); a
resync enters every cell again. With a descriptor set of proto/world3d.proto, a third client asks
for the subprotocol finalverse.world3d.v1+proto and gets the same stream as binary StreamMessage
frames. Prints one JSON line of facts and exits 0, or fails (exit 1)."""
import asyncio
import base64
import json
import os
import sys
import time

import urllib.request

import websockets

from world_move import ground


def terrain_bin(procgen, cx, cy):
    url = f"{procgen}/regions/terra-nova/cells/{cx}/{cy}/terrain?format=bin"
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


async def hello(url, name, subprotocols=None):
    ws = await websockets.connect(url, max_size=1 << 22, subprotocols=subprotocols)
    await ws.send(json.dumps({"type": "hello", "name": name}))
    while True:
        m = json.loads(await ws.recv())
        if m.get("type") == "welcome":
            return ws, m["player"]["id"]


async def move(ws, mid, x, y, z):
    await ws.send(json.dumps({"type": "move", "id": mid, "position": {"x": x, "y": y, "z": z}}))


async def events(ws, until, timeout=20):
    """Stream events (cell_enter, cell_leave, entities_delta) until until(kind, data) is true."""
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        assert left > 0, "timed out waiting for the stream"
        m = json.loads(await asyncio.wait_for(ws.recv(), left))
        if m.get("type") == "event" and m.get("event") in ("cell_enter", "cell_leave",
                                                           "entities_delta"):
            assert m["channel"].startswith("player:"), m
            if until(m["event"], m["data"]):
                return


def has_player(ents, pid):
    return any(e.get("player_id") == pid and e["kind"] == "player" for e in ents)


async def main(url, procgen, desc):
    facts = {}
    a, ida = await hello(url, "walker")
    b, idb = await hello(url, "watcher")
    ya, yb = ground(procgen, 514, 520), ground(procgen, 520, 520)
    await move(a, 1, 514, ya, 520)
    await move(b, 1, 520, yb, 520)

    # a: the 49 cells around (8, 8) entered, nearest first; b is in a's own cell
    entered, saw_b, first = set(), False, None
    def a_enters(kind, d):
        nonlocal saw_b, first
        if kind == "cell_enter":
            assert d["region"] == "terra-nova", d
            cell = (d["cell"]["x"], d["cell"]["y"])
            first = first or cell
            entered.add(cell)
            assert d["terrain"]["encoding"] == "fvt1", d["terrain"]["encoding"]
            st = d["state"]
            assert (st["x"], st["y"]) == cell and 0 <= st["harmony"] <= 100, st
            saw_b = saw_b or has_player(d["entities"], idb)
        if kind == "entities_delta":
            saw_b = saw_b or has_player(d["entities"], idb)
        return len(entered) == 49 and saw_b
    await events(a, a_enters)
    assert entered == {(x, y) for x in range(5, 12) for y in range(5, 12)}, sorted(entered)
    assert first == (8, 8), first
    facts["entered"] = len(entered)

    # a steps west over the border at x = 512: the column x = 4 comes into view, and its
    # terrain is exactly what procedural-gen serves
    await move(a, 2, 509, ground(procgen, 509, 520), 520)
    column, terrain_ok = set(), True
    def a_column(kind, d):
        nonlocal terrain_ok
        if kind == "cell_enter" and d["cell"]["x"] == 4:
            column.add(d["cell"]["y"])
            raw = base64.b64decode(d["terrain"]["data"])
            terrain_ok = terrain_ok and raw == terrain_bin(procgen, 4, d["cell"]["y"])
        return len(column) == 7
    await events(a, a_column)
    assert column == set(range(5, 12)), column
    assert terrain_ok, "cell_enter's terrain differs from GET .../terrain?format=bin"
    facts["column"] = sorted(column)

    # b sees a's step: a in cell (7, 8) at x = 509 m
    def b_sees(kind, d):
        if kind == "entities_delta":
            for e in d["entities"]:
                if e.get("player_id") == ida and e["pos"][0] == 50900:
                    assert d["tick"] > 0 and d["seq"] > 0 and 0 < d["dilation"] <= 1, d
                    return True
        if kind == "cell_enter":
            for e in d["entities"]:
                if e.get("player_id") == ida and e["pos"][0] == 50900:
                    return True
        return False
    await events(b, b_sees)
    facts["seen"] = True

    # resync: every cell of a's view entered again
    await a.send(json.dumps({"type": "resync", "id": 7}))
    again = set()
    def a_again(kind, d):
        if kind == "cell_enter":
            again.add((d["cell"]["x"], d["cell"]["y"]))
        return len(again) >= 49
    await events(a, a_again)
    facts["resynced"] = len(again)
    if desc:
        facts["binary"] = await binary(url, procgen, desc, ida)
    await a.close()
    await b.close()
    print(json.dumps(facts))


async def binary(url, procgen, desc, ida):
    """A client on the binary subprotocol: its view as StreamMessage frames, its other messages
    still JSON text."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from pb_classes import message_class, pool_of
    Stream = message_class(pool_of(desc), "finalverse.world3d.v1.StreamMessage")
    c, idc = await hello(url, "binary", ["finalverse.world3d.v1+proto"])
    assert c.subprotocol == "finalverse.world3d.v1+proto", c.subprotocol
    await move(c, 1, 506, ground(procgen, 506, 520), 520)
    entered, saw_a, texts, end = set(), False, 0, time.monotonic() + 20
    while len(entered) < 49 or not saw_a:
        assert time.monotonic() < end, ("binary stream", len(entered), saw_a)
        frame = await asyncio.wait_for(c.recv(), end - time.monotonic())
        if isinstance(frame, str):
            texts += 1                              # moved, and events of other kinds
            continue
        m = Stream.FromString(frame)
        kind = m.WhichOneof("message")
        if kind == "cell_enter":
            e = m.cell_enter
            assert e.cell.region == "terra-nova" and e.state.biome, e.cell
            if (e.cell.x, e.cell.y) == (7, 8):
                assert e.terrain == terrain_bin(procgen, 7, 8), "binary terrain differs"
            entered.add((e.cell.x, e.cell.y))
            ents = e.entities
        elif kind == "entities_delta":
            ents = m.entities_delta.entities
        else:
            ents = []
        saw_a = saw_a or any(x.player_id == ida and x.x_cm == 50900 for x in ents)
    await c.close()
    return {"entered": len(entered), "texts": texts}


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(*sys.argv[1:3], sys.argv[3] if len(sys.argv) > 3 else None),
                                 90))
