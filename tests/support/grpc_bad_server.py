#!/usr/bin/env python3
"""grpc_bad_server.py PORT - an HTTP/2 server (Debian's python3-h2) that answers gRPC calls
wrongly on purpose, for the tests of our client: "/world-engine/<Case>", whatever the request.
  Good       Status{service: "ok"}, as a server should
  Truncated  a message prefix of 100 bytes, 10 bytes of it, then grpc-status 0
  Compressed a message with the compressed flag, no grpc-encoding
  Huge       a prefix announcing 64 MiB, a few bytes, then grpc-status 0
  NotProto   a message that is no protobuf
  BadMeta    a header "x-bad-bin" that is not base64, the message, trailer "x-ok: yes"
  StreamCut  two messages, then half of a third, then grpc-status 0
  NoStatus   the message, then the end of the stream without trailers
  Http503    HTTP status 503 and nothing else (as a proxy in front of a busy server)
Prints "ready" once listening on 127.0.0.1:PORT."""
import os
import socket
import struct
import sys
import threading

import h2.config
import h2.connection
import h2.events
import h2.exceptions


def status(service):
    s = service.encode()
    return bytes([0x0A, len(s)]) + s          # short strings only


def frame(msg, flag=0):
    return struct.pack(">BI", flag, len(msg)) + msg


HEAD = [(":status", "200"), ("content-type", "application/grpc")]
OK = [("grpc-status", "0")]


def answer(conn, sid, case):
    if case == "Http503":
        conn.send_headers(sid, [(":status", "503")], end_stream=True)
        return
    head = HEAD + ([("x-bad-bin", "!!!not*base64")] if case == "BadMeta" else [])
    conn.send_headers(sid, head)
    body = {
        "Good": frame(status("ok")),
        "Truncated": struct.pack(">BI", 0, 100) + b"x" * 10,
        "Compressed": frame(status("ok"), flag=1),
        "Huge": struct.pack(">BI", 0, 64 << 20) + b"y" * 100,
        "NotProto": frame(b"\xff\xff\xff\xff"),
        "BadMeta": frame(status("ok")),
        "StreamCut": frame(status("0")) + frame(status("1")) + frame(status("2"))[:4],
        "NoStatus": frame(status("ok")),
    }.get(case, frame(status("unknown case")))
    if case == "NoStatus":
        conn.send_data(sid, body, end_stream=True)
        return
    conn.send_data(sid, body)
    conn.send_headers(sid, OK + ([("x-ok", "yes")] if case == "BadMeta" else []),
                      end_stream=True)


def serve(sock):
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    paths = {}
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    paths[ev.stream_id] = dict(ev.headers).get(b":path", b"").decode()
                elif isinstance(ev, h2.events.DataReceived):
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    try:
                        answer(conn, ev.stream_id, paths.pop(ev.stream_id).rsplit("/", 1)[-1])
                    except h2.exceptions.StreamClosedError:
                        pass
            sock.sendall(conn.data_to_send())
    except (OSError, h2.exceptions.ProtocolError):
        return
    finally:
        sock.close()


srv = socket.socket()
try:
    srv.bind(("127.0.0.1", int(sys.argv[1])))
except OSError as e:
    print(f"cannot listen on port {sys.argv[1]}: {e}", file=sys.stderr)
    sys.exit(1)
srv.listen(16)
os.write(1, b"ready\n")
while True:
    s, _ = srv.accept()
    threading.Thread(target=serve, args=(s,), daemon=True).start()
