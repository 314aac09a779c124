//! Who is online, as a versioned stream: a snapshot, then deltas.
//!
//! Every change (a user's first session arrives, their last one leaves)
//! bumps the version by one and is kept in the delta log, which keeps the
//! last `Config::roster_log` deltas. The log holds them as plain values
//! (48 bytes each, inline): the sessions that are up to date share the one
//! event broadcast at the change, and a session catching up later is
//! queued an event made from the log, so a log of thousands of changes
//! costs no more memory than the changes themselves. A session is sent deltas in
//! version order, never skipping one; a session further behind than the log
//! reaches (or whose queued deltas had to be dropped) gets a fresh snapshot
//! instead, so superseded deltas are coalesced into the snapshot.

use std::collections::VecDeque;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use hashbrown::HashTable;

use crate::event::Event;
use crate::frame::Presence;
use crate::id::{ConnId, RosterVersion};
use crate::name::{Name, NameKey};
use crate::protocol::MAX_PROTOCOLS;
use crate::protocol::{Codec, Protocol};
use crate::shared::Shared;

/// An online user: their sessions here, and on how many other nodes they
/// have sessions (see [`Roster::remote`]). Online while either is not
/// zero; messages go to the sessions here only.
#[derive(Debug)]
pub(crate) struct Online {
    pub(crate) name: Name,
    pub(crate) sessions: Conns,
    nodes_elsewhere: u32,
}

/// A user's sessions on this node. Nearly every user has one, held inline:
/// a `Vec` of one kept a 32-byte allocation (and its malloc header) per
/// online user, ~48 bytes of the server's memory per idle connection
/// (docs/PERFORMANCE.md, "Fourth step"). Read as a slice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Conns {
    #[default]
    None,
    One(ConnId),
    /// Two or more.
    Many(Vec<ConnId>),
}

impl Conns {
    fn push(&mut self, conn: ConnId) {
        *self = match std::mem::take(self) {
            Conns::None => Conns::One(conn),
            Conns::One(first) => Conns::Many(vec![first, conn]),
            Conns::Many(mut v) => {
                v.push(conn);
                Conns::Many(v)
            }
        };
    }

    fn remove(&mut self, conn: ConnId) {
        match self {
            Conns::None => {}
            Conns::One(c) => {
                if *c == conn {
                    *self = Conns::None;
                }
            }
            Conns::Many(v) => {
                v.retain(|c| *c != conn);
                match v[..] {
                    [] => *self = Conns::None,
                    [one] => *self = Conns::One(one),
                    _ => {}
                }
            }
        }
    }
}

impl std::ops::Deref for Conns {
    type Target = [ConnId];

    fn deref(&self) -> &[ConnId] {
        match self {
            Conns::None => &[],
            Conns::One(c) => std::slice::from_ref(c),
            Conns::Many(v) => v,
        }
    }
}

impl<'a> IntoIterator for &'a Conns {
    type Item = &'a ConnId;
    type IntoIter = std::slice::Iter<'a, ConnId>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl Online {
    fn is_online(&self) -> bool {
        !self.sessions.is_empty() || self.nodes_elsewhere > 0
    }
}

/// The online users, densely in a vector, with a table from key to position.
///
/// Why not one `HashMap<NameKey, Online>`: its table is sized to a power
/// of two and filled at random, so every page of it is touched and its
/// slack is resident; with ~100-byte entries that was ~180 bytes per
/// online user at 19,000 users. Here the entries sit in a vector (whose
/// unused tail is never touched), and the table holds only their positions,
/// 4 bytes each: a `HashMap<NameKey, u32>` kept a copy of the 33-byte key
/// beside each, 41 bytes a bucket, ~70 bytes per online user at 19,000 users
/// (docs/PERFORMANCE.md, "Fourth step"). A position's key is its entry's
/// name's. The room's fan-out also walks the vector instead of the table.
#[derive(Debug, Default)]
pub(crate) struct OnlineUsers {
    at: HashTable<u32>,
    hasher: RandomState,
    users: Vec<Online>,
}

impl OnlineUsers {
    fn position(&self, key: &NameKey) -> Option<usize> {
        let users = &self.users;
        let hash = self.hasher.hash_one(key);
        let found = self
            .at
            .find(hash, |&i| users[i as usize].name.key() == *key);
        found.map(|&i| i as usize)
    }

    pub(crate) fn get(&self, key: &NameKey) -> Option<&Online> {
        self.users.get(self.position(key)?)
    }

    fn get_mut(&mut self, key: &NameKey) -> Option<&mut Online> {
        let i = self.position(key)?;
        self.users.get_mut(i)
    }

    pub(crate) fn contains_key(&self, key: &NameKey) -> bool {
        self.position(key).is_some()
    }

    pub(crate) fn values(&self) -> std::slice::Iter<'_, Online> {
        self.users.iter()
    }

    /// The entry of `user`, created (with no sessions) if absent.
    fn entry(&mut self, user: Name) -> &mut Online {
        let key = user.key();
        let i = match self.position(&key) {
            Some(i) => i,
            None => {
                let next = u32::try_from(self.users.len()).expect("fewer than 2^32 online users");
                let (users, hasher) = (&self.users, &self.hasher);
                let rehash = |&i: &u32| hasher.hash_one(users[i as usize].name.key());
                self.at.insert_unique(hasher.hash_one(key), next, rehash);
                self.users.push(Online {
                    name: user,
                    sessions: Conns::None,
                    nodes_elsewhere: 0,
                });
                next as usize
            }
        };
        &mut self.users[i]
    }

    fn remove(&mut self, key: &NameKey) {
        let users = &self.users;
        let hash = self.hasher.hash_one(key);
        let eq = |&i: &u32| users[i as usize].name.key() == *key;
        let Ok(entry) = self.at.find_entry(hash, eq) else {
            return;
        };
        let (i, _) = entry.remove();
        self.users.swap_remove(i as usize);
        // The last entry moved into `i`: its position changes in the table.
        let Some(moved) = self.users.get(i as usize) else {
            return;
        };
        let last = self.users.len() as u32;
        let hash = self.hasher.hash_one(moved.name.key());
        if let Some(at) = self.at.find_mut(hash, |&j| j == last) {
            *at = i;
        }
    }
}

/// One change of the roster, as the log keeps it.
#[derive(Clone, Copy, Debug)]
struct Delta {
    version: RosterVersion,
    presence: Presence,
    user: Name,
}

impl Delta {
    fn event(self) -> Arc<Shared> {
        Shared::new(Event::RosterDelta {
            version: self.version,
            presence: self.presence,
            user: self.user,
            reason: None,
        })
    }
}

/// A snapshot as chunks that each fit one frame of a protocol, shared by
/// every session of that protocol that logs in while the roster stays at
/// one version.
pub(crate) type Chunks = Arc<[Arc<Shared>]>;

#[derive(Debug)]
pub(crate) struct Roster {
    version: RosterVersion,
    pub(crate) online: OnlineUsers,
    log: VecDeque<Delta>,
    log_cap: usize,
    /// Snapshot chunks for `version`, per protocol, built on first demand.
    snapshots: [Option<(RosterVersion, Chunks)>; MAX_PROTOCOLS],
    max_frame: usize,
}

impl Roster {
    pub(crate) fn new(log_cap: usize, max_frame: u32) -> Roster {
        Roster {
            version: RosterVersion(0),
            online: OnlineUsers::default(),
            log: VecDeque::new(),
            log_cap: log_cap.max(1),
            snapshots: Default::default(),
            max_frame: max_frame as usize,
        }
    }

    pub(crate) fn version(&self) -> RosterVersion {
        self.version
    }

    /// Adds a session; returns the delta if the user just came online.
    pub(crate) fn attach(&mut self, user: Name, conn: ConnId) -> Option<Arc<Shared>> {
        let entry = self.online.entry(user);
        let was_online = entry.is_online();
        entry.sessions.push(conn);
        (!was_online).then(|| self.change(Presence::Online, user))
    }

    /// Removes a session; returns the delta if that was the user's last
    /// anywhere.
    pub(crate) fn detach(&mut self, user: Name, conn: ConnId) -> Option<Arc<Shared>> {
        let key = user.key();
        let online = self.online.get_mut(&key)?;
        online.sessions.remove(conn);
        self.settle(&key)
    }

    /// Another node says `user`'s first session there came online, or its
    /// last there left; returns the delta if that changed whether they
    /// are online at all. An Offline for a node that never said Online is
    /// ignored.
    pub(crate) fn remote(&mut self, user: Name, presence: Presence) -> Option<Arc<Shared>> {
        match presence {
            Presence::Online => {
                let entry = self.online.entry(user);
                let was_online = entry.is_online();
                entry.nodes_elsewhere = entry.nodes_elsewhere.saturating_add(1);
                (!was_online).then(|| self.change(Presence::Online, user))
            }
            Presence::Offline => {
                let key = user.key();
                let online = self.online.get_mut(&key)?;
                online.nodes_elsewhere = online.nodes_elsewhere.checked_sub(1)?;
                self.settle(&key)
            }
        }
    }

    /// Whether `user` has a session on this node.
    pub(crate) fn is_here(&self, user: &Name) -> bool {
        self.online
            .get(&user.key())
            .is_some_and(|o| !o.sessions.is_empty())
    }

    /// Removes `key`'s entry once they are online nowhere; its delta.
    fn settle(&mut self, key: &NameKey) -> Option<Arc<Shared>> {
        let online = self.online.get(key)?;
        if online.is_online() {
            return None;
        }
        let name = online.name;
        self.online.remove(key);
        Some(self.change(Presence::Offline, name))
    }

    fn change(&mut self, presence: Presence, user: Name) -> Arc<Shared> {
        self.version = self.version.next();
        let delta = Delta {
            version: self.version,
            presence,
            user,
        };
        if self.log.len() == self.log_cap {
            self.log.pop_front();
        }
        self.log.push_back(delta);
        delta.event()
    }

    /// The delta that brings a session from `version - 1` to `version`.
    pub(crate) fn delta(&self, version: RosterVersion) -> Option<Arc<Shared>> {
        let first = self.log.front()?.version;
        let i = version.get().checked_sub(first.get())? as usize;
        self.log.get(i).map(|d| d.event())
    }

    /// The current roster as ROSTER_SNAPSHOT chunks for `protocol`, each
    /// within the frame limit as `codec` encodes it.
    pub(crate) fn snapshot(&mut self, protocol: Protocol, codec: &dyn Codec) -> Chunks {
        if let Some((v, s)) = &self.snapshots[protocol.index()] {
            if *v == self.version {
                return s.clone();
            }
        }
        let chunk = |users: &[Name], last| {
            Shared::new(Event::RosterSnapshot {
                version: self.version,
                last,
                users: users.to_vec(),
            })
        };
        // Sized for the longest names, so every chunk fits whoever is in it.
        let empty = codec.encoded_len(chunk(&[], false).event());
        let per_chunk = (self.max_frame.saturating_sub(empty)
            / codec.roster_entry_len(&Name::longest()))
        .clamp(1, u16::MAX as usize);
        let mut names: Vec<Name> = self.online.values().map(|o| o.name).collect();
        names.sort();
        let n = names.len().div_ceil(per_chunk).max(1);
        let chunks: Chunks = (0..n)
            .map(|i| {
                let users = &names
                    [(i * per_chunk).min(names.len())..((i + 1) * per_chunk).min(names.len())];
                chunk(users, i + 1 == n)
            })
            .collect();
        self.snapshots[protocol.index()] = Some((self.version, chunks.clone()));
        chunks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(index: u32) -> ConnId {
        ConnId::for_test(index)
    }

    #[test]
    fn a_user_s_sessions_are_inline_while_there_is_one_and_in_order_when_more() {
        let mut c = Conns::None;
        c.push(conn(1));
        assert_eq!(c, Conns::One(conn(1)));
        c.push(conn(2));
        c.push(conn(3));
        assert_eq!(&c[..], &[conn(1), conn(2), conn(3)]);
        c.remove(conn(2));
        c.remove(conn(7));
        assert_eq!(&c[..], &[conn(1), conn(3)]);
        c.remove(conn(1));
        assert_eq!(c, Conns::One(conn(3)), "back inline at one");
        c.remove(conn(3));
        assert!(c.is_empty());
        assert_eq!(c, Conns::None);
    }

    #[test]
    fn users_leaving_from_the_middle_keep_every_other_user_findable() {
        let mut r = Roster::new(16, 65536);
        let names: Vec<Name> = ["ann", "Bob", "cy", "dee", "eve"]
            .iter()
            .map(|n| Name::new(n).expect("valid"))
            .collect();
        for (i, &n) in names.iter().enumerate() {
            assert!(r.attach(n, conn(i as u32)).is_some(), "{n} comes online");
        }
        assert!(r.attach(names[1], conn(9)).is_none(), "a second session");
        // ann (first) and dee (middle) leave; eve and cy move into their places.
        assert!(r.detach(names[0], conn(0)).is_some());
        assert!(r.detach(names[3], conn(3)).is_some());
        assert!(r.detach(names[1], conn(1)).is_none(), "Bob still has one");
        for (n, sessions) in [
            (names[1], vec![conn(9)]),
            (names[2], vec![conn(2)]),
            (names[4], vec![conn(4)]),
        ] {
            let online = r.online.get(&n.key()).expect("still online");
            assert_eq!((online.name, &online.sessions[..]), (n, &sessions[..]));
        }
        assert!(!r.online.contains_key(&names[0].key()));
        assert!(!r.online.contains_key(&names[3].key()));
        assert_eq!(r.online.values().count(), 3);
        assert_eq!(
            r.version(),
            RosterVersion(7),
            "five arrivals, two departures"
        );
    }
}
