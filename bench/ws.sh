#!/usr/bin/env bash
# ws.sh - the realtime gateway under load, beside a Node.js server on npm's ws doing the same
# job (bench/ws_ref_server.js), each server pinned to one core and the load client
# (bench/ws_load.c, C on libuv) to the other, in one run:
#   idle       N_IDLE connections after hello: the server's resident memory per connection
#   broadcast  a ~200-byte event from Redis to N_BCAST subscribers, 20 times a second and then
#              as fast as it goes: messages delivered per second, p50/p99 delivery latency
#   echo       ping/pong round trips on N_ECHO connections: messages per second, p50/p99
# Each server gets its events the same way, from a private redis-server. Prints each figure
# with the reference's and the ratio.
# Needs a built tree (cmake --build build) and tests/support's npm packages (scripts/deps.sh test).
# Usage: bench/ws.sh [N_IDLE=10000] [N_BCAST=10000] [N_ECHO=1000] [SECS=5]
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${FV_BUILD:-$src/build}
n_idle=${1:-10000}
n_bcast=${2:-10000}
n_echo=${3:-1000}
secs=${4:-5}
work=$(mktemp -d)
server_pid=""
stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}
cleanup() {
    stop_server
    bash "$src/tests/support/server_redis.sh" stop "$work/redis" >/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# 2 x 10,000 sockets and then some, in each process
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

cc -O2 -std=gnu17 "$src/bench/ws_load.c" $(pkg-config --cflags --libs libuv) -o "$work/ws_load"
mkdir -p "$work/redis"
bash "$src/tests/support/server_redis.sh" start "$work/redis" >/dev/null
redis_url=$(cat "$work/redis/redis.url")
redis_port=$(sed -E 's#.*:([0-9]+)(/.*)?$#\1#' <<<"$redis_url")

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=""
for try in $(seq 50); do
    p=$(( (RANDOM % 1000) * 20 + 10000 ))
    if port_free "$p"; then port=$p; break; fi
done
[ -n "$port" ] || { echo "no free port"; exit 1; }

start_ours() {
    FINALVERSE_REDIS__URL=$redis_url FINALVERSE_GENERAL__DATA_DIR=$work/data \
        FINALVERSE_GENERAL__LOG_LEVEL=error FINALVERSE_HTTP__MAX_CONNECTIONS=60000 \
        FINALVERSE_WEBSOCKET__HISTORY_EVENTS=64 \
        taskset -c 0 "$build/finalverse" serve websocket-gateway --port-base "$port" \
        >"$work/ours.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && return; sleep 0.1; done
    echo "our gateway did not start:"; cat "$work/ours.log"; exit 1
}
start_ref() {
    NODE_PATH=$src/tests/support/node_modules taskset -c 0 node "$src/bench/ws_ref_server.js" \
        "$port" "$redis_port" >"$work/ref.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do grep -q ready "$work/ref.log" 2>/dev/null && sleep 0.3 && return; sleep 0.1; done
    echo "the reference server did not start:"; cat "$work/ref.log"; exit 1
}
load() { taskset -c 1 "$work/ws_load" "$@"; }

# figure FIELD LINE: pulls "X msg/s", "p50 X", "p99 X" or "X bytes per connection" out of a line
field() { sed -E "s#.*$1.*#\\1#" <<<"$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

echo "== idle: $n_idle connections after hello, server resident memory per connection"
start_ours; o=$(load idle "$port" "$n_idle" "$server_pid"); stop_server
start_ref; r=$(load idle "$port" "$n_idle" "$server_pid"); stop_server
ob=$(field ': ([0-9]+) bytes per connection' "$o"); rb=$(field ': ([0-9]+) bytes per connection' "$r")
printf '%-28s %12s %12s %8s\n' "" "finalverse" "node ws" "ratio"
printf '%-28s %12s %12s %8s\n' "bytes per idle connection" "$ob" "$rb" "$(ratio "$rb" "$ob") x less"

echo "== broadcast: one ~200-byte event to $n_bcast subscribers, ${secs}s at 20 Hz, then ${secs}s flat out"
start_ours; o=$(load broadcast "$port" "$n_bcast" "$server_pid" "$redis_port" ours "$secs"); stop_server
start_ref; r=$(load broadcast "$port" "$n_bcast" "$server_pid" "$redis_port" ref "$secs"); stop_server
printf '%-28s %12s %12s %8s\n' "" "finalverse" "node ws" "ratio"
for phase in "20 Hz" "max"; do
    ol=$(grep "^$phase:" <<<"$o"); rl=$(grep "^$phase:" <<<"$r")
    om=$(field '= ([0-9]+) msg/s' "$ol"); rm=$(field '= ([0-9]+) msg/s' "$rl")
    o50=$(field 'p50 ([0-9.]+) ms' "$ol"); r50=$(field 'p50 ([0-9.]+) ms' "$rl")
    o99=$(field 'p99 ([0-9.]+) ms' "$ol"); r99=$(field 'p99 ([0-9.]+) ms' "$rl")
    printf '%-28s %12s %12s %8s\n' "$phase: messages/s" "$om" "$rm" "$(ratio "$om" "$rm")"
    printf '%-28s %12s %12s %8s\n' "$phase: p50 ms" "$o50" "$r50" "$(ratio "$r50" "$o50")"
    printf '%-28s %12s %12s %8s\n' "$phase: p99 ms" "$o99" "$r99" "$(ratio "$r99" "$o99")"
    oc=$(field 'cpu ([0-9.]+) us/msg' "$ol"); rc=$(field 'cpu ([0-9.]+) us/msg' "$rl")
    printf '%-28s %12s %12s %8s\n' "$phase: server CPU us/msg" "$oc" "$rc" "$(ratio "$rc" "$oc") x less"
done

echo "== echo: ping/pong round trips on $n_echo connections for ${secs}s"
start_ours; o=$(load echo "$port" "$n_echo" "$server_pid" "$secs"); stop_server
start_ref; r=$(load echo "$port" "$n_echo" "$server_pid" "$secs"); stop_server
om=$(field '= ([0-9]+) msg/s' "$o"); rm=$(field '= ([0-9]+) msg/s' "$r")
o50=$(field 'p50 ([0-9.]+) ms' "$o"); r50=$(field 'p50 ([0-9.]+) ms' "$r")
o99=$(field 'p99 ([0-9.]+) ms' "$o"); r99=$(field 'p99 ([0-9.]+) ms' "$r")
printf '%-28s %12s %12s %8s\n' "" "finalverse" "node ws" "ratio"
printf '%-28s %12s %12s %8s\n' "round trips/s" "$om" "$rm" "$(ratio "$om" "$rm")"
printf '%-28s %12s %12s %8s\n' "p50 ms" "$o50" "$r50" "$(ratio "$r50" "$o50")"
printf '%-28s %12s %12s %8s\n' "p99 ms" "$o99" "$r99" "$(ratio "$r99" "$o99")"
oc=$(field 'cpu ([0-9.]+) us/msg' "$o"); rc=$(field 'cpu ([0-9.]+) us/msg' "$r")
printf '%-28s %12s %12s %8s\n' "server CPU us/round trip" "$oc" "$rc" "$(ratio "$rc" "$oc") x less"
