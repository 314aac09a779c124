//! The schema, as an ordered list of migrations.
//!
//! `MIGRATIONS[i]` takes a database from `PRAGMA user_version` `i` to `i + 1`.
//! Migrations only ever get appended: a released one is never edited, because
//! databases out there already ran it. Each runs inside the one transaction
//! that also sets `user_version`, so a crash mid-migration leaves the old
//! version intact.
//!
//! # Conversations
//!
//! Every message belongs to exactly one conversation, named by `conv`:
//! `room`, `group:<group key>`, or `dm:<key>:<key>` with the two users' keys
//! sorted, so both directions of a direct conversation are one range of the
//! `(conv, id)` index. `:` cannot occur in a name, so the three never collide.
//! History is a backwards range scan of that index; replay is a forward scan
//! of the id (rowid) ranges of the room, the user's groups, and the two
//! partial indexes over direct messages to and from a user.

/// The schema version this build writes and understands.
pub(super) const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Marks a SQLite file as confab's (`PRAGMA application_id`, "conf").
pub(super) const APPLICATION_ID: i32 = 0x636f_6e66;

/// In order; see the module docs.
pub(super) const MIGRATIONS: &[&str] = &[
    // 0 -> 1: accounts, groups, messages, offline marks.
    r#"
CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL,          -- as registered (its spelling)
    name_key      TEXT    NOT NULL UNIQUE,   -- lower case: the identity
    password_hash TEXT    NOT NULL,          -- PHC string
    created_ms    INTEGER NOT NULL
);

CREATE TABLE groups (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    name_key   TEXT    NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL
);

CREATE TABLE group_members (
    group_id   INTEGER NOT NULL REFERENCES groups(id)   ON DELETE CASCADE,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    joined_ms  INTEGER NOT NULL,
    PRIMARY KEY (group_id, account_id)
) WITHOUT ROWID;
CREATE INDEX group_members_by_account ON group_members(account_id);

-- AUTOINCREMENT: ids are never reused, even after retention deletes the
-- newest rows; sqlite_sequence keeps the highest id ever assigned.
CREATE TABLE messages (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms      INTEGER NOT NULL,
    sender     TEXT    NOT NULL,
    sender_key TEXT    NOT NULL,
    kind       INTEGER NOT NULL CHECK (kind IN (0, 1, 2)),  -- room, group, user
    target     TEXT,     -- group or recipient as registered; NULL for the room
    target_key TEXT,
    conv       TEXT    NOT NULL,  -- see the module docs
    body       TEXT    NOT NULL,
    CHECK ((kind = 0) = (target IS NULL) AND (target IS NULL) = (target_key IS NULL))
);
CREATE INDEX messages_by_conversation ON messages(conv, id);
CREATE INDEX messages_dm_to   ON messages(target_key, id) WHERE kind = 2;
CREATE INDEX messages_dm_from ON messages(sender_key, id) WHERE kind = 2;

-- Direct messages up to seen_upto were routed while the user was online.
CREATE TABLE offline_marks (
    account_id INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    seen_upto  INTEGER NOT NULL
);
"#,
];
