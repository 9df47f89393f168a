#!/usr/bin/env bash
# test_drain.sh - graceful shutdown through the gateway: a request that the api-gateway is
# forwarding to a slow upstream when SIGTERM arrives gets its whole answer and the process exits
# 0; when the drain deadline cuts such a request off, the client gets a JSON 503 and the exit
# status is non-zero.
source "$(dirname "$0")/lib.sh"

pick_port_base
export FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/data"
GW=http://127.0.0.1:$(port_of api-gateway)
REG=http://127.0.0.1:$(port_of service-registry)
# The slow upstream stands where song-engine would: a port past the stack's own.
SLOW_PORT=$((PORT_BASE + 17))

# A plain HTTP server that answers GET /slow/<ms> after <ms> with a 256 KiB body.
python3 - "$SLOW_PORT" >"$FV_TMP/slow.log" 2>&1 <<'PY' &
import http.server, sys, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        ms = int(self.path.rsplit("/", 1)[-1]) if self.path.startswith("/slow/") else 0
        time.sleep(ms / 1000)
        body = b"x" * (256 * 1024)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
FV_PIDS+=($!)

register_slow() {
    curl -sf --max-time 5 -X PUT "$REG/v1/agent/service/register" \
        -d "{\"Name\":\"song-engine\",\"ID\":\"slow-1\",\"Address\":\"127.0.0.1\",\"Port\":$SLOW_PORT}"
}

# run_case DRAIN_MS UPSTREAM_MS: starts the stack, sends one slow request through the gateway,
# sends SIGTERM while it is upstream; sets CASE_STATUS, CASE_BYTES, CASE_EXIT.
run_case() {
    local drain_ms=$1 upstream_ms=$2
    FINALVERSE_GENERAL__DRAIN_TIMEOUT_MS=$drain_ms \
        start_fv "gw-$drain_ms" serve service-registry api-gateway --port-base "$PORT_BASE"
    local pid=$FV_LAST_PID
    wait_eq 10 200 http_status "$GW/health" || { fail "gateway did not come up"; return; }
    wait_for 10 register_slow || { fail "could not register the slow upstream"; return; }
    wait_eq 10 200 http_status "$GW/api/song-engine/slow/0" || { fail "no route to upstream"; return; }
    curl -s --max-time 20 -o "$FV_TMP/body-$drain_ms" -w '%{http_code}' \
        "$GW/api/song-engine/slow/$upstream_ms" >"$FV_TMP/status-$drain_ms" &
    local curl_pid=$!
    sleep 0.5
    kill -TERM "$pid"
    wait "$curl_pid" || true
    CASE_STATUS=$(cat "$FV_TMP/status-$drain_ms")
    CASE_BYTES=$(stat -c %s "$FV_TMP/body-$drain_ms")
    CASE_EXIT=0
    wait "$pid" || CASE_EXIT=$?
}

run_case 10000 1500
check "a request forwarded at SIGTERM gets its answer (status $CASE_STATUS)" test "$CASE_STATUS" = 200
check "... all of it ($CASE_BYTES bytes)" test "$CASE_BYTES" = 262144
check "... and the process exits 0 after the drain (exit $CASE_EXIT)" test "$CASE_EXIT" = 0
check "the drain is in the log" grep -q "drained" "$FV_TMP/gw-10000.log"

run_case 300 4000
check "past the drain deadline the client gets 503 (status $CASE_STATUS)" test "$CASE_STATUS" = 503
check "... as a JSON error" jq -e '.error.code == "unavailable"' "$FV_TMP/body-300"
check "... and the exit status says work was cut off (exit $CASE_EXIT)" test "$CASE_EXIT" = 1

finish
