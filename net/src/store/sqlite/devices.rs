//! Protocol version 2 on SQLite: devices (`devices`), the exactly-once
//! record of SEND2s (`sends`, written in the same transaction as each
//! message), and read markers (`read_markers`); the schema is migration
//! 3 -> 4 in `migrations.rs`.
//!
//! A device's token is never stored: only its blake3 hash, which the
//! shell computes (see `workers/auth.rs`).

use confab_engine::device::DeviceId;
use confab_engine::effect::{DeviceRecord, NewMessage, SendKey, StoredMessage};
use confab_engine::store::StoredDevice;
use confab_engine::{MessageId, Name, ProtocolError, Target};
use rusqlite::types::Type;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::{
    sat_i64, stage_message, DbName, DbU64, Lookups, MessageRow, KIND_GROUP, KIND_ROOM, KIND_USER,
};
use crate::store::{StoreError, Written};
use confab_engine::effect::Committed;

/// The columns [`device_from_row`] reads, `d` the device and `a` its account.
const DEVICE: &str =
    "SELECT d.id, d.name, d.created_ms, d.last_seen_ms, a.name, d.token_hash, d.bookmark
                      FROM devices d JOIN accounts a ON a.id = d.account_id";

fn device_from_row(row: &Row<'_>) -> rusqlite::Result<StoredDevice> {
    let hash: Option<Vec<u8>> = row.get(5)?;
    let token_hash = match hash {
        None => None,
        Some(h) => Some(<[u8; 32]>::try_from(h.as_slice()).map_err(|_| {
            rusqlite::Error::FromSqlConversionFailure(
                5,
                Type::Blob,
                format!("a token hash of {} bytes, not 32", h.len()).into(),
            )
        })?),
    };
    Ok(StoredDevice {
        record: DeviceRecord {
            id: DeviceId(row.get::<_, DbU64>(0)?.0),
            name: row.get::<_, DbName>(1)?.0,
            created_ms: row.get::<_, DbU64>(2)?.0,
            last_seen_ms: row.get::<_, DbU64>(3)?.0,
        },
        user: row.get::<_, DbName>(4)?.0,
        token_hash,
        bookmark: MessageId(row.get::<_, DbU64>(6)?.0),
    })
}

fn failed(doing: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    super::failed(doing)
}

/// A device id as SQLite stores it.
fn db_id(d: DeviceId) -> i64 {
    sat_i64(d.0)
}

pub(super) fn by_token(
    conn: &Connection,
    hash: &[u8; 32],
) -> Result<Option<StoredDevice>, StoreError> {
    conn.prepare_cached(&format!("{DEVICE} WHERE d.token_hash = ?1"))
        .and_then(|mut s| s.query_row([&hash[..]], device_from_row).optional())
        .map_err(failed("looking a device up by its token"))
}

fn by_id(conn: &Connection, id: i64) -> rusqlite::Result<Option<StoredDevice>> {
    conn.prepare_cached(&format!("{DEVICE} WHERE d.id = ?1"))?
        .query_row([id], device_from_row)
        .optional()
}

pub(super) fn by_name(
    conn: &Connection,
    user: &Name,
    device: &Name,
) -> Result<Option<StoredDevice>, StoreError> {
    conn.prepare_cached(&format!(
        "{DEVICE} WHERE a.name_key = ?1 AND d.name_key = ?2"
    ))
    .and_then(|mut s| {
        s.query_row(
            [user.key().as_str(), device.key().as_str()],
            device_from_row,
        )
        .optional()
    })
    .map_err(failed("looking a device up by its name"))
}

/// Creates the device (or, if a concurrent login just created one of
/// that name, takes that one, with this token).
pub(super) fn create(
    conn: &Connection,
    user: &Name,
    device: &Name,
    token_hash: Option<[u8; 32]>,
    now_ms: u64,
) -> Result<StoredDevice, StoreError> {
    const DOING: &str = "creating a device";
    let id: Option<i64> = conn
        .prepare_cached(
            "INSERT INTO devices (account_id, name, name_key, token_hash, created_ms, last_seen_ms)
             SELECT id, ?2, ?3, ?4, ?5, ?5 FROM accounts WHERE name_key = ?1
             ON CONFLICT (account_id, name_key) DO UPDATE
             SET token_hash = coalesce(excluded.token_hash, token_hash),
                 last_seen_ms = excluded.last_seen_ms
             RETURNING id",
        )
        .and_then(|mut s| {
            s.query_row(
                params![
                    user.key().as_str(),
                    device.as_str(),
                    device.key().as_str(),
                    token_hash.as_ref().map(|h| &h[..]),
                    sat_i64(now_ms)
                ],
                |r| r.get(0),
            )
            .optional()
        })
        .map_err(failed(DOING))?;
    let missing = |what: &str| StoreError::Failed {
        doing: DOING,
        reason: format!("{what} (user {user}, device {device})"),
    };
    let id = id.ok_or_else(|| missing("there is no such account"))?;
    by_id(conn, id)
        .map_err(failed(DOING))?
        .ok_or_else(|| missing("the device went at once"))
}

pub(super) fn set_token(
    conn: &Connection,
    device: DeviceId,
    token_hash: Option<[u8; 32]>,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE devices SET token_hash = ?2 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![db_id(device), token_hash.as_ref().map(|h| &h[..])]))
        .map(|_| ())
        .map_err(failed("replacing a device token"))
}

pub(super) fn touch(conn: &Connection, device: DeviceId, now_ms: u64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE devices SET last_seen_ms = ?2 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![db_id(device), sat_i64(now_ms)]))
        .map(|_| ())
        .map_err(failed("recording a device login"))
}

pub(super) fn list(conn: &Connection, user: &Name) -> Result<Vec<DeviceRecord>, StoreError> {
    conn.prepare_cached(&format!(
        "{DEVICE} WHERE a.name_key = ?1 ORDER BY d.name_key"
    ))
    .and_then(|mut s| {
        s.query_map([user.key().as_str()], |r| {
            device_from_row(r).map(|d| d.record)
        })?
        .collect()
    })
    .map_err(failed("listing devices"))
}

/// Deletes devices of `user` (`name`: the one of that name, else all);
/// their send records go with them (ON DELETE CASCADE).
fn delete(conn: &Connection, user: &Name, name: Option<&Name>) -> rusqlite::Result<Vec<DeviceId>> {
    conn.prepare_cached(
        "DELETE FROM devices
         WHERE account_id = (SELECT id FROM accounts WHERE name_key = ?1)
           AND (?2 IS NULL OR name_key = ?2)
         RETURNING id",
    )?
    .query_map(
        params![
            user.key().as_str(),
            name.map(|n| n.key().as_str().to_owned())
        ],
        |r| r.get::<_, DbU64>(0).map(|v| DeviceId(v.0)),
    )?
    .collect()
}

pub(super) fn revoke(
    conn: &Connection,
    user: &Name,
    device: &Name,
) -> Result<Option<DeviceId>, StoreError> {
    delete(conn, user, Some(device))
        .map(|ids| ids.first().copied())
        .map_err(failed("revoking a device"))
}

pub(super) fn revoke_all(conn: &Connection, user: &Name) -> Result<Vec<DeviceId>, StoreError> {
    delete(conn, user, None).map_err(failed("revoking a user's devices"))
}

/// A read marker's conversation as stored: kind, key, display name.
fn marker_key(target: &Target) -> (i64, String, Option<&str>) {
    match target {
        Target::Room => (KIND_ROOM, String::new(), None),
        Target::Group(g) => (KIND_GROUP, g.key().as_str().to_owned(), Some(g.as_str())),
        Target::User(u) => (KIND_USER, u.key().as_str().to_owned(), Some(u.as_str())),
    }
}

pub(super) fn read_markers(
    conn: &Connection,
    user: &Name,
    max: u16,
) -> Result<Vec<(Target, MessageId)>, StoreError> {
    let mut markers: Vec<(Target, MessageId)> = conn
        .prepare_cached(
            "SELECT m.kind, m.target, m.id FROM read_markers m
             JOIN accounts a ON a.id = m.account_id
             WHERE a.name_key = ?1 ORDER BY m.set_seq DESC LIMIT ?2",
        )
        .and_then(|mut s| {
            s.query_map(params![user.key().as_str(), i64::from(max)], |r| {
                let target = match r.get::<_, i64>(0)? {
                    KIND_ROOM => Target::Room,
                    KIND_GROUP => Target::Group(r.get::<_, DbName>(1)?.0),
                    _ => Target::User(r.get::<_, DbName>(1)?.0),
                };
                Ok((target, MessageId(r.get::<_, DbU64>(2)?.0)))
            })?
            .collect()
        })
        .map_err(failed("loading read markers"))?;
    // Least recently set first, as the engine's stores list them.
    markers.reverse();
    Ok(markers)
}

pub(super) fn prune_sends(
    conn: &mut Connection,
    older_than_ms: u64,
    keep: u32,
) -> Result<u64, StoreError> {
    const DOING: &str = "pruning send records";
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(failed(DOING))?;
    let old = tx
        .execute(
            "DELETE FROM sends WHERE ts_ms < ?1",
            [sat_i64(older_than_ms)],
        )
        .map_err(failed(DOING))?;
    let beyond = tx
        .execute(
            "DELETE FROM sends WHERE (device, client_id) IN (
                 SELECT device, client_id FROM (
                     SELECT device, client_id,
                            row_number() OVER (PARTITION BY device ORDER BY message_id DESC) AS n
                     FROM sends)
                 WHERE n > ?1)",
            [i64::from(keep)],
        )
        .map_err(failed(DOING))?;
    tx.commit().map_err(failed(DOING))?;
    Ok((old + beyond) as u64)
}

// ---- inside a commit's transaction ----

/// A SEND2's message: the original commit if its key has one (committed
/// before, or earlier in this batch: its record is written at once), else
/// staged as any message and its record written.
pub(super) fn message_once<'a>(
    tx: &Connection,
    lookups: &mut Lookups,
    (m, key): (&'a NewMessage, &SendKey),
    ts_ms: u64,
    last: &mut i64,
    rows: &mut Vec<MessageRow<'a>>,
) -> rusqlite::Result<Written> {
    let device = db_id(key.device);
    // Bit for bit: client ids are any 64 bits (PROTOCOL.md) and SQLite has
    // no u64. Saturating them made every id from 2^63 up one and the same,
    // so half of all random ids were taken for repeats and never stored.
    let client = i64::from_ne_bytes(key.client_id.0.to_ne_bytes());
    let before = tx
        .prepare_cached("SELECT message_id, ts_ms FROM sends WHERE device = ?1 AND client_id = ?2")?
        .query_row([device, client], |r| {
            Ok(Committed {
                id: MessageId(r.get::<_, DbU64>(0)?.0),
                timestamp_ms: r.get::<_, DbU64>(1)?.0,
            })
        })
        .optional()?;
    if let Some(c) = before {
        return Ok(Written::Duplicate(c));
    }
    let staged: Result<StoredMessage, ProtocolError> =
        stage_message(tx, lookups, m, ts_ms, last, rows)?;
    if let Ok(stored) = &staged {
        // A device revoked meanwhile keeps no record (it cannot retry).
        tx.prepare_cached(
            "INSERT INTO sends (device, client_id, message_id, ts_ms)
             SELECT id, ?2, ?3, ?4 FROM devices WHERE id = ?1",
        )?
        .execute(params![
            device,
            client,
            sat_i64(stored.id.0),
            sat_i64(ts_ms)
        ])?;
    }
    Ok(Written::Message(staged))
}

/// Raises a device's bookmark; a device that is gone is no error.
pub(super) fn raise_bookmark(
    tx: &Connection,
    device: DeviceId,
    upto: MessageId,
) -> rusqlite::Result<Written> {
    tx.prepare_cached("UPDATE devices SET bookmark = max(bookmark, ?2) WHERE id = ?1")?
        .execute(params![db_id(device), sat_i64(upto.0)])?;
    Ok(Written::Bookmark)
}

/// Sets a read marker to the higher of the old and `id`, as the user's
/// most recently set, and drops the user's markers beyond `max`; the
/// marker as stored (`id` itself for an account that is gone).
pub(super) fn set_read_marker(
    tx: &Connection,
    user: &Name,
    target: &Target,
    id: MessageId,
    max: u16,
) -> rusqlite::Result<Written> {
    let (kind, key, display) = marker_key(target);
    let stored: Option<i64> = tx
        .prepare_cached(
            "INSERT INTO read_markers (account_id, kind, target_key, target, id, set_seq)
             SELECT a.id, ?2, ?3, ?4, ?5,
                    coalesce((SELECT max(set_seq) FROM read_markers WHERE account_id = a.id), 0) + 1
             FROM accounts a WHERE a.name_key = ?1
             ON CONFLICT (account_id, kind, target_key) DO UPDATE
             SET id = max(id, excluded.id), target = excluded.target, set_seq = excluded.set_seq
             RETURNING id",
        )?
        .query_row(
            params![user.key().as_str(), kind, key, display, sat_i64(id.0)],
            |r| r.get(0),
        )
        .optional()?;
    tx.prepare_cached(
        "DELETE FROM read_markers
         WHERE account_id = (SELECT id FROM accounts WHERE name_key = ?1)
           AND set_seq NOT IN (SELECT m.set_seq FROM read_markers m
                               WHERE m.account_id = (SELECT id FROM accounts WHERE name_key = ?1)
                               ORDER BY m.set_seq DESC LIMIT ?2)",
    )?
    .execute(params![user.key().as_str(), i64::from(max)])?;
    Ok(Written::ReadMarker(
        stored.map_or(id, |v| MessageId(v.unsigned_abs())),
    ))
}
