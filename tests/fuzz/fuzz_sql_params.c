/* fuzz_sql_params.c - the checks every SQL statement passes before it is queued: UTF-8 and size
 * of the text, the $N placeholder scan (strings, quoted identifiers, comments, dollar quotes)
 * and the per-parameter checks. Input: SQL text up to the first NUL byte, then the bytes the
 * parameters are cut from (the first byte of that part picks their types). */
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "store/sql_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t sql_len = nul ? (size_t)(nul - data) : size;
    char *sql = fv_malloc(sql_len + 1);
    memcpy(sql, data, sql_len);
    sql[sql_len] = '\0';
    const uint8_t *rest = nul ? nul + 1 : data + size;
    size_t rest_len = (size_t)(data + size - rest);

    fv_error_t err;
    int text_rc = fv__sql_check_text(sql, &err);
    long want = fv__sql_max_placeholder(sql, sql_len);
    if (want < -1 || want > 65535)
        __builtin_trap();
    if (text_rc != 0 || want < 0 || want > 64) {
        fv_free(sql);
        return 0;
    }
    /* want parameters cut from the rest; types from its first byte, two bits each */
    size_t n = (size_t)want;
    fv_sql_param_t params[64];
    uint8_t types = rest_len ? rest[0] : 0;
    size_t off = rest_len ? 1 : 0;
    size_t piece = n ? (rest_len - off) / n : 0;
    for (size_t i = 0; i < n; i++) {
        memset(&params[i], 0, sizeof(params[i]));
        switch ((types >> (2 * (i % 4))) & 3) {
        case 0: params[i].type = FV_SQL_TEXT; break;
        case 1: params[i].type = FV_SQL_BLOB; break;
        case 2: params[i].type = FV_SQL_INT64; break;
        default: params[i].type = FV_SQL_NULL; break;
        }
        params[i].ptr = rest + off + i * piece;
        params[i].len = piece;
    }
    int rc = fv__sql_check_params(1 << 20, sql, n ? params : NULL, n, &err);
    if (rc != 0 && rc != FV_EINVAL)
        __builtin_trap();
    /* one parameter too many, or a limit below a parameter's size, must always be refused */
    if (n < 64) {
        params[n] = (fv_sql_param_t){.type = FV_SQL_NULL};
        if (fv__sql_check_params(1 << 20, sql, params, n + 1, &err) == 0)
            __builtin_trap();
    }
    for (size_t i = 0; i < n; i++)
        if ((params[i].type == FV_SQL_TEXT || params[i].type == FV_SQL_BLOB) && piece > 0 &&
            fv__sql_check_params(piece - 1, sql, params, n, &err) == 0)
            __builtin_trap();
    fv_free(sql);
    return 0;
}
