/* module.c - the harmony-service module descriptor. Its game endpoints arrive with their own
 * issue; until then the runtime gives it its listener, /health, /info, /metrics and its
 * registration, and opens (and health-checks) the stores it keeps its state in. */
#include "runtime/modules.h"
#include "store/stores.h"

const fv_module_t fv_module_harmony_service = {
    .name = "harmony-service",
    .stores = FV_STORE_SQL,
};
