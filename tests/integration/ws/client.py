#!/usr/bin/env python3
"""client.py URL CHANNEL READY_FILE - a client on Debian's python3-websockets: hello,
subscribe to CHANNEL, touch READY_FILE, then print the first event's JSON and exit 0 (exit 1
after 20 s without one)."""
import asyncio
import json
import sys

import websockets


async def main(url, channel, ready):
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "hello", "client": "python-websockets", "version": "1"}))
        welcome = json.loads(await ws.recv())
        assert welcome["type"] == "welcome", welcome
        await ws.send(json.dumps({"type": "subscribe", "id": 1, "channels": [channel]}))
        ack = json.loads(await ws.recv())
        assert ack == {"type": "ack", "id": 1}, ack
        open(ready, "w").close()
        while True:
            msg = json.loads(await ws.recv())
            if msg["type"] == "event":
                print(json.dumps(msg))
                return


asyncio.run(asyncio.wait_for(main(*sys.argv[1:4]), 20))
