//! The embedded store: SQLite (bundled), in one file, `<data dir>/confab.db`.
//!
//! # Concurrency
//!
//! Each thread opens its own [`SqliteStore`] on the same directory: one
//! writer thread (commits, retention) and a few reader threads (history,
//! replay, logins). The database runs in WAL mode, so readers never wait for
//! the writer and see a consistent snapshot; writes take the lock up front
//! (`BEGIN IMMEDIATE`) and wait up to [`SqliteOptions::busy_timeout`] for
//! another writer. Account changes are single statements and may run on any
//! store.
//!
//! # Durability
//!
//! [`Store::commit`] runs the whole batch in one transaction: with
//! [`Sync::Full`] it returns once the batch is fsynced, so one fsync covers
//! every message in it. With [`Sync::Normal`] a commit survives the process
//! crashing but the last ones may be lost if the machine loses power.
//! A message's row is committed at once; its entry in the conversation
//! index follows later (see `migrations.rs`, "The index backlog"), and each
//! indexing step is one transaction too, so a crash at any point leaves
//! every message either indexed or above `indexed_upto`, where readers
//! look for it.
//!
//! # Failures
//!
//! Nothing on disk is trusted: a corrupt file, a foreign database or a newer
//! schema is refused at [`SqliteStore::open`] (which also runs
//! `PRAGMA quick_check`, reading the whole file once). A full disk surfaces
//! as `SQLITE_FULL` from the statement or the commit that needed the space:
//! the transaction is rolled back and [`StoreError::Failed`] returned, with a
//! reason starting "the disk is full", so no write of that batch is
//! acknowledged and nothing is half-stored. Later batches succeed again once
//! there is room.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use confab_engine::effect::{
    GroupOp, HistoryLoaded, Latest, NewMessage, ReplayLoaded, ReplayScope, StoredMessage,
};
use confab_engine::name::NameKey;
use confab_engine::window::{Bound, Range};
use confab_engine::{ClientTags, MessageId, MessageKind, Name, ProtocolError, Target};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, Type, ValueRef};
use rusqlite::{
    params, params_from_iter, Connection, OpenFlags, OptionalExtension, Row, ToSql,
    TransactionBehavior,
};

use super::{Account, CatchUp, Loaded, Retention, Store, StoreError, StoredDevice, Write, Written};
use confab_engine::device::DeviceId;
use confab_engine::effect::DeviceRecord;

mod devices;
mod index;
mod lookups;
mod open;
mod reading;
mod rows;
mod write;
use index::*;
use lookups::*;
use open::*;
#[cfg(test)]
use reading::*;
use rows::*;
use write::*;
mod group_roles;
mod moderation;
pub use moderation::{AuditEntry, SanctionKind, StoredAddressBan, StoredSanction};
mod migrations;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_devices;
#[cfg(test)]
mod tests_history_from;
#[cfg(test)]
mod tests_tombstones;
mod tombstones;

use migrations::{APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION};

/// The database file's name inside the data directory.
pub const FILE_NAME: &str = "confab.db";

/// How hard a commit pushes data to the disk (`PRAGMA synchronous`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sync {
    /// Every commit is fsynced before it returns: an acknowledged message
    /// survives a power loss.
    #[default]
    Full,
    /// Commits survive the process crashing, but the newest ones may be lost
    /// on a power loss (WAL fsyncs only at checkpoints). Much faster for
    /// small batches.
    Normal,
}

/// How to open a [`SqliteStore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SqliteOptions {
    /// See [`Sync`].
    pub sync: Sync,
    /// How long a statement waits for a lock another store holds before it
    /// fails (e.g. a second writer, or a migration at start).
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    /// `Sync::Full`, 5 s busy timeout.
    fn default() -> SqliteOptions {
        SqliteOptions {
            sync: Sync::Full,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// One connection to `<data dir>/confab.db`; see the module docs.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// Messages this store has committed beyond the conversation index
    /// (counted at open; only the writer's store adds to it).
    backlog: u64,
    /// As opened; catching up runs with [`Sync::Normal`] (see there).
    sync: Sync,
    /// What commits look up for every message (see [`Lookups`]).
    lookups: Lookups,
}

/// The room's conversation id (created by the schema migration).
const ROOM_CONV_ID: i64 = 1;
const KIND_ROOM: i64 = 0;
const KIND_GROUP: i64 = 1;
const KIND_USER: i64 = 2;
/// Beyond this many conversations a replay looks them up in one go instead
/// of one index range each (SQLite allows 500 terms in a compound SELECT).
const MAX_CONV_BRANCHES: usize = 100;
/// The columns [`message_from_row`] reads, in order.
const MESSAGE_COLUMNS: &[&str] = &[
    "id", "ts_ms", "sender", "kind", "target", "body", "msg_kind",
];
/// Page cache per connection (a negative `cache_size` is KiB).
const CACHE_KIB: i64 = 32 * 1024;
/// Unindexed messages from which a spare moment is used to index them:
/// enough that each page of the index is written once for many entries.
const BACKLOG_SPARE: u64 = 1024;
/// Unindexed messages beyond which indexing goes on even while writes
/// wait, so that readers' scans of the unindexed rows stay short.
const BACKLOG_MAX: u64 = 8192;
/// Messages one indexing step takes (oldest first): well under a
/// millisecond of work, so a write arriving meanwhile waits little.
const INDEX_STEP: u64 = 1024;
/// The highest id assigned so far: the newest row's, or a higher one that
/// retention deleted.
const LAST_ID: &str = "SELECT max(coalesce((SELECT max(id) FROM messages), 0),
                                (SELECT last_id FROM message_ids))";
/// Messages at most this id are in `conversation_index`.
const INDEXED_UPTO: &str = "(SELECT indexed_upto FROM message_ids)";

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// A reason for [`StoreError::Open`] that says what to do.
fn describe_open(e: &rusqlite::Error) -> String {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::NotADatabase) => format!("it is not a SQLite database, or it is corrupt ({e})"),
        Some(C::DatabaseCorrupt) => format!("the database is corrupt ({e})"),
        Some(C::CannotOpen) => format!(
            "cannot open the file: the server must be able to write it and its directory, \
             where SQLite also creates {FILE_NAME}-wal and {FILE_NAME}-shm ({e})"
        ),
        Some(C::ReadOnly | C::PermissionDenied) => {
            format!("the database or its directory is read-only: the server must be able to write both (check owner and permissions) ({e})")
        }
        _ => describe(e),
    }
}

/// A reason for [`StoreError::Failed`].
fn describe(e: &rusqlite::Error) -> String {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::DiskFull) => format!("the disk is full (SQLITE_FULL): {e}"),
        Some(C::DatabaseBusy | C::DatabaseLocked) => {
            format!("the database stayed locked longer than the busy timeout: {e}")
        }
        Some(C::SystemIoFailure) => format!("I/O error: {e}"),
        Some(C::DatabaseCorrupt | C::NotADatabase) => format!("the database is corrupt: {e}"),
        _ => e.to_string(),
    }
}

fn failed(doing: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| StoreError::Failed {
        doing,
        reason: describe(&e),
    }
}

/// Ids and times go to SQLite as i64; ours never reach 2^63, and a bound
/// beyond it (a client's `before`) means "no bound".
fn sat_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| sat_i64(d.as_millis().try_into().unwrap_or(u64::MAX)))
}

impl Store for SqliteStore {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        const DOING: &str = "loading the groups";
        let tx = self.conn.transaction().map_err(failed(DOING))?;
        let last_id: i64 = tx
            .query_row(LAST_ID, [], |r| r.get(0))
            .map_err(failed(DOING))?;
        let mut groups: Vec<(Name, Vec<Name>)> = Vec::new();
        {
            let mut stmt = tx
                .prepare(
                    "SELECT g.id, g.name, a.name FROM groups g
                     LEFT JOIN group_members m ON m.group_id = g.id
                     LEFT JOIN accounts a ON a.id = m.account_id
                     ORDER BY g.name_key, g.id, a.name_key",
                )
                .map_err(failed(DOING))?;
            let mut rows = stmt.query([]).map_err(failed(DOING))?;
            let mut last_group = None;
            while let Some(row) = rows.next().map_err(failed(DOING))? {
                let gid: i64 = row.get(0).map_err(failed(DOING))?;
                if last_group != Some(gid) {
                    let DbName(name) = row.get(1).map_err(failed(DOING))?;
                    groups.push((name, Vec::new()));
                    last_group = Some(gid);
                }
                if let (Some(DbName(member)), Some((_, members))) = (
                    row.get::<_, Option<DbName>>(2).map_err(failed(DOING))?,
                    groups.last_mut(),
                ) {
                    members.push(member);
                }
            }
        }
        let roles = group_roles::roles(&tx).map_err(failed(DOING))?;
        let group_mutes = group_roles::mutes(&tx, now_ms()).map_err(failed(DOING))?;
        tx.commit().map_err(failed(DOING))?;
        Ok(Loaded {
            last_id: MessageId(last_id.unsigned_abs()),
            groups,
            roles,
            group_mutes,
        })
    }

    fn account(&mut self, user: &Name) -> Result<Option<Account>, StoreError> {
        self.conn
            .prepare_cached("SELECT name, password_hash FROM accounts WHERE name_key = ?1")
            .and_then(|mut s| {
                s.query_row([user.key().as_str()], |r| {
                    Ok(Account {
                        name: r.get::<_, DbName>(0)?.0,
                        password_hash: r.get(1)?,
                    })
                })
                .optional()
            })
            .map_err(failed("looking an account up"))
    }

    fn create_account(&mut self, user: &Name, password_hash: &str) -> Result<bool, StoreError> {
        // One statement in autocommit: durable when it returns.
        self.conn
            .prepare_cached(
                "INSERT INTO accounts (name, name_key, password_hash, created_ms, history_from)
                 VALUES (?1, ?2, ?3, ?4, (SELECT coalesce(max(id), 0) FROM messages))
                 ON CONFLICT (name_key) DO NOTHING",
            )
            .and_then(|mut s| {
                s.execute(params![
                    user.as_str(),
                    user.key().as_str(),
                    password_hash,
                    now_ms()
                ])
            })
            .map(|n| n == 1)
            .map_err(failed("creating an account"))
    }

    fn create_accounts(&mut self, accounts: &[(Name, String)]) -> Result<Vec<bool>, StoreError> {
        let created_ms = now_ms();
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .and_then(|tx| {
                let created = {
                    let mut s = tx.prepare_cached(
                        "INSERT INTO accounts (name, name_key, password_hash, created_ms, history_from)
                         VALUES (?1, ?2, ?3, ?4, (SELECT coalesce(max(id), 0) FROM messages))
                         ON CONFLICT (name_key) DO NOTHING",
                    )?;
                    accounts
                        .iter()
                        .map(|(user, hash)| {
                            s.execute(params![
                                user.as_str(),
                                user.key().as_str(),
                                hash,
                                created_ms
                            ])
                            .map(|n| n == 1)
                        })
                        .collect::<Result<Vec<bool>, _>>()?
                };
                tx.commit()?;
                Ok(created)
            })
            .map_err(failed("creating accounts"))
    }

    fn set_password(&mut self, user: &Name, password_hash: &str) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached("UPDATE accounts SET password_hash = ?1 WHERE name_key = ?2")
            .and_then(|mut s| s.execute(params![password_hash, user.key().as_str()]))
            .map(|n| n == 1)
            .map_err(failed("setting a password"))
    }

    fn delete_account(&mut self, user: &Name) -> Result<bool, StoreError> {
        // Memberships and the offline mark go with it (ON DELETE CASCADE);
        // the account's messages stay.
        // Its group roles and mutes too: a name registered again later
        // must not inherit them.
        group_roles::forget(&self.conn, None, user).map_err(failed("deleting an account"))?;
        self.conn
            .prepare_cached("DELETE FROM accounts WHERE name_key = ?1")
            .and_then(|mut s| s.execute([user.key().as_str()]))
            .map(|n| n == 1)
            .map_err(failed("deleting an account"))
    }

    fn accounts(&mut self) -> Result<Vec<Name>, StoreError> {
        self.conn
            .prepare_cached("SELECT name FROM accounts ORDER BY name_key")
            .and_then(|mut s| {
                s.query_map([], |r| r.get::<_, DbName>(0).map(|n| n.0))?
                    .collect()
            })
            .map_err(failed("listing accounts"))
    }

    fn commit(&mut self, batch: &[Write], now_ms: u64) -> Result<Vec<Written>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let written = commit_batch(&mut self.conn, &mut self.lookups, batch, now_ms);
        match &written {
            Ok(written) => {
                self.backlog += written
                    .iter()
                    .filter(|w| matches!(w, Written::Message(Ok(_))))
                    .count() as u64;
            }
            // It may have remembered rows that were rolled back.
            Err(_) => self.lookups.forget(),
        }
        written.map_err(failed("committing a batch"))
    }

    fn history_range(
        &mut self,
        user: &Name,
        target: &Target,
        range: &Range,
        newest: bool,
        limit: u16,
    ) -> Result<HistoryLoaded, StoreError> {
        self.history_range_in(user, target, range, newest, limit)
    }

    fn history_targets(
        &mut self,
        user: &Name,
        groups: &[Name],
        between: (u64, u64),
        limit: u16,
    ) -> Result<Vec<Latest>, StoreError> {
        self.history_targets_in(user, groups, between, limit)
    }

    fn replay(
        &mut self,
        user: &Name,
        scope: &ReplayScope,
        upto: MessageId,
        max: usize,
    ) -> Result<ReplayLoaded, StoreError> {
        self.replay_in(user, scope, upto, max)
    }

    fn device_by_token(
        &mut self,
        token_hash: &[u8; 32],
    ) -> Result<Option<StoredDevice>, StoreError> {
        devices::by_token(&self.conn, token_hash)
    }

    fn device_by_name(
        &mut self,
        user: &Name,
        device: &Name,
    ) -> Result<Option<StoredDevice>, StoreError> {
        devices::by_name(&self.conn, user, device)
    }

    fn create_device(
        &mut self,
        user: &Name,
        device: &Name,
        token_hash: Option<[u8; 32]>,
        now_ms: u64,
    ) -> Result<StoredDevice, StoreError> {
        devices::create(&self.conn, user, device, token_hash, now_ms)
    }

    fn set_device_token(
        &mut self,
        device: DeviceId,
        token_hash: Option<[u8; 32]>,
    ) -> Result<(), StoreError> {
        devices::set_token(&self.conn, device, token_hash)
    }

    fn touch_device(&mut self, device: DeviceId, now_ms: u64) -> Result<(), StoreError> {
        devices::touch(&self.conn, device, now_ms)
    }

    fn devices(&mut self, user: &Name) -> Result<Vec<DeviceRecord>, StoreError> {
        devices::list(&self.conn, user)
    }

    fn revoke_device(
        &mut self,
        user: &Name,
        device: &Name,
    ) -> Result<Option<DeviceId>, StoreError> {
        devices::revoke(&self.conn, user, device)
    }

    fn moderate(
        &mut self,
        record: &confab_engine::effect::ModerationRecord,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.record_moderation(record, now_ms)
    }

    fn record_address_ban(
        &mut self,
        record: &confab_engine::effect::AddressBanRecord,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let actor = record.actor.as_str();
        if record.lift {
            return self.lift_address(&record.block, actor).map(|_| ());
        }
        let ban = StoredAddressBan {
            net: record.block.clone(),
            until_ms: (record.seconds > 0)
                .then(|| now_ms.saturating_add(u64::from(record.seconds) * 1000)),
            reason: record.reason.clone(),
        };
        self.ban_address(&ban, actor)
    }

    fn message(&mut self, id: MessageId) -> Result<Option<StoredMessage>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT id, ts_ms, sender, kind, target, body, msg_kind FROM messages WHERE id = ?1",
            )
            .and_then(|mut s| s.query_row([sat_i64(id.0)], message_from_row).optional())
            .map_err(failed("loading a message"))
    }

    fn delete_message(
        &mut self,
        id: MessageId,
        by: &Name,
        reason: &str,
        now_ms: u64,
    ) -> Result<Option<StoredMessage>, StoreError> {
        self.tombstone(id, by, reason, now_ms)
    }

    fn audit_line(
        &mut self,
        line: &confab_engine::effect::AuditLine,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        moderation::audit_in(
            &self.conn,
            sat_i64(now_ms),
            line.actor.as_str(),
            line.action,
            &line.target,
            &line.reason,
        )
        .map_err(failed("writing the audit log"))
    }

    fn revoke_devices(&mut self, user: &Name) -> Result<Vec<DeviceId>, StoreError> {
        devices::revoke_all(&self.conn, user)
    }

    fn read_markers(
        &mut self,
        user: &Name,
        max: u16,
    ) -> Result<Vec<(Target, MessageId)>, StoreError> {
        devices::read_markers(&self.conn, user, max)
    }

    fn prune_sends(&mut self, older_than_ms: u64, keep: u32) -> Result<u64, StoreError> {
        devices::prune_sends(&mut self.conn, older_than_ms, keep)
    }

    fn apply_retention(&mut self, retention: &Retention, now_ms: u64) -> Result<u64, StoreError> {
        const DOING: &str = "applying retention";
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(failed(DOING))?;
        // Retention counts per conversation, so everything is indexed first
        // (which also records the highest id in `last_id`).
        index_all(&tx).map_err(failed(DOING))?;
        let mut deleted = 0;
        if let Some(secs) = retention.max_age_secs {
            let cutoff = sat_i64(now_ms).saturating_sub(sat_i64(secs.saturating_mul(1000)));
            tx.execute(
                "DELETE FROM conversation_index WHERE (conv_id, id) IN
                     (SELECT conv_id, id FROM messages WHERE ts_ms < ?1)",
                [cutoff],
            )
            .map_err(failed(DOING))?;
            deleted += tx
                .execute("DELETE FROM messages WHERE ts_ms < ?1", [cutoff])
                .map_err(failed(DOING))?;
        }
        if let Some(keep) = retention.max_count {
            let beyond = "SELECT conv_id, id FROM (
                              SELECT conv_id, id,
                                     row_number() OVER (PARTITION BY conv_id ORDER BY id DESC) AS n
                              FROM conversation_index)
                          WHERE n > ?1";
            deleted += tx
                .execute(
                    &format!("DELETE FROM messages WHERE id IN (SELECT id FROM ({beyond}))"),
                    [sat_i64(keep)],
                )
                .map_err(failed(DOING))?;
            tx.execute(
                &format!("DELETE FROM conversation_index WHERE (conv_id, id) IN ({beyond})"),
                [sat_i64(keep)],
            )
            .map_err(failed(DOING))?;
        }
        if deleted > 0 {
            // The tombstones of messages gone go with them.
            tx.execute(
                "DELETE FROM deletions WHERE id NOT IN (SELECT id FROM messages)",
                [],
            )
            .map_err(failed(DOING))?;
        }
        tx.commit().map_err(failed(DOING))?;
        // Only now: had the transaction failed, the messages would still be
        // unindexed, and counted.
        self.backlog = 0;
        Ok(deleted as u64)
    }

    /// Indexes the newest messages (see the migrations' module docs), in
    /// steps of the oldest [`INDEX_STEP`], so that the writer is never held
    /// up for long and each index page is written once per step for many
    /// entries. Each step is one transaction: a message is either in the
    /// index or above `indexed_upto`, even across a crash.
    fn catch_up(&mut self, when: CatchUp) -> Result<u64, StoreError> {
        const DOING: &str = "indexing the newest messages";
        let worth = match when {
            CatchUp::Due => BACKLOG_MAX,
            CatchUp::Spare => BACKLOG_SPARE,
            CatchUp::All => 1,
        };
        if self.backlog < worth {
            return Ok(0);
        }
        // The index is derived from rows already durable: a crash may
        // lose a step (and its `indexed_upto` with it), never a message,
        // so a step need not wait for an fsync of its own; the next
        // commit's fsync covers it. NORMAL, not OFF: checkpoints still
        // sync the WAL before copying it into the database file.
        let relaxed = self.sync == Sync::Full;
        if relaxed {
            set_sync(&self.conn, Sync::Normal).map_err(failed(DOING))?;
        }
        let outcome = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .and_then(|tx| {
                let indexed = if when == CatchUp::All {
                    index_all(&tx)
                } else {
                    index_step(&tx, INDEX_STEP)
                }?;
                tx.commit()?;
                Ok(indexed)
            });
        if relaxed {
            set_sync(&self.conn, Sync::Full).map_err(failed(DOING))?;
        }
        let indexed = outcome.map_err(failed(DOING))?;
        self.backlog = self.backlog.saturating_sub(indexed);
        Ok(indexed)
    }
}
