# lib.sh - what the benchmark scripts that start finalverse share: their test packages and a
# built binary ($BIN), a temporary folder ($TMP) whose processes ($PIDS) are stopped on exit,
# and a port range below the kernel's ephemeral one (the proxies open many client sockets, and
# one of them must not take a port we are about to listen on). Sourced from the repository's
# root by bench/*.sh.

bench_setup() {
    bash scripts/deps.sh test >/dev/null
    [ -x "$BIN" ] || { echo "build first (make)"; exit 1; }
    TMP=$(mktemp -d)
    PIDS=()
    trap bench_cleanup EXIT
}

bench_cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# bench_port_base OFFSET... : sets BASE (20000..29980, a multiple of 20) with BASE+OFFSET free
# for every OFFSET given.
bench_port_base() {
    local off ok
    for _ in $(seq 50); do
        BASE=$(( (RANDOM % 500) * 20 + 20000 ))
        ok=1
        for off in "$@"; do port_free $((BASE + off)) || { ok=0; break; }; done
        [ "$ok" = 1 ] && return 0
    done
    echo "no free port range"
    exit 1
}
