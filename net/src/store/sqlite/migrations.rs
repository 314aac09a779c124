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
//! Every message belongs to exactly one conversation: the room, a group,
//! or the direct messages between two users (both directions). Since
//! version 2 each has an integer id in `conversations`, keyed `room`,
//! `group:<group key>` or `dm:<key>:<key>` with the two users' keys sorted
//! (`:` cannot occur in a name, so the three never collide), and
//! `dm_parties` lists the direct conversations each user is in. Messages
//! are indexed by `(conv_id, id)` (in `conversation_index` since version
//! 3): history is a backwards range scan of one conversation, replay a
//! forward scan of each of the user's (the room, their groups, their direct
//! conversations). Version 1 had three text
//! indexes (conversation, and direct messages to and from a user); every
//! message cost a leaf page of each.
//!
//! # The index backlog (since version 3)
//!
//! `messages` is a plain table by id, and a commit appends to its end, so
//! it dirties the last page or two whichever conversations its messages
//! belong to. The index of conversations, `conversation_index`
//! `(conv_id, id)`, is filled later, between batches, by the writer
//! (`SqliteStore::catch_up`): many messages at a time, sorted by
//! conversation, so each of its pages is written once for many entries.
//! Inserted at commit, 100 messages in 100 conversations dirtied an index
//! leaf per conversation, and writing those pages to the WAL, not the
//! fsync, capped throughput (23,000 messages/s against 130,000 without,
//! `store_speed` example).
//!
//! `message_ids` (one row) says where that stands: every message with an
//! id up to `indexed_upto` is in the index, none above it is; readers take
//! the indexed part through the index and scan the few newer rows, in one
//! snapshot. It also keeps `last_id`, the highest id ever assigned as of
//! the last indexing or retention, so ids are never reused even when
//! retention deletes the newest messages: the writer gives each message
//! the next id after both it and the newest row.
//!
//! Version 2 had a `journal` table from which whole rows were moved into
//! `messages` (then indexed); moving the row cost three times as much as
//! indexing it in place.

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
    // 1 -> 2: conversations by integer id, one index, and the journal (see
    // the module docs; the journal went again in version 3).
    r#"
CREATE TABLE conversations (
    id  INTEGER PRIMARY KEY,
    key TEXT    NOT NULL UNIQUE  -- 'room', 'group:<key>', 'dm:<key>:<key>'
);
INSERT INTO conversations (id, key) VALUES (1, 'room');
INSERT INTO conversations (key)
    SELECT DISTINCT conv FROM messages WHERE conv <> 'room' ORDER BY conv;

-- The direct conversations each user is a party to (one row for a
-- conversation with oneself).
CREATE TABLE dm_parties (
    user_key TEXT    NOT NULL,
    conv_id  INTEGER NOT NULL REFERENCES conversations(id),
    PRIMARY KEY (user_key, conv_id)
) WITHOUT ROWID;
INSERT OR IGNORE INTO dm_parties (user_key, conv_id)
    SELECT sender_key, c.id FROM messages JOIN conversations c ON c.key = conv WHERE kind = 2
    UNION
    SELECT target_key, c.id FROM messages JOIN conversations c ON c.key = conv WHERE kind = 2;

DROP INDEX messages_by_conversation;
DROP INDEX messages_dm_to;
DROP INDEX messages_dm_from;
ALTER TABLE messages ADD COLUMN conv_id INTEGER NOT NULL DEFAULT 0;
UPDATE messages SET conv_id = (SELECT id FROM conversations WHERE key = messages.conv);
ALTER TABLE messages DROP COLUMN conv;
CREATE INDEX messages_by_conversation ON messages (conv_id, id);

CREATE TABLE journal (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms      INTEGER NOT NULL,
    sender     TEXT    NOT NULL,
    sender_key TEXT    NOT NULL,
    kind       INTEGER NOT NULL CHECK (kind IN (0, 1, 2)),
    target     TEXT,
    target_key TEXT,
    conv_id    INTEGER NOT NULL,
    body       TEXT    NOT NULL,
    CHECK ((kind = 0) = (target IS NULL) AND (target IS NULL) = (target_key IS NULL))
);
-- Ids continue after the highest ever assigned in messages.
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'journal', max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0),
                          coalesce((SELECT max(id) FROM messages), 0));
"#,
    // 2 -> 3: messages indexed in place, in the background (see the module
    // docs): the journal goes, ids are assigned by the writer.
    r#"
CREATE TABLE message_log (
    id         INTEGER PRIMARY KEY,  -- assigned by the writer, never reused
    ts_ms      INTEGER NOT NULL,
    sender     TEXT    NOT NULL,
    sender_key TEXT    NOT NULL,
    kind       INTEGER NOT NULL CHECK (kind IN (0, 1, 2)),  -- room, group, user
    target     TEXT,     -- group or recipient as registered; NULL for the room
    target_key TEXT,
    conv_id    INTEGER NOT NULL,
    body       TEXT    NOT NULL,
    CHECK ((kind = 0) = (target IS NULL) AND (target IS NULL) = (target_key IS NULL))
);
INSERT INTO message_log (id, ts_ms, sender, sender_key, kind, target, target_key, conv_id, body)
    SELECT id, ts_ms, sender, sender_key, kind, target, target_key, conv_id, body FROM messages
    UNION ALL
    SELECT id, ts_ms, sender, sender_key, kind, target, target_key, conv_id, body FROM journal
    ORDER BY 1;

CREATE TABLE conversation_index (
    conv_id INTEGER NOT NULL,
    id      INTEGER NOT NULL,
    PRIMARY KEY (conv_id, id)
) WITHOUT ROWID;
INSERT INTO conversation_index (conv_id, id)
    SELECT conv_id, id FROM message_log ORDER BY conv_id, id;

CREATE TABLE message_ids (
    one          INTEGER PRIMARY KEY CHECK (one = 1),
    last_id      INTEGER NOT NULL,  -- the highest id ever assigned (as of the last indexing)
    indexed_upto INTEGER NOT NULL   -- ids up to this are in conversation_index, none above
);
INSERT INTO message_ids (one, last_id, indexed_upto)
    SELECT 1, max(coalesce((SELECT max(seq) FROM sqlite_sequence WHERE name IN ('messages', 'journal')), 0),
                   coalesce((SELECT max(id) FROM message_log), 0)),
              coalesce((SELECT max(id) FROM message_log), 0);

DROP TABLE journal;
DROP TABLE messages;
ALTER TABLE message_log RENAME TO messages;
"#,
    // 3 -> 4: protocol version 2's devices, exactly-once send records and
    // read markers (see devices.rs).
    r#"
-- AUTOINCREMENT: a device id is never reused, so a stale bookmark or send
-- record can never be taken for another device's.
CREATE TABLE devices (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id   INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,            -- as first named
    name_key     TEXT    NOT NULL,            -- lower case: unique per account
    token_hash   BLOB    UNIQUE CHECK (token_hash IS NULL OR length(token_hash) = 32),
    created_ms   INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    bookmark     INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account_id, name_key)
);

-- Each committed SEND2's key, written in the same transaction as its
-- message; the message id and time are kept here, so a retry is answered
-- even after retention deleted the message.
CREATE TABLE sends (
    device     INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    client_id  INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    ts_ms      INTEGER NOT NULL,
    PRIMARY KEY (device, client_id)
) WITHOUT ROWID;
CREATE INDEX sends_by_time ON sends(ts_ms);

-- kind as in messages (0 room, 1 group, 2 user); target_key '' for the
-- room; set_seq orders markers by when they were last set.
CREATE TABLE read_markers (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    kind       INTEGER NOT NULL CHECK (kind IN (0, 1, 2)),
    target_key TEXT    NOT NULL,
    target     TEXT,
    id         INTEGER NOT NULL,
    set_seq    INTEGER NOT NULL,
    PRIMARY KEY (account_id, kind, target_key)
) WITHOUT ROWID;
CREATE INDEX read_markers_by_seq ON read_markers(account_id, set_seq);
"#,
    // 4 -> 5: moderation (issue 20): server operators, bans and mutes
    // that outlive a restart, and the audit log of every action.
    r#"
ALTER TABLE accounts ADD COLUMN operator INTEGER NOT NULL DEFAULT 0 CHECK (operator IN (0, 1));

-- kind 'ban' or 'mute'; one of each per account key at most (a new one
-- replaces it); until_ms NULL: until lifted. Keyed by name, not account
-- id, so that a ban outlives a deleted account that is registered again.
CREATE TABLE sanctions (
    kind     TEXT    NOT NULL CHECK (kind IN ('ban', 'mute')),
    name_key TEXT    NOT NULL,
    name     TEXT    NOT NULL,
    until_ms INTEGER,
    reason   TEXT    NOT NULL,
    by       TEXT    NOT NULL,
    at_ms    INTEGER NOT NULL,
    PRIMARY KEY (kind, name_key)
) WITHOUT ROWID;

-- Who did what to whom, when and why; actor is an account name or
-- 'operator' (the command line).
CREATE TABLE audit (
    id     INTEGER PRIMARY KEY,
    at_ms  INTEGER NOT NULL,
    actor  TEXT    NOT NULL,
    action TEXT    NOT NULL,
    target TEXT    NOT NULL,
    reason TEXT    NOT NULL
);
"#,
    // 5 -> 6: deleted messages (issue 20): the body is emptied in place,
    // and who deleted it, and why, is kept here (see tombstones.rs); and
    // bans of address blocks (see moderation.rs).
    r#"
CREATE TABLE deletions (
    id     INTEGER PRIMARY KEY,  -- the message's id
    by     TEXT    NOT NULL,     -- an account name, or 'operator'
    reason TEXT    NOT NULL,
    at_ms  INTEGER NOT NULL
);

-- Banned address blocks, by their canonical CIDR text (10.0.0.0/8,
-- 2001:db8::/32; one address is a /32 or /128); until_ms NULL: for good.
-- Group roles (the owner, written with the group; moderators it
-- appoints) and mutes in a group, by name keys (see group_roles.rs).
-- Groups older than this have no owner: operators act on them.
CREATE TABLE group_roles (
    group_key TEXT NOT NULL,
    name_key  TEXT NOT NULL,
    name      TEXT NOT NULL,
    role      TEXT NOT NULL CHECK (role IN ('owner', 'moderator')),
    PRIMARY KEY (group_key, name_key)
) WITHOUT ROWID;
CREATE TABLE group_mutes (
    group_key  TEXT NOT NULL,
    name_key   TEXT NOT NULL,
    group_name TEXT NOT NULL,
    name       TEXT NOT NULL,
    until_ms   INTEGER,
    reason     TEXT NOT NULL,
    PRIMARY KEY (group_key, name_key)
) WITHOUT ROWID;

CREATE TABLE address_bans (
    net      TEXT    PRIMARY KEY,
    until_ms INTEGER,
    reason   TEXT    NOT NULL,
    by       TEXT    NOT NULL,
    at_ms    INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    // n -> n + 1: a message's kind (issue 19: IRC's NOTICE beside its
    // PRIVMSG), so history replays a notice as one; 0 a message, 1 a
    // notice (`MessageKind::code`). Older rows are messages.
    r#"
ALTER TABLE messages ADD COLUMN msg_kind INTEGER NOT NULL DEFAULT 0 CHECK (msg_kind IN (0, 1));
"#,
    // n -> n + 1: the newest message id when the account was made. Its
    // direct messages, and what it is replayed, start after it: a name
    // deleted and registered again (or a guest's name claimed) is a new
    // person, who must not read the old account's direct conversations,
    // which are keyed by name. For the accounts already there: a direct
    // message naming an account from before the account was made can
    // only be an earlier account's of that name (a message to a name
    // nobody has is refused), so the newest such is its floor; the others
    // have none (0). Two passes over the messages, each a key lookup.
    r#"
ALTER TABLE accounts ADD COLUMN history_from INTEGER NOT NULL DEFAULT 0;
CREATE TEMP TABLE earlier_dms AS
    SELECT k, max(id) AS upto FROM (
        SELECT a.name_key AS k, m.id AS id FROM messages m
            JOIN accounts a ON a.name_key = m.sender_key
            WHERE m.kind = 2 AND m.ts_ms < a.created_ms
        UNION ALL
        SELECT a.name_key, m.id FROM messages m
            JOIN accounts a ON a.name_key = m.target_key
            WHERE m.kind = 2 AND m.ts_ms < a.created_ms)
    GROUP BY k;
UPDATE accounts SET history_from = (SELECT upto FROM earlier_dms WHERE k = accounts.name_key)
    WHERE name_key IN (SELECT k FROM earlier_dms);
DROP TABLE earlier_dms;
"#,
];
