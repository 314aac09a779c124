//! The hub's behaviours, one scenario each, through the deterministic world.

use std::sync::Arc;
use std::time::Duration;

use super::util::{name, Got, World};
use crate::frame::*;
use crate::id::{MessageId, Ref};
use crate::{decode, Config, Phase, Source};

fn world(users: &[&str]) -> World {
    World::with_accounts(Config::default(), users)
}

#[test]
fn login_passes_through_roster_sync_to_messaging_once_the_snapshot_is_acked() {
    let mut w = world(&["alice"]);
    let a = w.connect();
    assert_eq!(w.hub.phase(w.peers[a].conn), Some(Phase::Auth));
    w.peers[a].reading = false;
    w.login_peer(a, "alice", MessageId(0), true);
    assert_eq!(w.hub.phase(w.peers[a].conn), Some(Phase::RosterSync));
    w.peers[a].reading = true;
    w.run();
    assert_eq!(w.hub.phase(w.peers[a].conn), Some(Phase::Messaging));
    let got = &w.peers[a].got;
    assert!(matches!(got[0], Got::ServerHello(_)));
    assert!(matches!(&got[1], Got::LoginOk(_, u) if u == "alice"));
    // In the order the protocol gives, though the replay (here: offline
    // direct messages, none) was answered before the client read anything.
    assert!(
        matches!(&got[2], Got::Snapshot { last: true, .. }),
        "{got:?}"
    );
    assert_eq!(got[3], Got::CaughtUp(MessageId(0)), "{got:?}");
    assert_eq!(w.peers[a].roster, ["alice".to_string()].into());
}

#[test]
fn a_wrong_password_is_refused_and_the_session_may_try_again() {
    let mut w = world(&["alice"]);
    let a = w.connect();
    let reference = w.reference();
    w.send(
        a,
        &Frame::Login {
            reference,
            user: name("alice"),
            password: Text::new("nope").unwrap(),
            resume_after: MessageId(0),
            roster: false,
        },
    );
    assert!(w.peers[a].got.contains(&Got::Error {
        code: ErrorCode::BadCredentials,
        reference,
        retry_after_ms: 0
    }));
    assert_eq!(w.hub.phase(w.peers[a].conn), Some(Phase::Auth));
    w.login_peer(a, "ALICE", MessageId(0), false);
    assert_eq!(w.hub.phase(w.peers[a].conn), Some(Phase::Messaging));
    assert_eq!(
        w.hub.user(w.peers[a].conn),
        Some(name("alice")),
        "the registered spelling wins"
    );
}

#[test]
fn a_frame_out_of_state_gets_wrong_state_and_the_connection_stays_open() {
    let mut w = world(&["alice"]);
    let a = w.connect();
    let r = w.say(a, Target::Room, "too early");
    assert_eq!(
        w.peers[a].got.last(),
        Some(&Got::Error {
            code: ErrorCode::WrongState,
            reference: r,
            retry_after_ms: 0
        })
    );
    w.send(a, &Frame::Ok { reference: Ref(9) });
    assert_eq!(w.errors(a), [ErrorCode::WrongState, ErrorCode::WrongState]);
    w.login_peer(a, "alice", MessageId(0), false);
    assert_eq!(w.hub.phase(w.peers[a].conn), Some(Phase::Messaging));
}

#[test]
fn send_is_refused_until_the_roster_snapshot_is_acked() {
    let mut w = world(&["alice"]);
    let a = w.connect();
    w.peers[a].reading = false;
    w.login_peer(a, "alice", MessageId(0), true);
    let r = w.say(a, Target::Room, "hi");
    w.read(a);
    assert!(w.peers[a].got.contains(&Got::Error {
        code: ErrorCode::WrongState,
        reference: r,
        retry_after_ms: 0
    }));
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
fn an_oversized_frame_before_login_is_refused_from_its_header_and_closes() {
    let mut w = world(&[]);
    let a = w.connect();
    let used = w.send_bytes(a, &[0, 0, 0x10, 0]);
    assert_eq!(used, 4);
    assert_eq!(w.errors(a), [ErrorCode::FrameTooLarge]);
    assert!(w.peers[a].closed);
}

#[test]
fn garbage_gets_malformed_frame_and_a_close() {
    let mut w = world(&[]);
    let a = w.connect();
    w.send_bytes(a, &[0, 0, 0, 3, kind::PING, 1, 2]);
    assert_eq!(w.errors(a), [ErrorCode::MalformedFrame]);
    assert!(w.peers[a].closed);
}

#[test]
fn an_unknown_frame_type_is_skipped_with_an_error_and_the_session_goes_on() {
    let mut w = world(&["alice"]);
    let a = w.connect();
    w.send_bytes(a, &[0, 0, 0, 3, 0x3f, 1, 2]);
    assert_eq!(w.errors(a), [ErrorCode::UnknownFrameType]);
    assert!(!w.peers[a].closed);
    w.login_peer(a, "alice", MessageId(0), false);
    assert_eq!(w.hub.phase(w.peers[a].conn), Some(Phase::Messaging));
}

#[test]
fn a_client_that_does_not_log_in_in_time_is_closed() {
    let mut w = world(&[]);
    let a = w.connect();
    w.advance(Duration::from_secs(9));
    assert!(!w.peers[a].closed);
    w.advance(Duration::from_secs(2));
    assert_eq!(w.errors(a), [ErrorCode::AuthTimeout]);
    assert!(w.peers[a].closed);
}

#[test]
fn an_idle_session_is_pinged_and_kept_if_it_answers_and_closed_if_not() {
    let mut w = world(&["alice", "bob"]);
    let a = w.login("alice", false);
    let b = w.login("bob", false);
    w.peers[b].reading = false; // never answers
    w.advance(Duration::from_secs(61));
    assert!(w.peers[a].got.iter().any(|g| matches!(g, Got::Ping(_))));
    w.advance(Duration::from_secs(120));
    assert!(!w.peers[a].closed, "a session that answers pings stays");
    w.read(b);
    assert_eq!(w.errors(b), [ErrorCode::IdleTimeout]);
    assert!(w.peers[b].closed);
}

#[test]
fn half_a_frame_then_silence_is_closed_after_the_frame_timeout() {
    let config = Config {
        frame_timeout: Duration::from_secs(2),
        ..Config::default()
    };
    let mut w = World::with_accounts(config, &["alice"]);
    let a = w.login("alice", false);
    let used = w.send_bytes(a, &[0, 0, 0, 9, kind::PING, 0]);
    assert_eq!(used, 0, "a partial frame is left with the reader");
    w.advance(Duration::from_secs(3));
    assert_eq!(w.errors(a), [ErrorCode::FrameTimeout]);
    assert!(w.peers[a].closed);
}

#[test]
fn a_client_whose_writes_split_frames_is_never_cut() {
    // A bot sending 10 messages a second, each write ending with the first
    // bytes of the next frame: every frame completes within 100 ms, so the
    // frame timeout (10 s by default) must never fire, however long it runs.
    let mut w = world(&["bot", "bob"]);
    let bot = w.login("bot", false);
    let bob = w.login("bob", false);
    let frame = |i: u32| {
        Frame::Send {
            reference: Ref(i),
            target: Target::Room,
            body: Text::new("tick").unwrap(),
        }
        .to_bytes()
    };
    let mut pending: Vec<u8> = Vec::new();
    let mut next = frame(1);
    for i in 1..=300u32 {
        // The rest of frame i, then the first 3 bytes of frame i + 1.
        pending.extend_from_slice(&next);
        next = frame(i + 1);
        let head: Vec<u8> = next.drain(..3).collect();
        pending.extend_from_slice(&head);
        let used = w.send_bytes(bot, &pending);
        pending.drain(..used);
        w.advance(Duration::from_millis(100));
        assert!(
            !w.peers[bot].closed,
            "cut after {i} frames: {:?}",
            w.errors(bot)
        );
    }
    assert_eq!(w.errors(bot), []);
    assert_eq!(w.messages(bob).len(), 300);
}

#[test]
fn a_flooder_is_paused_told_and_finally_disconnected_while_others_are_served() {
    let config = Config {
        msg_rate: 10,
        msg_burst: 5,
        flood_timeout: Duration::from_secs(5),
        ..Config::default()
    };
    let mut w = World::with_accounts(config, &["flood", "bob"]);
    let f = w.login("flood", false);
    let b = w.login("bob", false);
    let mut burst = Vec::new();
    for i in 0..50 {
        Frame::Send {
            reference: Ref(i),
            target: Target::Room,
            body: Text::new("x").unwrap(),
        }
        .encode(&mut burst);
    }
    let used = w.send_bytes(f, &burst);
    assert!(
        used < burst.len(),
        "reading pauses once the bucket is empty"
    );
    assert_eq!(w.messages(b).len(), 5, "the burst went through");
    assert_eq!(w.errors(f), [ErrorCode::RateLimited]);
    // The flooder keeps its backlog up: feed the remainder at every pause.
    let mut rest = burst[used..].to_vec();
    for _ in 0..100 {
        if w.peers[f].closed {
            break;
        }
        w.advance(Duration::from_millis(100));
        let used = w.send_bytes(f, &rest);
        rest.drain(..used);
        rest.extend_from_slice(&burst[..used]);
    }
    assert!(w.errors(f).contains(&ErrorCode::Flooding));
    assert!(w.peers[f].closed);
    let r = w.say(b, Target::Room, "still here");
    assert!(w.peers[b]
        .got
        .iter()
        .any(|g| matches!(g, Got::Ack { reference, .. } if *reference == r)));
}

#[test]
fn a_slow_reader_loses_only_room_messages_and_is_told_exactly_which() {
    let config = Config {
        send_queue_bytes: 2000,
        msg_rate: 1000,
        msg_burst: 1000,
        ..Config::default()
    };
    let mut w = World::with_accounts(config, &["alice", "slow", "fast"]);
    let a = w.login("alice", false);
    let s = w.login("slow", false);
    let fast = w.login("fast", false);
    w.peers[s].reading = false;
    for i in 0..100 {
        w.say(a, Target::Room, &format!("message number {i:03}"));
    }
    assert_eq!(
        w.messages(fast).len(),
        100,
        "a slow reader never slows others"
    );
    w.say(a, Target::User(name("slow")), "direct");
    w.peers[s].reading = true;
    w.run();
    let got: Vec<MessageId> = w.messages(s).iter().map(|m| m.0).collect();
    let missed: Vec<_> = w.peers[s]
        .got
        .iter()
        .filter_map(|g| match g {
            Got::Missed {
                target,
                first,
                last,
                count,
            } => Some((*target, *first, *last, *count)),
            _ => None,
        })
        .collect();
    assert_eq!(missed.len(), 1);
    let (target, first, last, count) = missed[0];
    assert_eq!(target, Target::Room);
    assert!(got.contains(&MessageId(101)), "the DM was not dropped");
    let room: Vec<MessageId> = got
        .iter()
        .copied()
        .filter(|id| *id <= MessageId(100))
        .collect();
    assert_eq!(
        room.len() as u32 + count,
        100,
        "every room message is either delivered or reported"
    );
    assert_eq!(
        (first, last),
        (MessageId(room.len() as u64 + 1), MessageId(100)),
        "what was dropped is a contiguous, reported range"
    );
    assert!(!w.peers[s].closed);
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
fn shutdown_notifies_every_session_and_closes_each_after_its_queue() {
    let mut w = world(&["alice", "bob"]);
    let a = w.login("alice", true);
    let b = w.login("bob", false);
    let pending = w.connect();
    w.hub.shutdown(w.now, Duration::from_secs(5), "maintenance");
    w.run();
    for p in [a, b, pending] {
        assert_eq!(w.peers[p].got.last(), Some(&Got::Shutdown), "peer {p}");
        assert!(w.peers[p].closed);
    }
    let late = w.connect();
    assert_eq!(w.peers[late].got.last(), Some(&Got::Shutdown));
    assert!(w.peers[late].closed);
}

#[test]
fn connections_beyond_the_limits_are_refused_with_an_error() {
    let config = Config {
        max_clients: 3,
        max_per_source: 2,
        ..Config::default()
    };
    let mut w = World::new(config);
    let a = w.connect_from(Source(1));
    let b = w.connect_from(Source(1));
    let c = w.connect_from(Source(1));
    assert!(!w.peers[a].closed && !w.peers[b].closed);
    assert_eq!(w.errors(c), [ErrorCode::TooManyConnections]);
    w.disconnect(c);
    let d = w.connect_from(Source(2));
    assert!(!w.peers[d].closed);
    let e = w.connect_from(Source(3));
    assert_eq!(w.errors(e), [ErrorCode::TooManyConnections]);
    w.disconnect(e);
    w.disconnect(a);
    let f = w.connect_from(Source(3));
    assert!(!w.peers[f].closed, "room again once others left");
}

#[test]
fn logout_is_acknowledged_closes_and_leaves_the_roster() {
    let mut w = world(&["alice", "bob"]);
    let a = w.login("alice", true);
    let b = w.login("bob", false);
    let r = w.reference();
    w.send(b, &Frame::Logout { reference: r });
    assert_eq!(w.peers[b].got.last(), Some(&Got::Ok(r)));
    assert!(w.peers[b].closed);
    assert_eq!(w.peers[a].roster, ["alice".to_string()].into());
    assert_eq!(w.hub.online(), [name("alice")]);
}

#[test]
fn requests_beyond_the_in_flight_limit_are_told_busy() {
    let config = Config {
        max_inflight: 2,
        ..Config::default()
    };
    let mut w = World::with_accounts(config, &["alice"]);
    let a = w.login("alice", false);
    w.hold_effects = true;
    w.say(a, Target::Room, "1");
    w.say(a, Target::Room, "2");
    let r = w.say(a, Target::Room, "3");
    assert!(w.peers[a].got.iter().any(
        |g| matches!(g, Got::Error { code: ErrorCode::Busy, reference, .. } if *reference == r)
    ));
    w.hold_effects = false;
    w.release();
    w.say(a, Target::Room, "4");
    assert_eq!(w.store.messages().len(), 3);
}

#[test]
fn a_flooder_whose_reads_run_dry_between_frames_is_still_disconnected_on_time() {
    let config = Config {
        msg_rate: 10,
        msg_burst: 5,
        flood_timeout: Duration::from_secs(2),
        ..Config::default()
    };
    let mut w = World::with_accounts(config, &["flood"]);
    let f = w.login("flood", false);
    let frame = Frame::Send {
        reference: Ref(1),
        target: Target::Room,
        body: Text::new("x").unwrap(),
    }
    .to_bytes();
    let start = w.now;
    // The client writes ten frames at a time, and the server reads the next
    // ten only once it has taken every frame it holds: its buffered input
    // runs dry again and again, though the client never slows down.
    let mut pending: Vec<u8> = Vec::new();
    while !w.peers[f].closed && w.now < start + Duration::from_secs(10) {
        if pending.is_empty() {
            for _ in 0..10 {
                pending.extend_from_slice(&frame);
            }
        }
        let used = w.send_bytes(f, &pending);
        pending.drain(..used);
        if !pending.is_empty() {
            w.advance(Duration::from_millis(20));
        }
    }
    let errors = w.errors(f);
    assert_eq!(
        errors
            .iter()
            .filter(|c| **c == ErrorCode::RateLimited)
            .count(),
        1,
        "{errors:?}"
    );
    assert_eq!(errors.last(), Some(&ErrorCode::Flooding));
    let took = w.now - start;
    assert!(
        took <= Duration::from_millis(2600),
        "disconnected after {took:?}, flood timeout 2 s"
    );
}

#[test]
fn an_account_disconnected_for_flooding_may_not_log_in_again_until_its_penalty_ends() {
    let config = Config {
        msg_rate: 10,
        msg_burst: 5,
        flood_timeout: Duration::from_secs(1),
        flood_penalty: Duration::from_secs(30),
        ..Config::default()
    };
    let mut w = World::with_accounts(config, &["flood", "bob"]);
    let f = w.login("flood", false);
    let mut burst = Vec::new();
    for i in 0..100 {
        Frame::Send {
            reference: Ref(i),
            target: Target::Room,
            body: Text::new("x").unwrap(),
        }
        .encode(&mut burst);
    }
    let mut rest = burst.clone();
    while !w.peers[f].closed {
        let used = w.send_bytes(f, &rest);
        rest.drain(..used);
        rest.extend_from_slice(&burst[..used]);
        w.advance(Duration::from_millis(50));
    }
    assert_eq!(w.errors(f).last(), Some(&ErrorCode::Flooding));
    // Straight back: refused, told when to come back.
    let again = w.connect();
    w.login_peer(again, "flood", MessageId(0), false);
    let refused = w.peers[again].got.iter().find_map(|g| match g {
        Got::Error {
            code: ErrorCode::RateLimited,
            retry_after_ms,
            ..
        } => Some(*retry_after_ms),
        _ => None,
    });
    assert!(
        refused.is_some_and(|ms| ms > 25_000 && ms <= 30_000),
        "{:?}",
        w.peers[again].got
    );
    assert_eq!(w.hub.phase(w.peers[again].conn), Some(Phase::Auth));
    // Others are not affected; after the penalty the flooder may return.
    let b = w.login("bob", false);
    assert_eq!(w.hub.phase(w.peers[b].conn), Some(Phase::Messaging));
    w.advance(Duration::from_secs(31));
    let later = w.connect();
    w.login_peer(later, "flood", MessageId(0), false);
    assert_eq!(w.hub.phase(w.peers[later].conn), Some(Phase::Messaging));
}

#[test]
fn an_idle_session_holds_no_rate_or_timer_state_once_it_has_settled() {
    let mut w = world(&["alice", "bob"]);
    let a = w.login("alice", false);
    let conn = w.peers[a].conn;
    assert_eq!(w.hub.holds_marks(conn), Some(false), "a fresh session");
    w.say(a, Target::Room, "hi");
    assert_eq!(
        w.hub.holds_marks(conn),
        Some(true),
        "its buckets were charged"
    );
    // Past the idle timeout: its buckets are full again, and it is pinged
    // and answers (the world's peers answer pings).
    w.advance(Config::default().idle_timeout + Duration::from_secs(1));
    assert!(w.peers[a].got.iter().any(|g| matches!(g, Got::Ping(_))));
    assert_eq!(w.hub.phase(conn), Some(Phase::Messaging));
    assert_eq!(w.hub.holds_marks(conn), Some(false));
}

#[test]
fn a_drain_says_when_it_emptied_the_queue_and_the_next_frame_then_wakes() {
    let mut w = world(&["alice", "bob"]);
    let a = w.login("alice", false);
    let b = w.login("bob", false);
    w.peers[b].reading = false;
    let conn = w.peers[b].conn;
    for i in 0..3 {
        w.say(a, Target::User(name("bob")), &format!("m{i}"));
    }
    let mut frames = Vec::new();
    // A limit of one byte takes one frame at a time.
    let first = w.hub.drain(conn, &mut frames, 1);
    assert!(first.bytes > 0 && !first.empty, "{first:?}");
    let rest = w.hub.drain(conn, &mut frames, 64 * 1024);
    assert!(rest.bytes > 0 && rest.empty, "{rest:?}");
    assert_eq!(frames.len(), 3);
    while w.hub.poll_output().is_some() {}
    // Parked after that drain, the writer is woken by the next frame.
    w.hub.handle_bytes(
        w.now,
        w.peers[a].conn,
        &Frame::Send {
            reference: Ref(99),
            target: Target::User(name("bob")),
            body: Text::new("m3").unwrap(),
        }
        .to_bytes(),
    );
    let mut woke = false;
    while let Some(out) = w.hub.poll_output() {
        match out {
            crate::Output::Wake(c) if c == conn => woke = true,
            crate::Output::Effect(e) => {
                for input in w.store.run(e) {
                    w.hub.handle_input(w.now, input);
                }
            }
            _ => {}
        }
    }
    assert!(woke);
}

#[test]
fn a_drain_reports_dropped_messages_in_place_and_is_then_empty() {
    let mut w = World::with_accounts(
        Config {
            send_queue_bytes: 16 * 1024,
            ..Config::default()
        },
        &["alice", "bob"],
    );
    let a = w.login("alice", false);
    let b = w.login("bob", false);
    w.peers[b].reading = false;
    let conn = w.peers[b].conn;
    let body = "x".repeat(3000);
    for _ in 0..20 {
        w.say(a, Target::Room, &body);
    }
    let mut frames = Vec::new();
    let all = w.hub.drain(conn, &mut frames, 1 << 20);
    assert!(all.empty, "{all:?}");
    let kinds: Vec<u8> = frames.iter().map(|f| f[4]).collect();
    assert_eq!(kinds.last(), Some(&kind::MISSED), "{kinds:?}");
    assert!(kinds[..kinds.len() - 1].iter().all(|k| *k == kind::MESSAGE));
}

/// What a session received, in order: message ids, and MISSED ranges.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Seen {
    Message(MessageId),
    Missed {
        first: MessageId,
        last: MessageId,
        count: u32,
    },
}

#[test]
fn a_missed_report_comes_before_any_message_newer_than_what_it_reports() {
    let mut w = World::with_accounts(
        Config {
            send_queue_bytes: 8 * 1024,
            msg_rate: 1000,
            msg_burst: 1000,
            ..Config::default()
        },
        &["alice", "bob", "slow"],
    );
    let a = w.login("alice", false);
    let b = w.login("bob", false);
    let slow = w.login("slow", false);
    w.peers[slow].reading = false;
    let conn = w.peers[slow].conn;
    let mut bytes = Vec::new();
    let mut frames: Vec<Arc<[u8]>> = Vec::new();
    for i in 0..300 {
        // Room messages, with now and then a DM (which evicts room messages).
        if i % 7 == 3 {
            w.say(b, Target::User(name("slow")), &format!("dm {i:0500}"));
        } else {
            w.say(a, Target::Room, &format!("room {i:0500}"));
        }
        // A reader that takes a little now and then, never catching up.
        if i % 5 == 0 {
            w.hub.drain(conn, &mut frames, 1500);
        }
    }
    while w.hub.drain(conn, &mut frames, 1 << 20).bytes > 0 {}
    for f in &frames {
        bytes.extend_from_slice(f);
    }
    let mut seen = Vec::new();
    let mut off = 0;
    while let Some((f, n)) = decode(&bytes[off..], u32::MAX).unwrap() {
        off += n;
        match f {
            Frame::Message { id, .. } => seen.push(Seen::Message(id)),
            Frame::Missed {
                first, last, count, ..
            } => seen.push(Seen::Missed { first, last, count }),
            _ => {}
        }
    }
    let reports = seen
        .iter()
        .filter(|s| matches!(s, Seen::Missed { .. }))
        .count();
    assert!(reports >= 1, "the scenario drops messages: {seen:?}");
    let mut newest = MessageId(0);
    let mut delivered = 0u32;
    let mut reported = 0u32;
    for s in &seen {
        match *s {
            Seen::Message(id) => {
                assert!(id > newest, "ids in order");
                newest = id;
                delivered += 1;
            }
            Seen::Missed { first, last, count } => {
                assert!(
                    newest < first,
                    "MISSED {first}..{last} arrived after message {newest}: {seen:?}"
                );
                reported += count;
            }
        }
    }
    assert_eq!(
        delivered + reported,
        300,
        "every message delivered or reported"
    );
}

#[test]
fn a_group_create_at_the_servers_group_cap_gets_a_code_of_its_own_not_busy() {
    let config = Config {
        max_groups: 2,
        ..Config::default()
    };
    let mut w = World::with_accounts(config, &["alice"]);
    let a = w.login("alice", false);
    let mut answers = Vec::new();
    for g in ["one", "two", "three"] {
        let r = w.reference();
        w.send(
            a,
            &Frame::GroupCreate {
                reference: r,
                group: name(g),
            },
        );
        answers.push(w.peers[a].got.iter().rev().find_map(|g| match g {
            Got::Ok(x) if *x == r => Some(None),
            Got::Error {
                code,
                reference,
                retry_after_ms,
            } if *reference == r => Some(Some((*code, *retry_after_ms))),
            _ => None,
        }));
    }
    assert_eq!(
        answers,
        [
            Some(None),
            Some(None),
            Some(Some((ErrorCode::ServerGroupsFull, 0)))
        ],
        "a retry could never succeed, so it is not BUSY"
    );
}

/// An unknown frame type (0x7e) of `len` bytes in all.
fn unknown_frame(len: usize) -> Vec<u8> {
    let mut f = ((len - 4) as u32).to_be_bytes().to_vec();
    f.push(0x7e);
    f.resize(len, 0);
    f
}

/// Feeds `input` again and again (as a reader whose socket is always full)
/// for `secs` of virtual time; returns the bytes the hub took.
fn flood(w: &mut World, p: usize, input: &[u8], secs: u64) -> usize {
    let mut taken = 0;
    let mut pending = input.to_vec();
    for _ in 0..secs * 10 {
        if w.peers[p].closed {
            break;
        }
        // A reader keeps reading while the hub takes bytes; bounded, as a
        // socket's buffer is.
        for _ in 0..100 {
            let used = w.send_bytes(p, &pending);
            taken += used;
            pending.drain(..used);
            pending.extend_from_slice(&input[..used.min(input.len())]);
            if used == 0 || w.peers[p].closed {
                break;
            }
        }
        w.advance(Duration::from_millis(100));
    }
    taken
}

#[test]
fn unknown_frame_types_are_paid_for_from_the_byte_budget_and_a_flood_of_them_is_cut() {
    let mut w = world(&["alice"]);
    let a = w.login("alice", false);
    let frames: Vec<u8> = (0..8).flat_map(|_| unknown_frame(60_000)).collect();
    let taken = flood(&mut w, a, &frames, 12);
    let c = Config::default();
    // At most the burst and 12 s of the byte rate (the flood is cut at 10 s).
    let allowed = c.byte_burst as usize + 12 * c.byte_rate as usize;
    assert!(
        taken <= allowed,
        "took {taken} bytes, the budget is {allowed}"
    );
    let errors = w.errors(a);
    assert!(errors.contains(&ErrorCode::RateLimited), "{errors:?}");
    assert_eq!(errors.last(), Some(&ErrorCode::Flooding));
    assert!(w.peers[a].closed);
}

#[test]
fn a_ping_flood_after_login_is_bounded_by_the_byte_budget() {
    let mut w = world(&["alice"]);
    let a = w.login("alice", false);
    let pings: Vec<u8> = (0..1000u64)
        .flat_map(|token| Frame::Ping { token }.to_bytes())
        .collect();
    flood(&mut w, a, &pings, 5);
    let pongs = w.peers[a]
        .got
        .iter()
        .filter(|g| matches!(g, Got::Pong(_)))
        .count();
    let c = Config::default();
    let allowed = (c.byte_burst + 5 * c.byte_rate) / c.min_frame_charge;
    assert!(
        pongs as u32 <= allowed,
        "{pongs} PINGs answered in 5 s, the budget is {allowed}"
    );
    assert!(w.errors(a).contains(&ErrorCode::RateLimited));
}

#[test]
fn a_session_that_floods_before_logging_in_is_closed_after_a_few_frames() {
    for flood_frame in [
        Frame::Ping { token: 7 }.to_bytes(),
        Frame::Send {
            reference: Ref(1),
            target: Target::Room,
            body: Text::new("x").unwrap(),
        }
        .to_bytes(),
        unknown_frame(100),
    ] {
        let mut w = world(&["alice"]);
        let a = w.connect();
        let burst: Vec<u8> = (0..100).flat_map(|_| flood_frame.clone()).collect();
        flood(&mut w, a, &burst, 1);
        let answered = w.peers[a]
            .got
            .iter()
            .filter(|g| matches!(g, Got::Pong(_) | Got::Error { .. }))
            .count();
        let burst = usize::from(Config::default().pre_auth_burst);
        assert!(answered <= burst + 1, "{answered} frames answered");
        assert_eq!(w.errors(a).last(), Some(&ErrorCode::Flooding));
        assert!(w.peers[a].closed);
    }
    // Logging in, even after a wrong password and a PING, is well within it.
    let mut w = world(&["alice"]);
    let a = w.connect();
    w.send(a, &Frame::Ping { token: 1 });
    let r = w.reference();
    w.send(
        a,
        &Frame::Login {
            reference: r,
            user: name("alice"),
            password: Text::new("wrong").unwrap(),
            resume_after: MessageId(0),
            roster: false,
        },
    );
    w.login_peer(a, "alice", MessageId(0), false);
    assert_eq!(w.hub.phase(w.peers[a].conn), Some(Phase::Messaging));
}

/// Peer `p` registers `user`; the answer: None for OK, else the error.
fn register(w: &mut World, p: usize, user: &str) -> Option<(ErrorCode, u32)> {
    let r = w.reference();
    w.send(
        p,
        &Frame::Register {
            reference: r,
            user: name(user),
            password: Text::new("pw").unwrap(),
        },
    );
    w.peers[p]
        .got
        .iter()
        .rev()
        .find_map(|g| match g {
            Got::Ok(x) if *x == r => Some(None),
            Got::Error {
                code,
                reference,
                retry_after_ms,
            } if *reference == r => Some(Some((*code, *retry_after_ms))),
            _ => None,
        })
        .expect("REGISTER is answered")
}

#[test]
fn one_address_may_create_only_its_share_of_accounts_and_is_told_when_to_retry() {
    let mut w = world(&["taken"]);
    let limit = Config::default().registrations_per_source;
    let spammer = Source(99);
    let mut refused = None;
    for i in 0..100 {
        let p = w.connect_from(spammer);
        // A taken name costs the same: probing names is no faster.
        let user = if i % 2 == 0 {
            "taken".to_owned()
        } else {
            format!("spam{i}")
        };
        if let Some((ErrorCode::RateLimited, ms)) = register(&mut w, p, &user) {
            refused = Some((i, ms));
            break;
        }
        w.disconnect(p);
    }
    let (after, ms) = refused.expect("registrations from one address are limited");
    assert_eq!(after, usize::from(limit.burst));
    assert!(ms > 0 && u64::from(ms) <= limit.every.as_millis() as u64);
    // Another address is not held back by it.
    let other = w.connect();
    assert_eq!(register(&mut w, other, "newcomer"), None);
    // And the spammer's address may create one more once the interval passed.
    w.advance(limit.every);
    let p = w.connect_from(spammer);
    assert_eq!(register(&mut w, p, "patient"), None);
}

#[test]
fn the_server_wide_registration_limit_holds_against_many_addresses() {
    let mut w = world(&[]);
    let limit = Config::default().registrations_per_server;
    let mut created = 0;
    for i in 0..200u128 {
        let p = w.connect_from(Source(1000 + i));
        match register(&mut w, p, &format!("user{i}")) {
            None => created += 1,
            Some((code, ms)) => {
                assert_eq!(code, ErrorCode::RateLimited);
                assert!(ms > 0);
            }
        }
        w.disconnect(p);
    }
    assert_eq!(created, usize::from(limit.burst));
}

#[test]
fn admission_refuses_beyond_the_limits_without_creating_a_session() {
    let config = Config {
        max_clients: 3,
        max_per_source: 2,
        ..Config::default()
    };
    let mut w = World::new(config);
    assert!(w.hub.admit(w.now, Source(1)).is_ok());
    let a = w.connect_from(Source(1));
    w.connect_from(Source(1));
    let refused = w.hub.admit(w.now, Source(1)).expect_err("per source");
    assert_eq!(refused.reason, crate::TurnedAway::PerSource);
    let (frame, used) = crate::decode(&refused.frame, u32::MAX)
        .expect("a frame")
        .expect("whole");
    assert_eq!(used, refused.frame.len());
    assert!(
        matches!(
            frame,
            Frame::Error {
                code: ErrorCode::TooManyConnections,
                reference: Ref(0),
                ..
            }
        ),
        "{frame:?}"
    );
    // Refusing counted nothing: another source still fits, then the total.
    assert_eq!(w.hub.connections(), 2);
    assert!(w.hub.admit(w.now, Source(2)).is_ok());
    w.connect_from(Source(2));
    let full = w.hub.admit(w.now, Source(3)).expect_err("full");
    assert_eq!(full.reason, crate::TurnedAway::Full);
    w.disconnect(a);
    assert!(
        w.hub.admit(w.now, Source(3)).is_ok(),
        "room again once one left"
    );
    assert!(w.hub.admit(w.now, Source(1)).is_ok());
}

#[test]
fn an_address_whose_connection_flooded_before_login_is_turned_away_for_the_flood_penalty() {
    let mut w = world(&["alice"]);
    let attacker = Source(66);
    let a = w.connect_from(attacker);
    let pings: Vec<u8> = (0..50u64)
        .flat_map(|token| Frame::Ping { token }.to_bytes())
        .collect();
    w.send_bytes(a, &pings);
    assert_eq!(w.errors(a).last(), Some(&ErrorCode::Flooding));
    let refused = w.hub.admit(w.now, attacker).expect_err("barred");
    assert_eq!(refused.reason, crate::hub::TurnedAway::Flooded);
    let (f, _) = decode(&refused.frame, u32::MAX).unwrap().unwrap();
    assert!(
        matches!(f, Frame::Error { code: ErrorCode::TooManyConnections, retry_after_ms, .. } if retry_after_ms > 0),
        "{f:?}"
    );
    // Other addresses are not; the attacker's is again after the penalty.
    assert!(w.hub.admit(w.now, Source(67)).is_ok());
    w.advance(Config::default().flood_penalty);
    assert!(w.hub.admit(w.now, attacker).is_ok());
}

#[test]
fn an_address_may_hold_only_a_few_connections_that_have_not_logged_in() {
    let mut w = world(&["alice"]);
    let cap = Config::default().max_pre_auth_per_source as usize;
    let source = Source(5);
    let waiting: Vec<usize> = (0..cap).map(|_| w.connect_from(source)).collect();
    let refused = w.hub.admit(w.now, source).expect_err("all of them waiting");
    let (f, _) = decode(&refused.frame, u32::MAX).unwrap().unwrap();
    assert!(matches!(
        f,
        Frame::Error {
            code: ErrorCode::TooManyConnections,
            ..
        }
    ));
    assert!(
        w.hub.admit(w.now, Source(6)).is_ok(),
        "other addresses are not held back"
    );
    // One logs in: it no longer counts, and there is room for another.
    w.login_peer(waiting[0], "alice", MessageId(0), false);
    assert_eq!(
        w.hub.phase(w.peers[waiting[0]].conn),
        Some(Phase::Messaging)
    );
    assert!(w.hub.admit(w.now, source).is_ok());
    let again = w.connect_from(source);
    assert!(w.hub.admit(w.now, source).is_err());
    // One that leaves without logging in makes room too.
    w.disconnect(again);
    assert!(w.hub.admit(w.now, source).is_ok());
    // And a logged-in one leaving does not count twice.
    w.disconnect(waiting[0]);
    assert!(w.hub.admit(w.now, source).is_ok());
    let extra = w.connect_from(source);
    assert!(w.hub.admit(w.now, source).is_err(), "still {cap} waiting");
    w.disconnect(extra);
}

#[test]
fn a_fatal_error_is_the_last_frame_even_with_messages_queued() {
    let mut w = world(&["alice", "bob"]);
    let a = w.login("alice", false);
    let b = w.login("bob", false);
    w.peers[b].reading = false;
    for i in 0..5 {
        w.say(a, Target::Room, &format!("m{i}"));
    }
    // Garbage from bob while his messages wait to be written.
    w.send_bytes(b, &[0, 0, 0, 3, kind::PING, 1, 2]);
    w.peers[b].reading = true;
    w.run();
    assert_eq!(w.messages(b).len(), 5, "what was queued is still written");
    assert!(
        matches!(
            w.peers[b].got.last(),
            Some(Got::Error {
                code: ErrorCode::MalformedFrame,
                ..
            })
        ),
        "{:?}",
        w.peers[b].got
    );
    assert!(w.peers[b].closed);
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

#[test]
fn holds_request_says_whether_unread_bytes_hold_a_whole_frame() {
    let mut w = world(&[]);
    let a = w.connect();
    let conn = w.peers[a].conn;
    let ping = Frame::Ping { token: 1 }.to_bytes();
    assert!(w.hub.holds_request(conn, &ping));
    assert!(!w.hub.holds_request(conn, &ping[..ping.len() - 1]));
    assert!(!w.hub.holds_request(conn, &ping[..3]));
    assert!(!w.hub.holds_request(conn, &[]));
}
