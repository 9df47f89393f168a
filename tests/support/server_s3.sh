#!/usr/bin/env bash
# server_s3.sh start|stop DIR - an S3-compatible server (the npm package s3rver) for tests.
#   start: runs it on 127.0.0.1 on a free port (the port of DIR/s3.port when that file exists, so
#          a test that killed its private instance gets it back at the same URL), waits until it
#          answers, writes DIR/s3.url, DIR/s3.pid and DIR/s3.port. Data lives in DIR/s3/.
#   stop:  stops it and removes its data and files; never fails when nothing runs.
# Credentials are s3rver's built-in S3RVER/S3RVER; the URL carries only bucket and endpoint.
set -euo pipefail

cmd=${1:?usage: server_s3.sh start|stop DIR}
dir=${2:?usage: server_s3.sh start|stop DIR}
here=$(cd "$(dirname "$0")" && pwd)
bin="$here/node_modules/s3rver/bin/s3rver.js"

port_free() {
    python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}

stop() {
    if [ -f "$dir/s3.pid" ]; then
        pid=$(cat "$dir/s3.pid")
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    rm -rf "$dir/s3" "$dir/s3.pid" "$dir/s3.url" "$dir/s3.port" "$dir/s3.log"
}

case "$cmd" in
start)
    if [ ! -f "$bin" ]; then
        echo "server_s3.sh: s3rver is not installed; run scripts/deps.sh test" >&2
        exit 1
    fi
    mkdir -p "$dir/s3"
    if [ -f "$dir/s3.pid" ] && kill -0 "$(cat "$dir/s3.pid")" 2>/dev/null &&
       [ -f "$dir/s3.url" ] && [ -f "$dir/s3.port" ] &&
       curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$(cat "$dir/s3.port")/"; then
        exit 0                                  # already running and answering
    fi
    port=""
    if [ -f "$dir/s3.port" ]; then
        port=$(cat "$dir/s3.port")
    else
        for _ in $(seq 50); do
            p=$((20000 + RANDOM % 40000))
            if port_free "$p"; then port=$p; break; fi
        done
    fi
    [ -n "$port" ] || { echo "server_s3.sh: no free port" >&2; exit 1; }
    # s3rver makes its ListObjectsV2 continuation tokens with DES, which OpenSSL 3 only has in
    # its legacy provider: without it every truncated listing is a 500.
    node --openssl-legacy-provider "$bin" --address 127.0.0.1 --port "$port" --directory "$dir/s3" --silent \
        >>"$dir/s3.log" 2>&1 </dev/null &
    echo $! > "$dir/s3.pid"
    echo "$port" > "$dir/s3.port"
    for _ in $(seq 150); do
        if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/"; then
            echo "s3://finalverse-test?endpoint=http://127.0.0.1:$port&region=us-east-1" \
                > "$dir/s3.url"
            exit 0
        fi
        if ! kill -0 "$(cat "$dir/s3.pid")" 2>/dev/null; then
            break
        fi
        sleep 0.2
    done
    echo "server_s3.sh: s3rver did not answer on port $port" >&2
    cat "$dir/s3.log" >&2 || true
    stop
    exit 1
    ;;
stop)
    stop
    ;;
*)
    echo "usage: server_s3.sh start|stop DIR" >&2
    exit 2
    ;;
esac
