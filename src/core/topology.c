/* topology.c - the component table. */
#include "core/topology.h"

#include <string.h>

const fv_component_t fv_components[FV_MOD_COUNT] = {
    [FV_MOD_WEBSOCKET_GATEWAY] = {"websocket-gateway", 3000, "realtime client traffic"},
    [FV_MOD_SONG_ENGINE] = {"song-engine", 3001, "melodies, harmony, resonance"},
    [FV_MOD_WORLD_ENGINE] = {"world-engine", 3002, "authoritative world state"},
    [FV_MOD_ECHO_ENGINE] = {"echo-engine", 3003, "the Echoes and their bonds"},
    [FV_MOD_AI_ORCHESTRA] = {"ai-orchestra", 3004, "LLM providers and generation"},
    [FV_MOD_STORY_ENGINE] = {"story-engine", 3005, "quests and the chronicle"},
    [FV_MOD_HARMONY_SERVICE] = {"harmony-service", 3006, "player progression"},
    [FV_MOD_ASSET_SERVICE] = {"asset-service", 3007, "assets and manifests"},
    [FV_MOD_COMMUNITY] = {"community", 3008, "groups, chat, friends"},
    [FV_MOD_SILENCE_SERVICE] = {"silence-service", 3009, "corruption and rifts"},
    [FV_MOD_PROCEDURAL_GEN] = {"procedural-gen", 3010, "terrain, biomes, points of interest"},
    [FV_MOD_BEHAVIOR_AI] = {"behavior-ai", 3011, "NPC and creature behaviour"},
    [FV_MOD_API_GATEWAY] = {"api-gateway", 8080, "HTTP entry point"},
    [FV_MOD_SERVICE_REGISTRY] = {"service-registry", 8500, "registration and discovery"},
};

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
