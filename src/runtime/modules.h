/* modules.h - every module descriptor the binary carries (one per row of FV_MODULE_LIST), and
 * the lookup by index. */
#ifndef FV_RUNTIME_MODULES_H
#define FV_RUNTIME_MODULES_H

#include "runtime/module.h"
#include "runtime/module_list.h"

#define FV_MODULE_EXTERN(idx, id, sym, name, port, role) extern const fv_module_t fv_module_##sym;
FV_MODULE_LIST(FV_MODULE_EXTERN)
#undef FV_MODULE_EXTERN

/* The descriptor of module idx (FV_MOD_*), or NULL. */
const fv_module_t *fv_modules_get(int idx);

/* The descriptor module idx was built with, whatever a test swapped in (the configuration's
 * key table is made from these). */
const fv_module_t *fv__modules_builtin(int idx);

/* Tests only: module idx runs descriptor m instead of its own from now on (the name must stay
 * the same); m NULL restores the original. Not thread-safe; call before starting a runtime. */
void fv__modules_override(int idx, const fv_module_t *m);

#endif
