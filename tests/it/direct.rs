//! Direct messages.

use confab::{ConnectionError, LoginOptions, Request};
use confab_engine::frame::ErrorCode;
use confab_engine::{MessageId, Name, Target};

use crate::harness::{Server, WAIT};

#[test]
fn dm_reaches_every_session_of_the_target_and_no_one_else() {
    let server = Server::start();
    let mut bob = server.client("bob").listen();
    let mut bob_again = server.client("bob").listen();
    let mut carol = server.client("carol").listen();
    let mut alice_elsewhere = server.client("alice").listen();
    let alice = server.client("alice");

    let id = alice.send("@bob", "psst");
    for l in [&mut bob, &mut bob_again] {
        let m = l.wait_message("psst");
        assert_eq!(m["id"], id);
        assert_eq!(m["from"], "alice");
        assert_eq!(m["to"], "@bob");
    }
    // The sender's other sessions keep the conversation in sync.
    alice_elsewhere.wait_message("psst");

    // Barrier: a later DM to carol, of the same priority class.
    alice.send("@carol", "barrier");
    carol.wait_message("barrier");
    carol.assert_no_message("psst");
    // And bob got the DM once per session, not twice.
    alice.send("@bob", "barrier");
    for l in [&mut bob, &mut bob_again] {
        l.wait_message("barrier");
        let n = l.seen().iter().filter(|v| v["body"] == "psst").count();
        assert_eq!(n, 1);
    }
}

#[test]
fn a_dm_to_a_user_that_does_not_exist_is_refused() {
    let server = Server::start();
    let mut bob = server.client("bob").listen();
    let run = server
        .client("alice")
        .run(&["send", "--to", "@nobody", "hello?"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("NO_SUCH_USER"), "{run:?}");
    assert_eq!(run.stdout, "", "no id: nothing was stored");

    // Through the library the refusal names the request it answers.
    server.register("carol", "carol-secret");
    let mut c = server.connect();
    let options = LoginOptions {
        resume_after: MessageId(0),
        roster: false,
    };
    c.login(
        Name::new("carol").expect("valid"),
        "carol-secret",
        options,
        WAIT,
    )
    .expect("carol logs in");
    let nobody = Target::User(Name::new("nobody").expect("valid"));
    match c.send(nobody, "hello?", WAIT) {
        Err(ConnectionError::Refused(e)) => {
            assert_eq!(e.code, ErrorCode::NoSuchUser);
            assert_eq!(e.request, Some(Request::Send { target: nobody }));
        }
        other => panic!("a DM to nobody: {other:?}"),
    }
    // The session survives the refusal.
    c.send(Target::Room, "barrier", WAIT)
        .expect("a refusal is not fatal");
    bob.wait_message("barrier");
    bob.assert_no_message("hello?");
}

#[test]
fn a_dm_to_an_offline_user_is_delivered_when_they_log_in() {
    let server = Server::start();
    server.register("bob", &crate::harness::password("bob"));
    let id = server.client("alice").send("@bob", "while you were out");
    let mut bob = server.client("bob").listen_with(&[]);
    let m = bob.wait_message("while you were out");
    assert_eq!(m["id"], id);
    let caught_up = bob.wait_for("caught_up", |v| v["event"] == "caught_up");
    assert!(caught_up["last_id"].as_u64() >= Some(id));
}

#[test]
fn history_with_a_user_that_does_not_exist_is_refused() {
    let server = Server::start();
    let run = server.client("alice").run(&["history", "--to", "@nobody"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("NO_SUCH_USER"), "{run:?}");
}
