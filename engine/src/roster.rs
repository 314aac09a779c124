//! Who is online, as a versioned stream: a snapshot, then deltas.
//!
//! Every change (a user's first session arrives, their last one leaves)
//! bumps the version by one and is encoded once into the delta log, which
//! keeps the last `Config::roster_log` deltas. A session is sent deltas in
//! version order, never skipping one; a session further behind than the log
//! reaches (or whose queued deltas had to be dropped) gets a fresh snapshot
//! instead, so superseded deltas are coalesced into the snapshot.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::frame::{Frame, Presence};
use crate::hub::ConnId;
use crate::name::{Name, NameKey};

/// An online user and their sessions.
#[derive(Debug)]
pub(crate) struct Online {
    pub(crate) name: Name,
    pub(crate) sessions: Sessions,
}

/// A user's sessions. Nearly every user has exactly one, and this is kept
/// for every online user, so one is inline (16 bytes, no allocation, where a
/// `Vec` took 24 bytes and a 32-byte buffer); more than one are boxed.
#[derive(Debug)]
pub(crate) enum Sessions {
    One(ConnId),
    // Boxed: a thin pointer keeps the enum at 16 bytes (a bare `Vec` would
    // make it 32), and the extra allocation is only for multi-session users.
    #[allow(clippy::box_collection)]
    Many(Box<Vec<ConnId>>),
}

impl Sessions {
    pub(crate) fn as_slice(&self) -> &[ConnId] {
        match self {
            Sessions::One(c) => std::slice::from_ref(c),
            Sessions::Many(v) => v,
        }
    }

    fn push(&mut self, conn: ConnId) {
        match self {
            Sessions::One(c) => *self = Sessions::Many(Box::new(vec![*c, conn])),
            Sessions::Many(v) => v.push(conn),
        }
    }

    /// Removes `conn`; false if no session is left (the user goes offline).
    fn remove(&mut self, conn: ConnId) -> bool {
        match self {
            Sessions::One(c) => *c != conn,
            Sessions::Many(v) => {
                v.retain(|c| *c != conn);
                match v[..] {
                    [] => false,
                    [one] => {
                        *self = Sessions::One(one);
                        true
                    }
                    _ => true,
                }
            }
        }
    }
}

/// A snapshot encoded as ROSTER_SNAPSHOT frames, shared by every session
/// that logs in while the roster stays at one version.
pub(crate) type Chunks = Arc<[Arc<[u8]>]>;

#[derive(Debug)]
pub(crate) struct Roster {
    version: u64,
    pub(crate) online: HashMap<NameKey, Online>,
    log: VecDeque<(u64, Arc<[u8]>)>,
    log_cap: usize,
    /// Encoded snapshot chunks for `version`, built on first demand.
    snapshot: Option<(u64, Chunks)>,
    max_frame: usize,
}

impl Roster {
    pub(crate) fn new(log_cap: usize, max_frame: u32) -> Roster {
        Roster {
            version: 0,
            online: HashMap::new(),
            log: VecDeque::new(),
            log_cap: log_cap.max(1),
            snapshot: None,
            max_frame: max_frame as usize,
        }
    }

    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// Adds a session; returns the encoded delta if the user just came online.
    pub(crate) fn attach(&mut self, user: Name, conn: ConnId) -> Option<Arc<[u8]>> {
        match self.online.entry(user.key()) {
            Entry::Occupied(mut e) => {
                e.get_mut().sessions.push(conn);
                None
            }
            Entry::Vacant(e) => {
                e.insert(Online {
                    name: user,
                    sessions: Sessions::One(conn),
                });
                Some(self.change(Presence::Online, user))
            }
        }
    }

    /// Removes a session; returns the encoded delta if that was the user's last.
    pub(crate) fn detach(&mut self, user: Name, conn: ConnId) -> Option<Arc<[u8]>> {
        let key = user.key();
        let online = self.online.get_mut(&key)?;
        if online.sessions.remove(conn) {
            return None;
        }
        let name = online.name;
        self.online.remove(&key);
        Some(self.change(Presence::Offline, name))
    }

    fn change(&mut self, presence: Presence, user: Name) -> Arc<[u8]> {
        self.version += 1;
        let bytes: Arc<[u8]> = Frame::RosterDelta {
            version: self.version,
            presence,
            user,
        }
        .to_bytes()
        .into();
        if self.log.len() == self.log_cap {
            self.log.pop_front();
        }
        self.log.push_back((self.version, bytes.clone()));
        bytes
    }

    /// The encoded delta that brings a session from `version - 1` to `version`.
    pub(crate) fn delta(&self, version: u64) -> Option<Arc<[u8]>> {
        let first = self.log.front()?.0;
        let i = version.checked_sub(first)? as usize;
        self.log.get(i).map(|(_, b)| b.clone())
    }

    /// The current roster as encoded ROSTER_SNAPSHOT chunks, each within the
    /// frame limit.
    pub(crate) fn snapshot(&mut self) -> Chunks {
        if let Some((v, s)) = &self.snapshot {
            if *v == self.version {
                return s.clone();
            }
        }
        // Header 4 + type 1 + version 8 + last 1 + count 2; a name ≤ 33 bytes.
        let per_chunk =
            ((self.max_frame.saturating_sub(16)) / (1 + Name::MAX_LEN)).clamp(1, u16::MAX as usize);
        let mut names: Vec<Name> = self.online.values().map(|o| o.name).collect();
        names.sort();
        let mut chunks: Vec<Arc<[u8]>> = names
            .chunks(per_chunk)
            .map(|c| {
                Frame::RosterSnapshot {
                    version: self.version,
                    last: false,
                    users: c.to_vec(),
                }
                .to_bytes()
                .into()
            })
            .collect();
        let last = Frame::RosterSnapshot {
            version: self.version,
            last: true,
            users: Vec::new(),
        };
        match chunks.last_mut() {
            Some(c) => {
                // Re-encode the final chunk with the flag set.
                let users = names
                    .chunks(per_chunk)
                    .last()
                    .expect("chunks not empty")
                    .to_vec();
                *c = Frame::RosterSnapshot {
                    version: self.version,
                    last: true,
                    users,
                }
                .to_bytes()
                .into();
            }
            None => chunks.push(last.to_bytes().into()),
        }
        let s: Chunks = chunks.into();
        self.snapshot = Some((self.version, s.clone()));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_stays_online_until_their_last_session_detaches() {
        let mut r = Roster::new(16, 65_536);
        let ann = Name::new("ann").expect("a valid name");
        let (a, b, c) = (
            ConnId::for_test(0, 0),
            ConnId::for_test(1, 0),
            ConnId::for_test(2, 0),
        );
        assert!(r.attach(ann, a).is_some(), "the first session: online");
        assert!(r.attach(ann, b).is_none());
        assert!(r.attach(ann, c).is_none());
        assert_eq!(r.online[&ann.key()].sessions.as_slice(), [a, b, c]);
        assert!(r.detach(ann, b).is_none());
        assert!(r.detach(ann, a).is_none());
        assert_eq!(r.online[&ann.key()].sessions.as_slice(), [c]);
        assert!(r.detach(ann, a).is_none(), "not a session of ann's");
        assert!(r.detach(ann, c).is_some(), "the last session: offline");
        assert!(r.online.is_empty());
    }
}
