//! The server's limits and timers, as a client meets them.

use std::time::{Duration, Instant};

use confab_engine::frame::ErrorCode;

use crate::harness::Server;
use crate::raw::Raw;

#[test]
fn a_connection_that_never_logs_in_is_closed_with_auth_timeout() {
    let server = Server::start_with(&["--auth-timeout", "1"]);
    let started = Instant::now();
    let mut raw = Raw::connect(&server);
    raw.hello();
    raw.expect_error(ErrorCode::AuthTimeout);
    raw.expect_closed();
    assert!(started.elapsed() >= Duration::from_millis(900));
    // Logging in in time is unaffected.
    server.client("alice").send("all", "on time");
}

#[test]
fn the_client_answers_idle_pings_and_a_silent_peer_is_closed_with_idle_timeout() {
    let server = Server::start_with(&["--idle-timeout", "1"]);
    // A raw peer that never answers: PING, then IDLE_TIMEOUT, then close.
    server.register("mute", "mute-secret");
    let mut raw = Raw::connect(&server);
    raw.login("mute", "mute-secret");
    let ping = raw.recv().expect("a PING");
    assert_eq!(ping.name, "PING", "{}", ping.debug);
    raw.expect_error(ErrorCode::IdleTimeout);
    raw.expect_closed();

    // confab answers PING by itself: three idle periods later it is still
    // connected, and exits 0 at its own timeout.
    let mut alice = server.client("alice").listen_with(&["--timeout", "3.5"]);
    let (code, stderr) = alice.wait_exit();
    assert_eq!(code, Some(0), "{stderr}");
    alice.assert_not_seen("an error", |v| v["event"] == "error");
    assert!(alice.seen().iter().any(|v| v["event"] == "caught_up"));
}

#[test]
fn connections_beyond_max_clients_are_refused_until_one_leaves() {
    let server = Server::start_with(&["--max-clients", "2"]);
    let mut alice = server.client("alice").listen();
    let mut bob = server.client("bob").listen();
    alice.wait_for("bob online", |v| {
        v["event"] == "online" && v["user"] == "bob"
    });
    let mut raw = Raw::connect(&server);
    raw.expect_error(ErrorCode::TooManyConnections);
    raw.expect_closed();
    // A refused connection never held a slot; the log tells of it once.
    drop(raw);
    server.wait_log("the refusal", |l| l.contains("turned away a connection"));

    bob.kill();
    alice.wait_for("bob offline", |v| {
        v["event"] == "offline" && v["user"] == "bob"
    });
    let id = server.client("carol").send("all", "room for one more");
    assert_eq!(alice.wait_message("room for one more")["id"], id);
}

#[test]
fn a_sender_over_the_rate_limit_is_slowed_down_not_dropped() {
    let server = Server::start_with(&["--msg-rate", "2", "--msg-burst", "2"]);
    let mut bob = server.client("bob").listen();
    let lines: Vec<String> = (0..6).map(|i| format!("fast {i}")).collect();
    let started = Instant::now();
    let run = server
        .client("alice")
        .run_with_stdin(&["send", "--to", "all", "-"], Some(&lines.join("\n")));
    let ids = run.ok().lines().count();
    assert_eq!(ids, 6, "every message acknowledged: {run:?}");
    // Two in the burst, then four at two per second.
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "the rate limit did not apply: {:?}",
        started.elapsed()
    );
    for l in &lines {
        bob.wait_message(l);
    }
}

#[test]
fn repeated_wrong_passwords_lock_the_account_out() {
    let server = Server::start_with(&["--lockout-after", "2", "--lockout-secs", "60"]);
    server.register("alice", "alice-secret");
    let wrong = server
        .client("alice")
        .without_register()
        .with_password("guess");
    for _ in 0..2 {
        let run = wrong.run(&["send", "--to", "all", "x"]);
        assert_eq!(run.code, Some(2), "{run:?}");
        assert!(run.stderr.contains("BAD_CREDENTIALS"), "{run:?}");
    }
    // Now even the right password is turned away, with a time to come back.
    let run = server
        .client("alice")
        .without_register()
        .run(&["send", "--to", "all", "x"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("LOCKED_OUT"), "{run:?}");
    assert!(run.stderr.contains("retry after"), "{run:?}");
}

#[test]
fn a_body_over_the_limit_is_refused_with_bad_body() {
    let server = Server::start_with(&["--max-body", "10"]);
    let mut bob = server.client("bob").listen();
    let run = server
        .client("alice")
        .run(&["send", "--to", "all", "eleven byte"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("BAD_BODY"), "{run:?}");
    server.client("alice").send("all", "ten bytes!");
    bob.wait_message("ten bytes!");
    bob.assert_no_message("eleven byte");
}
