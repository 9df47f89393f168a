#!/usr/bin/env python3
"""cases.py HOST PORT - RFC 6455 case groups in the spirit of the Autobahn testsuite, written
from the RFC with raw sockets: handshake, framing, fragmentation, control frames, UTF-8, close
codes and limits. Each case sends its frames after a handshake and checks how the server
answers (the close code it sends, or that it stays open and answers a ping). The same runner
runs against our gateway and against a server on npm's ws, so a case that both servers fail
the same way points at the runner, not at us. Prints one line per case and the closing line
'N passed, N failed'; exit 1 when any failed."""
import os
import socket
import struct
import sys

HOST, PORT = sys.argv[1], int(sys.argv[2])
LIMIT = int(os.environ.get("WS_CASES_LIMIT", "65536"))


def frame(first, payload=b"", masked=True, length=None):
    n = len(payload) if length is None else length
    mb = 0x80 if masked else 0
    if n < 126:
        h = bytes([first, mb | n])
    elif n < 65536:
        h = bytes([first, mb | 126]) + struct.pack(">H", n)
    else:
        h = bytes([first, mb | 127]) + struct.pack(">Q", n)
    if not masked:
        return h + payload
    key = os.urandom(4)
    return h + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class Conn:
    def __init__(self):
        self.s = socket.create_connection((HOST, PORT), timeout=5)
        self.s.sendall(b"GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                       b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       b"Sec-WebSocket-Version: 13\r\n\r\n" % HOST.encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.s.recv(4096)
            if not chunk:
                raise RuntimeError("closed during the handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError("handshake answered " + head.split(b"\r\n")[0].decode())
        if b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" not in head:
            raise RuntimeError("wrong Sec-WebSocket-Accept")

    def send(self, data):
        try:
            self.s.sendall(data)
        except OSError:
            pass  # the server may close before it has read everything: its frame tells why

    def read_frame(self):
        """(opcode, payload), or None when the connection ended."""
        while True:
            if len(self.buf) >= 2:
                n = self.buf[1] & 0x7F
                at = 2
                if n == 126 and len(self.buf) >= 4:
                    n, at = struct.unpack(">H", self.buf[2:4])[0], 4
                elif n == 127 and len(self.buf) >= 10:
                    n, at = struct.unpack(">Q", self.buf[2:10])[0], 10
                if n < 126 or at > 2:
                    if len(self.buf) >= at + n:
                        op, data = self.buf[0] & 0x0F, self.buf[at:at + n]
                        self.buf = self.buf[at + n:]
                        return op, data
            try:
                chunk = self.s.recv(65536)
            except (socket.timeout, OSError):
                return None
            if not chunk:
                return None
            self.buf += chunk

    def close_code(self):
        """The code of the server's close frame (1005 for none given), skipping other
        frames; None when the connection ended without one."""
        while True:
            f = self.read_frame()
            if f is None:
                return None
            if f[0] == 0x8:
                return struct.unpack(">H", f[1][:2])[0] if len(f[1]) >= 2 else 1005

    def alive(self):
        """Answers a ping with a pong carrying the same payload."""
        self.send(frame(0x89, b"alive?"))
        while True:
            f = self.read_frame()
            if f is None or f[0] == 0x8:
                return False
            if f[0] == 0xA and f[1] == b"alive?":
                return True


CASES = []


def case(group, name):
    def add(fn):
        CASES.append((group, name, fn))
        return fn
    return add


def expect_close(frames, code):
    c = Conn()
    c.send(b"".join(frames))
    got = c.close_code()
    return got == code, "close %s, want %s" % (got, code)


@case("1 handshake", "a valid handshake is accepted and a ping answered")
def _():
    return Conn().alive(), "no pong"


@case("2 framing", "unmasked client frame -> 1002")
def _():
    return expect_close([frame(0x81, b"hi", masked=False)], 1002)


@case("2 framing", "RSV1 set without an extension -> 1002")
def _():
    return expect_close([frame(0xC1, b"hi")], 1002)


@case("2 framing", "RSV2 and RSV3 set -> 1002")
def _():
    return expect_close([frame(0xB1, b"hi")], 1002)


@case("2 framing", "reserved data opcode 3 -> 1002")
def _():
    return expect_close([frame(0x83, b"hi")], 1002)


@case("2 framing", "reserved control opcode 0xB -> 1002")
def _():
    return expect_close([frame(0x8B, b"")], 1002)


@case("3 control", "ping with 125 bytes is answered")
def _():
    c = Conn()
    c.send(frame(0x89, b"p" * 125))
    f = c.read_frame()
    return f == (0xA, b"p" * 125), "got %r" % (f,)


@case("3 control", "ping with 126 bytes -> 1002")
def _():
    return expect_close([frame(0x89, b"p" * 126)], 1002)


@case("3 control", "fragmented ping -> 1002")
def _():
    return expect_close([frame(0x09, b"p")], 1002)


@case("3 control", "ping between two fragments is answered, connection stays")
def _():
    c = Conn()
    c.send(frame(0x01, b"{\"type\":") + frame(0x89, b"mid") + frame(0x80, b"\"ping\"}"))
    f = c.read_frame()
    return f == (0xA, b"mid") and c.alive(), "got %r" % (f,)


@case("3 control", "100 pings in one write are all answered")
def _():
    c = Conn()
    c.send(b"".join(frame(0x89, str(i).encode()) for i in range(100)))
    got = [c.read_frame() for _ in range(100)]
    return got == [(0xA, str(i).encode()) for i in range(100)], "pongs out of order or missing"


@case("4 fragmentation", "continuation without a message -> 1002")
def _():
    return expect_close([frame(0x80, b"x")], 1002)


@case("4 fragmentation", "a new text message inside a fragmented one -> 1002")
def _():
    return expect_close([frame(0x01, b"a"), frame(0x81, b"b")], 1002)


@case("5 utf-8", "invalid UTF-8 in a text message -> 1007")
def _():
    return expect_close([frame(0x81, "κόσμε".encode() + b"\xed\xa0\x80edited")], 1007)


@case("5 utf-8", "invalid UTF-8 split across fragments -> 1007")
def _():
    return expect_close([frame(0x01, b"\xce"), frame(0x80, b"\xba\xff")], 1007)


@case("5 utf-8", "overlong encoding -> 1007")
def _():
    return expect_close([frame(0x81, b"\xc0\xaf")], 1007)


@case("5 utf-8", "valid UTF-8 split inside a character is fine")
def _():
    c = Conn()
    c.send(frame(0x01, b"{\"type\":\"ping\",\"x\":\"\xce") + frame(0x80, b"\xba\"}"))
    return c.alive(), "connection closed"


@case("6 close", "close 1000 is answered with a close")
def _():
    c = Conn()
    c.send(frame(0x88, struct.pack(">H", 1000) + b"bye"))
    got = c.close_code()
    return got in (1000,), "close %s" % got


@case("6 close", "close with a 1-byte payload -> 1002")
def _():
    return expect_close([frame(0x88, b"\x03")], 1002)


@case("6 close", "close code 1005 (reserved) -> 1002")
def _():
    return expect_close([frame(0x88, struct.pack(">H", 1005))], 1002)


@case("6 close", "close code 999 -> 1002")
def _():
    return expect_close([frame(0x88, struct.pack(">H", 999))], 1002)


@case("6 close", "close code 5000 -> 1002")
def _():
    return expect_close([frame(0x88, struct.pack(">H", 5000))], 1002)


@case("6 close", "close reason that is not UTF-8 -> 1007")
def _():
    return expect_close([frame(0x88, struct.pack(">H", 1000) + b"\xc0\x80")], 1007)


@case("7 limits", "a frame header announcing 64 MiB -> 1009")
def _():
    return expect_close([frame(0x82, b"", length=64 << 20)[:14]], 1009)


@case("7 limits", "fragments adding up past the limit -> 1009")
def _():
    piece = b"x" * (LIMIT // 2 + 1)
    return expect_close([frame(0x02, piece), frame(0x00, piece), frame(0x80, piece)], 1009)


passed = failed = 0
for group, name, fn in CASES:
    try:
        ok, why = fn()
    except Exception as e:  # a case that cannot run fails, with its reason
        ok, why = False, "%s: %s" % (type(e).__name__, e)
    if ok:
        passed += 1
        print("ok   %-16s %s" % (group, name))
    else:
        failed += 1
        print("FAIL %-16s %s (%s)" % (group, name, why))
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
