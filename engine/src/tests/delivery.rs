//! Delivery: messages, groups, the roster stream, resume and history.

use super::util::{name, Got, World};
use crate::frame::*;
use crate::id::MessageId;
use crate::Config;

fn world(users: &[&str]) -> World {
    World::with_accounts(Config::default(), users)
}

#[test]
fn a_room_message_reaches_every_other_session_and_is_acked_to_the_sender() {
    let mut w = world(&["alice", "bob", "carol"]);
    let a = w.login("alice", true);
    let b = w.login("bob", true);
    let c = w.login("carol", false);
    let a2 = w.login("alice", false);
    let r = w.say(a, Target::Room, "hello room");
    assert!(w.peers[a].got.contains(&Got::Ack {
        reference: r,
        id: MessageId(1)
    }));
    assert!(
        w.messages(a).is_empty(),
        "the sending session does not get its own message"
    );
    for p in [b, c, a2] {
        assert_eq!(
            w.messages(p),
            [(MessageId(1), "alice".to_string(), "hello room".to_string())]
        );
    }
}

#[test]
fn a_dm_reaches_every_session_of_the_target_and_the_senders_other_sessions_only() {
    let mut w = world(&["alice", "bob", "carol"]);
    let a = w.login("alice", false);
    let a2 = w.login("alice", false);
    let b1 = w.login("bob", false);
    let b2 = w.login("Bob", false);
    let c = w.login("carol", false);
    w.say(a, Target::User(name("BOB")), "psst");
    for p in [b1, b2, a2] {
        let got = &w.peers[p].got;
        assert!(
            got.contains(&Got::Message {
                id: MessageId(1),
                sender: "alice".into(),
                target: Target::User(name("bob")),
                body: "psst".into()
            }),
            "peer {p}: {got:?}"
        );
    }
    assert!(w.messages(c).is_empty());
    assert!(w.messages(a).is_empty());
}

#[test]
fn a_dm_to_a_user_that_does_not_exist_is_refused() {
    let mut w = world(&["alice", "bob"]);
    let a = w.login("alice", false);
    let b = w.login("bob", false);
    let r = w.say(a, Target::User(name("nobody")), "hello?");
    assert!(w.peers[a].got.contains(&Got::Error {
        code: ErrorCode::NoSuchUser,
        reference: r,
        retry_after_ms: 0
    }));
    assert!(w.messages(b).is_empty());
    assert!(w.store.messages().is_empty());
}

#[test]
fn group_messages_reach_members_only_and_membership_changes_are_announced() {
    let mut w = world(&["alice", "bob", "carol"]);
    let a = w.login("alice", false);
    let b = w.login("bob", false);
    let c = w.login("carol", false);
    let r = w.reference();
    w.send(
        a,
        &Frame::GroupCreate {
            reference: r,
            group: name("Dev"),
        },
    );
    assert!(w.peers[a].got.contains(&Got::Ok(r)));
    let r = w.reference();
    w.send(
        b,
        &Frame::GroupJoin {
            reference: r,
            group: name("dev"),
        },
    );
    assert!(w.peers[b].got.contains(&Got::Ok(r)));
    assert!(w.peers[a].got.contains(&Got::GroupEvent {
        joined: true,
        group: "Dev".into(),
        user: "bob".into()
    }));
    let r = w.say(c, Target::Group(name("dev")), "let me in");
    assert!(w.peers[c].got.contains(&Got::Error {
        code: ErrorCode::NotAMember,
        reference: r,
        retry_after_ms: 0
    }));
    w.say(a, Target::Group(name("dev")), "standup");
    assert_eq!(
        w.messages(b),
        [(MessageId(1), "alice".into(), "standup".into())]
    );
    assert!(w.messages(c).is_empty());
    let r = w.reference();
    w.send(
        b,
        &Frame::GroupLeave {
            reference: r,
            group: name("DEV"),
        },
    );
    assert!(w.peers[a].got.contains(&Got::GroupEvent {
        joined: false,
        group: "Dev".into(),
        user: "bob".into()
    }));
    w.say(a, Target::Group(name("dev")), "after");
    assert_eq!(
        w.messages(b).len(),
        1,
        "a member who left gets nothing more"
    );
    assert_eq!(w.hub.group_members(&name("dev")), Some(vec![name("alice")]));
    let r = w.reference();
    w.send(c, &Frame::GroupListRequest { reference: r });
    assert!(w.peers[c]
        .got
        .contains(&Got::GroupList(vec![("Dev".into(), 1, false)])));
    let r = w.reference();
    w.send(
        c,
        &Frame::GroupCreate {
            reference: r,
            group: name("DEV"),
        },
    );
    assert!(w.peers[c].got.contains(&Got::Error {
        code: ErrorCode::GroupExists,
        reference: r,
        retry_after_ms: 0
    }));
}

#[test]
fn the_roster_is_a_snapshot_then_gapless_deltas_and_a_user_is_online_once() {
    let mut w = world(&["alice", "bob"]);
    let a = w.login("alice", true);
    let b1 = w.login("bob", true);
    let b2 = w.login("bob", false);
    assert_eq!(
        w.peers[a].roster,
        ["alice".to_string(), "bob".to_string()].into()
    );
    let deltas = |w: &World| {
        w.peers[a]
            .got
            .iter()
            .filter(|g| matches!(g, Got::Delta { .. }))
            .count()
    };
    assert_eq!(deltas(&w), 1, "bob's second session is not a roster change");
    w.disconnect(b1);
    assert_eq!(deltas(&w), 1, "bob still has a session");
    w.disconnect(b2);
    assert_eq!(deltas(&w), 2);
    assert_eq!(w.peers[a].roster, ["alice".to_string()].into());
    assert_eq!(w.peers[a].roster_version, w.hub.roster_version());
}

#[test]
fn a_session_that_never_acks_gets_at_most_a_window_of_deltas_then_a_snapshot() {
    let config = Config {
        roster_window: 4,
        roster_log: 8,
        ..Config::default()
    };
    let names: Vec<String> = (0..20).map(|i| format!("u{i}")).collect();
    let mut all: Vec<&str> = names.iter().map(String::as_str).collect();
    all.push("watcher");
    let mut w = World::with_accounts(config, &all);
    let watcher = w.login("watcher", true);
    // The watcher reads but stops acknowledging.
    w.peers[watcher].acking = false;
    for n in &names {
        w.login(n, false);
    }
    let deltas = w.peers[watcher]
        .got
        .iter()
        .filter(|g| matches!(g, Got::Delta { .. }))
        .count();
    assert_eq!(deltas, 4, "no more than the window beyond the last ack");
    // It acks what it has: it is now further behind than the log reaches.
    w.peers[watcher].acking = true;
    let version = w.peers[watcher].roster_version;
    w.send(watcher, &Frame::RosterAck { version });
    assert!(matches!(
        w.peers[watcher].got.last(),
        Some(Got::Snapshot { last: true, .. })
    ));
    assert_eq!(w.peers[watcher].roster.len(), 21);
    assert_eq!(w.peers[watcher].roster_version, w.hub.roster_version());
}

#[test]
fn a_reconnecting_client_gets_exactly_what_it_missed_in_order_then_live_traffic() {
    let mut w = world(&["alice", "bob"]);
    let a = w.login("alice", false);
    let b = w.login("bob", false);
    w.say(a, Target::Room, "one");
    let last_seen = w.messages(b)[0].0;
    w.disconnect(b);
    w.say(a, Target::Room, "two");
    w.say(a, Target::User(name("bob")), "three");
    // Bob comes back; while his replay loads, more traffic arrives.
    let b = w.connect();
    w.hold_effects = true;
    w.login_peer(b, "bob", last_seen, false);
    w.release(); // the login
    w.say(a, Target::Room, "four"); // held: Store effect
    w.hold_effects = false;
    w.release(); // the replay, then "four"
                 // Each conversation in order (a DM may overtake room traffic: it has
                 // the higher priority), nothing twice, nothing from before `last_seen`.
    let bodies: Vec<String> = w.messages(b).into_iter().map(|m| m.2).collect();
    let room: Vec<&String> = bodies.iter().filter(|b| *b != "three").collect();
    assert_eq!(room, ["two", "four"]);
    assert_eq!(bodies.len(), 3);
    assert!(bodies.contains(&"three".to_string()));
    let caught_up = w.peers[b]
        .got
        .iter()
        .position(|g| matches!(g, Got::CaughtUp(MessageId(3))))
        .expect("caught up");
    let four = w.peers[b]
        .got
        .iter()
        .position(|g| matches!(g, Got::Message { body, .. } if body == "four"))
        .unwrap();
    assert!(caught_up < four, "live messages come after CAUGHT_UP");
}

#[test]
fn live_messages_during_a_replay_are_held_then_delivered_after_it() {
    let mut w = world(&["alice", "bob"]);
    let a = w.login("alice", false);
    w.say(a, Target::Room, "old");
    let b = w.connect();
    w.hold_effects = true;
    w.login_peer(b, "bob", MessageId(0), false);
    w.release(); // authenticate → login → Replay effect is held
    assert!(matches!(w.held.front(), Some(crate::Effect::Replay { .. })));
    let replay = w.held.pop_front().unwrap();
    w.hold_effects = false;
    w.say(a, Target::Room, "live");
    assert!(w.messages(b).is_empty(), "held until the replay is in");
    for input in w.store.run(replay) {
        w.hub.handle_input(w.now, input);
    }
    w.run();
    assert_eq!(
        w.messages(b),
        [(MessageId(2), "alice".to_string(), "live".to_string())]
    );
}

#[test]
fn a_dm_to_an_offline_user_is_delivered_at_their_next_login() {
    let mut w = world(&["alice", "bob"]);
    let a = w.login("alice", false);
    let b = w.login("bob", false);
    w.say(a, Target::User(name("bob")), "seen live");
    w.disconnect(b);
    w.say(a, Target::User(name("bob")), "while away 1");
    w.say(a, Target::Room, "room chatter");
    w.say(a, Target::User(name("bob")), "while away 2");
    let b = w.login("bob", false);
    let bodies: Vec<String> = w.messages(b).into_iter().map(|m| m.2).collect();
    assert_eq!(bodies, ["while away 1", "while away 2"]);
}

#[test]
fn history_pages_walk_back_without_gaps_or_repeats() {
    let mut w = world(&["alice"]);
    let a = w.login("alice", false);
    for i in 0..25 {
        w.say(a, Target::Room, &format!("m{i}"));
    }
    let mut before = MessageId(0);
    let mut seen = Vec::new();
    loop {
        let r = w.reference();
        w.send(
            a,
            &Frame::HistoryRequest {
                reference: r,
                target: Target::Room,
                before,
                limit: 10,
            },
        );
        let Some(Got::History { ids, more, .. }) = w.peers[a]
            .got
            .iter()
            .rev()
            .find(|g| matches!(g, Got::History { reference, .. } if *reference == r))
            .cloned()
        else {
            panic!("no page");
        };
        seen.extend(ids.iter().copied());
        if !more {
            break;
        }
        before = *ids.last().unwrap();
    }
    let want: Vec<MessageId> = (1..=25).rev().map(MessageId).collect();
    assert_eq!(seen, want);
}

#[test]
fn a_stored_message_is_delivered_even_if_its_sender_left_before_the_commit() {
    let mut w = world(&["alice", "bob"]);
    let a = w.login("alice", false);
    let b = w.login("bob", false);
    w.hold_effects = true;
    w.say(a, Target::Room, "parting words");
    w.hold_effects = false;
    w.disconnect(a);
    w.release();
    assert_eq!(
        w.messages(b),
        [(
            MessageId(1),
            "alice".to_string(),
            "parting words".to_string()
        )]
    );
}

#[test]
fn a_replay_asks_storage_for_at_most_the_configured_number_of_messages() {
    let mut w = World::with_accounts(
        Config {
            replay_max: 7,
            ..Config::default()
        },
        &["alice", "bob"],
    );
    let a = w.login("alice", false);
    w.say(a, Target::Room, "old");
    let b = w.connect();
    w.hold_effects = true;
    w.login_peer(b, "bob", MessageId(0), false);
    w.release();
    assert!(matches!(
        w.held.front(),
        Some(crate::Effect::Replay { max: 7, .. })
    ));
}
