-- 0005_world_players.sql - where each player last stood, so that a player who comes back (after
-- leaving, idling out or a restart) appears there. The world engine writes a row when a player
-- who moved or left since its last save is saved, in the same transaction as the regions, and
-- reads back the newest rows (remembered_places of them) at start. region is a region's slug,
-- x y z are metres in that region's frame, yaw radians, saved_at wall-clock milliseconds.

CREATE TABLE world_players (
    id       TEXT PRIMARY KEY,
    region   TEXT NOT NULL,
    x        DOUBLE PRECISION NOT NULL,
    y        DOUBLE PRECISION NOT NULL,
    z        DOUBLE PRECISION NOT NULL,
    yaw      DOUBLE PRECISION NOT NULL,
    saved_at BIGINT NOT NULL
);

CREATE INDEX world_players_saved_at ON world_players (saved_at);
