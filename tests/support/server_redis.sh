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
    fixed=""
    [ -f "$dir/redis.port" ] && fixed=$(cat "$dir/redis.port")
    # Ports below the kernel's ephemeral range (32768 and up by default), so an outgoing
    # connection's local port cannot collide; a bind can still lose a race, so retry.
    for attempt in 1 2 3 4 5; do
        port=""
        if [ -n "$fixed" ]; then
            port=$fixed
            for _ in $(seq 1 50); do
                port_free "$port" && break
                sleep 0.1
            done
        else
            for _ in $(seq 1 100); do
                p=$((10000 + RANDOM % 22000))
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
        redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
            --daemonize no --dir "$dir" --logfile "$dir/redis.log" >/dev/null 2>&1 &
        echo $! >"$dir/redis.pid"
        for _ in $(seq 1 100); do
            if [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = "PONG" ]; then
                echo "redis://127.0.0.1:$port/0" >"$dir/redis.url"
                echo "redis on port $port"
                exit 0
            fi
            alive "$(cat "$dir/redis.pid")" || break
            sleep 0.1
        done
        echo "redis did not start on port $port (attempt $attempt)" >&2
        tail -n 3 "$dir/redis.log" >&2 2>/dev/null
        stop
        [ -n "$fixed" ] && sleep 0.5
    done
    rm -f "$dir/redis.port"
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
