/* bus_redis.c - the bus between processes: each publish goes to Redis once as an encoded
 * finalverse.events.v1.Envelope on channel "fv.bus.<channel>", and one pattern subscription
 * "fv.bus.*" per bus brings other processes' envelopes in for local delivery (bus.c). Its own
 * envelopes come back too (Redis does not know who published) and are skipped by origin id.
 * Not here: queues, matching, delivery order (bus.c). */
#include "bus/bus.h"

#include <inttypes.h>
#include <string.h>

#include "bus/bus_internal.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/time.h"
#include "proto/events.pb-c.h"

/* At most one log line per this interval for malformed envelopes (a peer speaking another
 * version must not flood the log) and for failed publishes (Redis down: every event fails). */
#define BAD_LOG_INTERVAL_MS 10000u
/* Envelope fields around the payload: names, ids, tags. */
#define ENVELOPE_OVERHEAD 64u
/* Envelopes up to this size are encoded on the stack. */
#define STACK_ENVELOPE 1024u

static void *pb_alloc(void *data, size_t len)
{
    return fv_try_malloc(len);
}

static void pb_free(void *data, void *p)
{
    fv_free(p);
}

/* Decoding goes through our allocator so that fault tests reach it. */
static ProtobufCAllocator pb_allocator = {pb_alloc, pb_free, NULL};

/* true when a warning may be logged now; else counts it as suppressed. */
static bool log_allowed(fv__bus_log_limit_t *l)
{
    uint64_t now = fv_now_ms();
    if (l->last_ms && now - l->last_ms < BAD_LOG_INTERVAL_MS) {
        l->suppressed++;
        return false;
    }
    l->last_ms = now ? now : 1;
    return true;
}

static void bad_envelope(fv_bus_t *bus, const char *why, size_t len)
{
    bus->stats.remote_bad++;
    fv__bus_log_limit_t *l = &bus->bad_log;
    uint64_t suppressed = l->suppressed;
    if (!log_allowed(l))
        return;
    l->suppressed = 0;
    if (suppressed)
        fv_log_warn("bus", "dropped envelope from redis: %s (%zu bytes); %" PRIu64
                    " more dropped since the last line", why, len, suppressed);
    else
        fv_log_warn("bus", "dropped envelope from redis: %s (%zu bytes)", why, len);
}

static bool valid_name(const char *s, bool allow_empty)
{
    size_t n = s ? strnlen(s, FV_BUS_MAX_NAME + 1) : 0;
    return (allow_empty || n > 0) && n <= FV_BUS_MAX_NAME;
}

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* Finds the Envelope's origin (field 4, fixed64) by walking the wire format, without decoding
 * the rest: every bus receives its own envelopes back from Redis, and skipping those costs no
 * allocation. false when the field is absent or the bytes are not well formed (the full decode
 * then decides). */
static bool peek_origin(fv_slice_t msg, uint64_t *origin)
{
    const uint8_t *p = (const uint8_t *)msg.ptr, *end = p + msg.len;
    while (p < end) {
        uint64_t key, n;
        if (!read_varint(&p, end, &key))
            return false;
        switch (key & 7) {
        case 0:
            if (!read_varint(&p, end, &n))
                return false;
            break;
        case 1:
            if (end - p < 8)
                return false;
            if (key >> 3 == 4) {
                uint64_t v = 0;
                for (int i = 7; i >= 0; i--)
                    v = (v << 8) | p[i];        /* little-endian on the wire */
                *origin = v;
                return true;
            }
            p += 8;
            break;
        case 2:
            if (!read_varint(&p, end, &n) || n > (uint64_t)(end - p))
                return false;
            p += n;
            break;
        case 5:
            if (end - p < 4)
                return false;
            p += 4;
            break;
        default:
            return false;
        }
    }
    return false;
}

void fv__bus_redis_receive(fv_bus_t *bus, fv_slice_t channel, fv_slice_t msg)
{
    if (msg.len > bus->max_event_bytes + ENVELOPE_OVERHEAD) {
        bad_envelope(bus, "too big", msg.len);
        return;
    }
    uint64_t origin;
    if (peek_origin(msg, &origin) && origin == bus->origin)
        return;
    Finalverse__Events__V1__Envelope *env = finalverse__events__v1__envelope__unpack(
        &pb_allocator, msg.len, (const uint8_t *)msg.ptr);
    if (!env) {
        bad_envelope(bus, "not an Envelope (or out of memory)", msg.len);
        return;
    }
    fv_slice_t prefix = FV_SLICE_LIT(FV_BUS_REDIS_PREFIX);
    if (!valid_name(env->channel, false) || strchr(env->channel, '*') ||
        !valid_name(env->type, false) || !valid_name(env->coalesce_key, true)) {
        bad_envelope(bus, "bad channel, type or key", msg.len);
    } else if (channel.len != prefix.len + strlen(env->channel) ||
               memcmp(channel.ptr + prefix.len, env->channel, channel.len - prefix.len) != 0) {
        bad_envelope(bus, "channel does not match the redis channel", msg.len);
    } else if (env->origin != bus->origin) {
        fv_bus_event_t ev = {
            .channel = fv_slice_cstr(env->channel),
            .type = fv_slice_cstr(env->type),
            .payload = fv_slice((const char *)env->payload.data, env->payload.len),
            .coalesce_key = fv_slice_cstr(env->coalesce_key),
            .origin = env->origin,
            .seq = env->sequence,
            .time_ms = env->time_ms,
        };
        if (fv__bus_dispatch_remote(bus, &ev) < 0)
            bad_envelope(bus, "out of memory", msg.len);
        else
            bus->stats.remote_in++;
    }
    finalverse__events__v1__envelope__free_unpacked(env, &pb_allocator);
}

static void on_message(fv_kv_sub_t *ksub, fv_kv_sub_event_t event, fv_slice_t channel,
                       fv_slice_t msg, void *data)
{
    fv_bus_t *bus = data;
    switch (event) {
    case FV_KV_SUB_READY:
        if (!bus->stats.remote_ready)
            fv_log_info("bus", "redis subscription %s* ready", FV_BUS_REDIS_PREFIX);
        bus->stats.remote_ready = true;
        break;
    case FV_KV_SUB_LOST:
        if (bus->stats.remote_ready)
            fv_log_warn("bus", "redis subscription lost; events from other processes are "
                        "missed until it is back");
        bus->stats.remote_ready = false;
        break;
    case FV_KV_SUB_MESSAGE:
        fv__bus_redis_receive(bus, channel, msg);
        break;
    }
}

int fv__bus_redis_start(fv_bus_t *bus)
{
    return fv_kv_psubscribe(bus->kv, FV_SLICE_LIT(FV_BUS_REDIS_PREFIX "*"), on_message, bus,
                            &bus->ksub);
}

void fv__bus_redis_stop(fv_bus_t *bus)
{
    fv_kv_unsubscribe(bus->ksub);
    bus->ksub = NULL;
    bus->stats.remote_ready = false;
}

static void on_sent(fv_kv_t *kv, int status, const fv_kv_reply_t *reply, void *data)
{
    fv_bus_t *bus = data;
    bus->sends_in_flight--;
    if (status < 0) {
        bus->stats.remote_send_errors++;
        uint64_t suppressed = bus->send_log.suppressed;
        if (log_allowed(&bus->send_log)) {
            bus->send_log.suppressed = 0;
            fv_log_warn("bus", "redis publish failed: %s; other processes miss the event (%"
                        PRIu64 " more since the last line)", fv_strerror(status), suppressed);
        }
    }
    fv__bus_maybe_finish(bus);
}

int fv__bus_redis_send(fv_bus_t *bus, const fv_bus_event_t *ev)
{
    /* The publisher's strings are NUL-terminated (bus.c checked them), so they go in as is. */
    Finalverse__Events__V1__Envelope env = FINALVERSE__EVENTS__V1__ENVELOPE__INIT;
    env.channel = (char *)ev->channel.ptr;
    env.type = (char *)ev->type.ptr;
    env.payload.data = (uint8_t *)ev->payload.ptr;
    env.payload.len = ev->payload.len;
    env.origin = ev->origin;
    env.sequence = ev->seq;
    env.time_ms = ev->time_ms;
    if (ev->coalesce_key.len)
        env.coalesce_key = (char *)ev->coalesce_key.ptr;

    char chan[sizeof(FV_BUS_REDIS_PREFIX) + FV_BUS_MAX_NAME];
    size_t plen = sizeof(FV_BUS_REDIS_PREFIX) - 1;
    memcpy(chan, FV_BUS_REDIS_PREFIX, plen);
    memcpy(chan + plen, ev->channel.ptr, ev->channel.len);

    uint8_t stack[STACK_ENVELOPE];
    size_t len = finalverse__events__v1__envelope__get_packed_size(&env);
    uint8_t *buf = len <= sizeof(stack) ? stack : fv_try_malloc(len);
    if (!buf)
        return FV_ENOMEM;
    finalverse__events__v1__envelope__pack(&env, buf);
    int rc = fv_kv_publish(bus->kv, fv_slice(chan, plen + ev->channel.len),
                           fv_slice((const char *)buf, len), on_sent, bus);
    if (buf != stack)
        fv_free(buf);
    if (rc < 0)
        return rc;
    bus->sends_in_flight++;
    bus->stats.remote_out++;
    return 0;
}
