#!/usr/bin/env bash
# test_grpc_interop.sh - the standard gRPC interop cases, written with Debian's python3-grpcio
# from the interop spec, against song-engine serving grpc.testing.TestService
# (grpc.interop_service). The message classes come from the grpc-proto package's .proto files,
# turned into a descriptor set by protoc-c and loaded with python3-protobuf (no generated code).
# Prints one line per case; every case must pass. Then a bidirectional client that sends and
# never reads finds the server no longer reading it (bounded), and others still served; and
# grpcio with gzip compression is answered (a zip bomb RESOURCE_EXHAUSTED).
source "$(dirname "$0")/lib.sh"

PY=""
for p in $(type -ap python3); do
    if "$p" -c 'import grpc, google.protobuf' 2>/dev/null; then PY=$p; break; fi
done
if [ -z "$PY" ]; then
    fail "no python3 with grpcio and protobuf; run scripts/deps.sh test"
    finish
fi
PROTO_DIR=/usr/share/grpc-proto
if ! protoc-c --proto_path="$PROTO_DIR" --include_imports \
        --descriptor_set_out="$FV_TMP/test.desc" grpc/testing/test.proto 2>"$FV_TMP/protoc.log"; then
    fail "protoc-c cannot read grpc/testing/test.proto; run scripts/deps.sh build"
    finish
fi

pick_port_base
export FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/data"
export FINALVERSE_GRPC__INTEROP_SERVICE=true
SONG=$(port_of song-engine)
start_fv song serve song-engine --port-base "$PORT_BASE"
check "song-engine is up" wait_for 10 curl -sf --max-time 2 "http://127.0.0.1:$SONG/health"

rc=0
"$PY" "$(dirname "$0")/grpc_interop_client.py" "$SONG" "$FV_TMP/test.desc" \
    >"$FV_TMP/interop.out" 2>"$FV_TMP/interop.log" || rc=$?
cat "$FV_TMP/interop.out"
check "the interop client ran to the end (exit $rc)" test "$rc" = 0
for c in empty_unary large_unary client_streaming server_streaming ping_pong empty_stream \
         cancel_after_begin cancel_after_first_response timeout_on_sleeping_server \
         status_code_and_message custom_metadata unimplemented_method unimplemented_service \
         half_duplex; do
    check "interop case $c" grep -qx "PASS $c" "$FV_TMP/interop.out"
done

# a bidirectional client that sends and never reads: the server stops reading it
rc=0
"$PY" "$(dirname "$0")/grpc_bidi_no_reader.py" "$SONG" >"$FV_TMP/noreader.out" \
    2>"$FV_TMP/noreader.log" || rc=$?
cat "$FV_TMP/noreader.out"
check "the no-reader client ran to the end (exit $rc)" test "$rc" = 0
check "every no-reader check passed" \
    bash -c "! grep -q '^FAIL' '$FV_TMP/noreader.out' && grep -q '^ok' '$FV_TMP/noreader.out'"
check "interop still answers after it (empty_unary)" bash -c \
    "'$PY' '$(dirname "$0")/grpc_interop_client.py' '$SONG' '$FV_TMP/test.desc' empty_unary | grep -qx 'PASS empty_unary'"

# grpc-encoding: gzip from grpcio, and what the server says it accepts
rc=0
"$PY" "$(dirname "$0")/grpc_gzip_client.py" "$SONG" "$FV_TMP/test.desc" >"$FV_TMP/gzip.out" \
    2>"$FV_TMP/gzip.log" || rc=$?
cat "$FV_TMP/gzip.out"
check "the gzip client ran to the end (exit $rc)" test "$rc" = 0
check "every gzip check passed" \
    bash -c "! grep -q '^FAIL' '$FV_TMP/gzip.out' && grep -q '^ok' '$FV_TMP/gzip.out'"
printf '\0\0\0\0\0' >"$FV_TMP/empty.msg"
check "answers carry grpc-accept-encoding: identity,gzip" bash -c \
    "curl -s -D - -o /dev/null --http2-prior-knowledge -H 'content-type: application/grpc' \
        -H 'te: trailers' --data-binary @'$FV_TMP/empty.msg' \
        http://127.0.0.1:$SONG/grpc.health.v1.Health/Check | tr -d '\r' |
     grep -qix 'grpc-accept-encoding: identity,gzip'"

in_flight() {
    curl -s --max-time 2 "http://127.0.0.1:$SONG/metrics" |
        sed -n 's/^finalverse_grpc_in_flight{module="song-engine"} //p'
}
check "every interop call ended in the module (gRPC calls in flight: 0)" wait_eq 10 0 in_flight
finish
