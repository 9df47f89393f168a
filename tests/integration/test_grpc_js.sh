#!/usr/bin/env bash
# test_grpc_js.sh - grpc-js (npm @grpc/grpc-js with @grpc/proto-loader, from tests/support)
# calls song-engine on its own port: unary, a message near the size limit, server-streaming,
# deadline exceeded, cancellation, metadata round trip, status and message, unknown method,
# health Check. The TestService messages come from Debian's grpc-proto .proto files, Health
# from proto/health.proto, both read by proto-loader at run time.
source "$(dirname "$0")/lib.sh"

# FV_NODE_PATH: another node_modules holding them (a private install while trying things)
export NODE_PATH="${FV_NODE_PATH:-$FV_SRC/tests/support/node_modules}"
if ! node -e 'require("@grpc/grpc-js"); require("@grpc/proto-loader")' 2>/dev/null; then
    fail "no @grpc/grpc-js or @grpc/proto-loader under NODE_PATH; run scripts/deps.sh test"
    finish
fi
PROTO_DIR=/usr/share/grpc-proto
if [ ! -f "$PROTO_DIR/grpc/testing/test.proto" ]; then
    fail "no $PROTO_DIR/grpc/testing/test.proto; run scripts/deps.sh build"
    finish
fi

pick_port_base
export FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/data"
export FINALVERSE_GRPC__INTEROP_SERVICE=true
SONG=$(port_of song-engine)
start_fv song serve song-engine --port-base "$PORT_BASE"
check "song-engine is up" wait_for 10 curl -sf --max-time 2 "http://127.0.0.1:$SONG/health"

rc=0
node "$FV_SRC/tests/integration/grpc_js/client.js" "$SONG" "$PROTO_DIR" "$FV_SRC/proto" \
    >"$FV_TMP/client.out" 2>"$FV_TMP/client.log" || rc=$?
cat "$FV_TMP/client.out"
check "the grpc-js client ran to the end (exit $rc)" test "$rc" = 0
for c in unary near_size_limit server_streaming deadline_exceeded cancellation \
         metadata_round_trip status_and_message unknown_method health_check; do
    check "grpc-js case $c" grep -qx "PASS $c" "$FV_TMP/client.out"
done

in_flight() {
    curl -s --max-time 2 "http://127.0.0.1:$SONG/metrics" |
        sed -n 's/^finalverse_grpc_in_flight{module="song-engine"} //p'
}
check "every grpc-js call ended in the module (gRPC calls in flight: 0)" wait_eq 10 0 in_flight
finish
