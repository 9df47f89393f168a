# lib.sh - shared helpers for the integration tests: a free port range, starting and stopping
# finalverse processes, bounded waits and assertions. Sourced by test_*.sh.
set -euo pipefail

: "${FV_BIN:?FV_BIN must point at the finalverse binary}"
FV_TMP=$(mktemp -d "${TMPDIR:-/tmp}/fv-it.XXXXXX")
FV_PIDS=()
FV_FAILS=0

cleanup() {
    local rc=$? pid
    if [ "$rc" -ne 0 ] && [ "$FV_FAILS" -eq 0 ]; then
        echo "test script stopped early (exit $rc); logs:"
        tail -n 40 "$FV_TMP"/*.log 2>/dev/null || true
    fi
    for pid in "${FV_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${FV_PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$FV_TMP"
}
trap cleanup EXIT

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Picks a base N such that N..N+13 are all free; sets PORT_BASE.
pick_port_base() {
    local tries base p busy
    for tries in $(seq 50); do
        # Below the kernel's ephemeral range (32768+), so a client socket's local port
        # cannot take one of ours between the check and the bind.
        base=$(( (RANDOM % 1100) * 20 + 10000 ))
        busy=0
        for p in $(seq "$base" $((base + 13))); do
            if port_in_use "$p"; then busy=1; break; fi
        done
        if [ "$busy" = 0 ]; then PORT_BASE=$base; return 0; fi
    done
    echo "no free port range found" >&2
    return 1
}

# Component index -> port under PORT_BASE (same order as src/runtime/module_list.h).
COMPONENTS=(websocket-gateway song-engine world-engine echo-engine ai-orchestra story-engine
            harmony-service asset-service community silence-service procedural-gen behavior-ai
            api-gateway service-registry)
port_of() {
    local i
    for i in "${!COMPONENTS[@]}"; do
        if [ "${COMPONENTS[$i]}" = "$1" ]; then echo $((PORT_BASE + i)); return 0; fi
    done
    return 1
}

# start_fv NAME ARGS... : runs finalverse in the background, logs to $FV_TMP/NAME.log.
# world_walk PLAYER X...: walks PLAYER across terra-nova over gRPC to each X in turn
# (world_walk.py); prints the x where the world engine put it last.
world_walk() {
    [ -s "$FV_TMP/world.desc" ] || protoc-c --proto_path="$FV_SRC/proto" --include_imports \
        --descriptor_set_out="$FV_TMP/world.desc" world.proto || return 1
    (cd "$FV_SRC/tests/integration" &&
        /usr/bin/python3 world_walk.py "$(port_of world-engine)" "$FV_TMP/world.desc" "$@")
}

start_fv() {
    local name=$1; shift
    "$FV_BIN" "$@" >"$FV_TMP/$name.out" 2>"$FV_TMP/$name.log" &
    FV_LAST_PID=$!
    FV_PIDS+=("$FV_LAST_PID")
}

# wait_for SECONDS CMD... : retries CMD every 0.1 s until it succeeds or time runs out.
wait_for() {
    local secs=$1; shift
    local deadline=$(( $(date +%s%N) / 1000000 + secs * 1000 ))
    while [ $(( $(date +%s%N) / 1000000 )) -lt "$deadline" ]; do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    return 1
}

# wait_eq SECONDS EXPECTED CMD... : retries until CMD prints EXPECTED (CMD is re-run each time).
wait_eq() {
    local secs=$1 want=$2; shift 2
    local deadline=$(( $(date +%s%N) / 1000000 + secs * 1000 ))
    while [ $(( $(date +%s%N) / 1000000 )) -lt "$deadline" ]; do
        if [ "$("$@" 2>/dev/null)" = "$want" ]; then return 0; fi
        sleep 0.1
    done
    return 1
}

http_status() { # URL [curl args] -> prints the status code
    local url=$1; shift
    curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" "$url"
}

# proc_kib PID FIELD: a memory figure of /proc/PID/status in KiB (VmRSS, VmHWM).
proc_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
# mem_check DESCRIPTION GROWTH_KIB LIMIT_KIB: growth under the limit. A sanitizer build keeps
# freed memory in quarantine, so its figures say nothing about ours: there it is not measured.
mem_check() {
    if grep -q "__asan_init" "$FV_BIN" 2>/dev/null; then
        ok "$1 (not measured: sanitizer build)"
        return
    fi
    check "$1" test "$2" -lt "$3"
}

ok() { echo "ok - $*"; }
fail() { echo "FAIL - $*"; FV_FAILS=$((FV_FAILS + 1)); }
check() { # DESCRIPTION CMD...
    local what=$1; shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}

finish() {
    if [ "$FV_FAILS" -ne 0 ]; then
        echo "--- logs ---"
        tail -n 40 "$FV_TMP"/*.log 2>/dev/null || true
        echo "$FV_FAILS check(s) failed"
        exit 1
    fi
    echo "all checks passed"
}
