#!/usr/bin/env bash
# test_gateway_browser.sh - the API gateway's promise to the web, end to end with real clients:
# under `finalverse up`, a page served from another origin (python's http.server on its own
# port) runs in headless Chromium and, with fetch and WebSocket only, registers a new player,
# logs in, reads /api/auth/me and calls every module through :8080 (each call preflighted),
# rotates its refresh token, opens ws://<gateway>/ws with its access token (welcome as itself,
# subscribe acked), and logs out (its refresh and access tokens refused from then on). Node's
# own client then checks what no page may do: reuse a spent refresh token (the family is
# revoked), pass a preflight from an origin not listed, or open /ws from one.
source "$(dirname "$0")/lib.sh"
SUPPORT=${FV_SRC:?}/tests/support
WS=${FV_SRC}/tests/integration/ws

pick_port_base
GW=http://127.0.0.1:$(port_of api-gateway)
# above the modules' ports, inside this run's block of 20 (pick_port_base steps by 20)
PAGE_PORT=$((PORT_BASE + 18))
PAGE=http://127.0.0.1:$PAGE_PORT
if port_in_use "$PAGE_PORT"; then fail "the page's port $PAGE_PORT is taken"; finish; fi

export FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/data"
# exactly the page's origin, so that the refusals below are about the origin and nothing else
export FINALVERSE_GATEWAY__CORS_ORIGINS=$PAGE
export FINALVERSE_WEBSOCKET__ALLOWED_ORIGINS=$PAGE
export FINALVERSE_GATEWAY__AUTH_RATE_LIMIT_BURST=1000
start_fv up up --port-base "$PORT_BASE"
wait_eq 20 200 http_status "$GW/health" || { fail "gateway did not come up"; finish; }

mkdir -p "$FV_TMP/page"
cat >"$FV_TMP/page/index.html" <<'HTML'
<!doctype html>
<meta charset="utf-8">
<title>Finalverse from another origin</title>
<link rel="icon" href="data:,">
<p>A page that is not served by the gateway.</p>
HTML
/usr/bin/python3 -m http.server "$PAGE_PORT" --bind 127.0.0.1 --directory "$FV_TMP/page" \
    >"$FV_TMP/page.log" 2>&1 &
FV_PIDS+=($!)
check "the page is served on its own origin ($PAGE)" \
    wait_eq 10 200 http_status "$PAGE/index.html"

# The gateway learns instances from the registry as they register; the page must not race it.
all_routed() {
    curl -s --max-time 5 "$GW/gateway/routes" | jq -e '[.routes[] |
        select(.service == "websocket-gateway" or .service == "world-engine") |
        (.instances | length > 0)] | length >= 2 and all' >/dev/null &&
        [ "$(http_status "$GW/api/world-engine/regions")" = 200 ]
}
check "the gateway routes to the world engine and the websocket-gateway" wait_for 20 all_routed

export NODE_PATH="$SUPPORT/node_modules"
run_node() { # MODE -> prints the summary; the node script bounds itself at 30 s
    timeout 40 node "$WS/gateway_page.js" "$1" "$GW" "$PAGE/index.html" 2>"$FV_TMP/node-$1.log"
}

# ---- in the browser ----
if [ -x /usr/bin/chromium ] || [ -n "${CHROMIUM:-}" ]; then
    B=$(run_node browser) || { fail "browser: $(tail -3 "$FV_TMP/node-browser.log")"; B='{}'; }
else
    fail "chromium is not installed (scripts/deps.sh test installs it)"
    B='{}'
fi
echo "browser: $B"
bq() { jq -e "$@" <<<"$B" >/dev/null; }
check "the page ran on its own origin" bq --arg o "$PAGE" '.origin == $o and .page_status == 200'
check "the page ran every step (stopped at: $(jq -r '.error // "-"' <<<"$B"))" \
    bq '.at == "done" and (has("error") | not)'
check "register from the page: 201 with the new player" \
    bq '.register.status == 201 and (.register.id | test("^[0-9a-f]{32}$"))'
check "login from the page: 200, Bearer, an access and a refresh token, the same player" \
    bq '.login.status == 200 and .login.token_type == "Bearer" and .login.expires_in > 0 and
        .login.has_access and .login.has_refresh and .login.id == .register.id'
check "/api/auth/me with the token: the same player, not a guest" \
    bq '.me.status == 200 and .me.id == .register.id and .me.name == .register.name and
        .me.guest == false'
check "world-engine through the gateway: the 9 regions" \
    bq '.regions.status == 200 and (.regions.ids | length == 9) and
        (.regions.ids | any(. == "terra-nova"))'
check "... and the page may read X-Request-Id and RateLimit-Remaining (exposed)" \
    bq '(.regions.request_id | length > 0) and (.regions.rate_remaining | length > 0)'
check "every module answers /health through the gateway to the page (failing: $(jq -c \
    '[.health // {} | to_entries[] | select(.key != .value) | .key]' <<<"$B"))" \
    bq '(.health | length == 14) and (.health | to_entries | all(.key == .value))'
check "refresh from the page: a new pair for the same player" \
    bq '.refresh.status == 200 and .refresh.id == .register.id and .refresh.new_access and
        .refresh.new_refresh'
check "... the new access token reads /api/auth/me" \
    bq '.me_after_refresh.status == 200 and .me_after_refresh.id == .register.id'
check "ws://gateway/ws hello with the access token: welcome as the logged-in player" \
    bq '.welcome.type == "welcome" and .welcome.id == .login.id and
        .welcome.name == .register.name and .welcome.guest == false'
check "... subscribed to its own channel" \
    bq '.welcome.id as $id | .welcome.subscriptions | any(. == "player:" + $id)'
check "subscribe to a region and to its own player channel: ack" \
    bq '.ack == {"type": "ack", "id": 1}'
check "another player's channel: permission_denied" \
    bq '.other_player.type == "error" and .other_player.code == "permission_denied"'
check "ping: pong; the page closes the socket (1000)" bq '.pong == "pong" and .ws_closed == 1000'
check "logout from the page: 200" bq '.logout.status == 200 and .logout.logged_out == true'
check "the logged-out refresh token is refused (401)" \
    bq '.refresh_after_logout.status == 401'
check "the logged-out access token is refused by /api/auth/me (401)" bq '.me_after_logout == 401'
check "... and by the WebSocket hello (unauthenticated, close 1008)" \
    bq '.hello_after_logout.type == "error" and .hello_after_logout.code == "unauthenticated" and
        .hello_after_logout.close == 1008'

# Every call above carried a header a browser must preflight across origins: none counted would
# mean the page was not cross-origin after all, and the checks above proved nothing about CORS.
curl -s --max-time 5 "$GW/metrics" >"$FV_TMP/metrics.txt"
preflights=$(awk '/^finalverse_http_requests_total\{module="api-gateway",/ &&
    /method="OPTIONS",code="204"\}/ {n += $2} END {print n + 0}' "$FV_TMP/metrics.txt")
refused=$(awk '/^finalverse_gateway_cors_refused_total\{/ {print $2}' "$FV_TMP/metrics.txt")
check "the gateway answered the page's preflights ($preflights) and refused none ($refused)" \
    test "$preflights" -gt 0 -a "$refused" = 0

# ---- from node, no browser ----
N=$(run_node direct) || { fail "node: $(tail -3 "$FV_TMP/node-direct.log")"; N='{}'; }
echo "node: $N"
nq() { jq -e "$@" <<<"$N" >/dev/null; }
check "node ran every step (stopped at: $(jq -r '.error // "-"' <<<"$N"))" \
    nq '.at == "done" and (has("error") | not)'
check "node: register 201, login 200, /me 200 as the same player" \
    nq '.register == 201 and .login.status == 200 and .me.status == 200 and
        .me.id == .login.id'
check "node: two refreshes in a row, each with the newest token: 200, 200" \
    nq '.refresh == [200, 200]'
check "node: the first, already rotated, refresh token again: 401 already used" \
    nq '.reuse.status == 401 and (.reuse.message | test("already used"))'
check "node: ... which revoked the family: the newest refresh token is refused (401)" \
    nq '.newest_after_reuse == 401'
check "a preflight from the page's origin: 204 echoing it" \
    nq --arg o "$PAGE" '.preflight_page.status == 204 and .preflight_page.allow_origin == $o'
check "a preflight from http://evil.example: 403 permission_denied, no Access-Control-Allow-*" \
    nq '.preflight_evil.status == 403 and .preflight_evil.code == "permission_denied" and
        .preflight_evil.allow_headers == []'
check "an actual request from http://evil.example: served without Allow-Origin, Vary: Origin" \
    nq '.actual_evil.status == 200 and .actual_evil.allow_origin == null and
        (.actual_evil.vary | test("origin"; "i"))'
check "the /ws upgrade through the gateway with the page's Origin: 101" \
    nq '.ws_upgrade_page == 101'
check "... with Origin http://evil.example: 403 ($(jq -r .ws_upgrade_evil <<<"$N"))" \
    nq '.ws_upgrade_evil == 403'
finish
