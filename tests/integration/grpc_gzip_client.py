"""grpcio with gzip compression (grpc.Compression.Gzip) calls grpc.testing.TestService:
a large unary call and a client-streaming call arrive compressed and are answered; a request
that inflates past the server's 4 MiB message limit (a "zip bomb" of zeros) is
RESOURCE_EXHAUSTED; the server advertises grpc-accept-encoding with gzip.
Usage: grpc_gzip_client.py PORT DESCRIPTOR_SET. Prints "ok ..." or "FAIL ..." per check."""
import sys

import grpc

from pb_classes import message_class, pool_of

port, desc_path = sys.argv[1], sys.argv[2]
pool = pool_of(desc_path)


def msg_class(name):
    return message_class(pool, name)


SimpleRequest = msg_class("grpc.testing.SimpleRequest")
SimpleResponse = msg_class("grpc.testing.SimpleResponse")
StreamingInputCallRequest = msg_class("grpc.testing.StreamingInputCallRequest")
StreamingInputCallResponse = msg_class("grpc.testing.StreamingInputCallResponse")

failed = 0


def say(ok, what):
    global failed
    print(("ok " if ok else "FAIL ") + what)
    failed += 0 if ok else 1


ch = grpc.insecure_channel("127.0.0.1:" + port, compression=grpc.Compression.Gzip,
                           options=[("grpc.max_send_message_length", -1)])
grpc.channel_ready_future(ch).result(timeout=10)
unary = ch.unary_unary("/grpc.testing.TestService/UnaryCall",
                       request_serializer=SimpleRequest.SerializeToString,
                       response_deserializer=SimpleResponse.FromString)
stream_in = ch.stream_unary("/grpc.testing.TestService/StreamingInputCall",
                            request_serializer=StreamingInputCallRequest.SerializeToString,
                            response_deserializer=StreamingInputCallResponse.FromString)

resp = unary(SimpleRequest(response_size=31415,
                                           payload={"body": b"\0" * 271828}), timeout=10)
say(len(resp.payload.body) == 31415, "large unary with a gzip request (%d bytes back)"
    % len(resp.payload.body))

sizes = [27182, 8, 1828, 45904]
resp = stream_in(iter([StreamingInputCallRequest(payload={"body": b"\1" * n}) for n in sizes]),
                 timeout=10)
say(resp.aggregated_payload_size == sum(sizes),
    "client-streaming with gzip messages (aggregated %d)" % resp.aggregated_payload_size)

try:
    unary(SimpleRequest(response_size=1, payload={"body": b"\0" * (8 << 20)}), timeout=10)
    say(False, "an 8 MiB request that gzips to a few KiB was answered")
except grpc.RpcError as e:
    say(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED,
        "an 8 MiB request that gzips to a few KiB is %s: %s" % (e.code(), e.details()))

resp = unary(SimpleRequest(response_size=5, payload={"body": b"\0" * 10}), timeout=10)
say(len(resp.payload.body) == 5, "the connection still serves after it")
sys.exit(1 if failed else 0)
