#!/usr/bin/env bash
# test_grpc.sh - a gRPC client nobody here wrote (Debian's python3-grpcio) calls a running
# module on its own port: health Check (SERVING, NOT_FOUND for a service it lacks) and Watch
# (the status first, then open until cancelled; SERVICE_UNKNOWN for a service it lacks), unary calls
# on the probe service (grpc.probe_service), custom metadata (text and -bin) both ways, a
# message just under the limit and one over it
# (RESOURCE_EXHAUSTED), an unknown method and an unknown service (UNIMPLEMENTED), a deadline
# that passes (DEADLINE_EXCEEDED), and a cancelled call whose end reaches the module (its
# calls in flight fall back to 0); then h2load drives many streams over few connections.
source "$(dirname "$0")/lib.sh"

# The interpreter that has grpcio (scripts/deps.sh installs it for the system's python3,
# which may not be the first python3 on PATH).
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
export FINALVERSE_GRPC__PROBE_SERVICE=true
export FINALVERSE_GRPC__MAX_MESSAGE_BYTES=65536
SONG=$(port_of song-engine)
start_fv song serve song-engine --port-base "$PORT_BASE"
check "song-engine is up" wait_for 10 curl -sf --max-time 2 "http://127.0.0.1:$SONG/health"

rc=0
"$PY" - "$SONG" >"$FV_TMP/grpc.out" 2>"$FV_TMP/grpc.log" <<'PY' || rc=$?
import sys
import grpc

port = sys.argv[1]
ch = grpc.insecure_channel("127.0.0.1:" + port)
grpc.channel_ready_future(ch).result(timeout=10)
ident = lambda b: b

def unary(path):
    return ch.unary_unary(path, request_serializer=ident, response_deserializer=ident)

def code_of(path, req, timeout=5):
    try:
        unary(path)(req, timeout=timeout)
        return "OK"
    except grpc.RpcError as e:
        return e.code().name

def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])

def say(ok, what):
    print(("ok " if ok else "FAIL ") + what)

# grpc.health.v1: HealthCheckResponse{status: SERVING} is 08 01
ans = unary("/grpc.health.v1.Health/Check")(b"", timeout=5)
say(ans == b"\x08\x01", "health Check says SERVING (%r)" % ans)
ans = unary("/grpc.health.v1.Health/Check")(b"\x0a\x0bsong-engine", timeout=5)
say(ans == b"\x08\x01", "health Check of the module by name says SERVING")
c = code_of("/grpc.health.v1.Health/Check", b"\x0a\x04nope")
say(c == "NOT_FOUND", "health Check of an unknown service is NOT_FOUND (%s)" % c)

# Watch (server-streaming): the status now, and the stream stays open until the client cancels
watch = ch.unary_stream("/grpc.health.v1.Health/Watch", request_serializer=ident,
                        response_deserializer=ident)
it = watch(b"", timeout=30)
first = next(it)
say(first == b"\x08\x01", "health Watch starts with SERVING (%r)" % first)
it.cancel()
try:
    next(it)
    say(False, "a cancelled Watch ends")
except grpc.RpcError as e:
    say(e.code().name == "CANCELLED", "a cancelled Watch ends as CANCELLED (%s)" % e.code().name)
it = watch(b"\x0a\x04nope", timeout=30)
first = next(it)
say(first == b"\x08\x03", "Watch of an unknown service says SERVICE_UNKNOWN (%r)" % first)
it.cancel()

# unary through the module's method table
c = code_of("/finalverse.testing.v1.Probe/Sleep", b"")
say(c == "OK", "Probe/Sleep 0 ms answers OK (%s)" % c)
payload = bytes(range(256)) * 250          # 64000 bytes: the message is just under 65536
msg = b"\x0a" + varint(len(payload)) + payload
ans = unary("/finalverse.testing.v1.Probe/Echo")(msg, timeout=5)
say(ans == msg, "Probe/Echo returns a message near the limit intact")
big = b"\x0a" + varint(70000) + b"x" * 70000
c = code_of("/finalverse.testing.v1.Probe/Echo", big)
say(c == "RESOURCE_EXHAUSTED", "a message over the limit is RESOURCE_EXHAUSTED (%s)" % c)

# custom metadata both ways: Probe/Echo sends the request's metadata back as headers and
# trailers; -bin values travel base64 and arrive as the same bytes; reserved names stay out
raw = bytes(range(256))
md = (("x-text", "hello world"), ("x-blob-bin", raw), ("x-empty-bin", b""))
ans, call = unary("/finalverse.testing.v1.Probe/Echo").with_call(msg, metadata=md, timeout=5)
head, trail = dict(call.initial_metadata()), dict(call.trailing_metadata())
say(ans == msg, "Probe/Echo with metadata answers its message")
say(head.get("x-text") == "hello world" and trail.get("x-text") == "hello world",
    "a text metadata value comes back in headers and trailers")
say(head.get("x-blob-bin") == raw and trail.get("x-blob-bin") == raw,
    "a -bin value of every byte comes back intact")
say(head.get("x-empty-bin") == b"", "an empty -bin value comes back empty")
say(not any(k.startswith("grpc-") or k in ("user-agent", "te") for k in head),
    "no reserved header is echoed as metadata (%r)" % sorted(head))
try:
    unary("/finalverse.testing.v1.Probe/Echo")(msg, metadata=(("fail-now", "1"),), timeout=5)
    say(False, "an error with metadata fails")
except grpc.RpcError as e:
    got = dict(e.trailing_metadata())
    say(e.code().name == "INVALID_ARGUMENT" and got.get("fail-now") == "1",
        "an error answer carries the handler's metadata (%s, %r)" % (e.code().name, got))

# unknown method and service
c = code_of("/finalverse.testing.v1.Probe/Nope", b"")
say(c == "UNIMPLEMENTED", "an unknown method is UNIMPLEMENTED (%s)" % c)
c = code_of("/no.such.v1.Service/Call", b"")
say(c == "UNIMPLEMENTED", "an unknown service is UNIMPLEMENTED (%s)" % c)

# a deadline that passes while the module works
c = code_of("/finalverse.testing.v1.Probe/Sleep", b"\x08" + varint(5000), timeout=0.3)
say(c == "DEADLINE_EXCEEDED", "a call past its deadline is DEADLINE_EXCEEDED (%s)" % c)

# a call cancelled by the client: its end must reach the module (checked on /metrics after)
fut = unary("/finalverse.testing.v1.Probe/Sleep").future(b"\x08" + varint(30000), timeout=60)
import time
time.sleep(0.2)
say(fut.cancel(), "a running call can be cancelled")
ch.close()
PY
cat "$FV_TMP/grpc.out"
check "the grpcio client ran to the end (exit $rc)" test "$rc" = 0
check "every grpcio check passed" bash -c "! grep -q '^FAIL' '$FV_TMP/grpc.out' && grep -q '^ok' '$FV_TMP/grpc.out'"
# h2load (nghttp2's load generator) drives the h2 driver with many streams on few connections:
# 2000 framed Echo calls, 8 at once on each of 2 connections, all answered.
if command -v h2load >/dev/null 2>&1; then
    printf '\x00\x00\x00\x00\x05\x0a\x03abc' >"$FV_TMP/echo.bin"
    h2load -n 2000 -c 2 -m 8 -d "$FV_TMP/echo.bin" -H 'content-type: application/grpc' \
        -H 'te: trailers' "http://127.0.0.1:$SONG/finalverse.testing.v1.Probe/Echo" \
        >"$FV_TMP/h2load.out" 2>&1 || true
    check "h2load: 2000 calls over 2 connections all succeed" \
        grep -q '2000 done, 2000 succeeded, 0 failed' "$FV_TMP/h2load.out"
else
    fail "h2load is missing; run scripts/deps.sh test"
fi

in_flight() {
    curl -s --max-time 2 "http://127.0.0.1:$SONG/metrics" |
        sed -n 's/^finalverse_calls_in_flight{module="song-engine"} //p'
}
check "the cancelled and timed-out calls ended in the module (calls in flight: 0)" \
    wait_eq 10 0 in_flight
curl -s --max-time 2 "http://127.0.0.1:$SONG/metrics" >"$FV_TMP/metrics.txt"
check "/metrics counts the gRPC requests and the failed ones" \
    bash -c "grep -Eq '^finalverse_grpc_calls\{module=\"song-engine\"\} [1-9][0-9]{3}' '$FV_TMP/metrics.txt' &&
             grep -Eq '^finalverse_grpc_failed\{module=\"song-engine\"\} [1-9]' '$FV_TMP/metrics.txt'"
finish
