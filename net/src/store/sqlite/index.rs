//! The deferred conversation index: messages are indexed by
//! conversation after their commit, a step at a time between batches.

use super::*;

/// Indexes the `count` oldest unindexed messages; returns how many.
pub(super) fn index_step(tx: &Connection, count: u64) -> rusqlite::Result<u64> {
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
pub(super) fn index_all(tx: &Connection) -> rusqlite::Result<u64> {
    let newest: i64 = tx
        .prepare_cached("SELECT coalesce(max(id), 0) FROM messages")?
        .query_row([], |r| r.get(0))?;
    index_upto(tx, newest)
}

/// Indexes the messages from `indexed_upto` to `upto`, sorted so that
/// each conversation's entries go in together.
pub(super) fn index_upto(tx: &Connection, upto: i64) -> rusqlite::Result<u64> {
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
