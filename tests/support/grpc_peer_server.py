#!/usr/bin/env python3
"""grpc_peer_server.py PORT - the same peer as grpc_peer_server.js on Debian's python3-grpcio:
"/world-engine/<Method>" with IdRequest in and Status out (hand-encoded). Echo, Sleep (id ms,
a cancel noted on stderr), Big (a service of id bytes), Unavail (UNAVAILABLE twice per id,
then an echo), Meta (request metadata back as "echo-<name>" headers and "trail-<name>"
trailers), Count (server-streaming, "N" or "N:MS": N messages MS ms apart, a cancel noted).
Prints "ready" once listening on 127.0.0.1:PORT."""
import os
import sys
import threading
import time
from concurrent import futures

import grpc


def str1(buf):
    i = 0
    while i < len(buf):
        tag = buf[i]
        i += 1
        n, shift = 0, 0
        while True:
            b = buf[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        if tag == 0x0A:
            return buf[i:i + n].decode()
        i += n
    return ""


def status(service):
    s = service.encode()
    n, out = len(s), bytearray([0x0A])
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            break
    return bytes(out) + s


seen = {}
lock = threading.Lock()


def echo(req, ctx):
    return status(str1(req))


def sleep(req, ctx):
    end = time.time() + int(str1(req)) / 1000
    while time.time() < end:
        if not ctx.is_active():
            print("cancelled", file=sys.stderr, flush=True)
            return status("cancelled")
        time.sleep(0.01)
    return status("slept")


def big(req, ctx):
    return status("x" * int(str1(req)))


def unavail(req, ctx):
    key = str1(req)
    with lock:
        seen[key] = seen.get(key, 0) + 1
        n = seen[key]
    if n <= 2:
        ctx.abort(grpc.StatusCode.UNAVAILABLE, "not yet")
    return status(f"{key}:{n}")


def echoed(ctx, prefix):
    return tuple((prefix + k, v) for k, v in ctx.invocation_metadata()
                 if k.startswith("x-") or k.endswith("-bin"))


def meta(req, ctx):
    ctx.send_initial_metadata(echoed(ctx, "echo-"))
    ctx.set_trailing_metadata(echoed(ctx, "trail-"))
    return status("meta")


def count(req, ctx):
    parts = str1(req).split(":")
    n, ms = int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    done = False
    try:
        for i in range(n):
            if not ctx.is_active():
                break
            yield status(str(i))
            if ms:
                time.sleep(ms / 1000)
        else:
            done = True
    finally:
        # a cancel either stops the loop or closes the generator at its yield
        if not done:
            print("stream cancelled", file=sys.stderr, flush=True)


def handler(fn):
    return grpc.unary_unary_rpc_method_handler(fn, request_deserializer=None,
                                               response_serializer=None)


# without SO_REUSEPORT, so that a port another process holds is an error, not a shared port
server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                     options=[("grpc.max_send_message_length", 8 << 20), ("grpc.so_reuseport", 0)])
server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("world-engine", {
    "Echo": handler(echo), "Sleep": handler(sleep), "Big": handler(big),
    "Unavail": handler(unavail), "Meta": handler(meta),
    "Count": grpc.unary_stream_rpc_method_handler(count)})])
if server.add_insecure_port(f"127.0.0.1:{sys.argv[1]}") != int(sys.argv[1]):
    print(f"cannot listen on port {sys.argv[1]}", file=sys.stderr)
    sys.exit(1)
server.start()
# one write: unbuffered (PYTHONUNBUFFERED), print would write "ready" and "\n" apart, and the
# test stops reading after the first
os.write(1, b"ready\n")
server.wait_for_termination()
