//! A batch's writes on SQLite: messages checked, given their ids and
//! inserted many rows per statement, group changes, all in one
//! transaction (one fsync) per batch.

use super::*;

/// A message checked and given its id, waiting to be inserted with the
/// others of its batch (see [`insert_rows`]).
pub(super) struct MessageRow<'a> {
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
pub(super) fn stage_message<'a>(
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
        kind: m.kind,
        tags: m.tags.clone(),
    }))
}

/// Most rows one INSERT statement takes (10 parameters each).
pub(super) const ROWS_PER_INSERT: usize = 32;

/// `INSERT INTO messages ... VALUES` with `n` rows of parameters.
pub(super) fn insert_sql(n: usize) -> String {
    let rows: Vec<String> = (0..n)
        .map(|r| {
            let p: Vec<String> = (1..=10).map(|c| format!("?{}", r * 10 + c)).collect();
            format!("({})", p.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO messages (id, ts_ms, sender, sender_key, kind, target, target_key, conv_id, body, msg_kind)
         VALUES {}",
        rows.join(", ")
    )
}

/// Inserts `rows` (and empties it) with multi-row INSERTs of power-of-two
/// sizes up to [`ROWS_PER_INSERT`]: per row, a statement's own overhead
/// (step, reset, the statement cache's lookup) cost as much as the insert,
/// and power-of-two sizes keep the prepared statements few.
pub(super) fn insert_rows(
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
            let at = r * 10;
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
            stmt.raw_bind_parameter(at + 10, i64::from(m.kind.code()))?;
        }
        stmt.raw_execute()?;
        rest = tail;
    }
    rows.clear();
    Ok(())
}

pub(super) fn apply_group_op(
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
            // Its one audit line ("group-remove") is written there.
            group_roles::apply(conn, op, ts_ms)?;
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
pub(super) fn commit_batch(
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
