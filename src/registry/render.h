/* render.h - the registry's JSON written straight into a buffer: the catalog file and the
 * views that blocking queries wait on, without building jansson objects first (which at tens
 * of thousands of instances costs the shared loop tens of milliseconds to seconds). Each
 * writer produces the same document as its jansson counterpart in catalog.c / persist.c;
 * the tests compare them. Pure. */
#ifndef FV_REGISTRY_RENDER_H
#define FV_REGISTRY_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "registry/catalog.h"

/* An output with a sticky error: after the first failed append the rest do nothing, and rc
 * says what failed. */
typedef struct registry_out {
    fv_buf_t *b;
    int rc;
} registry_out_t;

void registry_out_raw(registry_out_t *o, const char *p, size_t len);
void registry_out_lit(registry_out_t *o, const char *s);
void registry_out_u64(registry_out_t *o, uint64_t v);
/* s as a JSON string; s is valid UTF-8 (everything in the catalog was checked on the way in). */
void registry_out_str(registry_out_t *o, const char *s);
/* inst's tags as a JSON array, its Meta as a JSON object. */
void registry_out_tags(registry_out_t *o, const registry_instance_t *inst);
void registry_out_meta(registry_out_t *o, const registry_instance_t *inst);

/* The views, as registry_json_agent_services / _catalog_service / _health_service give them.
 * 0 or the first append's failure. */
FV_MUST_USE int registry_render_agent_services(const registry_catalog_t *cat, fv_buf_t *b);
FV_MUST_USE int registry_render_catalog_service(const registry_catalog_t *cat, const char *name,
                                                fv_buf_t *b);
FV_MUST_USE int registry_render_health_service(const registry_catalog_t *cat, const char *name,
                                               bool passing_only, fv_buf_t *b);

#endif
