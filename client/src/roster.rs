//! The client's view of who is online: a snapshot, then deltas by version.
//!
//! The server sends the whole roster as one or more ROSTER_SNAPSHOT chunks
//! sharing a version (the one marked `last` completes it), then one
//! ROSTER_DELTA per change, each carrying the version after it. This model
//! replaces its contents when a snapshot completes and applies a delta only
//! if it is newer than what it holds, so a stale delta (one the snapshot
//! already covers) changes nothing.

use std::collections::BTreeMap;

use confab_engine::frame::Presence;
use confab_engine::name::{Name, NameKey};
use confab_engine::RosterVersion;

/// Who is online, as of [`Roster::version`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roster {
    version: RosterVersion,
    synced: bool,
    users: BTreeMap<NameKey, Name>,
    /// Chunks of a snapshot still being received: its version and users.
    partial: Option<(RosterVersion, Vec<Name>)>,
}

impl Roster {
    /// The version of the newest snapshot or delta applied (0 before any).
    pub fn version(&self) -> RosterVersion {
        self.version
    }

    /// Whether a complete snapshot has been applied.
    pub fn is_synced(&self) -> bool {
        self.synced
    }

    /// Whether `user` (in any case) is online.
    pub fn contains(&self, user: &Name) -> bool {
        self.users.contains_key(&user.key())
    }

    /// The online users, ordered by their case-folded name.
    pub fn users(&self) -> impl Iterator<Item = &Name> + '_ {
        self.users.values()
    }

    /// How many users are online.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether nobody is online (or nothing has been received yet).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Takes one snapshot chunk; returns the complete list of users when
    /// `last` completes the snapshot.
    pub(crate) fn apply_chunk(
        &mut self,
        version: RosterVersion,
        last: bool,
        users: Vec<Name>,
    ) -> Option<Vec<Name>> {
        let acc = match &mut self.partial {
            Some((v, acc)) if *v == version => acc,
            // A chunk of another version starts a new snapshot: the server
            // only switches versions when it restarts the snapshot.
            _ => &mut self.partial.insert((version, Vec::new())).1,
        };
        acc.extend(users);
        if !last {
            return None;
        }
        let (version, users) = self.partial.take()?;
        self.users = users.iter().map(|u| (u.key(), *u)).collect();
        self.version = version;
        self.synced = true;
        Some(self.users.values().copied().collect())
    }

    /// Applies a delta if it is newer than the roster; says whether it was.
    pub(crate) fn apply_delta(
        &mut self,
        version: RosterVersion,
        presence: Presence,
        user: Name,
    ) -> bool {
        if version <= self.version {
            return false;
        }
        self.version = version;
        match presence {
            Presence::Online => {
                self.users.insert(user.key(), user);
            }
            Presence::Offline => {
                self.users.remove(&user.key());
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::new(s).unwrap()
    }

    #[test]
    fn a_snapshot_in_chunks_replaces_the_roster_when_its_last_chunk_arrives() {
        let mut r = Roster::default();
        assert_eq!(r.apply_chunk(RosterVersion(5), false, vec![n("bob")]), None);
        assert!(!r.is_synced());
        assert!(r.is_empty());
        let users = r
            .apply_chunk(RosterVersion(5), true, vec![n("Alice")])
            .unwrap();
        assert_eq!(users, vec![n("Alice"), n("bob")]);
        assert_eq!(r.version(), RosterVersion(5));
        assert!(r.is_synced());
        assert!(r.contains(&n("ALICE")));
    }

    #[test]
    fn deltas_apply_in_version_order_and_stale_ones_are_ignored() {
        let mut r = Roster::default();
        r.apply_chunk(RosterVersion(3), true, vec![n("alice")]);
        assert!(!r.apply_delta(RosterVersion(3), Presence::Online, n("carol")));
        assert!(!r.contains(&n("carol")));
        assert!(r.apply_delta(RosterVersion(4), Presence::Online, n("bob")));
        assert!(r.apply_delta(RosterVersion(5), Presence::Offline, n("ALICE")));
        assert_eq!(r.users().copied().collect::<Vec<_>>(), vec![n("bob")]);
        assert_eq!(r.version(), RosterVersion(5));
    }

    #[test]
    fn a_chunk_of_a_new_version_restarts_the_snapshot() {
        let mut r = Roster::default();
        r.apply_chunk(RosterVersion(2), false, vec![n("gone")]);
        let users = r
            .apply_chunk(RosterVersion(7), true, vec![n("here")])
            .unwrap();
        assert_eq!(users, vec![n("here")]);
        assert_eq!(r.version(), RosterVersion(7));
    }
}
