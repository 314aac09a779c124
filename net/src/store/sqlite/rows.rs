//! Rows as the store reads them: names and ids validated on the way
//! out, and the ids of accounts, groups and conversations by name.

use super::*;

/// A name read from the database, validated.
pub(super) struct DbName(pub(super) Name);

impl FromSql for DbName {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<DbName> {
        Name::new(value.as_str()?)
            .map(DbName)
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

/// An id or a time read from the database: never negative.
pub(super) struct DbU64(pub(super) u64);

impl FromSql for DbU64 {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<DbU64> {
        let v = value.as_i64()?;
        u64::try_from(v)
            .map(DbU64)
            .map_err(|_| FromSqlError::OutOfRange(v))
    }
}

pub(super) fn message_from_row(row: &Row<'_>) -> rusqlite::Result<StoredMessage> {
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
        kind: MessageKind::from_code(row.get::<_, u8>(6)?),
        tags: ClientTags::default(),
    })
}

/// The id and registered name of an account, by key.
pub(super) fn account_id(
    conn: &Connection,
    user: &Name,
) -> rusqlite::Result<Option<(i64, DbName)>> {
    conn.prepare_cached("SELECT id, name FROM accounts WHERE name_key = ?1")?
        .query_row([user.key().as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

/// The id and registered name of a group, by key.
pub(super) fn group_id(conn: &Connection, group: &Name) -> rusqlite::Result<Option<(i64, DbName)>> {
    conn.prepare_cached("SELECT id, name FROM groups WHERE name_key = ?1")?
        .query_row([group.key().as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

/// The id of the conversation keyed `key`, if it has one yet.
pub(super) fn conversation(conn: &Connection, key: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM conversations WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()
}

/// The id of the conversation keyed `key`, created on its first message
/// with `parties` (the users of a direct conversation) recorded.
pub(super) fn conversation_for_message(
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
