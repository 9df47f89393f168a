#!/usr/bin/env bash
# test_gateway_ws.sh - one port serves a browser: GET /ws with an upgrade on the api-gateway is
# tunnelled to the websocket-gateway found in the registry; a client there says hello and gets
# its welcome, subscribes and gets its ack; both ends close together. A plain GET /ws is 400,
# and without a websocket-gateway it is 503. The websocket-gateway's refusal of an Origin it
# does not allow reaches the client as it said it (403, its message), not as a 502.
source "$(dirname "$0")/lib.sh"

pick_port_base
export FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/data"
GW=http://127.0.0.1:$(port_of api-gateway)

start_fv gw serve service-registry api-gateway --port-base "$PORT_BASE"
wait_eq 10 200 http_status "$GW/health" || { fail "gateway did not come up"; finish; }
check "a plain GET /ws is 400" test "$(http_status "$GW/ws")" = 400
body=$(curl -s --max-time 5 -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
    -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "$GW/ws")
check "no websocket-gateway: 503 naming it" bash -c "echo '$body' | jq -e '.error.message | test(\"websocket-gateway\")' >/dev/null"

FINALVERSE_WEBSOCKET__ALLOWED_ORIGINS=http://game.example \
    start_fv ws serve websocket-gateway --port-base "$PORT_BASE"
wait_eq 15 200 http_status "http://127.0.0.1:$(port_of websocket-gateway)/health" ||
    { fail "websocket-gateway did not come up"; finish; }
has_ws() {
    curl -s "$GW/gateway/routes" |
        jq -e '.routes[] | select(.service=="websocket-gateway") | .instances | length == 1' >/dev/null
}
check "the gateway sees the websocket-gateway" wait_for 10 has_ws

upgrade_from() {   # ORIGIN: the status line, X-Request-Id and body of an upgrade through :8080
    curl -s -i --max-time 5 -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
        -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \
        -H "Origin: $1" "$GW/ws" | tr -d '\r'
}
refused=$(upgrade_from http://evil.example)
check "an Origin the websocket-gateway refuses: 403 through :8080 ($(head -1 <<<"$refused"))" \
    grep -q '^HTTP/1.1 403' <<<"$refused"
check "... with the websocket-gateway's message and a request id" bash -c \
    'grep -q "Origin not allowed" <<<"$1" && grep -qi "^x-request-id: ." <<<"$1"' _ "$refused"

cat >"$FV_TMP/client.py" <<'PY'
import asyncio, json, sys
import websockets

async def main(url):
    async with websockets.connect(url, max_size=2**22) as ws:
        await ws.send(json.dumps({"type": "hello", "client": "gateway-test", "version": "1"}))
        welcome = json.loads(await ws.recv())
        assert welcome["type"] == "welcome", welcome
        print("welcome")
        await ws.send(json.dumps({"type": "subscribe", "id": 7, "channels": ["region:gw-test"]}))
        ack = json.loads(await ws.recv())
        assert ack == {"type": "ack", "id": 7}, ack
        print("ack")
        # a large frame crosses the tunnel in many reads; the answer is an error or nothing,
        # but the connection must stay whole: another subscribe is still answered
        try:
            await ws.send(json.dumps({"type": "noop", "pad": "x" * 200000}))
        except Exception:
            pass
    print("closed")

asyncio.run(asyncio.wait_for(main(sys.argv[1]), 20))
PY
out=$(/usr/bin/python3 "$FV_TMP/client.py" "ws://127.0.0.1:$(port_of api-gateway)/ws" 2>"$FV_TMP/client.err" | tr '\n' ' ')
check "hello through :8080/ws gets welcome, subscribe gets ack ($out)" test "$out" = "welcome ack closed "
check "the tunnel is gone after the close" wait_for 10 bash -c \
    "curl -s '$GW/gateway/routes' | jq -e '.routes[] | select(.service==\"websocket-gateway\") | .instances[0].outstanding == 0' >/dev/null"
check "the gateway still answers" test "$(http_status "$GW/health")" = 200
finish
