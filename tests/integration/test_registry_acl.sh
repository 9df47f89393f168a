#!/usr/bin/env bash
# test_registry_acl.sh - the registry as operators and their tools meet it:
#  - off loopback it refuses to start without deny and a token (the real binary, exit code and
#    message);
#  - the npm `consul` client with the stack's token does everything; without a token, with an
#    unknown one, or with one whose rules do not cover an instance, writes are refused (403);
#  - 20,000 registrations while another module's /health is probed: every answer 200, the
#    probe's latencies printed (measured, not asserted).
source "$(dirname "$0")/lib.sh"

pick_port_base
export FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/data"
REG_PORT=$(port_of service-registry)
REG=http://127.0.0.1:$REG_PORT

# ---- refusals off loopback: the process exits before it listens ----
refused() { # EXPECTED-TEXT ENV...
    local want=$1; shift
    local out rc=0
    out=$(env "$@" timeout 10 "$FV_BIN" serve service-registry --port-base "$PORT_BASE" 2>&1) ||
        rc=$?
    [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -qF -- "$want" <<<"$out"
}
check "off loopback, allow is refused at start" \
    refused 'acl_default_policy must be "deny"' FINALVERSE_GENERAL__BIND=0.0.0.0
check "off loopback, deny without a token is refused at start" \
    refused 'has no token' FINALVERSE_GENERAL__BIND=0.0.0.0 \
    FINALVERSE_REGISTRY__ACL_DEFAULT_POLICY=deny

# ---- a registry under deny with the stack's token and one narrower token ----
STACK=stack-token-0123456789
SONGS=songs-token-0123456789
export FINALVERSE_REGISTRY__TOKEN=$STACK
export FINALVERSE_REGISTRY__ACL_TOKENS="$SONGS=service:write:song-*"
export FINALVERSE_REGISTRY__ACL_DEFAULT_POLICY=deny
start_fv registry serve service-registry --port-base "$PORT_BASE"
check "the registry answers" wait_eq 10 200 http_status "$REG/health"
start_fv song serve song-engine --port-base "$PORT_BASE"
passing() { curl -s --max-time 5 -H "X-Consul-Token: $STACK" \
    "$REG/v1/health/service/song-engine?passing" | jq length; }
check "song-engine registers with the stack token from config" wait_eq 10 1 passing

if node "$FV_SRC/tests/integration/registry/consul_client.js" "$REG_PORT" "$STACK" "$SONGS"; then
    ok "the npm consul client with tokens"
else
    fail "the npm consul client with tokens"
fi

SONG_HEALTH=http://127.0.0.1:$(port_of song-engine)/health
if node "$FV_SRC/tests/integration/registry/register_many.js" "$REG_PORT" "$STACK" 20000 64 \
    "$SONG_HEALTH"; then
    ok "20,000 registrations, song-engine's /health answering meanwhile"
else
    fail "20,000 registrations, song-engine's /health answering meanwhile"
fi
bulk() { curl -s --max-time 10 -H "X-Consul-Token: $STACK" "$REG/v1/agent/services" |
    jq '[keys[] | select(startswith("bulk-"))] | length'; }
check "all 20,000 are in the catalog" test "$(bulk)" = 20000
check "song-engine stayed passing" test "$(passing)" = 1

finish
