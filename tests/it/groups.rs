//! Groups: create, join, send, leave, list.

use serde_json::{json, Value};

use crate::harness::Server;

fn group_event(
    change: &'static str,
    group: &'static str,
    user: &'static str,
) -> impl Fn(&Value) -> bool {
    move |v| v["event"] == change && v["group"] == group && v["user"] == user
}

#[test]
fn group_messages_reach_members_only_until_they_leave() {
    let server = Server::start();
    let mut alice_l = server.client("alice").listen();
    let mut bob_l = server.client("bob").listen();
    let mut carol_l = server.client("carol").listen();
    let (alice, bob, carol) = (
        server.client("alice"),
        server.client("bob"),
        server.client("carol"),
    );

    alice.run(&["group", "create", "dev"]).ok();
    bob.run(&["group", "join", "dev"]).ok();
    alice_l.wait_for("bob joined dev", group_event("joined", "dev", "bob"));

    let id = alice.send("#dev", "for devs");
    let m = bob_l.wait_message("for devs");
    assert_eq!(
        (m["id"].clone(), m["from"].clone(), m["to"].clone()),
        (json!(id), json!("alice"), json!("#dev"))
    );
    alice_l.wait_message("for devs");

    // A non-member can neither send to the group nor read along.
    let run = carol.run(&["send", "--to", "#dev", "let me in"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("NOT_A_MEMBER"), "{run:?}");
    alice.send("all", "barrier 1");
    carol_l.wait_message("barrier 1");
    carol_l.assert_no_message("for devs");
    carol_l.assert_not_seen("a group event", |v| {
        v["event"] == "joined" || v["event"] == "left"
    });
    bob_l.assert_no_message("let me in");

    bob.run(&["group", "leave", "dev"]).ok();
    alice_l.wait_for("bob left dev", group_event("left", "dev", "bob"));
    alice.send("#dev", "after bob left");
    alice_l.wait_message("after bob left");
    alice.send("all", "barrier 2");
    bob_l.wait_message("barrier 2");
    bob_l.assert_no_message("after bob left");

    let groups = carol.run(&["group", "list"]).json_lines();
    assert_eq!(
        groups,
        [json!({"event": "group", "name": "dev", "members": 1, "member": false})]
    );
}

#[test]
fn group_requests_that_cannot_succeed_are_refused_with_their_code() {
    let server = Server::start();
    let alice = server.client("alice");
    let bob = server.client("bob");
    alice.run(&["group", "create", "dev"]).ok();
    #[track_caller]
    fn refused(run: crate::harness::Run, code: &str) {
        assert_eq!(run.code, Some(2), "{run:?}");
        assert!(run.stderr.contains(code), "expected {code}: {run:?}");
    }
    refused(bob.run(&["group", "create", "DEV"]), "GROUP_EXISTS");
    refused(bob.run(&["group", "join", "ops"]), "NO_SUCH_GROUP");
    refused(bob.run(&["group", "leave", "dev"]), "NOT_A_MEMBER");
    refused(alice.run(&["group", "join", "dev"]), "ALREADY_MEMBER");
    refused(
        bob.run(&["send", "--to", "#ops", "anyone?"]),
        "NO_SUCH_GROUP",
    );
    let groups = alice.run(&["group", "list"]).json_lines();
    assert_eq!(
        groups,
        [json!({"event": "group", "name": "dev", "members": 1, "member": true})]
    );
}
