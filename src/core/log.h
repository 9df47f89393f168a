/* log.h - leveled logging to stderr, as text or JSON lines.
 *
 * The level is checked before any formatting happens (the macros test it inline), so a debug
 * line costs one comparison when debug is off. Module is the component name ("registry",
 * "http"); never log tokens, passwords or message bodies. */
#ifndef FV_CORE_LOG_H
#define FV_CORE_LOG_H

#include "core/err.h"

typedef enum fv_log_level {
    FV_LOG_ERROR = 0,
    FV_LOG_WARN = 1,
    FV_LOG_INFO = 2,
    FV_LOG_DEBUG = 3,
} fv_log_level_t;

typedef enum fv_log_format {
    FV_LOG_TEXT = 0,
    FV_LOG_JSON = 1,
} fv_log_format_t;

extern fv_log_level_t fv_log_current_level;

void fv_log_set_level(fv_log_level_t level);
void fv_log_set_format(fv_log_format_t format);
/* "error" | "warn" | "info" | "debug" -> 0 and *out, or FV_EINVAL. */
int fv_log_level_parse(const char *name, fv_log_level_t *out);
const char *fv_log_level_name(fv_log_level_t level);

void fv_log_write(fv_log_level_t level, const char *module, const char *fmt, ...) FV_PRINTF(3, 4);

#define fv_log_at(lvl, mod, ...)                                        \
    do {                                                                \
        if ((lvl) <= fv_log_current_level)                              \
            fv_log_write((lvl), (mod), __VA_ARGS__);                    \
    } while (0)
#define fv_log_error(mod, ...) fv_log_at(FV_LOG_ERROR, mod, __VA_ARGS__)
#define fv_log_warn(mod, ...) fv_log_at(FV_LOG_WARN, mod, __VA_ARGS__)
#define fv_log_info(mod, ...) fv_log_at(FV_LOG_INFO, mod, __VA_ARGS__)
#define fv_log_debug(mod, ...) fv_log_at(FV_LOG_DEBUG, mod, __VA_ARGS__)

#endif
