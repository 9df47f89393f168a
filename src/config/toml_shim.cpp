/* toml_shim.cpp - the C face of toml++: parse text, copy the document into a C tree of
 * fv_toml_node_t, report parse errors with line and column.
 *
 * toml++ is built header-only here with TOML_EXCEPTIONS 0 so parse errors come back as a
 * parse_result, not a throw. The standard library can still throw (std::bad_alloc inside
 * toml++), so every entry point catches everything: no exception ever reaches C. Validation
 * of what the keys mean is config.c's job, not this file's.
 *
 * toml++ 3.3 has undefined behaviour (it reaches __builtin_unreachable() in its Unicode
 * whitespace table, upstream issues #190 and #295, fixed after 3.3) when it asks whether
 * certain non-ASCII characters are whitespace. It asks only where TOML allows ASCII alone:
 * between tokens, right after a backslash in a basic string, and after a line-ending backslash
 * in a multi-line one. guard_unicode() refuses non-ASCII text in those places before toml++
 * sees it, with the same kind of error toml++ would give. Drop it once the fix is packaged. */
#include "config/toml_shim.h"

#include <cstring>
#include <string_view>

#undef TOML_HEADER_ONLY
#define TOML_HEADER_ONLY 1
#undef TOML_SHARED_LIB
#define TOML_EXCEPTIONS 0
#define TOML_ENABLE_FORMATTERS 0
/* toml++ 3.3 asserts on some malformed documents that its parser goes on to reject anyway
 * ("[!a]", a bad time; found by fuzzing). Release builds compile those assertions out, so that is
 * what ships; debug and sanitizer builds must behave the same instead of aborting on a bad config
 * file. So the assertions are off here in every build, and the fuzzer (ASan+UBSan) checks that
 * what toml++ then does is memory-safe. Its preprocessor header is included first so that these
 * definitions replace its own. */
#include <toml++/impl/preprocessor.h>
#undef TOML_ASSERT
#define TOML_ASSERT(expr) static_assert(true)
#undef TOML_ASSERT_ASSUME
#define TOML_ASSERT_ASSUME(expr) static_assert(true)
#include <toml++/toml.h>

extern "C" {
#include "core/alloc.h"
#include "core/err.h"
}

namespace {

void set_desc(fv_toml_error_t *err, const char *msg)
{
    if (!err)
        return;
    err->line = 0;
    err->column = 0;
    std::snprintf(err->desc, sizeof(err->desc), "%s", msg);
}

char *copy_bytes(std::string_view s)
{
    char *p = static_cast<char *>(fv_try_malloc(s.size() + 1));
    if (!p)
        return nullptr;
    if (!s.empty())
        std::memcpy(p, s.data(), s.size());
    p[s.size()] = '\0';
    return p;
}

void free_contents(fv_toml_node_t *n)
{
    fv_free(n->key);
    fv_free(n->str);
    for (size_t i = 0; i < n->count; i++)
        free_contents(&n->items[i]);
    fv_free(n->items);
}

/* Copies one toml++ node into out (zeroed by the caller). Depth is bounded by toml++'s own
 * nesting limit, so the recursion is too. On failure out holds whatever was copied so far and
 * free_contents() releases it. */
bool convert(const toml::node &src, fv_toml_node_t *out)
{
    if (out->line == 0) {
        out->line = src.source().begin.line;
        out->column = src.source().begin.column;
    }
    switch (src.type()) {
    case toml::node_type::table: {
        const toml::table &t = *src.as_table();
        out->type = FV_TOML_TABLE;
        if (t.empty())
            return true;
        out->items = static_cast<fv_toml_node_t *>(fv_try_malloc(t.size() * sizeof(fv_toml_node_t)));
        if (!out->items)
            return false;
        std::memset(out->items, 0, t.size() * sizeof(fv_toml_node_t));
        for (auto &&[k, v] : t) {
            fv_toml_node_t *item = &out->items[out->count++];
            item->line = k.source().begin.line;
            item->column = k.source().begin.column;
            item->key = copy_bytes(k.str());
            item->key_len = k.str().size();
            if (!item->key || !convert(v, item))
                return false;
        }
        return true;
    }
    case toml::node_type::array: {
        const toml::array &a = *src.as_array();
        out->type = FV_TOML_ARRAY;
        if (a.empty())
            return true;
        out->items = static_cast<fv_toml_node_t *>(fv_try_malloc(a.size() * sizeof(fv_toml_node_t)));
        if (!out->items)
            return false;
        std::memset(out->items, 0, a.size() * sizeof(fv_toml_node_t));
        for (const toml::node &v : a) {
            fv_toml_node_t *item = &out->items[out->count++];
            if (!convert(v, item))
                return false;
        }
        return true;
    }
    case toml::node_type::string: {
        const std::string &s = src.as_string()->get();
        out->type = FV_TOML_STRING;
        out->str = copy_bytes(s);
        out->str_len = s.size();
        return out->str != nullptr;
    }
    case toml::node_type::integer:
        out->type = FV_TOML_INTEGER;
        out->integer = src.as_integer()->get();
        return true;
    case toml::node_type::floating_point:
        out->type = FV_TOML_FLOAT;
        out->fp = src.as_floating_point()->get();
        return true;
    case toml::node_type::boolean:
        out->type = FV_TOML_BOOLEAN;
        out->boolean = src.as_boolean()->get();
        return true;
    case toml::node_type::date:
        out->type = FV_TOML_DATE;
        return true;
    case toml::node_type::time:
        out->type = FV_TOML_TIME;
        return true;
    case toml::node_type::date_time:
        out->type = FV_TOML_DATETIME;
        return true;
    default:
        /* node_type::none cannot appear in a parsed document; treat it as an empty table. */
        out->type = FV_TOML_TABLE;
        return true;
    }
}

struct scan_pos {
    unsigned line, column;
};

bool guard_fail(fv_toml_error_t *err, scan_pos p, const char *what)
{
    if (err) {
        err->line = p.line;
        err->column = p.column;
        std::snprintf(err->desc, sizeof(err->desc), "%s", what);
    }
    return false;
}

/* TOML allows no raw control character anywhere but tab, LF and the CR of a CRLF (strings must
 * escape them, comments may not hold them). toml++ 3.3 asserts on some of them (a vertical tab in
 * a table header, found by fuzzing), so they are refused here, with their position, first. */
bool guard_control(const char *s, size_t len, fv_toml_error_t *err)
{
    scan_pos pos = {1, 1};
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool crlf = c == '\r' && i + 1 < len && s[i + 1] == '\n';
        if ((c < 0x20 && c != '\t' && c != '\n' && !crlf) || c == 0x7f) {
            char what[64];
            std::snprintf(what, sizeof(what), "control character U+%04X is not allowed", c);
            return guard_fail(err, pos, what);
        }
        if (c == '\n') {
            pos.line++;
            pos.column = 1;
        } else if ((c & 0xc0) != 0x80) {
            pos.column++;   /* columns count characters, not UTF-8 continuation bytes */
        }
    }
    return true;
}

/* A small TOML lexer that only tracks "inside a string or comment, or not". It follows the
 * grammar up to the first syntax error, which is as far as toml++ goes too. */
bool guard_unicode(const char *s, size_t len, fv_toml_error_t *err)
{
    enum { NORMAL, COMMENT, BASIC, LITERAL, ML_BASIC, ML_LITERAL } state = NORMAL;
    scan_pos pos = {1, 1};
    size_t i = 0;
    bool run = false;   /* inside a bare value token */
    size_t run_len = 0;
    /* Key or value position: '=' starts a value, which lasts to the end of the line unless an
     * array or inline table is open; inside an inline table ',' and '{' start keys again. */
    bool in_value = false;
    char nest[320];     /* 'A' array, 'T' inline table; toml++ stops nesting at 256 */
    size_t depth = 0;
    bool nest_overflow = false;
    auto track_context = [&](unsigned char c) {
        char top = depth ? nest[depth - 1] : 0;
        switch (c) {
        case '=':
            in_value = true;
            break;
        case '[':
            if (in_value) {
                if (depth < sizeof(nest))
                    nest[depth++] = 'A';
                else
                    nest_overflow = true;
            }
            break;
        case '{':
            if (depth < sizeof(nest))
                nest[depth++] = 'T';
            else
                nest_overflow = true;
            in_value = false;
            break;
        case ']':
        case '}':
            if (depth && top == (c == ']' ? 'A' : 'T'))
                depth--;
            in_value = in_value || depth > 0;
            if (c == '}')
                in_value = true;   /* an inline table is itself a value */
            break;
        case ',':
            in_value = top != 'T';
            break;
        case '\n':
            if (depth == 0)
                in_value = false;
            break;
        }
    };
    auto at = [&](size_t k) -> unsigned char { return k < len ? (unsigned char)s[k] : 0; };
    auto step = [&](size_t n) {
        for (size_t k = 0; k < n && i < len; k++, i++) {
            if (s[i] == '\n') {
                pos.line++;
                pos.column = 1;
            } else if (((unsigned char)s[i] & 0xc0) != 0x80) {
                pos.column++;
            }
        }
    };
    if (len >= 3 && std::memcmp(s, "\xef\xbb\xbf", 3) == 0)
        i = 3;   /* a byte order mark is fine at the very start */
    while (i < len) {
        unsigned char ch = at(i);
        if (nest_overflow)
            return guard_fail(err, pos, "arrays and inline tables nested too deeply");
        switch (state) {
        case NORMAL: {
            if (ch >= 0x80)
                return guard_fail(err, pos, "non-ASCII character outside a string or comment");
            bool term = ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == ']' ||
                        ch == '}' || ch == ',' || ch == '#';
            if (run) {
                if (!term) {
                    run_len++;
                    step(1);
                    break;
                }
                run = false;
                if (ch == ' ' && run_len == 10) {
                    /* maybe a date, a space and a time: toml++ reads on past the space */
                    run = true;
                    run_len++;
                    step(1);
                    break;
                }
            }
            if (ch == '#') {
                state = COMMENT;
            } else if (ch == '"') {
                if (at(i + 1) == '"' && at(i + 2) == '"') {
                    state = ML_BASIC;
                    step(2);
                } else {
                    state = BASIC;
                }
            } else if (ch == '\'') {
                if (at(i + 1) == '\'' && at(i + 2) == '\'') {
                    state = ML_LITERAL;
                    step(2);
                } else {
                    state = LITERAL;
                }
            } else if (ch == '[' && !in_value && depth == 0) {
                /* A table header. toml++ 3.3 asserts (a crash in debug builds, undefined
                 * behaviour without assertions) when a header's key, or a dotted part of it,
                 * does not start like a key: "[!a]", "[a.!]" (found by fuzzing). */
                size_t k = i + 1;
                if (at(k) == '[')
                    k++;
                for (;;) {
                    while (at(k) == ' ' || at(k) == '\t')
                        k++;
                    unsigned char kc = at(k);
                    bool bare = (kc >= 'a' && kc <= 'z') || (kc >= 'A' && kc <= 'Z') ||
                                (kc >= '0' && kc <= '9') || kc == '_' || kc == '-';
                    if (!bare && kc != '"' && kc != '\'')
                        return guard_fail(err, pos, "a table header must hold a key");
                    if (!bare)
                        break;   /* a quoted part: toml++ reads it with its own checks */
                    while ((at(k) >= 'a' && at(k) <= 'z') || (at(k) >= 'A' && at(k) <= 'Z') ||
                           (at(k) >= '0' && at(k) <= '9') || at(k) == '_' || at(k) == '-')
                        k++;
                    while (at(k) == ' ' || at(k) == '\t')
                        k++;
                    if (at(k) != '.')
                        break;
                    k++;
                }
            } else if (in_value && !term && ch != '[' && ch != '{' && ch != '=') {
                /* a bare value (number, date, boolean): toml++ scans numbers ahead to the
                 * next terminator, quotes included, so the whole run stays NORMAL */
                run = true;
                run_len = 1;
            }
            track_context(ch);
            step(1);
            break;
        }
        case COMMENT:
            if (ch == '\n') {
                state = NORMAL;
                track_context(ch);
            }
            step(1);
            break;
        case LITERAL:
            if (ch == '\'' || ch == '\n') {
                state = NORMAL;
            }
            step(1);
            break;
        case ML_LITERAL:
            if (ch == '\'' && at(i + 1) == '\'' && at(i + 2) == '\'') {
                step(3);
                while (at(i) == '\'' && i < len)   /* up to two quotes may close the content */
                    step(1);
                state = NORMAL;
            } else {
                step(1);
            }
            break;
        case BASIC:
        case ML_BASIC:
            if (ch == '\\') {
                step(1);
                if (i >= len)
                    break;
                if (at(i) >= 0x80)
                    return guard_fail(err, pos, "non-ASCII character after a backslash");
                if (state == ML_BASIC) {
                    size_t k = i;
                    while (at(k) == ' ' || at(k) == '\t')
                        k++;
                    if (k > i && at(k) >= 0x80)   /* toml++ skips the blanks, then asks */
                        return guard_fail(err, pos, "non-ASCII character after a backslash");
                    if (at(k) == '\n' || (at(k) == '\r' && at(k + 1) == '\n')) {
                        /* a line-ending backslash: toml++ skips whitespace and newlines */
                        while (i < len && (at(i) == ' ' || at(i) == '\t' || at(i) == '\n' ||
                                           at(i) == '\r'))
                            step(1);
                        if (i < len && at(i) >= 0x80)
                            return guard_fail(err, pos,
                                              "non-ASCII character after a line-ending backslash");
                        break;
                    }
                }
                step(1);
            } else if (state == BASIC && (ch == '"' || ch == '\n')) {
                state = NORMAL;
                step(1);
            } else if (state == ML_BASIC && ch == '"' && at(i + 1) == '"' && at(i + 2) == '"') {
                step(3);
                while (at(i) == '"' && i < len)
                    step(1);
                state = NORMAL;
            } else {
                step(1);
            }
            break;
        }
    }
    return true;
}

} // namespace

extern "C" int fv_toml_parse(const char *text, size_t len, fv_toml_node_t **out,
                             fv_toml_error_t *err)
{
    fv_toml_node_t *root = nullptr;
    try {
        if (!guard_control(text ? text : "", text ? len : 0, err) ||
            !guard_unicode(text ? text : "", text ? len : 0, err))
            return FV_EPROTO;
        toml::parse_result res = toml::parse(std::string_view(text ? text : "", text ? len : 0));
        if (!res) {
            const toml::parse_error &e = res.error();
            if (err) {
                err->line = e.source().begin.line;
                err->column = e.source().begin.column;
                std::string_view d = e.description();
                std::snprintf(err->desc, sizeof(err->desc), "%.*s", (int)d.size(), d.data());
            }
            return FV_EPROTO;
        }
        root = static_cast<fv_toml_node_t *>(fv_try_malloc(sizeof(fv_toml_node_t)));
        if (!root) {
            set_desc(err, "out of memory");
            return FV_ENOMEM;
        }
        std::memset(root, 0, sizeof(*root));
        if (!convert(res.table(), root)) {
            fv_toml_free(root);
            set_desc(err, "out of memory");
            return FV_ENOMEM;
        }
        root->line = 0;
        root->column = 0;
        *out = root;
        return 0;
    } catch (...) {
        /* Only std::bad_alloc can get here in practice; whatever it was, C must not see it. */
        fv_toml_free(root);
        set_desc(err, "out of memory");
        return FV_ENOMEM;
    }
}

extern "C" void fv_toml_free(fv_toml_node_t *root)
{
    if (!root)
        return;
    free_contents(root);
    fv_free(root);
}

extern "C" const char *fv_toml_type_name(fv_toml_type_t type)
{
    switch (type) {
    case FV_TOML_TABLE: return "table";
    case FV_TOML_ARRAY: return "array";
    case FV_TOML_STRING: return "string";
    case FV_TOML_INTEGER: return "integer";
    case FV_TOML_FLOAT: return "float";
    case FV_TOML_BOOLEAN: return "boolean";
    case FV_TOML_DATE: return "date";
    case FV_TOML_TIME: return "time";
    case FV_TOML_DATETIME: return "date-time";
    }
    return "value";
}

extern "C" const fv_toml_node_t *fv_toml_find(const fv_toml_node_t *t, const char *key)
{
    if (!t || t->type != FV_TOML_TABLE || !key)
        return nullptr;
    for (size_t i = 0; i < t->count; i++)
        if (t->items[i].key && t->items[i].key_len == std::strlen(key) &&
            std::memcmp(t->items[i].key, key, t->items[i].key_len) == 0)
            return &t->items[i];
    return nullptr;
}
