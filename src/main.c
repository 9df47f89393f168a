/* main.c - the finalverse server binary: argument parsing and the operator commands.
 *
 *   finalverse up                      every module in one process
 *   finalverse serve MODULE...         only the named modules
 *   finalverse config check|show       validate / print the effective configuration
 *   finalverse version
 *
 * Exit codes: 0 success, 1 the command failed (bad config, port in use), 2 usage error. */
#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "config/schema.h"
#include "core/alloc.h"
#include "core/log.h"
#include "runtime/module_list.h"
#include "runtime/runtime.h"
#include "store/stores.h"

extern char **environ;

typedef struct args {
    const char *command;           /* up | serve | config | version | help */
    const char *subcommand;        /* config: check | show */
    const char *config_path;
    fv_config_overrides_t ov;
    int modules[FV_MOD_COUNT];
    size_t module_count;
} args_t;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: finalverse <command> [options]\n"
            "\n"
            "commands:\n"
            "  up                       run every component in this process\n"
            "  serve MODULE...          run only the named modules\n"
            "  config check             validate the configuration and exit\n"
            "  config show              print the effective configuration (secrets masked)\n"
            "  config example           print a finalverse.toml with every key documented\n"
            "  migrate                  apply the database migrations and exit\n"
            "  version                  print the version\n"
            "\n"
            "options:\n"
            "  -c, --config FILE        configuration file (default: $FINALVERSE_CONFIG, "
            "else ./finalverse.toml if present)\n"
            "  -p, --port-base N        shift every port: component i listens on N+i\n"
            "  -l, --log-level LEVEL    error, warn, info or debug\n"
            "\n"
            "modules:");
    for (int i = 0; i < FV_MOD_COUNT; i++)
        fprintf(out, "%s%s", i % 4 == 0 ? "\n  " : " ", fv_components[i].name);
    fprintf(out, "\n");
}

FV_PRINTF(1, 2) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "finalverse: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nrun 'finalverse help' for usage\n");
    return 2;
}

static int parse_port_base(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0' || v < 1 || v > 65535 - (FV_MOD_COUNT - 1))
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_args(int argc, char **argv, args_t *a)
{
    memset(a, 0, sizeof(*a));
    a->ov.port_base = -1;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = NULL;
        bool takes_value = strcmp(arg, "-c") == 0 || strcmp(arg, "--config") == 0 ||
                           strcmp(arg, "-p") == 0 || strcmp(arg, "--port-base") == 0 ||
                           strcmp(arg, "-l") == 0 || strcmp(arg, "--log-level") == 0;
        if (strncmp(arg, "--", 2) == 0 && strchr(arg, '=')) {
            /* --key=value */
            static char key[64];
            size_t klen = (size_t)(strchr(arg, '=') - arg);
            if (klen >= sizeof(key))
                return usage_error("unknown option '%s'", arg);
            memcpy(key, arg, klen);
            key[klen] = '\0';
            val = strchr(arg, '=') + 1;
            arg = key;
            takes_value = true;
        } else if (takes_value) {
            if (i + 1 >= argc)
                return usage_error("option '%s' needs a value", arg);
            val = argv[++i];
        }
        if (takes_value) {
            if (strcmp(arg, "-c") == 0 || strcmp(arg, "--config") == 0) {
                a->config_path = val;
            } else if (strcmp(arg, "-p") == 0 || strcmp(arg, "--port-base") == 0) {
                if (parse_port_base(val, &a->ov.port_base) < 0)
                    return usage_error("--port-base: '%s' is not a port in 1..65522", val);
            } else if (strcmp(arg, "-l") == 0 || strcmp(arg, "--log-level") == 0) {
                fv_log_level_t lvl;
                if (fv_log_level_parse(val, &lvl) < 0)
                    return usage_error("--log-level: '%s' is not one of error, warn, info, debug",
                                       val);
                a->ov.log_level = val;
            } else {
                return usage_error("unknown option '%s'", arg);
            }
            continue;
        }
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            a->command = "help";
            continue;
        }
        if (arg[0] == '-')
            return usage_error("unknown option '%s'", arg);
        if (!a->command) {
            a->command = arg;
        } else if (strcmp(a->command, "config") == 0 && !a->subcommand) {
            a->subcommand = arg;
        } else if (strcmp(a->command, "serve") == 0) {
            int idx = fv_component_index(arg);
            if (idx < 0)
                return usage_error("serve: unknown module '%s' (run 'finalverse help' for the "
                                   "list)", arg);
            for (size_t k = 0; k < a->module_count; k++)
                if (a->modules[k] == idx)
                    return usage_error("serve: module '%s' named twice", arg);
            a->modules[a->module_count++] = idx;
        } else {
            return usage_error("unexpected argument '%s'", arg);
        }
    }
    if (!a->command)
        a->command = "help";
    return 0;
}

static int load_config(const args_t *a, fv_config_t **cfg)
{
    fv_error_t err;
    const char *path = a->config_path ? a->config_path : getenv("FINALVERSE_CONFIG");
    if (path && *path == '\0')
        path = NULL;
    if (fv_config_load(path, environ, &a->ov, cfg, &err) < 0) {
        fprintf(stderr, "finalverse: invalid configuration: %s\n", err.msg);
        return 1;
    }
    return 0;
}

static void apply_logging(const fv_config_t *cfg)
{
    fv_log_level_t lvl;
    if (fv_log_level_parse(cfg->general.log_level, &lvl) == 0)
        fv_log_set_level(lvl);
    fv_log_set_format(strcmp(cfg->general.log_format, "json") == 0 ? FV_LOG_JSON : FV_LOG_TEXT);
}

/* mkdir -p for the data directory. */
static int make_dirs(const char *path)
{
    char tmp[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof(tmp))
        return FV_EINVAL;
    memcpy(tmp, path, len + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* The data directory exists and the loop is ready, or a message was printed. */
static int prepare_loop(const fv_config_t *cfg, uv_loop_t *loop)
{
    int rc;
    if ((rc = make_dirs(cfg->general.data_dir)) < 0) {
        fprintf(stderr, "finalverse: cannot create data directory %s: %s\n",
                cfg->general.data_dir, fv_strerror(rc));
        return rc;
    }
    if ((rc = uv_loop_init(loop)) < 0) {
        fprintf(stderr, "finalverse: cannot start the event loop: %s\n", uv_strerror(rc));
        return rc;
    }
    return 0;
}

static void close_leftover(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h)) {
        fv_log_warn("runtime", "closing a %s handle a module left open",
                    uv_handle_type_name(uv_handle_get_type(h)));
        uv_close(h, NULL);
    }
}

/* After a command's own shutdown: close whatever was left open so the loop can be released. */
static void finish_loop(uv_loop_t *loop)
{
    uv_walk(loop, close_leftover, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    if (uv_loop_close(loop) != 0)
        fv_log_warn("runtime", "event loop closed with handles still open");
}

static int run_modules(const fv_config_t *cfg, const int *which, size_t count)
{
    uv_loop_t loop;
    fv_runtime_t *rt;
    fv_error_t err;
    int rc;

    if (prepare_loop(cfg, &loop) < 0)
        return 1;
    if ((rc = fv_runtime_new(&loop, cfg, &rt)) < 0) {
        uv_loop_close(&loop);
        return 1;
    }
    int exit_code = 0;
    if ((rc = fv_runtime_handle_signals(rt)) < 0) {
        fprintf(stderr, "finalverse: cannot handle signals: %s\n", uv_strerror(rc));
        exit_code = 1;
        fv_runtime_shutdown(rt);
    } else if ((rc = fv_runtime_start(rt, which, count, &err)) < 0) {
        fv_log_error("runtime", "%s", err.msg);
        exit_code = 1;
        fv_runtime_shutdown(rt);
    } else {
        fv_runtime_print_table(rt, stdout);
    }
    int run_rc = fv_runtime_run(rt);
    if (exit_code == 0)
        exit_code = run_rc;
    fv_runtime_free(rt);
    finish_loop(&loop);
    return exit_code;
}

typedef struct migrate_run {
    bool done;
    int rc;
    fv_error_t err;
} migrate_run_t;

static void on_migrate_open(fv_stores_t *st, int rc, const fv_error_t *err, void *data)
{
    migrate_run_t *m = data;
    m->done = true;
    m->rc = rc;
    if (rc < 0)
        m->err = *err;
}

static void on_migrate_closed(void *data)
{
    *(bool *)data = true;
}

/* finalverse migrate: opening the sql store applies what is pending (stores.c); then the
 * migrations built in are listed. */
static int run_migrate(const fv_config_t *cfg)
{
    uv_loop_t loop;
    fv_stores_t *st = NULL;
    migrate_run_t m = {0};
    bool closed = false;
    int rc;

    if (prepare_loop(cfg, &loop) < 0)
        return 1;
    if ((rc = fv_stores_open(&loop, cfg, FV_STORE_SQL, &st, on_migrate_open, &m)) < 0) {
        fprintf(stderr, "finalverse: cannot open database.url: %s\n", fv_strerror(rc));
        uv_loop_close(&loop);
        return 1;
    }
    while (!m.done)
        uv_run(&loop, UV_RUN_ONCE);
    if (m.rc < 0) {
        fprintf(stderr, "finalverse: %s\n", m.err.msg);
    } else {
        const char *backend = fv_sql_backend(fv_stores_sql(st));
        size_t n = fv_sql_migration_count(backend);
        printf("database (%s) is up to date with %zu migration%s:\n", backend, n,
               n == 1 ? "" : "s");
        for (size_t i = 0; i < n; i++) {
            int64_t version;
            const char *name;
            if (fv_sql_migration_info(backend, i, &version, &name) == 0)
                printf("  %04lld %s\n", (long long)version, name);
        }
    }
    fv_stores_close(st, on_migrate_closed, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    finish_loop(&loop);
    return m.rc < 0 ? 1 : 0;
}

static int print_example(void)
{
    fv_buf_t out;
    fv_buf_init(&out, 0);
    int rc = fv_config_example(&out);
    if (rc == 0)
        fwrite(out.ptr, 1, out.len, stdout);
    else
        fprintf(stderr, "finalverse: cannot render the example: %s\n", fv_strerror(rc));
    fv_buf_dispose(&out);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    args_t a;
    fv_config_t *cfg = NULL;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc;

    if (strcmp(a.command, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(a.command, "version") == 0) {
        printf("finalverse %s (%s)\n", FV_VERSION, FV_GIT_REV);
        return 0;
    }
    if (strcmp(a.command, "config") == 0) {
        if (!a.subcommand || (strcmp(a.subcommand, "check") && strcmp(a.subcommand, "show") &&
                              strcmp(a.subcommand, "example")))
            return usage_error("config: expected 'check', 'show' or 'example'");
        if (strcmp(a.subcommand, "example") == 0)
            return print_example();
        if ((rc = load_config(&a, &cfg)) != 0)
            return rc;
        if (strcmp(a.subcommand, "check") == 0) {
            printf("%s: configuration is valid\n", cfg->source);
        } else {
            fv_buf_t out;
            fv_buf_init(&out, 0);
            if (fv_config_show(cfg, &out) < 0) {
                fv_buf_dispose(&out);
                fv_config_free(cfg);
                fprintf(stderr, "finalverse: cannot render the configuration\n");
                return 1;
            }
            fwrite(out.ptr, 1, out.len, stdout);
            fv_buf_dispose(&out);
        }
        fv_config_free(cfg);
        return 0;
    }
    if (strcmp(a.command, "migrate") == 0) {
        if ((rc = load_config(&a, &cfg)) != 0)
            return rc;
        apply_logging(cfg);
        rc = run_migrate(cfg);
        fv_config_free(cfg);
        return rc;
    }
    if (strcmp(a.command, "up") == 0 || strcmp(a.command, "serve") == 0) {
        if (strcmp(a.command, "serve") == 0 && a.module_count == 0)
            return usage_error("serve: name at least one module");
        if ((rc = load_config(&a, &cfg)) != 0)
            return rc;
        apply_logging(cfg);
        if (strcmp(a.command, "up") == 0) {
            for (int i = 0; i < FV_MOD_COUNT; i++)
                if (cfg->services[i].enabled)
                    a.modules[a.module_count++] = i;
        }
        rc = run_modules(cfg, a.modules, a.module_count);
        fv_config_free(cfg);
        return rc;
    }
    return usage_error("unknown command '%s'", a.command);
}
