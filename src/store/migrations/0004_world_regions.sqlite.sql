-- 0004_world_regions.sqlite.sql - the world engine's saved regions: one row per region holding
-- its cells and weather in the engine's own binary form (world_codec.c: magic, version, then
-- each cell's harmony, corruption, flora, fauna, ward and biome). The rows are rewritten
-- together in one transaction every save interval, so a save cut short leaves the previous one
-- whole. sim_step is the world's simulation step at that save, seed the world seed it grew from.

CREATE TABLE world_regions (
    id       TEXT PRIMARY KEY,
    seed     BIGINT NOT NULL,
    sim_step BIGINT NOT NULL,
    state    BLOB NOT NULL,
    saved_at BIGINT NOT NULL
);
