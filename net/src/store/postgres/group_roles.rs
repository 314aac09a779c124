//! Group changes on PostgreSQL, with the group roles and mutes (schema
//! step 2), as the SQLite store keeps them (`sqlite/group_roles.rs`): the
//! owner is written with the group's creation, the moderators it appoints
//! and the mutes in `group_roles` and `group_mutes`, by the group's and
//! the user's name keys; each GROUP_MODERATE is committed in the batch's
//! transaction with its audit line. A member who leaves (or is taken out)
//! loses their moderator role and mute; a deleted account loses them all.
//! The hub checked the roles before asking; this refuses only what the
//! database decides (no such group, not a member).

use confab_engine::effect::GroupOp;
use confab_engine::frame::GroupAction;
use confab_engine::store::GroupMute;
use confab_engine::{Name, ProtocolError};
use postgres::{GenericClient, Transaction};

use super::moderation::audit_in;
use super::{account_name, failed, name_of, sat_i64};
use crate::store::group_moderation::{self, Change};
use crate::store::StoreError;

const DOING: &str = "changing a group";

/// A group change, refused as the other stores refuse it.
pub(super) fn apply(
    tx: &mut Transaction<'_>,
    op: &GroupOp,
    now_ms: u64,
) -> Result<Result<(), ProtocolError>, StoreError> {
    let (group, user) = match op {
        GroupOp::Create { group, user }
        | GroupOp::Join { group, user }
        | GroupOp::Leave { group, user }
        | GroupOp::Moderate { group, user, .. } => (*group, *user),
    };
    let stored = tx
        .query_opt(
            "SELECT name FROM groups WHERE name_key = $1 FOR UPDATE",
            &[&group.key().as_str()],
        )
        .map_err(failed(DOING))?
        .map(|r| name_of(r.get(0)))
        .transpose()?;
    let (gk, uk) = (group.key(), user.key());
    match (op, stored) {
        (GroupOp::Create { .. }, Some(name)) => Ok(Err(ProtocolError::GroupExists { group: name })),
        (GroupOp::Join { .. } | GroupOp::Leave { .. } | GroupOp::Moderate { .. }, None) => {
            Ok(Err(ProtocolError::NoSuchGroup { group }))
        }
        (GroupOp::Create { .. } | GroupOp::Join { .. }, stored) => {
            let Some(spelled) = account_name(tx, &user)? else {
                return Ok(Err(ProtocolError::NoSuchUser { user }));
            };
            let created = stored.is_none();
            if let Some(name) = stored {
                let member = tx
                    .query_opt(
                        "SELECT 1 FROM members WHERE group_key = $1 AND user_key = $2",
                        &[&gk.as_str(), &uk.as_str()],
                    )
                    .map_err(failed(DOING))?;
                if member.is_some() {
                    return Ok(Err(ProtocolError::AlreadyMember { group: name }));
                }
            } else {
                tx.execute(
                    "INSERT INTO groups (name_key, name) VALUES ($1, $2)",
                    &[&gk.as_str(), &group.as_str()],
                )
                .map_err(failed(DOING))?;
            }
            tx.execute(
                "INSERT INTO members (group_key, user_key, name) VALUES ($1, $2, $3)",
                &[&gk.as_str(), &uk.as_str(), &spelled.as_str()],
            )
            .map_err(failed(DOING))?;
            if created {
                // The creator owns the group (by the spelling the command
                // gave, as on SQLite).
                tx.execute(
                    "INSERT INTO group_roles (group_key, name_key, name, role)
                     VALUES ($1, $2, $3, 'owner')
                     ON CONFLICT (group_key, name_key) DO UPDATE SET name = $3, role = 'owner'",
                    &[&gk.as_str(), &uk.as_str(), &user.as_str()],
                )
                .map_err(failed(DOING))?;
            }
            Ok(Ok(()))
        }
        (
            GroupOp::Leave { .. }
            | GroupOp::Moderate {
                action: GroupAction::Remove,
                ..
            },
            Some(name),
        ) => {
            let n = tx
                .execute(
                    "DELETE FROM members WHERE group_key = $1 AND user_key = $2",
                    &[&gk.as_str(), &uk.as_str()],
                )
                .map_err(failed(DOING))?;
            if n != 1 {
                return Ok(Err(ProtocolError::NotAMember { group: name }));
            }
            forget(tx, Some(&group), &user)?;
            moderated(tx, op, now_ms)?;
            Ok(Ok(()))
        }
        (GroupOp::Moderate { .. }, Some(_)) => {
            moderated(tx, op, now_ms)?;
            Ok(Ok(()))
        }
    }
}

/// `user` is no longer in `group` (`None`: in any group, the account is
/// gone): their moderator role and mute go (an owner who leaves still
/// owns the group, as on SQLite).
pub(super) fn forget(
    tx: &mut impl GenericClient,
    group: Option<&Name>,
    user: &Name,
) -> Result<(), StoreError> {
    let key = user.key();
    match group {
        Some(g) => {
            let g = g.key();
            tx.execute(
                "DELETE FROM group_roles WHERE group_key = $1 AND name_key = $2 AND role = 'moderator'",
                &[&g.as_str(), &key.as_str()],
            )
            .map_err(failed(DOING))?;
            tx.execute(
                "DELETE FROM group_mutes WHERE group_key = $1 AND name_key = $2",
                &[&g.as_str(), &key.as_str()],
            )
            .map_err(failed(DOING))?;
        }
        None => {
            tx.execute(
                "DELETE FROM group_roles WHERE name_key = $1",
                &[&key.as_str()],
            )
            .map_err(failed(DOING))?;
            tx.execute(
                "DELETE FROM group_mutes WHERE name_key = $1",
                &[&key.as_str()],
            )
            .map_err(failed(DOING))?;
        }
    }
    Ok(())
}

/// A committed GROUP_MODERATE's role or mute change (a removal's member
/// row went already), with its one audit line; nothing for another op.
fn moderated(tx: &mut Transaction<'_>, op: &GroupOp, now_ms: u64) -> Result<(), StoreError> {
    let now = sat_i64(now_ms);
    let Some(m) = group_moderation::of(op, now) else {
        return Ok(());
    };
    let (g, u) = (m.group_key.as_str(), m.user_key.as_str());
    match m.change {
        Change::Appoint => tx.execute(
            "INSERT INTO group_roles (group_key, name_key, name, role)
             VALUES ($1, $2, $3, 'moderator') ON CONFLICT DO NOTHING",
            &[&g, &u, &m.user.as_str()],
        ),
        Change::Dismiss => tx.execute(
            "DELETE FROM group_roles WHERE group_key = $1 AND name_key = $2 AND role = 'moderator'",
            &[&g, &u],
        ),
        Change::Mute { until_ms } => tx.execute(
            "INSERT INTO group_mutes (group_key, name_key, group_name, name, until_ms, reason)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (group_key, name_key) DO UPDATE
             SET group_name = $3, name = $4, until_ms = $5, reason = $6",
            &[
                &g,
                &u,
                &m.group.as_str(),
                &m.user.as_str(),
                &until_ms,
                &m.reason,
            ],
        ),
        Change::Unmute => tx.execute(
            "DELETE FROM group_mutes WHERE group_key = $1 AND name_key = $2",
            &[&g, &u],
        ),
        Change::Nothing => Ok(0),
    }
    .map_err(failed(DOING))?;
    audit_in(tx, now, m.actor, m.action, &m.target, m.reason)
}

/// Every role: `(group, user, owner)`, for a node's start.
pub(super) fn roles(c: &mut impl GenericClient) -> Result<Vec<(Name, Name, bool)>, StoreError> {
    let rows = c
        .query(
            "SELECT g.name, r.name, r.role = 'owner' FROM group_roles r
             JOIN groups g ON g.name_key = r.group_key ORDER BY r.group_key, r.name_key",
            &[],
        )
        .map_err(failed("loading group roles"))?;
    rows.iter()
        .map(|r| Ok((name_of(r.get(0))?, name_of(r.get(1))?, r.get(2))))
        .collect()
}

/// The group mutes in force at `now_ms`, with the seconds each has left
/// (rounded up; `None`: until lifted).
pub(super) fn mutes(c: &mut impl GenericClient, now_ms: u64) -> Result<Vec<GroupMute>, StoreError> {
    let now = sat_i64(now_ms);
    let rows = c
        .query(
            "SELECT group_name, name, until_ms, reason FROM group_mutes
             WHERE until_ms IS NULL OR until_ms > $1 ORDER BY group_key, name_key",
            &[&now],
        )
        .map_err(failed("loading group mutes"))?;
    rows.iter()
        .map(|r| {
            let until: Option<i64> = r.get(2);
            Ok((
                name_of(r.get(0))?,
                name_of(r.get(1))?,
                until.map(|u| u.saturating_sub(now).max(0).unsigned_abs().div_ceil(1000)),
                r.get(3),
            ))
        })
        .collect()
}
