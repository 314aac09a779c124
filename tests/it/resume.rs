//! Resuming after a reconnect, and reading direct-message history.

use serde_json::Value;

use crate::harness::{password, Server};

fn bodies(lines: &[Value]) -> Vec<&str> {
    lines
        .iter()
        .filter(|v| v["event"] == "message")
        .map(|v| v["body"].as_str().unwrap_or_default())
        .collect()
}

#[test]
fn resuming_after_an_id_replays_exactly_the_newer_messages_then_catches_up() {
    let server = Server::start();
    server.register("carol", &password("carol"));
    let alice = server.client("alice");
    let bob = server.client("bob");
    bob.send("all", "old news");
    let seen = alice.send("all", "already seen");
    alice.send("all", "missed 1");
    alice.send("@bob", "missed dm");
    let newest = alice.send("@carol", "not for bob");

    let mut l = bob.listen_with(&["--resume-after", &seen.to_string()]);
    let caught_up = l.wait_for("caught_up", |v| v["event"] == "caught_up");
    assert_eq!(caught_up["last_id"], newest);
    let at = l
        .seen()
        .iter()
        .position(|v| v["event"] == "caught_up")
        .expect("seen");
    // Each conversation's messages come in id order; across conversations
    // direct messages may overtake room messages (they have priority).
    let mut replayed = bodies(&l.seen()[..at]);
    replayed.sort_unstable();
    assert_eq!(replayed, ["missed 1", "missed dm"]);

    // Live messages follow the replay, and nothing comes twice.
    alice.send("all", "live");
    l.wait_message("live");
    let mut all = bodies(l.seen());
    all.sort_unstable();
    assert_eq!(all, ["live", "missed 1", "missed dm"]);
}

#[test]
fn dm_history_shows_both_directions_to_the_two_parties_only() {
    let server = Server::start();
    let (alice, bob, carol) = (
        server.client("alice"),
        server.client("bob"),
        server.client("carol"),
    );
    bob.send("all", "hello");
    alice.send("@bob", "a to b");
    bob.send("@alice", "b to a");
    carol.send("@bob", "c to b");

    let page = alice.run(&["history", "--to", "@bob"]).json_lines();
    let got: Vec<(&Value, &Value, &Value)> = page
        .iter()
        .filter(|v| v["event"] == "message")
        .map(|v| (&v["from"], &v["to"], &v["body"]))
        .collect();
    assert_eq!(
        got,
        [
            (&"alice".into(), &"@bob".into(), &"a to b".into()),
            (&"bob".into(), &"@alice".into(), &"b to a".into()),
        ]
    );
    assert_eq!(
        page.last().map(|v| &v["event"]),
        Some(&"history_end".into())
    );

    let unrelated = carol.run(&["history", "--to", "@alice"]).json_lines();
    assert_eq!(bodies(&unrelated), Vec::<&str>::new());
}
