//! Deleted messages and announcements (issue 20): from an operator's
//! client and from the command line through the control socket (or the
//! database alone when no server runs), what listeners are told, what
//! history keeps across a restart, and the refusal for anyone else.

use serde_json::Value;

use crate::harness::{password, Server};

fn history(server: &Server, user: &str) -> Vec<Value> {
    server
        .client(user)
        .run(&["history", "--to", "all"])
        .json_lines()
}

/// The history entry with `id`.
fn entry(lines: &[Value], id: u64) -> Value {
    lines
        .iter()
        .find(|v| v["event"] == "message" && v["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no message {id} in history: {lines:?}"))
}

fn operator(server: &Server, user: &str) {
    server.register(user, &password(user));
    server.user_command(&["op", user], None).ok();
}

#[test]
fn an_operators_client_deletes_a_message_listeners_hide_it_and_history_keeps_a_tombstone() {
    let server = Server::start();
    operator(&server, "carol");
    let mut dave = server.client("dave").listen();
    // Not the first message: a resume after the one before it replays it.
    server.client("bob").send("all", "hello");
    let spam = server.client("bob").send("all", "cheap watches here");
    let kept = server.client("bob").send("all", "sorry about that");
    dave.wait_message("sorry about that");

    let refused = server.client("mallory").run(&["delete", &spam.to_string()]);
    assert_ne!(refused.code, Some(0), "{refused:?}");
    assert!(refused.stderr.contains("NOT_OPERATOR"), "{refused:?}");
    assert_eq!(
        entry(&history(&server, "dave"), spam)["body"],
        "cheap watches here"
    );

    let run = server
        .client("carol")
        .run(&["delete", &spam.to_string(), "--reason", "spam"]);
    assert!(run.ok().contains(r#""action":"delete""#), "{run:?}");
    let told = dave.wait_for("deleted", |v| v["event"] == "deleted" && v["id"] == spam);
    assert_eq!(told["by"], "carol", "{told}");

    let check = |server: &Server| {
        let lines = history(server, "dave");
        let gone = entry(&lines, spam);
        assert_eq!(gone["body"], "", "{gone}");
        assert_eq!(gone["deleted"], true, "{gone}");
        assert_eq!(
            gone["from"], "bob",
            "the tombstone keeps its sender: {gone}"
        );
        assert_eq!(entry(&lines, kept)["body"], "sorry about that");
    };
    check(&server);
    let server = server.restart();
    check(&server);

    // A resumed session gets the tombstone and who deleted it.
    let mut late = server
        .client("erin")
        .listen_with(&["--resume-after", &(spam - 1).to_string()]);
    late.wait_for("the tombstone", |v| v["id"] == spam && v["body"] == "");
    let told = late.wait_for("deleted", |v| v["event"] == "deleted" && v["id"] == spam);
    assert_eq!(told["by"], "carol", "{told}");

    let missing = server.client("carol").run(&["delete", "99999"]);
    assert!(missing.stderr.contains("NO_SUCH_MESSAGE"), "{missing:?}");
    let audit = server.server_command(&["audit"]);
    assert!(
        audit
            .ok()
            .contains(&format!("\tcarol\tdelete\t{spam}\tspam")),
        "{audit:?}"
    );
}

#[test]
fn the_command_line_deletes_through_the_running_server_and_without_one() {
    let mut server = Server::start();
    let mut dave = server.client("dave").listen();
    let first = server.client("bob").send("all", "one");
    let second = server.client("bob").send("all", "two");
    dave.wait_message("two");

    let run = server.server_command(&["delete", &first.to_string(), "--reason", "off topic"]);
    assert!(
        run.ok().contains(&format!("deleted message {first}; told")),
        "{run:?}"
    );
    let told = dave.wait_for("deleted", |v| v["event"] == "deleted" && v["id"] == first);
    assert_eq!(told["by"], "operator", "{told}");

    let missing = server.server_command(&["delete", "99999"]);
    assert_ne!(missing.code, Some(0), "{missing:?}");
    assert!(
        missing.stderr.contains("there is no message 99999"),
        "{missing:?}"
    );

    drop(dave);
    server.kill();
    let run = server.server_command(&["delete", &second.to_string()]);
    assert!(
        run.ok().contains(&format!("deleted message {second}")),
        "{run:?}"
    );
    let server = server.restart();
    let lines = history(&server, "dave");
    for id in [first, second] {
        assert_eq!(entry(&lines, id)["deleted"], true, "{lines:?}");
    }
    let audit = server.server_command(&["audit"]);
    assert!(
        audit
            .ok()
            .contains(&format!("\toperator\tdelete\t{first}\toff topic")),
        "{audit:?}"
    );
}

#[test]
fn announcements_reach_everyone_from_the_command_line_and_an_operators_client() {
    let mut server = Server::start();
    operator(&server, "carol");
    let mut bob = server.client("bob").listen();
    let mut dave = server.client("dave").listen();

    let run = server.server_command(&["announce", "maintenance at noon"]);
    assert!(run.ok().contains("announced to"), "{run:?}");
    for l in [&mut bob, &mut dave] {
        l.wait_for("the notice", |v| {
            v["event"] == "notice" && v["text"] == "maintenance at noon"
        });
    }

    let run = server.client("carol").run(&["announce", "back soon"]);
    assert!(run.ok().contains(r#""action":"announce""#), "{run:?}");
    bob.wait_for("carol's notice", |v| {
        v["event"] == "notice" && v["text"] == "back soon"
    });

    let refused = server.client("mallory").run(&["announce", "free coins"]);
    assert!(refused.stderr.contains("NOT_OPERATOR"), "{refused:?}");
    bob.assert_not_seen("mallory's notice", |v| v["text"] == "free coins");

    let audit = server.server_command(&["audit"]);
    let out = audit.ok();
    assert!(
        out.contains("\toperator\tannounce\t\tmaintenance at noon"),
        "{out}"
    );
    assert!(out.contains("\tcarol\tannounce\t\tback soon"), "{out}");

    drop((bob, dave));
    server.kill();
    let run = server.server_command(&["announce", "anyone?"]);
    assert_ne!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("no server is running"), "{run:?}");
}
