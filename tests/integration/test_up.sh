#!/usr/bin/env bash
# test_up.sh - `finalverse up` end to end: every component answers /health, /info and /metrics
# directly and through the gateway, the registry lists all of them, errors are JSON, and
# SIGTERM drains and exits 0.
source "$(dirname "$0")/lib.sh"

pick_port_base
export FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/data"
start_fv up up --port-base "$PORT_BASE"
UP_PID=$FV_LAST_PID
GW=http://127.0.0.1:$(port_of api-gateway)
REG=http://127.0.0.1:$(port_of service-registry)

all_healthy() {
    local c
    for c in "${COMPONENTS[@]}"; do
        [ "$(http_status "http://127.0.0.1:$(port_of "$c")/health")" = 200 ] || return 1
    done
}
check "all 14 components answer /health within 20 s" wait_for 20 all_healthy

registered_all() {
    local n
    n=$(curl -s --max-time 5 "$REG/v1/catalog/services" | jq 'keys | length')
    [ "$n" = 14 ]
}
check "the registry lists all 14 components" wait_for 20 registered_all

for c in "${COMPONENTS[@]}"; do
    body=$(curl -s --max-time 5 "http://127.0.0.1:$(port_of "$c")/health")
    check "$c /health names itself and is healthy" \
        test "$(jq -r '.service + " " + .status' <<<"$body")" = "$c healthy"
    info=$(curl -s --max-time 5 "http://127.0.0.1:$(port_of "$c")/info")
    check "$c /info has name, version, port, build" \
        jq -e --arg n "$c" --argjson p "$(port_of "$c")" \
        '.name == $n and .port == $p and (.version|length>0) and (.build|length>0) and (.uptime_seconds >= 0)' \
        <<<"$info" >/dev/null
done

through_gateway() {
    local c
    for c in "${COMPONENTS[@]}"; do
        [ "$(curl -s --max-time 5 "$GW/api/$c/health" | jq -r .service)" = "$c" ] || return 1
    done
}
check "every component answers /health through the gateway" wait_for 10 through_gateway

check "/health allows any origin" \
    bash -c "curl -s -D - -o /dev/null '$GW/health' | grep -qi '^access-control-allow-origin: \*'"

check "unknown service through the gateway is a JSON 404" \
    test "$(curl -s --max-time 5 "$GW/api/no-such-service/health" | jq -r .error.code)" = not_found
check "path parameters are percent-decoded (gateway)" \
    test "$(curl -s --max-time 5 "$GW/api/song%2Dengine/health" | jq -r .service)" = song-engine
check "path parameters are percent-decoded (registry)" \
    test "$(curl -s --max-time 5 "$REG/v1/catalog/service/world%2dengine" | jq -r '.[0].ServiceName')" = world-engine
check "a decoded NUL in a path parameter is a JSON 400" \
    test "$(curl -s --max-time 5 "$GW/api/song%00engine/health" | jq -r .error.code)" = invalid_argument
check "unknown path is a JSON 404" \
    test "$(curl -s --max-time 5 "$GW/nowhere" | jq -r .error.code)" = not_found
check "wrong method is 405 with Allow" \
    bash -c "curl -s -D - -o /dev/null -X DELETE '$GW/health' | grep -qi '^allow: .*GET'"

# Metrics are valid Prometheus exposition and count the requests made above.
# An HTTP/2 client (prior knowledge) on a module's port: the h2 driver answers the preface
# with its SETTINGS frame (type 4), never parsed as HTTP/1.
h2_reply=$(python3 - "$(port_of api-gateway)" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
b = s.recv(4096)
print(b[3] if len(b) >= 9 else -1)
PY
)
check "an HTTP/2 preface is answered with the server's SETTINGS (frame type $h2_reply)" \
    test "$h2_reply" = 4
curl -s --max-time 5 "$GW/metrics" >"$FV_TMP/metrics.txt"
check "/metrics has the module's own gauges" \
    grep -q '^finalverse_gateway_upstream_in_flight{module="api-gateway"} 0$' "$FV_TMP/metrics.txt"
check "/metrics has the process's bus and call gauges" \
    bash -c "grep -q '^finalverse_bus_published_events{module=\"api-gateway\"}' '$FV_TMP/metrics.txt' && grep -q '^finalverse_calls_in_flight{module=\"api-gateway\"} 0$' '$FV_TMP/metrics.txt'"
check "/metrics counts no refused HTTP/2 connection (the h2 driver took it)" \
    grep -q 'finalverse_http_refused_h2_connections{module="api-gateway"} 0' "$FV_TMP/metrics.txt"
promtool_clean() {
    promtool check metrics <"$FV_TMP/metrics.txt" >"$FV_TMP/promtool.log" 2>&1 &&
        [ ! -s "$FV_TMP/promtool.log" ]
}
check "/metrics passes promtool check metrics with no lint" promtool_clean
check "/metrics counts requests per route" \
    grep -q 'finalverse_http_requests_total{module="api-gateway",route="/health",method="GET",code="200"}' "$FV_TMP/metrics.txt"
check "/metrics has a latency histogram" \
    grep -q 'finalverse_http_request_duration_seconds_bucket{module="api-gateway"' "$FV_TMP/metrics.txt"

check "the table printed at start lists the gateway URL" grep -q "api-gateway .*http://127.0.0.1:$(port_of api-gateway)" "$FV_TMP/up.out"

# Graceful stop: SIGTERM -> exit 0 within the drain deadline (default 10 s, plus deregistration).
kill -TERM "$UP_PID"
stopped=0
for _ in $(seq 150); do
    if ! kill -0 "$UP_PID" 2>/dev/null; then stopped=1; break; fi
    sleep 0.1
done
check "SIGTERM stops the stack within 15 s" test "$stopped" = 1
rc=0; wait "$UP_PID" || rc=$?
check "SIGTERM exits 0 (got $rc)" test "$rc" = 0
check "shutdown is logged" grep -q "stopped" "$FV_TMP/up.log"

finish
