/* module.c - the behavior-ai module descriptor. Its game endpoints arrive with their own
 * issue; until then the runtime gives it its listener, /health, /info, /metrics and its
 * registration. */
#include "runtime/modules.h"

const fv_module_t fv_module_behavior_ai = {.name = "behavior-ai"};
