/* fuzz_grpc_descset.c - the descriptor-set index of server reflection over any bytes: parse,
 * then look up a few names and every file's imports. Nothing may crash, leak or read past the
 * input. */
#include <stddef.h>
#include <stdint.h>

#include "net/grpc_descset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fv_descset_t *ds;
    if (fv_descset_parse(data, size, &ds) < 0)
        return 0;
    (void)fv_descset_find_symbol(ds, "p.q.Out.In");
    (void)fv_descset_find_file(ds, "a.proto");
    (void)fv_descset_is_message(ds, "M");
    size_t idx[8];
    for (size_t i = 0; i < fv_descset_count(ds); i++) {
        size_t n = fv_descset_closure(ds, i, idx, 8);
        for (size_t k = 0; k < n; k++)
            (void)fv_descset_bytes(ds, idx[k]);
    }
    fv_descset_free(ds);
    return 0;
}
