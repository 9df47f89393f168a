-- 0003_auth_accounts.sql - sign-in names and password hashes of players, for the API gateway's
-- /api/auth routes. The older accounts table is keyed by an email that registration does not
-- ask for, so sign-in has a table of its own. name_key is the name in ASCII lower case: names are
-- unique whatever their case. password_hash is libsodium's argon2id string; NULL for a guest,
-- who has no password and cannot log in again. guest is 0 or 1.

CREATE TABLE auth_accounts (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    name_key      TEXT NOT NULL UNIQUE,
    password_hash TEXT,
    guest         INTEGER NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL
);
