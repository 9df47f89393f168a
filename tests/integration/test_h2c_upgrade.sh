#!/usr/bin/env bash
# test_h2c_upgrade.sh - HTTP/1.1 "Upgrade: h2c" (RFC 7540 sec. 3.2) on a module's own port:
# nghttp -u (Debian nghttp2-client) upgrades with OPTIONS and then makes a gRPC health Check
# on the HTTP/2 connection (SERVING); curl --http2 upgrades a bodiless gRPC POST, which goes on
# as stream 1 (answered by the gRPC server, over HTTP/2); GET /health from curl --http2 and a
# request with HTTP2-Settings that is not base64url stay HTTP/1.1; a client that upgrades and
# then never sends the HTTP/2 preface is closed after the header timeout.
source "$(dirname "$0")/lib.sh"

if ! command -v nghttp >/dev/null; then
    fail "no nghttp; run scripts/deps.sh test"
    finish
fi

pick_port_base
export FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/data"
export FINALVERSE_HTTP__HEADER_TIMEOUT_MS=1500
SONG=$(port_of song-engine)
start_fv song serve song-engine --port-base "$PORT_BASE"
check "song-engine is up" wait_for 10 curl -sf --max-time 2 "http://127.0.0.1:$SONG/health"
URL="http://127.0.0.1:$SONG/grpc.health.v1.Health/Check"

# HealthCheckRequest{} framed: no compression, length 0
printf '\0\0\0\0\0' >"$FV_TMP/check.msg"
nghttp -v -u -d "$FV_TMP/check.msg" -H 'content-type: application/grpc' -H 'te: trailers' \
    "$URL" >"$FV_TMP/nghttp.log" 2>&1 || true
check "nghttp -u: the server answers 101 Switching Protocols" \
    grep -q '^HTTP/1.1 101 Switching Protocols' "$FV_TMP/nghttp.log"
check "nghttp -u: the check after the upgrade is answered 200 over HTTP/2" \
    grep -Eq 'recv \(stream_id=[0-9]+\) :status: 200' "$FV_TMP/nghttp.log"
check "nghttp -u: grpc-status 0" grep -Eq 'recv \(stream_id=[0-9]+\) grpc-status: 0' \
    "$FV_TMP/nghttp.log"
# HealthCheckResponse{status: SERVING} framed is 00 00 00 00 02 08 01
check "nghttp -u: the answer says SERVING" bash -c \
    "nghttp -u -d '$FV_TMP/check.msg' -H 'content-type: application/grpc' -H 'te: trailers' \
        '$URL' | od -An -tx1 | tr -d ' \n' | grep -qx 00000000020801"

curl -s -v --http2 -X POST -H 'content-type: application/grpc' -H 'te: trailers' "$URL" \
    -o /dev/null >"$FV_TMP/curl.log" 2>&1 || true
check "curl --http2: 101, then the request itself answered over HTTP/2" \
    bash -c "grep -q '^< HTTP/1.1 101' '$FV_TMP/curl.log' &&
             grep -q '^< HTTP/2 200' '$FV_TMP/curl.log'"
check "curl --http2: stream 1 reached the gRPC server (no message: INTERNAL)" \
    grep -q '^< grpc-status: 13' "$FV_TMP/curl.log"

check "curl --http2 GET /health stays HTTP/1.1" bash -c \
    "test \"\$(curl -s --http2 -o /dev/null -w '%{http_version} %{http_code}' \
        http://127.0.0.1:$SONG/health)\" = '1.1 200'"
check "HTTP2-Settings that is not base64url: no upgrade" bash -c \
    "curl -s -i -H 'Connection: Upgrade, HTTP2-Settings' -H 'Upgrade: h2c' \
        -H 'HTTP2-Settings: !!!' -H 'content-type: application/grpc' '$URL' |
     head -1 | grep -qv ' 101 '"
check "the module still serves HTTP/1.1" curl -sf --max-time 2 "http://127.0.0.1:$SONG/health"
cat >"$FV_TMP/silent.py" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /grpc.health.v1.Health/Check HTTP/1.1\r\nHost: x\r\n"
          b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABk\r\n"
          b"content-type: application/grpc\r\ncontent-length: 0\r\n\r\n")
t0, got = time.time(), b""
s.settimeout(10)
while True:
    d = s.recv(65536)
    if not d:
        break
    got += d
print(b" 101 " in got.split(b"\r\n", 1)[0], round(time.time() - t0))
PY
out=$(/usr/bin/python3 "$FV_TMP/silent.py" "$SONG" 2>&1) || true
check "upgraded and then silent: closed after the header timeout ($out)" \
    bash -c "[ '${out% *}' = True ] && [ '${out#* }' -le 4 ]"
finish
