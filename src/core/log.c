/* log.c - formats one line per call and writes it with a single write(2), so lines from
 * different threads never interleave mid-line. */
#include "core/log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

fv_log_level_t fv_log_current_level = FV_LOG_INFO;
static fv_log_format_t log_format = FV_LOG_TEXT;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void fv_log_set_level(fv_log_level_t level)
{
    fv_log_current_level = level;
}

void fv_log_set_format(fv_log_format_t format)
{
    log_format = format;
}

int fv_log_level_parse(const char *name, fv_log_level_t *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (fv_log_level_t)i;
            return 0;
        }
    }
    if (strcasecmp(name, "warning") == 0) {
        *out = FV_LOG_WARN;
        return 0;
    }
    return FV_EINVAL;
}

const char *fv_log_level_name(fv_log_level_t level)
{
    return (unsigned)level < 4 ? level_names[level] : "?";
}

/* Appends s to out as a JSON string body (no quotes), escaping what JSON requires. */
static size_t json_escape(char *out, size_t cap, size_t pos, const char *s)
{
    for (; *s && pos + 7 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            out[pos++] = '\\';
            out[pos++] = (char)ch;
        } else if (ch < 0x20) {
            pos += (size_t)snprintf(out + pos, cap - pos, "\\u%04x", ch);
        } else {
            out[pos++] = (char)ch;
        }
    }
    return pos;
}

void fv_log_write(fv_log_level_t level, const char *module, const char *fmt, ...)
{
    char msg[2048];
    char line[4608];
    struct timespec ts;
    struct tm tm;
    char stamp[32];
    va_list ap;
    size_t n;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + n, sizeof(stamp) - n, ".%03ldZ", ts.tv_nsec / 1000000);

    if (log_format == FV_LOG_JSON) {
        n = (size_t)snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\",\"module\":\"",
                             stamp, fv_log_level_name(level));
        n = json_escape(line, sizeof(line), n, module);
        n += (size_t)snprintf(line + n, sizeof(line) - n, "\",\"msg\":\"");
        n = json_escape(line, sizeof(line), n, msg);
        n += (size_t)snprintf(line + n, sizeof(line) - n, "\"}\n");
    } else {
        n = (size_t)snprintf(line, sizeof(line), "%s %-5s [%s] %s\n", stamp,
                             fv_log_level_name(level), module, msg);
    }
    if (n >= sizeof(line))
        n = sizeof(line) - 1;
    /* A failed log write has nowhere to be reported. */
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}
