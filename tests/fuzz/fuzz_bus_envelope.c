/* fuzz_bus_envelope.c - what another process may put on fv.bus.*: arbitrary bytes handed to
 * the bus as a message from its Redis subscription. The first byte picks the Redis channel:
 * even, a fixed one (most inputs are then dropped for the mismatch, after decoding); odd, the
 * channel the bytes claim when they decode as an Envelope, so the checks and the local delivery
 * behind the match are reached. Delivered events must be well formed; nothing may crash or
 * leak (the bus is closed at exit). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "bus/bus.h"
#include "bus/bus_internal.h"
#include "proto/events.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uv_loop_t loop;
static fv_bus_t *bus;

static void on_event(fv_bus_sub_t *sub, const fv_bus_event_t *ev, void *data)
{
    if (ev->channel.len == 0 || ev->channel.len > FV_BUS_MAX_NAME ||
        ev->channel.ptr[ev->channel.len] != '\0' || memchr(ev->channel.ptr, '*', ev->channel.len) ||
        ev->type.len == 0 || ev->type.len > FV_BUS_MAX_NAME ||
        ev->coalesce_key.len > FV_BUS_MAX_NAME || ev->origin == fv_bus_origin(bus))
        abort();
    if (ev->payload.len)
        (void)((volatile const char *)ev->payload.ptr)[ev->payload.len - 1];
}

static void on_closed(void *data)
{
}

static void finish(void)
{
    fv_bus_close(bus, on_closed, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!bus) {
        uv_loop_init(&loop);
        fv_bus_opts_t o = {.max_event_bytes = 4096, .queue_count = 4};
        fv_bus_sub_t *sub;
        if (fv_bus_new(&loop, &o, &bus) < 0 ||
            fv_bus_subscribe(bus, "*", NULL, on_event, NULL, &sub) < 0)
            abort();
        atexit(finish);
    }
    if (size < 1)
        return 0;
    fv_slice_t msg = {(const char *)data + 1, size - 1};
    char chan[8 + 300] = FV_BUS_REDIS_PREFIX "fuzz";
    if (data[0] & 1) {
        Finalverse__Events__V1__Envelope *env =
            finalverse__events__v1__envelope__unpack(NULL, msg.len, (const uint8_t *)msg.ptr);
        if (env) {
            if (env->channel && strlen(env->channel) < 300)
                strcpy(chan + sizeof(FV_BUS_REDIS_PREFIX) - 1, env->channel);
            finalverse__events__v1__envelope__free_unpacked(env, NULL);
        }
    }
    fv__bus_redis_receive(bus, fv_slice_cstr(chan), msg);
    uv_run(&loop, UV_RUN_NOWAIT);
    return 0;
}
