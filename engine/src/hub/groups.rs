//! Named groups: who is in which, the limits on them, and the requests and
//! commits that change them.
//!
//! A change is checked against the limits here, committed by the shell
//! ([`Effect::StoreGroup`]), and takes effect when the commit comes back
//! through [`Hub::handle_group_committed`], on this node or any other: the
//! requester is answered by the storage result alone.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use crate::config::Config;
use crate::effect::{Effect, GroupOp};
use crate::error::ProtocolError;
use crate::event::Event;
use crate::id::{ConnId, Ref};
use crate::name::{Name, NameKey};
use crate::request::GroupRequest;
use crate::send_queue::Class;
use crate::shared::Shared;
use crate::wire::frame::{GroupChange, GroupInfo};

use super::Hub;

#[derive(Debug)]
pub(super) struct Group {
    pub(super) name: Name,
    pub(super) members: BTreeMap<NameKey, Name>,
    /// Its creator (none for a group older than roles), and the members
    /// the owner appointed (see `group_roles.rs`).
    pub(super) roles: super::group_roles::Roles,
}

/// Every group and its members.
#[derive(Debug, Default)]
pub(super) struct Groups {
    pub(super) groups: HashMap<NameKey, Group>,
    /// Groups per user, for the groups-per-user limit.
    memberships: HashMap<NameKey, u16>,
    /// Groups whose creation is being committed.
    pending_creates: HashSet<NameKey>,
}

impl Groups {
    pub(super) fn new(groups: impl IntoIterator<Item = (Name, Vec<Name>)>) -> Groups {
        let mut g = Groups::default();
        for (name, members) in groups {
            g.groups.entry(name.key()).or_insert(Group {
                name,
                members: BTreeMap::new(),
                roles: Default::default(),
            });
            for m in members {
                g.apply(name, m, GroupChange::Joined);
            }
        }
        g
    }

    /// Members of `group`, sorted, if it exists.
    pub(super) fn members(&self, group: &Name) -> Option<Vec<Name>> {
        self.groups
            .get(&group.key())
            .map(|g| g.members.values().copied().collect())
    }

    /// Member keys of `group` (none if it does not exist).
    pub(super) fn member_keys(&self, group: &Name) -> impl Iterator<Item = &NameKey> {
        self.groups
            .get(&group.key())
            .into_iter()
            .flat_map(|g| g.members.keys())
    }

    /// The registered name of group `g`, if it exists and `user` is a
    /// member; otherwise why not.
    pub(super) fn of_member(&self, user: &Name, g: &Name) -> Result<Name, ProtocolError> {
        match self.groups.get(&g.key()) {
            None => Err(ProtocolError::NoSuchGroup { group: *g }),
            Some(group) if !group.members.contains_key(&user.key()) => {
                Err(ProtocolError::NotAMember { group: *g })
            }
            Some(group) => Ok(group.name),
        }
    }

    /// The groups `user` is in, sorted.
    pub(super) fn of(&self, user: &Name) -> Vec<Name> {
        let key = user.key();
        let mut v: Vec<Name> = self
            .groups
            .values()
            .filter(|g| g.members.contains_key(&key))
            .map(|g| g.name)
            .collect();
        v.sort();
        v
    }

    /// `user` left `group` (or was taken out): their role and mute go.
    pub(super) fn left(&mut self, group: &Name, user: &Name) {
        if let Some(g) = self.groups.get_mut(&group.key()) {
            g.roles.forget(&user.key());
        }
    }

    /// The groups `user` owns or moderates.
    pub(super) fn moderated_by(&self, user: &Name) -> Vec<Name> {
        let key = user.key();
        let mut v: Vec<Name> = self
            .groups
            .values()
            .filter(|g| g.roles.moderates(&key))
            .map(|g| g.name)
            .collect();
        v.sort();
        v
    }

    /// Every group and its member count, sorted by name.
    pub(super) fn all(&self) -> Vec<(Name, usize)> {
        let mut v: Vec<(Name, usize)> = self
            .groups
            .values()
            .map(|g| (g.name, g.members.len()))
            .collect();
        v.sort_by_key(|(n, _)| n.key());
        v
    }

    /// Every group, as `user` sees the list.
    fn list(&self, user: &Name) -> Vec<GroupInfo> {
        let key = user.key();
        let mut groups: Vec<GroupInfo> = self
            .groups
            .values()
            .map(|g| GroupInfo {
                name: g.name,
                members: g.members.len() as u32,
                is_member: g.members.contains_key(&key),
            })
            .collect();
        groups.sort_by_key(|g| g.name.key());
        groups.truncate(u16::MAX as usize);
        groups
    }

    /// The change `user` asks for, checked against the limits.
    fn check(
        &self,
        user: Name,
        req: GroupRequest,
        group: Name,
        config: &Config,
    ) -> Result<GroupOp, ProtocolError> {
        let key = group.key();
        let existing = self.groups.get(&key);
        let is_member = existing.is_some_and(|g| g.members.contains_key(&user.key()));
        let mine = self.memberships.get(&user.key()).copied().unwrap_or(0);
        let creating = existing.is_some() || self.pending_creates.contains(&key);
        match req {
            GroupRequest::Create if creating => return Err(ProtocolError::GroupExists { group }),
            GroupRequest::Create
                if self.groups.len() + self.pending_creates.len() >= config.max_groups as usize =>
            {
                return Err(ProtocolError::ServerGroupsFull {
                    max: config.max_groups,
                })
            }
            GroupRequest::Join | GroupRequest::Leave if existing.is_none() => {
                return Err(ProtocolError::NoSuchGroup { group })
            }
            GroupRequest::Join if is_member => return Err(ProtocolError::AlreadyMember { group }),
            GroupRequest::Join
                if existing
                    .is_some_and(|g| g.members.len() >= config.members_per_group as usize) =>
            {
                return Err(ProtocolError::GroupFull { group })
            }
            GroupRequest::Leave if !is_member => return Err(ProtocolError::NotAMember { group }),
            GroupRequest::Create | GroupRequest::Join if mine >= config.groups_per_user => {
                return Err(ProtocolError::TooManyGroups {
                    max: config.groups_per_user,
                })
            }
            _ => {}
        }
        let group = existing.map_or(group, |g| g.name);
        Ok(match req {
            GroupRequest::Create => GroupOp::Create { group, user },
            GroupRequest::Join => GroupOp::Join { group, user },
            GroupRequest::Leave => GroupOp::Leave { group, user },
        })
    }

    /// Applies a committed change; the group's registered name, and
    /// whether membership changed.
    fn apply(&mut self, group: Name, user: Name, change: GroupChange) -> Option<(Name, bool)> {
        let g = self.groups.get_mut(&group.key())?;
        let changed = match change {
            GroupChange::Joined => g.members.insert(user.key(), user).is_none(),
            GroupChange::Left => g.members.remove(&user.key()).is_some(),
        };
        if changed {
            let n = self.memberships.entry(user.key()).or_default();
            match change {
                GroupChange::Joined => *n += 1,
                GroupChange::Left => *n = n.saturating_sub(1),
            }
        }
        Some((g.name, changed))
    }
}

impl Hub {
    pub(super) fn group_request(
        &mut self,
        conn: ConnId,
        reference: Ref,
        req: GroupRequest,
        group: Name,
    ) {
        let Some(user) = self.user(conn) else { return };
        let op = match self.groups.check(user, req, group, &self.config) {
            Ok(op) => op,
            Err(e) => return self.refuse(conn, reference, e),
        };
        if !self.begin_request(conn, reference) {
            return;
        }
        if let GroupOp::Create { group, .. } = &op {
            self.groups.pending_creates.insert(group.key());
        }
        self.syncs.sent += 1;
        self.outbox.effect(Effect::StoreGroup {
            conn,
            reference,
            op,
        });
    }

    /// The storage result of a group change: answers the requester only.
    pub(super) fn group_stored(
        &mut self,
        conn: ConnId,
        reference: Ref,
        op: GroupOp,
        result: Result<(), ProtocolError>,
    ) {
        self.end_request(conn);
        self.syncs.answered += 1;
        if result.is_err() {
            self.release_syncs();
        }
        if let GroupOp::Create { group, .. } = &op {
            self.groups.pending_creates.remove(&group.key());
        }
        match result {
            Ok(()) => self.push(conn, Event::Ok { reference }, Class::Control),
            Err(e) => self.refuse(conn, reference, e),
        }
    }

    /// A group change committed (by this node's storage or another's):
    /// it takes effect, and the group's online members and the user's
    /// sessions are told, except `origin`, the session that asked for it
    /// (its answer was the OK).
    pub fn handle_group_committed(&mut self, now: Instant, op: GroupOp, origin: Option<ConnId>) {
        let created = matches!(op, GroupOp::Create { .. });
        let (group, user, change) = match op {
            GroupOp::Create { group, user } => {
                self.groups.groups.entry(group.key()).or_insert(Group {
                    name: group,
                    members: BTreeMap::new(),
                    roles: super::group_roles::Roles::owned_by(user),
                });
                (group, user, GroupChange::Joined)
            }
            GroupOp::Join { group, user } => (group, user, GroupChange::Joined),
            GroupOp::Leave { group, user } => (group, user, GroupChange::Left),
            GroupOp::Moderate {
                group,
                user,
                action,
                seconds,
                reason,
                ..
            } => {
                if action != crate::frame::GroupAction::Remove {
                    self.group_moderated(now, group, user, action, seconds, &reason);
                    self.release_syncs();
                    return;
                }
                (group, user, GroupChange::Left)
            }
        };
        if change == GroupChange::Left {
            self.groups.left(&group, &user);
        }
        let Some((name, _)) = self.groups.apply(group, user, change) else {
            self.release_syncs();
            return;
        };
        if created {
            self.irc_group_created(name);
        }
        let reason = match change {
            GroupChange::Left => self.irc_part_reason(&name, &user),
            GroupChange::Joined => None,
        };
        let event = Shared::new(Event::GroupEvent {
            change,
            group: name,
            user,
            reason,
        });
        let mut recipients: Vec<ConnId> = self
            .groups
            .member_keys(&name)
            .chain(std::iter::once(&user.key()))
            .filter_map(|k| self.roster.online.get(k))
            .flat_map(|o| o.sessions.iter().copied())
            .filter(|c| Some(*c) != origin)
            .collect();
        recipients.sort();
        recipients.dedup();
        for r in recipients {
            self.push_shared(r, &event, Class::Roster, None);
        }
        self.finish();
        self.release_syncs();
    }

    pub(super) fn group_list(&mut self, conn: ConnId, reference: Ref) {
        let Some(user) = self.user(conn) else { return };
        let groups = self.groups.list(&user);
        self.push(conn, Event::GroupList { reference, groups }, Class::Bulk);
    }
}
