//! The PostgreSQL schema: created if absent, in one transaction, so the
//! first of several nodes starting together creates it and the others
//! find it (a transaction-level advisory lock keeps them from racing).
//!
//! Names are stored as spelled and by their case-folded key (`*_key`),
//! which every lookup uses. Message ids come from the one-row `counter`
//! table, updated inside each commit's transaction: the row lock orders
//! the commits of every node, so ids increase in commit order across the
//! cluster and a reader that sees the counter at N sees every id ≤ N
//! (a plain sequence would not: a transaction may commit after one
//! holding a larger value). The `cluster` row's random id names the bus
//! channel of the nodes sharing this database, so clusters sharing one
//! bus never hear each other.

/// The schema, idempotent.
pub(super) const SCHEMA: &str = "
SET LOCAL client_min_messages = warning;
SELECT pg_advisory_xact_lock(727210);
CREATE TABLE IF NOT EXISTS cluster (
    one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    id TEXT NOT NULL
);
INSERT INTO cluster (one, id) VALUES (TRUE, md5(random()::text || clock_timestamp()::text))
    ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS accounts (
    name_key TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    hash TEXT NOT NULL,
    operator BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE TABLE IF NOT EXISTS groups (
    name_key TEXT PRIMARY KEY,
    name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    group_key TEXT NOT NULL REFERENCES groups (name_key) ON DELETE CASCADE,
    user_key TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (group_key, user_key)
);
CREATE TABLE IF NOT EXISTS counter (
    one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    last_id BIGINT NOT NULL
);
INSERT INTO counter (one, last_id) VALUES (TRUE, 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS messages (
    id BIGINT PRIMARY KEY,
    ts BIGINT NOT NULL,
    sender TEXT NOT NULL,
    sender_key TEXT NOT NULL,
    kind SMALLINT NOT NULL,
    target TEXT NOT NULL,
    target_key TEXT NOT NULL,
    conv TEXT NOT NULL,
    body TEXT NOT NULL,
    -- The node that committed it (0: none named): a node reading back
    -- its own commit waits for its writer's copy, which names the sender.
    node BIGINT NOT NULL DEFAULT 0,
    -- A tombstone's deleter (its body is emptied).
    deleted_by TEXT
);
CREATE INDEX IF NOT EXISTS messages_conv ON messages (conv, id);
-- CHATHISTORY's timestamp bounds: the first id committed after a time.
CREATE INDEX IF NOT EXISTS messages_ts ON messages (ts);
-- A message's kind (0 a message, 1 a notice: `MessageKind::code`), added
-- after the table was: older rows are messages.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS msg_kind SMALLINT NOT NULL DEFAULT 0;
CREATE TABLE IF NOT EXISTS offline (
    user_key TEXT PRIMARY KEY,
    seen_upto BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
    id BIGSERIAL PRIMARY KEY,
    user_key TEXT NOT NULL,
    user_name TEXT NOT NULL,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    token_hash BYTEA UNIQUE,
    bookmark BIGINT NOT NULL DEFAULT 0,
    UNIQUE (user_key, name_key)
);
CREATE TABLE IF NOT EXISTS sends (
    device BIGINT NOT NULL,
    client_id BIGINT NOT NULL,
    msg_id BIGINT NOT NULL,
    ts BIGINT NOT NULL,
    PRIMARY KEY (device, client_id)
);
CREATE SEQUENCE IF NOT EXISTS marker_seq;
CREATE TABLE IF NOT EXISTS markers (
    user_key TEXT NOT NULL,
    conv TEXT NOT NULL,
    kind SMALLINT NOT NULL,
    target TEXT NOT NULL,
    id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (user_key, conv)
);
CREATE TABLE IF NOT EXISTS sanctions (
    kind TEXT NOT NULL,
    name_key TEXT NOT NULL,
    name TEXT NOT NULL,
    until_ms BIGINT,
    reason TEXT NOT NULL,
    by_whom TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (kind, name_key)
);
CREATE TABLE IF NOT EXISTS audit (
    seq BIGSERIAL PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    reason TEXT NOT NULL
);
";
