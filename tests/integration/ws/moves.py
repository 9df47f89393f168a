#!/usr/bin/env python3
"""moves.py URL N - one client in our dialect says hello and makes N small moves, one at a time,
each waiting for its answer; prints {"moved": how many were answered "moved", "errors": the
error answers}. Exit 1 only when the connection itself fails."""
import asyncio
import json
import sys

import websockets


async def main(url, n):
    moved, errors = 0, []
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "hello", "name": "mover"}))
        while json.loads(await ws.recv()).get("type") != "welcome":
            pass
        for i in range(n):
            await ws.send(json.dumps({"type": "move", "id": i + 1,
                                      "position": {"x": 512 + i * 0.5, "y": 0, "z": 512}}))
            while True:
                m = json.loads(await ws.recv())
                if m.get("id") == i + 1 and m.get("type") in ("moved", "error"):
                    break
            if m["type"] == "moved":
                moved += 1
            else:
                errors.append(m)
    print(json.dumps({"moved": moved, "errors": errors}))


asyncio.run(asyncio.wait_for(main(sys.argv[1], int(sys.argv[2])), 60))
