//! Deleted messages on SQLite (migration 5 -> 6): a deletion empties the
//! message's body in place and records who deleted it, and why, in
//! `deletions` (keyed by the message id), with its audit line, in one
//! transaction. History and replay look the tombstones of the ids they
//! loaded up in `deletions` by a range of its primary key: deletions are
//! rare, so this costs one short probe per page.

use confab_engine::effect::StoredMessage;
use confab_engine::{MessageId, Name};
use rusqlite::{params, OptionalExtension};

use super::moderation::audit_in;
use super::{failed, message_from_row, sat_i64, DbName, SqliteStore};
use crate::store::StoreError;

impl SqliteStore {
    /// See [`crate::store::Store::delete_message`].
    pub(super) fn tombstone(
        &mut self,
        id: MessageId,
        by: &Name,
        reason: &str,
        now_ms: u64,
    ) -> Result<Option<StoredMessage>, StoreError> {
        const DOING: &str = "deleting a message";
        let tx = self.conn.transaction().map_err(failed(DOING))?;
        let found = tx
            .prepare_cached(
                "SELECT id, ts_ms, sender, kind, target, body, msg_kind FROM messages WHERE id = ?1",
            )
            .and_then(|mut s| s.query_row([sat_i64(id.0)], message_from_row).optional())
            .map_err(failed(DOING))?;
        let Some(mut message) = found else {
            return Ok(None);
        };
        let now = sat_i64(now_ms);
        (|| -> rusqlite::Result<()> {
            tx.prepare_cached("UPDATE messages SET body = '' WHERE id = ?1")?
                .execute([sat_i64(id.0)])?;
            // A second deletion keeps the first deleter, and its audit line.
            let first = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO deletions (id, by, reason, at_ms) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![sat_i64(id.0), by.as_str(), reason, now])?;
            if first == 0 {
                return Ok(());
            }
            audit_in(&tx, now, by.as_str(), "delete", &id.0.to_string(), reason)
        })()
        .map_err(failed(DOING))?;
        tx.commit().map_err(failed(DOING))?;
        message.body.clear();
        Ok(Some(message))
    }

    /// The tombstones among `messages` (in their order), with who deleted
    /// each.
    pub(super) fn tombstones_of(
        &self,
        messages: &[StoredMessage],
    ) -> Result<Vec<(MessageId, Name)>, StoreError> {
        let (Some(lo), Some(hi)) = (
            messages.iter().map(|m| m.id).min(),
            messages.iter().map(|m| m.id).max(),
        ) else {
            return Ok(Vec::new());
        };
        let found: Vec<(MessageId, Name)> = self
            .conn
            .prepare_cached("SELECT id, by FROM deletions WHERE id BETWEEN ?1 AND ?2")
            .and_then(|mut s| {
                s.query_map([sat_i64(lo.0), sat_i64(hi.0)], |r| {
                    Ok((
                        MessageId(r.get::<_, i64>(0)?.max(0) as u64),
                        r.get::<_, DbName>(1)?.0,
                    ))
                })?
                .collect()
            })
            .map_err(failed("reading deleted messages"))?;
        if found.is_empty() {
            return Ok(found);
        }
        Ok(messages
            .iter()
            .filter_map(|m| found.iter().find(|(id, _)| *id == m.id).copied())
            .collect())
    }
}
