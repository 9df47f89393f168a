/* grpc_reflection.c - the reflection service over the built-in descriptor set (see
 * grpc_reflection.h). One answer per request, in order; an answer the stream's queue refuses
 * waits (reading paused) until the client has read, so a client that sends requests without
 * reading holds one answer and one window of ours. */
#include "net/grpc_reflection.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"
#include "net/grpc_descset.h"
#include "net/grpc_wire.h"

#define REFL_SERVICE "grpc.reflection.v1alpha.ServerReflection"
#define REFL_MAX_FILES 64u           /* a file and its imports in one answer */
#define REFL_MAX_SERVICES 64u

extern const uint8_t fv__grpc_descriptor_set[];
extern const size_t fv__grpc_descriptor_set_len;

/* The built-in set, indexed once for the process (it is constant) on first use. */
static fv_descset_t *descset;

typedef struct refl {
    fv_grpc_server_t *g;
    fv_grpc_stream_t *s;
    uint8_t *pending;               /* an answer the queue refused, sent on writable */
    size_t pending_len;
    bool ended;                     /* the client's side ended: finish once nothing waits */
} refl_t;

typedef Grpc__Reflection__V1alpha__ServerReflectionRequest refl_req_t;
typedef Grpc__Reflection__V1alpha__ServerReflectionResponse refl_resp_t;

static void refl_end(refl_t *r, int grpc_status, const char *msg)
{
    fv_grpc_stream_finish_status(r->s, grpc_status, msg);
    fv_free(r->pending);
    fv_free(r);
}

typedef struct svc_list {
    Grpc__Reflection__V1alpha__ServiceResponse items[REFL_MAX_SERVICES];
    Grpc__Reflection__V1alpha__ServiceResponse *ptrs[REFL_MAX_SERVICES];
    size_t n;
} svc_list_t;

static void add_service(const char *service, void *data)
{
    svc_list_t *l = data;
    if (l->n == REFL_MAX_SERVICES)
        return;
    Grpc__Reflection__V1alpha__ServiceResponse init =
        GRPC__REFLECTION__V1ALPHA__SERVICE_RESPONSE__INIT;
    l->items[l->n] = init;
    l->items[l->n].name = (char *)service;
    l->ptrs[l->n] = &l->items[l->n];
    l->n++;
}

/* The answer to req, packed into *out (the caller frees). 0 or FV_ENOMEM. */
static int answer(refl_t *r, const refl_req_t *req, uint8_t **out, size_t *len)
{
    refl_resp_t resp = GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__INIT;
    resp.valid_host = req->host;
    resp.original_request = (refl_req_t *)req;
    Grpc__Reflection__V1alpha__ErrorResponse err = GRPC__REFLECTION__V1ALPHA__ERROR_RESPONSE__INIT;
    Grpc__Reflection__V1alpha__FileDescriptorResponse files =
        GRPC__REFLECTION__V1ALPHA__FILE_DESCRIPTOR_RESPONSE__INIT;
    Grpc__Reflection__V1alpha__ExtensionNumberResponse ext =
        GRPC__REFLECTION__V1ALPHA__EXTENSION_NUMBER_RESPONSE__INIT;
    Grpc__Reflection__V1alpha__ListServiceResponse list =
        GRPC__REFLECTION__V1ALPHA__LIST_SERVICE_RESPONSE__INIT;
    ProtobufCBinaryData blobs[REFL_MAX_FILES];
    size_t idx[REFL_MAX_FILES];
    svc_list_t *svcs = NULL;
    char text[160] = "";
    long file = -1;

    switch (req->message_request_case) {
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
        svcs = fv_calloc(1, sizeof(*svcs));
        fv_grpc_server_services(r->g, add_service, svcs);
        list.service = svcs->ptrs;
        list.n_service = svcs->n;
        resp.message_response_case =
            GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
        resp.list_services_response = &list;
        break;
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
        file = fv_descset_find_file(descset, req->file_by_filename);
        if (file < 0)
            snprintf(text, sizeof(text), "no file %.100s", req->file_by_filename);
        break;
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
        file = fv_descset_find_symbol(descset, req->file_containing_symbol);
        if (file < 0)
            snprintf(text, sizeof(text), "no symbol %.100s", req->file_containing_symbol);
        break;
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
        if (fv_descset_is_message(descset, req->all_extension_numbers_of_type)) {
            ext.base_type_name = req->all_extension_numbers_of_type;
            resp.message_response_case =
                GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
            resp.all_extension_numbers_response = &ext;
        } else {
            snprintf(text, sizeof(text), "no message type %.100s",
                     req->all_extension_numbers_of_type);
        }
        break;
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
        snprintf(text, sizeof(text), "no extensions are declared here");
        break;
    default:
        snprintf(text, sizeof(text), "an empty or unknown request");
        break;
    }
    if (file >= 0) {
        size_t n = fv_descset_closure(descset, (size_t)file, idx, REFL_MAX_FILES);
        for (size_t i = 0; i < n; i++) {
            fv_slice_t b = fv_descset_bytes(descset, idx[i]);
            blobs[i] = (ProtobufCBinaryData){b.len, (uint8_t *)b.ptr};
        }
        files.file_descriptor_proto = blobs;
        files.n_file_descriptor_proto = n;
        resp.message_response_case =
            GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
        resp.file_descriptor_response = &files;
    } else if (text[0]) {
        bool unknown = req->message_request_case ==
                       GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST__NOT_SET;
        err.error_code = unknown ? FV_GRPC_INVALID_ARGUMENT : FV_GRPC_NOT_FOUND;
        err.error_message = text;
        resp.message_response_case =
            GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
        resp.error_response = &err;
    }
    *len = protobuf_c_message_get_packed_size(&resp.base);
    *out = fv_try_malloc(*len ? *len : 1);
    if (*out)
        protobuf_c_message_pack(&resp.base, *out);
    fv_free(svcs);
    return *out ? 0 : FV_ENOMEM;
}

/* Sends the waiting answer, then finishes or reads on. r may be gone after. */
static void flush(refl_t *r)
{
    if (r->pending) {
        int rc = fv_grpc_stream_send(r->s, r->pending, r->pending_len);
        if (rc == FV_EAGAIN) {
            fv_grpc_stream_pause(r->s, true);
            return;
        }
        if (rc == FV_ECANCELED)
            return;                      /* on_cancel frees */
        fv_free(r->pending);
        r->pending = NULL;
        if (rc < 0) {
            refl_end(r, FV_GRPC_INTERNAL, fv_strerror(rc));
            return;
        }
    }
    if (r->ended) {
        refl_end(r, FV_GRPC_OK, NULL);
        return;
    }
    fv_grpc_stream_pause(r->s, false);
}

static void on_message(fv_grpc_stream_t *s, const uint8_t *msg, size_t len, void *data)
{
    refl_t *r = data;
    refl_req_t *req = grpc__reflection__v1alpha__server_reflection_request__unpack(NULL, len, msg);
    if (!req) {
        refl_end(r, FV_GRPC_INVALID_ARGUMENT, "not a ServerReflectionRequest");
        return;
    }
    int rc = answer(r, req, &r->pending, &r->pending_len);
    grpc__reflection__v1alpha__server_reflection_request__free_unpacked(req, NULL);
    if (rc < 0) {
        refl_end(r, FV_GRPC_RESOURCE_EXHAUSTED, fv_strerror(rc));
        return;
    }
    flush(r);
}

static void on_half_close(fv_grpc_stream_t *s, void *data)
{
    refl_t *r = data;
    r->ended = true;
    flush(r);
}

static void on_writable(fv_grpc_stream_t *s, void *data)
{
    flush(data);
}

static void on_cancel(fv_grpc_stream_t *s, void *data)
{
    refl_t *r = data;
    fv_free(r->pending);
    fv_free(r);
}

static const fv_grpc_stream_cbs_t refl_cbs = {
    .on_cancel = on_cancel, .on_writable = on_writable,
    .on_message = on_message, .on_half_close = on_half_close,
};

static void on_open(fv_grpc_stream_t *s, void *data)
{
    refl_t *r = fv_calloc(1, sizeof(*r));
    r->g = data;
    r->s = s;
    fv_grpc_stream_set_cbs(s, &refl_cbs, r);
}

int fv_grpc_reflection_serve(fv_grpc_server_t *g)
{
    if (!descset &&
        fv_descset_parse(fv__grpc_descriptor_set, fv__grpc_descriptor_set_len, &descset) < 0)
        return FV_EINVAL;
    return fv_grpc_server_bidi_method(g, REFL_SERVICE, "ServerReflectionInfo", on_open, g);
}
