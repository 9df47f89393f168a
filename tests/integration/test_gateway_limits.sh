#!/usr/bin/env bash
# test_gateway_limits.sh - the API gateway's door policy, through the real binary: CORS
# preflights allowed and refused (origin, method, header) and the headers of actual answers;
# access tokens on forwarded requests (the player passed on in X-Finalverse-Player, a client's
# own X-Finalverse-Player dropped; wrong, tampered, expired and alg:none tokens refused; an
# authenticated route refused without one); rate limits per player and on sign-ins per IP, with
# the RateLimit-* headers, 429 with Retry-After and recovery; then two gateway processes on one
# real Redis sharing one limit.
source "$(dirname "$0")/lib.sh"
SUPPORT=${FV_SRC:?}/tests/support
SERVERS=$FV_TMP/servers
mkdir -p "$SERVERS"
trap 'bash "$SUPPORT/server_redis.sh" stop "$SERVERS" >/dev/null 2>&1 || true; cleanup' EXIT

pick_port_base
BASE_A=$PORT_BASE
export FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/data"
export FINALVERSE_GATEWAY__CORS_ORIGINS="https://play.example, https://tools.example"
# one every five seconds: slow enough that no refill lands inside a burst on a loaded machine
export FINALVERSE_GATEWAY__RATE_LIMIT_PER_MINUTE=12
export FINALVERSE_GATEWAY__RATE_LIMIT_BURST=20
export FINALVERSE_GATEWAY__AUTH_RATE_LIMIT_PER_MINUTE=6     # one in ten seconds
export FINALVERSE_GATEWAY__AUTH_RATE_LIMIT_BURST=4
export FINALVERSE_GATEWAY__ROUTES="/secure=song-engine,strip,authenticated"
GW=http://127.0.0.1:$(port_of api-gateway)
REG=http://127.0.0.1:$(port_of service-registry)
UP=$((PORT_BASE + 15))

start_fv gw serve service-registry api-gateway --port-base "$PORT_BASE"
wait_eq 10 200 http_status "$GW/health" || { fail "gateway did not come up"; finish; }
start_upstream() {
    /usr/bin/python3 "$SUPPORT/gw_upstream.py" "$UP" up 2>>"$FV_TMP/upstream.log" &
    FV_PIDS+=($!)
    wait_for 10 curl -sf --max-time 1 "http://127.0.0.1:$UP/echo" || true
}
start_upstream
TOKEN_FILE=$FV_TMP/data/registry/token
check "the upstream is registered as song-engine" curl -sf --max-time 5 -X PUT \
    "$REG/v1/agent/service/register" -H "X-Consul-Token: $(cat "$TOKEN_FILE")" \
    -d "{\"Name\":\"song-engine\",\"ID\":\"song-up\",\"Address\":\"127.0.0.1\",\"Port\":$UP}"
wait_eq 10 200 http_status "$GW/api/song-engine/echo" >/dev/null || true

hdr() { # FILE NAME: the answer header's value
    grep -i "^$2:" "$1" | head -1 | cut -d' ' -f2- | tr -d '\r'
}
export -f hdr
upstream_saw() { # BODY_FILE NAME: what the upstream received of a header
    jq -r --arg k "$2" '[.headers[] | select(.[0] | ascii_downcase == ($k | ascii_downcase)) | .[1]] | join("|")' "$1"
}

# ---- CORS ----
pre() { # ORIGIN METHOD HEADERS: a preflight's status, headers in $FV_TMP/pre
    curl -s -o "$FV_TMP/pre.body" -D "$FV_TMP/pre" -w '%{http_code}' -X OPTIONS \
        "$GW/api/song-engine/echo" -H "Origin: $1" -H "Access-Control-Request-Method: $2" \
        ${3:+-H "Access-Control-Request-Headers: $3"}
}
check "a preflight from an allowed origin is 204" test "$(pre https://play.example POST 'content-type, authorization')" = 204
check "... echoing the origin" test "$(hdr "$FV_TMP/pre" Access-Control-Allow-Origin)" = "https://play.example"
check "... with the methods, headers and max-age" bash -c "grep -qi '^Access-Control-Allow-Methods:.*POST' '$FV_TMP/pre' && grep -qi '^Access-Control-Allow-Headers:.*Authorization' '$FV_TMP/pre' && grep -qi '^Access-Control-Max-Age: 600' '$FV_TMP/pre'"
check "... and Vary: Origin" grep -qi '^Vary: Origin' "$FV_TMP/pre"
check "a preflight from another origin is 403" test "$(pre https://evil.example GET)" = 403
check "... without Access-Control-Allow-Origin" bash -c "! grep -qi '^Access-Control-Allow-Origin' '$FV_TMP/pre'"
check "... with a JSON error" test "$(jq -r .error.code "$FV_TMP/pre.body")" = permission_denied
check "a preflight for a method not allowed is 403" test "$(pre https://play.example TRACE)" = 403
check "a preflight for a header not allowed is 403" test "$(pre https://tools.example GET 'x-evil')" = 403
check "a preflight to the auth routes is answered too" test "$(curl -s -o /dev/null -w '%{http_code}' -X OPTIONS "$GW/api/auth/login" -H 'Origin: https://play.example' -H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: content-type')" = 204
curl -s -o /dev/null -D "$FV_TMP/act" "$GW/api/song-engine/echo" -H 'Origin: https://tools.example'
check "an actual request from an allowed origin gets Allow-Origin" test "$(hdr "$FV_TMP/act" Access-Control-Allow-Origin)" = "https://tools.example"
check "... and the headers a page may read" bash -c "grep -qi '^Access-Control-Expose-Headers:.*RateLimit-Remaining' '$FV_TMP/act'"
curl -s -o /dev/null -D "$FV_TMP/act2" "$GW/api/song-engine/echo" -H 'Origin: https://evil.example'
check "one from another origin is served without it (the browser withholds it), Vary still set" bash -c "! grep -qi '^Access-Control-Allow-Origin' '$FV_TMP/act2' && grep -qi '^Vary: Origin' '$FV_TMP/act2'"

# ---- tokens ----
guest() { curl -s -X POST "$GW/api/auth/guest"; }
G=$(guest)
TOKEN=$(jq -r .access_token <<<"$G")
PLAYER=$(jq -r .player.id <<<"$G")
check "a guest token to work with" test -n "$PLAYER" -a "$PLAYER" != null
curl -s -o "$FV_TMP/tok.body" "$GW/api/song-engine/echo" -H "Authorization: Bearer $TOKEN" \
    -H 'X-Finalverse-Player: someone-else'
check "the service sees the token's player in X-Finalverse-Player, only that" test "$(upstream_saw "$FV_TMP/tok.body" X-Finalverse-Player)" = "$PLAYER"
curl -s -o "$FV_TMP/notok.body" "$GW/api/song-engine/echo" -H 'X-Finalverse-Player: someone-else'
check "a client's own X-Finalverse-Player never reaches the service" test "$(upstream_saw "$FV_TMP/notok.body" X-Finalverse-Player)" = ""
# tokens made here with the shipped development secret: tampered, expired, alg none
read -r TAMPERED EXPIRED NONE < <(/usr/bin/python3 - "$TOKEN" <<'EOF'
import base64, hashlib, hmac, json, sys, time
tok = sys.argv[1]
secret = b"change-me-development-only-finalverse-jwt-secret"
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def unb64(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
h, p, s = tok.split(".")
claims = json.loads(unb64(p))
tampered = h + "." + b64(json.dumps(dict(claims, sub="admin")).encode()) + "." + s
ec = dict(claims, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)
eh = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()); ep = b64(json.dumps(ec).encode())
expired = eh + "." + ep + "." + b64(hmac.new(secret, (eh + "." + ep).encode(), hashlib.sha256).digest())
nh = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
none = nh + "." + p + "."
print(tampered, expired, none)
EOF
)
for t in "not-a-token" "$TAMPERED" "$EXPIRED" "$NONE"; do
    code=$(curl -s -o "$FV_TMP/bad.body" -D "$FV_TMP/bad" -w '%{http_code}' "$GW/api/song-engine/echo" -H "Authorization: Bearer $t")
    check "a bad token (${t:0:12}...) is 401 unauthenticated, with WWW-Authenticate" bash -c "test '$code' = 401 && test \"\$(jq -r .error.code '$FV_TMP/bad.body')\" = unauthenticated && grep -qi '^WWW-Authenticate: Bearer' '$FV_TMP/bad'"
done
check "an authenticated route without a token is 401" test "$(http_status "$GW/secure/echo")" = 401
check "... and 200 with one" test "$(curl -s -o /dev/null -w '%{http_code}' "$GW/secure/echo" -H "Authorization: Bearer $TOKEN")" = 200

# ---- rate limits: a fresh player's bucket of 20, one every five seconds ----
T2=$(guest | jq -r .access_token)
# one curl for all 21, on one connection
urls=(); for i in $(seq 21); do urls+=(-o /dev/null "$GW/api/song-engine/echo"); done
codes=$(curl -s -D "$FV_TMP/rl.heads" -w '%{http_code} ' -H "Authorization: Bearer $T2" "${urls[@]}")
want="$(for i in $(seq 20); do printf '200 '; done)429 "
check "a burst of 20 passes and the 21st is 429 ($codes)" test "$codes" = "$want"
remaining=$(grep -i '^RateLimit-Remaining:' "$FV_TMP/rl.heads" | tr -d '\r' | cut -d' ' -f2 | tr '\n' ' ')
check "RateLimit-Limit is the burst, -Remaining counts down to 0 ($remaining)" bash -c "test \"\$(hdr '$FV_TMP/rl.heads' RateLimit-Limit)\" = 20 && [[ '$remaining' == '19 18 17 '*' 1 0 0 ' ]]"
check "the 429 says when to come back (Retry-After)" bash -c "test \"\$(hdr '$FV_TMP/rl.heads' Retry-After)\" -ge 1"
curl -s -o "$FV_TMP/rl.body" "$GW/api/song-engine/echo" -H "Authorization: Bearer $T2"
check "... in the JSON error shape" test "$(jq -r .error.code "$FV_TMP/rl.body")" = rate_limited
check "another player is not held back by that one" test "$(curl -s -o /dev/null -w '%{http_code}' "$GW/api/song-engine/echo" -H "Authorization: Bearer $TOKEN")" = 200
check "five seconds later the player is let through again" bash -c "sleep 5.5; test \"\$(curl -s -o /dev/null -w '%{http_code}' '$GW/api/song-engine/echo' -H 'Authorization: Bearer $T2')\" = 200"
# sign-ins per IP: 2 guests made above, a burst of 4, one more every ten seconds
codes=""
for i in 1 2 3 4; do codes+="$(curl -s -o /dev/null -w '%{http_code}' -X POST "$GW/api/auth/guest") "; done
check "sign-ins from one IP are limited too ($codes)" bash -c "[[ '$codes' == *429* ]]"
check "the gateway counts its 429s" bash -c "curl -s '$GW/metrics' | grep -q '^finalverse_gateway_rate_limited_total{module=\"api-gateway\"} [1-9]'"
stop_all() {
    kill -TERM "${FV_PIDS[@]}" 2>/dev/null || true
    wait "${FV_PIDS[@]}" 2>/dev/null || true
    FV_PIDS=()
}
stop_all

# ---- two gateways, one Redis, one limit ----
if ! bash "$SUPPORT/server_redis.sh" start "$SERVERS" >"$FV_TMP/redis.log" 2>&1; then
    fail "cannot start redis-server: $(tail -3 "$FV_TMP/redis.log")"
    finish
fi
export FINALVERSE_REDIS__URL=$(cat "$SERVERS/redis.url")
export FINALVERSE_GATEWAY__RATE_LIMIT_BURST=4
start_upstream
start_fv gwa serve service-registry api-gateway --port-base "$BASE_A"
wait_eq 10 200 http_status "$GW/health" || { fail "gateway A did not come up"; finish; }
pick_port_base
while [ "$PORT_BASE" = "$BASE_A" ]; do pick_port_base; done
GWB=http://127.0.0.1:$(port_of api-gateway)
FINALVERSE_REGISTRY__URL=$REG FINALVERSE_REGISTRY__TOKEN=$(cat "$TOKEN_FILE") \
    FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/data-b" start_fv gwb serve api-gateway --port-base "$PORT_BASE"
wait_eq 10 200 http_status "$GWB/health" || { fail "gateway B did not come up"; finish; }
check "the upstream is registered again" curl -sf --max-time 5 -X PUT \
    "$REG/v1/agent/service/register" -H "X-Consul-Token: $(cat "$TOKEN_FILE")" \
    -d "{\"Name\":\"song-engine\",\"ID\":\"song-up\",\"Address\":\"127.0.0.1\",\"Port\":$UP}"
wait_eq 10 200 http_status "$GWB/api/song-engine/echo" >/dev/null || true
# a fresh player (its token from A, checked by B with the same secret): 4 requests shared
T3=$(curl -s -X POST "$GW/api/auth/guest" | jq -r .access_token)
codes=""
for g in "$GW" "$GWB" "$GW" "$GWB" "$GW" "$GWB"; do
    codes+="$(curl -s -o /dev/null -w '%{http_code}' "$g/api/song-engine/echo" -H "Authorization: Bearer $T3") "
done
check "two gateways on one Redis share one bucket: 4 pass in all ($codes)" test "$codes" = "200 200 200 200 429 429 "
stop_all
finish
