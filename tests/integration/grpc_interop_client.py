"""The standard gRPC interop cases, as the interop spec describes them, with grpcio and message
classes built at run time from a descriptor set of grpc/testing/test.proto (no generated code).
Usage: grpc_interop_client.py PORT DESCRIPTOR_SET [CASE...]. Prints "PASS <case>" or "FAIL <case>: why"
per case; exits 1 when any failed."""
import queue
import sys
import traceback

import grpc

from pb_classes import message_class, pool_of

port, desc_path = sys.argv[1], sys.argv[2]
pool = pool_of(desc_path)


def msg_class(name):
    return message_class(pool, name)


Empty = msg_class("grpc.testing.Empty")
SimpleRequest = msg_class("grpc.testing.SimpleRequest")
SimpleResponse = msg_class("grpc.testing.SimpleResponse")
StreamingInputCallRequest = msg_class("grpc.testing.StreamingInputCallRequest")
StreamingInputCallResponse = msg_class("grpc.testing.StreamingInputCallResponse")
StreamingOutputCallRequest = msg_class("grpc.testing.StreamingOutputCallRequest")
StreamingOutputCallResponse = msg_class("grpc.testing.StreamingOutputCallResponse")

ch = grpc.insecure_channel("127.0.0.1:" + port)
grpc.channel_ready_future(ch).result(timeout=10)
SVC = "/grpc.testing.TestService/"


def method(kind, name, req, resp, service=SVC):
    make = getattr(ch, kind)
    return make(service + name, request_serializer=req.SerializeToString,
                response_deserializer=resp.FromString)


empty_call = method("unary_unary", "EmptyCall", Empty, Empty)
unary_call = method("unary_unary", "UnaryCall", SimpleRequest, SimpleResponse)
streaming_output = method("unary_stream", "StreamingOutputCall", StreamingOutputCallRequest,
                          StreamingOutputCallResponse)
streaming_input = method("stream_unary", "StreamingInputCall", StreamingInputCallRequest,
                         StreamingInputCallResponse)
full_duplex = method("stream_stream", "FullDuplexCall", StreamingOutputCallRequest,
                     StreamingOutputCallResponse)
half_duplex_call = method("stream_stream", "HalfDuplexCall", StreamingOutputCallRequest,
                          StreamingOutputCallResponse)

REQ_SIZES = [27182, 8, 1828, 45904]
RESP_SIZES = [31415, 9, 2653, 58979]
COMPRESSABLE = 0


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def zeros(n):
    return {"type": COMPRESSABLE, "body": b"\0" * n}


def out_request(sizes, payload=0, status=None):
    r = StreamingOutputCallRequest(response_type=COMPRESSABLE, payload=zeros(payload))
    for s in sizes:
        r.response_parameters.add(size=s)
    if status:
        r.response_status.code, r.response_status.message = status
    return r


class Requests:
    """A request stream fed one message at a time (ping-pong)."""
    END = object()

    def __init__(self):
        self.q = queue.Queue()

    def send(self, m):
        self.q.put(m)

    def close(self):
        self.q.put(self.END)

    def __iter__(self):
        while True:
            m = self.q.get()
            if m is self.END:
                return
            yield m


def code_of(fn):
    try:
        fn()
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()


def empty_unary():
    r = empty_call(Empty(), timeout=10)
    expect(r.ByteSize() == 0, "the answer is not an empty message")


def large_unary():
    r = unary_call(SimpleRequest(response_type=COMPRESSABLE, response_size=314159,
                                 payload=zeros(271828)), timeout=10)
    expect(r.payload.type == COMPRESSABLE, "payload type")
    expect(len(r.payload.body) == 314159, "payload of %d bytes" % len(r.payload.body))
    expect(r.payload.body == b"\0" * 314159, "payload not all zeros")


def client_streaming():
    r = streaming_input(iter([StreamingInputCallRequest(payload=zeros(n)) for n in REQ_SIZES]),
                        timeout=10)
    expect(r.aggregated_payload_size == 74922, "aggregated %d" % r.aggregated_payload_size)


def server_streaming():
    got = [len(r.payload.body) for r in streaming_output(out_request(RESP_SIZES), timeout=10)]
    expect(got == RESP_SIZES, "sizes %s" % got)


def ping_pong():
    reqs = Requests()
    it = full_duplex(iter(reqs), timeout=10)
    for want, n in zip(RESP_SIZES, REQ_SIZES):
        reqs.send(out_request([want], n))
        r = next(it)
        expect(len(r.payload.body) == want, "a pong of %d bytes, not %d" % (len(r.payload.body),
                                                                             want))
    reqs.close()
    rest = list(it)
    expect(rest == [], "answers after the last ping")
    expect(it.code() == grpc.StatusCode.OK, "status %s" % it.code())


def empty_stream():
    it = full_duplex(iter([]), timeout=10)
    expect(list(it) == [], "answers to no requests")
    expect(it.code() == grpc.StatusCode.OK, "status %s" % it.code())


def cancel_after_begin():
    reqs = Requests()
    fut = streaming_input.future(iter(reqs), timeout=10)
    fut.cancel()
    # grpcio tells a cancelled call by its future: result() raises FutureCancelledError
    expect(fut.cancelled(), "the call did not end cancelled")
    expect(fut.code() == grpc.StatusCode.CANCELLED, "status %s" % fut.code())
    reqs.close()


def cancel_after_first_response():
    reqs = Requests()
    it = full_duplex(iter(reqs), timeout=10)
    reqs.send(out_request([31415], 27182))
    r = next(it)
    expect(len(r.payload.body) == 31415, "first answer of %d bytes" % len(r.payload.body))
    it.cancel()
    expect(code_of(lambda: list(it)) == grpc.StatusCode.CANCELLED, "not CANCELLED")
    reqs.close()


def timeout_on_sleeping_server():
    reqs = Requests()
    it = full_duplex(iter(reqs), timeout=0.001)
    reqs.send(out_request([], 27182))
    c = code_of(lambda: list(it))
    expect(c == grpc.StatusCode.DEADLINE_EXCEEDED, "status %s" % c)
    reqs.close()


def status_code_and_message():
    text = "test status message"
    try:
        unary_call(SimpleRequest(response_status={"code": 2, "message": text}), timeout=10)
        raise AssertionError("UnaryCall answered OK")
    except grpc.RpcError as e:
        expect(e.code() == grpc.StatusCode.UNKNOWN, "UnaryCall status %s" % e.code())
        expect(e.details() == text, "UnaryCall message %r" % e.details())
    it = full_duplex(iter([out_request([], 0, (2, text))]), timeout=10)
    try:
        list(it)
        raise AssertionError("FullDuplexCall answered OK")
    except grpc.RpcError as e:
        expect(e.code() == grpc.StatusCode.UNKNOWN, "FullDuplexCall status %s" % e.code())
        expect(e.details() == text, "FullDuplexCall message %r" % e.details())


def custom_metadata():
    initial = ("x-grpc-test-echo-initial", "test_initial_metadata_value")
    trailing = ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab")
    r, call = unary_call.with_call(SimpleRequest(response_size=314159, payload=zeros(271828)),
                                   metadata=(initial, trailing), timeout=10)
    expect(len(r.payload.body) == 314159, "UnaryCall payload")
    expect(initial in call.initial_metadata(), "UnaryCall initial %s" % (call.initial_metadata(),))
    expect(trailing in call.trailing_metadata(),
           "UnaryCall trailing %s" % (call.trailing_metadata(),))
    it = full_duplex(iter([out_request([314159], 271828)]), metadata=(initial, trailing),
                     timeout=10)
    got = [len(m.payload.body) for m in it]
    expect(got == [314159], "FullDuplexCall payloads %s" % got)
    expect(initial in it.initial_metadata(), "FullDuplexCall initial %s" % (it.initial_metadata(),))
    expect(trailing in it.trailing_metadata(),
           "FullDuplexCall trailing %s" % (it.trailing_metadata(),))


def unimplemented_method():
    c = code_of(lambda: method("unary_unary", "UnimplementedCall", Empty, Empty)(Empty(),
                                                                                  timeout=10))
    expect(c == grpc.StatusCode.UNIMPLEMENTED, "status %s" % c)


def unimplemented_service():
    c = code_of(lambda: method("unary_unary", "UnimplementedCall", Empty, Empty,
                               service="/grpc.testing.UnimplementedService/")(Empty(),
                                                                             timeout=10))
    expect(c == grpc.StatusCode.UNIMPLEMENTED, "status %s" % c)


def half_duplex():
    reqs = [out_request([s]) for s in RESP_SIZES]
    got = [len(m.payload.body) for m in half_duplex_call(iter(reqs), timeout=10)]
    expect(got == RESP_SIZES, "sizes %s" % got)


CASES = [empty_unary, large_unary, client_streaming, server_streaming, ping_pong, empty_stream,
         cancel_after_begin, cancel_after_first_response, timeout_on_sleeping_server,
         status_code_and_message, custom_metadata, unimplemented_method, unimplemented_service,
         half_duplex]
failed = 0
if len(sys.argv) > 3:                       # only the cases named
    CASES = [c for c in CASES if c.__name__ in sys.argv[3:]]
for case in CASES:
    try:
        case()
        print("PASS", case.__name__, flush=True)
    except Exception as e:  # a case's failure is reported, and the others still run
        failed += 1
        print("FAIL %s: %s" % (case.__name__, e), flush=True)
        traceback.print_exc()
sys.exit(1 if failed else 0)
