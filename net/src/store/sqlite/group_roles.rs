//! Group roles and mutes on SQLite (part of migration 5 -> 6): the owner
//! (written with the group's creation) and the moderators it appoints in
//! `group_roles`, mutes in `group_mutes`, both keyed by the group's and
//! the user's name keys; each GROUP_MODERATE is committed with its audit
//! line in the writer's batch. A member who leaves (or is taken out) loses
//! their moderator role and mute; a deleted account loses them all.

use confab_engine::effect::GroupOp;
use confab_engine::{Name, ProtocolError};
use rusqlite::{params, Connection};

use super::moderation::audit_in;
use super::{sat_i64, DbName};
use crate::store::group_moderation::{self, Change};

/// The creator of `group` is its owner.
pub(super) fn record_owner(conn: &Connection, group: &Name, user: &Name) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO group_roles (group_key, name_key, name, role)
         VALUES (?1, ?2, ?3, 'owner')",
    )?
    .execute(params![
        group.key().as_str(),
        user.key().as_str(),
        user.as_str()
    ])?;
    Ok(())
}

/// `user` is no longer in `group` (`None`: in any group).
pub(super) fn forget(conn: &Connection, group: Option<&Name>, user: &Name) -> rusqlite::Result<()> {
    let key = user.key();
    match group {
        Some(g) => {
            conn.prepare_cached(
                "DELETE FROM group_roles WHERE group_key = ?1 AND name_key = ?2 AND role = 'moderator'",
            )?
            .execute(params![g.key().as_str(), key.as_str()])?;
            conn.prepare_cached("DELETE FROM group_mutes WHERE group_key = ?1 AND name_key = ?2")?
                .execute(params![g.key().as_str(), key.as_str()])?;
        }
        None => {
            conn.prepare_cached("DELETE FROM group_roles WHERE name_key = ?1")?
                .execute([key.as_str()])?;
            conn.prepare_cached("DELETE FROM group_mutes WHERE name_key = ?1")?
                .execute([key.as_str()])?;
        }
    }
    Ok(())
}

/// A committed GROUP_MODERATE other than a removal (which the caller
/// applies as a leave), with its audit line. The hub checked the roles.
pub(super) fn apply(conn: &Connection, op: &GroupOp, ts_ms: u64) -> rusqlite::Result<()> {
    let now = sat_i64(ts_ms);
    let Some(m) = group_moderation::of(op, now) else {
        return Ok(());
    };
    let (g, u) = (m.group_key.as_str(), m.user_key.as_str());
    match m.change {
        Change::Appoint => {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO group_roles (group_key, name_key, name, role)
                 VALUES (?1, ?2, ?3, 'moderator')",
            )?
            .execute(params![g, u, m.user.as_str()])?;
        }
        Change::Dismiss => {
            conn.prepare_cached(
                "DELETE FROM group_roles WHERE group_key = ?1 AND name_key = ?2 AND role = 'moderator'",
            )?
            .execute(params![g, u])?;
        }
        Change::Mute { until_ms } => {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO group_mutes (group_key, name_key, group_name, name, until_ms, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![g, u, m.group.as_str(), m.user.as_str(), until_ms, m.reason])?;
        }
        Change::Unmute => {
            conn.prepare_cached("DELETE FROM group_mutes WHERE group_key = ?1 AND name_key = ?2")?
                .execute(params![g, u])?;
        }
        Change::Nothing => {}
    }
    audit_in(conn, now, m.actor, m.action, &m.target, m.reason)
}

/// Every role: `(group, user, owner)`.
pub(super) fn roles(conn: &Connection) -> rusqlite::Result<Vec<(Name, Name, bool)>> {
    conn.prepare_cached(
        "SELECT g.name, r.name, r.role = 'owner' FROM group_roles r
         JOIN groups g ON g.name_key = r.group_key ORDER BY r.group_key, r.name_key",
    )?
    .query_map([], |r| {
        Ok((
            r.get::<_, DbName>(0)?.0,
            r.get::<_, DbName>(1)?.0,
            r.get(2)?,
        ))
    })?
    .collect()
}

/// The group mutes in force at `now_ms`: `(group, user, seconds left,
/// reason)`.
pub(super) fn mutes(
    conn: &Connection,
    now_ms: i64,
) -> rusqlite::Result<Vec<confab_engine::store::GroupMute>> {
    conn.prepare_cached(
        "SELECT group_name, name, until_ms, reason FROM group_mutes
         WHERE until_ms IS NULL OR until_ms > ?1 ORDER BY group_key, name_key",
    )?
    .query_map([now_ms], |r| {
        let until: Option<i64> = r.get(2)?;
        Ok((
            r.get::<_, DbName>(0)?.0,
            r.get::<_, DbName>(1)?.0,
            until.map(|u| (u.saturating_sub(now_ms).max(0) as u64).div_ceil(1000)),
            r.get(3)?,
        ))
    })?
    .collect()
}

/// Refuses a removal of someone who is not a member, as a leave would.
pub(super) fn not_a_member(group: Name) -> rusqlite::Result<Result<(), ProtocolError>> {
    Ok(Err(ProtocolError::NotAMember { group }))
}
