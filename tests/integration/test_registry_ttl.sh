#!/usr/bin/env bash
# test_registry_ttl.sh - services spread over processes: a registry in one process, a module in
# another. Killing the module's process stops its heartbeats, so it turns critical after the TTL
# (gone from ?passing) and is removed after the deregister window. A service registered by hand
# with a Consul-style body behaves the same. The registry keeps its catalog across a restart.
source "$(dirname "$0")/lib.sh"

pick_port_base
export FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/data"
export FINALVERSE_REGISTRY__TTL_MS=1000
export FINALVERSE_REGISTRY__HEARTBEAT_INTERVAL_MS=300
export FINALVERSE_REGISTRY__DEREGISTER_AFTER_MS=2000
REG=http://127.0.0.1:$(port_of service-registry)

start_fv registry serve service-registry --port-base "$PORT_BASE"
check "the registry answers" wait_eq 10 200 http_status "$REG/health"

start_fv song serve song-engine --port-base "$PORT_BASE"
SONG_PID=$FV_LAST_PID
passing_count() { curl -s --max-time 5 "$REG/v1/health/service/$1?passing" | jq length; }
check "song-engine registers from its own process" wait_eq 10 1 passing_count song-engine
check "song-engine's /health reports its registration" \
    wait_for 5 bash -c "curl -s http://127.0.0.1:$(port_of song-engine)/health | jq -e '.checks[] | select(.name==\"registry\") | .status == \"pass\"'"

body=$(curl -s --max-time 5 "$REG/v1/catalog/service/song-engine")
check "catalog entry has Consul fields" \
    jq -e --argjson p "$(port_of song-engine)" '.[0].ServiceName == "song-engine" and .[0].ServicePort == $p and (.[0].ServiceID|length>0)' <<<"$body" >/dev/null

kill -KILL "$SONG_PID"
check "after the TTL the killed module is no longer passing" wait_eq 5 0 passing_count song-engine
gone() { [ "$(curl -s --max-time 5 "$REG/v1/catalog/services" | jq 'has("song-engine")')" = false ]; }
check "after the deregister window it is gone from the catalog" wait_for 8 gone

# A hand-registered service with a TTL check, in Consul's shape.
code=$(http_status "$REG/v1/agent/service/register" -X PUT -H 'Content-Type: application/json' \
    -d '{"Name":"probe","ID":"probe-1","Address":"127.0.0.1","Port":9,"Tags":["t"],"Check":{"TTL":"1s","DeregisterCriticalServiceAfter":"2s"}}')
check "register by hand answers 200 (got $code)" test "$code" = 200
check "check pass answers 200" test "$(http_status "$REG/v1/agent/check/pass/service:probe-1" -X PUT)" = 200
check "hand-registered service is passing" test "$(passing_count probe)" = 1
check "it turns critical without heartbeats" wait_eq 5 0 passing_count probe

# Blocking query: wait on the catalog index, wake on a registration.
idx=$(curl -s -D - -o /dev/null --max-time 5 "$REG/v1/catalog/services" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-consul-index"{print $2}')
check "X-Consul-Index is present" test -n "$idx"
( sleep 0.5; curl -s -o /dev/null -X PUT --max-time 5 "$REG/v1/agent/service/register" -d '{"Name":"late","Port":1}' ) &
start=$(date +%s%N)
woke=$(curl -s --max-time 10 "$REG/v1/catalog/services?index=$idx&wait=5s" | jq 'has("late")')
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
check "a blocking query wakes on a change (after ${elapsed} ms)" test "$woke" = true

bad=$(curl -s --max-time 5 -X PUT "$REG/v1/agent/service/register" -d '{"Port":"x"}')
check "a bad registration is refused with a JSON error" test "$(jq -r .error.code <<<"$bad")" = invalid_argument

finish
