#!/usr/bin/env bash
# server_redis.sh start|stop DIR - a throwaway redis-server on 127.0.0.1 for the store tests.
# start: picks a free random port (or the one a previous start in DIR used, so a test can
# restart "the same server"), runs redis-server without persistence in the background, waits
# (bounded) for PING, writes DIR/redis.url and DIR/redis.pid. stop: stops it and removes its
# files; never fails when nothing runs.
set -u
cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
    echo "usage: $0 start|stop DIR" >&2
    exit 2
fi

port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A killed server may linger as a zombie nobody reaps: that is not running.
alive() {
    [ -n "$1" ] && kill -0 "$1" 2>/dev/null &&
        [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != "Z" ]
}

stop() {
    if [ -f "$dir/redis.pid" ]; then
        pid=$(cat "$dir/redis.pid")
        if alive "$pid"; then
            kill -CONT "$pid" 2>/dev/null
            kill "$pid" 2>/dev/null
            for _ in $(seq 1 50); do
                alive "$pid" || break
                sleep 0.1
            done
            kill -9 "$pid" 2>/dev/null
        fi
    fi
    rm -f "$dir/redis.pid" "$dir/redis.url" "$dir/redis.log"
}

case "$cmd" in
start)
    mkdir -p "$dir"
    if [ -f "$dir/redis.pid" ] && alive "$(cat "$dir/redis.pid")"; then
        echo "redis already running: $(cat "$dir/redis.url")"
        exit 0
    fi
    port=""
    if [ -f "$dir/redis.port" ]; then
        port=$(cat "$dir/redis.port")
        for _ in $(seq 1 50); do
            port_free "$port" && break
            sleep 0.1
        done
    else
        for _ in $(seq 1 100); do
            p=$((20000 + RANDOM % 40000))
            if port_free "$p"; then
                port=$p
                break
            fi
        done
    fi
    if [ -z "$port" ]; then
        echo "no free port" >&2
        exit 1
    fi
    echo "$port" >"$dir/redis.port"
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
        --dir "$dir" --logfile "$dir/redis.log" >/dev/null 2>&1 &
    echo $! >"$dir/redis.pid"
    for _ in $(seq 1 100); do
        if [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = "PONG" ]; then
            echo "redis://127.0.0.1:$port/0" >"$dir/redis.url"
            echo "redis on port $port"
            exit 0
        fi
        if ! alive "$(cat "$dir/redis.pid")"; then
            break
        fi
        sleep 0.1
    done
    echo "redis did not answer on port $port" >&2
    cat "$dir/redis.log" >&2 2>/dev/null
    stop
    exit 1
    ;;
stop)
    stop
    rm -f "$dir/redis.port"
    exit 0
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
