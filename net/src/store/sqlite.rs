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
    GroupOp, HistoryLoaded, NewMessage, ReplayLoaded, ReplayScope, StoredMessage,
};
use confab_engine::name::NameKey;
use confab_engine::window::{Bound, Range};
use confab_engine::{MessageId, Name, ProtocolError, Target};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, Type, ValueRef};
use rusqlite::{
    params, params_from_iter, Connection, OpenFlags, OptionalExtension, Row, ToSql,
    TransactionBehavior,
};

use super::{Account, CatchUp, Loaded, Retention, Store, StoreError, StoredDevice, Write, Written};
use confab_engine::device::DeviceId;
use confab_engine::effect::DeviceRecord;

mod devices;
mod group_roles;
mod moderation;
pub use moderation::{AuditEntry, SanctionKind, StoredAddressBan, StoredSanction};
mod migrations;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_devices;
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

/// Names and conversation ids that commits look up for every message,
/// remembered from one commit to the next: each costs a statement
/// otherwise, as much as the message's own insert.
///
/// Groups and conversations are created only by commits (the writer's) and
/// never deleted; accounts are created and deleted by other connections
/// too, so everything is forgotten whenever `PRAGMA data_version` says
/// another connection committed, and after a commit that failed (it may
/// have remembered rows it created and rolled back). Each map is bounded
/// by [`LOOKUPS_MAX`], and forgotten when full.
#[derive(Debug, Default)]
struct Lookups {
    data_version: Option<i64>,
    /// Registered name by key.
    accounts: HashMap<NameKey, Name>,
    /// Name as created by key.
    groups: HashMap<NameKey, Name>,
    conversations: HashMap<ConvKey, i64>,
}

/// A conversation other than the room, by its parties' keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum ConvKey {
    Group(NameKey),
    /// The two keys, sorted.
    Direct(NameKey, NameKey),
}

impl ConvKey {
    fn direct(a: &Name, b: &Name) -> ConvKey {
        let (a, b) = (a.key(), b.key());
        if a <= b {
            ConvKey::Direct(a, b)
        } else {
            ConvKey::Direct(b, a)
        }
    }

    /// The `conversations.key` (see the migrations' module docs).
    fn text(&self) -> String {
        match self {
            ConvKey::Group(g) => format!("group:{}", g.as_str()),
            ConvKey::Direct(a, b) => format!("dm:{}:{}", a.as_str(), b.as_str()),
        }
    }
}

/// Most entries in each map of [`Lookups`].
const LOOKUPS_MAX: usize = 1 << 16;

/// Remembers `v` under `k` in `map`, which is forgotten first when full.
fn remember<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, k: K, v: V) {
    if map.len() >= LOOKUPS_MAX {
        map.clear();
    }
    map.insert(k, v);
}

impl Lookups {
    fn forget(&mut self) {
        self.accounts.clear();
        self.groups.clear();
        self.conversations.clear();
    }

    /// Forgets everything if another connection committed since the last
    /// call; called in each write transaction.
    fn revalidate(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let version: i64 = conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        if self.data_version != Some(version) {
            self.forget();
            self.data_version = Some(version);
        }
        Ok(())
    }

    /// The registered name of `user`'s account, if there is one.
    fn account(&mut self, conn: &Connection, user: &Name) -> rusqlite::Result<Option<Name>> {
        if let Some(name) = self.accounts.get(&user.key()) {
            return Ok(Some(*name));
        }
        let found = account_id(conn, user)?.map(|(_, DbName(name))| name);
        if let Some(name) = found {
            remember(&mut self.accounts, user.key(), name);
        }
        Ok(found)
    }

    /// The name of `group` as created, if it exists.
    fn group(&mut self, conn: &Connection, group: &Name) -> rusqlite::Result<Option<Name>> {
        if let Some(name) = self.groups.get(&group.key()) {
            return Ok(Some(*name));
        }
        let found = group_id(conn, group)?.map(|(_, DbName(name))| name);
        if let Some(name) = found {
            remember(&mut self.groups, group.key(), name);
        }
        Ok(found)
    }

    /// The id of the conversation `key`, created on its first message.
    fn conversation(&mut self, conn: &Connection, key: ConvKey) -> rusqlite::Result<i64> {
        if let Some(id) = self.conversations.get(&key) {
            return Ok(*id);
        }
        let parties = match &key {
            ConvKey::Group(_) => vec![],
            ConvKey::Direct(a, b) => vec![a.as_str(), b.as_str()],
        };
        let id = conversation_for_message(conn, &key.text(), &parties)?;
        remember(&mut self.conversations, key, id);
        Ok(id)
    }
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
const MESSAGE_COLUMNS: &[&str] = &["id", "ts_ms", "sender", "kind", "target", "body"];
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

impl SqliteStore {
    /// Opens (creating if needed) `data_dir/confab.db`, migrating its schema
    /// to the current version. Creates `data_dir` if it does not exist.
    ///
    /// Errors: [`StoreError::Open`] if the directory or file cannot be used
    /// (not writable, not a database, corrupt, not confab's);
    /// [`StoreError::TooNew`] if a newer confab wrote it.
    pub fn open(data_dir: &Path, options: &SqliteOptions) -> Result<SqliteStore, StoreError> {
        let path = data_dir.join(FILE_NAME);
        let open_err = |reason: String| StoreError::Open {
            path: path.display().to_string(),
            reason,
        };
        match std::fs::metadata(data_dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(open_err(format!(
                    "the data directory {} is not a directory",
                    data_dir.display()
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir).map_err(|e| {
                    open_err(format!(
                        "cannot create the data directory {}: {e}",
                        data_dir.display()
                    ))
                })?;
            }
            Err(e) => {
                return Err(open_err(format!(
                    "cannot access the data directory {}: {e}",
                    data_dir.display()
                )))
            }
        }
        let step = |doing: &'static str| {
            let open_err = &open_err;
            move |e: rusqlite::Error| open_err(format!("{doing}: {}", describe_open(&e)))
        };

        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(&path, flags).map_err(step("opening"))?;
        conn.busy_timeout(options.busy_timeout)
            .map_err(step("setting the busy timeout"))?;
        // SQLite silently falls back to read-only when it may not write the file.
        if conn
            .is_readonly(rusqlite::MAIN_DB)
            .map_err(step("checking access"))?
        {
            return Err(open_err(
                "the file is read-only: the server must be able to write it (check its owner and permissions)"
                    .to_owned(),
            ));
        }
        // Before changing anything: is it confab's, and not from a newer one?
        let version = inspect(&conn, &path, &open_err)?;
        // Switching a new file to WAL needs a lock for which SQLite does not
        // call the busy handler, so stores opened at once wait here.
        let deadline = Instant::now() + options.busy_timeout;
        let mode: String = loop {
            match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)) {
                Err(e) if is_busy(&e) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                result => break result.map_err(step("switching to WAL mode"))?,
            }
        };
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(open_err(format!(
                "cannot use WAL mode (the journal mode stays {mode:?}); is the data directory on a network file system?"
            )));
        }
        set_sync(&conn, options.sync).map_err(step("setting synchronous"))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(step("enabling foreign keys"))?;
        // An indexing step dirties a hundred or more index pages, and a
        // history page reads scattered rows: keep the hot pages in memory
        // rather than SQLite's default 2 MiB. Statement journals (INSERT
        // ... SELECT keeps one) stay in RAM.
        conn.pragma_update(None, "cache_size", -CACHE_KIB)
            .map_err(step("setting the cache size"))?;
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(step("setting the temp store"))?;
        conn.set_prepared_statement_cache_capacity(64);

        let problems = {
            let mut stmt = conn
                .prepare("PRAGMA quick_check")
                .map_err(step("checking integrity"))?;
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(step("checking integrity"))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(step("checking integrity"))?
        };
        if problems != ["ok"] {
            let shown: Vec<&str> = problems.iter().take(3).map(String::as_str).collect();
            return Err(open_err(format!(
                "the database is corrupt (quick_check: {})",
                shown.join("; ")
            )));
        }

        migrate(&mut conn, version, &path, &open_err)?;
        let backlog: i64 = conn
            .query_row(
                &format!("SELECT count(*) FROM messages WHERE id > {INDEXED_UPTO}"),
                [],
                |r| r.get(0),
            )
            .map_err(step("counting the messages not yet indexed"))?;
        Ok(SqliteStore {
            conn,
            path,
            backlog: backlog.unsigned_abs(),
            sync: options.sync,
            lookups: Lookups::default(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The schema version of a file confab may use; refuses foreign and newer ones.
fn inspect(
    conn: &Connection,
    path: &Path,
    open_err: &dyn Fn(String) -> StoreError,
) -> Result<u32, StoreError> {
    // One statement, so one snapshot even while another store migrates.
    let (version, app, tables): (u32, i32, i64) = conn
        .query_row(
            "SELECT (SELECT user_version FROM pragma_user_version),
                    (SELECT application_id FROM pragma_application_id),
                    (SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite%')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(|e| open_err(format!("reading the schema version: {}", describe_open(&e))))?;
    let ours = app == APPLICATION_ID || (app == 0 && version == 0 && tables == 0);
    if !ours {
        return Err(open_err(format!(
            "it is a SQLite database but not confab's (application_id {app:#x}, schema version {version}, {tables} tables)"
        )));
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.display().to_string(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(version)
}

/// Brings the schema from `version` to [`SCHEMA_VERSION`].
fn migrate(
    conn: &mut Connection,
    version: u32,
    path: &Path,
    open_err: &dyn Fn(String) -> StoreError,
) -> Result<(), StoreError> {
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    let step = |doing: &'static str| {
        move |e: rusqlite::Error| open_err(format!("{doing}: {}", describe_open(&e)))
    };
    // Another store may be migrating at the same moment: take the write lock,
    // then look again.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(step("starting the schema migration"))?;
    let from = inspect(&tx, path, open_err)?;
    for migration in &MIGRATIONS[from as usize..] {
        tx.execute_batch(migration)
            .map_err(step("migrating the schema"))?;
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)
        .map_err(step("migrating the schema"))?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(step("migrating the schema"))?;
    tx.commit().map_err(step("committing the schema migration"))
}

fn set_sync(conn: &Connection, sync: Sync) -> rusqlite::Result<()> {
    let mode = match sync {
        Sync::Full => "FULL",
        Sync::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", mode)
}

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

/// A name read from the database, validated.
struct DbName(Name);

impl FromSql for DbName {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<DbName> {
        Name::new(value.as_str()?)
            .map(DbName)
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

/// An id or a time read from the database: never negative.
struct DbU64(u64);

impl FromSql for DbU64 {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<DbU64> {
        let v = value.as_i64()?;
        u64::try_from(v)
            .map(DbU64)
            .map_err(|_| FromSqlError::OutOfRange(v))
    }
}

fn message_from_row(row: &Row<'_>) -> rusqlite::Result<StoredMessage> {
    let kind: i64 = row.get(3)?;
    let target = match kind {
        KIND_ROOM => Target::Room,
        KIND_GROUP => Target::Group(row.get::<_, DbName>(4)?.0),
        KIND_USER => Target::User(row.get::<_, DbName>(4)?.0),
        k => {
            return Err(rusqlite::Error::FromSqlConversionFailure(
                3,
                Type::Integer,
                format!("unknown target kind {k}").into(),
            ))
        }
    };
    Ok(StoredMessage {
        id: MessageId(row.get::<_, DbU64>(0)?.0),
        timestamp_ms: row.get::<_, DbU64>(1)?.0,
        sender: row.get::<_, DbName>(2)?.0,
        target,
        body: row.get(5)?,
    })
}

/// The id and registered name of an account, by key.
fn account_id(conn: &Connection, user: &Name) -> rusqlite::Result<Option<(i64, DbName)>> {
    conn.prepare_cached("SELECT id, name FROM accounts WHERE name_key = ?1")?
        .query_row([user.key().as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

/// The id and registered name of a group, by key.
fn group_id(conn: &Connection, group: &Name) -> rusqlite::Result<Option<(i64, DbName)>> {
    conn.prepare_cached("SELECT id, name FROM groups WHERE name_key = ?1")?
        .query_row([group.key().as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

/// The id of the conversation keyed `key`, if it has one yet.
fn conversation(conn: &Connection, key: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM conversations WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()
}

/// The id of the conversation keyed `key`, created on its first message
/// with `parties` (the users of a direct conversation) recorded.
fn conversation_for_message(
    conn: &Connection,
    key: &str,
    parties: &[&str],
) -> rusqlite::Result<i64> {
    if let Some(id) = conversation(conn, key)? {
        return Ok(id);
    }
    conn.prepare_cached("INSERT INTO conversations (key) VALUES (?1)")?
        .execute([key])?;
    let id = conn.last_insert_rowid();
    for party in parties {
        conn.prepare_cached(
            "INSERT INTO dm_parties (user_key, conv_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        )?
        .execute(params![party, id])?;
    }
    Ok(id)
}

/// A message checked and given its id, waiting to be inserted with the
/// others of its batch (see [`insert_rows`]).
struct MessageRow<'a> {
    id: i64,
    kind: i64,
    /// The group or recipient as registered; `None` for the room.
    target: Option<Name>,
    conv_id: i64,
    message: &'a NewMessage,
}

/// Checks `m`'s target and gives it the id after `last`, which it
/// advances; the row goes to `rows`, which [`insert_rows`] inserts before
/// the transaction commits.
fn stage_message<'a>(
    conn: &Connection,
    lookups: &mut Lookups,
    m: &'a NewMessage,
    ts_ms: u64,
    last: &mut i64,
    rows: &mut Vec<MessageRow<'a>>,
) -> rusqlite::Result<Result<StoredMessage, ProtocolError>> {
    let (kind, target, conv_id) = match &m.target {
        Target::Room => (KIND_ROOM, Target::Room, ROOM_CONV_ID),
        Target::Group(g) => {
            let Some(name) = lookups.group(conn, g)? else {
                return Ok(Err(ProtocolError::NoSuchGroup { group: *g }));
            };
            let conv = lookups.conversation(conn, ConvKey::Group(name.key()))?;
            (KIND_GROUP, Target::Group(name), conv)
        }
        Target::User(u) => {
            let Some(name) = lookups.account(conn, u)? else {
                return Ok(Err(ProtocolError::NoSuchUser { user: *u }));
            };
            let conv = lookups.conversation(conn, ConvKey::direct(&m.sender, &name))?;
            (KIND_USER, Target::User(name), conv)
        }
    };
    let id = last.saturating_add(1);
    *last = id;
    rows.push(MessageRow {
        id,
        kind,
        target: match &target {
            Target::Room => None,
            Target::Group(n) | Target::User(n) => Some(*n),
        },
        conv_id,
        message: m,
    });
    Ok(Ok(StoredMessage {
        id: MessageId(id.unsigned_abs()),
        timestamp_ms: ts_ms,
        sender: m.sender,
        target,
        body: m.body.clone(),
    }))
}

/// Most rows one INSERT statement takes (9 parameters each).
const ROWS_PER_INSERT: usize = 32;

/// `INSERT INTO messages ... VALUES` with `n` rows of parameters.
fn insert_sql(n: usize) -> String {
    let rows: Vec<String> = (0..n)
        .map(|r| {
            let p: Vec<String> = (1..=9).map(|c| format!("?{}", r * 9 + c)).collect();
            format!("({})", p.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO messages (id, ts_ms, sender, sender_key, kind, target, target_key, conv_id, body)
         VALUES {}",
        rows.join(", ")
    )
}

/// Inserts `rows` (and empties it) with multi-row INSERTs of power-of-two
/// sizes up to [`ROWS_PER_INSERT`]: per row, a statement's own overhead
/// (step, reset, the statement cache's lookup) cost as much as the insert,
/// and power-of-two sizes keep the prepared statements few.
fn insert_rows(
    conn: &Connection,
    rows: &mut Vec<MessageRow<'_>>,
    ts_ms: u64,
) -> rusqlite::Result<()> {
    static SQL: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| {
        (0..=ROWS_PER_INSERT.trailing_zeros())
            .map(|k| insert_sql(1 << k))
            .collect()
    });
    let mut rest = &rows[..];
    while !rest.is_empty() {
        let k = rest.len().min(ROWS_PER_INSERT).ilog2();
        let (chunk, tail) = rest.split_at(1 << k);
        let mut stmt = conn.prepare_cached(&sql[k as usize])?;
        for (r, row) in chunk.iter().enumerate() {
            let at = r * 9;
            let m = row.message;
            let target_key = row.target.map(|t| t.key());
            stmt.raw_bind_parameter(at + 1, row.id)?;
            stmt.raw_bind_parameter(at + 2, sat_i64(ts_ms))?;
            stmt.raw_bind_parameter(at + 3, m.sender.as_str())?;
            stmt.raw_bind_parameter(at + 4, m.sender.key().as_str())?;
            stmt.raw_bind_parameter(at + 5, row.kind)?;
            stmt.raw_bind_parameter(at + 6, row.target.as_ref().map(Name::as_str))?;
            stmt.raw_bind_parameter(at + 7, target_key.as_ref().map(|k| k.as_str()))?;
            stmt.raw_bind_parameter(at + 8, row.conv_id)?;
            stmt.raw_bind_parameter(at + 9, m.body.as_str())?;
        }
        stmt.raw_execute()?;
        rest = tail;
    }
    rows.clear();
    Ok(())
}

fn apply_group_op(
    conn: &Connection,
    op: &GroupOp,
    ts_ms: u64,
) -> rusqlite::Result<Result<(), ProtocolError>> {
    let refuse = |e: ProtocolError| Ok(Err(e));
    match op {
        GroupOp::Create { group, user } => {
            if let Some((_, DbName(name))) = group_id(conn, group)? {
                return refuse(ProtocolError::GroupExists { group: name });
            }
            let Some((account, _)) = account_id(conn, user)? else {
                return refuse(ProtocolError::NoSuchUser { user: *user });
            };
            conn.prepare_cached(
                "INSERT INTO groups (name, name_key, created_ms) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![
                group.as_str(),
                group.key().as_str(),
                sat_i64(ts_ms)
            ])?;
            let gid = conn.last_insert_rowid();
            conn.prepare_cached(
                "INSERT INTO group_members (group_id, account_id, joined_ms) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![gid, account, sat_i64(ts_ms)])?;
            group_roles::record_owner(conn, group, user)?;
            Ok(Ok(()))
        }
        GroupOp::Join { group, user } => {
            let Some((gid, DbName(name))) = group_id(conn, group)? else {
                return refuse(ProtocolError::NoSuchGroup { group: *group });
            };
            let Some((account, _)) = account_id(conn, user)? else {
                return refuse(ProtocolError::NoSuchUser { user: *user });
            };
            let added = conn
                .prepare_cached(
                    "INSERT INTO group_members (group_id, account_id, joined_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT DO NOTHING",
                )?
                .execute(params![gid, account, sat_i64(ts_ms)])?;
            if added == 0 {
                return refuse(ProtocolError::AlreadyMember { group: name });
            }
            Ok(Ok(()))
        }
        GroupOp::Leave { group, user } => {
            let Some((gid, DbName(name))) = group_id(conn, group)? else {
                return refuse(ProtocolError::NoSuchGroup { group: *group });
            };
            let removed = conn
                .prepare_cached(
                    "DELETE FROM group_members WHERE group_id = ?1
                     AND account_id = (SELECT id FROM accounts WHERE name_key = ?2)",
                )?
                .execute(params![gid, user.key().as_str()])?;
            if removed == 0 {
                return refuse(ProtocolError::NotAMember { group: name });
            }
            group_roles::forget(conn, Some(group), user)?;
            Ok(Ok(()))
        }
        GroupOp::Moderate {
            group,
            user,
            action: confab_engine::frame::GroupAction::Remove,
            ..
        } => {
            let leave = GroupOp::Leave {
                group: *group,
                user: *user,
            };
            match apply_group_op(conn, &leave, ts_ms)? {
                Ok(()) => {}
                Err(ProtocolError::NotAMember { group }) => {
                    return group_roles::not_a_member(group)
                }
                Err(e) => return refuse(e),
            }
            group_roles::apply(conn, op, ts_ms)?;
            let GroupOp::Moderate { reason, by, .. } = op else {
                return Ok(Ok(()));
            };
            let target = format!("#{group} {user}");
            moderation::audit_in(
                conn,
                sat_i64(ts_ms),
                by.as_str(),
                "group-remove",
                &target,
                reason,
            )?;
            Ok(Ok(()))
        }
        GroupOp::Moderate { group, .. } => {
            if group_id(conn, group)?.is_none() {
                return refuse(ProtocolError::NoSuchGroup { group: *group });
            }
            group_roles::apply(conn, op, ts_ms)?;
            Ok(Ok(()))
        }
    }
}

/// [`Store::commit`]'s transaction; rolled back on error.
fn commit_batch(
    conn: &mut Connection,
    lookups: &mut Lookups,
    batch: &[Write],
    now_ms: u64,
) -> rusqlite::Result<Vec<Written>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    lookups.revalidate(&tx)?;
    // Read under the write lock: no other store can be assigning ids.
    let mut last: i64 = tx.prepare_cached(LAST_ID)?.query_row([], |r| r.get(0))?;
    let mut written = Vec::with_capacity(batch.len());
    let mut rows = Vec::with_capacity(batch.len());
    for write in batch {
        written.push(match write {
            Write::Message(m) => Written::Message(stage_message(
                &tx, lookups, m, now_ms, &mut last, &mut rows,
            )?),
            Write::MessageOnce(m, key) => {
                devices::message_once(&tx, lookups, (m, key), now_ms, &mut last, &mut rows)?
            }
            Write::Bookmark { device, upto } => devices::raise_bookmark(&tx, *device, *upto)?,
            Write::ReadMarker {
                user,
                target,
                id,
                max,
            } => devices::set_read_marker(&tx, user, target, *id, *max)?,
            Write::Group(op) => Written::Group(apply_group_op(&tx, op, now_ms)?),
            Write::Offline { user, seen_upto } => {
                // No account, no mark (and nothing to replay to).
                tx.prepare_cached(
                    "INSERT INTO offline_marks (account_id, seen_upto)
                     SELECT id, ?2 FROM accounts WHERE name_key = ?1
                     ON CONFLICT (account_id) DO UPDATE
                     SET seen_upto = max(seen_upto, excluded.seen_upto)",
                )?
                .execute(params![user.key().as_str(), sat_i64(seen_upto.0)])?;
                Written::Offline
            }
        });
    }
    insert_rows(&tx, &mut rows, now_ms)?;
    tx.commit()?;
    Ok(written)
}

/// A page of one conversation (`?1`), ids above `?2` and below `?3`, at
/// most `?4`, newest first (`newest`) or oldest first: it may span the
/// unindexed messages and the indexed ones.
fn history_sql(newest: bool) -> &'static str {
    static SQL: [std::sync::OnceLock<String>; 2] =
        [std::sync::OnceLock::new(), std::sync::OnceLock::new()];
    SQL[usize::from(newest)].get_or_init(|| {
        let plain = MESSAGE_COLUMNS.join(", ");
        let joined = joined_columns(MESSAGE_COLUMNS);
        let order = if newest { "DESC" } else { "ASC" };
        format!(
            "SELECT * FROM (SELECT {plain} FROM messages
                        WHERE id > {INDEXED_UPTO} AND conv_id = ?1 AND id > ?2 AND id < ?3
                        ORDER BY id {order} LIMIT ?4)
         UNION ALL
         SELECT * FROM (SELECT {joined} FROM conversation_index c JOIN messages m ON m.id = c.id
                        WHERE c.conv_id = ?1 AND c.id > ?2 AND c.id < ?3
                        ORDER BY c.id {order} LIMIT ?4)
         ORDER BY id {order} LIMIT ?4"
        )
    })
}

/// An id `v` such that the messages committed after `ms` are exactly
/// those with ids from `v` on: commit times rise with ids (a batch's time
/// is taken at its commit; a clock stepped back would blur this), so a
/// binary search over the primary key finds it in some 60 point lookups,
/// however long the log.
fn first_after(conn: &Connection, ms: u64) -> rusqlite::Result<i64> {
    let ms = sat_i64(ms);
    let mut next =
        conn.prepare_cached("SELECT id, ts_ms FROM messages WHERE id >= ?1 ORDER BY id LIMIT 1")?;
    let (mut lo, mut hi) = (0i64, i64::MAX);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let row: Option<(i64, i64)> = next
            .query_row([mid], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match row {
            Some((id, ts)) if ts <= ms => lo = id.saturating_add(1),
            _ => hi = mid,
        }
    }
    Ok(lo)
}

/// `range` as exclusive id bounds (times through [`first_after`]).
fn id_bounds(conn: &Connection, range: &Range) -> rusqlite::Result<(i64, i64)> {
    let after = match range.after {
        None => 0,
        Some(Bound::Id(id)) => sat_i64(id.0),
        Some(Bound::Time(ms)) => first_after(conn, ms)?.saturating_sub(1),
    };
    let before = match range.before {
        None => i64::MAX,
        Some(Bound::Id(id)) => sat_i64(id.0),
        // Below the first committed at `ms` or later.
        Some(Bound::Time(ms)) => first_after(conn, ms.saturating_sub(1))?,
    };
    Ok((after, before))
}

/// `columns` of `messages` as a join of `conversation_index c` and
/// `messages m` selects them: the index supplies `id` and `conv_id` (so
/// that ORDER BY id follows the index), the message the rest.
fn joined_columns(columns: &[&str]) -> String {
    let joined: Vec<String> = columns
        .iter()
        .map(|&col| match col {
            "id" | "conv_id" => format!("c.{col} AS {col}"),
            _ => format!("m.{col} AS {col}"),
        })
        .collect();
    joined.join(", ")
}

/// Where a replay's messages come from: the user's conversations, each an
/// index range scan of `conversation_index` (`conv_id = ?N AND id > ?1 AND
/// id < ?2`) joined to `messages`, plus one scan of the messages not yet
/// indexed; and their parameters (`?1` after, `?2` the exclusive end, `?3`
/// the user's key, then the conversation ids).
struct Sources {
    /// One condition on the index per range scan (`c.conv_id = ?N`).
    ranges: Vec<String>,
    /// Every conversation at once, for the unindexed messages.
    any: String,
    /// A condition on the message's own columns (`AND target_key = ?3`
    /// for direct messages to the user only), or nothing.
    only: &'static str,
    params: Vec<Box<dyn ToSql>>,
}

impl Sources {
    fn new(
        conn: &Connection,
        user: &Name,
        scope: &ReplayScope,
        end: i64,
    ) -> rusqlite::Result<Option<Sources>> {
        let key = user.key().as_str().to_owned();
        let direct = |conn: &Connection| -> rusqlite::Result<Vec<i64>> {
            conn.prepare_cached("SELECT conv_id FROM dm_parties WHERE user_key = ?1")?
                .query_map([&key], |r| r.get(0))?
                .collect()
        };
        let (after, convs, only) = match scope {
            ReplayScope::Since { after, groups } => {
                let mut convs = vec![ROOM_CONV_ID];
                // A group nobody has written to has no conversation yet.
                for g in groups {
                    convs.extend(conversation(conn, &ConvKey::Group(g.key()).text())?);
                }
                convs.extend(direct(conn)?);
                (sat_i64(after.0), convs, "")
            }
            ReplayScope::OfflineDirect => {
                let mark: i64 = conn
                    .prepare_cached(
                        "SELECT seen_upto FROM offline_marks JOIN accounts ON accounts.id = account_id
                         WHERE name_key = ?1",
                    )?
                    .query_row([&key], |r| r.get(0))
                    .optional()?
                    .unwrap_or(0);
                // Direct messages to the user (not those they sent).
                (mark, direct(conn)?, " AND target_key = ?3")
            }
        };
        // No conversation, nothing to read: most first logins of a new
        // account (no direct conversation yet) end here, without the
        // union's parse and plan (a fifth of a login's CPU, `conns`).
        if convs.is_empty() {
            return Ok(None);
        }
        let mut params: Vec<Box<dyn ToSql>> =
            vec![Box::new(after), Box::new(end), Box::new(key.clone())];
        let (ranges, any) = if convs.len() <= MAX_CONV_BRANCHES {
            // One index range per conversation, so each stops at the limit.
            let numbers: Vec<String> = (0..convs.len()).map(|i| format!("?{}", i + 4)).collect();
            params.extend(convs.into_iter().map(|c| Box::new(c) as Box<dyn ToSql>));
            (
                numbers.iter().map(|n| format!("c.conv_id = {n}")).collect(),
                format!("conv_id IN ({})", numbers.join(", ")),
            )
        } else {
            let list: Vec<String> = convs.iter().map(i64::to_string).collect();
            params.push(Box::new(format!("[{}]", list.join(","))));
            let within = "IN (SELECT value FROM json_each(?4))";
            (
                vec![format!("c.conv_id {within}")],
                format!("conv_id {within}"),
            )
        };
        Ok(Some(Sources {
            ranges,
            any,
            only,
            params,
        }))
    }

    /// `SELECT columns` (of `messages`, by name) of every source, as one
    /// UNION ALL; `tail` follows each source's WHERE clause (an ORDER BY
    /// and LIMIT, say). The unindexed messages, at most a few thousand of
    /// the newest, are scanned once for all.
    fn union(&self, columns: &[&str], tail: &str) -> String {
        let joined = joined_columns(columns);
        let plain = columns.join(", ");
        let only_m = self.only.replace("target_key", "m.target_key");
        let unindexed = format!(
            "SELECT * FROM (SELECT {plain} FROM messages WHERE id > {INDEXED_UPTO} AND ({}) AND id > ?1 AND id < ?2{} {tail})",
            self.any, self.only
        );
        let branches: Vec<String> = self
            .ranges
            .iter()
            .map(|range| {
                format!(
                    "SELECT * FROM (SELECT {joined} FROM conversation_index c JOIN messages m ON m.id = c.id
                     WHERE {range} AND c.id > ?1 AND c.id < ?2{only_m} {tail})"
                )
            })
            .chain([unindexed])
            .collect();
        branches.join(" UNION ALL ")
    }
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
                "INSERT INTO accounts (name, name_key, password_hash, created_ms)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name_key) DO NOTHING",
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
                        "INSERT INTO accounts (name, name_key, password_hash, created_ms)
                         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name_key) DO NOTHING",
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
        let (after, before) = id_bounds(&self.conn, range).map_err(failed("loading history"))?;
        let Some(conv) = (match target {
            Target::Room => Ok(Some(ROOM_CONV_ID)),
            Target::Group(g) => conversation(&self.conn, &ConvKey::Group(g.key()).text()),
            Target::User(u) => conversation(&self.conn, &ConvKey::direct(user, u).text()),
        })
        .map_err(failed("loading history"))?
        else {
            // Nobody has written there yet.
            return Ok(HistoryLoaded::default());
        };
        let mut messages: Vec<StoredMessage> = self
            .conn
            .prepare_cached(history_sql(newest))
            .and_then(|mut s| {
                s.query_map(
                    params![conv, after, before, i64::from(limit) + 1],
                    message_from_row,
                )?
                .collect()
            })
            .map_err(failed("loading history"))?;
        let more = messages.len() > usize::from(limit);
        messages.truncate(usize::from(limit));
        let deleted = self.tombstones_of(&messages)?;
        Ok(HistoryLoaded {
            messages,
            more,
            deleted,
        })
    }

    fn replay(
        &mut self,
        user: &Name,
        scope: &ReplayScope,
        upto: MessageId,
        max: usize,
    ) -> Result<ReplayLoaded, StoreError> {
        const DOING: &str = "loading missed messages";
        // One read transaction: the page and the skipped counts agree.
        let tx = self.conn.transaction().map_err(failed(DOING))?;
        let end = sat_i64(upto.0).saturating_add(1);
        let Some(mut sources) = Sources::new(&tx, user, scope, end).map_err(failed(DOING))? else {
            return Ok(ReplayLoaded::default());
        };
        // The newest max + 1: one more than fits says some were skipped.
        let limit = format!("?{}", sources.params.len() + 1);
        sources
            .params
            .push(Box::new(sat_i64(max as u64).saturating_add(1)));
        let page = format!(
            "SELECT * FROM ({}) ORDER BY id DESC LIMIT {limit}",
            sources.union(MESSAGE_COLUMNS, &format!("ORDER BY id DESC LIMIT {limit}"))
        );
        let mut messages: Vec<StoredMessage> = tx
            .prepare_cached(&page)
            .and_then(|mut s| {
                s.query_map(params_from_iter(&sources.params), message_from_row)?
                    .collect()
            })
            .map_err(failed(DOING))?;
        sources.params.pop();
        let mut skipped = Vec::new();
        if messages.len() > max {
            messages.truncate(max);
            // Everything older than the oldest message kept is skipped.
            sources.params[1] = Box::new(messages.last().map_or(end, |m| sat_i64(m.id.0)));
            // The conversation as the user sees it: the room, the group, or
            // the other party of a direct conversation.
            let columns = ["id", "conv_id", "kind", "target", "sender", "sender_key"];
            let peer = "CASE kind WHEN 0 THEN NULL WHEN 1 THEN target \
                        ELSE CASE WHEN sender_key = ?3 THEN target ELSE sender END END";
            let counts = format!(
                "SELECT kind, max({peer}), min(id), max(id), count(*) FROM ({}) GROUP BY conv_id ORDER BY min(id)",
                sources.union(&columns, "")
            );
            let mut stmt = tx.prepare_cached(&counts).map_err(failed(DOING))?;
            let mut rows = stmt
                .query(params_from_iter(&sources.params))
                .map_err(failed(DOING))?;
            while let Some(row) = rows.next().map_err(failed(DOING))? {
                let skip = || -> rusqlite::Result<_> {
                    let target = match row.get::<_, i64>(0)? {
                        KIND_ROOM => Target::Room,
                        KIND_GROUP => Target::Group(row.get::<_, DbName>(1)?.0),
                        _ => Target::User(row.get::<_, DbName>(1)?.0),
                    };
                    let count: i64 = row.get(4)?;
                    Ok((
                        target,
                        MessageId(row.get::<_, DbU64>(2)?.0),
                        MessageId(row.get::<_, DbU64>(3)?.0),
                        u32::try_from(count).unwrap_or(u32::MAX),
                    ))
                };
                skipped.push(skip().map_err(failed(DOING))?);
            }
        }
        tx.commit().map_err(failed(DOING))?;
        messages.reverse();
        let deleted = self.tombstones_of(&messages)?;
        Ok(ReplayLoaded {
            messages,
            skipped,
            deleted,
        })
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

    fn message(&mut self, id: MessageId) -> Result<Option<StoredMessage>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT id, ts_ms, sender, kind, target, body FROM messages WHERE id = ?1",
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

/// Indexes the `count` oldest unindexed messages; returns how many.
fn index_step(tx: &Connection, count: u64) -> rusqlite::Result<u64> {
    let upto: i64 = tx
        .prepare_cached(&format!(
            "SELECT max(id) FROM (SELECT id FROM messages WHERE id > {INDEXED_UPTO}
                                  ORDER BY id LIMIT ?1)"
        ))?
        .query_row([sat_i64(count)], |r| r.get::<_, Option<i64>>(0))?
        .unwrap_or(0);
    index_upto(tx, upto)
}

/// Indexes every message; returns how many were not yet.
fn index_all(tx: &Connection) -> rusqlite::Result<u64> {
    let newest: i64 = tx
        .prepare_cached("SELECT coalesce(max(id), 0) FROM messages")?
        .query_row([], |r| r.get(0))?;
    index_upto(tx, newest)
}

/// Indexes the messages from `indexed_upto` to `upto`, sorted so that
/// each conversation's entries go in together.
fn index_upto(tx: &Connection, upto: i64) -> rusqlite::Result<u64> {
    let indexed = tx
        .prepare_cached(&format!(
            "INSERT INTO conversation_index (conv_id, id)
             SELECT conv_id, id FROM messages WHERE id > {INDEXED_UPTO} AND id <= ?1
             ORDER BY conv_id, id"
        ))?
        .execute([upto])?;
    tx.prepare_cached(
        "UPDATE message_ids SET indexed_upto = max(indexed_upto, ?1),
                                last_id = max(last_id, ?1)",
    )?
    .execute([upto])?;
    Ok(indexed as u64)
}
