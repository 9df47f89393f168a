/* module.c - the ai-orchestra module descriptor. Its game endpoints arrive with their own
 * issue; until then the runtime gives it its listener, /health, /info, /metrics and its
 * registration, and opens (and health-checks) the stores it keeps its state in. */
#include "runtime/modules.h"
#include "store/stores.h"

const fv_module_t fv_module_ai_orchestra = {
    .name = "ai-orchestra",
    .stores = FV_STORE_KV | FV_STORE_VECTOR,
};
