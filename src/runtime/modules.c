/* modules.c - the table from component index to module descriptor. */
#include "runtime/modules.h"

#include <stddef.h>

static const fv_module_t *const table[FV_MOD_COUNT] = {
    [FV_MOD_WEBSOCKET_GATEWAY] = &fv_module_websocket_gateway,
    [FV_MOD_SONG_ENGINE] = &fv_module_song_engine,
    [FV_MOD_WORLD_ENGINE] = &fv_module_world_engine,
    [FV_MOD_ECHO_ENGINE] = &fv_module_echo_engine,
    [FV_MOD_AI_ORCHESTRA] = &fv_module_ai_orchestra,
    [FV_MOD_STORY_ENGINE] = &fv_module_story_engine,
    [FV_MOD_HARMONY_SERVICE] = &fv_module_harmony_service,
    [FV_MOD_ASSET_SERVICE] = &fv_module_asset_service,
    [FV_MOD_COMMUNITY] = &fv_module_community,
    [FV_MOD_SILENCE_SERVICE] = &fv_module_silence_service,
    [FV_MOD_PROCEDURAL_GEN] = &fv_module_procedural_gen,
    [FV_MOD_BEHAVIOR_AI] = &fv_module_behavior_ai,
    [FV_MOD_API_GATEWAY] = &fv_module_api_gateway,
    [FV_MOD_SERVICE_REGISTRY] = &fv_module_service_registry,
};

const fv_module_t *fv_modules_get(int idx)
{
    return idx >= 0 && idx < FV_MOD_COUNT ? table[idx] : NULL;
}
