#!/usr/bin/env bash
# tick.sh - lateness of a 10 Hz module tick while wrk loads the same process, beside a plain
# repeating uv_timer of the same period in that process (what a module would use without the
# runtime's ticks). Lateness = start minus the ideal time start + k * 100 ms.
#   bench/tick.sh [SECONDS=20] [CONNECTIONS=64]
# Needs a built tree (cmake --build build); compiles bench/tick_bench.c against build/*.a.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${FV_BUILD:-$src/build}
secs=${1:-20}
conns=${2:-64}
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT

cc -O2 -std=gnu17 -I"$src/src" -I"$build/generated" "$src/bench/tick_bench.c" \
    "$build/libfvlib.a" "$build/libfv_proto.a" "$build/libfv_llhttp.a" \
    $(pkg-config --libs libuv jansson libsodium libjwt sqlite3 libpq hiredis libcurl \
        libnghttp2 libprotobuf-c) -lwslay -ltomlplusplus -lstdc++ -lm -o "$work/tick_bench"

base=$(( (RANDOM % 1000) * 20 + 10000 ))
port=$((base + 1))
"$work/tick_bench" "$base" "$secs" >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
echo "10 Hz for ${secs}s; wrk -t1 -c$conns on /health of the same process for $((secs - 2))s"
wrk -t1 -c"$conns" -d"$((secs - 2))s" "http://127.0.0.1:$port/health" |
    awk '/Requests\/sec/ { print "  wrk: " $2 " req/s meanwhile" }'
wait "$pid"
pid=
cat "$work/out"
