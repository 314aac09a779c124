//! Bad input over a real socket: each gets its documented answer, and the
//! server keeps serving everyone else.

use std::time::{Duration, Instant};

use confab_engine::frame::{ErrorCode, Frame, Text};
use confab_engine::{MessageId, Name, Ref, Target};

use crate::harness::{Listener, Server};
use crate::raw::Raw;

/// A normal client still gets a normal room message through.
#[track_caller]
fn still_serving(server: &Server, watcher: &mut Listener, step: &str) {
    let body = format!("still serving after {step}");
    server.client("checker").send("all", &body);
    watcher.wait_message(&body);
}

#[test]
fn garbage_bytes_are_refused_and_the_others_are_unaffected() {
    let server = Server::start();
    let mut watcher = server.client("watcher").listen();

    // An HTTP request: its first four bytes read as a length of ~1.2 GB.
    let mut raw = Raw::connect(&server);
    let _ = raw.write(b"GET / HTTP/1.1\r\nHost: confab\r\n\r\n");
    raw.expect_error(ErrorCode::FrameTooLarge);
    raw.expect_closed();
    still_serving(&server, &mut watcher, "an HTTP request");

    // A HELLO whose fields do not fit its length.
    let mut raw = Raw::connect(&server);
    let _ = raw.write(&[0, 0, 0, 4, 0x10, 0xff, 0xff, 0xff]);
    raw.expect_error(ErrorCode::MalformedFrame);
    raw.expect_closed();
    still_serving(&server, &mut watcher, "a truncated HELLO");

    // A zero length: no type byte at all.
    let mut raw = Raw::connect(&server);
    let _ = raw.write(&[0, 0, 0, 0]);
    raw.expect_error(ErrorCode::MalformedFrame);
    raw.expect_closed();
    still_serving(&server, &mut watcher, "an empty frame");

    // Invalid UTF-8 in a logged-in session's message: malformed, and the
    // user goes offline.
    server.register("mallory", "mallory-secret");
    let mut raw = Raw::connect(&server);
    raw.login("mallory", "mallory-secret");
    let mut send = Frame::Send {
        reference: Ref(1),
        target: Target::Room,
        body: Text::new("ab").expect("short"),
    }
    .to_bytes();
    let n = send.len();
    send[n - 2..].copy_from_slice(&[0xc3, 0x28]);
    let _ = raw.write(&send);
    raw.expect_error(ErrorCode::MalformedFrame);
    raw.expect_closed();
    still_serving(&server, &mut watcher, "bad UTF-8");
    watcher.assert_not_seen("a message from mallory", |v| v["from"] == "mallory");
}

#[test]
fn an_oversized_length_is_refused_before_its_body_is_sent() {
    let server = Server::start();
    let mut watcher = server.client("watcher").listen();

    // Before login the limit is max_frame_pre_auth (1024): 1025 is too much,
    // and the server says so from the four length bytes alone.
    let mut raw = Raw::connect(&server);
    raw.hello();
    raw.write(&1025u32.to_be_bytes()).expect("the server reads");
    raw.expect_error(ErrorCode::FrameTooLarge);
    raw.expect_closed();
    still_serving(&server, &mut watcher, "1025 bytes before login");

    // After login it is max_frame (65536).
    server.register("mallory", "mallory-secret");
    let mut raw = Raw::connect(&server);
    raw.login("mallory", "mallory-secret");
    raw.write(&65537u32.to_be_bytes())
        .expect("the server reads");
    raw.expect_error(ErrorCode::FrameTooLarge);
    raw.expect_closed();
    still_serving(&server, &mut watcher, "65537 bytes after login");
}

#[test]
fn a_frame_in_the_wrong_state_is_refused_and_the_connection_stays_open() {
    let server = Server::start();
    let mut watcher = server.client("watcher").listen();
    server.register("rawuser", "raw-secret");
    let send = Frame::Send {
        reference: Ref(7),
        target: Target::Room,
        body: Text::new("too early").expect("short"),
    };

    // SEND before HELLO, then before LOGIN: WRONG_STATE, echoing the reference.
    let mut raw = Raw::connect(&server);
    raw.frame(&send);
    assert_eq!(raw.expect_error(ErrorCode::WrongState), Ref(7));
    raw.hello();
    raw.frame(&send);
    assert_eq!(raw.expect_error(ErrorCode::WrongState), Ref(7));
    // A second HELLO is out of place too.
    raw.frame(&Frame::Hello {
        version: 1,
        client: Text::new("again").expect("short"),
    });
    raw.expect_error(ErrorCode::WrongState);

    // The connection is still open: the same socket logs in.
    raw.frame(&Frame::Login {
        reference: Ref(8),
        user: Name::new("rawuser").expect("valid"),
        password: Text::new("raw-secret").expect("short"),
        resume_after: MessageId(0),
        roster: true,
    });
    let g = raw.next();
    assert_eq!(g.name, "LOGIN_OK", "{}", g.debug);
    // In RosterSync (no ROSTER_ACK yet) SEND is still refused.
    raw.frame(&send);
    loop {
        let g = raw.next();
        match (g.name, g.error) {
            ("ERROR", Some((ErrorCode::WrongState, Ref(7)))) => break,
            ("ROSTER_SNAPSHOT" | "CAUGHT_UP", _) => {}
            _ => panic!("unexpected {}", g.debug),
        }
    }
    watcher.assert_no_message("too early");
    still_serving(&server, &mut watcher, "frames in the wrong state");
}

#[test]
fn an_unknown_frame_type_is_skipped_and_the_connection_stays_open() {
    let server = Server::start();
    let mut raw = Raw::connect(&server);
    raw.hello();
    raw.write(&[0, 0, 0, 3, 0x7e, 1, 2])
        .expect("the server reads");
    raw.expect_error(ErrorCode::UnknownFrameType);
    raw.frame(&Frame::Ping { token: 99 });
    let g = raw.next();
    assert_eq!(g.debug, "Pong { token: 99 }");
}

#[test]
fn half_a_frame_then_silence_is_closed_with_frame_timeout() {
    let server = Server::start_with(&["--frame-timeout", "1"]);
    let mut watcher = server.client("watcher").listen();
    let mut raw = Raw::connect(&server);
    raw.hello();
    let started = Instant::now();
    raw.write(&[0, 0, 0, 20, 0x12, 0, 0])
        .expect("the server reads");
    raw.expect_error(ErrorCode::FrameTimeout);
    raw.expect_closed();
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed after {:?}, before the frame timeout",
        started.elapsed()
    );
    still_serving(&server, &mut watcher, "a frame timeout");
}

#[test]
fn a_connection_closed_mid_frame_costs_the_others_nothing() {
    let server = Server::start();
    let mut watcher = server.client("watcher").listen();
    server.register("quitter", "quitter-secret");
    let mut raw = Raw::connect(&server);
    raw.login("quitter", "quitter-secret");
    watcher.wait_for("quitter online", |v| {
        v["event"] == "online" && v["user"] == "quitter"
    });
    let send = Frame::Send {
        reference: Ref(1),
        target: Target::Room,
        body: Text::new("never finished").expect("short"),
    }
    .to_bytes();
    raw.write(&send[..send.len() / 2])
        .expect("the server reads");
    raw.shutdown_write();
    drop(raw);
    watcher.wait_for("quitter offline", |v| {
        v["event"] == "offline" && v["user"] == "quitter"
    });
    still_serving(&server, &mut watcher, "a connection closed mid-frame");
    watcher.assert_no_message("never finished");
}
