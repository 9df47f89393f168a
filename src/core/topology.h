/* topology.h - the fixed set of components, their names and default ports (DESIGN.md sec. 2).
 *
 * Module names are used by URLs, the registry, config sections and folders alike, so they live
 * here once. The port layout under a port base: when general.port_base (or --port-base) is N,
 * the components take N + offset, where offset is the component's index below; 0 keeps the
 * default ports. */
#ifndef FV_CORE_TOPOLOGY_H
#define FV_CORE_TOPOLOGY_H

#include <stddef.h>

enum {
    FV_MOD_WEBSOCKET_GATEWAY = 0,
    FV_MOD_SONG_ENGINE,
    FV_MOD_WORLD_ENGINE,
    FV_MOD_ECHO_ENGINE,
    FV_MOD_AI_ORCHESTRA,
    FV_MOD_STORY_ENGINE,
    FV_MOD_HARMONY_SERVICE,
    FV_MOD_ASSET_SERVICE,
    FV_MOD_COMMUNITY,
    FV_MOD_SILENCE_SERVICE,
    FV_MOD_PROCEDURAL_GEN,
    FV_MOD_BEHAVIOR_AI,
    FV_MOD_API_GATEWAY,
    FV_MOD_SERVICE_REGISTRY,
    FV_MOD_COUNT
};

typedef struct fv_component {
    const char *name;       /* "song-engine" */
    int default_port;       /* 3001 */
    const char *role;       /* one line for tables and /info */
} fv_component_t;

extern const fv_component_t fv_components[FV_MOD_COUNT];

/* Index of a component by name, or -1. */
int fv_component_index(const char *name);

/* Port of component idx under port_base (0 = default ports). */
int fv_component_port(int idx, int port_base);

#endif
