#!/usr/bin/env bash
# test_grpc_reflection.sh - server reflection on a module's port, asked by Debian's
# python3-grpcio with the reflection messages built from grpc-proto's reflection.proto (Debian
# ships no grpcio reflection client): list_services names the module's services; the files
# come back for a symbol and a file name, with their imports; a client that had no .proto file
# then calls Probe/Echo with message classes made from what reflection told it; unknown names,
# an extension and a request that does not decode are answered as the protocol says.
source "$(dirname "$0")/lib.sh"

PY=""
for p in $(type -ap python3); do
    if "$p" -c 'import grpc, google.protobuf' 2>/dev/null; then PY=$p; break; fi
done
if [ -z "$PY" ]; then
    fail "no python3 with grpcio and protobuf; run scripts/deps.sh test"
    finish
fi
if ! protoc-c --proto_path=/usr/share/grpc-proto --descriptor_set_out="$FV_TMP/refl.desc" \
        grpc/reflection/v1alpha/reflection.proto 2>"$FV_TMP/protoc.log"; then
    fail "protoc-c cannot read reflection.proto; run scripts/deps.sh build"
    finish
fi

pick_port_base
export FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/data"
export FINALVERSE_GRPC__PROBE_SERVICE=true
SONG=$(port_of song-engine)
start_fv song serve song-engine --port-base "$PORT_BASE"
check "song-engine is up" wait_for 10 curl -sf --max-time 2 "http://127.0.0.1:$SONG/health"

rc=0
"$PY" - "$SONG" "$FV_TMP/refl.desc" "$(dirname "$0")" >"$FV_TMP/refl.out" 2>"$FV_TMP/refl.log" <<'PY' || rc=$?
import sys
import grpc
from google.protobuf import descriptor_pb2, descriptor_pool

sys.path.insert(0, sys.argv[3])
from pb_classes import classes, pool_of

port, desc = sys.argv[1], sys.argv[2]

rpool = pool_of(desc)
Req, Resp = classes(rpool, "grpc.reflection.v1alpha.ServerReflectionRequest",
                    "grpc.reflection.v1alpha.ServerReflectionResponse")
ch = grpc.insecure_channel("127.0.0.1:" + port)
grpc.channel_ready_future(ch).result(timeout=10)
info = ch.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                        request_serializer=Req.SerializeToString,
                        response_deserializer=Resp.FromString)


def say(ok, what):
    print(("ok - " if ok else "FAIL - ") + what, flush=True)


reqs = [Req(host="h", list_services=""),
        Req(file_containing_symbol="finalverse.testing.v1.Probe"),
        Req(file_by_filename="common.proto"),
        Req(file_containing_symbol="grpc.health.v1.Health.Watch"),
        Req(file_containing_symbol="no.such.Thing"),
        Req(file_by_filename="nope.proto"),
        Req(file_containing_extension={"containing_type": "finalverse.testing.v1.EchoMessage",
                                       "extension_number": 100}),
        Req(all_extension_numbers_of_type="finalverse.testing.v1.EchoMessage")]
ans = list(info(iter(reqs), timeout=10))
say(len(ans) == len(reqs), "one answer per request, in order (%d)" % len(ans))
names = [s.name for s in ans[0].list_services_response.service]
print("services:", names)
say(ans[0].valid_host == "h" and ans[0].original_request == reqs[0],
    "the answer carries the host and the request")
say(set(names) >= {"grpc.health.v1.Health", "finalverse.testing.v1.Probe",
                   "grpc.reflection.v1alpha.ServerReflection"},
    "list_services names health, probe and reflection")
files = [descriptor_pb2.FileDescriptorProto.FromString(b)
         for b in ans[1].file_descriptor_response.file_descriptor_proto]
say([f.name for f in files] == ["probe.proto", "common.proto"],
    "file_containing_symbol: probe.proto, then what it imports (%s)" % [f.name for f in files])
say([descriptor_pb2.FileDescriptorProto.FromString(b).name
     for b in ans[2].file_descriptor_response.file_descriptor_proto] == ["common.proto"],
    "file_by_filename: common.proto")
say(len(ans[3].file_descriptor_response.file_descriptor_proto) >= 1,
    "a method's full name finds its file")
for i, what in ((4, "an unknown symbol"), (5, "an unknown file"), (6, "an extension")):
    say(ans[i].WhichOneof("message_response") == "error_response" and
        ans[i].error_response.error_code == 5, what + " is NOT_FOUND")
say(ans[7].all_extension_numbers_response.base_type_name ==
    "finalverse.testing.v1.EchoMessage" and
    len(ans[7].all_extension_numbers_response.extension_number) == 0,
    "all_extension_numbers_of_type: none")

# a client that knows nothing but what reflection said calls a method
pool = descriptor_pool.DescriptorPool()
for f in reversed(files):
    pool.Add(f)
svc = pool.FindServiceByName("finalverse.testing.v1.Probe")
m = svc.FindMethodByName("Echo")
In, Out = classes(pool, m.input_type.full_name, m.output_type.full_name)
echo = ch.unary_unary("/%s/%s" % (svc.full_name, m.name),
                      request_serializer=In.SerializeToString,
                      response_deserializer=Out.FromString)
r = echo(In(payload=b"made from reflection"), timeout=10)
say(r.payload == b"made from reflection", "Probe/Echo called with classes from reflection")

bad = ch.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                       request_serializer=lambda b: b, response_deserializer=lambda b: b)
try:
    list(bad(iter([b"\xff\xff\xff"]), timeout=10))
    say(False, "a request that does not decode is refused")
except grpc.RpcError as e:
    say(e.code() == grpc.StatusCode.INVALID_ARGUMENT,
        "a request that does not decode is INVALID_ARGUMENT (%s)" % e.code())
PY
cat "$FV_TMP/refl.out"
check "the reflection client ran to the end (exit $rc)" test "$rc" = 0
check "every reflection check passed" \
    bash -c "! grep -q '^FAIL' '$FV_TMP/refl.out' && grep -q '^ok' '$FV_TMP/refl.out'"
finish
