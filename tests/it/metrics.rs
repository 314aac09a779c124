//! `--metrics-listen`: the exposition passes the real `promtool check
//! metrics`, and its counters move with traffic.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};

use crate::harness::{password, Server, WAIT};
use crate::raw::Raw;

/// The metrics address from the server's log line.
fn metrics_addr(server: &Server) -> SocketAddr {
    let line = server.wait_log("the metrics address", |l| {
        l.contains("metrics served at http://")
    });
    let rest = &line[line.find("http://").expect("found above") + "http://".len()..];
    rest.trim_end_matches("/metrics")
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

/// GET `path`: the status line and the body.
fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect_timeout(&addr, WAIT).expect("the metrics port answers");
    s.set_read_timeout(Some(WAIT))
        .expect("a timeout can be set");
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").expect("the request is sent");
    let mut response = String::new();
    s.read_to_string(&mut response)
        .expect("the response is read");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {response:?}"));
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

/// The value of the sample `series` (name with its labels, exactly as
/// exposed), or 0 if it is not there yet.
fn value(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

fn promtool_check(body: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (scripts/install-deps.sh installs it)");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(body.as_bytes())
        .expect("promtool reads the exposition");
    let out = child.wait_with_output().expect("promtool finishes");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{said}\n{body}"
    );
    assert_eq!(said.trim(), "", "promtool has remarks:\n{body}");
}

#[test]
fn metrics_pass_promtool_and_their_counters_move_with_traffic() {
    let server = Server::start_with(&["--metrics-listen", "127.0.0.1:0"]);
    let addr = metrics_addr(&server);
    let (status, before) = get(addr, "/metrics");
    assert!(status.contains("200"), "{status}");
    promtool_check(&before);
    assert!(
        before.contains("process_resident_memory_bytes "),
        "{before}"
    );

    let mut listener = server.client("bob").listen();
    server.client("alice").send("all", "counted");
    listener.wait_message("counted");
    server.register("carol", &password("carol"));
    let mut wrong = Raw::connect(&server);
    wrong.hello();
    wrong.frame(&confab_engine::Frame::Login {
        reference: confab_engine::Ref(1),
        user: confab_engine::Name::new("carol").expect("valid"),
        password: confab_engine::frame::Text::new("wrong").expect("short"),
        resume_after: confab_engine::MessageId(0),
        roster: false,
    });
    wrong.expect_error(confab_engine::frame::ErrorCode::BadCredentials);

    let (_, after) = get(addr, "/metrics");
    promtool_check(&after);
    for (series, at_least) in [
        (r#"confab_messages_stored_total{kind="room"}"#, 1.0),
        (r#"confab_messages_delivered_total{kind="room"}"#, 1.0),
        (r#"confab_logins_total{outcome="ok"}"#, 2.0),
        (r#"confab_logins_total{outcome="BAD_CREDENTIALS"}"#, 1.0),
        (r#"confab_connections_total{outcome="accepted"}"#, 3.0),
        ("confab_storage_commit_duration_seconds_count", 1.0),
        ("confab_auth_hash_duration_seconds_count", 2.0),
    ] {
        let (was, is) = (value(&before, series), value(&after, series));
        assert!(
            is - was >= at_least,
            "{series} went from {was} to {is}:\n{after}"
        );
    }
    assert!(
        !after.contains("alice") && !after.contains("bob"),
        "no user names as labels"
    );

    let (status, _) = get(addr, "/elsewhere");
    assert!(status.contains("404"), "{status}");
}
