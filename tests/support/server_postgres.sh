#!/usr/bin/env bash
# server_postgres.sh - a throwaway PostgreSQL for tests, on a free 127.0.0.1 port.
#   start DIR   initialise (first time) and start it; writes DIR/postgres.url and DIR/postgres.pid.
#               On a DIR that was halted, starts the same data again on the same port.
#   halt DIR    stop the server but keep its data and port (fault tests restart it with start)
#   stop DIR    stop it and remove its data; idempotent, never fails when nothing runs
# As root the server runs as the postgres user. fsync is off and local auth is trust: this is
# for tests only. The database finalverse_test is created (the URL names it), and beside it one
# per other test program that must not share tables with the sql suite: finalverse_test_vector,
# finalverse_test_app (same URL with that database name).
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

# The server's files live in DIR, or, when the postgres user cannot reach DIR (a checkout under
# a private home), in a folder of its own under /tmp whose path DIR/postgres.home records.
home_of() {
    if [[ -f "$1/postgres.home" ]]; then
        cat "$1/postgres.home"
    else
        echo "$1"
    fi
}
home=$(home_of "$dir")
data=$home/postgres-data
sock=$home/postgres-sock
log=$home/postgres.log

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

fail() {
    echo "server_postgres.sh: $1" >&2
    [[ -f "$log" ]] && tail -20 "$log" >&2
    exit 1
}

case "$cmd" in
start)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [[ ! -f "$dir/postgres.home" ]]; then
        home=$dir
        if [[ $(id -u) -eq 0 ]]; then
            chmod 755 "$dir"
            if ! runuser -u postgres -- test -x "$dir" 2>/dev/null; then
                home=$(mktemp -d /tmp/fv-postgres.XXXXXX)
                chmod 755 "$home"
                echo "$home" >"$dir/postgres.home"
            fi
        fi
    fi
    home=$(home_of "$dir")
    data=$home/postgres-data sock=$home/postgres-sock log=$home/postgres.log
    mkdir -p "$sock"
    touch "$log"
    if [[ $(id -u) -eq 0 ]]; then
        chown postgres "$sock" "$log"
    fi
    fresh=0
    if [[ ! -f "$data/PG_VERSION" ]]; then
        rm -rf "$data"
        mkdir -p "$data"
        [[ $(id -u) -eq 0 ]] && chown postgres "$data"
        as_pg "$pgbin/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
            >>"$log" 2>&1 || fail "initdb failed (can the postgres user reach $dir?)"
        fresh=1
    fi
    # A restart after halt reuses the port; a first start picks one below Linux's ephemeral
    # range (32768+), so no client socket of this machine can be holding it, and tries again
    # with another port if the server still cannot bind.
    started=0
    for _ in $(seq 1 10); do
        if [[ -f "$dir/postgres.port" ]]; then
            port=$(cat "$dir/postgres.port")
            fixed=1
        else
            port=""
            for _ in $(seq 1 50); do
                p=$((15000 + RANDOM % 17000))
                if port_free "$p"; then port=$p; break; fi
            done
            [[ -n "$port" ]] || fail "no free port"
            fixed=0
        fi
        if as_pg "$pgbin/pg_ctl" -D "$data" -l "$log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -c port=$port -k $sock -c fsync=off \
                -c synchronous_commit=off -c full_page_writes=off -c max_connections=100" \
            start >/dev/null; then
            started=1
            echo "$port" >"$dir/postgres.port"
            break
        fi
        [[ $fixed -eq 1 ]] && sleep 0.5
    done
    [[ $started -eq 1 ]] || fail "pg_ctl start failed"
    ok=0
    for _ in $(seq 1 100); do
        if as_pg "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$port"; then ok=1; break; fi
        sleep 0.1
    done
    [[ $ok -eq 1 ]] || { echo "server_postgres.sh: server did not answer" >&2; tail -20 "$log" >&2; exit 1; }
    if [[ $fresh -eq 1 ]]; then
        as_pg "$pgbin/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
            -c "CREATE DATABASE finalverse_test" \
            -c "CREATE DATABASE finalverse_test_vector" \
            -c "CREATE DATABASE finalverse_test_app" >/dev/null
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
    if [[ -f "$dir/postgres.home" ]]; then
        rmdir "$home" 2>/dev/null || true
        rm -f "$dir/postgres.home"
    fi
    ;;
*)
    echo "usage: $0 start|halt|stop DIR" >&2
    exit 2
    ;;
esac
