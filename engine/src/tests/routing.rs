//! The routing property: over random sequences of connects, logins, joins,
//! leaves, sends, disconnects and clock advances across several sessions,
//! every message reaches every session entitled to it exactly once and no
//! other, in order; nothing reaches a session before it is authenticated;
//! each session's roster rebuilt from snapshot + deltas equals the hub's;
//! and nothing panics. A small reference model says who is entitled.
//!
//! The second property adds readers that stop reading and start again,
//! with a small queue and room log: then every entitled message reaches
//! a session once, in order, or is counted in a MISSED report that comes
//! before any newer message; a session too far behind is closed as a slow
//! consumer and gets no message it was not entitled to.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;

use super::util::{name, Got, World};
use crate::frame::*;
use crate::{Config, MessageId, Phase};

const USERS: usize = 4;
/// Long enough that a few messages fill the slow model's queue.
const BODY: &str = "a message body of some length, so that a handful of them fill a small queue and a small room log, and readers that stop reading fall behind";
const GROUPS: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    /// A new connection that logs in as user `u`.
    Login(usize),
    /// A new connection that never logs in.
    Lurk,
    /// Peer `p` (index among peers, modulo) disconnects.
    Disconnect(usize),
    /// Peer `p` sends to the room (0), a group (1) or a user (2); `x` picks which.
    Send(usize, u8, usize),
    Create(usize, usize),
    Join(usize, usize),
    Leave(usize, usize),
    Advance(u64),
    /// Peer `p` (among the open ones) stops reading.
    Pause(usize),
    /// Peer `p` (among the open ones) reads again.
    Resume(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..USERS).prop_map(Op::Login),
        1 => Just(Op::Lurk),
        1 => any::<usize>().prop_map(Op::Disconnect),
        6 => (any::<usize>(), 0u8..3, any::<usize>()).prop_map(|(p, k, x)| Op::Send(p, k, x)),
        1 => (any::<usize>(), 0..GROUPS).prop_map(|(p, g)| Op::Create(p, g)),
        2 => (any::<usize>(), 0..GROUPS).prop_map(|(p, g)| Op::Join(p, g)),
        1 => (any::<usize>(), 0..GROUPS).prop_map(|(p, g)| Op::Leave(p, g)),
        1 => (1u64..90_000).prop_map(Op::Advance),
    ]
}

fn slow_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => op(),
        3 => any::<usize>().prop_map(Op::Pause),
        1 => any::<usize>().prop_map(Op::Resume),
        6 => (any::<usize>(), any::<usize>()).prop_map(|(p, x)| Op::Send(p, 0, x)),
    ]
}

/// What the model knows of each peer: its user once logged in, whether
/// its socket is open, and whether the server closed it while it was not
/// reading (a slow consumer, or silent past the idle timeout), so that
/// it may have been entitled to more than it got.
#[derive(Debug, Clone, Copy)]
struct PeerModel {
    user: Option<usize>,
    open: bool,
    cut: bool,
}

fn user(u: usize) -> String {
    format!("u{u}")
}
fn group(g: usize) -> Name {
    name(&format!("g{g}"))
}
use crate::name::Name;

/// The world under test and the reference model beside it.
struct Model {
    w: World,
    peers: Vec<PeerModel>,
    groups: BTreeMap<usize, BTreeSet<usize>>,
    /// What each peer must receive.
    expected: Vec<BTreeSet<MessageId>>,
    /// Direct messages sent while none of the user's sessions was online:
    /// delivered to the next session that logs in with nobody else online.
    offline_dms: Vec<BTreeSet<MessageId>>,
}

impl Model {
    fn new() -> Model {
        Model::with(Config::default())
    }

    /// With a queue and room log small enough for slow readers to lose
    /// messages and be cut within a test case.
    fn slow() -> Model {
        Model::with(Config {
            send_queue_bytes: 1500,
            room_log_ids: 24,
            ..Config::default()
        })
    }

    fn with(config: Config) -> Model {
        let config = Config {
            msg_rate: 10_000,
            msg_burst: 10_000,
            ..config
        };
        let users: Vec<String> = (0..USERS).map(user).collect();
        let refs: Vec<&str> = users.iter().map(String::as_str).collect();
        Model {
            w: World::with_accounts(config, &refs),
            peers: Vec::new(),
            groups: BTreeMap::new(),
            expected: Vec::new(),
            offline_dms: vec![BTreeSet::new(); USERS],
        }
    }

    /// Peers with an open socket that logged in.
    fn open_peers(&self) -> Vec<usize> {
        (0..self.peers.len())
            .filter(|&p| self.peers[p].open && self.peers[p].user.is_some())
            .collect()
    }

    /// Open peers that read (they see their ACKs and OKs at once).
    fn reading_peers(&self) -> Vec<usize> {
        self.open_peers()
            .into_iter()
            .filter(|&p| self.w.peers[p].reading)
            .collect()
    }

    /// Follows the server's closes of peers that were not reading.
    fn follow_closes(&mut self) -> Result<(), TestCaseError> {
        for (i, pm) in self.peers.iter_mut().enumerate() {
            // A peer that does not read has not seen its close yet.
            let phase = self.w.hub.phase(self.w.peers[i].conn);
            let closed = self.w.peers[i].closed || matches!(phase, None | Some(Phase::Closed));
            if pm.open && closed {
                prop_assert!(
                    pm.user.is_none()
                        || !self.w.peers[i].reading
                        || self.w.peers[i]
                            .got
                            .iter()
                            .any(|g| matches!(g, Got::Error { .. })),
                    "a logged-in peer that reads was closed: {:?}",
                    self.w.peers[i].got
                );
                pm.open = false;
                pm.cut = pm.user.is_some();
            }
        }
        Ok(())
    }

    fn step(&mut self, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::Login(u) => self.login(u)?,
            Op::Lurk => {
                self.w.connect();
                self.peers.push(PeerModel {
                    user: None,
                    open: true,
                    cut: false,
                });
                self.expected.push(BTreeSet::new());
            }
            Op::Pause(p) | Op::Resume(p) => {
                let live = self.open_peers();
                if let Some(&p) = live.get(p % live.len().max(1)) {
                    self.w.peers[p].reading = matches!(op, Op::Resume(_));
                    self.w.run();
                }
            }
            Op::Disconnect(p) => {
                let live: Vec<usize> = (0..self.peers.len())
                    .filter(|&p| self.peers[p].open)
                    .collect();
                if let Some(&p) = live.get(p % live.len().max(1)) {
                    // What a peer that was not reading had queued is lost with it.
                    self.peers[p].cut = !self.w.peers[p].reading;
                    self.w.disconnect(p);
                    self.peers[p].open = false;
                }
            }
            Op::Send(p, k, x) => self.send(p, k, x)?,
            Op::Create(p, g) | Op::Join(p, g) | Op::Leave(p, g) => self.group_op(&op, p, g)?,
            Op::Advance(ms) => self.advance(ms)?,
        }
        self.follow_closes()
    }

    fn login(&mut self, u: usize) -> Result<(), TestCaseError> {
        let others_online = self.peers.iter().any(|q| q.open && q.user == Some(u));
        let p = self.w.login(&user(u), true);
        self.peers.push(PeerModel {
            user: Some(u),
            open: true,
            cut: false,
        });
        self.expected.push(if others_online {
            BTreeSet::new()
        } else {
            std::mem::take(&mut self.offline_dms[u])
        });
        prop_assert_eq!(p, self.peers.len() - 1);
        // The login may have been refused only for timing reasons we do not generate.
        prop_assert!(
            self.w.peers[p]
                .got
                .iter()
                .any(|g| matches!(g, Got::LoginOk(..))),
            "login failed: {:?}",
            self.w.peers[p].got
        );
        Ok(())
    }

    /// Where a send of kind `k` by peer `p` (user `u`) goes: its target,
    /// the peers entitled to it, whether it is allowed, and the user it
    /// waits for if none of their sessions is online.
    fn entitled(
        &self,
        p: usize,
        u: usize,
        k: u8,
        x: usize,
    ) -> (Target, Vec<usize>, bool, Option<usize>) {
        let live = self.open_peers();
        let others = live.iter().copied().filter(move |&q| q != p);
        let user_of = |q: usize| self.peers[q].user.expect("open_peers are logged in");
        match k {
            0 => (Target::Room, others.collect(), true, None),
            1 => {
                let g = x % GROUPS;
                let members = self.groups.get(&g);
                let ok = members.is_some_and(|m| m.contains(&u));
                let to = others
                    .filter(|&q| members.is_some_and(|m| m.contains(&user_of(q))))
                    .collect();
                (Target::Group(group(g)), to, ok, None)
            }
            _ => {
                let t = x % USERS;
                let to = others
                    .filter(|&q| user_of(q) == t || user_of(q) == u)
                    .collect();
                let offline = (!live.iter().any(|&q| user_of(q) == t)).then_some(t);
                (Target::User(name(&user(t))), to, true, offline)
            }
        }
    }

    fn send(&mut self, p: usize, k: u8, x: usize) -> Result<(), TestCaseError> {
        let live = self.reading_peers();
        let Some(&p) = live.get(p % live.len().max(1)) else {
            return Ok(());
        };
        let u = self.peers[p].user.expect("open_peers are logged in");
        let (target, entitled, ok, offline_to) = self.entitled(p, u, k, x);
        let r = self.w.say(p, target, BODY);
        let ack = self.w.peers[p].got.iter().find_map(|g| match g {
            Got::Ack { reference, id } if *reference == r => Some(*id),
            _ => None,
        });
        prop_assert_eq!(
            ack.is_some(),
            ok,
            "send {:?} by u{} acked={:?}",
            target,
            u,
            ack
        );
        if let Some(id) = ack {
            for q in entitled {
                self.expected[q].insert(id);
            }
            if let Some(t) = offline_to {
                self.offline_dms[t].insert(id);
            }
        }
        Ok(())
    }

    fn group_op(&mut self, op: &Op, p: usize, g: usize) -> Result<(), TestCaseError> {
        let live = self.reading_peers();
        let Some(&p) = live.get(p % live.len().max(1)) else {
            return Ok(());
        };
        let u = self.peers[p].user.expect("logged in");
        let (reference, group) = (self.w.reference(), group(g));
        let members = self.groups.get(&g);
        let (frame, ok) = match op {
            Op::Create(..) => (Frame::GroupCreate { reference, group }, members.is_none()),
            Op::Join(..) => (
                Frame::GroupJoin { reference, group },
                members.is_some_and(|m| !m.contains(&u)),
            ),
            _ => (
                Frame::GroupLeave { reference, group },
                members.is_some_and(|m| m.contains(&u)),
            ),
        };
        self.w.send(p, &frame);
        let got_ok = self.w.peers[p].got.contains(&Got::Ok(reference));
        prop_assert_eq!(got_ok, ok, "{:?}", frame);
        if ok {
            let members = self.groups.entry(g).or_default();
            match op {
                Op::Create(..) | Op::Join(..) => members.insert(u),
                _ => members.remove(&u),
            };
        }
        Ok(())
    }

    fn advance(&mut self, ms: u64) -> Result<(), TestCaseError> {
        // Lurkers are closed by the auth timeout, peers that stopped
        // reading by the idle timeout; the model follows.
        self.w.advance(Duration::from_millis(ms));
        Ok(())
    }

    /// What every peer got, against the model.
    fn check(&mut self) -> Result<(), TestCaseError> {
        for p in self.open_peers() {
            self.w.peers[p].reading = true;
        }
        self.w.run();
        self.follow_closes()?;
        for p in 0..self.peers.len() {
            self.check_peer(p)?;
        }
        Ok(())
    }

    /// What peer `p` did not get of what it was entitled to was reported,
    /// exactly and in time, unless the server closed it for not reading.
    fn check_reported(&self, p: usize, set: &BTreeSet<MessageId>) -> Result<(), TestCaseError> {
        let (w, pm) = (&self.w, self.peers[p]);
        let got = &w.peers[p].got;
        let mut newest = MessageId(0);
        let mut reported = 0u64;
        for g in got {
            match g {
                Got::Message { id, .. } => newest = newest.max(*id),
                Got::Missed {
                    first, last, count, ..
                } => {
                    prop_assert!(
                        newest < *first,
                        "peer {}: MISSED {}..{} after {}",
                        p,
                        first,
                        last,
                        newest
                    );
                    let gone = self.expected[p]
                        .range(*first..=*last)
                        .filter(|id| !set.contains(id))
                        .count() as u64;
                    prop_assert!(
                        u64::from(*count) <= gone,
                        "peer {}: MISSED {}..{} x{} but only {} undelivered",
                        p,
                        first,
                        last,
                        count,
                        gone
                    );
                    reported += u64::from(*count);
                }
                _ => {}
            }
        }
        if !pm.cut {
            prop_assert_eq!(
                set.len() as u64 + reported,
                self.expected[p].len() as u64,
                "peer {} (user {:?}): got {:?} and {} reported of {:?}",
                p,
                pm.user,
                set,
                reported,
                self.expected[p]
            );
        }
        Ok(())
    }

    fn check_peer(&self, p: usize) -> Result<(), TestCaseError> {
        let (w, pm) = (&self.w, self.peers[p]);
        let got = &w.peers[p].got;
        // Nothing before authentication.
        let login = got
            .iter()
            .position(|g| matches!(g, Got::LoginOk(..)))
            .unwrap_or(got.len());
        prop_assert!(
            !got[..login].iter().any(|g| matches!(
                g,
                Got::Message { .. }
                    | Got::Delta { .. }
                    | Got::Snapshot { .. }
                    | Got::GroupEvent { .. }
            )),
            "peer {} got chat traffic before login: {:?}",
            p,
            got
        );
        // Exactly the entitled messages, each once, in id order.
        let ids: Vec<MessageId> = w.messages(p).iter().map(|m| m.0).collect();
        let set: BTreeSet<MessageId> = ids.iter().copied().collect();
        prop_assert_eq!(
            set.len(),
            ids.len(),
            "peer {} got a message twice: {:?}",
            p,
            ids
        );
        prop_assert!(
            set.is_subset(&self.expected[p]),
            "peer {} (user {:?}) got {:?}, more than {:?}",
            p,
            pm.user,
            set,
            self.expected[p]
        );
        self.check_reported(p, &set)?;
        prop_assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "peer {} got ids out of order: {:?}",
            p,
            ids
        );
        // The roster each open session rebuilt equals the hub's.
        if pm.open && pm.user.is_some() {
            let hub: BTreeSet<String> = w.hub.online().iter().map(|n| n.to_string()).collect();
            prop_assert_eq!(&w.peers[p].roster, &hub, "peer {}", p);
            prop_assert_eq!(w.peers[p].roster_version, w.hub.roster_version());
        }
        Ok(())
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    run_on(Model::new(), ops)
}

fn run_on(mut model: Model, ops: Vec<Op>) -> Result<(), TestCaseError> {
    for op in ops {
        model.step(op)?;
    }
    model.check()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn every_message_reaches_exactly_the_entitled_sessions_in_order(ops in prop::collection::vec(op(), 1..80)) {
        run(ops)?;
    }

    #[test]
    fn every_message_reaches_a_reader_that_stops_and_starts_or_is_reported_missed(ops in prop::collection::vec(slow_op(), 1..160)) {
        run_on(Model::slow(), ops)?;
    }
}
