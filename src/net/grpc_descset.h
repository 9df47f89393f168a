/* grpc_descset.h - just enough of a protobuf FileDescriptorSet (descriptor.proto: the files,
 * their names, packages and imports, and the full names of their messages, enums, services and
 * methods) for server reflection to find the file that defines a symbol. The serialized
 * FileDescriptorProto of each file is kept as a view into the input, to be sent as it is.
 *
 * Bad input (truncated fields, lengths past the end, groups, nesting past 32 levels, more
 * than 1,024 files or 65,536 symbols, names over 512 bytes) is FV_EINVAL, never a crash. */
#ifndef FV_NET_GRPC_DESCSET_H
#define FV_NET_GRPC_DESCSET_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/slice.h"

typedef struct fv_descset fv_descset_t;

/* Indexes data[0..len), which must outlive the index. 0, FV_EINVAL, FV_ENOMEM. */
FV_MUST_USE int fv_descset_parse(const uint8_t *data, size_t len, fv_descset_t **out);
void fv_descset_free(fv_descset_t *ds);     /* NULL-safe */

size_t fv_descset_count(const fv_descset_t *ds);
const char *fv_descset_name(const fv_descset_t *ds, size_t i);
/* The file's serialized FileDescriptorProto. */
fv_slice_t fv_descset_bytes(const fv_descset_t *ds, size_t i);

/* The file named name, or the one defining symbol (a full name without the leading dot:
 * "pkg.Message", "pkg.Message.Nested", "pkg.Service", "pkg.Service.Method", "pkg.Enum");
 * -1 when none. */
long fv_descset_find_file(const fv_descset_t *ds, const char *name);
long fv_descset_find_symbol(const fv_descset_t *ds, const char *symbol);
/* Whether symbol names a message type. */
bool fv_descset_is_message(const fv_descset_t *ds, const char *symbol);

/* File i, then every file it imports, directly or not (those in the set), each once:
 * indices into out[0..cap). Returns how many. */
size_t fv_descset_closure(const fv_descset_t *ds, size_t i, size_t *out, size_t cap);

#endif
