/* modules.h - every module descriptor the binary carries, and the lookup by name. */
#ifndef FV_RUNTIME_MODULES_H
#define FV_RUNTIME_MODULES_H

#include "runtime/module.h"

extern const fv_module_t fv_module_service_registry;
extern const fv_module_t fv_module_api_gateway;
extern const fv_module_t fv_module_websocket_gateway;
extern const fv_module_t fv_module_song_engine;
extern const fv_module_t fv_module_world_engine;
extern const fv_module_t fv_module_echo_engine;
extern const fv_module_t fv_module_ai_orchestra;
extern const fv_module_t fv_module_story_engine;
extern const fv_module_t fv_module_harmony_service;
extern const fv_module_t fv_module_asset_service;
extern const fv_module_t fv_module_community;
extern const fv_module_t fv_module_silence_service;
extern const fv_module_t fv_module_procedural_gen;
extern const fv_module_t fv_module_behavior_ai;

/* The descriptor of component idx (FV_MOD_*). */
const fv_module_t *fv_modules_get(int idx);

#endif
