/* modules.c - the tables made from FV_MODULE_LIST: names, ports and roles by index, and the
 * module descriptors; plus the test seam that swaps a descriptor. */
#include "runtime/modules.h"

#include <string.h>

#define FV_MODULE_COMPONENT(idx, id, sym, name, port, role) [idx] = {name, port, role},
const fv_component_t fv_components[FV_MOD_COUNT] = {FV_MODULE_LIST(FV_MODULE_COMPONENT)};
#undef FV_MODULE_COMPONENT

/* The first column is the port offset and the array index: it must count 0, 1, 2, ... */
#define FV_MODULE_CHECK(idx, id, sym, name, port, role)                                   \
    _Static_assert(FV_MOD_##id == idx, "FV_MODULE_LIST index of " name);
FV_MODULE_LIST(FV_MODULE_CHECK)
#undef FV_MODULE_CHECK

#define FV_MODULE_DESC(idx, id, sym, name, port, role) [idx] = &fv_module_##sym,
static const fv_module_t *const builtin[FV_MOD_COUNT] = {FV_MODULE_LIST(FV_MODULE_DESC)};
#undef FV_MODULE_DESC

/* What runs: the built-in descriptor unless a test swapped it (NULL = built-in). */
static const fv_module_t *override[FV_MOD_COUNT];

int fv_component_index(const char *name)
{
    for (int i = 0; i < FV_MOD_COUNT; i++)
        if (strcmp(fv_components[i].name, name) == 0)
            return i;
    return -1;
}

int fv_component_port(int idx, int port_base)
{
    if (idx < 0 || idx >= FV_MOD_COUNT)
        return -1;
    return port_base ? port_base + idx : fv_components[idx].default_port;
}

const fv_module_t *fv_modules_get(int idx)
{
    if (idx < 0 || idx >= FV_MOD_COUNT)
        return NULL;
    return override[idx] ? override[idx] : builtin[idx];
}

const fv_module_t *fv__modules_builtin(int idx)
{
    return idx >= 0 && idx < FV_MOD_COUNT ? builtin[idx] : NULL;
}

void fv__modules_override(int idx, const fv_module_t *m)
{
    if (idx >= 0 && idx < FV_MOD_COUNT)
        override[idx] = m;
}
