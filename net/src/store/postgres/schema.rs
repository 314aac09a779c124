//! The PostgreSQL schema, as ordered steps: `STEPS[i]` takes a database
//! from `schema_version` `i` to `i + 1`. Steps are only ever appended (a
//! database out there ran the old ones). They run in one transaction
//! under a transaction-level advisory lock, so the first of several nodes
//! starting together brings the schema up and the others find it done.
//! Step 1 is idempotent (`IF NOT EXISTS`): a database made before the
//! version row existed reads as version 0 and runs it harmlessly.
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

/// Taken before the steps: the lock, and the version row.
pub(super) const PRELUDE: &str = "
SET LOCAL client_min_messages = warning;
SELECT pg_advisory_xact_lock(727210);
CREATE TABLE IF NOT EXISTS schema_version (
    one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    version INTEGER NOT NULL
);
INSERT INTO schema_version (one, version) VALUES (TRUE, 0) ON CONFLICT DO NOTHING;
";

/// In order; see the module docs.
pub(super) const STEPS: &[&str] = &[STEP_1, STEP_2, STEP_3, STEP_4];

/// 0 -> 1: accounts, groups, history, devices, sends, markers, sanctions,
/// the audit log, the counter.
const STEP_1: &str = "
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

/// 1 -> 2: group roles and mutes (the owner, written with the group; the
/// moderators it appoints; mutes in a group), by name keys as on SQLite
/// (see `group_roles.rs`), and bans of address blocks by their canonical
/// CIDR text (`10.0.0.0/8`; one address is a /32 or /128), `until_ms`
/// NULL for good (see `address_bans.rs`).
const STEP_2: &str = "
CREATE TABLE group_roles (
    group_key TEXT NOT NULL,
    name_key TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'moderator')),
    PRIMARY KEY (group_key, name_key)
);
CREATE INDEX group_roles_by_name ON group_roles (name_key);
CREATE TABLE group_mutes (
    group_key TEXT NOT NULL,
    name_key TEXT NOT NULL,
    group_name TEXT NOT NULL,
    name TEXT NOT NULL,
    until_ms BIGINT,
    reason TEXT NOT NULL,
    PRIMARY KEY (group_key, name_key)
);
CREATE INDEX group_mutes_by_name ON group_mutes (name_key);
CREATE TABLE address_bans (
    net TEXT PRIMARY KEY,
    until_ms BIGINT,
    reason TEXT NOT NULL,
    by_whom TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);
";

/// Brings the database to the newest step, in `tx`; a database of a
/// newer build (a version beyond [`STEPS`]) is refused, not written.
pub(super) fn bring_up(tx: &mut postgres::Transaction<'_>) -> Result<(), String> {
    let describe = |e: postgres::Error| super::describe(&e);
    tx.batch_execute(PRELUDE).map_err(describe)?;
    let version: i32 = tx
        .query_one("SELECT version FROM schema_version", &[])
        .map_err(describe)?
        .get(0);
    let newest = STEPS.len();
    let from = usize::try_from(version).unwrap_or(usize::MAX);
    if from > newest {
        return Err(format!(
            "the schema is at version {version}, newer than this build's {newest}: upgrade confab-server"
        ));
    }
    for step in &STEPS[from..] {
        tx.batch_execute(step).map_err(describe)?;
    }
    if from < newest {
        tx.execute(
            "UPDATE schema_version SET version = $1",
            &[&(newest as i32)],
        )
        .map_err(describe)?;
    }
    Ok(())
}

/// Step 3: a message's kind (0 a message, 1 a notice: `MessageKind::code`,
/// IRC's NOTICE), added after the table was: older rows are messages.
const STEP_3: &str = "
ALTER TABLE messages ADD COLUMN IF NOT EXISTS msg_kind SMALLINT NOT NULL DEFAULT 0;
";

/// Step 4: the newest message id when the account was made; its direct
/// messages and replays start after it, so that a name deleted and
/// registered again is not given the old account's direct conversations
/// (keyed by name). Older accounts see everything, as before.
const STEP_4: &str = "
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS history_from BIGINT NOT NULL DEFAULT 0;
";
