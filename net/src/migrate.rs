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

use postgres::{NoTls, Transaction};
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
    copy_accounts(&src, &mut tx, &mut moved)?;
    copy_messages(&src, &mut tx, &mut moved)?;
    copy_devices(&src, &mut tx, &mut moved)?;
    copy_rest(&src, &mut tx)?;
    tx.commit().map_err(pg_failed("committing the copy"))?;
    Ok(moved)
}

fn copy_accounts(
    src: &Connection,
    tx: &mut Transaction<'_>,
    moved: &mut Moved,
) -> Result<(), Error> {
    let doing = "copying accounts";
    let mut q = src
        .prepare("SELECT name_key, name, password_hash, operator FROM accounts")
        .map_err(sqlite_failed)?;
    let mut rows = q.query([]).map_err(sqlite_failed)?;
    while let Some(r) = rows.next().map_err(sqlite_failed)? {
        let (key, name, hash, op): (String, String, String, i64) = (
            r.get(0).map_err(sqlite_failed)?,
            r.get(1).map_err(sqlite_failed)?,
            r.get(2).map_err(sqlite_failed)?,
            r.get(3).map_err(sqlite_failed)?,
        );
        tx.execute(
            "INSERT INTO accounts (name_key, name, hash, operator) VALUES ($1, $2, $3, $4)",
            &[&key, &name, &hash, &(op == 1)],
        )
        .map_err(pg_failed(doing))?;
        moved.accounts += 1;
    }
    let mut q = src
        .prepare("SELECT name_key, name FROM groups")
        .map_err(sqlite_failed)?;
    let groups: Vec<(String, String)> = q
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|rows| rows.collect())
        .map_err(sqlite_failed)?;
    for (key, name) in &groups {
        tx.execute(
            "INSERT INTO groups (name_key, name) VALUES ($1, $2)",
            &[key, name],
        )
        .map_err(pg_failed(doing))?;
    }
    moved.groups = groups.len() as u64;
    let mut q = src
        .prepare(
            "SELECT g.name_key, a.name_key, a.name FROM group_members m
             JOIN groups g ON g.id = m.group_id JOIN accounts a ON a.id = m.account_id",
        )
        .map_err(sqlite_failed)?;
    let members: Vec<(String, String, String)> = q
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .and_then(|rows| rows.collect())
        .map_err(sqlite_failed)?;
    for (g, u, name) in &members {
        tx.execute(
            "INSERT INTO members (group_key, user_key, name) VALUES ($1, $2, $3)",
            &[g, u, name],
        )
        .map_err(pg_failed(doing))?;
    }
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
            .push(r.get::<_, i64>(4).map_err(sqlite_failed)? as i16);
        chunk.target.push(r.get(5).map_err(sqlite_failed)?);
        chunk.target_key.push(r.get(6).map_err(sqlite_failed)?);
        chunk.body.push(r.get(7).map_err(sqlite_failed)?);
        chunk
            .msg_kind
            .push(r.get::<_, i64>(8).map_err(sqlite_failed)? as i16);
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

fn copy_devices(
    src: &Connection,
    tx: &mut Transaction<'_>,
    moved: &mut Moved,
) -> Result<(), Error> {
    let doing = "copying devices";
    let mut q = src
        .prepare(
            "SELECT d.id, a.name_key, a.name, d.name, d.name_key, d.created_ms, d.last_seen_ms,
             d.token_hash, d.bookmark FROM devices d JOIN accounts a ON a.id = d.account_id",
        )
        .map_err(sqlite_failed)?;
    let mut rows = q.query([]).map_err(sqlite_failed)?;
    while let Some(r) = rows.next().map_err(sqlite_failed)? {
        let get_s = |i| r.get::<_, String>(i).map_err(sqlite_failed);
        let get_i = |i| r.get::<_, i64>(i).map_err(sqlite_failed);
        let hash: Option<Vec<u8>> = r.get(7).map_err(sqlite_failed)?;
        tx.execute(
            "INSERT INTO devices (id, user_key, user_name, name, name_key, created_ms, last_seen_ms,
             token_hash, bookmark) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[&get_i(0)?, &get_s(1)?, &get_s(2)?, &get_s(3)?, &get_s(4)?, &get_i(5)?, &get_i(6)?, &hash, &get_i(8)?],
        )
        .map_err(pg_failed(doing))?;
        moved.devices += 1;
    }
    // New devices get ids after the copied ones.
    tx.execute(
        "SELECT setval(pg_get_serial_sequence('devices', 'id'), greatest((SELECT max(id) FROM devices), 1))",
        &[],
    )
    .map_err(pg_failed(doing))?;
    let mut q = src
        .prepare("SELECT device, client_id, message_id, ts_ms FROM sends")
        .map_err(sqlite_failed)?;
    let mut rows = q.query([]).map_err(sqlite_failed)?;
    while let Some(r) = rows.next().map_err(sqlite_failed)? {
        let get = |i| r.get::<_, i64>(i).map_err(sqlite_failed);
        tx.execute(
            "INSERT INTO sends (device, client_id, msg_id, ts) VALUES ($1, $2, $3, $4)",
            &[&get(0)?, &get(1)?, &get(2)?, &get(3)?],
        )
        .map_err(pg_failed("copying send records"))?;
    }
    Ok(())
}

/// Offline marks, read markers, sanctions and the audit log.
fn copy_rest(src: &Connection, tx: &mut Transaction<'_>) -> Result<(), Error> {
    let mut q = src
        .prepare(
            "SELECT a.name_key, o.seen_upto FROM offline_marks o JOIN accounts a ON a.id = o.account_id",
        )
        .map_err(sqlite_failed)?;
    let marks: Vec<(String, i64)> = q
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|rows| rows.collect())
        .map_err(sqlite_failed)?;
    for (user, seen) in &marks {
        tx.execute(
            "INSERT INTO offline (user_key, seen_upto) VALUES ($1, $2)",
            &[user, seen],
        )
        .map_err(pg_failed("copying offline marks"))?;
    }
    let mut q = src
        .prepare(
            "SELECT a.name_key, m.kind, m.target_key, coalesce(m.target, ''), m.id, m.set_seq
             FROM read_markers m JOIN accounts a ON a.id = m.account_id",
        )
        .map_err(sqlite_failed)?;
    let markers: Vec<(String, i64, String, String, i64, i64)> = q
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .and_then(|rows| rows.collect())
        .map_err(sqlite_failed)?;
    for (user, kind, target_key, target, id, seq) in &markers {
        // The PostgreSQL store's conversation key, from the user's side.
        let conv = match kind {
            0 => "r".to_owned(),
            1 => format!("g:{target_key}"),
            _ => {
                let (a, b) = if user.as_str() <= target_key.as_str() {
                    (user, target_key)
                } else {
                    (target_key, user)
                };
                format!("d:{a}:{b}")
            }
        };
        tx.execute(
            "INSERT INTO markers (user_key, conv, kind, target, id, seq) VALUES ($1, $2, $3, $4, $5, $6)",
            &[user, &conv, &(*kind as i16), target, id, seq],
        )
        .map_err(pg_failed("copying read markers"))?;
    }
    tx.execute(
        "SELECT setval('marker_seq', greatest((SELECT max(seq) FROM markers), 1))",
        &[],
    )
    .map_err(pg_failed("copying read markers"))?;
    copy_moderation(src, tx)
}

fn copy_moderation(src: &Connection, tx: &mut Transaction<'_>) -> Result<(), Error> {
    type Sanction = (String, String, String, Option<i64>, String, String, i64);
    let mut q = src
        .prepare("SELECT kind, name_key, name, until_ms, reason, by, at_ms FROM sanctions")
        .map_err(sqlite_failed)?;
    let sanctions: Vec<Sanction> = q
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .and_then(|rows| rows.collect())
        .map_err(sqlite_failed)?;
    for (kind, key, name, until, reason, by, at) in &sanctions {
        tx.execute(
            "INSERT INTO sanctions (kind, name_key, name, until_ms, reason, by_whom, at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[kind, key, name, until, reason, by, at],
        )
        .map_err(pg_failed("copying sanctions"))?;
    }
    copy_roles_and_bans(src, tx)?;
    let mut q = src
        .prepare("SELECT at_ms, actor, action, target, reason FROM audit ORDER BY id")
        .map_err(sqlite_failed)?;
    let lines: Vec<(i64, String, String, String, String)> = q
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .and_then(|rows| rows.collect())
        .map_err(sqlite_failed)?;
    for (at, actor, action, target, reason) in &lines {
        tx.execute(
            "INSERT INTO audit (at_ms, actor, action, target, reason) VALUES ($1, $2, $3, $4, $5)",
            &[at, actor, action, target, reason],
        )
        .map_err(pg_failed("copying the audit log"))?;
    }
    Ok(())
}

/// Group roles, group mutes and address bans: the same columns on both
/// stores (SQLite's `by` is PostgreSQL's `by_whom`).
fn copy_roles_and_bans(src: &Connection, tx: &mut Transaction<'_>) -> Result<(), Error> {
    let mut q = src
        .prepare("SELECT group_key, name_key, name, role FROM group_roles")
        .map_err(sqlite_failed)?;
    let roles: Vec<(String, String, String, String)> = q
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .and_then(|rows| rows.collect())
        .map_err(sqlite_failed)?;
    for (g, u, name, role) in &roles {
        tx.execute(
            "INSERT INTO group_roles (group_key, name_key, name, role) VALUES ($1, $2, $3, $4)",
            &[g, u, name, role],
        )
        .map_err(pg_failed("copying group roles"))?;
    }
    type Mute = (String, String, String, String, Option<i64>, String);
    let mut q = src
        .prepare("SELECT group_key, name_key, group_name, name, until_ms, reason FROM group_mutes")
        .map_err(sqlite_failed)?;
    let mutes: Vec<Mute> = q
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .and_then(|rows| rows.collect())
        .map_err(sqlite_failed)?;
    for (g, u, group, name, until, reason) in &mutes {
        tx.execute(
            "INSERT INTO group_mutes (group_key, name_key, group_name, name, until_ms, reason)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[g, u, group, name, until, reason],
        )
        .map_err(pg_failed("copying group mutes"))?;
    }
    type Ban = (String, Option<i64>, String, String, i64);
    let mut q = src
        .prepare("SELECT net, until_ms, reason, by, at_ms FROM address_bans")
        .map_err(sqlite_failed)?;
    let bans: Vec<Ban> = q
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .and_then(|rows| rows.collect())
        .map_err(sqlite_failed)?;
    for (net, until, reason, by, at) in &bans {
        tx.execute(
            "INSERT INTO address_bans (net, until_ms, reason, by_whom, at_ms)
             VALUES ($1, $2, $3, $4, $5)",
            &[net, until, reason, by, at],
        )
        .map_err(pg_failed("copying address bans"))?;
    }
    Ok(())
}
