/* rpc.h - calls between modules: method tables, fv_rpc_call() with a deadline, and the seam
 * where a cross-process transport (gRPC over HTTP/2) plugs in.
 *
 * A module serves a service (a gRPC-style full name, "finalverse.world.v1.WorldService") as a
 * table of methods, each with the protobuf-c descriptors of its input and output. Another module
 * calls it by module name and method name. In one process the call is encoded into a gRPC
 * length-prefixed frame, delivered on a later loop turn, decoded with the method's input
 * descriptor, handled, and the answer travels back the same way: exactly what would cross the
 * wire, so no module ever sees another's memory. A call to a module this process does not serve
 * goes to the remote transport when one is set (fv_rpc_set_remote), else fails FV_EUNAVAILABLE.
 *
 * Errors reach the caller as FV_E codes (their gRPC status is fv_err_grpc_status()):
 * FV_EUNAVAILABLE (module not served here, quiesced, or the rpc is closing), FV_EUNIMPLEMENTED
 * (no such method), FV_ETIMEDOUT (deadline passed), FV_EINVAL (input or answer does not
 * decode), FV_ETOOBIG (message over max_message_bytes), FV_ERATELIMIT (over max_in_flight),
 * FV_ECANCELED (fv_rpc_cancel or close), or what the handler failed with.
 *
 * Everything runs on the loop thread of the rpc. */
#ifndef FV_RPC_RPC_H
#define FV_RPC_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include "core/err.h"
#include "rpc/metadata.h"

typedef struct fv_rpc fv_rpc_t;
typedef struct fv_rpc_call fv_rpc_call_t;   /* a call as its handler sees it */
typedef struct fv_rpc_req fv_rpc_req_t;     /* a call as its caller holds it */

#define FV_RPC_DEFAULT_MAX_MESSAGE (4u * 1024u * 1024u)   /* gRPC's usual default */
#define FV_RPC_DEFAULT_MAX_IN_FLIGHT 65536u
#define FV_RPC_DEFAULT_DEADLINE_MS 10000u
#define FV_RPC_MAX_DEADLINE_MS (24u * 3600u * 1000u)

typedef struct fv_rpc_opts {
    size_t max_message_bytes;   /* 0: FV_RPC_DEFAULT_MAX_MESSAGE; inputs and answers alike */
    uint32_t max_in_flight;     /* 0: FV_RPC_DEFAULT_MAX_IN_FLIGHT; calls made and not done */
} fv_rpc_opts_t;

/* Runs from the loop when the call arrives. in is valid until the call is answered or its
 * cancel callback has run; it belongs to the rpc. Answer once, now or later, with
 * fv_rpc_reply() or fv_rpc_fail(). */
typedef void (*fv_rpc_handler_fn)(fv_rpc_call_t *call, const ProtobufCMessage *in, void *data);

typedef struct fv_rpc_method {
    const char *name;                              /* "GetRegion" */
    const ProtobufCMessageDescriptor *input;
    const ProtobufCMessageDescriptor *output;
    fv_rpc_handler_fn handler;
    bool idempotent;                               /* safe to retry (for transports) */
} fv_rpc_method_t;

FV_MUST_USE int fv_rpc_new(uv_loop_t *loop, const fv_rpc_opts_t *opts, fv_rpc_t **out);

/* Serves module's service: methods[0..count) (borrowed, must outlive the rpc, usually static),
 * data passed to every handler. 0, FV_EINVAL (bad names or descriptors), FV_EEXIST (module
 * already served). */
FV_MUST_USE int fv_rpc_serve(fv_rpc_t *rpc, const char *module, const char *service,
                             const fv_rpc_method_t *methods, size_t count, void *data);

/* Shutdown began for module: calls that have not reached its handler yet, and new calls, fail
 * with FV_EUNAVAILABLE; calls its handlers hold finish normally. */
void fv_rpc_quiesce(fv_rpc_t *rpc, const char *module);

/* ---- calling ---- */

/* Runs exactly once per fv_rpc_call() that returned 0, from the loop, never inside the call
 * that started it. status 0 with out (valid during the callback only), or a negative code with
 * err (a person-readable reason) and out NULL. */
typedef void (*fv_rpc_done_cb)(int status, const ProtobufCMessage *out, const fv_error_t *err,
                               void *data);

/* Calls module's method with in (encoded now; the caller keeps in); out_type is the method's
 * answer type (as a gRPC stub knows it), which the answer is decoded with. deadline_ms 0 means
 * the default, 10 s; more than a day is clamped. Returns 0 (cb runs once, later: every failure of
 * the call itself, a module not served included, arrives there), or FV_EINVAL for missing
 * arguments (cb never runs). *out (may be NULL) is a handle for fv_rpc_cancel and
 * fv_rpc_req_answer_metadata, valid until cb returns. */
FV_MUST_USE int fv_rpc_call(fv_rpc_t *rpc, const char *module, const char *method,
                            const ProtobufCMessage *in,
                            const ProtobufCMessageDescriptor *out_type, uint32_t deadline_ms,
                            fv_rpc_done_cb cb, void *data, fv_rpc_req_t **out);
/* fv_rpc_call with flags: FV_RPC_IDEMPOTENT says the call may run more than once with the same
 * effect (a read, a "leave"), so a transport may repeat it on another instance, with backoff
 * within the deadline, after an instance answered UNAVAILABLE or its connection dropped with
 * the request sent. Without it, only attempts that certainly never reached a handler (refused
 * connection, refused stream) are repeated. The caller says so, as a gRPC client's retry
 * policy does. */
#define FV_RPC_IDEMPOTENT 1u
/* Set by the call layer (never by callers) when a transport is to hand over answer messages
 * one by one, as they come (fv_rpc_remote_message), instead of one answer. */
#define FV_RPC_SERVER_STREAM 2u
FV_MUST_USE int fv_rpc_call_ex(fv_rpc_t *rpc, const char *module, const char *method,
                               const ProtobufCMessage *in,
                               const ProtobufCMessageDescriptor *out_type, uint32_t deadline_ms,
                               unsigned flags, fv_rpc_done_cb cb, void *data,
                               fv_rpc_req_t **out);

/* Runs for each message of a server-streaming answer, from the loop, in order; msg is valid
 * during the callback only. The call may be cancelled from here. */
typedef void (*fv_rpc_message_cb)(const ProtobufCMessage *msg, void *data);

typedef struct fv_rpc_call_opts {
    uint32_t deadline_ms;          /* 0: the default, 10 s; for a stream, the whole stream's */
    unsigned flags;                /* FV_RPC_IDEMPOTENT */
    const fv_md_t *metadata;       /* request metadata (copied), NULL for none; the handler
                                    * reads it with fv_rpc_call_metadata, here or remote */
    fv_rpc_message_cb on_message;  /* set: a server-streaming call. Each answer message goes
                                    * here, and the done callback ends the call with out NULL.
                                    * A unary method answers one message. */
} fv_rpc_call_opts_t;

/* fv_rpc_call with options (opts NULL: the defaults). During the done callback the answer's
 * metadata is fv_rpc_req_answer_metadata(*out): what the handler added, here or in another
 * process (a remote peer's custom headers and trailers; when a peer answered with one header
 * block, gRPC's trailers-only answer of most errors, all of it is in the trailers). */
FV_MUST_USE int fv_rpc_call_with(fv_rpc_t *rpc, const char *module, const char *method,
                                 const ProtobufCMessage *in,
                                 const ProtobufCMessageDescriptor *out_type,
                                 const fv_rpc_call_opts_t *opts, fv_rpc_done_cb cb, void *data,
                                 fv_rpc_req_t **out);

/* The caller no longer wants the answer: its cb runs (later) with FV_ECANCELED, and the
 * handler, if it holds the call, gets its cancel callback. */
void fv_rpc_cancel(fv_rpc_req_t *req);

/* ---- answering (handler side) ---- */

/* Answers with out, which must be of the method's output type. After a call was cancelled or
 * timed out, or a second time, this is a no-op (logged at debug). The call stays readable
 * until the callback that answered it returns, and is gone after. */
void fv_rpc_reply(fv_rpc_call_t *call, const ProtobufCMessage *out);
/* Answers with an error: code is an FV_E code, the message a sentence for the caller. */
void fv_rpc_fail(fv_rpc_call_t *call, int code, const char *fmt, ...) FV_PRINTF(3, 4);

/* Runs (once) when the caller stops waiting before the handler answered: deadline, cancel or
 * close. After it returns the call is gone; drop every pointer to it. Without one, a call whose
 * caller stopped waiting stays valid until the handler answers (the answer is dropped) or the
 * rpc closes. */
typedef void (*fv_rpc_cancel_cb)(fv_rpc_call_t *call, void *data);
void fv_rpc_call_on_cancel(fv_rpc_call_t *call, fv_rpc_cancel_cb cb, void *data);

/* The request's custom metadata (fv_rpc_call_opts_t.metadata, or a gRPC client's). Valid
 * while the call is. */
const fv_md_t *fv_rpc_call_metadata(const fv_rpc_call_t *call);

/* Custom metadata for the answer: headers (sent before the message, or with the status of an
 * error) and trailers (sent with the status). Add them before answering; the caller reads them
 * with fv_rpc_req_answer_metadata, a gRPC client as headers and trailers. 0, FV_EINVAL (a
 * reserved or malformed name, a bad text value, or the call is answered already), FV_ETOOBIG
 * (over 8 KiB a list), FV_ENOMEM. */
FV_MUST_USE int fv_rpc_call_add_header(fv_rpc_call_t *call, const char *name, const void *value,
                                       size_t len);
FV_MUST_USE int fv_rpc_call_add_trailer(fv_rpc_call_t *call, const char *name,
                                        const void *value, size_t len);

/* The call's method name and its remaining time (0 when past). */
const char *fv_rpc_call_method(const fv_rpc_call_t *call);
uint64_t fv_rpc_call_remaining_ms(const fv_rpc_call_t *call);

/* ---- the transport seam ----
 *
 * A transport carries calls to modules this process does not serve. start() gets the encoded
 * request frame (valid during the call only) and must eventually report with
 * fv_rpc_remote_done(req, ...) exactly once, also after fv_rpc_remote_cancel reached it.
 * An incoming call from another process enters with fv_rpc_dispatch(). */
typedef struct fv_rpc_transport {
    int (*start)(void *data, fv_rpc_req_t *req, const char *module, const char *method,
                 const uint8_t *frame, size_t len, uint32_t deadline_ms, unsigned flags);
    void (*cancel)(void *data, fv_rpc_req_t *req);   /* may be NULL */
} fv_rpc_transport_t;

void fv_rpc_set_remote(fv_rpc_t *rpc, const fv_rpc_transport_t *t, void *data);

/* The request metadata of req, for a transport to send (valid while the transport holds req). */
const fv_md_t *fv_rpc_req_metadata(const fv_rpc_req_t *req);

/* A transport's answer metadata for req (copied; NULL for none), before fv_rpc_remote_done:
 * lists built with fv_md_add (rpc/metadata.h), as the caller will read them. */
void fv_rpc_remote_answer_metadata(fv_rpc_req_t *req, const fv_md_t *headers,
                                   const fv_md_t *trailers);

/* One message of a server-streaming answer (flags had FV_RPC_SERVER_STREAM), frame being one
 * whole length-prefixed message: decoded and handed to the caller's on_message at once.
 * Returns 0, or < 0 when the caller no longer wants messages (cancelled, or this one did not
 * decode: the call then ends FV_EINVAL and the transport's cancel is called). */
FV_MUST_USE int fv_rpc_remote_message(fv_rpc_req_t *req, const uint8_t *frame, size_t len);

/* A transport's answer for req: status 0 with the answer frame (for a server stream: no frame,
 * the messages having gone already), or a code and message. */
void fv_rpc_remote_done(fv_rpc_req_t *req, int status, const uint8_t *frame, size_t len,
                        const char *message);

/* A call that arrived from another process: runs module's method on the request frame, with
 * md (copied; NULL for none) as its request metadata, and calls done(status, answer frame,
 * message, data) once, from the loop, never inside this call
 * (answer valid during done only). Returns 0, or FV_EINVAL for missing arguments. *out (may be
 * NULL) is a handle for fv_rpc_cancel (the remote caller went away: done then runs with
 * FV_ECANCELED and the handler gets its cancel callback), valid until done starts. */
typedef void (*fv_rpc_dispatch_cb)(int status, const uint8_t *frame, size_t len,
                                   const char *message, void *data);
FV_MUST_USE int fv_rpc_dispatch(fv_rpc_t *rpc, const char *module, const char *method,
                                const uint8_t *frame, size_t len, const fv_md_t *md,
                                uint32_t deadline_ms, fv_rpc_dispatch_cb done, void *data,
                                fv_rpc_req_t **out);

/* During a call's done callback (a dispatched one's, or a caller's with the handle from
 * fv_rpc_call): the metadata added for the answer (empty lists when none, or when the call
 * failed before its handler). */
void fv_rpc_req_answer_metadata(const fv_rpc_req_t *req, const fv_md_t **headers,
                                const fv_md_t **trailers);

/* The service name module serves ("finalverse.world.v1.WorldService"), or NULL. Valid until
 * the rpc closes. */
const char *fv_rpc_service_of(const fv_rpc_t *rpc, const char *module);

/* ---- state ---- */

typedef struct fv_rpc_stats {
    uint64_t calls;             /* fv_rpc_call() accepted */
    uint64_t ok;                /* answered with status 0 */
    uint64_t failed;            /* every other outcome */
    uint64_t timeouts;          /* of which deadline passed */
    uint64_t unavailable;       /* of which no such module here (or quiesced, closing) */
    uint64_t latency_ns_sum;    /* call to callback, all outcomes */
    size_t in_flight;           /* calls made and not yet done, plus dispatched ones */
} fv_rpc_stats_t;

void fv_rpc_stats(const fv_rpc_t *rpc, fv_rpc_stats_t *out);
size_t fv_rpc_in_flight(const fv_rpc_t *rpc);

/* Calls still pending end with FV_ECANCELED (their handlers get the cancel callback), then
 * cb(data) runs from the loop and the rpc's memory is gone. Only the first call counts. */
void fv_rpc_close(fv_rpc_t *rpc, void (*cb)(void *data), void *data);

#endif
