#!/usr/bin/env bash
# grpc.sh - unary gRPC calls/s and latency with h2load (16 connections x 32 streams, a
# pre-framed request body) against (a) a module's gRPC server (finalverse.testing.v1.Probe/Echo:
# decode, the call layer, encode), (b) Debian's C++ gRPC server answering the same bytes
# (bench/grpc_echo_server.cc, a generic echo: it decodes nothing) and (c) a grpc-js server
# doing the same (bench/grpc_js.js). Each server is pinned to one core, the load (one thread)
# to the other; three alternating rounds, each side's best is kept. Then the same unary calls
# from a grpc-js client (32 in flight), and server-streaming messages a second
# (StreamingOutputCall, 1,000 responses of 32 bytes a call) from a grpc-js client against ours
# and grpc-js (the C++ echo serves no streaming method). Last, the client side: our client (the
# transport fv_call uses between processes, bench/grpc_client_bench.c), a grpc-js client and
# h2load each calling the C++ server with 32 calls in flight on one connection.
#   bench/grpc.sh [SECONDS=8]
# Needs a built tree, h2load (nghttp2-client), libgrpc++-dev and npm's grpc-js
# (scripts/deps.sh test).
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
gjs_port=$((base + 18))
export NODE_PATH="$src/tests/support/node_modules"

g++ -O2 -std=c++17 "$src/bench/grpc_echo_server.cc" -o "$work/grpc_echo_server" \
    $(pkg-config --cflags --libs grpc++)
cc -O2 -std=gnu17 -I"$src/src" -I"$build/generated" "$src/bench/grpc_client_bench.c" \
    "$build/libfvlib.a" "$build/libfv_proto.a" "$build/libfv_llhttp.a" \
    $(pkg-config --libs libuv jansson libsodium libjwt sqlite3 libpq hiredis libcurl \
        libnghttp2 libprotobuf-c) -lwslay -ltomlplusplus -lstdc++ -lm -o "$work/grpc_client_bench"

cores=$(nproc)
srv_cpu=$((cores > 1 ? 1 : 0))
FINALVERSE_GENERAL__DATA_DIR="$work/data" FINALVERSE_GRPC__PROBE_SERVICE=true \
    FINALVERSE_GRPC__INTEROP_SERVICE=true FINALVERSE_GENERAL__LOG_LEVEL=warn \
    taskset -c "$srv_cpu" "$build/finalverse" serve song-engine --port-base "$base" \
    >"$work/ours.log" 2>&1 &
pids+=($!)
taskset -c "$srv_cpu" "$work/grpc_echo_server" "$ref_port" >"$work/ref.log" 2>&1 &
pids+=($!)
taskset -c "$srv_cpu" node "$src/bench/grpc_js.js" server "$gjs_port" >"$work/gjs.log" 2>&1 &
pids+=($!)

# EchoMessage{payload: 32 bytes}, framed: what both servers get and give back
payload=$(printf 'x%.0s' $(seq 32))
{ printf '\x00\x00\x00\x00\x22\x0a\x20'; printf '%s' "$payload"; } >"$work/req.bin"

run() { # NAME PORT [CONNECTIONS=16] -> "calls/s p50_ms p99_ms failed"
    local log="$work/$1.lat"
    rm -f "$log"
    taskset -c 0 h2load -t 1 -c "${3:-16}" -m 32 -D "$secs" --warm-up-time=1 -d "$work/req.bin" \
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
           grep -q '1 succeeded' &&
       h2load -n 1 -d "$work/req.bin" -H 'content-type: application/grpc' \
           "http://127.0.0.1:$gjs_port/finalverse.testing.v1.Probe/Echo" 2>/dev/null |
           grep -q '1 succeeded'; then
        break
    fi
    sleep 0.2
done

echo "unary Echo (32-byte payload), ${secs}s x $rounds rounds, h2load 1 thread, 16 conns x 32 streams,"
echo "each server pinned to one core"
best_ours="0 0 0 0"
best_ref="0 0 0 0"
best_gjs="0 0 0 0"
better() { awk -v a="${1%% *}" -v b="${2%% *}" 'BEGIN{exit !(a > b)}'; }
for r in $(seq "$rounds"); do
    o=$(run ours "$ours_port")
    c=$(run ref "$ref_port")
    j=$(run gjs "$gjs_port")
    set -- $o; printf '  round %s: finalverse %s calls/s (p50 %s ms, p99 %s ms, %s failed)' \
        "$r" "$1" "$2" "$3" "$4"
    set -- $c; printf ', C++ gRPC %s (p50 %s, p99 %s, %s failed)' "$1" "$2" "$3" "$4"
    set -- $j; printf ', grpc-js %s (p50 %s, p99 %s, %s failed)\n' "$1" "$2" "$3" "$4"
    if better "$o" "$best_ours"; then best_ours=$o; fi
    if better "$c" "$best_ref"; then best_ref=$c; fi
    if better "$j" "$best_gjs"; then best_gjs=$j; fi
done
set -- $best_ours; o_rps=$1; o_p50=$2; o_p99=$3
set -- $best_ref; c_rps=$1; c_p50=$2; c_p99=$3
set -- $best_gjs; j_rps=$1; j_p50=$2; j_p99=$3
printf 'finalverse   %10.0f calls/s   p50 %7.3f ms   p99 %7.3f ms\n' "$o_rps" "$o_p50" "$o_p99"
printf 'C++ gRPC     %10.0f calls/s   p50 %7.3f ms   p99 %7.3f ms\n' "$c_rps" "$c_p50" "$c_p99"
printf 'grpc-js      %10.0f calls/s   p50 %7.3f ms   p99 %7.3f ms\n' "$j_rps" "$j_p50" "$j_p99"
ratio() { # LABEL A B PA PB
    awk -v l="$1" -v a="$2" -v b="$3" -v p="$4" -v q="$5" 'BEGIN{
        printf "ratio %s: throughput %.2f x, p99 %.2f x (lower is better)\n", l,
               (b > 0 ? a / b : 0), (q > 0 ? p / q : 0) }'
}
ratio "finalverse/C++" "$o_rps" "$c_rps" "$o_p99" "$c_p99"
ratio "finalverse/grpc-js" "$o_rps" "$j_rps" "$o_p99" "$j_p99"

# the same calls from a client nobody here wrote (it is the slowest part: the ratios say how
# much each server leaves to it)
echo
echo "unary Echo from a grpc-js client (32 calls in flight on one channel), ${secs}s each"
for side in "finalverse:$ours_port" "C++ gRPC:$ref_port" "grpc-js:$gjs_port"; do
    set -- $(taskset -c 0 node "$src/bench/grpc_js.js" unary "${side##*:}" "$secs" 32)
    printf '  %-10s %8s calls/s   p50 %7s ms   p99 %7s ms   %s failed\n' "${side%%:*}" "$1" "$2" \
        "$3" "$4"
done

echo
echo "server streaming: StreamingOutputCall, 1,000 responses of 32 bytes a call, 4 calls at a"
echo "time, from a grpc-js client, ${secs}s each (the C++ echo has no streaming method)"
so=$(taskset -c 0 node "$src/bench/grpc_js.js" stream "$ours_port" "$secs")
sj=$(taskset -c 0 node "$src/bench/grpc_js.js" stream "$gjs_port" "$secs")
printf '  finalverse %10s messages/s (%s failed)\n' ${so}
printf '  grpc-js    %10s messages/s (%s failed)\n' ${sj}
awk -v a="${so%% *}" -v b="${sj%% *}" 'BEGIN{
    printf "ratio finalverse/grpc-js: %.2f x\n", (b > 0 ? a / b : 0) }'

# the client side: the same server (C++), one connection, 32 calls in flight, the client
# pinned to one core; h2load sends pre-framed bytes and decodes nothing (the upper bound)
echo
echo "client side: unary Echo to the C++ gRPC server, one connection, 32 calls in flight,"
echo "${secs}s each, each client pinned to one core"
cl_ours=$(taskset -c 0 "$work/grpc_client_bench" "$ref_port" "$secs" 32)
cl_gjs=$(taskset -c 0 node "$src/bench/grpc_js.js" unary "$ref_port" "$secs" 32)
cl_h2l=$(run h2load_one "$ref_port" 1)
for side in "finalverse:$cl_ours" "grpc-js:$cl_gjs" "h2load:$cl_h2l"; do
    set -- ${side#*:}
    printf '  %-10s %8.0f calls/s   p50 %7s ms   p99 %7s ms   %s failed\n' "${side%%:*}" "$1" \
        "$2" "$3" "$4"
done
awk -v a="${cl_ours%% *}" -v b="${cl_gjs%% *}" -v c="${cl_h2l%% *}" 'BEGIN{
    printf "ratio finalverse client/grpc-js client: %.2f x; finalverse client/h2load: %.2f x\n",
           (b > 0 ? a / b : 0), (c > 0 ? a / c : 0) }'
