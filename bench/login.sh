#!/usr/bin/env bash
# login.sh - sign-ins a second through the api-gateway (POST /api/auth/login, argon2id
# verification off the loop thread) beside what the same verification costs with no server
# around it (bench/pwhash_bench.c, as many threads as the gateway hashes at once). The ratio
# says how much of the hashing's ceiling the gateway turns into logins.
#   bench/login.sh [SECONDS=10] [CONNECTIONS=8]
# Defaults are the shipped [auth] limits (argon2id, 3 passes, 64 MiB, 2 hashes at once).
# Loopback only; needs a built tree (build/finalverse, build/libfvlib.a not needed).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-10}
CONNS=${2:-8}
BIN=${FV_BIN:-build/finalverse}
OPS=${FINALVERSE_AUTH__PASSWORD_OPSLIMIT:-3}
MEM=${FINALVERSE_AUTH__PASSWORD_MEMLIMIT_BYTES:-67108864}
PAR=${FINALVERSE_AUTH__MAX_PARALLEL_HASHES:-2}
source bench/lib.sh
bench_setup

cc -O2 -std=gnu17 bench/pwhash_bench.c $(pkg-config --libs libsodium) -lpthread \
    -o "$TMP/pwhash_bench"

bench_port_base 12 13
GW="http://127.0.0.1:$((BASE + 12))"
# sign-ins are what is measured: no limiter, no lockout in the way
export FINALVERSE_GENERAL__DATA_DIR="$TMP/data" FINALVERSE_LOG_LEVEL=warn
export FINALVERSE_GATEWAY__AUTH_RATE_LIMIT_PER_MINUTE=0 FINALVERSE_AUTH__LOCKOUT_FAILURES=0
export FINALVERSE_AUTH__MAX_HASHING=10000
"$BIN" serve service-registry api-gateway --port-base "$BASE" >"$TMP/gw.out" 2>"$TMP/gw.log" &
PIDS+=($!)
for _ in $(seq 100); do curl -sf "$GW/health" >/dev/null && break; sleep 0.1; done
curl -sf -X POST "$GW/api/auth/register" -H 'Content-Type: application/json' \
    -d '{"name":"bench_player","password":"correct horse battery"}' >/dev/null ||
    { echo "cannot register"; tail "$TMP/gw.log"; exit 1; }

cat >"$TMP/login.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"name":"bench_player","password":"correct horse battery"}'
LUA
echo "POST /api/auth/login, ${DURATION}s, $CONNS connections; argon2id ops $OPS, mem $MEM B," \
    "$PAR hashes at once"
wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency --timeout 30s -s "$TMP/login.lua" \
    "$GW/api/auth/login" >"$TMP/wrk.txt" 2>&1
grep -q "Non-2xx" "$TMP/wrk.txt" && { echo "warning: non-2xx answers"; grep Non-2xx "$TMP/wrk.txt"; }
LOGINS=$(awk '/^Requests\/sec:/ {print $2}' "$TMP/wrk.txt")
P99=$(awk '$1=="99%" {print $2}' "$TMP/wrk.txt")
RAW=$("$TMP/pwhash_bench" "$OPS" "$MEM" "$PAR" "$DURATION")
printf '%-34s %10s /s   p99 %s\n' "logins through the gateway" "$LOGINS" "$P99"
printf '%-34s %10s /s\n' "argon2id verifications, $PAR threads" "$RAW"
awk -v a="$LOGINS" -v b="$RAW" 'BEGIN { printf "ratio logins/verifications: %.2f x\n", a/b }'
