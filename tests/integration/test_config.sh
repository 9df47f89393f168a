#!/usr/bin/env bash
# test_config.sh - the operator's view of configuration: check/show, bad files and variables
# named precisely, a taken port named with its module, bad arguments refused.
source "$(dirname "$0")/lib.sh"
SRC=${FV_SRC:?}

out=$("$FV_BIN" config check --config "$SRC/finalverse.toml" 2>&1) && rc=0 || rc=$?
check "the shipped finalverse.toml is valid ($out)" test "$rc" = 0

cat >"$FV_TMP/bad.toml" <<'TOML'
[general]
log_level = "info"

[http]
max_body_bytes = "lots"
TOML
out=$("$FV_BIN" config check --config "$FV_TMP/bad.toml" 2>&1) && rc=0 || rc=$?
check "a bad value exits non-zero" test "$rc" != 0
check "the error names file, line and key ($out)" \
    bash -c "grep -q 'bad.toml:5' <<<'$out' && grep -q 'http.max_body_bytes' <<<'$out'"

printf '[services.song-engine]\nprot = 3001\n' >"$FV_TMP/typo.toml"
out=$("$FV_BIN" config check --config "$FV_TMP/typo.toml" 2>&1) && rc=0 || rc=$?
check "an unknown key is refused with its line ($out)" \
    bash -c "[ $rc != 0 ] && grep -q 'typo.toml:2' <<<'$out' && grep -q prot <<<'$out'"

out=$(FINALVERSE_HTTP__MAX_BODY_BYTES=abc "$FV_BIN" config check 2>&1) && rc=0 || rc=$?
check "a bad environment override names the variable ($out)" \
    bash -c "[ $rc != 0 ] && grep -q FINALVERSE_HTTP__MAX_BODY_BYTES <<<'$out'"

out=$(FINALVERSE_STORAGE__SECRET_KEY=hunter2 "$FV_BIN" config show 2>&1)
check "config show masks secrets" bash -c "! grep -q hunter2 <<<'$out' && grep -q 'secret_key' <<<'$out'"
out=$(FINALVERSE_GATEWAY__UPSTREAM_TIMEOUT_MS=1234 "$FV_BIN" config show 2>&1)
check "config show shows environment overrides" grep -q 1234 <<<"$out"

out=$("$FV_BIN" up --port-base nope 2>&1) && rc=0 || rc=$?
check "a bad --port-base is a usage error (rc=$rc)" test "$rc" = 2
check "... naming the option ($out)" grep -q port-base <<<"$out"
out=$("$FV_BIN" serve no-such-module 2>&1) && rc=0 || rc=$?
check "serve refuses an unknown module (rc=$rc)" test "$rc" = 2
check "... naming it ($out)" grep -q no-such-module <<<"$out"

# A port already taken: the module and port are named, and the process exits non-zero.
pick_port_base
export FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/data"
start_fv first serve song-engine --port-base "$PORT_BASE"
wait_eq 10 200 http_status "http://127.0.0.1:$(port_of song-engine)/health"
out=$(timeout 20 "$FV_BIN" serve song-engine --port-base "$PORT_BASE" 2>&1) && rc=0 || rc=$?
check "a taken port exits non-zero (rc=$rc)" test "$rc" = 1
check "the message names module and port ($out)" \
    bash -c "grep -q 'song-engine' <<<'$out' && grep -q '$(port_of song-engine)' <<<'$out' && grep -qi 'in use' <<<'$out'"

# Logging: JSON lines when general.log_format = "json", and at debug one access line per
# request carrying its request id.
pick_port_base
FINALVERSE_GENERAL__LOG_FORMAT=json FINALVERSE_LOG_LEVEL=debug \
    start_fv jsonlog serve procedural-gen --port-base "$PORT_BASE"
JSON_PID=$FV_LAST_PID
wait_eq 10 200 http_status "http://127.0.0.1:$(port_of procedural-gen)/info" >/dev/null
kill -TERM "$JSON_PID"; wait "$JSON_PID" 2>/dev/null || true
check "every log line is a JSON object" \
    bash -c "[ -s '$FV_TMP/jsonlog.log' ] && jq -e -s 'all(.[]; has(\"ts\") and has(\"level\") and has(\"module\") and has(\"msg\"))' '$FV_TMP/jsonlog.log' >/dev/null"
check "the access log names the request id" \
    bash -c "jq -r .msg '$FV_TMP/jsonlog.log' | grep -q '^req=[0-9]* .* GET /info -> 200'"

finish
