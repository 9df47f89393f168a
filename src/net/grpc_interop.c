/* grpc_interop.c - grpc.testing.TestService on the streaming methods of the gRPC server (see
 * grpc_interop.h). Every method, unary ones too, is served as a stream so that it can answer
 * any status the client asks for and echo metadata. Answers wait on the stream's queue:
 * a payload refused with FV_EAGAIN is sent again on on_writable, and a reading stream pauses
 * meanwhile, so a client that does not read holds one queue and one window of ours. */
#include "net/grpc_interop.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "grpc/testing/messages.pb-c.h"
#include "net/grpc_wire.h"

#define INTEROP_SERVICE "grpc.testing.TestService"
#define INTEROP_MAX_RESPONSES 1024u     /* response_parameters entries one call may ask for */
#define INTEROP_MSG_MAX 256

typedef enum { IC_OUTPUT, IC_INPUT, IC_FULL, IC_HALF } ic_kind_t;

/* One streaming call: the payload sizes still to send, and how to end once they are out. */
typedef struct interop {
    fv_grpc_stream_t *s;
    ic_kind_t kind;
    int32_t sizes[INTEROP_MAX_RESPONSES];
    size_t n, next;
    bool has_status;                /* response_status asked for: the end, after the payloads */
    int32_t code;
    char msg[INTEROP_MSG_MAX];
    bool end_after;                 /* the client's side ended: OK once the payloads are out */
    int64_t input_total;            /* StreamingInputCall */
} interop_t;

static void ic_finish(interop_t *ic, int grpc_status, const char *msg)
{
    fv_grpc_stream_finish_status(ic->s, grpc_status, msg);
    fv_free(ic);
}

/* Packs m and sends it. fv_grpc_stream_send's codes, or FV_ENOMEM. */
static int send_msg(fv_grpc_stream_t *s, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = fv_try_malloc(n ? n : 1);
    if (!buf)
        return FV_ENOMEM;
    protobuf_c_message_pack(m, buf);
    int rc = fv_grpc_stream_send(s, buf, n);
    fv_free(buf);
    return rc;
}

/* A Payload of size zero bytes, COMPRESSABLE (the only type the cases ask for). */
static int send_payload(fv_grpc_stream_t *s, int32_t size, bool simple)
{
    uint8_t *zeros = fv_try_malloc(size ? (size_t)size : 1);
    if (!zeros)
        return FV_ENOMEM;
    memset(zeros, 0, (size_t)size);
    Grpc__Testing__Payload p = GRPC__TESTING__PAYLOAD__INIT;
    p.type = GRPC__TESTING__PAYLOAD_TYPE__COMPRESSABLE;
    p.body.data = zeros;
    p.body.len = (size_t)size;
    int rc;
    if (simple) {
        Grpc__Testing__SimpleResponse r = GRPC__TESTING__SIMPLE_RESPONSE__INIT;
        r.payload = &p;
        rc = send_msg(s, &r.base);
    } else {
        Grpc__Testing__StreamingOutputCallResponse r =
            GRPC__TESTING__STREAMING_OUTPUT_CALL_RESPONSE__INIT;
        r.payload = &p;
        rc = send_msg(s, &r.base);
    }
    fv_free(zeros);
    return rc;
}

static int send_status_code(int rc)
{
    return rc == FV_ETOOBIG ? FV_GRPC_RESOURCE_EXHAUSTED : FV_GRPC_INTERNAL;
}

/* The two metadata the interop cases echo. 0 or fv_md_add's codes. */
static int echo_metadata(fv_grpc_stream_t *s)
{
    const fv_md_t *md = fv_grpc_stream_metadata(s);
    fv_slice_t v = fv_md_get(md, "x-grpc-test-echo-initial");
    int rc = 0;
    if (v.ptr)
        rc = fv_grpc_stream_add_header(s, "x-grpc-test-echo-initial", v.ptr, v.len);
    v = fv_md_get(md, "x-grpc-test-echo-trailing-bin");
    if (rc == 0 && v.ptr)
        rc = fv_grpc_stream_add_trailer(s, "x-grpc-test-echo-trailing-bin", v.ptr, v.len);
    return rc;
}

static bool expects_compression(const Grpc__Testing__BoolValue *b)
{
    return b && b->value;
}

/* Takes the status a request asks for (code 0 asks for none). */
static void take_status(interop_t *ic, const Grpc__Testing__EchoStatus *st)
{
    if (!st || st->code == 0)
        return;
    ic->has_status = true;
    ic->code = st->code;
    snprintf(ic->msg, sizeof(ic->msg), "%s", st->message ? st->message : "");
}

/* Appends a request's response sizes. false (and the call ended) when they are bad. */
static bool take_sizes(interop_t *ic, const Grpc__Testing__StreamingOutputCallRequest *req)
{
    if (req->n_response_parameters > INTEROP_MAX_RESPONSES - ic->n) {
        ic_finish(ic, FV_GRPC_INVALID_ARGUMENT, "too many response_parameters");
        return false;
    }
    for (size_t i = 0; i < req->n_response_parameters; i++) {
        const Grpc__Testing__ResponseParameters *p = req->response_parameters[i];
        if (p->size < 0 || expects_compression(p->compressed)) {
            ic_finish(ic, FV_GRPC_INVALID_ARGUMENT,
                      p->size < 0 ? "a negative response size" : "compression is not supported");
            return false;
        }
        ic->sizes[ic->n++] = p->size;
    }
    return true;
}

/* Sends what is due, then ends or reads on. ic may be gone after. */
static void pump(interop_t *ic)
{
    bool reads = ic->kind != IC_OUTPUT;
    while (ic->next < ic->n) {
        int rc = send_payload(ic->s, ic->sizes[ic->next], false);
        if (rc == FV_EAGAIN) {
            if (reads)
                fv_grpc_stream_pause(ic->s, true);
            return;                     /* on_writable goes on */
        }
        if (rc == FV_ECANCELED)
            return;                     /* on_cancel frees */
        if (rc < 0) {
            ic_finish(ic, send_status_code(rc), fv_strerror(rc));
            return;
        }
        ic->next++;
    }
    ic->n = ic->next = 0;
    if (ic->has_status) {
        ic_finish(ic, ic->code, ic->msg);
        return;
    }
    if (ic->end_after) {
        ic_finish(ic, FV_GRPC_OK, NULL);
        return;
    }
    if (reads)
        fv_grpc_stream_pause(ic->s, false);   /* may hand over the next message at once */
}

/* ---- the streams' callbacks ---- */

static void on_cancel(fv_grpc_stream_t *s, void *data)
{
    fv_free(data);
}

static void on_writable(fv_grpc_stream_t *s, void *data)
{
    pump(data);
}

static void on_output_message(fv_grpc_stream_t *s, const uint8_t *msg, size_t len, void *data)
{
    interop_t *ic = data;
    Grpc__Testing__StreamingOutputCallRequest *req =
        grpc__testing__streaming_output_call_request__unpack(NULL, len, msg);
    if (!req) {
        ic_finish(ic, FV_GRPC_INVALID_ARGUMENT, "not a StreamingOutputCallRequest");
        return;
    }
    bool ok = take_sizes(ic, req);      /* false: it ended the call */
    if (ok)
        take_status(ic, req->response_status);
    grpc__testing__streaming_output_call_request__free_unpacked(req, NULL);
    if (ok && ic->kind != IC_HALF)      /* half-duplex answers after the client's end */
        pump(ic);
}

static void on_input_message(fv_grpc_stream_t *s, const uint8_t *msg, size_t len, void *data)
{
    interop_t *ic = data;
    Grpc__Testing__StreamingInputCallRequest *req =
        grpc__testing__streaming_input_call_request__unpack(NULL, len, msg);
    if (!req) {
        ic_finish(ic, FV_GRPC_INVALID_ARGUMENT, "not a StreamingInputCallRequest");
        return;
    }
    bool compressed = expects_compression(req->expect_compressed);
    if (req->payload)
        ic->input_total += (int64_t)req->payload->body.len;
    grpc__testing__streaming_input_call_request__free_unpacked(req, NULL);
    if (compressed)
        ic_finish(ic, FV_GRPC_INVALID_ARGUMENT, "compression is not supported");
}

static void on_half_close(fv_grpc_stream_t *s, void *data)
{
    interop_t *ic = data;
    if (ic->kind == IC_INPUT) {
        if (ic->input_total > INT32_MAX) {
            ic_finish(ic, FV_GRPC_INVALID_ARGUMENT, "the payloads add up past an int32");
            return;
        }
        Grpc__Testing__StreamingInputCallResponse r =
            GRPC__TESTING__STREAMING_INPUT_CALL_RESPONSE__INIT;
        r.aggregated_payload_size = (int32_t)ic->input_total;
        int rc = send_msg(s, &r.base);
        if (rc == FV_ECANCELED)
            return;
        ic_finish(ic, rc < 0 ? send_status_code(rc) : FV_GRPC_OK, rc < 0 ? fv_strerror(rc) : NULL);
        return;
    }
    ic->end_after = true;
    pump(ic);
}

static const fv_grpc_stream_cbs_t output_cbs = {
    .on_cancel = on_cancel, .on_writable = on_writable,
    .on_message = on_output_message, .on_half_close = on_half_close,
};
static const fv_grpc_stream_cbs_t input_cbs = {
    .on_cancel = on_cancel, .on_message = on_input_message, .on_half_close = on_half_close,
};

/* A call state for s, with its callbacks and the metadata echo; NULL when the call ended. */
static interop_t *ic_open(fv_grpc_stream_t *s, ic_kind_t kind)
{
    interop_t *ic = fv_calloc(1, sizeof(*ic));
    ic->s = s;
    ic->kind = kind;
    fv_grpc_stream_set_cbs(s, kind == IC_INPUT ? &input_cbs : &output_cbs, ic);
    int rc = echo_metadata(s);
    if (rc < 0) {
        ic_finish(ic, FV_GRPC_INTERNAL, fv_strerror(rc));
        return NULL;
    }
    return ic;
}

/* ---- the methods ---- */

static void m_empty(fv_grpc_stream_t *s, const uint8_t *msg, size_t len, void *data)
{
    int rc = echo_metadata(s);
    if (rc == 0)
        rc = fv_grpc_stream_send(s, NULL, 0);      /* Empty packs to no bytes */
    if (rc == FV_ECANCELED)
        return;
    fv_grpc_stream_finish_status(s, rc < 0 ? FV_GRPC_INTERNAL : FV_GRPC_OK,
                                 rc < 0 ? fv_strerror(rc) : NULL);
}

static void m_unary(fv_grpc_stream_t *s, const uint8_t *msg, size_t len, void *data)
{
    Grpc__Testing__SimpleRequest *req = grpc__testing__simple_request__unpack(NULL, len, msg);
    if (!req) {
        fv_grpc_stream_finish_status(s, FV_GRPC_INVALID_ARGUMENT, "not a SimpleRequest");
        return;
    }
    int status = FV_GRPC_OK;
    char text[INTEROP_MSG_MAX] = "";
    int rc = echo_metadata(s);
    if (rc < 0) {
        status = FV_GRPC_INTERNAL;
        snprintf(text, sizeof(text), "%s", fv_strerror(rc));
    } else if (expects_compression(req->expect_compressed)) {
        status = FV_GRPC_INVALID_ARGUMENT;
        snprintf(text, sizeof(text), "compression is not supported");
    } else if (req->response_status && req->response_status->code != 0) {
        status = req->response_status->code;
        snprintf(text, sizeof(text), "%s",
                 req->response_status->message ? req->response_status->message : "");
    } else if (req->response_size < 0) {
        status = FV_GRPC_INVALID_ARGUMENT;
        snprintf(text, sizeof(text), "a negative response_size");
    } else if ((rc = send_payload(s, req->response_size, true)) < 0) {
        status = send_status_code(rc);
        snprintf(text, sizeof(text), "%s", fv_strerror(rc));
    }
    grpc__testing__simple_request__free_unpacked(req, NULL);
    if (rc == FV_ECANCELED)
        return;
    fv_grpc_stream_finish_status(s, status, text);
}

static void m_streaming_output(fv_grpc_stream_t *s, const uint8_t *msg, size_t len, void *data)
{
    interop_t *ic = ic_open(s, IC_OUTPUT);
    if (!ic)
        return;
    ic->end_after = true;
    on_output_message(s, msg, len, ic);
    /* ic is the stream's now: on_output_message ended it, or pump runs it out */
}

static void m_streaming_input(fv_grpc_stream_t *s, void *data)
{
    (void)ic_open(s, IC_INPUT);
}

static void m_full_duplex(fv_grpc_stream_t *s, void *data)
{
    (void)ic_open(s, IC_FULL);
}

static void m_half_duplex(fv_grpc_stream_t *s, void *data)
{
    (void)ic_open(s, IC_HALF);
}

int fv_grpc_interop_serve(fv_grpc_server_t *g)
{
    int rc = fv_grpc_server_stream_method(g, INTEROP_SERVICE, "EmptyCall", m_empty, NULL);
    if (rc == 0)
        rc = fv_grpc_server_stream_method(g, INTEROP_SERVICE, "UnaryCall", m_unary, NULL);
    if (rc == 0)
        rc = fv_grpc_server_stream_method(g, INTEROP_SERVICE, "StreamingOutputCall",
                                          m_streaming_output, NULL);
    if (rc == 0)
        rc = fv_grpc_server_client_stream_method(g, INTEROP_SERVICE, "StreamingInputCall",
                                                 m_streaming_input, NULL);
    if (rc == 0)
        rc = fv_grpc_server_bidi_method(g, INTEROP_SERVICE, "FullDuplexCall", m_full_duplex,
                                        NULL);
    if (rc == 0)
        rc = fv_grpc_server_bidi_method(g, INTEROP_SERVICE, "HalfDuplexCall", m_half_duplex,
                                        NULL);
    return rc;
}
