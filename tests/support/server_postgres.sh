#!/usr/bin/env bash
# server_postgres.sh - a throwaway PostgreSQL for tests, on a free 127.0.0.1 port.
#   start DIR   initialise (first time) and start it; writes DIR/postgres.url and DIR/postgres.pid.
#               On a DIR that was halted, starts the same data again on the same port.
#   halt DIR    stop the server but keep its data and port (fault tests restart it with start)
#   stop DIR    stop it and remove its data; idempotent, never fails when nothing runs
# As root the server runs as the postgres user. fsync is off and local auth is trust: this is
# for tests only. The database finalverse_test is created.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [[ -z "$cmd" || -z "$dir" ]]; then
    echo "usage: $0 start|halt|stop DIR" >&2
    exit 2
fi

pgbin=""
for d in /usr/lib/postgresql/*/bin; do
    [[ -x "$d/pg_ctl" ]] && pgbin=$d
done
if [[ -z "$pgbin" ]]; then
    echo "server_postgres.sh: PostgreSQL server binaries not found (install postgresql)" >&2
    exit 1
fi

data=$dir/postgres-data
sock=$dir/postgres-sock
log=$dir/postgres.log

as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pg_stop() {
    if [[ -f "$data/postmaster.pid" ]]; then
        as_pg "$pgbin/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
            as_pg "$pgbin/pg_ctl" -D "$data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
    rm -f "$dir/postgres.pid"
}

case "$cmd" in
start)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    data=$dir/postgres-data sock=$dir/postgres-sock log=$dir/postgres.log
    mkdir -p "$sock"
    touch "$log"
    if [[ $(id -u) -eq 0 ]]; then
        chmod 755 "$dir"
        chown postgres "$sock" "$log"
    fi
    fresh=0
    if [[ ! -f "$data/PG_VERSION" ]]; then
        rm -rf "$data"
        mkdir -p "$data"
        [[ $(id -u) -eq 0 ]] && chown postgres "$data"
        as_pg "$pgbin/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
            >>"$log" 2>&1
        fresh=1
    fi
    if [[ -f "$dir/postgres.port" ]]; then
        port=$(cat "$dir/postgres.port")
    else
        port=""
        for _ in $(seq 1 50); do
            p=$((20000 + RANDOM % 40000))
            if port_free "$p"; then port=$p; break; fi
        done
        [[ -n "$port" ]] || { echo "server_postgres.sh: no free port" >&2; exit 1; }
        echo "$port" >"$dir/postgres.port"
    fi
    as_pg "$pgbin/pg_ctl" -D "$data" -l "$log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -k $sock -c fsync=off \
            -c synchronous_commit=off -c full_page_writes=off -c max_connections=100" \
        start >/dev/null
    ok=0
    for _ in $(seq 1 100); do
        if as_pg "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$port"; then ok=1; break; fi
        sleep 0.1
    done
    [[ $ok -eq 1 ]] || { echo "server_postgres.sh: server did not answer" >&2; tail -20 "$log" >&2; exit 1; }
    if [[ $fresh -eq 1 ]]; then
        as_pg "$pgbin/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
            -c "CREATE DATABASE finalverse_test" >/dev/null
    fi
    echo "postgres://postgres@127.0.0.1:$port/finalverse_test" >"$dir/postgres.url"
    head -1 "$data/postmaster.pid" >"$dir/postgres.pid"
    ;;
halt)
    [[ -d "$dir" ]] || exit 0
    pg_stop
    ;;
stop)
    [[ -d "$dir" ]] || exit 0
    pg_stop
    rm -rf "$data" "$sock" "$dir/postgres.url" "$dir/postgres.port" "$log"
    ;;
*)
    echo "usage: $0 start|halt|stop DIR" >&2
    exit 2
    ;;
esac
