//! Who is online, as a versioned stream: a snapshot, then deltas.
//!
//! Every change (a user's first session arrives, their last one leaves)
//! bumps the version by one and is encoded once into the delta log, which
//! keeps the last `Config::roster_log` deltas. A session is sent deltas in
//! version order, never skipping one; a session further behind than the log
//! reaches (or whose queued deltas had to be dropped) gets a fresh snapshot
//! instead, so superseded deltas are coalesced into the snapshot.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::frame::{Frame, Presence};
use crate::hub::ConnId;
use crate::name::{Name, NameKey};

/// An online user and their sessions.
#[derive(Debug)]
pub(crate) struct Online {
    pub(crate) name: Name,
    pub(crate) sessions: Vec<ConnId>,
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
        let entry = self.online.entry(user.key()).or_insert_with(|| Online {
            name: user,
            sessions: Vec::new(),
        });
        entry.sessions.push(conn);
        (entry.sessions.len() == 1).then(|| self.change(Presence::Online, user))
    }

    /// Removes a session; returns the encoded delta if that was the user's last.
    pub(crate) fn detach(&mut self, user: Name, conn: ConnId) -> Option<Arc<[u8]>> {
        let key = user.key();
        let online = self.online.get_mut(&key)?;
        online.sessions.retain(|c| *c != conn);
        if !online.sessions.is_empty() {
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
