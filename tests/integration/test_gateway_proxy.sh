#!/usr/bin/env bash
# test_gateway_proxy.sh - the api-gateway's forwarding: headers both ways (X-Forwarded-*,
# X-Request-Id, hop-by-hop and Connection-named ones dropped), path normalisation, the failure
# answers (503 no instance, 502 refused, 504 timeout), failover between two instances of one
# service when one is killed, and the /gateway/routes table.
source "$(dirname "$0")/lib.sh"

pick_port_base
export FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/data"
# long enough for a Python upstream on a busy machine to answer 64 requests at once
export FINALVERSE_GATEWAY__UPSTREAM_TIMEOUT_MS=4000
export FINALVERSE_GATEWAY__ACCESS_LOG=true
# thousands of requests from one address: forwarding is under test here, not the limits
# (test_gateway_limits.sh)
export FINALVERSE_GATEWAY__RATE_LIMIT_PER_MINUTE=0
export FINALVERSE_GATEWAY__ROUTES="/things=world-engine,strip,timeout_ms=800;/whole=world-engine"
GW=http://127.0.0.1:$(port_of api-gateway)
REG=http://127.0.0.1:$(port_of service-registry)
UP_A=$((PORT_BASE + 15))
UP_B=$((PORT_BASE + 16))
DEAD=$((PORT_BASE + 17))
UPSTREAM="$(dirname "$0")/../support/gw_upstream.py"

start_up() { # PORT NAME
    /usr/bin/python3 "$UPSTREAM" "$1" "$2" 2>>"$FV_TMP/upstream-$2.log" &
    FV_PIDS+=($!)
    UP_PID=$!
    wait_for 10 curl -sf --max-time 1 "http://127.0.0.1:$1/echo"
}
register() { # ID NAME PORT
    curl -sf --max-time 5 -X PUT "$REG/v1/agent/service/register" \
        -d "{\"Name\":\"$2\",\"ID\":\"$1\",\"Address\":\"127.0.0.1\",\"Port\":$3}" \
        -H "X-Consul-Token: $(cat "$FV_TMP/data/registry/token")"
}

start_fv gw serve service-registry api-gateway --port-base "$PORT_BASE"
wait_eq 10 200 http_status "$GW/health" || { fail "gateway did not come up"; finish; }
start_up "$UP_A" a
A_PID=$UP_PID
start_up "$UP_B" b
B_PID=$UP_PID
check "upstream a registered" register song-a song-engine "$UP_A"
check "world upstream registered" register world-b world-engine "$UP_B"

# ---- headers and paths ----
check "the watched list reaches the gateway" wait_eq 10 200 http_status "$GW/api/song-engine/echo"
curl -s --max-time 5 "$GW/api/song-engine/echo?x=1" -H 'X-Forwarded-For: 203.0.113.9' \
    -H 'X-Request-Id: client-id_1.2' -H 'Connection: keep-alive, X-Secret' -H 'X-Secret: s' \
    -H 'X-Forwarded-Proto: https' -H 'X-Other: o' -D "$FV_TMP/h1" >"$FV_TMP/b1"
hdr() { jq -r --arg k "$1" '[.headers[] | select(.[0] | ascii_downcase == ($k | ascii_downcase)) | .[1]] | join("|")' "$FV_TMP/b1"; }
check "path and query forwarded below the prefix" test "$(jq -r .path "$FV_TMP/b1")" = "/echo?x=1"
check "X-Forwarded-For appends the peer" test "$(hdr X-Forwarded-For)" = "203.0.113.9, 127.0.0.1"
check "X-Forwarded-Proto is the gateway's" test "$(hdr X-Forwarded-Proto)" = "http"
check "X-Forwarded-Host is the client's Host" test "$(hdr X-Forwarded-Host)" = "127.0.0.1:$(port_of api-gateway)"
check "a safe X-Request-Id is kept" test "$(hdr X-Request-Id)" = "client-id_1.2"
check "the request id comes back" grep -qi '^X-Request-Id: client-id_1.2' "$FV_TMP/h1"
check "a header named in Connection is not forwarded" test "$(hdr X-Secret)" = ""
check "other headers are forwarded" test "$(hdr X-Other)" = "o"
check "an answer's Connection-named header is dropped" bash -c "! grep -qi '^X-Hop:' '$FV_TMP/h1'"
check "other answer headers come through" grep -qi '^X-Kept: yes' "$FV_TMP/h1"
curl -s --max-time 5 "$GW/api/song-engine/echo" -H 'X-Request-Id: bad id{}' -D "$FV_TMP/h2" >"$FV_TMP/b1"
check "an unsafe X-Request-Id is replaced" bash -c "test -n \"\$(jq -r '.headers[]|select(.[0]==\"X-Request-Id\")|.[1]' '$FV_TMP/b1' | grep -v 'bad')\""
check "access log line with the request id" wait_for 5 grep -q "GET /api/song-engine/echo -> song-engine 127.0.0.1:$UP_A/echo 200" "$FV_TMP/gw.log"
path_of() { curl -s --max-time 5 --path-as-is "$GW$1" | jq -r .path; }
check "/./ and // collapse" test "$(path_of '/api/song-engine/a/.//echo')" = "/a/echo"
check "/x/../ goes back" test "$(path_of '/api/song-engine/a/../echo')" = "/echo"
check "%2e%2e counts as .." test "$(path_of '/api/song-engine/a/%2e%2E/echo')" = "/echo"
check "a path leaving the module is 400" test "$(http_status "$GW/api/song-engine/../world-engine/echo" --path-as-is)" = 400
check "an encoded one too" test "$(http_status "$GW/api/song-engine/a/%2e%2e/%2E./echo" --path-as-is)" = 400
check "an encoded slash is refused" test "$(http_status "$GW/api/song-engine/a/..%2f..%2fx" --path-as-is)" = 400
check "the 400 says why" bash -c "curl -s --path-as-is '$GW/api/song-engine/%2e%2e/x' | jq -e '.error.code == \"invalid_argument\"' >/dev/null"

# ---- many at once: pipelined on shared upstream connections, each answer to its own request ----
cat >"$FV_TMP/many.py" <<'PY'
import concurrent.futures, json, sys, urllib.error, urllib.request
base = sys.argv[1]
def one(i):
    try:
        with urllib.request.urlopen(f"{base}/api/song-engine/echo?n={i}", timeout=10) as r:
            return json.load(r)["path"] == f"/echo?n={i}"
    except urllib.error.HTTPError as e:  # said, so that a failure tells why
        print(f"request {i}: {e.code} {e.read()[:200]!r}", file=sys.stderr)
        return False
with concurrent.futures.ThreadPoolExecutor(64) as ex:
    ok = sum(ex.map(one, range(2000)))
print(ok)
PY
check "2,000 requests from 64 threads each get their own answer" test "$(/usr/bin/python3 "$FV_TMP/many.py" "$GW")" = 2000

# ---- configured routes ----
check "a configured route strips its prefix" test "$(path_of '/things/echo')" = "/echo"
check "a configured route keeps it without strip" test "$(path_of '/whole/echo')" = "/whole/echo"
check "a route's own timeout gives 504" test "$(http_status "$GW/things/slow/1200")" = 504

# ---- failures ----
body=$(curl -s --max-time 5 "$GW/api/story-engine/x")
check "no instance: 503 naming the service" bash -c "echo '$body' | jq -e '.error.code == \"backend_unavailable\" and (.error.message | test(\"story-engine\"))' >/dev/null"
check "timeout: 504" test "$(http_status "$GW/api/song-engine/slow/5000" --max-time 8)" = 504
register echo-dead echo-engine "$DEAD" >/dev/null
wait_for 5 bash -c "curl -s '$GW/gateway/routes' | jq -e '.routes[] | select(.service==\"echo-engine\") | .instances | length == 1' >/dev/null"
body=$(curl -s --max-time 5 "$GW/api/echo-engine/x")
check "refused: 502 without an address" bash -c "echo '$body' | jq -e '.error.code == \"connection_refused\"' >/dev/null && ! echo '$body' | grep -q '$DEAD'"

# ---- failover ----
check "upstream b registered for song-engine" register song-b song-engine "$UP_B"
wait_for 5 bash -c "curl -s '$GW/gateway/routes' | jq -e '.routes[] | select(.prefix==\"/api/song-engine\") | .instances | length == 2' >/dev/null"
names=$(for i in $(seq 8); do curl -s --max-time 5 "$GW/api/song-engine/echo" | jq -r .name; done | sort -u | tr '\n' ' ')
check "both instances get requests" test "$names" = "a b "
kill -KILL "$A_PID"
codes=$(for i in $(seq 20); do http_status "$GW/api/song-engine/echo"; echo; done | sort -u | tr '\n' ' ')
check "with one instance killed every GET still answers 200 ($codes)" test "$codes" = "200 "
check "2,000 concurrent requests with one instance dead all get their own answer" test "$(/usr/bin/python3 "$FV_TMP/many.py" "$GW")" = 2000
check "the dead instance is being skipped" bash -c "curl -s '$GW/gateway/routes' | jq -e '.routes[] | select(.prefix==\"/api/song-engine\") | .instances[] | select(.port==$UP_A) | .failures >= 1' >/dev/null"
curl -s --max-time 5 "$GW/metrics" >"$FV_TMP/metrics.txt"
check "/metrics counts requests per route" grep -Eq '^finalverse_gateway_route_requests_total\{module="api-gateway",route="/api/song-engine",service="song-engine"\} [1-9]' "$FV_TMP/metrics.txt"
check "/metrics counts errors per instance" grep -Eq "^finalverse_gateway_upstream_errors_total\{module=\"api-gateway\",service=\"song-engine\",instance=\"127.0.0.1:$UP_A\"\} [1-9]" "$FV_TMP/metrics.txt"
if command -v promtool >/dev/null; then
    check "promtool accepts /metrics with no lint" bash -c "promtool check metrics <'$FV_TMP/metrics.txt'"
fi
post=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data x "$GW/api/song-engine/count")
check "a POST is answered (200 from b, or 502: never retried elsewhere)" bash -c "[ $post = 200 ] || [ $post = 502 ]"
finish
