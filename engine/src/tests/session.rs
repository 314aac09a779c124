//! A session's life: logging in, its states, framing and its timers.

use std::time::Duration;

use super::util::{name, Got, World};
use crate::frame::*;
use crate::id::{MessageId, Ref};
use crate::{Config, Phase};

fn world(users: &[&str]) -> World {
    World::with_accounts(Config::default(), users)
}

#[test]
fn login_passes_through_roster_sync_to_messaging_once_the_snapshot_is_acked() {
    let mut w = world(&["alice"]);
    let a = w.connect();
    assert_eq!(w.hub.phase(w.peers[a].conn), Some(Phase::Auth));
    w.peers[a].reading = false;
    w.login_peer(a, "alice", MessageId(0), true);
    assert_eq!(w.hub.phase(w.peers[a].conn), Some(Phase::RosterSync));
    w.peers[a].reading = true;
    w.run();
    assert_eq!(w.hub.phase(w.peers[a].conn), Some(Phase::Messaging));
    let got = &w.peers[a].got;
    assert!(matches!(got[0], Got::ServerHello(_)));
    assert!(matches!(&got[1], Got::LoginOk(_, u) if u == "alice"));
    // In the order the protocol gives, though the replay (here: offline
    // direct messages, none) was answered before the client read anything.
    assert!(
        matches!(&got[2], Got::Snapshot { last: true, .. }),
        "{got:?}"
    );
    assert_eq!(got[3], Got::CaughtUp(MessageId(0)), "{got:?}");
    assert_eq!(w.peers[a].roster, ["alice".to_string()].into());
}

#[test]
fn a_wrong_password_is_refused_and_the_session_may_try_again() {
    let mut w = world(&["alice"]);
    let a = w.connect();
    let reference = w.reference();
    w.send(
        a,
        &Frame::Login {
            reference,
            user: name("alice"),
            password: Text::new("nope").unwrap(),
            resume_after: MessageId(0),
            roster: false,
        },
    );
    assert!(w.peers[a].got.contains(&Got::Error {
        code: ErrorCode::BadCredentials,
        reference,
        retry_after_ms: 0
    }));
    assert_eq!(w.hub.phase(w.peers[a].conn), Some(Phase::Auth));
    w.login_peer(a, "ALICE", MessageId(0), false);
    assert_eq!(w.hub.phase(w.peers[a].conn), Some(Phase::Messaging));
    assert_eq!(
        w.hub.user(w.peers[a].conn),
        Some(name("alice")),
        "the registered spelling wins"
    );
}

#[test]
fn a_frame_out_of_state_gets_wrong_state_and_the_connection_stays_open() {
    let mut w = world(&["alice"]);
    let a = w.connect();
    let r = w.say(a, Target::Room, "too early");
    assert_eq!(
        w.peers[a].got.last(),
        Some(&Got::Error {
            code: ErrorCode::WrongState,
            reference: r,
            retry_after_ms: 0
        })
    );
    w.send(a, &Frame::Ok { reference: Ref(9) });
    assert_eq!(w.errors(a), [ErrorCode::WrongState, ErrorCode::WrongState]);
    w.login_peer(a, "alice", MessageId(0), false);
    assert_eq!(w.hub.phase(w.peers[a].conn), Some(Phase::Messaging));
}

#[test]
fn send_is_refused_until_the_roster_snapshot_is_acked() {
    let mut w = world(&["alice"]);
    let a = w.connect();
    w.peers[a].reading = false;
    w.login_peer(a, "alice", MessageId(0), true);
    let r = w.say(a, Target::Room, "hi");
    w.read(a);
    assert!(w.peers[a].got.contains(&Got::Error {
        code: ErrorCode::WrongState,
        reference: r,
        retry_after_ms: 0
    }));
}

#[test]
fn an_oversized_frame_before_login_is_refused_from_its_header_and_closes() {
    let mut w = world(&[]);
    let a = w.connect();
    let used = w.send_bytes(a, &[0, 0, 0x10, 0]);
    assert_eq!(used, 4);
    assert_eq!(w.errors(a), [ErrorCode::FrameTooLarge]);
    assert!(w.peers[a].closed);
}

#[test]
fn garbage_gets_malformed_frame_and_a_close() {
    let mut w = world(&[]);
    let a = w.connect();
    w.send_bytes(a, &[0, 0, 0, 3, kind::PING, 1, 2]);
    assert_eq!(w.errors(a), [ErrorCode::MalformedFrame]);
    assert!(w.peers[a].closed);
}

#[test]
fn an_unknown_frame_type_is_skipped_with_an_error_and_the_session_goes_on() {
    let mut w = world(&["alice"]);
    let a = w.connect();
    w.send_bytes(a, &[0, 0, 0, 3, 0x3f, 1, 2]);
    assert_eq!(w.errors(a), [ErrorCode::UnknownFrameType]);
    assert!(!w.peers[a].closed);
    w.login_peer(a, "alice", MessageId(0), false);
    assert_eq!(w.hub.phase(w.peers[a].conn), Some(Phase::Messaging));
}

#[test]
fn a_client_that_does_not_log_in_in_time_is_closed() {
    let mut w = world(&[]);
    let a = w.connect();
    w.advance(Duration::from_secs(9));
    assert!(!w.peers[a].closed);
    w.advance(Duration::from_secs(2));
    assert_eq!(w.errors(a), [ErrorCode::AuthTimeout]);
    assert!(w.peers[a].closed);
}

#[test]
fn an_idle_session_is_pinged_and_kept_if_it_answers_and_closed_if_not() {
    let mut w = world(&["alice", "bob"]);
    let a = w.login("alice", false);
    let b = w.login("bob", false);
    w.peers[b].reading = false; // never answers
    w.advance(Duration::from_secs(61));
    assert!(w.peers[a].got.iter().any(|g| matches!(g, Got::Ping(_))));
    w.advance(Duration::from_secs(120));
    assert!(!w.peers[a].closed, "a session that answers pings stays");
    w.read(b);
    assert_eq!(w.errors(b), [ErrorCode::IdleTimeout]);
    assert!(w.peers[b].closed);
}

#[test]
fn half_a_frame_then_silence_is_closed_after_the_frame_timeout() {
    let config = Config {
        frame_timeout: Duration::from_secs(2),
        ..Config::default()
    };
    let mut w = World::with_accounts(config, &["alice"]);
    let a = w.login("alice", false);
    let used = w.send_bytes(a, &[0, 0, 0, 9, kind::PING, 0]);
    assert_eq!(used, 0, "a partial frame is left with the reader");
    w.advance(Duration::from_secs(3));
    assert_eq!(w.errors(a), [ErrorCode::FrameTimeout]);
    assert!(w.peers[a].closed);
}

#[test]
fn a_client_whose_writes_split_frames_is_never_cut() {
    // A bot sending 10 messages a second, each write ending with the first
    // bytes of the next frame: every frame completes within 100 ms, so the
    // frame timeout (10 s by default) must never fire, however long it runs.
    let mut w = world(&["bot", "bob"]);
    let bot = w.login("bot", false);
    let bob = w.login("bob", false);
    let frame = |i: u32| {
        Frame::Send {
            reference: Ref(i),
            target: Target::Room,
            body: Text::new("tick").unwrap(),
        }
        .to_bytes()
    };
    let mut pending: Vec<u8> = Vec::new();
    let mut next = frame(1);
    for i in 1..=300u32 {
        // The rest of frame i, then the first 3 bytes of frame i + 1.
        pending.extend_from_slice(&next);
        next = frame(i + 1);
        let head: Vec<u8> = next.drain(..3).collect();
        pending.extend_from_slice(&head);
        let used = w.send_bytes(bot, &pending);
        pending.drain(..used);
        w.advance(Duration::from_millis(100));
        assert!(
            !w.peers[bot].closed,
            "cut after {i} frames: {:?}",
            w.errors(bot)
        );
    }
    assert_eq!(w.errors(bot), []);
    assert_eq!(w.messages(bob).len(), 300);
}

#[test]
fn shutdown_notifies_every_session_and_closes_each_after_its_queue() {
    let mut w = world(&["alice", "bob"]);
    let a = w.login("alice", true);
    let b = w.login("bob", false);
    let pending = w.connect();
    w.hub.shutdown(w.now, Duration::from_secs(5), "maintenance");
    w.run();
    for p in [a, b, pending] {
        assert_eq!(w.peers[p].got.last(), Some(&Got::Shutdown), "peer {p}");
        assert!(w.peers[p].closed);
    }
    let late = w.connect();
    assert_eq!(w.peers[late].got.last(), Some(&Got::Shutdown));
    assert!(w.peers[late].closed);
}

#[test]
fn logout_is_acknowledged_closes_and_leaves_the_roster() {
    let mut w = world(&["alice", "bob"]);
    let a = w.login("alice", true);
    let b = w.login("bob", false);
    let r = w.reference();
    w.send(b, &Frame::Logout { reference: r });
    assert_eq!(w.peers[b].got.last(), Some(&Got::Ok(r)));
    assert!(w.peers[b].closed);
    assert_eq!(w.peers[a].roster, ["alice".to_string()].into());
    assert_eq!(w.hub.online(), [name("alice")]);
}

#[test]
fn an_idle_session_holds_no_rate_or_timer_state_once_it_has_settled() {
    let mut w = world(&["alice", "bob"]);
    let a = w.login("alice", false);
    let conn = w.peers[a].conn;
    assert_eq!(w.hub.holds_marks(conn), Some(false), "a fresh session");
    w.say(a, Target::Room, "hi");
    assert_eq!(
        w.hub.holds_marks(conn),
        Some(true),
        "its buckets were charged"
    );
    // Past the idle timeout: its buckets are full again, and it is pinged
    // and answers (the world's peers answer pings).
    w.advance(Config::default().idle_timeout + Duration::from_secs(1));
    assert!(w.peers[a].got.iter().any(|g| matches!(g, Got::Ping(_))));
    assert_eq!(w.hub.phase(conn), Some(Phase::Messaging));
    assert_eq!(w.hub.holds_marks(conn), Some(false));
}

#[test]
fn holds_request_says_whether_unread_bytes_hold_a_whole_frame() {
    let mut w = world(&[]);
    let a = w.connect();
    let conn = w.peers[a].conn;
    let ping = Frame::Ping { token: 1 }.to_bytes();
    assert!(w.hub.holds_request(conn, &ping));
    assert!(!w.hub.holds_request(conn, &ping[..ping.len() - 1]));
    assert!(!w.hub.holds_request(conn, &ping[..3]));
    assert!(!w.hub.holds_request(conn, &[]));
}
