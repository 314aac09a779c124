//! `confab-server migrate --from sqlite:DIR --to postgres://...`: a
//! single node's data copied into an empty PostgreSQL database, so the
//! node can go on as the first of a cluster. Everything keeps its id:
//! messages (and the id counter, so new ids follow the old ones, also
//! past messages retention deleted), devices (their tokens and bookmarks
//! stay valid, so clients resume where they were), the exactly-once send
//! records, read markers, offline marks, sanctions, group roles and
//! mutes, address bans and the audit log; a message keeps its kind (a
//! notice stays one) and a deleted one stays a tombstone naming its
//! deleter (SQLite's `deletions`; the reason is in the audit log, which
//! moves too). Left behind, as PostgreSQL has no place for them: the
//! creation and join times of accounts, groups and members (read by
//! nothing), and SQLite's own indexes (`conversations`, `dm_parties`,
//! `conversation_index`: PostgreSQL computes `conv`).
//!
//! One PostgreSQL transaction: a failure leaves the target empty. The
//! SQLite database is opened (and brought to the current schema) by
//! `SqliteStore`, then read only; stop the node first.

use std::fmt;
use std::path::Path;

use postgres::types::{ToSql, Type};
use postgres::{NoTls, Transaction};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use crate::store::postgres::PgStore;
use crate::store::sqlite::{SqliteOptions, SqliteStore};
use crate::store::StoreError;
use crate::Error;

/// How much was copied.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    /// Accounts.
    pub accounts: u64,
    /// Groups.
    pub groups: u64,
    /// Messages.
    pub messages: u64,
    /// Devices.
    pub devices: u64,
    /// The id counter.
    pub last_id: u64,
}

impl fmt::Display for Moved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "moved {} accounts, {} groups, {} messages (ids up to {}), {} devices",
            self.accounts, self.groups, self.messages, self.last_id, self.devices
        )
    }
}

fn sqlite_failed(e: rusqlite::Error) -> Error {
    Error::Store(StoreError::Failed {
        doing: "reading the SQLite database",
        reason: e.to_string(),
    })
}

/// A kind code read from SQLite as PostgreSQL's SMALLINT; one out of its
/// range (written by hand) is refused, not wrapped.
fn small(v: i64) -> Result<i16, Error> {
    i16::try_from(v).map_err(|_| {
        Error::Store(StoreError::Failed {
            doing: "reading the SQLite database",
            reason: format!("a message kind of {v}, out of range"),
        })
    })
}

fn pg_failed(doing: &'static str) -> impl Fn(postgres::Error) -> Error {
    move |e| {
        let reason = match e.as_db_error() {
            Some(db) => db.message().to_owned(),
            None => e.to_string(),
        };
        Error::Store(StoreError::Failed { doing, reason })
    }
}

/// Copies `dir`'s data into the empty database at `to`.
pub fn run(dir: &Path, options: &SqliteOptions, to: &str) -> Result<Moved, Error> {
    if !dir.join("confab.db").exists() && !dir.is_dir() {
        return Err(Error::User(format!("{}: no such data dir", dir.display())));
    }
    let path = SqliteStore::open(dir, options)?.path().to_owned();
    let src = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(sqlite_failed)?;
    // Creates the schema.
    drop(PgStore::open(to)?);
    let mut pg = postgres::Client::connect(to, NoTls).map_err(pg_failed("connecting"))?;
    let mut tx = pg.transaction().map_err(pg_failed("starting the copy"))?;
    let (last, accounts): (i64, i64) = tx
        .query_one(
            "SELECT (SELECT last_id FROM counter), (SELECT count(*) FROM accounts)",
            &[],
        )
        .map(|r| (r.get(0), r.get(1)))
        .map_err(pg_failed("checking the target"))?;
    if last != 0 || accounts != 0 {
        return Err(Error::User(format!(
            "the target database already holds data (ids up to {last}, {accounts} accounts); migrate into an empty one"
        )));
    }
    let mut moved = Moved::default();
    copy_tables(&src, &mut tx, &mut moved)?;
    copy_messages(&src, &mut tx, &mut moved)?;
    tx.commit().map_err(pg_failed("committing the copy"))?;
    Ok(moved)
}

/// One table's rows, copied as they are: `select`'s columns on SQLite
/// are, in order, `insert`'s parameters, each cast in the SQL to its
/// column's type (so a NULL binds as that type too).
struct Table {
    doing: &'static str,
    select: &'static str,
    insert: &'static str,
}

const ACCOUNTS: Table = Table {
    doing: "copying accounts",
    select: "SELECT name_key, name, password_hash, operator, history_from FROM accounts",
    insert: "INSERT INTO accounts (name_key, name, hash, operator, history_from)
             VALUES ($1::TEXT, $2::TEXT, $3::TEXT, $4::BIGINT = 1, $5::BIGINT)",
};

const GROUPS: Table = Table {
    doing: "copying groups",
    select: "SELECT name_key, name FROM groups",
    insert: "INSERT INTO groups (name_key, name) VALUES ($1::TEXT, $2::TEXT)",
};

/// The devices, ids kept (their tokens and bookmarks stay valid).
const DEVICES: Table = Table {
    doing: "copying devices",
    select: "SELECT d.id, a.name_key, a.name, d.name, d.name_key, d.created_ms, d.last_seen_ms,
             d.token_hash, d.bookmark FROM devices d JOIN accounts a ON a.id = d.account_id",
    insert:
        "INSERT INTO devices (id, user_key, user_name, name, name_key, created_ms, last_seen_ms,
             token_hash, bookmark) VALUES ($1::BIGINT, $2::TEXT, $3::TEXT, $4::TEXT, $5::TEXT,
             $6::BIGINT, $7::BIGINT, $8::BYTEA, $9::BIGINT)",
};

/// The rest, in an order that satisfies PostgreSQL's references
/// (members after groups).
const REST: &[Table] = &[
    Table {
        doing: "copying group members",
        select: "SELECT g.name_key, a.name_key, a.name FROM group_members m
                 JOIN groups g ON g.id = m.group_id JOIN accounts a ON a.id = m.account_id",
        insert: "INSERT INTO members (group_key, user_key, name) VALUES ($1::TEXT, $2::TEXT, $3::TEXT)",
    },
    Table {
        doing: "copying send records",
        select: "SELECT device, client_id, message_id, ts_ms FROM sends",
        insert: "INSERT INTO sends (device, client_id, msg_id, ts)
                 VALUES ($1::BIGINT, $2::BIGINT, $3::BIGINT, $4::BIGINT)",
    },
    Table {
        doing: "copying offline marks",
        select: "SELECT a.name_key, o.seen_upto FROM offline_marks o JOIN accounts a ON a.id = o.account_id",
        insert: "INSERT INTO offline (user_key, seen_upto) VALUES ($1::TEXT, $2::BIGINT)",
    },
    // The PostgreSQL store's conversation key, from the user's side (a
    // direct one by the byte order of the two keys, as messages' conv).
    Table {
        doing: "copying read markers",
        select: "SELECT a.name_key, m.kind, m.target_key, coalesce(m.target, ''), m.id, m.set_seq
                 FROM read_markers m JOIN accounts a ON a.id = m.account_id",
        insert: "INSERT INTO markers (user_key, conv, kind, target, id, seq)
                 VALUES ($1::TEXT,
                   CASE $2::BIGINT WHEN 0 THEN 'r' WHEN 1 THEN 'g:' || $3::TEXT
                     ELSE 'd:' || least($1::TEXT COLLATE \"C\", $3::TEXT COLLATE \"C\") || ':'
                       || greatest($1::TEXT COLLATE \"C\", $3::TEXT COLLATE \"C\") END,
                   $2::BIGINT, $4::TEXT, $5::BIGINT, $6::BIGINT)",
    },
    Table {
        doing: "copying sanctions",
        select: "SELECT kind, name_key, name, until_ms, reason, by, at_ms FROM sanctions",
        insert: "INSERT INTO sanctions (kind, name_key, name, until_ms, reason, by_whom, at_ms)
                 VALUES ($1::TEXT, $2::TEXT, $3::TEXT, $4::BIGINT, $5::TEXT, $6::TEXT, $7::BIGINT)",
    },
    Table {
        doing: "copying group roles",
        select: "SELECT group_key, name_key, name, role FROM group_roles",
        insert: "INSERT INTO group_roles (group_key, name_key, name, role)
                 VALUES ($1::TEXT, $2::TEXT, $3::TEXT, $4::TEXT)",
    },
    Table {
        doing: "copying group mutes",
        select: "SELECT group_key, name_key, group_name, name, until_ms, reason FROM group_mutes",
        insert: "INSERT INTO group_mutes (group_key, name_key, group_name, name, until_ms, reason)
                 VALUES ($1::TEXT, $2::TEXT, $3::TEXT, $4::TEXT, $5::BIGINT, $6::TEXT)",
    },
    Table {
        doing: "copying address bans",
        select: "SELECT net, until_ms, reason, by, at_ms FROM address_bans",
        insert: "INSERT INTO address_bans (net, until_ms, reason, by_whom, at_ms)
                 VALUES ($1::TEXT, $2::BIGINT, $3::TEXT, $4::TEXT, $5::BIGINT)",
    },
    Table {
        doing: "copying the audit log",
        select: "SELECT at_ms, actor, action, target, reason FROM audit ORDER BY id",
        insert: "INSERT INTO audit (at_ms, actor, action, target, reason)
                 VALUES ($1::BIGINT, $2::TEXT, $3::TEXT, $4::TEXT, $5::TEXT)",
    },
];

/// One SQLite value, as the PostgreSQL parameter it binds to takes it.
enum Cell {
    Int(Option<i64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

impl Cell {
    /// Column `i` of `row`; a NULL takes the type of `param`.
    fn read(row: &rusqlite::Row<'_>, i: usize, param: &Type) -> Result<Cell, Error> {
        Ok(match row.get_ref(i).map_err(sqlite_failed)? {
            ValueRef::Integer(n) => Cell::Int(Some(n)),
            ValueRef::Text(t) => Cell::Text(Some(
                std::str::from_utf8(t)
                    .map_err(|e| sqlite_failed(rusqlite::Error::Utf8Error(i, e)))?
                    .to_owned(),
            )),
            ValueRef::Blob(b) => Cell::Bytes(Some(b.to_vec())),
            ValueRef::Null if *param == Type::INT8 => Cell::Int(None),
            ValueRef::Null if *param == Type::BYTEA => Cell::Bytes(None),
            ValueRef::Null => Cell::Text(None),
            ValueRef::Real(_) => {
                return Err(sqlite_failed(rusqlite::Error::InvalidColumnType(
                    i,
                    "a number with a fraction".into(),
                    rusqlite::types::Type::Real,
                )))
            }
        })
    }

    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Cell::Int(v) => v,
            Cell::Text(v) => v,
            Cell::Bytes(v) => v,
        }
    }
}

/// Copies `table`'s rows; how many.
fn copy_table(src: &Connection, tx: &mut Transaction<'_>, table: &Table) -> Result<u64, Error> {
    let insert = tx.prepare(table.insert).map_err(pg_failed(table.doing))?;
    let mut q = src.prepare(table.select).map_err(sqlite_failed)?;
    let columns = q.column_count();
    if columns != insert.params().len() {
        return Err(Error::Store(StoreError::Failed {
            doing: table.doing,
            reason: format!(
                "{columns} columns read for {} parameters",
                insert.params().len()
            ),
        }));
    }
    let mut rows = q.query([]).map_err(sqlite_failed)?;
    let mut copied = 0;
    while let Some(r) = rows.next().map_err(sqlite_failed)? {
        let cells = insert
            .params()
            .iter()
            .enumerate()
            .map(|(i, param)| Cell::read(r, i, param))
            .collect::<Result<Vec<_>, _>>()?;
        let params: Vec<&(dyn ToSql + Sync)> = cells.iter().map(Cell::as_sql).collect();
        tx.execute(&insert, &params)
            .map_err(pg_failed(table.doing))?;
        copied += 1;
    }
    Ok(copied)
}

/// Everything but the messages, then the sequences that must go on
/// after the copied ids (new devices, marker order).
fn copy_tables(src: &Connection, tx: &mut Transaction<'_>, moved: &mut Moved) -> Result<(), Error> {
    moved.accounts = copy_table(src, tx, &ACCOUNTS)?;
    moved.groups = copy_table(src, tx, &GROUPS)?;
    moved.devices = copy_table(src, tx, &DEVICES)?;
    for table in REST {
        copy_table(src, tx, table)?;
    }
    tx.execute(
        "SELECT setval(pg_get_serial_sequence('devices', 'id'), greatest((SELECT max(id) FROM devices), 1))",
        &[],
    )
    .map_err(pg_failed("copying devices"))?;
    tx.execute(
        "SELECT setval('marker_seq', greatest((SELECT max(seq) FROM markers), 1))",
        &[],
    )
    .map_err(pg_failed("copying read markers"))?;
    Ok(())
}

/// Messages, many rows a statement; each row's conversation computed as
/// the PostgreSQL store's (byte order of the keys, whatever the collation).
fn copy_messages(
    src: &Connection,
    tx: &mut Transaction<'_>,
    moved: &mut Moved,
) -> Result<(), Error> {
    let mut q = src
        .prepare(
            "SELECT m.id, m.ts_ms, m.sender, m.sender_key, m.kind, coalesce(m.target, ''),
               coalesce(m.target_key, ''), m.body, m.msg_kind, d.by
             FROM messages m LEFT JOIN deletions d ON d.id = m.id ORDER BY m.id",
        )
        .map_err(sqlite_failed)?;
    let mut rows = q.query([]).map_err(sqlite_failed)?;
    let mut chunk = Chunk::default();
    while let Some(r) = rows.next().map_err(sqlite_failed)? {
        chunk.id.push(r.get(0).map_err(sqlite_failed)?);
        chunk.ts.push(r.get(1).map_err(sqlite_failed)?);
        chunk.sender.push(r.get(2).map_err(sqlite_failed)?);
        chunk.sender_key.push(r.get(3).map_err(sqlite_failed)?);
        chunk
            .kind
            .push(small(r.get::<_, i64>(4).map_err(sqlite_failed)?)?);
        chunk.target.push(r.get(5).map_err(sqlite_failed)?);
        chunk.target_key.push(r.get(6).map_err(sqlite_failed)?);
        chunk.body.push(r.get(7).map_err(sqlite_failed)?);
        chunk
            .msg_kind
            .push(small(r.get::<_, i64>(8).map_err(sqlite_failed)?)?);
        chunk.deleted_by.push(r.get(9).map_err(sqlite_failed)?);
        moved.messages += 1;
        if chunk.id.len() >= 5000 {
            chunk.insert(tx)?;
        }
    }
    chunk.insert(tx)?;
    let last: i64 = src
        .query_row("SELECT last_id FROM message_ids", [], |r| r.get(0))
        .map_err(sqlite_failed)?;
    let last = last.max(moved.messages as i64);
    tx.execute(
        "UPDATE counter SET last_id = greatest($1, (SELECT coalesce(max(id), 0) FROM messages))",
        &[&last],
    )
    .map_err(pg_failed("setting the id counter"))?;
    moved.last_id = tx
        .query_one("SELECT last_id FROM counter", &[])
        .map(|r| r.get::<_, i64>(0).unsigned_abs())
        .map_err(pg_failed("setting the id counter"))?;
    Ok(())
}

#[derive(Default)]
struct Chunk {
    id: Vec<i64>,
    ts: Vec<i64>,
    sender: Vec<String>,
    sender_key: Vec<String>,
    kind: Vec<i16>,
    target: Vec<String>,
    target_key: Vec<String>,
    body: Vec<String>,
    /// A notice or a message (`MessageKind::code`).
    msg_kind: Vec<i16>,
    /// A tombstone's deleter (SQLite's `deletions.by`); its body is
    /// already empty on both stores.
    deleted_by: Vec<Option<String>>,
}

impl Chunk {
    fn insert(&mut self, tx: &mut Transaction<'_>) -> Result<(), Error> {
        if self.id.is_empty() {
            return Ok(());
        }
        tx.execute(
            "INSERT INTO messages (id, ts, sender, sender_key, kind, target, target_key, conv, body,
               msg_kind, deleted_by)
             SELECT id, ts, sender, sender_key, kind, target, target_key,
               CASE kind WHEN 0 THEN 'r' WHEN 1 THEN 'g:' || target_key
                 ELSE 'd:' || least(sender_key COLLATE \"C\", target_key COLLATE \"C\") || ':'
                   || greatest(sender_key COLLATE \"C\", target_key COLLATE \"C\") END,
               body, msg_kind, deleted_by
             FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::SMALLINT[],
                         $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::SMALLINT[], $10::TEXT[])
             AS t (id, ts, sender, sender_key, kind, target, target_key, body, msg_kind, deleted_by)",
            &[
                &self.id,
                &self.ts,
                &self.sender,
                &self.sender_key,
                &self.kind,
                &self.target,
                &self.target_key,
                &self.body,
                &self.msg_kind,
                &self.deleted_by,
            ],
        )
        .map_err(pg_failed("copying messages"))?;
        *self = Chunk::default();
        Ok(())
    }
}
