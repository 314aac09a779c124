//! The `confab` command line: exit codes, standard input, history, limits.

use std::net::TcpListener;
use std::process::Stdio;

use serde_json::Value;

use crate::harness::{confab, Server};

#[test]
fn connecting_to_a_closed_port_fails_with_a_clear_message() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("a free port");
        l.local_addr().expect("bound").port()
    };
    let out = confab()
        .args(["send", "--port", &port.to_string(), "--user", "alice"])
        .args(["--password", "x", "--to", "all", "hi"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("confab runs");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("confab: cannot connect to 127.0.0.1:{port}: connection refused\n")
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_wrong_command_line_exits_64() {
    let out = confab()
        .args(["send", "--user", "not a name", "--password", "x"])
        .args(["--to", "everyone", "hi"])
        .output()
        .expect("confab runs");
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn send_with_a_dash_sends_each_line_of_stdin_and_prints_each_id() {
    let server = Server::start();
    let mut bob = server.client("bob").listen();
    let run = server
        .client("alice")
        .run_with_stdin(&["send", "--to", "@bob", "-"], Some("one\n\ntwo\r\nthree"));
    let ids: Vec<u64> = run
        .ok()
        .lines()
        .map(|l| l.parse().expect("an id per line"))
        .collect();
    assert_eq!(ids.len(), 3, "the empty line is skipped: {run:?}");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    for (body, id) in ["one", "two", "three"].iter().zip(&ids) {
        assert_eq!(bob.wait_message(body)["id"], *id);
    }
}

#[test]
fn listen_exits_zero_after_its_count_or_at_its_timeout() {
    let server = Server::start();
    let mut counted = server.client("alice").listen_with(&["--count", "2"]);
    let (code, stderr) = counted.wait_exit();
    assert_eq!(code, Some(0), "{stderr}");
    let kinds: Vec<&Value> = counted.seen().iter().map(|v| &v["event"]).collect();
    assert_eq!(kinds, ["logged_in", "roster"]);

    let mut timed = server.client("bob").listen_with(&["--timeout", "3"]);
    let (code, stderr) = timed.wait_exit();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(timed.seen().iter().any(|v| v["event"] == "caught_up"));
}

#[test]
fn listen_exits_3_with_a_shutdown_line_when_the_server_stops() {
    let mut server = Server::start();
    let mut alice = server.client("alice").listen();
    server.terminate();
    let shutdown = alice.wait_for("shutdown", |v| v["event"] == "shutdown");
    assert!(shutdown["retry_after_ms"].is_u64(), "{shutdown}");
    assert!(shutdown["reason"].is_string(), "{shutdown}");
    let (code, stderr) = alice.wait_exit();
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("shutting down"), "{stderr}");
    server.wait_exit();
}

#[test]
fn history_pages_through_a_conversation_oldest_first() {
    let server = Server::start();
    let run = server
        .client("alice")
        .run_with_stdin(&["send", "--to", "all", "-"], Some("h1\nh2\nh3\n"));
    let ids: Vec<u64> = run.ok().lines().filter_map(|l| l.parse().ok()).collect();
    assert_eq!(ids.len(), 3);

    let bob = server.client("bob");
    let page = bob
        .run(&["history", "--to", "all", "--limit", "2"])
        .json_lines();
    let bodies: Vec<&Value> = page.iter().map(|v| &v["body"]).collect();
    assert_eq!(bodies[..2], ["h2", "h3"]);
    let end = &page[2];
    assert_eq!(end["event"], "history_end");
    assert_eq!(end["more"], true);
    assert_eq!(end["next_before"], ids[1]);

    let before = ids[1].to_string();
    let older = bob
        .run(&[
            "history", "--to", "all", "--before", &before, "--limit", "2",
        ])
        .json_lines();
    let bodies: Vec<&Value> = older.iter().map(|v| &v["body"]).collect();
    assert_eq!(bodies[..1], ["h1"]);
    assert_eq!(older[1]["event"], "history_end");
    assert_eq!(older[1]["more"], false);
    assert_eq!(older.len(), 2);
}

#[test]
fn the_bound_address_is_printed_even_when_the_log_level_hides_info() {
    // Server::start_with waits for the `listening on` line and fails without it.
    let server = Server::start_with(&["--log-level", "warn"]);
    let run = server.client("alice").run(&["send", "--to", "all", "hi"]);
    assert_eq!(run.code, Some(0), "{run:?}");
}
