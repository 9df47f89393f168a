#!/usr/bin/env bash
# bus.sh - the event bus. In one process: events/s delivered to 1, 10 and 1,000 subscribers of
# one channel (every event to every subscriber), and 1,000 subscribers on distinct channels
# (matching cost). Over Redis: events/s from one bus to another through a private redis-server
# (two kv connections, two pattern subscriptions, as two processes would have), beside
# redis-benchmark PUBLISHing envelopes of the same size on the same server, alone and to two
# pattern subscribers (redis-cli, which cost CPU of their own on a small machine); prints the
# ratios. Best of RUNS runs each, the two sides alternating.
# Needs a built tree (cmake --build build); compiles bench/bus_bench.c against build/libfvlib.a.
# Usage: bench/bus.sh [N_LOCAL=1000000] [N_REDIS=200000] [WINDOW=50] [RUNS=3]
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${FV_BUILD:-$src/build}
n_local=${1:-1000000}
n_redis=${2:-200000}
window=${3:-50}
runs=${4:-3}
work=$(mktemp -d)
subs_pids=""
cleanup() {
    for p in $subs_pids; do kill "$p" 2>/dev/null || true; done
    bash "$src/tests/support/server_redis.sh" stop "$work/redis" >/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

cc -O2 -std=gnu17 -I"$src/src" -I"$build/generated" "$src/bench/bus_bench.c" \
    "$build/libfvlib.a" "$build/libfv_proto.a" \
    $(pkg-config --libs libuv hiredis libsodium libprotobuf-c) -lm -o "$work/bus_bench"

max() { [ "$1" -gt "$2" ] && echo "$1" || echo "$2"; }

read -r bytes payload_bytes < <("$work/bus_bench" envelope-bytes)
echo "in one process: song.performed events ($payload_bytes-byte payload), published in batches of 256"
printf '%-34s %16s %14s\n' "subscribers" "deliveries/s" "publishes/s"
for subs in 1 10 1000; do
    n=$n_local
    [ "$subs" -ge 10 ] && n=$((n_local / subs * 3))
    [ "$subs" -ge 1000 ] && n=$((n_local / 100))
    best=0
    pubs=0
    for _ in $(seq "$runs"); do
        read -r d p < <("$work/bus_bench" local "$subs" "$n")
        [ "$d" -gt "$best" ] && best=$d && pubs=$p
    done
    printf '%-34s %16s %14s\n' "$subs on one channel (n=$n)" "$best" "$pubs"
done
best=0
for _ in $(seq "$runs"); do
    read -r d p < <("$work/bus_bench" distinct 1000 "$n_local")
    best=$(max "$best" "$d")
done
printf '%-34s %16s %14s\n' "1000 on distinct channels (n=$n_local)" "$best" "$best"

bash "$src/tests/support/server_redis.sh" start "$work/redis" >/dev/null
url=$(cat "$work/redis/redis.url")
port=$(cat "$work/redis/redis.port")
msg=$(head -c "$bytes" /dev/zero | tr '\0' x)

ours() {
    "$work/bus_bench" redis "$url" "$n_redis" "$window" 2>/dev/null
}
theirs() {
    redis-benchmark -h 127.0.0.1 -p "$port" -n "$n_redis" -c 1 -P "$window" --csv \
        PUBLISH fv.bus.reference "$msg" 2>/dev/null |
        awk -F, 'NR > 1 { gsub(/"/, "", $2); print int($2) }'
}

# The reference's messages go to two pattern subscribers, as each bus event goes to both buses'
# fv.bus.* subscriptions (the publisher's own is skipped after decoding). They run only while
# the reference does, so that they do not load the machine during our runs.
start_subs() {
    for _ in 1 2; do
        redis-cli -h 127.0.0.1 -p "$port" psubscribe 'fv.bus.*' >/dev/null 2>&1 &
        subs_pids="$subs_pids $!"
    done
    sleep 0.3
}
stop_subs() {
    for p in $subs_pids; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    subs_pids=""
}

ours >/dev/null   # warm up
a=0
b=0
c=0
for _ in $(seq "$runs"); do
    a=$(max "$a" "$(ours)")
    b=$(max "$b" "$(theirs)")
    start_subs
    c=$(max "$c" "$(theirs)")
    stop_subs
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "over Redis: $bytes-byte envelopes, $n_redis events, $window in flight, best of $runs"
printf '%-52s %10s %6s\n' "" "events/s" "ratio"
printf '%-52s %10s\n' "bus -> bus (publish, Redis, decode, deliver)" "$a"
printf '%-52s %10s %6s\n' "redis-benchmark PUBLISH -c 1 -P $window, no subscriber" "$b" \
    "$(ratio "$a" "$b")"
printf '%-52s %10s %6s\n' "... with two fv.bus.* subscribers (redis-cli)" "$c" \
    "$(ratio "$a" "$c")"
