-- 0002_logs.sqlite.sql - append-only logs with generated ids, and the embedded vector store's
-- table. SQLite flavour: INTEGER PRIMARY KEY is the rowid, vectors are BLOBs.

CREATE TABLE chat_messages (
    id        INTEGER PRIMARY KEY,
    channel   TEXT NOT NULL,
    sender_id TEXT REFERENCES players (id) ON DELETE SET NULL,
    body      TEXT NOT NULL,
    sent_at   BIGINT NOT NULL
);
CREATE INDEX chat_messages_channel ON chat_messages (channel, id);

CREATE TABLE chronicle_entries (
    id          INTEGER PRIMARY KEY,
    region_id   TEXT REFERENCES regions (id) ON DELETE SET NULL,
    player_id   TEXT REFERENCES players (id) ON DELETE SET NULL,
    kind        TEXT NOT NULL,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL DEFAULT '',
    occurred_at BIGINT NOT NULL
);
CREATE INDEX chronicle_region_time ON chronicle_entries (region_id, occurred_at);
CREATE INDEX chronicle_player_time ON chronicle_entries (player_id, occurred_at);

CREATE TABLE vectors (
    collection TEXT NOT NULL,
    id         TEXT NOT NULL,
    dim        INTEGER NOT NULL CHECK (dim > 0),
    vector     BLOB NOT NULL,
    payload    TEXT NOT NULL DEFAULT '{}',
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (collection, id)
);
