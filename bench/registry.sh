#!/usr/bin/env bash
# registry.sh - the service registry at scale, against `finalverse serve service-registry`:
#   1. N registrations (default 100,000) with WINDOW in flight: the rate of the first and of the
#      last 10,000 (a flat rate means a register costs the same at any size);
#   2. loading the catalog those N left on disk, as the registry does at start;
#   3. WAITERS blocking queries on /v1/agent/services over CATALOG instances, answered after
#      one change: waiters woken per second, and the worst latency a probe request (one at a
#      time, its own connection) saw meanwhile: the loop's worst stall as a client sees it.
# Needs a built tree (cmake --build build); compiles bench/registry_bench.c against
# build/libfvlib.a. Usage: bench/registry.sh [N=100000] [WINDOW=64] [WAITERS=2000]
# [CATALOG=5000]
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${FV_BUILD:-$src/build}
n=${1:-100000}
window=${2:-64}
waiters=${3:-2000}
catalog=${4:-5000}
base=${PORT_BASE:-24000}
port=$((base + 13))   # service-registry under --port-base
work=$(mktemp -d)
pid=""
stop_registry() {
    if [ -n "$pid" ]; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        pid=""
    fi
}
trap 'stop_registry; rm -rf "$work"' EXIT

cc -O2 -std=gnu17 -I"$src/src" "$src/bench/registry_bench.c" "$build/libfvlib.a" \
    "$build/libfv_proto.a" "$build/libfv_llhttp.a" \
    $(pkg-config --libs libuv jansson libsodium libjwt sqlite3 libpq hiredis libcurl \
        libnghttp2 libprotobuf-c) -lwslay -ltomlplusplus -lstdc++ -lm -o "$work/registry_bench"

token=bench-token-0123456789
start_registry() {   # data dir
    FINALVERSE_GENERAL__DATA_DIR="$1" FINALVERSE_REGISTRY__TOKEN="$token" \
        FINALVERSE_GENERAL__LOG_LEVEL=warn \
        FINALVERSE_REGISTRY__MAX_BLOCKING_QUERIES_PER_CLIENT=100000 \
        FINALVERSE_REGISTRY__MAX_BLOCKING_QUERIES=100000 \
        "$build/finalverse" serve service-registry --port-base "$base" \
        >"$work/out.log" 2>&1 &
    pid=$!
    for _ in $(seq 200); do
        curl -sf "http://127.0.0.1:$port/v1/status/leader" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "the registry did not start" >&2
    cat "$work/out.log" >&2
    exit 1
}
value() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }
ms() { awk -v k="$1" 'index($1, k "{") == 1 || $1 == k { printf "%.1f", $2 * 1000 }' \
    "${2:-$work/metrics.txt}"; }

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
mkdir -p "$work/a" "$work/b"
start_registry "$work/a"
"$work/registry_bench" register 127.0.0.1 "$port" "$token" "$n" "$window" >"$work/reg.txt"
sleep 3         # the debounced save of the whole catalog runs meanwhile
curl -s "http://127.0.0.1:$port/metrics" | grep '^finalverse_registry_' >"$work/metrics_a.txt" || true
stop_registry   # saves the catalog at close
"$work/registry_bench" load "$work/a" >"$work/load.txt"
bytes=$(stat -c %s "$work/a/registry/catalog.json")

start_registry "$work/b"
"$work/registry_bench" register 127.0.0.1 "$port" "$token" "$catalog" "$window" >/dev/null
# the probe runs in its own process through the settling (3 s) and the wake-ups
"$work/registry_bench" probe 127.0.0.1 "$port" "$token" 8000 >"$work/probe.txt" &
probe_pid=$!
"$work/registry_bench" waiters 127.0.0.1 "$port" "$token" "$waiters" >"$work/wait.txt"
wait "$probe_pid"
curl -s "http://127.0.0.1:$port/metrics" | grep '^finalverse_registry_' >"$work/metrics.txt" || true
stop_registry

echo "registrations: $n, $window in flight, 500 names"
printf '  %-34s %10s /s\n' "first 10,000" "$(value first_10k_per_s "$work/reg.txt")"
printf '  %-34s %10s /s\n' "last 10,000" "$(value last_10k_per_s "$work/reg.txt")"
printf '  %-34s %10s s\n' "all" "$(value seconds "$work/reg.txt")"
echo "loading the catalog at $(value loaded "$work/load.txt") instances ($bytes bytes)"
printf '  %-34s %10s ms\n' "load" "$(value load_ms "$work/load.txt")"
echo "saving the catalog at $n instances (in process, then in the running registry)"
printf '  %-34s %10s ms\n' "rendering it whole" "$(value render_whole_ms "$work/load.txt")"
printf '  %-34s %10s ms\n' "every instance's bytes" "$(value render_pieces_ms "$work/load.txt")"
printf '  %-34s %10s ms\n' "the snapshot turn" "$(value snapshot_ms "$work/load.txt")"
printf '  %-34s %10s ms\n' "the next save, one change" "$(value next_save_turn_ms "$work/load.txt")"
printf '  %-34s %10s ms\n' "loop time, all turns" "$(ms finalverse_registry_save_last_seconds "$work/metrics_a.txt")"
printf '  %-34s %10s ms\n' "longest turn" "$(ms finalverse_registry_save_turn_max_seconds "$work/metrics_a.txt")"
printf '  %-34s %10s ms\n' "longest turn, CPU time" "$(ms finalverse_registry_save_turn_max_cpu_seconds "$work/metrics_a.txt")"
echo "$waiters waiters on /v1/agent/services over $catalog instances, one change"
printf '  %-34s %10s ms\n' "all answered after" "$(value all_answered_ms "$work/wait.txt")"
printf '  %-34s %10s /s\n' "waiters woken" "$(value woken_per_s "$work/wait.txt")"
printf '  %-34s %10s ms\n' "worst probe latency meanwhile" "$(value worst_probe_ms "$work/probe.txt")"
printf '  %-34s %10s\n' "probes answered" "$(value probes "$work/probe.txt")"
printf '  %-34s %10s ms\n' "registry: longest wake-up turn" "$(ms finalverse_registry_wake_turn_max_seconds)"
printf '  %-34s %10s ms\n' "registry: ... in CPU time" "$(ms finalverse_registry_wake_turn_max_cpu_seconds)"
printf '  %-34s %10s ms\n' "registry: longest rendering" "$(ms finalverse_registry_render_max_seconds)"
printf '  %-34s %10s ms\n' "registry: last catalog save" "$(ms finalverse_registry_save_last_seconds)"
printf '  %-34s %10s ms\n' "registry: its longest turn" "$(ms finalverse_registry_save_turn_max_seconds)"
