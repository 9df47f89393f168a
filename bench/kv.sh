#!/usr/bin/env bash
# kv.sh - our Redis client (fv_kv) against redis-benchmark on the same private redis-server,
# same commands: SET and GET, pipelined 50 deep on one connection (redis-benchmark -c 1 -P 50:
# batches of 50, the next batch when all 50 answered; kv_bench "batch" does the same) and one
# at a time (-c 1). Prints requests/s for both and ours/theirs; best of RUNS runs each. A last
# line shows fv_kv with a sliding window of 50 (a new request per answer), for information.
# Needs a built tree (cmake --build build); compiles bench/kv_bench.c against build/libfvlib.a.
# Usage: bench/kv.sh [N_PIPELINED=300000] [N_SINGLE=30000] [RUNS=5]
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${FV_BUILD:-$src/build}
n_pipe=${1:-300000}
n_single=${2:-30000}
runs=${3:-5}
work=$(mktemp -d)
trap 'bash "$src/tests/support/server_redis.sh" stop "$work/redis" >/dev/null; rm -rf "$work"' EXIT

cc -O2 -std=gnu17 -I"$src/src" "$src/bench/kv_bench.c" "$build/libfvlib.a" \
    $(pkg-config --libs libuv hiredis libsodium) -lm -o "$work/kv_bench"

bash "$src/tests/support/server_redis.sh" start "$work/redis" >/dev/null
url=$(cat "$work/redis/redis.url")
port=$(cat "$work/redis/redis.port")

one_ours() {   # op n depth mode
    "$work/kv_bench" "$url" "$1" "$2" "$3" "$4"
}

one_theirs() {   # op n pipeline
    redis-benchmark -h 127.0.0.1 -p "$port" -t "$1" -n "$2" -c 1 -P "$3" --csv 2>/dev/null |
        awk -F, 'NR > 1 { gsub(/"/, "", $2); print int($2) }'
}

max() { [ "$1" -gt "$2" ] && echo "$1" || echo "$2"; }

# Warm both up (server allocations, page cache, CPU clocks) before anything counts.
one_ours set 50000 50 batch >/dev/null
one_theirs set 50000 50 >/dev/null

printf '%-22s %12s %16s %7s\n' "test" "fv_kv req/s" "redis-bench req/s" "ratio"
for op in set get; do
    for depth in 50 1; do
        n=$n_pipe
        [ "$depth" = 1 ] && n=$n_single
        a=0
        b=0
        # Alternate the two sides so drifting machine load hits both alike; keep the best.
        for _ in $(seq "$runs"); do
            a=$(max "$a" "$(one_ours "$op" "$n" "$depth" batch)")
            b=$(max "$b" "$(one_theirs "$op" "$n" "$depth")")
        done
        printf '%-22s %12s %16s %7s\n' "$(echo "$op" | tr a-z A-Z) in-flight=$depth n=$n" \
            "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }')"
    done
done
for op in set get; do
    a=0
    for _ in $(seq "$runs"); do a=$(max "$a" "$(one_ours "$op" "$n_pipe" 50 window)"); done
    printf '%-22s %12s\n' "$(echo "$op" | tr a-z A-Z) window=50 n=$n_pipe" "$a"
done
