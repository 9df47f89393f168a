#!/usr/bin/env bash
# test_h2_bad_input.sh - hostile HTTP/2 clients against a running module, written frame by
# frame: garbage after the preface, a frame over the advertised size, a header block that never
# ends (CONTINUATION flood), an HPACK bomb (one big header repeated by its index), 10,000 streams
# opened and reset at once (rapid reset). Each must end its stream or its connection (never the
# process, never a hang), and a well-behaved gRPC client (python3-grpcio) must still be served
# after every one.
source "$(dirname "$0")/lib.sh"

PY=""
for p in $(type -ap python3); do
    if "$p" -c 'import grpc' 2>/dev/null; then PY=$p; break; fi
done
if [ -z "$PY" ]; then
    fail "no python3 with grpcio; run scripts/deps.sh test"
    finish
fi

pick_port_base
export FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/data"
SONG=$(port_of song-engine)
start_fv song serve song-engine --port-base "$PORT_BASE"
SONG_PID=$FV_LAST_PID
check "song-engine is up" wait_for 10 curl -sf --max-time 2 "http://127.0.0.1:$SONG/health"

rc=0
"$PY" - "$SONG" >"$FV_TMP/bad.out" 2>"$FV_TMP/bad.log" <<'PY' || rc=$?
import socket, struct, sys
import grpc

port = int(sys.argv[1])
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", sid) + payload

SETTINGS = frame(4, 0, 0)
# :method GET, :scheme http, :path /, :authority h (literal, not indexed)
BASIC = b"\x82\x86\x84\x01\x01h"

def connect():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s

def send(s, data):
    try:
        s.sendall(data)
    except OSError:
        pass                      # the server may end the connection while we still send

def outcome(s, want_rst=None):
    """Reads frames until a GOAWAY (its error code), an RST_STREAM on want_rst ("rst N"), the
    end of the connection ("eof") or a silence of 10 s ("timeout")."""
    buf = b""
    while True:
        try:
            d = s.recv(65536)
        except socket.timeout:
            return "timeout"
        except OSError:
            return "eof"
        if not d:
            return "eof"
        buf += d
        while len(buf) >= 9:
            n = int.from_bytes(buf[0:3], "big")
            if len(buf) < 9 + n:
                break
            t, sid, payload = buf[3], int.from_bytes(buf[5:9], "big") & 0x7fffffff, buf[9:9 + n]
            buf = buf[9 + n:]
            if t == 7:
                return "goaway %d" % int.from_bytes(payload[4:8], "big")
            if t == 3 and sid == want_rst:
                return "rst %d" % int.from_bytes(payload[0:4], "big")

def healthy():
    ch = grpc.insecure_channel("127.0.0.1:%d" % port)
    try:
        f = ch.unary_unary("/grpc.health.v1.Health/Check",
                           request_serializer=lambda b: b, response_deserializer=lambda b: b)
        return f(b"", timeout=5) == b"\x08\x01"
    except grpc.RpcError:
        return False
    finally:
        ch.close()

def say(ok, what):
    print(("ok " if ok else "FAIL ") + what)
    sys.stdout.flush()

# 1. garbage right after the preface
s = connect()
send(s, PREFACE + b"this is not an HTTP/2 frame, not at all.........")
r = outcome(s)
say(r.startswith("goaway") or r == "eof", "garbage after the preface ends the connection (%s)" % r)
s.close()
say(healthy(), "still serving after garbage")

# 2. a DATA frame of 20000 bytes, over the 16384 we advertise
s = connect()
send(s, PREFACE + SETTINGS + frame(1, 0x4, 1, BASIC) + frame(0, 0, 1, b"\0" * 20000))
r = outcome(s)
say(r == "goaway 6", "a frame over the frame size is GOAWAY FRAME_SIZE_ERROR (%s)" % r)
s.close()
say(healthy(), "still serving after an oversize frame")

# 3. a header block that never ends: HEADERS without END_HEADERS, then CONTINUATION frames
s = connect()
flood = frame(1, 0, 1, b"\x82")
flood += b"".join(frame(9, 0, 1, b"\x00\x01a\x01b") for _ in range(1000))
send(s, PREFACE + SETTINGS + flood)
r = outcome(s)
say(r.startswith("goaway") or r == "eof", "a CONTINUATION flood ends the connection (%s)" % r)
s.close()
say(healthy(), "still serving after a CONTINUATION flood")

# 4. HPACK bomb: a 4000-byte header enters the dynamic table, then 1000 one-byte references
s = connect()
big = b"\x40\x06x-bomb\x7f\xa1\x1e" + b"v" * 4000       # literal with indexing, new name
bomb = BASIC + big + b"\xbe" * 1000                       # 0xbe: dynamic index 62
send(s, PREFACE + SETTINGS + frame(1, 0x5, 1, bomb))
r = outcome(s, want_rst=1)
say(r.startswith("rst") or r.startswith("goaway"),
    "an HPACK bomb fails its stream or connection (%s)" % r)
s.close()
say(healthy(), "still serving after an HPACK bomb")

# 5. rapid reset: 10,000 streams opened and reset at once
s = connect()
burst = bytearray(PREFACE + SETTINGS)
for i in range(10000):
    sid = 2 * i + 1
    burst += frame(1, 0x4, sid, BASIC) + frame(3, 0, sid, struct.pack(">I", 8))
send(s, bytes(burst))
r = outcome(s)
say(r == "goaway 11", "10,000 opened-and-reset streams get GOAWAY ENHANCE_YOUR_CALM (%s)" % r)
s.close()
say(healthy(), "still serving after a rapid reset")
PY
cat "$FV_TMP/bad.out"
check "the hostile clients ran to the end (exit $rc)" test "$rc" = 0
check "every hostile-client check passed" \
    bash -c "! grep -q '^FAIL' '$FV_TMP/bad.out' && [ \$(grep -c '^ok' '$FV_TMP/bad.out') = 10 ]"
check "the process is still running" kill -0 "$SONG_PID"
finish
