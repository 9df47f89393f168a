#!/usr/bin/env bash
# gateway.sh - GET /health of one module reached through (a) our api-gateway and (b) nginx as a
# reverse proxy in front of the same upstream, measured with wrk in the same run.
#   bench/gateway.sh [DURATION_SECONDS] [CONNECTIONS]     (ROUNDS=3 in the environment)
# The upstream is `finalverse serve song-engine` in its own process; the gateway runs in
# another (`serve service-registry api-gateway`), nginx (one worker, upstream keep-alive 128)
# in a third. The gateway checks an access token on every request (a guest's, sent by wrk) and
# takes from the player's rate-limit bucket (a limit set high enough never to refuse), as the
# issue's target asks: the price of the door policy is in its figure. The sides alternate round
# by round; each keeps its best round. Prints req/s and p99 for each and the ratio
# gateway/nginx. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-10}
CONNS=${2:-64}
BIN=${FV_BIN:-build/finalverse}
source bench/lib.sh
bench_setup

bench_port_base 1 12 13 19
SONG_PORT=$((BASE + 1))        # song-engine under --port-base
GW_PORT=$((BASE + 12))         # api-gateway
NGINX_PORT=$((BASE + 19))
export FINALVERSE_GENERAL__DATA_DIR="$TMP/data" FINALVERSE_LOG_LEVEL=warn
# the limiter on, with a limit that never refuses: its cost is measured, not its effect
# (PLAIN=1: no token and no limiter, the forwarding alone)
export FINALVERSE_GATEWAY__RATE_LIMIT_PER_MINUTE=${PLAIN:+0}${NOLIMIT:+0}
: "${FINALVERSE_GATEWAY__RATE_LIMIT_PER_MINUTE:=100000000}"
export FINALVERSE_GATEWAY__RATE_LIMIT_BURST=100000000

# PIN=1 (with 2 CPUs or more): each proxy on CPU 1 alone, wrk and the upstream on CPU 0, so
# that each proxy's figure is what one core of it does, not how it shares cores with the rest
ON_PROXY=(); ON_REST=()
if [ -n "${PIN:-}" ] && [ "$(nproc)" -ge 2 ]; then
    ON_PROXY=(taskset -c 1)
    ON_REST=(taskset -c 0)
fi
"${ON_PROXY[@]}" "$BIN" serve service-registry api-gateway --port-base "$BASE" \
    >"$TMP/gw.out" 2>"$TMP/gw.log" &
PIDS+=($!)
GW_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$GW_PORT/health" >/dev/null && break; sleep 0.1; done
"${ON_REST[@]}" "$BIN" serve song-engine --port-base "$BASE" >"$TMP/song.out" 2>"$TMP/song.log" &
PIDS+=($!)
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$GW_PORT/api/song-engine/health" >/dev/null && break
    sleep 0.1
done
curl -sf "http://127.0.0.1:$GW_PORT/api/song-engine/health" >/dev/null ||
    { echo "the gateway does not reach song-engine"; tail "$TMP"/*.log; exit 1; }

mkdir -p "$TMP/nginx/logs"
cat >"$TMP/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    upstream song {
        server 127.0.0.1:$SONG_PORT;
        keepalive 128;
        keepalive_requests 100000000;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location /api/song-engine/ {
            proxy_pass http://song/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        }
    }
}
CONF
"${ON_PROXY[@]}" nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" 2>"$TMP/nginx.err" &
PIDS+=($!)
NG_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$NGINX_PORT/api/song-engine/health" >/dev/null && break; sleep 0.1; done

TOKEN=$(curl -sf -X POST "http://127.0.0.1:$GW_PORT/api/auth/guest" | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
[ -n "$TOKEN" ] || { echo "no guest token from the gateway"; exit 1; }
AUTH="Authorization: Bearer $TOKEN"
[ -n "${PLAIN:-}" ] && AUTH="X-Plain: 1"

cpu_ticks() { # PID -> user + system clock ticks so far
    awk '{print $14 + $15}' "/proc/$1/stat"
}
NG_WORKER=$(pgrep -P "$NG_PID" | head -1)
run_wrk() { # URL PROXY_PID -> "rps p99_ms proxy_cpu_us_per_request"
    local t0 t1
    t0=$(cpu_ticks "$2")
    "${ON_REST[@]}" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -H "$AUTH" "$1" \
        >"$TMP/wrk.txt" 2>&1
    t1=$(cpu_ticks "$2")
    local rps p99 reqs
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$TMP/wrk.txt")
    reqs=$(awk '/requests in/ {print $1}' "$TMP/wrk.txt")
    p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v=v*1000}; print v}' "$TMP/wrk.txt")
    if grep -q "Non-2xx" "$TMP/wrk.txt"; then echo "warning: non-2xx answers on $1" >&2; fi
    echo "$rps $p99 $(awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v n="$reqs" \
        'BEGIN { printf "%.1f", n ? t * 1e6 / hz / n : 0 }')"
}

GW_URL="http://127.0.0.1:$GW_PORT/api/song-engine/health"
NG_URL="http://127.0.0.1:$NGINX_PORT/api/song-engine/health"
ROUNDS=${ROUNDS:-3}
echo "GET /api/song-engine/health via a proxy, ${DURATION}s x $ROUNDS rounds each, $CONNS connections, wrk 1 thread"
echo "(the gateway checks the Bearer token and the rate limit on every request; nginx passes it on)"
wrk -t1 -c"$CONNS" -d2s -H "$AUTH" "$GW_URL" >/dev/null 2>&1
wrk -t1 -c"$CONNS" -d2s "$NG_URL" >/dev/null 2>&1
if [ -n "${PERF:-}" ]; then
    # PERF=1: a flat profile of the gateway during one more run (to PERF_OUT or stdout)
    perf record ${PERF_CALLERS:+--call-graph dwarf} -o "$TMP/perf.data" -p "$GW_PID" \
        -- sleep "$DURATION" >/dev/null 2>&1 &
    "${ON_REST[@]}" wrk -t1 -c"$CONNS" -d"${DURATION}s" -H "$AUTH" "$GW_URL" >/dev/null 2>&1
    wait $! || true
    [ -z "${PERF_DATA:-}" ] || cp "$TMP/perf.data" "$PERF_DATA"    # for perf report -g
    perf report -i "$TMP/perf.data" --stdio --no-children --sort symbol 2>/dev/null |
        grep -v "^#" | head -60 >"${PERF_OUT:-/dev/stdout}" || true
fi
GW_RPS=0; GW_P99=0; GW_CPU=0; NG_RPS=0; NG_P99=0; NG_CPU=0
better() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }
for round in $(seq "$ROUNDS"); do
    read -r rps p99 cpu < <(run_wrk "$GW_URL" "$GW_PID")
    line="  round $round: gateway $rps req/s (p99 $p99 ms, $cpu us CPU/req)"
    if better "$rps" "$GW_RPS"; then GW_RPS=$rps; GW_P99=$p99; GW_CPU=$cpu; fi
    read -r rps p99 cpu < <(run_wrk "$NG_URL" "$NG_WORKER")
    echo "$line, nginx $rps req/s (p99 $p99 ms, $cpu us CPU/req)"
    if better "$rps" "$NG_RPS"; then NG_RPS=$rps; NG_P99=$p99; NG_CPU=$cpu; fi
done
printf '%-12s %12s req/s   p99 %8s ms   %6s us CPU/request\n' gateway "$GW_RPS" "$GW_P99" \
    "$GW_CPU" nginx "$NG_RPS" "$NG_P99" "$NG_CPU"
awk -v a="$GW_RPS" -v b="$NG_RPS" -v pa="$GW_P99" -v pb="$NG_P99" -v ca="$GW_CPU" -v cb="$NG_CPU" \
    'BEGIN { printf "ratio gateway/nginx: throughput %.2f x, p99 %.2f x, " \
             "CPU per request %.2f x (lower is better)\n", a/b, pa/pb, ca/cb }'
