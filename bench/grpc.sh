#!/usr/bin/env bash
# grpc.sh - unary gRPC calls/s and latency with h2load (16 connections x 32 streams, a
# pre-framed request body) against (a) a module's gRPC server (finalverse.testing.v1.Probe/Echo:
# decode, the call layer, encode) and (b) Debian's C++ gRPC server answering the same bytes
# (bench/grpc_echo_server.cc, a generic echo: it decodes nothing). Each server is pinned to one
# core, h2load (one thread) to the other; three alternating rounds, each side's best is kept.
#   bench/grpc.sh [SECONDS=8]
# Needs a built tree, h2load (nghttp2-client) and libgrpc++-dev (scripts/deps.sh test).
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${FV_BUILD:-$src/build}
secs=${1:-8}
rounds=${ROUNDS:-3}
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Ports below the ephemeral range, clear of the default stack.
base=$(( (RANDOM % 500) * 20 + 20000 ))
ours_port=$((base + 1))             # song-engine is component 1
ref_port=$((base + 17))

g++ -O2 -std=c++17 "$src/bench/grpc_echo_server.cc" -o "$work/grpc_echo_server" \
    $(pkg-config --cflags --libs grpc++)

cores=$(nproc)
srv_cpu=$((cores > 1 ? 1 : 0))
FINALVERSE_GENERAL__DATA_DIR="$work/data" FINALVERSE_GRPC__PROBE_SERVICE=true \
    FINALVERSE_GENERAL__LOG_LEVEL=warn \
    taskset -c "$srv_cpu" "$build/finalverse" serve song-engine --port-base "$base" \
    >"$work/ours.log" 2>&1 &
pids+=($!)
taskset -c "$srv_cpu" "$work/grpc_echo_server" "$ref_port" >"$work/ref.log" 2>&1 &
pids+=($!)

# EchoMessage{payload: 32 bytes}, framed: what both servers get and give back
payload=$(printf 'x%.0s' $(seq 32))
{ printf '\x00\x00\x00\x00\x22\x0a\x20'; printf '%s' "$payload"; } >"$work/req.bin"

run() { # NAME PORT -> "calls/s p50_ms p99_ms"
    local log="$work/$1.lat"
    rm -f "$log"
    taskset -c 0 h2load -t 1 -c 16 -m 32 -D "$secs" --warm-up-time=1 -d "$work/req.bin" \
        -H 'content-type: application/grpc' -H 'te: trailers' --log-file="$log" \
        "http://127.0.0.1:$2/finalverse.testing.v1.Probe/Echo" >"$work/$1.out" 2>&1 || true
    local rps
    rps=$(sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' "$work/$1.out")
    local failed
    failed=$(sed -n 's/.* \([0-9]*\) failed.*/\1/p' "$work/$1.out")
    # per-request durations (us) are the log's third column
    awk '{print $3}' "$log" | sort -n >"$log.sorted"
    local n p50 p99
    n=$(wc -l <"$log.sorted")
    p50=$(sed -n "$(( (n + 1) / 2 ))p" "$log.sorted")
    p99=$(sed -n "$(( (n * 99 + 99) / 100 ))p" "$log.sorted")
    printf '%s %s %s %s\n' "${rps:-0}" "$(awk -v u="${p50:-0}" 'BEGIN{printf "%.3f", u/1000}')" \
        "$(awk -v u="${p99:-0}" 'BEGIN{printf "%.3f", u/1000}')" "${failed:-?}"
}

for _ in $(seq 50); do
    if h2load -n 1 -d "$work/req.bin" -H 'content-type: application/grpc' \
           "http://127.0.0.1:$ours_port/finalverse.testing.v1.Probe/Echo" 2>/dev/null |
           grep -q '1 succeeded' &&
       h2load -n 1 -d "$work/req.bin" -H 'content-type: application/grpc' \
           "http://127.0.0.1:$ref_port/finalverse.testing.v1.Probe/Echo" 2>/dev/null |
           grep -q '1 succeeded'; then
        break
    fi
    sleep 0.2
done

echo "unary Echo (32-byte payload), ${secs}s x $rounds rounds, h2load 1 thread, 16 conns x 32 streams,"
echo "each server pinned to one core"
best_ours="0 0 0 0"
best_ref="0 0 0 0"
for r in $(seq "$rounds"); do
    o=$(run ours "$ours_port")
    c=$(run ref "$ref_port")
    set -- $o; printf '  round %s: finalverse %s calls/s (p50 %s ms, p99 %s ms, %s failed)' \
        "$r" "$1" "$2" "$3" "$4"
    set -- $c; printf ', C++ gRPC %s calls/s (p50 %s ms, p99 %s ms, %s failed)\n' "$1" "$2" "$3" "$4"
    if awk -v a="${o%% *}" -v b="${best_ours%% *}" 'BEGIN{exit !(a > b)}'; then best_ours=$o; fi
    if awk -v a="${c%% *}" -v b="${best_ref%% *}" 'BEGIN{exit !(a > b)}'; then best_ref=$c; fi
done
set -- $best_ours; o_rps=$1; o_p50=$2; o_p99=$3
set -- $best_ref; c_rps=$1; c_p50=$2; c_p99=$3
printf 'finalverse   %10.0f calls/s   p50 %7.3f ms   p99 %7.3f ms\n' "$o_rps" "$o_p50" "$o_p99"
printf 'C++ gRPC     %10.0f calls/s   p50 %7.3f ms   p99 %7.3f ms\n' "$c_rps" "$c_p50" "$c_p99"
awk -v a="$o_rps" -v b="$c_rps" -v p="$o_p99" -v q="$c_p99" 'BEGIN{
    printf "ratio finalverse/C++: throughput %.2f x, p99 %.2f x (lower is better)\n",
           (b > 0 ? a / b : 0), (q > 0 ? p / q : 0) }'
