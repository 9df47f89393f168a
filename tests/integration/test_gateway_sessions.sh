#!/usr/bin/env bash
# test_gateway_sessions.sh - refresh tokens and logout through the real gateway: a sign-in
# answers a refresh token; refreshing rotates it (a new pair, the old refresh token spent); a
# spent refresh token presented again revokes its whole family, the newest token included;
# logout revokes the access token (refused on forwarded requests and by the WebSocket gateway's
# hello from then on) and the refresh token's family; malformed bodies are 400.
source "$(dirname "$0")/lib.sh"
SUPPORT=${FV_SRC:?}/tests/support

pick_port_base
export FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/data"
export FINALVERSE_GATEWAY__AUTH_RATE_LIMIT_BURST=1000
GW=http://127.0.0.1:$(port_of api-gateway)
REG=http://127.0.0.1:$(port_of service-registry)
UP=$((PORT_BASE + 15))

start_fv gw serve service-registry api-gateway websocket-gateway --port-base "$PORT_BASE"
wait_eq 10 200 http_status "$GW/health" || { fail "gateway did not come up"; finish; }
/usr/bin/python3 "$SUPPORT/gw_upstream.py" "$UP" up 2>>"$FV_TMP/upstream.log" &
FV_PIDS+=($!)
wait_for 10 curl -sf --max-time 1 "http://127.0.0.1:$UP/echo" || true
check "the upstream is registered as song-engine" curl -sf --max-time 5 -X PUT \
    "$REG/v1/agent/service/register" -H "X-Consul-Token: $(cat "$FV_TMP/data/registry/token")" \
    -d "{\"Name\":\"song-engine\",\"ID\":\"song-up\",\"Address\":\"127.0.0.1\",\"Port\":$UP}"
wait_eq 10 200 http_status "$GW/api/song-engine/echo" >/dev/null || true

post() { # PATH BODY [TOKEN] -> "status body"
    curl -s -w ' %{http_code}' -X POST "$GW$1" ${2:+-d "$2"} ${3:+-H "Authorization: Bearer $3"}
}
code() { echo "${1##* }"; }
body() { echo "${1% *}"; }
echo_as() { # TOKEN -> status of a forwarded request
    curl -s -o /dev/null -w '%{http_code}' "$GW/api/song-engine/echo" -H "Authorization: Bearer $1"
}

# a registered player logs in: two tokens
check "register" test "$(code "$(post /api/auth/register '{"name":"Refresher","password":"long enough pw"}')")" = 201
r=$(post /api/auth/login '{"name":"refresher","password":"long enough pw"}')
check "login answers 200" test "$(code "$r")" = 200
A1=$(body "$r" | jq -r .access_token)
R1=$(body "$r" | jq -r .refresh_token)
check "... with a refresh token and its lifetime" bash -c "[[ '$R1' =~ ^[0-9a-f]{16}\.[0-9a-f]{32}$ ]] && test \"\$(jq .refresh_expires_in <<<'$(body "$r")')\" -gt 86400"

# rotation
r=$(post /api/auth/refresh "{\"refresh_token\":\"$R1\"}")
check "refresh answers 200" test "$(code "$r")" = 200
A2=$(body "$r" | jq -r .access_token)
R2=$(body "$r" | jq -r .refresh_token)
check "... a new pair for the same player, the same family" bash -c "test '$R2' != '$R1' && test '${R2:0:16}' = '${R1:0:16}' && test \"\$(jq -r .player.name <<<'$(body "$r")')\" = Refresher"
check "the new access token works" test "$(echo_as "$A2")" = 200
r=$(post /api/auth/refresh "{\"refresh_token\":\"$R2\"}")
R3=$(body "$r" | jq -r .refresh_token)
check "and so does the new refresh token" test "$(code "$r")" = 200

# reuse: R1 again
r=$(post /api/auth/refresh "{\"refresh_token\":\"$R1\"}")
check "a spent refresh token is refused (401)" test "$(code "$r")" = 401
check "... saying the session is revoked" bash -c "jq -r .error.message <<<'$(body "$r")' | grep -q 'already used'"
check "the newest refresh token of that family is refused too" test "$(code "$(post /api/auth/refresh "{\"refresh_token\":\"$R3\"}")")" = 401

# guests keep their identity past the access token's life
g=$(post /api/auth/guest)
GA=$(body "$g" | jq -r .access_token)
GR=$(body "$g" | jq -r .refresh_token)
GID=$(body "$g" | jq -r .player.id)
r=$(post /api/auth/refresh "{\"refresh_token\":\"$GR\"}")
check "a guest refreshes and stays the same player" test "$(body "$r" | jq -r '.player.id + " " + (.player.guest|tostring)')" = "$GID true"
GA2=$(body "$r" | jq -r .access_token)
GR2=$(body "$r" | jq -r .refresh_token)

# logout
check "logout without a token is 401" test "$(code "$(post /api/auth/logout)")" = 401
check "logout with the access token and the refresh token" test "$(code "$(post /api/auth/logout "{\"refresh_token\":\"$GR2\"}" "$GA2")")" = 200
check "the logged-out access token is refused on forwarded requests" test "$(echo_as "$GA2")" = 401
# hello TOKEN -> the first answer's type (and error code), through the gateway's /ws
cat >"$FV_TMP/hello.py" <<'PY'
import asyncio, json, sys
import websockets
async def main(url, token):
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "hello", "token": token}))
        m = json.loads(await ws.recv())
        print(m["type"], m.get("code", m.get("player", {}).get("id", "")))
asyncio.run(asyncio.wait_for(main(*sys.argv[1:3]), 10))
PY
hello() { /usr/bin/python3 "$FV_TMP/hello.py" "ws://127.0.0.1:$(port_of api-gateway)/ws" "$1" 2>&1; }
check "the logged-out access token is refused by the WebSocket hello ($(hello "$GA2"))" \
    test "$(hello "$GA2")" = "error unauthenticated"
check "a live token signs in over WebSocket ($(hello "$A2"))" \
    bash -c "test \"\$(/usr/bin/python3 '$FV_TMP/hello.py' 'ws://127.0.0.1:$(port_of api-gateway)/ws' '$A2' | cut -d' ' -f1)\" = welcome"
check "... and by /api/auth/me" test "$(curl -s -o /dev/null -w '%{http_code}' "$GW/api/auth/me" -H "Authorization: Bearer $GA2")" = 401
check "a live token still reads /api/auth/me" test "$(curl -s -o /dev/null -w '%{http_code}' "$GW/api/auth/me" -H "Authorization: Bearer $A2")" = 200
check "... and the session's refresh token" test "$(code "$(post /api/auth/refresh "{\"refresh_token\":\"$GR2\"}")")" = 401
check "another session's token still works" test "$(echo_as "$A2")" = 200
rid_of() { # CURL ARGS -> the answer's X-Request-Id
    curl -s -o /dev/null -D - "$@" | tr -d '\r' | awk 'tolower($1)=="x-request-id:" {print $2}'
}
check "the gateway's own /api/auth answers carry the client's X-Request-Id" test \
    "$(rid_of "$GW/api/auth/me" -H "Authorization: Bearer $A2" -H 'X-Request-Id: auth-id_1')" \
    = auth-id_1
check "... or one of its own, also on a refusal ($(rid_of -X POST "$GW/api/auth/login" -d '{}'))" \
    bash -c '[[ "$1" =~ ^[A-Za-z0-9._-]+-[0-9]+$ ]]' _ \
    "$(rid_of -X POST "$GW/api/auth/login" -d '{}')"

# lockout: 5 failures lock an account, 10 an IP
check "register two more" bash -c "test \"\$(curl -s -o /dev/null -w '%{http_code}' -X POST '$GW/api/auth/register' -d '{\"name\":\"Locky\",\"password\":\"right password\"}')\" = 201 && test \"\$(curl -s -o /dev/null -w '%{http_code}' -X POST '$GW/api/auth/register' -d '{\"name\":\"Other\",\"password\":\"right password\"}')\" = 201"
codes=""
for i in 1 2 3 4 5; do codes+="$(code "$(post /api/auth/login '{"name":"locky","password":"wrong password"}')") "; done
check "five wrong passwords are five 401s ($codes)" test "$codes" = "401 401 401 401 401 "
r=$(curl -s -D "$FV_TMP/lock.h" -w ' %{http_code}' -X POST "$GW/api/auth/login" -d '{"name":"locky","password":"right password"}')
check "then even the right password is 429 for a while" test "$(code "$r")" = 429
check "... with Retry-After (the window, 900 s)" grep -qi '^Retry-After: 900' "$FV_TMP/lock.h"
check "another account from the same address still logs in" test "$(code "$(post /api/auth/login '{"name":"other","password":"right password"}')")" = 200
for i in 1 2 3 4 5; do post /api/auth/login "{\"name\":\"nobody$i\",\"password\":\"wrong password\"}" >/dev/null; done
check "ten failures from one address (unknown names count alike) lock the address" test "$(code "$(post /api/auth/login '{"name":"other","password":"right password"}')")" = 429

# bad input
for b in '' '{' '{"refresh_token":5}' '{"refresh_token":"nope"}' "{\"refresh_token\":\"$(printf 'z%.0s' $(seq 49))\"}"; do
    check "refresh with body '${b:0:24}' is 400" test "$(code "$(post /api/auth/refresh "$b")")" = 400
done
check "a well-formed unknown refresh token is 401" test "$(code "$(post /api/auth/refresh '{"refresh_token":"0123456789abcdef.0123456789abcdef0123456789abcdef"}')")" = 401
finish
