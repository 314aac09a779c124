//! The room, and the roster: who is online.

use std::time::Duration;

use confab::{Event, LoginOptions};
use confab_engine::{MessageId, Name, Target};
use serde_json::Value;

use crate::harness::{Listener, Server, WAIT};

fn is(event: &'static str, user: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["event"] == event && v["user"] == user
}

fn count(l: &Listener, pred: impl Fn(&Value) -> bool) -> usize {
    l.seen().iter().filter(|v| pred(v)).count()
}

#[test]
fn a_room_message_reaches_every_other_session_once() {
    let server = Server::start();
    let mut alice = server.client("alice").listen();
    let mut bob = server.client("bob").listen();
    let mut alice_again = server.client("alice").listen();
    let id = server.client("alice").send("all", "hello room");
    for l in [&mut alice, &mut bob, &mut alice_again] {
        let m = l.wait_message("hello room");
        assert_eq!(m["id"], id);
        assert_eq!(m["from"], "alice");
        assert_eq!(m["to"], "all");
        assert!(m["ts"].as_u64().is_some_and(|ts| ts > 1_600_000_000_000));
    }
    server.client("carol").send("all", "barrier");
    for l in [&mut alice, &mut bob, &mut alice_again] {
        l.wait_message("barrier");
        assert_eq!(count(l, |v| v["body"] == "hello room"), 1, "delivered once");
    }
}

#[test]
fn the_roster_starts_with_a_snapshot_and_continues_with_numbered_deltas() {
    let server = Server::start();
    let _alice = server.client("alice").listen();
    let _bob = server.client("bob").listen();
    let mut carol = server.client("carol").listen_with(&[]);
    let snapshot = carol.wait_for("roster", |v| v["event"] == "roster");
    assert_eq!(
        snapshot["users"],
        serde_json::json!(["alice", "bob", "carol"])
    );
    let v = snapshot["version"].as_u64().expect("a version");

    let mut dave = server.client("dave").listen();
    let online = carol.wait_for("dave online", is("online", "dave"));
    assert_eq!(online["version"], v + 1);
    dave.kill();
    let offline = carol.wait_for("dave offline", is("offline", "dave"));
    assert_eq!(offline["version"], v + 2);

    // The snapshot came first, and nothing else changed in between.
    let first_change = carol
        .seen()
        .iter()
        .position(|v| v["event"] == "online" || v["event"] == "offline");
    let snapshot_at = carol.seen().iter().position(|v| v["event"] == "roster");
    assert!(snapshot_at < first_change, "{:?}", carol.seen());
    assert_eq!(count(&carol, |v| v["event"] == "online"), 1);
}

#[test]
fn users_coming_and_going_show_as_online_and_offline_once_per_user() {
    let server = Server::start();
    let mut alice = server.client("alice").listen();
    let mut bob = server.client("bob").listen();
    alice.wait_for("bob online", is("online", "bob"));
    // A second session of bob does not make him "more" online.
    let mut bob_again = server.client("bob").listen();
    let snapshot = bob_again.wait_for("roster", |v| v["event"] == "roster");
    assert_eq!(snapshot["users"], serde_json::json!(["alice", "bob"]));
    bob.kill();
    bob_again.kill();
    alice.wait_for("bob offline", is("offline", "bob"));
    // Barrier: carol's arrival is the next change.
    let _carol = server.client("carol").listen();
    alice.wait_for("carol online", is("online", "carol"));
    assert_eq!(count(&alice, is("online", "bob")), 1);
    assert_eq!(count(&alice, is("offline", "bob")), 1);
    assert_eq!(count(&alice, is("offline", "alice")), 0);
}

#[test]
fn logging_out_ends_the_session_and_takes_the_user_offline() {
    let server = Server::start();
    let mut alice = server.client("alice").listen();
    server.register("bob", "bob-secret");
    let mut bob = server.connect();
    let options = LoginOptions {
        resume_after: MessageId(0),
        roster: false,
    };
    bob.login(
        Name::new("bob").expect("valid"),
        "bob-secret",
        options,
        WAIT,
    )
    .expect("bob logs in");
    alice.wait_for("bob online", is("online", "bob"));
    bob.logout(WAIT).expect("the server answers LOGOUT with OK");
    // The server closes the connection after the OK.
    let end = loop {
        match bob.next_event(WAIT) {
            Ok(Some(Event::ServerHello(_) | Event::CaughtUp { .. })) => continue,
            Ok(other) => panic!("after logout: {other:?}"),
            Err(e) => break e,
        }
    };
    assert!(matches!(end, confab::ConnectionError::Closed), "{end:?}");
    alice.wait_for("bob offline", is("offline", "bob"));
    // A logged-out session can no longer send.
    assert!(bob.send(Target::Room, "ghost", WAIT).is_err());
}

#[test]
fn a_client_killed_mid_stream_leaves_the_roster_and_the_others_carry_on() {
    let server = Server::start();
    let mut alice = server.client("alice").listen();
    let mut bob = server.client("bob").listen();
    alice.wait_for("bob online", is("online", "bob"));
    server.register("dave", "dave-secret");
    let mut dave = server.connect();
    let options = LoginOptions {
        resume_after: MessageId(0),
        roster: false,
    };
    dave.login(
        Name::new("dave").expect("valid"),
        "dave-secret",
        options,
        WAIT,
    )
    .expect("dave logs in");
    let body = |i: usize| format!("stream {i}");
    dave.send(Target::Room, &body(0), WAIT).expect("stored");
    bob.wait_message(&body(0));
    bob.kill();
    // Keep streaming while the server notices bob is gone.
    for i in 1..30 {
        dave.send(Target::Room, &body(i), Duration::from_secs(10))
            .expect("stored");
    }
    alice.wait_for("bob offline", is("offline", "bob"));
    for i in 0..30 {
        alice.wait_message(&body(i));
    }
    let order: Vec<String> = alice
        .seen()
        .iter()
        .filter(|v| v["event"] == "message")
        .map(|v| v["body"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        order,
        (0..30).map(body).collect::<Vec<_>>(),
        "all, in order"
    );
    assert_eq!(count(&alice, |v| v["event"] == "error"), 0);
}
