/* config.h - finalverse.toml: the typed configuration every module starts from.
 *
 * Loading order: built-in defaults, then the TOML file (when one is given or ./finalverse.toml
 * exists), then environment overrides FINALVERSE_<SECTION>__<KEY> (dots in a section path and
 * hyphens in names become "__" and "_": services.song-engine.port is
 * FINALVERSE_SERVICES__SONG_ENGINE__PORT), then FINALVERSE_LOG_LEVEL,
 * then command-line overrides (--port-base). Then validation. Modules declare their own
 * sections in their descriptors (src/runtime/module.h); those load the same way.
 *
 * Refused, with "file:line: key: reason" in err: a wrong type, a value out of range, an unknown
 * section or key, malformed TOML, an unknown FINALVERSE_*__* variable, two components on one
 * port. Environment errors name the variable instead of a file and line.
 *
 * The struct is read-only after fv_config_load() returns; nobody calls getenv() later. */
#ifndef FV_CONFIG_CONFIG_H
#define FV_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "runtime/module_list.h"

typedef struct fv_service_config {
    int port;              /* 0 = from port_base / the default table; see fv_config_port() */
    bool enabled;          /* false: `up` skips it */
} fv_service_config_t;

/* What every process reads. The default of each key is in the schema (schema.c, or the
 * declaring module's settings table), and only there; `finalverse config example` lists them. */
typedef struct fv_config {
    char *source;          /* the file read, or "(defaults)"; owned */

    struct {
        char *data_dir;            /* SQLite database, blobs and other local state */
        char *log_level;           /* error|warn|info|debug */
        char *log_format;          /* text|json */
        char *bind;                /* listen address for every component */
        char *advertise;           /* address registered with the registry; = bind when empty */
        int port_base;             /* 0 = default ports; else N + component index */
        uint32_t drain_timeout_ms; /* graceful shutdown deadline */
    } general;

    struct {
        char *url;                        /* "" = the local registry (its port); else http://h:p */
        uint32_t ttl_ms;                  /* check TTL given at register */
        uint32_t heartbeat_interval_ms;
        uint32_t deregister_after_ms;     /* critical this long -> removed */
        uint32_t retry_max_ms;            /* backoff ceiling when the registry is down */
        char *token;                      /* what this process's modules send; secret */
        char *acl_tokens;                 /* "<secret>=<rules>;..." the registry accepts */
        char *acl_default_policy;         /* allow|deny, for requests without a token */
        uint32_t max_blocking_queries;    /* held at once by the registry */
        uint32_t max_blocking_queries_per_client;
    } registry;

    struct {
        size_t max_header_bytes;
        size_t max_body_bytes;
        uint32_t header_timeout_ms;
        uint32_t body_timeout_ms;
        uint32_t idle_timeout_ms;
        uint32_t max_connections;
        size_t max_output_bytes;             /* per-connection queued output ceiling */
        uint32_t max_connections_per_client; /* 0 = no limit */
        size_t max_buffered_body_bytes;      /* request bodies buffered by the process */
    } http;

    struct {
        size_t max_message_bytes;         /* a request message; more: RESOURCE_EXHAUSTED */
        uint32_t max_concurrent_streams;  /* per HTTP/2 connection */
        uint32_t max_resets_per_second;   /* client stream resets before GOAWAY */
        uint32_t connect_timeout_ms;      /* our client: a connect given up after this */
        uint32_t keepalive_ms;            /* our client: silence before a PING, and its wait */
        bool probe_service;               /* serve finalverse.testing.v1.Probe (tests) */
        bool interop_service;             /* serve grpc.testing.TestService (interop) */
    } grpc;

    struct {
        char *jwt_secret;                 /* HS256 key of access tokens; secret */
        uint32_t access_ttl_ms;           /* lifetime of an access token */
        uint32_t refresh_ttl_ms;          /* lifetime of a refresh token */
        uint32_t lockout_failures;        /* failed logins that lock an account; 0: off */
        uint32_t lockout_ip_failures;     /* ... and an IP */
        uint32_t lockout_window_ms;       /* how long failures count */
        uint32_t password_opslimit;       /* argon2id passes */
        size_t password_memlimit_bytes;   /* argon2id memory per hash */
        uint32_t max_hashing;             /* password hashes queued or running at once */
        uint32_t max_parallel_hashes;     /* of those, running on the thread pool */
    } auth;

    fv_service_config_t services[FV_MOD_COUNT];  /* indexed by FV_MOD_* */

    /* Each module's own settings (its descriptor's settings table), indexed by FV_MOD_*; NULL
     * for a module that declares none. Read them through fv_module_settings(). */
    void *modules[FV_MOD_COUNT];

    struct {
        char *url;                 /* sqlite:<path> or postgres://... */
        uint32_t pool_size;
    } database;
    struct {
        char *url;                 /* memory:[?snapshot=...] or redis://... */
    } redis;
    struct {
        char *url;                 /* embedded: or qdrant://... */
    } vector;
    struct {
        char *url;                 /* file:<dir> or s3://... */
        char *access_key;          /* secret: masked by show */
        char *secret_key;          /* secret: masked by show */
        size_t max_object_bytes;
    } storage;
    struct {
        uint64_t seed;             /* seed of everything generated */
        uint32_t regions_x;
        uint32_t regions_y;
        uint32_t tick_hz;          /* world state updates per second */
        uint32_t sim_hz;           /* slow simulation steps per second */
    } world;
} fv_config_t;

/* Command-line overrides, applied last. Negative/NULL = not given. */
typedef struct fv_config_overrides {
    int port_base;          /* -1 = not given */
    const char *log_level;  /* NULL = not given */
} fv_config_overrides_t;

/* Loads and validates. path NULL means ./finalverse.toml when it exists, else defaults only.
 * env is an environ-style NULL-terminated array (pass `environ`; tests pass their own).
 * On success 0 and *out (free with fv_config_free). On failure a negative code, err filled,
 * *out untouched. */
FV_MUST_USE int fv_config_load(const char *path, char *const *env,
                               const fv_config_overrides_t *ov, fv_config_t **out,
                               fv_error_t *err);

/* Same, from TOML text in memory (fuzzing, tests); name is used in messages. */
FV_MUST_USE int fv_config_load_string(const char *name, const char *text, size_t len,
                                      char *const *env, const fv_config_overrides_t *ov,
                                      fv_config_t **out, fv_error_t *err);

void fv_config_free(fv_config_t *cfg);   /* NULL-safe */

/* Effective listen port of component idx (explicit services.<m>.port, else port_base rule). */
int fv_config_port(const fv_config_t *cfg, int idx);

/* Registry base as host and port: from registry.url, or the local registry component. */
void fv_config_registry_addr(const fv_config_t *cfg, char *host, size_t host_len, int *port);

/* The effective configuration as TOML, every key, secrets shown as "***". */
FV_MUST_USE int fv_config_show(const fv_config_t *cfg, fv_buf_t *out);

#endif
