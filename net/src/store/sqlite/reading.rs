//! Reading history on SQLite: a conversation's window, and a replay's
//! sources (each conversation an index range scan, plus the messages
//! not yet indexed), as SQL built once per shape.

use super::*;

/// A page of one conversation (`?1`), ids above `?2` and below `?3`, at
/// most `?4`, newest first (`newest`) or oldest first: it may span the
/// unindexed messages and the indexed ones.
pub(super) fn history_sql(newest: bool) -> &'static str {
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
pub(super) fn first_after(conn: &Connection, ms: u64) -> rusqlite::Result<i64> {
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
pub(super) fn id_bounds(conn: &Connection, range: &Range) -> rusqlite::Result<(i64, i64)> {
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

/// The newest id when `user`'s account was made (0 for accounts older
/// than the column, or none): its direct messages and replays start
/// after it (see the migration that added it).
pub(super) fn history_from(conn: &Connection, user: &Name) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT history_from FROM accounts WHERE name_key = ?1")?
        .query_row([user.key().as_str()], |r| r.get(0))
        .optional()
        .map(Option::unwrap_or_default)
}

/// `columns` of `messages` as a join of `conversation_index c` and
/// `messages m` selects them: the index supplies `id` and `conv_id` (so
/// that ORDER BY id follows the index), the message the rest.
pub(super) fn joined_columns(columns: &[&str]) -> String {
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
/// the user's key, `?4` the account's `history_from`, then the
/// conversation ids).
pub(super) struct Sources {
    /// One condition on the index per range scan (`c.conv_id = ?N`).
    pub(super) ranges: Vec<String>,
    /// Every conversation at once, for the unindexed messages.
    pub(super) any: String,
    /// A condition on the message's own columns, `{m}` standing for the
    /// table's prefix: direct messages to the user only (`AND
    /// {m}target_key = ?3`), or any but direct messages from before the
    /// account was made.
    pub(super) only: &'static str,
    pub(super) params: Vec<Box<dyn ToSql>>,
}

impl Sources {
    pub(super) fn new(
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
        let floor = history_from(conn, user)?;
        let (after, convs, only) = match scope {
            ReplayScope::Since { after, groups } => {
                let mut convs = vec![ROOM_CONV_ID];
                // A group nobody has written to has no conversation yet.
                for g in groups {
                    convs.extend(conversation(conn, &ConvKey::Group(g.key()).text())?);
                }
                convs.extend(direct(conn)?);
                // The room's and groups' messages from before the account
                // are anyone's to read; its direct ones are not. (Accounts
                // from before the column have nothing to leave out.)
                let only = match floor {
                    0 => "",
                    _ => " AND ({m}kind <> 2 OR {m}id > ?4)",
                };
                (sat_i64(after.0), convs, only)
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
                (mark.max(floor), direct(conn)?, " AND {m}target_key = ?3")
            }
        };
        // No conversation, nothing to read: most first logins of a new
        // account (no direct conversation yet) end here, without the
        // union's parse and plan (a fifth of a login's CPU, `conns`).
        if convs.is_empty() {
            return Ok(None);
        }
        let mut params: Vec<Box<dyn ToSql>> = vec![
            Box::new(after),
            Box::new(end),
            Box::new(key.clone()),
            Box::new(floor),
        ];
        let (ranges, any) = if convs.len() <= MAX_CONV_BRANCHES {
            // One index range per conversation, so each stops at the limit.
            let numbers: Vec<String> = (0..convs.len()).map(|i| format!("?{}", i + 5)).collect();
            params.extend(convs.into_iter().map(|c| Box::new(c) as Box<dyn ToSql>));
            (
                numbers.iter().map(|n| format!("c.conv_id = {n}")).collect(),
                format!("conv_id IN ({})", numbers.join(", ")),
            )
        } else {
            let list: Vec<String> = convs.iter().map(i64::to_string).collect();
            params.push(Box::new(format!("[{}]", list.join(","))));
            let within = "IN (SELECT value FROM json_each(?5))";
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
    pub(super) fn union(&self, columns: &[&str], tail: &str) -> String {
        let joined = joined_columns(columns);
        let plain = columns.join(", ");
        let only_m = self.only.replace("{m}", "m.");
        let only = self.only.replace("{m}", "");
        let unindexed = format!(
            "SELECT * FROM (SELECT {plain} FROM messages WHERE id > {INDEXED_UPTO} AND ({}) AND id > ?1 AND id < ?2{} {tail})",
            self.any, only
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

impl SqliteStore {
    /// See [`Store::history_range`].
    pub(super) fn history_range_in(
        &mut self,
        user: &Name,
        target: &Target,
        range: &Range,
        newest: bool,
        limit: u16,
    ) -> Result<HistoryLoaded, StoreError> {
        let (mut after, before) =
            id_bounds(&self.conn, range).map_err(failed("loading history"))?;
        if matches!(target, Target::User(_)) {
            after = after.max(history_from(&self.conn, user).map_err(failed("loading history"))?);
        }
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

    /// See [`Store::replay`].
    pub(super) fn replay_in(
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

    /// See [`Store::history_targets`]: each of the user's conversations'
    /// newest message (one index probe each, in one read transaction),
    /// kept if within the bounds.
    pub(super) fn history_targets_in(
        &mut self,
        user: &Name,
        groups: &[Name],
        (after, before): (u64, u64),
        limit: u16,
    ) -> Result<Vec<Latest>, StoreError> {
        const DOING: &str = "listing conversations";
        let tx = self.conn.transaction().map_err(failed(DOING))?;
        let mut convs = vec![ROOM_CONV_ID];
        let mut within: Vec<(MessageId, Latest)> = Vec::new();
        let mut probe = || -> rusqlite::Result<()> {
            // A group nobody has written to has no conversation yet.
            for g in groups {
                convs.extend(conversation(&tx, &ConvKey::Group(g.key()).text())?);
            }
            let shared = convs.len();
            let floor = history_from(&tx, user)?;
            let key = user.key().as_str().to_owned();
            let direct: Vec<i64> = tx
                .prepare_cached("SELECT conv_id FROM dm_parties WHERE user_key = ?1")?
                .query_map([&key], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            convs.extend(direct);
            let mut newest = tx.prepare_cached(history_sql(true))?;
            for (i, conv) in convs.iter().enumerate() {
                // A direct conversation's messages from before the account.
                let from = if i < shared { 0 } else { floor };
                let mut rows =
                    newest.query_map(params![conv, from, i64::MAX, 1i64], message_from_row)?;
                let Some(m) = rows.next().transpose()? else {
                    continue;
                };
                if m.timestamp_ms <= after || m.timestamp_ms >= before {
                    continue;
                }
                let target = match m.target {
                    Target::User(to) if m.sender.key() == user.key() => Target::User(to),
                    Target::User(_) => Target::User(m.sender),
                    other => other,
                };
                let timestamp_ms = m.timestamp_ms;
                within.push((
                    m.id,
                    Latest {
                        target,
                        timestamp_ms,
                    },
                ));
            }
            Ok(())
        };
        probe().map_err(failed(DOING))?;
        tx.commit().map_err(failed(DOING))?;
        within.sort_by_key(|(id, l)| (l.timestamp_ms, *id));
        within.truncate(usize::from(limit));
        Ok(within.into_iter().map(|(_, l)| l).collect())
    }
}
