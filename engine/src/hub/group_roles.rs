//! Group roles: a group's owner (its creator) appoints moderators; the
//! owner, a moderator or a server operator may take a member out of the
//! group, mute one in it, and delete messages sent to it (see
//! `notices.rs`); only the owner (or an operator) appoints and dismisses
//! moderators, and nobody but an operator acts on the owner.
//!
//! A GROUP_MODERATE is checked here and committed like any group change
//! ([`GroupOp::Moderate`], with its audit line); it takes effect when the
//! commit comes back ([`Hub::handle_group_committed`]), and the asker's
//! OK follows the commit. Roles come back from storage at start
//! ([`Hub::set_group_roles`]), mutes from the shell ([`Hub::mute_in_group`]).
//!
//! Every set here grows only by what an owner, moderator or operator
//! asks, one entry per member at most (mutes of users gone from the
//! group go with their membership).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::effect::{Effect, GroupOp};
use crate::error::ProtocolError;
use crate::frame::GroupAction;
use crate::id::{ConnId, Ref};
use crate::name::{Name, NameKey};
use crate::request::GroupAsk;

use super::moderation::Sanction;
use super::Hub;

/// A group's roles and mutes.
#[derive(Debug, Default)]
pub(super) struct Roles {
    owner: Option<NameKey>,
    moderators: HashSet<NameKey>,
    mutes: HashMap<NameKey, Sanction>,
}

impl Roles {
    pub(super) fn owned_by(user: Name) -> Roles {
        Roles {
            owner: Some(user.key()),
            ..Roles::default()
        }
    }

    fn is_owner(&self, user: &NameKey) -> bool {
        self.owner.as_ref() == Some(user)
    }

    pub(super) fn moderates(&self, user: &NameKey) -> bool {
        self.is_owner(user) || self.moderators.contains(user)
    }

    /// `user` is no longer a member: their role and mute go.
    pub(super) fn forget(&mut self, user: &NameKey) {
        self.moderators.remove(user);
        self.mutes.remove(user);
    }
}

impl Hub {
    /// The roles storage had at start: `(group, user, owner)`, owner false
    /// for a moderator. Unknown groups are skipped.
    pub fn set_group_roles(&mut self, roles: &[(Name, Name, bool)]) {
        for (group, user, owner) in roles {
            if let Some(g) = self.groups.groups.get_mut(&group.key()) {
                if *owner {
                    g.roles.owner = Some(user.key());
                } else {
                    g.roles.moderators.insert(user.key());
                }
            }
        }
    }

    /// Mutes `user` in `group` until `until` (`None`: until lifted); the
    /// shell hands back the stored ones at start. False if there is no
    /// such group.
    pub fn mute_in_group(
        &mut self,
        now: Instant,
        group: &Name,
        user: &Name,
        until: Option<Instant>,
        reason: &str,
    ) -> bool {
        let Some(g) = self.groups.groups.get_mut(&group.key()) else {
            return false;
        };
        let sanction = Sanction {
            until,
            reason: reason.to_owned(),
        };
        g.roles.mutes.retain(|_, s| s.left(now).is_some());
        if sanction.left(now).is_some() {
            g.roles.mutes.insert(user.key(), sanction);
        }
        true
    }

    /// Why `user` may not send to `group` now, if muted there.
    pub(super) fn group_mute_refusal(
        &self,
        now: Instant,
        group: &Name,
        user: &Name,
    ) -> Option<ProtocolError> {
        let g = self.groups.groups.get(&group.key())?;
        let mute = g.roles.mutes.get(&user.key())?;
        Some(ProtocolError::MutedInGroup {
            group: g.name,
            reason: mute.reason.clone(),
            retry: mute.left(now)?,
        })
    }

    /// GROUP_MODERATE: checked against the actor's role, then committed.
    pub(super) fn group_moderate(
        &mut self,
        conn: ConnId,
        reference: Ref,
        group: Name,
        ask: GroupAsk<'_>,
    ) {
        let Some(actor) = self.user(conn) else { return };
        let operator = self.is_operator(&actor);
        let Some(g) = self.groups.groups.get(&group.key()) else {
            return self.refuse(conn, reference, ProtocolError::NoSuchGroup { group });
        };
        let owner_only = matches!(ask.action, GroupAction::Appoint | GroupAction::Dismiss);
        let allowed = operator
            || if owner_only {
                g.roles.is_owner(&actor.key())
            } else {
                g.roles.moderates(&actor.key()) && !g.roles.is_owner(&ask.user.key())
            };
        let name = g.name;
        if !allowed {
            let e = ProtocolError::NotGroupModerator {
                group: name,
                owner_only,
            };
            return self.refuse(conn, reference, e);
        }
        let member = g.members.contains_key(&ask.user.key());
        if !member && matches!(ask.action, GroupAction::Remove | GroupAction::Appoint) {
            return self.refuse(conn, reference, ProtocolError::NotAMember { group: name });
        }
        if !self.begin_request(conn, reference) {
            return;
        }
        self.syncs.sent += 1;
        let op = GroupOp::Moderate {
            group: name,
            user: ask.user,
            action: ask.action,
            seconds: ask.seconds,
            reason: ask.reason.to_owned(),
            by: actor,
        };
        self.outbox.effect(Effect::StoreGroup {
            conn,
            reference,
            op,
        });
    }

    /// A committed GROUP_MODERATE other than a removal takes effect.
    pub(super) fn group_moderated(
        &mut self,
        now: Instant,
        group: Name,
        user: Name,
        action: GroupAction,
        seconds: u32,
        reason: &str,
    ) {
        let until = (seconds > 0).then(|| now + Duration::from_secs(u64::from(seconds)));
        let Some(g) = self.groups.groups.get_mut(&group.key()) else {
            return;
        };
        match action {
            GroupAction::Appoint => {
                g.roles.moderators.insert(user.key());
            }
            GroupAction::Dismiss => {
                g.roles.moderators.remove(&user.key());
            }
            GroupAction::Unmute => {
                g.roles.mutes.remove(&user.key());
            }
            GroupAction::Mute => {
                self.mute_in_group(now, &group, &user, until, reason);
            }
            GroupAction::Remove => {}
        }
    }
}
