/* module_list.h - the one list of modules the binary carries (DESIGN.md sec. 2-4).
 *
 * Everything that depends on the set of modules comes from FV_MODULE_LIST: the FV_MOD_* indexes,
 * the names that URLs, the registry, config sections and folders use, the default ports, the
 * port layout under a port base (component i listens on N + i: the index is the first column),
 * the roles printed in tables, the [services.<name>] config sections, and the table of
 * descriptors (each module's folder defines fv_module_<symbol>). Adding a module is one row
 * here and one folder. */
#ifndef FV_RUNTIME_MODULE_LIST_H
#define FV_RUNTIME_MODULE_LIST_H

#include <stddef.h>

/* X(index, ID, symbol, "name", default port, "role") */
#define FV_MODULE_LIST(X)                                                                     \
    X(0, WEBSOCKET_GATEWAY, websocket_gateway, "websocket-gateway", 3000,                    \
      "realtime client traffic")                                                             \
    X(1, SONG_ENGINE, song_engine, "song-engine", 3001, "melodies, harmony, resonance")       \
    X(2, WORLD_ENGINE, world_engine, "world-engine", 3002, "authoritative world state")       \
    X(3, ECHO_ENGINE, echo_engine, "echo-engine", 3003, "the Echoes and their bonds")         \
    X(4, AI_ORCHESTRA, ai_orchestra, "ai-orchestra", 3004, "LLM providers and generation")    \
    X(5, STORY_ENGINE, story_engine, "story-engine", 3005, "quests and the chronicle")        \
    X(6, HARMONY_SERVICE, harmony_service, "harmony-service", 3006, "player progression")     \
    X(7, ASSET_SERVICE, asset_service, "asset-service", 3007, "assets and manifests")         \
    X(8, COMMUNITY, community, "community", 3008, "groups, chat, friends")                    \
    X(9, SILENCE_SERVICE, silence_service, "silence-service", 3009, "corruption and rifts")   \
    X(10, PROCEDURAL_GEN, procedural_gen, "procedural-gen", 3010,                            \
      "terrain, biomes, points of interest")                                                 \
    X(11, BEHAVIOR_AI, behavior_ai, "behavior-ai", 3011, "NPC and creature behaviour")        \
    X(12, API_GATEWAY, api_gateway, "api-gateway", 8080, "HTTP entry point")                  \
    X(13, SERVICE_REGISTRY, service_registry, "service-registry", 8500,                      \
      "registration and discovery")

enum {
#define FV_MODULE_ENUM(idx, id, sym, name, port, role) FV_MOD_##id = idx,
    FV_MODULE_LIST(FV_MODULE_ENUM)
#undef FV_MODULE_ENUM
    FV_MOD_COUNT
};

typedef struct fv_component {
    const char *name;       /* "song-engine" */
    int default_port;       /* 3001 */
    const char *role;       /* one line for tables and /info */
} fv_component_t;

/* Indexed by FV_MOD_*. */
extern const fv_component_t fv_components[FV_MOD_COUNT];

/* Index of a module by name, or -1. */
int fv_component_index(const char *name);

/* Port of module idx under port_base (0 = default ports). */
int fv_component_port(int idx, int port_base);

#endif
