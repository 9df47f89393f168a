#!/usr/bin/env python3
"""publish.py REDIS_URL CHANNEL POWER - publishes a song.performed event the way a Finalverse
bus does across processes: a finalverse.events.v1.Envelope (proto/events.proto) on Redis channel
"fv.bus.<CHANNEL>", with a SongPerformed payload. Protobuf is written by hand from the .proto
field numbers, and Redis is spoken in RESP over a plain socket, so nothing but python3 is
needed."""
import os
import socket
import struct
import sys
import time
from urllib.parse import urlparse


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, wire, payload):
    return varint(num << 3 | wire) + payload


def lenfield(num, data):
    return field(num, 2, varint(len(data)) + data)


def song_performed(power):
    at = field(1, 1, struct.pack("<d", 100.0)) + field(2, 1, struct.pack("<d", 50.0)) + \
        field(3, 1, struct.pack("<d", 200.0))
    position = lenfield(1, b"terra-nova") + lenfield(2, at)
    return (lenfield(1, b"it-player") + lenfield(2, position) + field(3, 0, varint(1)) +
            field(4, 1, struct.pack("<d", power)))


def main():
    url, channel, power = sys.argv[1], sys.argv[2], float(sys.argv[3])
    env = (lenfield(1, channel.encode()) + lenfield(2, b"song.performed") +
           lenfield(3, song_performed(power)) +
           field(4, 1, struct.pack("<Q", int.from_bytes(os.urandom(8), "little"))) +
           field(5, 0, varint(1)) + field(6, 0, varint(int(time.time() * 1000))))
    u = urlparse(url)
    key = b"fv.bus." + channel.encode()
    cmd = b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(env), env)
    with socket.create_connection((u.hostname, u.port or 6379), timeout=5) as s:
        s.sendall(cmd)
        reply = s.recv(64)
    if not reply.startswith(b":"):
        sys.exit("redis answered %r" % reply)
    print("receivers:", int(reply[1:].split(b"\r\n")[0]))


main()
