//! The routing property: over random sequences of connects, logins, joins,
//! leaves, sends, disconnects and clock advances across several sessions,
//! every message reaches every session entitled to it exactly once and no
//! other, in order; nothing reaches a session before it is authenticated;
//! each session's roster rebuilt from snapshot + deltas equals the hub's;
//! and nothing panics. A small reference model says who is entitled.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;

use super::util::{name, Got, World};
use crate::frame::*;
use crate::{Config, MessageId};

const USERS: usize = 4;
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

/// What the model knows of each peer: its user once logged in, and whether its socket is open.
#[derive(Debug, Clone, Copy)]
struct PeerModel {
    user: Option<usize>,
    open: bool,
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
        let config = Config {
            msg_rate: 10_000,
            msg_burst: 10_000,
            ..Config::default()
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

    fn step(&mut self, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::Login(u) => self.login(u)?,
            Op::Lurk => {
                self.w.connect();
                self.peers.push(PeerModel {
                    user: None,
                    open: true,
                });
                self.expected.push(BTreeSet::new());
            }
            Op::Disconnect(p) => {
                let live: Vec<usize> = (0..self.peers.len())
                    .filter(|&p| self.peers[p].open)
                    .collect();
                if let Some(&p) = live.get(p % live.len().max(1)) {
                    self.w.disconnect(p);
                    self.peers[p].open = false;
                }
            }
            Op::Send(p, k, x) => self.send(p, k, x)?,
            Op::Create(p, g) | Op::Join(p, g) | Op::Leave(p, g) => self.group_op(&op, p, g)?,
            Op::Advance(ms) => self.advance(ms)?,
        }
        Ok(())
    }

    fn login(&mut self, u: usize) -> Result<(), TestCaseError> {
        let others_online = self.peers.iter().any(|q| q.open && q.user == Some(u));
        let p = self.w.login(&user(u), true);
        self.peers.push(PeerModel {
            user: Some(u),
            open: true,
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
        let live = self.open_peers();
        let Some(&p) = live.get(p % live.len().max(1)) else {
            return Ok(());
        };
        let u = self.peers[p].user.expect("open_peers are logged in");
        let (target, entitled, ok, offline_to) = self.entitled(p, u, k, x);
        let r = self.w.say(p, target, "m");
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
        let live = self.open_peers();
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
        self.w.advance(Duration::from_millis(ms));
        // Lurkers are closed by the auth timeout; the model follows.
        for (i, pm) in self.peers.iter_mut().enumerate() {
            if pm.open && self.w.peers[i].closed {
                prop_assert!(
                    pm.user.is_none(),
                    "a logged-in peer that answers pings was closed: {:?}",
                    self.w.peers[i].got
                );
                pm.open = false;
            }
        }
        Ok(())
    }

    /// What every peer got, against the model.
    fn check(&mut self) -> Result<(), TestCaseError> {
        self.w.run();
        for p in 0..self.peers.len() {
            self.check_peer(p)?;
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
        prop_assert_eq!(&set, &self.expected[p], "peer {} (user {:?})", p, pm.user);
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
    let mut model = Model::new();
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
}
