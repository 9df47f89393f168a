#!/usr/bin/env bash
# test_ws_cases.sh - the RFC 6455 case runner (tests/integration/ws/cases.py: handshake,
# framing, control frames, fragmentation, UTF-8, close codes, limits) against our gateway, and
# the same runner against a server on npm's ws, the reference that proves the runner itself.
source "$(dirname "$0")/lib.sh"
WS=${FV_SRC:?}/tests/integration/ws
export NODE_PATH=$FV_SRC/tests/support/node_modules
LIMIT=65536

pick_port_base
export FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/data"
export FINALVERSE_WEBSOCKET__MAX_MESSAGE_BYTES=$LIMIT
PORT=$(port_of websocket-gateway)
REF=$(port_of song-engine)      # a port of the range nothing else uses in this test
start_fv ws serve websocket-gateway --port-base "$PORT_BASE"
check "the gateway is up" wait_eq 15 200 http_status "http://127.0.0.1:$PORT/health"
node "$WS/ref_echo_server.js" "$REF" "$LIMIT" >"$FV_TMP/ref.out" 2>"$FV_TMP/ref.log" &
FV_PIDS+=("$!")
check "the reference server is up" wait_for 15 grep -q ready "$FV_TMP/ref.out"

for target in "reference:$REF" "finalverse:$PORT"; do
    name=${target%%:*}
    if WS_CASES_LIMIT=$LIMIT /usr/bin/python3 "$WS/cases.py" 127.0.0.1 "${target#*:}" \
        >"$FV_TMP/cases-$name.txt" 2>&1; then
        ok "$name passes every case ($(tail -1 "$FV_TMP/cases-$name.txt"))"
    else
        fail "$name: $(grep -v '^ok' "$FV_TMP/cases-$name.txt" | tr '\n' ';')"
    fi
done
check "the gateway survived every case" test "$(http_status "http://127.0.0.1:$PORT/health")" = 200
finish
