#!/usr/bin/env bash
# test_registry_down.sh - a module whose registry is down keeps serving (degraded), retries
# with backoff, and registers as soon as the registry comes up; HTTP abuse does not hurt it.
source "$(dirname "$0")/lib.sh"

pick_port_base
export FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/data"
export FINALVERSE_REGISTRY__RETRY_MAX_MS=500
export FINALVERSE_HTTP__HEADER_TIMEOUT_MS=1000
export FINALVERSE_HTTP__MAX_BODY_BYTES=1024
SONG=http://127.0.0.1:$(port_of song-engine)
REG=http://127.0.0.1:$(port_of service-registry)

start_fv song serve song-engine --port-base "$PORT_BASE"
check "song-engine serves while the registry is down" wait_eq 10 200 http_status "$SONG/health"
check "its health is degraded with a registry warning" \
    bash -c "curl -s '$SONG/health' | jq -e '.status == \"degraded\" and (.checks[] | select(.name==\"registry\") | .status == \"warn\")'"

start_fv registry serve service-registry --port-base "$PORT_BASE"
registered() { [ "$(curl -s --max-time 5 "$REG/v1/health/service/song-engine?passing" | jq length)" = 1 ]; }
check "it registers once the registry is up" wait_for 10 registered
check "its health turns healthy" wait_for 5 bash -c "curl -s '$SONG/health' | jq -e '.status == \"healthy\"'"

# Bad input on the real binary: each gets its status and the process lives on.
big=$(head -c 20000 /dev/zero | tr '\0' a)
check "oversize header -> 431" test "$(http_status "$SONG/health" -H "X-Big: $big")" = 431
check "oversize body -> 413" test "$(http_status "$SONG/health" -X POST --data-binary "$big")" = 413
# raw PORT DELAY PAYLOAD: sends PAYLOAD (printf escapes), keeps the socket open DELAY s, prints
# the status line of the answer.
raw() {
    python3 - "$1" "$2" "$3" <<'PY'
import socket, sys, time
port, delay, payload = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3].encode().decode('unicode_escape').encode('latin-1')
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(payload)
time.sleep(delay)
s.settimeout(10)
print(s.recv(4096).split(b"\r\n")[0].decode())
PY
}
SONG_PORT=$(port_of song-engine)
line=$(raw "$SONG_PORT" 0 'GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n')
check "malformed request -> 400 ($line)" grep -q ' 400 ' <<<"$line"
line=$(raw "$SONG_PORT" 0 'GET /health HTTP/1.1\r\n')
check "headers slower than the timeout -> 408 ($line)" grep -q ' 408 ' <<<"$line"
check "still healthy after the abuse" test "$(http_status "$SONG/health")" = 200

finish
