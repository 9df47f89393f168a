#!/usr/bin/env bash
# http.sh - GET /health on one finalverse module vs. nginx answering the same body with
# `return 200`, both on one worker thread, measured with wrk in the same run.
#   bench/http.sh [DURATION_SECONDS] [CONNECTIONS]     (ROUNDS=3 in the environment)
# Prints req/s and p99 for each and the ratio finalverse/nginx. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-10}
CONNS=${2:-64}
BIN=${FV_BIN:-build/finalverse}
source bench/lib.sh
bench_setup

bench_port_base 1 19
FV_PORT=$((BASE + 1))          # song-engine under --port-base
NGINX_PORT=$((BASE + 19))

FINALVERSE_GENERAL__DATA_DIR="$TMP/data" FINALVERSE_LOG_LEVEL=warn \
    "$BIN" serve song-engine --port-base "$BASE" >"$TMP/fv.out" 2>"$TMP/fv.log" &
PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$FV_PORT/health" >/dev/null && break; sleep 0.1; done
BODY=$(curl -s "http://127.0.0.1:$FV_PORT/health")
ESCAPED=${BODY//\\/\\\\}
ESCAPED=${ESCAPED//\'/\\\'}

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
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location = /health {
            default_type application/json;
            return 200 '$ESCAPED';
        }
    }
}
CONF
nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" 2>"$TMP/nginx.err" &
PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$NGINX_PORT/health" >/dev/null && break; sleep 0.1; done

run_wrk() { # URL -> "rps p99_ms"
    wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$1" >"$TMP/wrk.txt" 2>&1
    local rps p99
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$TMP/wrk.txt")
    p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v=v*1000}; print v}' "$TMP/wrk.txt")
    echo "$rps $p99"
}

ROUNDS=${ROUNDS:-3}
echo "GET /health, ${DURATION}s x $ROUNDS rounds each, $CONNS connections, wrk 1 thread, each server 1 thread"
# Warm both once, then alternate the two sides round by round (so drift in the machine's speed
# hits both alike) and keep each side's best round: throughput and the p99 of that round.
wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$FV_PORT/health" >/dev/null 2>&1
wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$NGINX_PORT/health" >/dev/null 2>&1
FV_RPS=0; FV_P99=0; NG_RPS=0; NG_P99=0
better() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }
for round in $(seq "$ROUNDS"); do
    read -r rps p99 < <(run_wrk "http://127.0.0.1:$FV_PORT/health")
    line="  round $round: finalverse $rps req/s (p99 $p99 ms)"
    if better "$rps" "$FV_RPS"; then FV_RPS=$rps; FV_P99=$p99; fi
    read -r rps p99 < <(run_wrk "http://127.0.0.1:$NGINX_PORT/health")
    echo "$line, nginx $rps req/s (p99 $p99 ms)"
    if better "$rps" "$NG_RPS"; then NG_RPS=$rps; NG_P99=$p99; fi
done
printf '%-12s %12s req/s   p99 %8s ms\n' finalverse "$FV_RPS" "$FV_P99" nginx "$NG_RPS" "$NG_P99"
awk -v a="$FV_RPS" -v b="$NG_RPS" -v pa="$FV_P99" -v pb="$NG_P99" \
    'BEGIN { printf "ratio finalverse/nginx: throughput %.2f x, p99 %.2f x (lower is better)\n", a/b, pa/pb }'
