#!/usr/bin/env bash
# test_registry_kill.sh - the registry under deny with a token, in its own process beside a
# module in another: a forged deregistration (no token, a wrong token) is refused and the
# module stays routable; kill -9 right after registrations were answered, then a restart: the
# catalog file loads (never moved aside), and the module, lost or not, is back within a few
# heartbeats (the documented rule: a client learns of a lost registration at its next heartbeat
# and registers again).
source "$(dirname "$0")/lib.sh"

pick_port_base
TOKEN=kill-test-token-0001
export FINALVERSE_REGISTRY__TOKEN=$TOKEN
export FINALVERSE_REGISTRY__ACL_DEFAULT_POLICY=deny
export FINALVERSE_REGISTRY__HEARTBEAT_INTERVAL_MS=200
export FINALVERSE_REGISTRY__TTL_MS=3000
export FINALVERSE_REGISTRY__RETRY_MAX_MS=300
REG=http://127.0.0.1:$(port_of service-registry)
AUTH=(-H "X-Consul-Token: $TOKEN")

FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/reg" start_fv registry serve service-registry \
    --port-base "$PORT_BASE"
REG_PID=$FV_LAST_PID
FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/song" start_fv song serve song-engine \
    --port-base "$PORT_BASE"
registered() {
    [ "$(curl -s --max-time 5 "${AUTH[@]}" "$REG/v1/health/service/song-engine?passing" |
        jq length)" = 1 ]
}
check "song-engine registers with its token" wait_for 10 registered
ID=$(curl -s "${AUTH[@]}" "$REG/v1/health/service/song-engine" | jq -r '.[0].Service.ID')

check "reads without a token are refused under deny" \
    test "$(http_status "$REG/v1/health/service/song-engine")" = 403
check "a forged deregistration without a token -> 403" \
    test "$(http_status "$REG/v1/agent/service/deregister/$ID" -X PUT)" = 403
check "... with a token nobody issued -> 403" \
    test "$(http_status "$REG/v1/agent/service/deregister/$ID" -X PUT -H 'X-Consul-Token: guessed-token-1')" = 403
check "a forged takeover without a token -> 403" \
    test "$(http_status "$REG/v1/agent/service/register" -X PUT \
        -d "{\"Name\":\"song-engine\",\"ID\":\"$ID\",\"Address\":\"10.6.6.6\",\"Port\":80}")" = 403
check "song-engine is still registered, at its own address" bash -c \
    "curl -s -H 'X-Consul-Token: $TOKEN' '$REG/v1/health/service/song-engine' | jq -e '.[0].Service.Address != \"10.6.6.6\"'"
check "an address with CR LF -> 400" \
    test "$(http_status "$REG/v1/agent/service/register" -X PUT "${AUTH[@]}" \
        -d '{"Name":"x","Address":"a\r\nb","Port":1}')" = 400

# Registrations answered 200, then kill -9 before the debounced save may have run.
for i in $(seq 1 40); do
    curl -s -o /dev/null -X PUT "${AUTH[@]}" "$REG/v1/agent/service/register" \
        -d "{\"Name\":\"extra\",\"ID\":\"extra-$i\",\"Port\":$((1000 + i))}"
done
kill -9 "$REG_PID"
wait "$REG_PID" 2>/dev/null || true
FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/reg" start_fv registry2 serve service-registry \
    --port-base "$PORT_BASE"
check "the restarted registry answers" wait_eq 10 200 http_status "$REG/v1/status/leader"
check "the catalog file was not moved aside" test ! -e "$FV_TMP/reg/registry/catalog.json.corrupt"
check "song-engine is back within a few heartbeats" wait_for 10 registered
extra=$(curl -s "${AUTH[@]}" "$REG/v1/catalog/service/extra" | jq length)
check "at most what was answered was restored ($extra of 40)" test "$extra" -le 40
finish
