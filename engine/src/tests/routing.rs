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

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let config = Config {
        msg_rate: 10_000,
        msg_burst: 10_000,
        ..Config::default()
    };
    let users: Vec<String> = (0..USERS).map(user).collect();
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let mut w = World::with_accounts(config, &refs);
    let mut peers: Vec<PeerModel> = Vec::new();
    let mut groups: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    // What each peer must receive: message id → (sender peer, conversation class).
    let mut expected: Vec<BTreeSet<MessageId>> = Vec::new();
    // Direct messages sent while none of the user's sessions was online:
    // delivered to the next session that logs in with nobody else online.
    let mut offline_dms: Vec<BTreeSet<MessageId>> = vec![BTreeSet::new(); USERS];

    let open_peers = |peers: &[PeerModel]| -> Vec<usize> {
        (0..peers.len())
            .filter(|&p| peers[p].open && peers[p].user.is_some())
            .collect()
    };

    for op in ops {
        match op {
            Op::Login(u) => {
                let others_online = peers.iter().any(|q| q.open && q.user == Some(u));
                let p = w.login(&user(u), true);
                peers.push(PeerModel {
                    user: Some(u),
                    open: true,
                });
                expected.push(if others_online {
                    BTreeSet::new()
                } else {
                    std::mem::take(&mut offline_dms[u])
                });
                prop_assert_eq!(p, peers.len() - 1);
                // The login may have been refused only for timing reasons we do not generate.
                prop_assert!(
                    w.peers[p].got.iter().any(|g| matches!(g, Got::LoginOk(..))),
                    "login failed: {:?}",
                    w.peers[p].got
                );
            }
            Op::Lurk => {
                w.connect();
                peers.push(PeerModel {
                    user: None,
                    open: true,
                });
                expected.push(BTreeSet::new());
            }
            Op::Disconnect(p) => {
                let live: Vec<usize> = (0..peers.len()).filter(|&p| peers[p].open).collect();
                if live.is_empty() {
                    continue;
                }
                let p = live[p % live.len()];
                w.disconnect(p);
                peers[p].open = false;
            }
            Op::Send(p, k, x) => {
                let live = open_peers(&peers);
                if live.is_empty() {
                    continue;
                }
                let p = live[p % live.len()];
                let u = peers[p].user.expect("open_peers are logged in");
                let mut offline_to = None;
                let (target, entitled, ok): (Target, Vec<usize>, bool) = match k {
                    0 => (
                        Target::Room,
                        live.iter().copied().filter(|&q| q != p).collect(),
                        true,
                    ),
                    1 => {
                        let g = x % GROUPS;
                        let members = groups.get(&g);
                        let ok = members.is_some_and(|m| m.contains(&u));
                        let to = live
                            .iter()
                            .copied()
                            .filter(|&q| {
                                q != p
                                    && members.is_some_and(|m| {
                                        m.contains(&peers[q].user.expect("logged in"))
                                    })
                            })
                            .collect();
                        (Target::Group(group(g)), to, ok)
                    }
                    _ => {
                        let t = x % USERS;
                        let to = live
                            .iter()
                            .copied()
                            .filter(|&q| {
                                q != p && (peers[q].user == Some(t) || peers[q].user == Some(u))
                            })
                            .collect();
                        if !live.iter().any(|&q| peers[q].user == Some(t)) {
                            offline_to = Some(t);
                        }
                        (Target::User(name(&user(t))), to, true)
                    }
                };
                let r = w.say(p, target, "m");
                let ack = w.peers[p].got.iter().find_map(|g| match g {
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
                        expected[q].insert(id);
                    }
                    if let Some(t) = offline_to {
                        offline_dms[t].insert(id);
                    }
                }
            }
            Op::Create(p, g) | Op::Join(p, g) | Op::Leave(p, g) => {
                let live = open_peers(&peers);
                if live.is_empty() {
                    continue;
                }
                let p = live[p % live.len()];
                let u = peers[p].user.expect("logged in");
                let r = w.reference();
                let (frame, ok) = match op {
                    Op::Create(..) => (
                        Frame::GroupCreate {
                            reference: r,
                            group: group(g),
                        },
                        !groups.contains_key(&g),
                    ),
                    Op::Join(..) => (
                        Frame::GroupJoin {
                            reference: r,
                            group: group(g),
                        },
                        groups.get(&g).is_some_and(|m| !m.contains(&u)),
                    ),
                    _ => (
                        Frame::GroupLeave {
                            reference: r,
                            group: group(g),
                        },
                        groups.get(&g).is_some_and(|m| m.contains(&u)),
                    ),
                };
                w.send(p, &frame);
                let got_ok = w.peers[p].got.contains(&Got::Ok(r));
                prop_assert_eq!(got_ok, ok, "{:?}", frame);
                if ok {
                    match op {
                        Op::Create(..) => {
                            groups.insert(g, BTreeSet::from([u]));
                        }
                        Op::Join(..) => {
                            groups.entry(g).or_default().insert(u);
                        }
                        _ => {
                            groups.entry(g).or_default().remove(&u);
                        }
                    }
                }
            }
            Op::Advance(ms) => {
                w.advance(Duration::from_millis(ms));
                // Lurkers are closed by the auth timeout; the model follows.
                for (i, pm) in peers.iter_mut().enumerate() {
                    if pm.open && w.peers[i].closed {
                        prop_assert!(
                            pm.user.is_none(),
                            "a logged-in peer that answers pings was closed: {:?}",
                            w.peers[i].got
                        );
                        pm.open = false;
                    }
                }
            }
        }
    }
    w.run();

    for (p, pm) in peers.iter().enumerate() {
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
        prop_assert_eq!(&set, &expected[p], "peer {} (user {:?})", p, pm.user);
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
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn every_message_reaches_exactly_the_entitled_sessions_in_order(ops in prop::collection::vec(op(), 1..80)) {
        run(ops)?;
    }
}
