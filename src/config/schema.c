/* schema.c - the key table behind finalverse.toml (see schema.h) and the environment variable
 * naming rule. Ranges are sanity bounds that catch typos (a timeout in seconds where ms are
 * meant, a size with a missing zero), not tuning advice; the defaults are the tuning advice. */
#include "config/schema.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "core/alloc.h"
#include "core/token.h"
#include "runtime/modules.h"

#define OFF(member) offsetof(fv_config_t, member)

#define STR(sec, k, member, def, d)                                                   \
    {.section = sec, .key = k, .type = FV_CFG_T_STR, .offset = OFF(member),           \
     .def_str = def, .doc = d}
#define SECRET(sec, k, member, d)                                                     \
    {.section = sec, .key = k, .type = FV_CFG_T_STR, .offset = OFF(member),           \
     .def_str = "", .doc = d, .secret = true}
#define NUM(t, sec, k, member, lo, hi, def, d)                                        \
    {.section = sec, .key = k, .type = t, .offset = OFF(member), .min = lo, .max = hi, \
     .def_num = def, .doc = d}
#define INT(sec, k, member, lo, hi, def, d) NUM(FV_CFG_T_INT, sec, k, member, lo, hi, def, d)
#define U32(sec, k, member, lo, hi, def, d) NUM(FV_CFG_T_U32, sec, k, member, lo, hi, def, d)
#define MS(sec, k, member, lo, hi, def, d) NUM(FV_CFG_T_MS, sec, k, member, lo, hi, def, d)
#define SIZE(sec, k, member, lo, hi, def, d) NUM(FV_CFG_T_SIZE, sec, k, member, lo, hi, def, d)
#define U64(sec, k, member, lo, hi, def, d) NUM(FV_CFG_T_U64, sec, k, member, lo, hi, def, d)
#define BOOL(sec, k, member, def, d) NUM(FV_CFG_T_BOOL, sec, k, member, 0, 1, def, d)

/* Upper bounds: one day for durations, 1 TiB for sizes, a million for counts. */
#define DAY_MS 86400000LL
#define KIB 1024LL
#define MIB (1024LL * 1024)
#define GIB (1024LL * 1024 * 1024)
#define TIB (1024LL * GIB)
#define MILLION 1000000LL

#define SERVICE(idx, name, port_doc)                                                  \
    INT("services." name, "port", services[idx].port, 0, 65535, 0,                    \
        "listen port; 0 = " port_doc),                                                \
    BOOL("services." name, "enabled", services[idx].enabled, 1,                       \
         "false: `finalverse up` does not start this module")

static const fv_cfg_field_t global_fields[] = {
    STR("general", "data_dir", general.data_dir, "./data",
        "directory for the SQLite database, blobs and other local state"),
    STR("general", "log_level", general.log_level, "info", "one of error, warn, info, debug"),
    STR("general", "log_format", general.log_format, "text", "text or json (one object a line)"),
    STR("general", "bind", general.bind, "127.0.0.1",
        "listen address of every component (0.0.0.0 for all interfaces)"),
    STR("general", "advertise", general.advertise, "",
        "address registered with the registry; empty = the bind address"),
    INT("general", "port_base", general.port_base, 0, 65535, 0,
        "0 = default ports; N = every component listens on N + its index (0..13)"),
    MS("general", "drain_timeout_ms", general.drain_timeout_ms, 0, DAY_MS, 10000,
       "graceful shutdown deadline before connections are cut"),

    STR("registry", "url", registry.url, "",
        "empty = the local service-registry component; else http://host:port"),
    MS("registry", "ttl_ms", registry.ttl_ms, 1, DAY_MS, 10000,
       "health-check TTL given when registering"),
    MS("registry", "heartbeat_interval_ms", registry.heartbeat_interval_ms, 1, DAY_MS, 3000,
       "how often a registered instance renews its TTL"),
    MS("registry", "deregister_after_ms", registry.deregister_after_ms, 1, DAY_MS, 30000,
       "an instance critical this long is removed"),
    MS("registry", "retry_max_ms", registry.retry_max_ms, 1, DAY_MS, 5000,
       "backoff ceiling while the registry is unreachable"),
    SECRET("registry", "token", registry.token,
           "token the modules send (X-Consul-Token) and the registry grants full write; empty = "
           "generated into general.data_dir/registry/token"),
    SECRET("registry", "acl_tokens", registry.acl_tokens,
           "more tokens: \"<secret>=<rule>,...;...\", rules read, write, service:write:<name>, "
           "service:write:<prefix>*"),
    STR("registry", "acl_default_policy", registry.acl_default_policy, "allow",
        "allow or deny: what a request without a token may do; deny is required off loopback"),
    U32("registry", "max_blocking_queries", registry.max_blocking_queries, 1, MILLION, 10000,
        "blocking queries (?index=) the registry holds at once; more get 429"),
    U32("registry", "max_blocking_queries_per_client", registry.max_blocking_queries_per_client,
        1, MILLION, 512, "blocking queries held for one client address; more get 429"),

    SIZE("http", "max_header_bytes", http.max_header_bytes, 256, 64 * MIB, 16384,
         "request line plus headers; more gets 431"),
    SIZE("http", "max_body_bytes", http.max_body_bytes, 0, 64 * GIB, 1048576,
         "request body; more gets 413"),
    MS("http", "header_timeout_ms", http.header_timeout_ms, 1, DAY_MS, 10000,
       "time allowed to receive the request headers"),
    MS("http", "body_timeout_ms", http.body_timeout_ms, 1, DAY_MS, 30000,
       "time allowed to receive the request body"),
    MS("http", "idle_timeout_ms", http.idle_timeout_ms, 1, DAY_MS, 60000,
       "keep-alive connection closed after this long without a request"),
    U32("http", "max_connections", http.max_connections, 1, 10 * MILLION, 10000,
        "open connections per listener; more are refused"),
    SIZE("http", "max_output_bytes", http.max_output_bytes, 4096, 1 * GIB, 1048576,
         "response bytes queued per connection before it stops reading requests"),
    U32("http", "max_connections_per_client", http.max_connections_per_client, 0,
        10 * MILLION, 0, "open connections from one IP address; more are refused; 0 = no limit"),
    SIZE("http", "max_buffered_body_bytes", http.max_buffered_body_bytes, 1024, TIB, 268435456,
         "request body bytes buffered by the whole process; past it 503, try again"),

    SIZE("grpc", "max_message_bytes", grpc.max_message_bytes, 16, 1 * GIB, 4194304,
         "largest gRPC request message; more gets RESOURCE_EXHAUSTED"),
    U32("grpc", "max_concurrent_streams", grpc.max_concurrent_streams, 1, 1 * MILLION, 100,
        "HTTP/2 streams open at once on one connection"),
    U32("grpc", "max_resets_per_second", grpc.max_resets_per_second, 1, 1 * MILLION, 200,
        "stream resets a client may send per second before its connection is ended"),
    MS("grpc", "connect_timeout_ms", grpc.connect_timeout_ms, 100, 600000, 3000,
       "calls to other processes: a connection not made by then is given up"),
    MS("grpc", "keepalive_ms", grpc.keepalive_ms, 100, 3600000, 5000,
       "calls to other processes: a connection with calls under way and silent this long gets "
       "a PING, and is given up when that stays unanswered as long again"),
    BOOL("grpc", "probe_service", grpc.probe_service, 0,
         "true: every module also serves finalverse.testing.v1.Probe (for tests)"),
    BOOL("grpc", "interop_service", grpc.interop_service, 0,
         "true: every module also serves grpc.testing.TestService (interop checks)"),

    {.section = "auth", .key = "jwt_secret", .type = FV_CFG_T_STR, .offset = OFF(auth.jwt_secret),
     .def_str = FV_TOKEN_PLACEHOLDER_SECRET, .secret = true,
     .doc = "HS256 key of access tokens, 32 bytes or more; the placeholder is refused when "
            "general.bind is beyond loopback"},
    MS("auth", "access_ttl_ms", auth.access_ttl_ms, 1000, DAY_MS, 900000,
       "lifetime of an access token"),
    U32("auth", "lockout_failures", auth.lockout_failures, 0, 1000, 5,
        "failed logins of one account within lockout_window_ms that lock it (429); 0: off"),
    U32("auth", "lockout_ip_failures", auth.lockout_ip_failures, 1, 100000, 10,
        "failed logins from one IP within lockout_window_ms that lock it out"),
    MS("auth", "lockout_window_ms", auth.lockout_window_ms, 1000, DAY_MS, 900000,
       "how long failed logins count (from the first of them)"),
    MS("auth", "refresh_ttl_ms", auth.refresh_ttl_ms, 60000, 45 * DAY_MS, 30 * DAY_MS,
       "lifetime of a refresh token (each refresh gives a new one for as long again)"),
    U32("auth", "password_opslimit", auth.password_opslimit, 1, 10, 3,
        "argon2id passes over memory per password hash"),
    SIZE("auth", "password_memlimit_bytes", auth.password_memlimit_bytes, 8 * KIB, 1 * GIB,
         67108864, "argon2id memory per password hash"),
    U32("auth", "max_hashing", auth.max_hashing, 1, 10000, 64,
        "password hashes queued or running at once; more get 503, try again"),
    U32("auth", "max_parallel_hashes", auth.max_parallel_hashes, 1, 1024, 2,
        "of those, hashes running at once on libuv's thread pool, which SQLite and file storage "
        "share: keep it below the pool size (4 unless UV_THREADPOOL_SIZE is set)"),

#define FV_MODULE_SERVICE(idx, id, sym, name, port, role)                               \
    SERVICE(FV_MOD_##id, name, #port ", or general.port_base + " #idx),
    FV_MODULE_LIST(FV_MODULE_SERVICE)
#undef FV_MODULE_SERVICE

    STR("database", "url", database.url, "sqlite:finalverse.db",
        "sqlite:<path> (relative: under general.data_dir) or postgres://user:pass@host:port/db"),
    U32("database", "pool_size", database.pool_size, 1, 1024, 4,
        "connections (or SQLite handles) kept open"),

    STR("redis", "url", redis.url, "memory:?snapshot=kv.snap",
        "memory:[?snapshot=<path under general.data_dir>] or redis://host:port/db"),

    STR("vector", "url", vector.url, "embedded:",
        "embedded: (in-process), qdrant://host:port or http(s)://host:port"),

    STR("storage", "url", storage.url, "file:blobs",
        "file:<dir> (relative: under general.data_dir) or s3://bucket?endpoint=http://h:9000"),
    SECRET("storage", "access_key", storage.access_key, "S3 access key (secret)"),
    SECRET("storage", "secret_key", storage.secret_key, "S3 secret key (secret)"),
    SIZE("storage", "max_object_bytes", storage.max_object_bytes, 1, TIB, 67108864,
         "largest object accepted for upload"),

    U64("world", "seed", world.seed, 0, INT64_MAX, 42, "seed of world generation"),
    U32("world", "regions_x", world.regions_x, 1, 1024, 3, "world width in regions"),
    U32("world", "regions_y", world.regions_y, 1, 1024, 3, "world height in regions"),
    U32("world", "tick_hz", world.tick_hz, 1, 1000, 10, "world state updates per second"),
    U32("world", "sim_hz", world.sim_hz, 1, 1000, 1, "slow simulation steps per second"),
};

#define GLOBAL_COUNT (sizeof(global_fields) / sizeof(global_fields[0]))

static fv_cfg_field_t *all_fields;
static size_t all_count;

/* A module's settings either make a section of their own (settings_section "gateway") or extend
 * the module's own [services.<name>] section (settings_section "services.world-engine"), where
 * port and enabled already are: a section must be one block, or files and `show` would list it
 * twice. */
static bool extends_services(const fv_module_t *d)
{
    return d->settings_section && strncmp(d->settings_section, "services.", 9) == 0;
}

static size_t put_module_fields(size_t n, int m)
{
    const fv_module_t *d = fv__modules_builtin(m);
    for (size_t k = 0; k < d->settings_count; k++) {
        all_fields[n] = d->settings[k];
        all_fields[n].section = d->settings_section;
        all_fields[n].owner = m + 1;
        n++;
    }
    return n;
}

/* The module sections go just before the [services.*] rows: after the process-wide sections
 * they stand beside. Built once from the modules' own descriptors (not a test's override), and
 * kept for the life of the process. */
static void assemble(void)
{
    size_t total = GLOBAL_COUNT, n = 0;
    for (int m = 0; m < FV_MOD_COUNT; m++)
        total += fv__modules_builtin(m)->settings_count;
    all_fields = fv_calloc(total, sizeof(*all_fields));
    bool placed = false;
    for (size_t i = 0; i < GLOBAL_COUNT; i++) {
        const char *sec = global_fields[i].section;
        if (!placed && strncmp(sec, "services.", 9) == 0) {
            placed = true;
            for (int m = 0; m < FV_MOD_COUNT; m++)
                if (!extends_services(fv__modules_builtin(m)))
                    n = put_module_fields(n, m);
        }
        all_fields[n++] = global_fields[i];
        /* the last row of a [services.<name>] block: the module's own keys follow */
        if (i + 1 < GLOBAL_COUNT && strcmp(global_fields[i + 1].section, sec) == 0)
            continue;
        for (int m = 0; m < FV_MOD_COUNT; m++) {
            const fv_module_t *d = fv__modules_builtin(m);
            if (extends_services(d) && strcmp(d->settings_section, sec) == 0)
                n = put_module_fields(n, m);
        }
    }
    all_count = n;
}

const fv_cfg_field_t *fv_config_fields(size_t *count)
{
    if (!all_fields)
        assemble();
    if (count)
        *count = all_count;
    return all_fields;
}

size_t fv_config_field_count(void)
{
    size_t n;
    fv_config_fields(&n);
    return n;
}

static const struct {
    const char *name;
    const char *doc;
} section_docs[] = {
    {"general", "process-wide settings"},
    {"registry", "service registration and discovery"},
    {"http", "limits and timeouts of every HTTP listener"},
    {"grpc", "gRPC (h2c) on every module's port"},
    {"auth", "player accounts and access tokens"},
    {"database", "relational store"},
    {"redis", "key-value store and pub/sub"},
    {"vector", "vector store for similarity search"},
    {"storage", "blob storage for assets"},
    {"world", "world shape and pace"},
};

const char *fv_config_section_doc(const char *section)
{
    if (strncmp(section, "services.", 9) == 0) {
        int idx = fv_component_index(section + 9);
        return idx >= 0 ? fv_components[idx].role : "";
    }
    for (size_t i = 0; i < sizeof(section_docs) / sizeof(section_docs[0]); i++)
        if (strcmp(section_docs[i].name, section) == 0)
            return section_docs[i].doc;
    /* a module's own section: "settings of the api-gateway module" */
    static char docs[FV_MOD_COUNT][96];
    for (int m = 0; m < FV_MOD_COUNT; m++) {
        const fv_module_t *d = fv__modules_builtin(m);
        if (d->settings_section && strcmp(d->settings_section, section) == 0) {
            if (!docs[m][0])
                snprintf(docs[m], sizeof(docs[m]), "settings of the %s module (%s)", d->name,
                         fv_components[m].role);
            return docs[m];
        }
    }
    return "";
}

int fv_config_env_name(const fv_cfg_field_t *f, char *out, size_t out_len)
{
    static const char prefix[] = "FINALVERSE_";
    size_t n = 0;
    const char *parts[] = {prefix, f->section, "__", f->key};
    for (size_t p = 0; p < 4; p++) {
        for (const char *s = parts[p]; *s; s++) {
            if (*s == '.') {
                if (n + 2 >= out_len)
                    return FV_ETOOBIG;
                out[n++] = '_';
                out[n++] = '_';
                continue;
            }
            if (n + 1 >= out_len)
                return FV_ETOOBIG;
            out[n++] = *s == '-' ? '_' : (char)toupper((unsigned char)*s);
        }
    }
    out[n] = '\0';
    return 0;
}

size_t fv_config_url_password(const char *url, size_t *start)
{
    const char *auth = strstr(url, "://");
    if (!auth)
        return 0;
    auth += 3;
    size_t auth_len = strcspn(auth, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < auth_len; i++)
        if (auth[i] == '@')
            at = auth + i;
    if (!at)
        return 0;
    const char *colon = memchr(auth, ':', (size_t)(at - auth));
    if (!colon || colon + 1 == at)
        return 0;
    *start = (size_t)(colon + 1 - url);
    return (size_t)(at - colon - 1);
}
