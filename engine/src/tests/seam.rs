//! The hub through its protocol-neutral seam: typed requests in, events
//! out through any codec, and commits routed whoever made them.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::lines::Lines;
use super::util::{name, World};
use crate::effect::{EffectResult, GroupOp, Input, ReplayLoaded, StoredMessage};
use crate::frame::{Frame, Presence, Text, PROTOCOL_VERSION};
use crate::id::{ConnId, MessageId, Ref};
use crate::request::Request;
use crate::shared::Outgoing;
use crate::wire::frame::Target;
use crate::{Config, Effect, Hub, Output, Protocol, Source};

/// A hub and a stand-in shell: every password is right, every message
/// is committed with the next id, routed as the server's writer does.
struct Shell {
    hub: Hub,
    now: Instant,
    next_id: u64,
}

impl Shell {
    fn run(&mut self) {
        while let Some(out) = self.hub.poll_output() {
            let Output::Effect(e) = out else { continue };
            for input in self.answer(e) {
                self.hub.handle_input(self.now, input);
            }
        }
    }

    fn answer(&mut self, e: Effect) -> Vec<Input> {
        match e {
            Effect::Authenticate { conn, user, .. } => {
                vec![EffectResult::Authenticated {
                    conn,
                    result: Ok(user),
                }
                .into()]
            }
            Effect::Replay { conn, .. } => vec![EffectResult::Replayed {
                conn,
                result: Ok(ReplayLoaded::default()),
            }
            .into()],
            Effect::Store {
                conn,
                reference,
                message,
                ..
            } => {
                self.next_id += 1;
                let message = StoredMessage {
                    id: MessageId(self.next_id),
                    timestamp_ms: self.next_id,
                    sender: message.sender,
                    target: message.target,
                    body: message.body,
                    kind: message.kind,
                    tags: message.tags,
                };
                let stored = EffectResult::Stored {
                    conn,
                    reference,
                    result: Ok(message.committed()),
                };
                vec![
                    stored.into(),
                    Input::Committed {
                        message,
                        origin: Some(conn),
                    },
                ]
            }
            _ => Vec::new(),
        }
    }

    /// Everything queued for `conn`, encoded by its protocol's codec.
    fn drain(&mut self, conn: ConnId) -> Vec<Outgoing> {
        let mut out = Vec::new();
        while self.hub.drain(conn, &mut out, 1 << 20).bytes > 0 {}
        out
    }

    /// Logs `user` in through typed requests alone.
    fn log_in(&mut self, conn: ConnId, user: &str) {
        for r in [
            Request::Hello {
                version: PROTOCOL_VERSION,
            },
            Request::Login {
                reference: Ref(1),
                user: name(user),
                password: "pw",
                resume_after: MessageId(0),
                roster: false,
            },
        ] {
            assert!(self.hub.handle_request(self.now, conn, r));
            self.run();
        }
        assert_eq!(self.hub.user(conn), Some(name(user)));
        self.drain(conn);
    }
}

fn bytes(out: Vec<Outgoing>) -> Vec<u8> {
    out.iter().flat_map(|o| o.iter().copied()).collect()
}

#[test]
fn a_room_message_reaches_sessions_of_two_protocols_encoded_once_for_each() {
    let mut shell = Shell {
        hub: Hub::new(Config::default(), [], MessageId(0)),
        now: Instant::now(),
        next_id: 0,
    };
    let lines = Arc::new(Lines::default());
    let line = shell
        .hub
        .add_protocol(lines.clone())
        .expect("room for one more");
    let mut conns = Vec::new();
    for (i, (user, protocol)) in [
        ("ann", Protocol::CONFAB),
        ("bob", Protocol::CONFAB),
        ("cy", line),
        ("dee", line),
        ("eve", Protocol::CONFAB),
    ]
    .into_iter()
    .enumerate()
    {
        let conn = shell.hub.connect(shell.now, Source(i as u128), protocol);
        shell.log_in(conn, user);
        conns.push(conn);
    }
    let [ann, bob, cy, dee, eve] = conns[..] else {
        unreachable!("five sessions")
    };

    // A line session sends, through its own codec's bytes.
    let used = shell
        .hub
        .handle_bytes(shell.now, dee, b"SAY 7 hello, both worlds\n");
    assert_eq!(used, 25);
    shell.run();
    assert_eq!(
        &bytes(shell.drain(dee)),
        b"ACK 7 1\n",
        "the sender's copy is its ACK"
    );

    // The confab sessions get the same frame, one allocation between them.
    let (a, b, e) = (shell.drain(ann), shell.drain(bob), shell.drain(eve));
    assert_eq!((a.len(), b.len(), e.len()), (1, 1, 1));
    assert!(a[0].same_bytes(&b[0]) && a[0].same_bytes(&e[0]));
    let expected = Frame::Message {
        id: MessageId(1),
        timestamp_ms: 1,
        sender: name("dee"),
        target: Target::Room,
        body: Text::new("hello, both worlds").expect("short"),
    }
    .to_bytes();
    assert_eq!(&a[0][..], &expected[..]);

    // The line session gets it in its own protocol, encoded once for it.
    assert_eq!(
        &bytes(shell.drain(cy)),
        b"MESSAGE 1 dee hello, both worlds\n"
    );
    assert_eq!(lines.messages_encoded.load(Ordering::Relaxed), 1);
}

#[test]
fn a_message_committed_elsewhere_reaches_exactly_the_entitled_sessions_in_id_order() {
    let mut w = World::with_accounts(Config::default(), &["ann", "bob", "cy"]);
    let (ann, bob, cy) = (
        w.login("ann", false),
        w.login("bob", false),
        w.login("cy", false),
    );
    let g = name("crew");
    w.send(
        ann,
        &Frame::GroupCreate {
            reference: Ref(3),
            group: g,
        },
    );
    w.send(
        bob,
        &Frame::GroupJoin {
            reference: Ref(4),
            group: g,
        },
    );
    assert_eq!(
        w.hub.group_members(&g),
        Some(vec![name("ann"), name("bob")])
    );
    let elsewhere = |id: u64, sender: &str, target: Target| StoredMessage {
        id: MessageId(id),
        timestamp_ms: id,
        sender: name(sender),
        target,
        body: format!("m{id}"),
        kind: crate::MessageKind::Message,
        tags: crate::ClientTags::default(),
    };
    // Committed on another node: no session here sent them, so even the
    // sender's own sessions get a copy (ann's, of 12).
    for m in [
        elsewhere(10, "zed", Target::Room),
        elsewhere(11, "zed", Target::Group(g)),
        elsewhere(12, "ann", Target::User(name("bob"))),
        elsewhere(13, "zed", Target::User(name("cy"))),
        elsewhere(14, "zed", Target::Group(name("other"))),
    ] {
        w.hub.handle_committed(w.now, m, None);
    }
    w.run();
    let ids = |p| {
        w.messages(p)
            .into_iter()
            .map(|m| m.0 .0)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(ann), [10, 11, 12]);
    assert_eq!(ids(bob), [10, 11, 12]);
    assert_eq!(ids(cy), [10, 13]);
    assert_eq!(w.hub.last_id(), MessageId(14));
}

#[test]
fn a_group_change_committed_elsewhere_takes_effect_and_is_announced() {
    let mut w = World::with_accounts(Config::default(), &["ann", "bob"]);
    let (ann, bob) = (w.login("ann", false), w.login("bob", false));
    let g = name("crew");
    w.send(
        ann,
        &Frame::GroupCreate {
            reference: Ref(3),
            group: g,
        },
    );
    // bob joins through another node: this hub hears of it as a commit.
    let join = GroupOp::Join {
        group: g,
        user: name("bob"),
    };
    w.hub.handle_group_committed(w.now, join, None);
    w.run();
    assert_eq!(
        w.hub.group_members(&g),
        Some(vec![name("ann"), name("bob")])
    );
    for p in [ann, bob] {
        assert!(
            w.peers[p].got.iter().any(|got| matches!(
                got,
                super::util::Got::GroupEvent { joined: true, user, .. } if user == "bob"
            )),
            "peer {p} was told"
        );
    }
    // And bob may now send to the group, checked by this hub.
    w.say(bob, Target::Group(g), "hi crew");
    assert_eq!(
        w.messages(ann).last().map(|m| m.2.clone()),
        Some("hi crew".into())
    );
}

#[test]
fn presence_from_other_nodes_reaches_subscribers_and_a_user_is_offline_once_offline_everywhere() {
    let mut w = World::with_accounts(Config::default(), &["ann", "bob"]);
    let ann = w.login("ann", true);
    let roster = |w: &World| w.peers[ann].roster.iter().cloned().collect::<Vec<_>>();
    // zed is online on another node; bob on another node, then here too.
    w.hub.handle_presence(w.now, name("zed"), Presence::Online);
    w.hub.handle_presence(w.now, name("bob"), Presence::Online);
    w.run();
    assert_eq!(roster(&w), ["ann", "bob", "zed"]);
    let bob = w.login("bob", false);
    // bob leaves here: still online there, so no delta (the peer's roster
    // checks that deltas come without gaps or repeats).
    w.disconnect(bob);
    assert_eq!(roster(&w), ["ann", "bob", "zed"]);
    w.hub.handle_presence(w.now, name("bob"), Presence::Offline);
    w.run();
    assert_eq!(roster(&w), ["ann", "zed"]);
    // zed on a second node too: offline only once both nodes say so; a
    // stray offline from a node that never said online changes nothing.
    w.hub.handle_presence(w.now, name("zed"), Presence::Online);
    w.hub.handle_presence(w.now, name("zed"), Presence::Offline);
    w.run();
    assert_eq!(roster(&w), ["ann", "zed"]);
    w.hub.handle_presence(w.now, name("zed"), Presence::Offline);
    w.hub.handle_presence(w.now, name("zed"), Presence::Offline);
    w.hub
        .handle_presence(w.now, name("nobody"), Presence::Offline);
    w.run();
    assert_eq!(roster(&w), ["ann"]);
    assert_eq!(w.hub.online(), [name("ann")]);
}
