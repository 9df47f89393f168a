"""A bidirectional client that sends and never reads (python3-h2, frame level): it opens
FullDuplexCall, asks in each request for a 60 KB answer, sends as long as HTTP/2 flow control
lets it, and never acknowledges what it receives. The server must stop reading that stream
(its window stays shut: the client cannot send more) rather than buffer without bound, and
must answer another client meanwhile. Usage: grpc_bidi_no_reader.py PORT. Prints ok/FAIL
lines."""
import select
import socket
import sys
import time

import h2.config
import h2.connection
import h2.events

port = int(sys.argv[1])


def say(ok, what):
    print(("ok - " if ok else "FAIL - ") + what, flush=True)


def request(size):
    # StreamingOutputCallRequest{response_parameters: [{size}]}, framed
    v, n = b"", size
    while True:
        b = n & 0x7F
        n >>= 7
        v += bytes([b | 0x80]) if n else bytes([b])
        if not n:
            break
    rp = b"\x08" + v
    m = b"\x12" + bytes([len(rp)]) + rp
    return b"\0" + len(m).to_bytes(4, "big") + m


s = socket.create_connection(("127.0.0.1", port))
c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
c.initiate_connection()
s.sendall(c.data_to_send())
sid = c.get_next_available_stream_id()
c.send_headers(sid, [(":method", "POST"), (":scheme", "http"), (":authority", "x"),
                     (":path", "/grpc.testing.TestService/FullDuplexCall"),
                     ("content-type", "application/grpc"), ("te", "trailers")])
s.sendall(c.data_to_send())
one = request(60000)
sent = 0
received = 0
quiet_since = time.monotonic()
deadline = time.monotonic() + 20
# send while the window allows; stop once it has stayed shut for a second
while time.monotonic() < deadline:
    if c.local_flow_control_window(sid) >= len(one):
        c.send_data(sid, one)
        sent += 1
        s.sendall(c.data_to_send())
        quiet_since = time.monotonic()
        continue
    r, _, _ = select.select([s], [], [], 0.1)
    if r:
        data = s.recv(65536)
        if not data:
            break
        for ev in c.receive_data(data):     # never acknowledged: our window never reopens
            if isinstance(ev, h2.events.DataReceived):
                received += len(ev.data)
        s.sendall(c.data_to_send())
    if time.monotonic() - quiet_since > 1.0:
        break
window = c.local_flow_control_window(sid)
print("requests sent: %d (%d bytes), answer bytes received: %d" % (sent, sent * len(one),
                                                                   received))
say(window < len(one), "the server stops reading a stream whose client does not read "
    "(window left %d)" % window)
say(sent * len(one) <= 2 * 1024 * 1024, "what the client could send is bounded (%d bytes)" %
    (sent * len(one)))
say(received <= 65535 + 16384, "answers stop at the client's window (%d bytes)" % received)
s.close()
