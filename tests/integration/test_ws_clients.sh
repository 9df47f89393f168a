#!/usr/bin/env bash
# test_ws_clients.sh - realtime through :3000 with clients nobody here wrote: Python's
# websockets, node's ws and headless Chromium each say hello, subscribe to a region and receive
# a song.performed event that another process publishes on the bus over a real Redis (the bus's
# wire format on "fv.bus.<channel>"). The gateway runs alone: `finalverse serve
# websocket-gateway`.
source "$(dirname "$0")/lib.sh"
SUPPORT=${FV_SRC:?}/tests/support
WS=${FV_SRC}/tests/integration/ws
SERVERS=$FV_TMP/servers
mkdir -p "$SERVERS"
trap 'bash "$SUPPORT/server_redis.sh" stop "$SERVERS" >/dev/null 2>&1 || true; cleanup' EXIT
bash "$SUPPORT/server_redis.sh" start "$SERVERS" >"$FV_TMP/server_redis.log" 2>&1 ||
    { echo "cannot start redis:"; cat "$FV_TMP/server_redis.log"; exit 1; }
REDIS=$(cat "$SERVERS/redis.url")

pick_port_base
export FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/data"
export FINALVERSE_REDIS__URL=$REDIS
PORT=$(port_of websocket-gateway)
start_fv ws serve websocket-gateway --port-base "$PORT_BASE"
check "the gateway serves /health on :$PORT" wait_eq 15 200 http_status "http://127.0.0.1:$PORT/health"
check "... and its bus is on Redis" wait_for 10 bash -c \
    "curl -s http://127.0.0.1:$PORT/health | jq -e '.checks[] | select(.name==\"kv\") | .status == \"pass\"'"

# run_client NAME CMD...: starts the client, waits until it has subscribed, publishes an event
# on its region from this process (over Redis), and checks what the client printed.
run_client() {
    local name=$1; shift
    local region="it-$name" ready="$FV_TMP/$name.ready" out="$FV_TMP/$name.out"
    "$@" "ws://127.0.0.1:$PORT/ws" "region:$region" "$ready" >"$out" 2>"$FV_TMP/$name.log" &
    local pid=$!
    if ! wait_for 30 test -f "$ready"; then
        fail "$name: did not subscribe ($(tail -3 "$FV_TMP/$name.log"))"
        kill "$pid" 2>/dev/null || true
        return
    fi
    # the subscription is local; the bus's Redis subscription was made at start
    /usr/bin/python3 "$WS/publish.py" "$REDIS" "region.$region" 4.5 >"$FV_TMP/$name.pub" 2>&1
    if wait "$pid"; then
        ok "$name: connected and subscribed"
    else
        fail "$name: client failed ($(tail -3 "$FV_TMP/$name.log"))"
        return
    fi
    if jq -e --arg ch "region:$region" \
        '.type == "event" and .seq >= 1 and .channel == $ch and .event == "song.performed" and
         .data.melody_type == "restoration" and .data.power == 4.5 and
         .data.position.at.x == 100' "$out" >/dev/null; then
        ok "$name: received the event from the other process"
    else
        fail "$name: received the event from the other process; it printed: $(cat "$out")"
    fi
}

# Debian's python, where python3-websockets is installed (another python3 may come first in PATH)
run_client python /usr/bin/python3 "$WS/client.py"
export NODE_PATH="$SUPPORT/node_modules"
run_client node node "$WS/client_node.js"
if [ -x /usr/bin/chromium ]; then
    run_client chromium node "$WS/client_browser.js"
else
    fail "chromium is not installed (scripts/deps.sh test installs it)"
fi

check "the gateway counted three clients' events" bash -c \
    "curl -s http://127.0.0.1:$PORT/metrics | grep -q '^finalverse_ws_events_sent_total{.*} 3$'"
finish
