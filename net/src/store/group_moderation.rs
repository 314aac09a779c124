//! What a committed GROUP_MODERATE writes, decided once for both stores:
//! the row change (a role or a mute, by name keys) and its one audit
//! line. Each store only says it in its own SQL (`sqlite/group_roles.rs`,
//! `postgres/group_roles.rs`). A removal's member row is the caller's (it
//! is applied as a leave), so it changes no role row here.

use confab_engine::effect::GroupOp;
use confab_engine::frame::GroupAction;
use confab_engine::name::NameKey;
use confab_engine::Name;

/// The row change of one GROUP_MODERATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// A moderator's row, added if missing.
    Appoint,
    /// A moderator's row gone (an owner's stays).
    Dismiss,
    /// A mute, replacing one there is; `until_ms` `None`: until lifted.
    Mute { until_ms: Option<i64> },
    /// The mute gone.
    Unmute,
    /// No role or mute row (a removal).
    Nothing,
}

/// A GROUP_MODERATE to write: its keys and names, the change, the audit
/// line's fields.
#[derive(Debug)]
pub(crate) struct Moderation<'a> {
    pub(crate) group_key: NameKey,
    pub(crate) user_key: NameKey,
    pub(crate) group: &'a Name,
    pub(crate) user: &'a Name,
    pub(crate) change: Change,
    pub(crate) reason: &'a str,
    /// The audit line's actor, action and target (`#group user`).
    pub(crate) actor: &'a str,
    pub(crate) action: &'static str,
    pub(crate) target: String,
}

/// `op`'s writes at `now_ms`; `None` for an op that is not a
/// GROUP_MODERATE.
pub(crate) fn of(op: &GroupOp, now_ms: i64) -> Option<Moderation<'_>> {
    let GroupOp::Moderate {
        group,
        user,
        action,
        seconds,
        reason,
        by,
    } = op
    else {
        return None;
    };
    let change = match action {
        GroupAction::Appoint => Change::Appoint,
        GroupAction::Dismiss => Change::Dismiss,
        GroupAction::Mute => Change::Mute {
            until_ms: (*seconds > 0).then(|| now_ms.saturating_add(i64::from(*seconds) * 1000)),
        },
        GroupAction::Unmute => Change::Unmute,
        GroupAction::Remove => Change::Nothing,
    };
    Some(Moderation {
        group_key: group.key(),
        user_key: user.key(),
        group,
        user,
        change,
        reason: reason.as_str(),
        actor: by.as_str(),
        action: action.as_str(),
        target: format!("#{group} {user}"),
    })
}
