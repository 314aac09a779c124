//! Commits, history, replays and markers on PostgreSQL.
//!
//! A conversation is one `conv` text: `r` (the room), `g:<group key>`, or
//! `d:<key>:<key>` (a direct conversation, the two keys in order), which
//! the `(conv, id)` index serves history pages from.

use confab_engine::effect::{
    Committed, HistoryLoaded, Latest, NewMessage, ReplayLoaded, ReplayScope, SendKey, StoredMessage,
};
use confab_engine::frame::Target;
use confab_engine::window::{Bound, Range};
use confab_engine::{ClientTags, MessageId, MessageKind, Name, ProtocolError};
use postgres::{Client, Row, Transaction};

use super::{account_name, failed, name_of, sat_i64, sat_u64};
use crate::store::{StoreError, Write, Written};

const ROOM: i16 = 0;
const GROUP: i16 = 1;
const DIRECT: i16 = 2;

/// The `conv` of a message to `target` from `sender`.
fn conv(sender: &Name, target: &Target) -> String {
    match target {
        Target::Room => "r".to_owned(),
        Target::Group(g) => format!("g:{}", g.key().as_str()),
        Target::User(u) => {
            let (a, b) = (sender.key(), u.key());
            let (a, b) = if a.as_str() <= b.as_str() {
                (a, b)
            } else {
                (b, a)
            };
            format!("d:{}:{}", a.as_str(), b.as_str())
        }
    }
}

fn kind(target: &Target) -> (i16, &str) {
    match target {
        Target::Room => (ROOM, ""),
        Target::Group(g) => (GROUP, g.as_str()),
        Target::User(u) => (DIRECT, u.as_str()),
    }
}

fn target_of(kind: i16, name: &str) -> Result<Target, StoreError> {
    Ok(match kind {
        ROOM => Target::Room,
        GROUP => Target::Group(name_of(name)?),
        _ => Target::User(name_of(name)?),
    })
}

/// The columns [`message_from_row`] reads.
pub(crate) const MESSAGE_COLUMNS: &str = "id, ts, sender, kind, target, body, deleted_by, msg_kind";

/// The tombstones among `rows` (read with [`MESSAGE_COLUMNS`]).
fn deleted(rows: &[Row]) -> Result<Vec<(MessageId, Name)>, StoreError> {
    rows.iter()
        .filter_map(|r| {
            let by: Option<&str> = r.get(6);
            by.map(|b| Ok((MessageId(sat_u64(r.get(0))), name_of(b)?)))
        })
        .collect()
}

/// A message read with [`MESSAGE_COLUMNS`]; a column of another type (a
/// schema changed by hand) is a storage failure, not a panic of the
/// thread reading it.
pub(crate) fn message_from_row(r: &Row) -> Result<StoredMessage, StoreError> {
    let col = failed("reading a message row");
    let (id, ts): (i64, i64) = (r.try_get(0).map_err(&col)?, r.try_get(1).map_err(&col)?);
    let (sender, kind): (&str, i16) = (r.try_get(2).map_err(&col)?, r.try_get(3).map_err(&col)?);
    let (target, body): (&str, String) = (r.try_get(4).map_err(&col)?, r.try_get(5).map_err(&col)?);
    let msg_kind: i16 = r.try_get(7).map_err(&col)?;
    Ok(StoredMessage {
        id: MessageId(sat_u64(id)),
        timestamp_ms: sat_u64(ts),
        sender: name_of(sender)?,
        target: target_of(kind, target)?,
        body,
        kind: MessageKind::from_code(u8::try_from(msg_kind).unwrap_or(0)),
        tags: ClientTags::default(),
    })
}

/// Messages waiting to be inserted with one statement.
#[derive(Default)]
struct Rows {
    id: Vec<i64>,
    sender: Vec<String>,
    sender_key: Vec<String>,
    kind: Vec<i16>,
    target: Vec<String>,
    target_key: Vec<String>,
    conv: Vec<String>,
    body: Vec<String>,
    msg_kind: Vec<i16>,
}

impl Rows {
    fn push(&mut self, m: &StoredMessage) {
        let (kind, target) = kind(&m.target);
        self.id.push(sat_i64(m.id.0));
        self.sender.push(m.sender.as_str().to_owned());
        self.sender_key.push(m.sender.key().as_str().to_owned());
        self.kind.push(kind);
        self.target.push(target.to_owned());
        self.target_key
            .push(Name::new(target).map_or(String::new(), |n| n.key().as_str().to_owned()));
        self.conv.push(conv(&m.sender, &m.target));
        self.body.push(m.body.clone());
        self.msg_kind.push(i16::from(m.kind.code()));
    }

    fn insert(&self, tx: &mut Transaction<'_>, ts: i64, node: i64) -> Result<(), StoreError> {
        if self.id.is_empty() {
            return Ok(());
        }
        tx.execute(
            "INSERT INTO messages (id, ts, sender, sender_key, kind, target, target_key, conv, body, node,
                                   msg_kind)
             SELECT id, $1, sender, sender_key, kind, target, target_key, conv, body, $10, msg_kind FROM
             UNNEST($2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::SMALLINT[], $6::TEXT[], $7::TEXT[],
                    $8::TEXT[], $9::TEXT[], $11::SMALLINT[])
             AS t (id, sender, sender_key, kind, target, target_key, conv, body, msg_kind)",
            &[
                &ts,
                &self.id,
                &self.sender,
                &self.sender_key,
                &self.kind,
                &self.target,
                &self.target_key,
                &self.conv,
                &self.body,
                &node,
                &self.msg_kind,
            ],
        )
        .map(drop)
        .map_err(failed("inserting messages"))
    }
}

/// One group commit (see the store's docs): the counter's row lock
/// first, then every write in order, the messages in one statement, the
/// counter last.
pub(super) fn commit(
    tx: &mut Transaction<'_>,
    batch: &[Write],
    now_ms: u64,
    node: i64,
) -> Result<Vec<Written>, StoreError> {
    let doing = "committing";
    let row = tx
        .query_one("SELECT last_id FROM counter FOR UPDATE", &[])
        .map_err(failed(doing))?;
    let first: i64 = row.get(0);
    let mut last = MessageId(sat_u64(first));
    let mut rows = Rows::default();
    let mut out = Vec::with_capacity(batch.len());
    for w in batch {
        out.push(match w {
            Write::Message(m) => message(tx, m, &mut last, now_ms, &mut rows)?,
            Write::MessageOnce(m, key) => match sent_before(tx, key)? {
                Some(c) => Written::Duplicate(c),
                None => {
                    let written = message(tx, m, &mut last, now_ms, &mut rows)?;
                    if let Written::Message(Ok(stored)) = &written {
                        record_send(tx, key, stored)?;
                    }
                    written
                }
            },
            Write::Bookmark { device, upto } => {
                tx.execute(
                    "UPDATE devices SET bookmark = GREATEST(bookmark, $2) WHERE id = $1",
                    &[&sat_i64(device.0), &sat_i64(upto.0)],
                )
                .map_err(failed(doing))?;
                Written::Bookmark
            }
            Write::ReadMarker {
                user,
                target,
                id,
                max,
            } => Written::ReadMarker(read_marker(tx, user, target, *id, *max)?),
            Write::Group(op) => Written::Group(super::group_roles::apply(tx, op, now_ms)?),
            Write::Offline { user, seen_upto } => {
                tx.execute(
                    "INSERT INTO offline (user_key, seen_upto) VALUES ($1, $2)
                     ON CONFLICT (user_key) DO UPDATE SET seen_upto = $2",
                    &[&user.key().as_str(), &sat_i64(seen_upto.0)],
                )
                .map_err(failed(doing))?;
                Written::Offline
            }
        });
    }
    rows.insert(tx, sat_i64(now_ms), node)?;
    if sat_i64(last.0) != first {
        tx.execute("UPDATE counter SET last_id = $1", &[&sat_i64(last.0)])
            .map_err(failed(doing))?;
    }
    Ok(out)
}

/// A message: the next id, or `NO_SUCH_USER` for a DM to nobody.
fn message(
    tx: &mut Transaction<'_>,
    m: &NewMessage,
    last: &mut MessageId,
    now_ms: u64,
    rows: &mut Rows,
) -> Result<Written, StoreError> {
    let target = match m.target {
        Target::User(u) => match account_name(tx, &u)? {
            Some(name) => Target::User(name),
            None => return Ok(Written::Message(Err(ProtocolError::NoSuchUser { user: u }))),
        },
        Target::Group(g) => {
            let row = tx
                .query_opt(
                    "SELECT name FROM groups WHERE name_key = $1",
                    &[&g.key().as_str()],
                )
                .map_err(failed("reading a group"))?;
            match row {
                Some(r) => Target::Group(name_of(r.get(0))?),
                None => {
                    return Ok(Written::Message(Err(ProtocolError::NoSuchGroup {
                        group: g,
                    })))
                }
            }
        }
        Target::Room => Target::Room,
    };
    *last = last.next();
    let stored = StoredMessage {
        id: *last,
        timestamp_ms: now_ms,
        sender: m.sender,
        target,
        body: m.body.clone(),
        kind: m.kind,
        tags: m.tags.clone(),
    };
    rows.push(&stored);
    Ok(Written::Message(Ok(stored)))
}

fn sent_before(tx: &mut Transaction<'_>, key: &SendKey) -> Result<Option<Committed>, StoreError> {
    let row = tx
        .query_opt(
            "SELECT msg_id, ts FROM sends WHERE device = $1 AND client_id = $2",
            &[&sat_i64(key.device.0), &(key.client_id.0 as i64)],
        )
        .map_err(failed("reading send records"))?;
    Ok(row.map(|r| Committed {
        id: MessageId(sat_u64(r.get(0))),
        timestamp_ms: sat_u64(r.get(1)),
    }))
}

fn record_send(
    tx: &mut Transaction<'_>,
    key: &SendKey,
    stored: &StoredMessage,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO sends (device, client_id, msg_id, ts) VALUES ($1, $2, $3, $4)",
        &[
            &sat_i64(key.device.0),
            // A client id is any 64 bits: stored as their two's complement.
            &(key.client_id.0 as i64),
            &sat_i64(stored.id.0),
            &sat_i64(stored.timestamp_ms),
        ],
    )
    .map(drop)
    .map_err(failed("recording a send"))
}

fn read_marker(
    tx: &mut Transaction<'_>,
    user: &Name,
    target: &Target,
    id: MessageId,
    max: u16,
) -> Result<MessageId, StoreError> {
    let doing = "storing a read marker";
    let (kind, name) = kind(target);
    let row = tx
        .query_one(
            "INSERT INTO markers (user_key, conv, kind, target, id, seq)
             VALUES ($1, $2, $3, $4, $5, nextval('marker_seq'))
             ON CONFLICT (user_key, conv) DO UPDATE SET id = GREATEST(markers.id, $5),
             seq = nextval('marker_seq') RETURNING id",
            &[
                &user.key().as_str(),
                &conv(user, target),
                &kind,
                &name,
                &sat_i64(id.0),
            ],
        )
        .map_err(failed(doing))?;
    tx.execute(
        "DELETE FROM markers WHERE user_key = $1 AND conv IN (SELECT conv FROM markers
         WHERE user_key = $1 ORDER BY seq DESC OFFSET $2)",
        &[&user.key().as_str(), &i64::from(max)],
    )
    .map_err(failed(doing))?;
    Ok(MessageId(sat_u64(row.get(0))))
}

pub(super) fn read_markers(
    client: &mut Client,
    user: &Name,
    max: u16,
) -> Result<Vec<(Target, MessageId)>, StoreError> {
    let rows = client
        .query(
            "SELECT kind, target, id FROM (SELECT kind, target, id, seq FROM markers
             WHERE user_key = $1 ORDER BY seq DESC LIMIT $2) m ORDER BY seq",
            &[&user.key().as_str(), &i64::from(max)],
        )
        .map_err(failed("reading read markers"))?;
    rows.iter()
        .map(|r| Ok((target_of(r.get(0), r.get(1))?, MessageId(sat_u64(r.get(2))))))
        .collect()
}

/// The newest id when `user`'s account was made (0 for none): see
/// schema step 4.
fn history_from(client: &mut Client, user: &Name, doing: &'static str) -> Result<i64, StoreError> {
    let row = client
        .query_opt(
            "SELECT history_from FROM accounts WHERE name_key = $1",
            &[&user.key().as_str()],
        )
        .map_err(failed(doing))?;
    row.map_or(Ok(0), |r| r.try_get(0).map_err(failed(doing)))
}

/// The id bounds of `range`, exclusive: a time bound becomes the first
/// id committed after it (`messages_ts` finds it in one index probe, and
/// does not need commit times to rise with ids, which several nodes'
/// clocks do not promise).
fn id_bounds(client: &mut Client, range: &Range) -> Result<(i64, i64), StoreError> {
    let mut first_after = |ms: u64| -> Result<i64, StoreError> {
        let row = client
            .query_one(
                "SELECT COALESCE((SELECT min(id) FROM messages WHERE ts > $1),
                                 (SELECT COALESCE(max(id), 0) + 1 FROM messages))",
                &[&sat_i64(ms)],
            )
            .map_err(failed("loading history"))?;
        row.try_get::<_, i64>(0).map_err(failed("loading history"))
    };
    let after = match range.after {
        None => 0,
        Some(Bound::Id(id)) => sat_i64(id.0),
        Some(Bound::Time(ms)) => first_after(ms)?.saturating_sub(1),
    };
    let before = match range.before {
        None => i64::MAX,
        Some(Bound::Id(id)) => sat_i64(id.0),
        // Below the first committed at `ms` or later.
        Some(Bound::Time(ms)) => first_after(ms.saturating_sub(1))?,
    };
    Ok((after, before))
}

/// At most `limit` messages of `range` of a conversation as `user` sees
/// it: the newest, newest first, or the oldest, oldest first.
pub(super) fn history_range(
    client: &mut Client,
    user: &Name,
    target: &Target,
    range: &Range,
    newest: bool,
    limit: u16,
) -> Result<HistoryLoaded, StoreError> {
    let (mut after, before) = id_bounds(client, range)?;
    if matches!(target, Target::User(_)) {
        after = after.max(history_from(client, user, "loading history")?);
    }
    let order = if newest { "DESC" } else { "ASC" };
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conv = $1 AND id > $2 AND id < $3
         ORDER BY id {order} LIMIT $4"
    );
    let rows = client
        .query(
            &sql,
            &[
                &conv(user, target),
                &after,
                &before,
                &(i64::from(limit) + 1),
            ],
        )
        .map_err(failed("loading history"))?;
    let more = rows.len() > usize::from(limit);
    let rows = &rows[..rows.len().min(usize::from(limit))];
    let messages = rows
        .iter()
        .map(message_from_row)
        .collect::<Result<_, _>>()?;
    Ok(HistoryLoaded {
        messages,
        more,
        deleted: deleted(rows)?,
    })
}

/// See [`crate::store::Store::history_targets`]: the newest message of
/// each of the user's conversations (one probe of `messages_conv` each;
/// their direct conversations found by a scan of their direct messages),
/// kept if within the bounds, the earliest first.
pub(super) fn history_targets(
    client: &mut Client,
    user: &Name,
    groups: &[Name],
    (after, before): (u64, u64),
    limit: u16,
) -> Result<Vec<Latest>, StoreError> {
    let mut convs = vec!["r".to_owned()];
    convs.extend(groups.iter().map(|g| format!("g:{}", g.key().as_str())));
    let sql = format!(
        "WITH convs AS (SELECT unnest($2::TEXT[]) AS conv
                        UNION SELECT DISTINCT conv FROM messages
                        WHERE kind = 2 AND (sender_key = $1 OR target_key = $1))
         SELECT {MESSAGE_COLUMNS} FROM convs, LATERAL (
             SELECT * FROM messages WHERE messages.conv = convs.conv
             AND (messages.kind <> 2 OR messages.id > $6) ORDER BY id DESC LIMIT 1) m
         WHERE ts > $3 AND ts < $4 ORDER BY ts, id LIMIT $5"
    );
    let me = user.key();
    let floor = history_from(client, user, "listing conversations")?;
    let params: [&(dyn postgres::types::ToSql + Sync); 6] = [
        &me.as_str(),
        &convs,
        &sat_i64(after),
        &sat_i64(before),
        &i64::from(limit),
        &floor,
    ];
    let rows = client
        .query(&sql, &params)
        .map_err(failed("listing conversations"))?;
    rows.iter()
        .map(|r| {
            let m = message_from_row(r)?;
            let target = match m.target {
                Target::User(to) if m.sender.key() == user.key() => Target::User(to),
                Target::User(_) => Target::User(m.sender),
                other => other,
            };
            Ok(Latest {
                target,
                timestamp_ms: m.timestamp_ms,
            })
        })
        .collect()
}

/// The filter of a replay: `$1` the user's key, `$2` the lowest id
/// missed, `$3` the highest, `$4` the conversations of their groups, `$6`
/// the account's `history_from` (its direct messages start after it).
const MISSED: &str = "id >= $2 AND id <= $3 AND (kind = 0 OR (kind = 1 AND conv = ANY($4))
    OR (kind = 2 AND id > $6 AND (sender_key = $1 OR target_key = $1)))";

/// The filter of an offline replay: DMs to the user after their mark.
const MISSED_OFFLINE: &str = "id >= $2 AND id <= $3 AND kind = 2 AND target_key = $1 AND id > $6
    AND id > COALESCE((SELECT seen_upto FROM offline WHERE user_key = $1), 0)
    AND cardinality($4::TEXT[]) >= 0";

pub(super) fn replay(
    client: &mut Client,
    user: &Name,
    scope: &ReplayScope,
    upto: MessageId,
    max: usize,
) -> Result<ReplayLoaded, StoreError> {
    let doing = "loading missed messages";
    let floor = history_from(client, user, doing)?;
    let (filter, from, groups): (&str, u64, Vec<String>) = match scope {
        ReplayScope::Since { after, groups } => (
            MISSED,
            after.0.saturating_add(1),
            groups
                .iter()
                .map(|g| format!("g:{}", g.key().as_str()))
                .collect(),
        ),
        ReplayScope::OfflineDirect => (MISSED_OFFLINE, 1, Vec::new()),
    };
    let me = user.key();
    let params: [&(dyn postgres::types::ToSql + Sync); 6] = [
        &me.as_str(),
        &sat_i64(from),
        &sat_i64(upto.0),
        &groups,
        &sat_i64(max as u64),
        &floor,
    ];
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM (SELECT * FROM messages WHERE {filter}
         ORDER BY id DESC LIMIT $5) m ORDER BY id"
    );
    let rows = client.query(&sql, &params).map_err(failed(doing))?;
    let tombstones = deleted(&rows)?;
    let messages: Vec<StoredMessage> = rows
        .iter()
        .map(message_from_row)
        .collect::<Result<_, _>>()?;
    let cut = messages
        .first()
        .map_or(upto.0.saturating_add(1), |m| m.id.0);
    // What is older than the replay carries, per conversation as the user
    // sees it (a DM: the other party).
    let sql = format!(
        "SELECT kind, min(CASE WHEN kind = 2 AND target_key = $1 THEN sender ELSE target END),
         min(id), max(id), count(*) FROM messages WHERE {filter} AND id < $5
         GROUP BY kind, CASE WHEN kind = 2 AND target_key = $1 THEN sender_key ELSE target_key END
         ORDER BY min(id)"
    );
    let params: [&(dyn postgres::types::ToSql + Sync); 6] = [
        &me.as_str(),
        &sat_i64(from),
        &sat_i64(upto.0),
        &groups,
        &sat_i64(cut),
        &floor,
    ];
    let rows = client.query(&sql, &params).map_err(failed(doing))?;
    let skipped = rows
        .iter()
        .map(|r| {
            Ok((
                target_of(r.get(0), r.get(1))?,
                MessageId(sat_u64(r.get(2))),
                MessageId(sat_u64(r.get(3))),
                u32::try_from(r.get::<_, i64>(4)).unwrap_or(u32::MAX),
            ))
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(ReplayLoaded {
        messages,
        skipped,
        deleted: tombstones,
    })
}

/// See `PgStore::committed_from`.
pub(super) fn committed_from(
    client: &mut Client,
    next: MessageId,
    limit: i64,
    node: i64,
) -> Result<(MessageId, Vec<(StoredMessage, bool)>), StoreError> {
    let doing = "fetching committed messages";
    // The counter first: every id up to it is committed, so the rows read
    // after it are all there.
    let last: i64 = client
        .query_one("SELECT last_id FROM counter", &[])
        .map_err(failed(doing))?
        .get(0);
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS}, node FROM messages WHERE id >= $1 AND id <= $2 ORDER BY id LIMIT $3"
    );
    let rows = client
        .query(&sql, &[&sat_i64(next.0), &last, &limit])
        .map_err(failed(doing))?;
    let messages = rows
        .iter()
        .map(|r| {
            let by: i64 = r.try_get(8).map_err(failed(doing))?;
            Ok((message_from_row(r)?, node != 0 && by == node))
        })
        .collect::<Result<_, StoreError>>()?;
    Ok((MessageId(sat_u64(last)), messages))
}
