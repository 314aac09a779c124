//! Registering and logging in.

use confab::{ConnectionError, LoginOptions};
use confab_engine::frame::ErrorCode;
use confab_engine::Name;

use crate::harness::{Server, WAIT};

#[test]
fn registering_then_logging_in_works_and_a_wrong_password_is_refused() {
    let server = Server::start();
    let first = server.client("alice").send("all", "first words");
    let again = server
        .client("alice")
        .without_register()
        .send("all", "second words");
    assert!(again > first, "ids increase: {first} then {again}");

    let wrong = server
        .client("alice")
        .without_register()
        .with_password("not-the-password");
    let run = wrong.run(&["send", "--to", "all", "never stored"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("BAD_CREDENTIALS"), "{run:?}");
    assert_eq!(run.stdout, "", "nothing was sent");

    let history = server.client("alice").run(&["history", "--to", "all"]);
    let bodies: Vec<String> = history
        .json_lines()
        .iter()
        .filter(|v| v["event"] == "message")
        .map(|v| v["body"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(bodies, ["first words", "second words"]);
}

#[test]
fn a_taken_name_is_refused_even_when_it_differs_only_in_case() {
    let server = Server::start();
    server.register("alice", "alice-secret");
    for name in ["alice", "ALICE", "aLiCe"] {
        let mut c = server.connect();
        let user = Name::new(name).expect("valid");
        match c.register(user, "another-password", WAIT) {
            Err(ConnectionError::Refused(e)) => {
                assert_eq!(e.code, ErrorCode::NameTaken, "{name}: {e}");
                assert_eq!(e.retry_after_ms, 0);
            }
            other => panic!("registering {name} again: {other:?}"),
        }
        // A refused REGISTER leaves the session in Auth: it may still log in.
        let got = c
            .login(user, "alice-secret", LoginOptions::default(), WAIT)
            .unwrap_or_else(|e| panic!("{name} logs in after the refusal: {e}"));
        assert_eq!(got.as_str(), "alice", "the registered spelling is kept");
    }

    // `--register` with someone else's name: NAME_TAKEN, then the login fails.
    let impostor = server.client("ALICE").with_password("another-password");
    let run = impostor.run(&["send", "--to", "all", "hijack"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("BAD_CREDENTIALS"), "{run:?}");

    // `--register` by the owner, in another case: NAME_TAKEN is fine.
    let mut owner = server.client("ALICE").listen();
    let logged_in = owner.wait_for("logged_in", |v| v["event"] == "logged_in");
    assert_eq!(logged_in["user"], "alice");
}

#[test]
fn a_server_with_closed_registration_refuses_new_accounts() {
    let server = Server::start_with(&["--registration", "closed"]);
    let run = server
        .client("newcomer")
        .run(&["send", "--to", "all", "hi"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("REGISTRATION_CLOSED"), "{run:?}");
}
