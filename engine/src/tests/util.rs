//! A deterministic world for driving the hub: a fake clock, an in-memory
//! store that answers effects at once (or holds them, to test ordering),
//! and peers that decode everything the hub writes to them.

use crate::shared::Outgoing;
use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use crate::effect::*;
use crate::frame::*;
use crate::id::{MessageId, Ref, RosterVersion};
use crate::name::Name;
use crate::store::Store;
use crate::testing::MemoryStore;
use crate::{decode, Config, ConnId, Hub, Output, Protocol, Source};

/// An owned copy of a received frame, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Got {
    ServerHello(ServerInfo),
    Ok(Ref),
    LoginOk(Ref, String),
    Snapshot {
        version: RosterVersion,
        last: bool,
        users: Vec<String>,
    },
    Delta {
        version: RosterVersion,
        online: bool,
        user: String,
    },
    Ack {
        reference: Ref,
        id: MessageId,
    },
    Message {
        id: MessageId,
        sender: String,
        target: Target,
        body: String,
    },
    GroupEvent {
        joined: bool,
        group: String,
        user: String,
    },
    GroupList(Vec<(String, u32, bool)>),
    History {
        reference: Ref,
        more: bool,
        ids: Vec<MessageId>,
    },
    CaughtUp(MessageId),
    Missed {
        target: Target,
        first: MessageId,
        last: MessageId,
        count: u32,
    },
    Error {
        code: ErrorCode,
        reference: Ref,
        retry_after_ms: u32,
    },
    Ping(u64),
    Pong(u64),
    Shutdown,
    LoginOk2 {
        reference: Ref,
        device: Option<String>,
        token: Option<crate::device::Token>,
        bookmark: MessageId,
    },
    ReadMarker {
        target: Target,
        id: MessageId,
    },
    /// (name, current) of each device listed.
    Devices(Vec<(String, bool)>),
    Deleted {
        id: MessageId,
        by: String,
    },
    Notice(String),
    Other(u8),
}

impl Got {
    /// The owned copy of a frame: session and roster frames here, the
    /// others in [`Got::from_traffic`].
    fn from(f: &Frame<'_>) -> Got {
        match f {
            Frame::ServerHello { info, .. } => Got::ServerHello(*info),
            Frame::Ok { reference } => Got::Ok(*reference),
            Frame::LoginOk { reference, user } => Got::LoginOk(*reference, user.to_string()),
            Frame::RosterSnapshot {
                version,
                last,
                users,
            } => Got::Snapshot {
                version: *version,
                last: *last,
                users: users.iter().map(|u| u.to_string()).collect(),
            },
            Frame::RosterDelta {
                version,
                presence,
                user,
            } => Got::Delta {
                version: *version,
                online: *presence == Presence::Online,
                user: user.to_string(),
            },
            other => Got::from_traffic(other),
        }
    }

    /// Messages, answers, errors and the rest.
    fn from_traffic(f: &Frame<'_>) -> Got {
        match f {
            Frame::Ack { reference, id, .. } => Got::Ack {
                reference: *reference,
                id: *id,
            },
            Frame::Message {
                id,
                sender,
                target,
                body,
                ..
            } => Got::Message {
                id: *id,
                sender: sender.to_string(),
                target: *target,
                body: body.as_str().to_owned(),
            },
            Frame::GroupEvent {
                change,
                group,
                user,
            } => Got::GroupEvent {
                joined: *change == GroupChange::Joined,
                group: group.to_string(),
                user: user.to_string(),
            },
            Frame::GroupList { groups, .. } => Got::GroupList(
                groups
                    .iter()
                    .map(|g| (g.name.to_string(), g.members, g.is_member))
                    .collect(),
            ),
            Frame::HistoryPage {
                reference,
                more,
                entries,
                ..
            } => Got::History {
                reference: *reference,
                more: *more,
                ids: entries.iter().map(|e| e.id).collect(),
            },
            Frame::CaughtUp { last_id } => Got::CaughtUp(*last_id),
            Frame::Missed {
                target,
                first,
                last,
                count,
            } => Got::Missed {
                target: *target,
                first: *first,
                last: *last,
                count: *count,
            },
            Frame::Error {
                code,
                reference,
                retry_after_ms,
                ..
            } => Got::Error {
                code: *code,
                reference: *reference,
                retry_after_ms: *retry_after_ms,
            },
            Frame::Ping { token } => Got::Ping(*token),
            Frame::Pong { token } => Got::Pong(*token),
            Frame::Shutdown { .. } => Got::Shutdown,
            other => Got::from_v2(other),
        }
    }

    fn from_v2(f: &Frame<'_>) -> Got {
        match f {
            Frame::LoginOk2 {
                reference,
                device,
                token,
                bookmark,
                ..
            } => Got::LoginOk2 {
                reference: *reference,
                device: device.map(|d| d.to_string()),
                token: *token,
                bookmark: *bookmark,
            },
            Frame::ReadMarker { target, id } => Got::ReadMarker {
                target: *target,
                id: *id,
            },
            Frame::DeviceList { devices, .. } => Got::Devices(
                devices
                    .iter()
                    .map(|d| (d.name.to_string(), d.current))
                    .collect(),
            ),
            Frame::Deleted { id, by } => Got::Deleted {
                id: *id,
                by: by.to_string(),
            },
            Frame::Notice { text } => Got::Notice(text.as_str().to_owned()),
            other => Got::Other(other.kind()),
        }
    }
}

/// One client of the world.
#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) conn: ConnId,
    /// Everything received, in order.
    pub(crate) got: Vec<Got>,
    /// The roster rebuilt from snapshots and deltas.
    pub(crate) roster: BTreeSet<String>,
    pub(crate) roster_version: RosterVersion,
    partial_snapshot: Vec<String>,
    /// Whether the peer reads (drains) its queue when the world runs.
    pub(crate) reading: bool,
    /// Whether it acknowledges roster versions it applied.
    pub(crate) acking: bool,
    /// Whether the hub told it to close after its last frames.
    pub(crate) closed: bool,
    /// Bytes written to it and not yet decoded (a frame never splits here,
    /// but keep the reader honest).
    pending: Vec<u8>,
}

impl Peer {
    /// Takes in one frame the hub wrote: records it, keeps the roster,
    /// and says what a client answers (a PONG, a ROSTER_ACK).
    fn apply(&mut self, f: &Frame<'_>) -> Option<Frame<'static>> {
        let reply = match f {
            Frame::Ping { token } => Some(Frame::Ping { token: *token }),
            Frame::RosterSnapshot {
                version,
                last,
                users,
            } => {
                self.partial_snapshot
                    .extend(users.iter().map(|u| u.to_string()));
                (*last).then(|| {
                    self.roster = std::mem::take(&mut self.partial_snapshot)
                        .into_iter()
                        .collect();
                    self.roster_version = *version;
                    Frame::RosterAck { version: *version }
                })
            }
            Frame::RosterDelta {
                version,
                presence,
                user,
            } => {
                assert_eq!(
                    *version,
                    self.roster_version.next(),
                    "deltas arrive without gaps"
                );
                self.roster_version = *version;
                match presence {
                    Presence::Online => assert!(
                        self.roster.insert(user.to_string()),
                        "{user} was already online"
                    ),
                    Presence::Offline => {
                        assert!(self.roster.remove(user.as_str()), "{user} was not online")
                    }
                }
                Some(Frame::RosterAck { version: *version })
            }
            _ => None,
        };
        self.got.push(Got::from(f));
        reply
    }
}

/// The world: a hub, its peers, a store and a clock.
pub(crate) struct World {
    pub(crate) hub: Hub,
    pub(crate) now: Instant,
    pub(crate) peers: Vec<Peer>,
    pub(crate) store: MemoryStore,
    /// When set, effects wait here until [`World::release`].
    pub(crate) hold_effects: bool,
    pub(crate) held: VecDeque<Effect>,
    next_ref: Ref,
}

pub(crate) fn name(s: &str) -> Name {
    Name::new(s).expect("test names are valid")
}

impl World {
    pub(crate) fn new(config: Config) -> World {
        World {
            hub: Hub::new(config, [], MessageId(0)),
            now: Instant::now(),
            peers: Vec::new(),
            store: MemoryStore::default(),
            hold_effects: false,
            held: VecDeque::new(),
            next_ref: Ref(1),
        }
    }

    pub(crate) fn with_accounts(config: Config, users: &[&str]) -> World {
        let mut w = World::new(config);
        for u in users {
            // The memory store keeps a password as its "hash".
            w.store
                .create_account(&name(u), "pw")
                .expect("the memory store does not fail");
        }
        w
    }

    /// A new reference number.
    pub(crate) fn reference(&mut self) -> Ref {
        self.next_ref = Ref(self.next_ref.0 + 1);
        self.next_ref
    }

    /// Connects a peer (from its own source address) and sends HELLO.
    pub(crate) fn connect(&mut self) -> usize {
        self.connect_from(Source(self.peers.len() as u128 + 1))
    }

    pub(crate) fn connect_from(&mut self, source: Source) -> usize {
        self.connect_speaking(source, PROTOCOL_VERSION)
    }

    /// Connects from `source` with a HELLO of `version`.
    pub(crate) fn connect_speaking(&mut self, source: Source, version: u16) -> usize {
        let conn = self.hub.connect(self.now, source, Protocol::CONFAB);
        self.peers.push(Peer {
            conn,
            got: Vec::new(),
            roster: BTreeSet::new(),
            roster_version: RosterVersion(0),
            partial_snapshot: Vec::new(),
            reading: true,
            acking: true,
            closed: false,
            pending: Vec::new(),
        });
        let p = self.peers.len() - 1;
        self.send(
            p,
            &Frame::Hello {
                version,
                client: Text::new("test").expect("short"),
            },
        );
        p
    }

    /// Connects and logs in as `user` (password "pw").
    pub(crate) fn login(&mut self, user: &str, roster: bool) -> usize {
        let p = self.connect();
        self.login_peer(p, user, MessageId(0), roster);
        p
    }

    pub(crate) fn login_peer(
        &mut self,
        p: usize,
        user: &str,
        resume_after: MessageId,
        roster: bool,
    ) {
        let reference = self.reference();
        self.send(
            p,
            &Frame::Login {
                reference,
                user: name(user),
                password: Text::new("pw").expect("short"),
                resume_after,
                roster,
            },
        );
    }

    /// Sends a frame from peer `p` and runs the world until it is quiet.
    pub(crate) fn send(&mut self, p: usize, f: &Frame<'_>) {
        let bytes = f.to_bytes();
        self.send_bytes(p, &bytes);
    }

    /// Feeds raw bytes; returns how many the hub consumed.
    pub(crate) fn send_bytes(&mut self, p: usize, bytes: &[u8]) -> usize {
        let used = self.hub.handle_bytes(self.now, self.peers[p].conn, bytes);
        self.run();
        used
    }

    /// Sends a message and returns its reference.
    pub(crate) fn say(&mut self, p: usize, target: Target, body: &str) -> Ref {
        let reference = self.reference();
        self.send(
            p,
            &Frame::Send {
                reference,
                target,
                body: Text::new(body).expect("short"),
            },
        );
        reference
    }

    /// Drains outputs, runs effects, lets reading peers read, answers PINGs
    /// and acknowledges roster versions, until nothing changes.
    pub(crate) fn run(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(out) = self.hub.poll_output() {
                progressed = true;
                match out {
                    Output::Effect(e) if self.hold_effects => self.held.push_back(e),
                    Output::Effect(e) => {
                        for input in self.store.run(e) {
                            self.hub.handle_input(self.now, input);
                        }
                    }
                    Output::Wake(_) => {}
                }
            }
            for p in 0..self.peers.len() {
                if self.peers[p].reading && self.read(p) {
                    progressed = true;
                }
            }
            if !progressed {
                return;
            }
        }
    }

    /// Runs held effects in order.
    pub(crate) fn release(&mut self) {
        while let Some(e) = self.held.pop_front() {
            for input in self.store.run(e) {
                self.hub.handle_input(self.now, input);
            }
        }
        self.run();
    }

    /// Peer `p` reads what is queued for it; true if it got anything.
    pub(crate) fn read(&mut self, p: usize) -> bool {
        let conn = self.peers[p].conn;
        let mut frames: Vec<Outgoing> = Vec::new();
        let mut any = false;
        loop {
            let d = self.hub.drain(conn, &mut frames, 64 * 1024);
            if d.close {
                self.peers[p].closed = true;
            }
            if d.bytes == 0 {
                break;
            }
            any = true;
        }
        let mut replies = Vec::new();
        for f in frames {
            self.peers[p].pending.extend_from_slice(&f);
        }
        let pending = std::mem::take(&mut self.peers[p].pending);
        let mut off = 0;
        while let Some((f, n)) =
            decode(&pending[off..], u32::MAX).expect("the hub writes valid frames")
        {
            off += n;
            replies.extend(self.peers[p].apply(&f));
        }
        self.peers[p].pending = pending[off..].to_vec();
        if !self.peers[p].acking {
            replies.retain(|r| !matches!(r, Frame::RosterAck { .. }));
        }
        if !self.peers[p].closed {
            for r in replies {
                let bytes = match r {
                    Frame::Ping { token } => Frame::Pong { token }.to_bytes(),
                    other => other.to_bytes(),
                };
                self.hub.handle_bytes(self.now, conn, &bytes);
            }
        }
        any
    }

    /// Advances the clock, running every due timer.
    pub(crate) fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next = self
                .peers
                .iter()
                .filter_map(|p| self.hub.poll_timeout(p.conn))
                .filter(|t| *t <= end)
                .min();
            let Some(t) = next else { break };
            self.now = self.now.max(t);
            for i in 0..self.peers.len() {
                let conn = self.peers[i].conn;
                if self.hub.poll_timeout(conn).is_some_and(|d| d <= self.now) {
                    self.hub.handle_timeout(self.now, conn);
                }
            }
            self.run();
        }
        self.now = end;
        self.run();
    }

    /// The peer's socket closes.
    pub(crate) fn disconnect(&mut self, p: usize) {
        self.hub.disconnect(self.now, self.peers[p].conn);
        self.peers[p].closed = true;
        self.peers[p].reading = false;
        self.run();
    }

    /// The messages peer `p` received, in order.
    pub(crate) fn messages(&self, p: usize) -> Vec<(MessageId, String, String)> {
        self.peers[p]
            .got
            .iter()
            .filter_map(|g| match g {
                Got::Message {
                    id, sender, body, ..
                } => Some((*id, sender.clone(), body.clone())),
                _ => None,
            })
            .collect()
    }

    /// The error codes peer `p` received, in order.
    pub(crate) fn errors(&self, p: usize) -> Vec<ErrorCode> {
        self.peers[p]
            .got
            .iter()
            .filter_map(|g| match g {
                Got::Error { code, .. } => Some(*code),
                _ => None,
            })
            .collect()
    }
}
