#!/usr/bin/env bash
# kv.sh - our Redis client (fv_kv) against redis-benchmark on the same private redis-server,
# same commands: SET and GET, pipelined 50 deep on one connection (redis-benchmark -c 1 -P 50:
# batches of 50, the next batch when all 50 answered; kv_bench "batch" does the same) and one
# at a time (-c 1). Prints requests/s for both and ours/theirs; best of RUNS runs each. A last
# line shows fv_kv with a sliding window of 50 (a new request per answer), for information.
# Needs a built tree (cmake --build build); compiles bench/kv_bench.c against build/libfvlib.a.
# Usage: bench/kv.sh [N_PIPELINED] [N_SINGLE] [RUNS]
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${FV_BUILD:-$src/build}
n_pipe=${1:-200000}
n_single=${2:-30000}
runs=${3:-3}
work=$(mktemp -d)
trap 'bash "$src/tests/support/server_redis.sh" stop "$work/redis" >/dev/null; rm -rf "$work"' EXIT

cc -O2 -std=gnu17 -I"$src/src" "$src/bench/kv_bench.c" "$build/libfvlib.a" \
    $(pkg-config --libs libuv hiredis libsodium) -lm -o "$work/kv_bench"

bash "$src/tests/support/server_redis.sh" start "$work/redis" >/dev/null
url=$(cat "$work/redis/redis.url")
port=$(cat "$work/redis/redis.port")

best() { sort -n | tail -1; }

ours() {   # op n depth [mode]
    for _ in $(seq "$runs"); do "$work/kv_bench" "$url" "$1" "$2" "$3" "${4:-batch}"; done | best
}

theirs() {   # op n pipeline
    for _ in $(seq "$runs"); do
        redis-benchmark -h 127.0.0.1 -p "$port" -t "$1" -n "$2" -c 1 -P "$3" --csv 2>/dev/null |
            awk -F, 'NR > 1 { gsub(/"/, "", $2); print int($2) }'
    done | best
}

printf '%-22s %12s %16s %7s\n' "test" "fv_kv req/s" "redis-bench req/s" "ratio"
for op in set get; do
    for depth in 50 1; do
        n=$n_pipe
        [ "$depth" = 1 ] && n=$n_single
        a=$(ours "$op" "$n" "$depth")
        b=$(theirs "$op" "$n" "$depth")
        printf '%-22s %12s %16s %7s\n' "$(echo "$op" | tr a-z A-Z) in-flight=$depth n=$n" \
            "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }')"
    done
done
for op in set get; do
    printf '%-22s %12s\n' "$(echo "$op" | tr a-z A-Z) window=50 n=$n_pipe" \
        "$(ours "$op" "$n_pipe" 50 window)"
done
