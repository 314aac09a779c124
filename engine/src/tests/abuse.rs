//! Abuse: rate limits, floods, registration limits, admission, in-flight caps.

use std::time::Duration;

use super::util::{name, Got, World};
use crate::frame::*;
use crate::id::{MessageId, Ref};
use crate::{decode, Config, Phase, Source};

fn world(users: &[&str]) -> World {
    World::with_accounts(Config::default(), users)
}

#[test]
fn a_flooder_is_paused_told_and_finally_disconnected_while_others_are_served() {
    let config = Config {
        msg_rate: 10,
        msg_burst: 5,
        flood_timeout: Duration::from_secs(5),
        ..Config::default()
    };
    let mut w = World::with_accounts(config, &["flood", "bob"]);
    let f = w.login("flood", false);
    let b = w.login("bob", false);
    let mut burst = Vec::new();
    for i in 0..50 {
        Frame::Send {
            reference: Ref(i),
            target: Target::Room,
            body: Text::new("x").unwrap(),
        }
        .encode(&mut burst);
    }
    let used = w.send_bytes(f, &burst);
    assert!(
        used < burst.len(),
        "reading pauses once the bucket is empty"
    );
    assert_eq!(w.messages(b).len(), 5, "the burst went through");
    assert_eq!(w.errors(f), [ErrorCode::RateLimited]);
    // The flooder keeps its backlog up: feed the remainder at every pause.
    let mut rest = burst[used..].to_vec();
    for _ in 0..100 {
        if w.peers[f].closed {
            break;
        }
        w.advance(Duration::from_millis(100));
        let used = w.send_bytes(f, &rest);
        rest.drain(..used);
        rest.extend_from_slice(&burst[..used]);
    }
    assert!(w.errors(f).contains(&ErrorCode::Flooding));
    assert!(w.peers[f].closed);
    let r = w.say(b, Target::Room, "still here");
    assert!(w.peers[b]
        .got
        .iter()
        .any(|g| matches!(g, Got::Ack { reference, .. } if *reference == r)));
}

#[test]
fn connections_beyond_the_limits_are_refused_with_an_error() {
    let config = Config {
        max_clients: 3,
        max_per_source: 2,
        ..Config::default()
    };
    let mut w = World::new(config);
    let a = w.connect_from(Source(1));
    let b = w.connect_from(Source(1));
    let c = w.connect_from(Source(1));
    assert!(!w.peers[a].closed && !w.peers[b].closed);
    assert_eq!(w.errors(c), [ErrorCode::TooManyConnections]);
    w.disconnect(c);
    let d = w.connect_from(Source(2));
    assert!(!w.peers[d].closed);
    let e = w.connect_from(Source(3));
    assert_eq!(w.errors(e), [ErrorCode::TooManyConnections]);
    w.disconnect(e);
    w.disconnect(a);
    let f = w.connect_from(Source(3));
    assert!(!w.peers[f].closed, "room again once others left");
}

#[test]
fn requests_beyond_the_in_flight_limit_are_told_busy() {
    let config = Config {
        max_inflight: 2,
        ..Config::default()
    };
    let mut w = World::with_accounts(config, &["alice"]);
    let a = w.login("alice", false);
    w.hold_effects = true;
    w.say(a, Target::Room, "1");
    w.say(a, Target::Room, "2");
    let r = w.say(a, Target::Room, "3");
    assert!(w.peers[a].got.iter().any(
        |g| matches!(g, Got::Error { code: ErrorCode::Busy, reference, .. } if *reference == r)
    ));
    w.hold_effects = false;
    w.release();
    w.say(a, Target::Room, "4");
    assert_eq!(w.store.messages().len(), 3);
}

#[test]
fn a_flooder_whose_reads_run_dry_between_frames_is_still_disconnected_on_time() {
    let config = Config {
        msg_rate: 10,
        msg_burst: 5,
        flood_timeout: Duration::from_secs(2),
        ..Config::default()
    };
    let mut w = World::with_accounts(config, &["flood"]);
    let f = w.login("flood", false);
    let frame = Frame::Send {
        reference: Ref(1),
        target: Target::Room,
        body: Text::new("x").unwrap(),
    }
    .to_bytes();
    let start = w.now;
    // The client writes ten frames at a time, and the server reads the next
    // ten only once it has taken every frame it holds: its buffered input
    // runs dry again and again, though the client never slows down.
    let mut pending: Vec<u8> = Vec::new();
    while !w.peers[f].closed && w.now < start + Duration::from_secs(10) {
        if pending.is_empty() {
            for _ in 0..10 {
                pending.extend_from_slice(&frame);
            }
        }
        let used = w.send_bytes(f, &pending);
        pending.drain(..used);
        if !pending.is_empty() {
            w.advance(Duration::from_millis(20));
        }
    }
    let errors = w.errors(f);
    assert_eq!(
        errors
            .iter()
            .filter(|c| **c == ErrorCode::RateLimited)
            .count(),
        1,
        "{errors:?}"
    );
    assert_eq!(errors.last(), Some(&ErrorCode::Flooding));
    let took = w.now - start;
    assert!(
        took <= Duration::from_millis(2600),
        "disconnected after {took:?}, flood timeout 2 s"
    );
}

#[test]
fn an_account_disconnected_for_flooding_may_not_log_in_again_until_its_penalty_ends() {
    let config = Config {
        msg_rate: 10,
        msg_burst: 5,
        flood_timeout: Duration::from_secs(1),
        flood_penalty: Duration::from_secs(30),
        ..Config::default()
    };
    let mut w = World::with_accounts(config, &["flood", "bob"]);
    let f = w.login("flood", false);
    let mut burst = Vec::new();
    for i in 0..100 {
        Frame::Send {
            reference: Ref(i),
            target: Target::Room,
            body: Text::new("x").unwrap(),
        }
        .encode(&mut burst);
    }
    let mut rest = burst.clone();
    while !w.peers[f].closed {
        let used = w.send_bytes(f, &rest);
        rest.drain(..used);
        rest.extend_from_slice(&burst[..used]);
        w.advance(Duration::from_millis(50));
    }
    assert_eq!(w.errors(f).last(), Some(&ErrorCode::Flooding));
    // Straight back: refused, told when to come back.
    let again = w.connect();
    w.login_peer(again, "flood", MessageId(0), false);
    let refused = w.peers[again].got.iter().find_map(|g| match g {
        Got::Error {
            code: ErrorCode::RateLimited,
            retry_after_ms,
            ..
        } => Some(*retry_after_ms),
        _ => None,
    });
    assert!(
        refused.is_some_and(|ms| ms > 25_000 && ms <= 30_000),
        "{:?}",
        w.peers[again].got
    );
    assert_eq!(w.hub.phase(w.peers[again].conn), Some(Phase::Auth));
    // Others are not affected; after the penalty the flooder may return.
    let b = w.login("bob", false);
    assert_eq!(w.hub.phase(w.peers[b].conn), Some(Phase::Messaging));
    w.advance(Duration::from_secs(31));
    let later = w.connect();
    w.login_peer(later, "flood", MessageId(0), false);
    assert_eq!(w.hub.phase(w.peers[later].conn), Some(Phase::Messaging));
}

#[test]
fn a_group_create_at_the_servers_group_cap_gets_a_code_of_its_own_not_busy() {
    let config = Config {
        max_groups: 2,
        ..Config::default()
    };
    let mut w = World::with_accounts(config, &["alice"]);
    let a = w.login("alice", false);
    let mut answers = Vec::new();
    for g in ["one", "two", "three"] {
        let r = w.reference();
        w.send(
            a,
            &Frame::GroupCreate {
                reference: r,
                group: name(g),
            },
        );
        answers.push(w.peers[a].got.iter().rev().find_map(|g| match g {
            Got::Ok(x) if *x == r => Some(None),
            Got::Error {
                code,
                reference,
                retry_after_ms,
            } if *reference == r => Some(Some((*code, *retry_after_ms))),
            _ => None,
        }));
    }
    assert_eq!(
        answers,
        [
            Some(None),
            Some(None),
            Some(Some((ErrorCode::ServerGroupsFull, 0)))
        ],
        "a retry could never succeed, so it is not BUSY"
    );
}

/// An unknown frame type (0x7e) of `len` bytes in all.
fn unknown_frame(len: usize) -> Vec<u8> {
    let mut f = ((len - 4) as u32).to_be_bytes().to_vec();
    f.push(0x7e);
    f.resize(len, 0);
    f
}

/// Feeds `input` again and again (as a reader whose socket is always full)
/// for `secs` of virtual time; returns the bytes the hub took.
fn flood(w: &mut World, p: usize, input: &[u8], secs: u64) -> usize {
    let mut taken = 0;
    let mut pending = input.to_vec();
    for _ in 0..secs * 10 {
        if w.peers[p].closed {
            break;
        }
        // A reader keeps reading while the hub takes bytes; bounded, as a
        // socket's buffer is.
        for _ in 0..100 {
            let used = w.send_bytes(p, &pending);
            taken += used;
            pending.drain(..used);
            pending.extend_from_slice(&input[..used.min(input.len())]);
            if used == 0 || w.peers[p].closed {
                break;
            }
        }
        w.advance(Duration::from_millis(100));
    }
    taken
}

#[test]
fn unknown_frame_types_are_paid_for_from_the_byte_budget_and_a_flood_of_them_is_cut() {
    let mut w = world(&["alice"]);
    let a = w.login("alice", false);
    let frames: Vec<u8> = (0..8).flat_map(|_| unknown_frame(60_000)).collect();
    let taken = flood(&mut w, a, &frames, 12);
    let c = Config::default();
    // At most the burst and 12 s of the byte rate (the flood is cut at 10 s).
    let allowed = c.byte_burst as usize + 12 * c.byte_rate as usize;
    assert!(
        taken <= allowed,
        "took {taken} bytes, the budget is {allowed}"
    );
    let errors = w.errors(a);
    assert!(errors.contains(&ErrorCode::RateLimited), "{errors:?}");
    assert_eq!(errors.last(), Some(&ErrorCode::Flooding));
    assert!(w.peers[a].closed);
}

#[test]
fn a_ping_flood_after_login_is_bounded_by_the_byte_budget() {
    let mut w = world(&["alice"]);
    let a = w.login("alice", false);
    let pings: Vec<u8> = (0..1000u64)
        .flat_map(|token| Frame::Ping { token }.to_bytes())
        .collect();
    flood(&mut w, a, &pings, 5);
    let pongs = w.peers[a]
        .got
        .iter()
        .filter(|g| matches!(g, Got::Pong(_)))
        .count();
    let c = Config::default();
    let allowed = (c.byte_burst + 5 * c.byte_rate) / c.min_frame_charge;
    assert!(
        pongs as u32 <= allowed,
        "{pongs} PINGs answered in 5 s, the budget is {allowed}"
    );
    assert!(w.errors(a).contains(&ErrorCode::RateLimited));
}

#[test]
fn a_session_that_floods_before_logging_in_is_closed_after_a_few_frames() {
    for flood_frame in [
        Frame::Ping { token: 7 }.to_bytes(),
        Frame::Send {
            reference: Ref(1),
            target: Target::Room,
            body: Text::new("x").unwrap(),
        }
        .to_bytes(),
        unknown_frame(100),
    ] {
        let mut w = world(&["alice"]);
        let a = w.connect();
        let burst: Vec<u8> = (0..100).flat_map(|_| flood_frame.clone()).collect();
        flood(&mut w, a, &burst, 1);
        let answered = w.peers[a]
            .got
            .iter()
            .filter(|g| matches!(g, Got::Pong(_) | Got::Error { .. }))
            .count();
        let burst = usize::from(Config::default().pre_auth_burst);
        assert!(answered <= burst + 1, "{answered} frames answered");
        assert_eq!(w.errors(a).last(), Some(&ErrorCode::Flooding));
        assert!(w.peers[a].closed);
    }
    // Logging in, even after a wrong password and a PING, is well within it.
    let mut w = world(&["alice"]);
    let a = w.connect();
    w.send(a, &Frame::Ping { token: 1 });
    let r = w.reference();
    w.send(
        a,
        &Frame::Login {
            reference: r,
            user: name("alice"),
            password: Text::new("wrong").unwrap(),
            resume_after: MessageId(0),
            roster: false,
        },
    );
    w.login_peer(a, "alice", MessageId(0), false);
    assert_eq!(w.hub.phase(w.peers[a].conn), Some(Phase::Messaging));
}

/// Peer `p` registers `user`; the answer: None for OK, else the error.
fn register(w: &mut World, p: usize, user: &str) -> Option<(ErrorCode, u32)> {
    let r = w.reference();
    w.send(
        p,
        &Frame::Register {
            reference: r,
            user: name(user),
            password: Text::new("pw").unwrap(),
        },
    );
    w.peers[p]
        .got
        .iter()
        .rev()
        .find_map(|g| match g {
            Got::Ok(x) if *x == r => Some(None),
            Got::Error {
                code,
                reference,
                retry_after_ms,
            } if *reference == r => Some(Some((*code, *retry_after_ms))),
            _ => None,
        })
        .expect("REGISTER is answered")
}

#[test]
fn one_address_may_create_only_its_share_of_accounts_and_is_told_when_to_retry() {
    let mut w = world(&["taken"]);
    let limit = Config::default().registrations_per_source;
    let spammer = Source(99);
    let mut refused = None;
    for i in 0..100 {
        let p = w.connect_from(spammer);
        // A taken name costs the same: probing names is no faster.
        let user = if i % 2 == 0 {
            "taken".to_owned()
        } else {
            format!("spam{i}")
        };
        if let Some((ErrorCode::RateLimited, ms)) = register(&mut w, p, &user) {
            refused = Some((i, ms));
            break;
        }
        w.disconnect(p);
    }
    let (after, ms) = refused.expect("registrations from one address are limited");
    assert_eq!(after, usize::from(limit.burst));
    assert!(ms > 0 && u64::from(ms) <= limit.every.as_millis() as u64);
    // Another address is not held back by it.
    let other = w.connect();
    assert_eq!(register(&mut w, other, "newcomer"), None);
    // And the spammer's address may create one more once the interval passed.
    w.advance(limit.every);
    let p = w.connect_from(spammer);
    assert_eq!(register(&mut w, p, "patient"), None);
}

#[test]
fn the_server_wide_registration_limit_holds_against_many_addresses() {
    let mut w = world(&[]);
    let limit = Config::default().registrations_per_server;
    let mut created = 0;
    for i in 0..200u128 {
        let p = w.connect_from(Source(1000 + i));
        match register(&mut w, p, &format!("user{i}")) {
            None => created += 1,
            Some((code, ms)) => {
                assert_eq!(code, ErrorCode::RateLimited);
                assert!(ms > 0);
            }
        }
        w.disconnect(p);
    }
    assert_eq!(created, usize::from(limit.burst));
}

#[test]
fn admission_refuses_beyond_the_limits_without_creating_a_session() {
    let config = Config {
        max_clients: 3,
        max_per_source: 2,
        ..Config::default()
    };
    let mut w = World::new(config);
    assert!(w.hub.admit(w.now, Source(1)).is_ok());
    let a = w.connect_from(Source(1));
    w.connect_from(Source(1));
    let refused = w.hub.admit(w.now, Source(1)).expect_err("per source");
    assert_eq!(refused.reason, crate::TurnedAway::PerSource);
    let (frame, used) = crate::decode(&refused.frame, u32::MAX)
        .expect("a frame")
        .expect("whole");
    assert_eq!(used, refused.frame.len());
    assert!(
        matches!(
            frame,
            Frame::Error {
                code: ErrorCode::TooManyConnections,
                reference: Ref(0),
                ..
            }
        ),
        "{frame:?}"
    );
    // Refusing counted nothing: another source still fits, then the total.
    assert_eq!(w.hub.connections(), 2);
    assert!(w.hub.admit(w.now, Source(2)).is_ok());
    w.connect_from(Source(2));
    let full = w.hub.admit(w.now, Source(3)).expect_err("full");
    assert_eq!(full.reason, crate::TurnedAway::Full);
    w.disconnect(a);
    assert!(
        w.hub.admit(w.now, Source(3)).is_ok(),
        "room again once one left"
    );
    assert!(w.hub.admit(w.now, Source(1)).is_ok());
}

#[test]
fn an_address_whose_connection_flooded_before_login_is_turned_away_for_the_flood_penalty() {
    let mut w = world(&["alice"]);
    let attacker = Source(66);
    let a = w.connect_from(attacker);
    let pings: Vec<u8> = (0..50u64)
        .flat_map(|token| Frame::Ping { token }.to_bytes())
        .collect();
    w.send_bytes(a, &pings);
    assert_eq!(w.errors(a).last(), Some(&ErrorCode::Flooding));
    let refused = w.hub.admit(w.now, attacker).expect_err("barred");
    assert_eq!(refused.reason, crate::hub::TurnedAway::Flooded);
    let (f, _) = decode(&refused.frame, u32::MAX).unwrap().unwrap();
    assert!(
        matches!(f, Frame::Error { code: ErrorCode::TooManyConnections, retry_after_ms, .. } if retry_after_ms > 0),
        "{f:?}"
    );
    // Other addresses are not; the attacker's is again after the penalty.
    assert!(w.hub.admit(w.now, Source(67)).is_ok());
    w.advance(Config::default().flood_penalty);
    assert!(w.hub.admit(w.now, attacker).is_ok());
}

#[test]
fn an_address_may_hold_only_a_few_connections_that_have_not_logged_in() {
    let mut w = world(&["alice"]);
    let cap = Config::default().max_pre_auth_per_source as usize;
    let source = Source(5);
    let waiting: Vec<usize> = (0..cap).map(|_| w.connect_from(source)).collect();
    let refused = w.hub.admit(w.now, source).expect_err("all of them waiting");
    let (f, _) = decode(&refused.frame, u32::MAX).unwrap().unwrap();
    assert!(matches!(
        f,
        Frame::Error {
            code: ErrorCode::TooManyConnections,
            ..
        }
    ));
    assert!(
        w.hub.admit(w.now, Source(6)).is_ok(),
        "other addresses are not held back"
    );
    // One logs in: it no longer counts, and there is room for another.
    w.login_peer(waiting[0], "alice", MessageId(0), false);
    assert_eq!(
        w.hub.phase(w.peers[waiting[0]].conn),
        Some(Phase::Messaging)
    );
    assert!(w.hub.admit(w.now, source).is_ok());
    let again = w.connect_from(source);
    assert!(w.hub.admit(w.now, source).is_err());
    // One that leaves without logging in makes room too.
    w.disconnect(again);
    assert!(w.hub.admit(w.now, source).is_ok());
    // And a logged-in one leaving does not count twice.
    w.disconnect(waiting[0]);
    assert!(w.hub.admit(w.now, source).is_ok());
    let extra = w.connect_from(source);
    assert!(w.hub.admit(w.now, source).is_err(), "still {cap} waiting");
    w.disconnect(extra);
}

fn log_in_with(w: &mut World, p: usize, password: &str) {
    let reference = w.reference();
    w.send(
        p,
        &Frame::Login {
            reference,
            user: name("bob"),
            password: Text::new(password).expect("short"),
            resume_after: MessageId(0),
            roster: false,
        },
    );
}

fn last_error(w: &World, p: usize) -> Option<(ErrorCode, u32)> {
    w.peers[p].got.iter().rev().find_map(|g| match g {
        Got::Error {
            code,
            retry_after_ms,
            ..
        } => Some((*code, *retry_after_ms)),
        _ => None,
    })
}

#[test]
fn repeated_wrong_passwords_lock_the_address_out_before_any_hash_is_asked_for() {
    let config = Config {
        lockout: crate::lockout::Policy {
            after: 2,
            ..Default::default()
        },
        ..Config::default()
    };
    let mut w = World::with_accounts(config, &["bob"]);
    let attacker = w.connect();
    w.hold_effects = true;
    let checks = |w: &mut World| {
        let n = w.held.len();
        w.release();
        n
    };
    log_in_with(&mut w, attacker, "wrong");
    assert_eq!(checks(&mut w), 1);
    assert_eq!(
        last_error(&w, attacker),
        Some((ErrorCode::BadCredentials, 0))
    );
    log_in_with(&mut w, attacker, "wrong");
    assert_eq!(checks(&mut w), 1);
    assert_eq!(
        last_error(&w, attacker),
        Some((ErrorCode::BadCredentials, 300_000)),
        "the second failure locks the address out of the account"
    );
    // Locked: even the right password is refused, with the time left, and
    // the shell is not asked to check it.
    w.advance(Duration::from_secs(1));
    log_in_with(&mut w, attacker, "pw");
    assert_eq!(checks(&mut w), 0, "no hash for a locked-out login");
    assert_eq!(
        last_error(&w, attacker),
        Some((ErrorCode::LockedOut, 299_000))
    );
    // The owner, at another address, is checked as usual.
    let owner = w.connect();
    log_in_with(&mut w, owner, "pw");
    assert_eq!(checks(&mut w), 1);
    assert_eq!(w.hub.user(w.peers[owner].conn), Some(name("bob")));
}

#[test]
fn a_login_whose_key_locked_while_it_was_checked_is_refused_whatever_its_answer() {
    let config = Config {
        lockout: crate::lockout::Policy {
            after: 2,
            ..Default::default()
        },
        max_pre_auth_per_source: 8,
        ..Config::default()
    };
    let mut w = World::with_accounts(config, &["bob"]);
    // Three sessions from one address, each with a login in flight.
    let source = Source(7);
    let peers: Vec<usize> = (0..3).map(|_| w.connect_from(source)).collect();
    w.hold_effects = true;
    log_in_with(&mut w, peers[0], "wrong");
    log_in_with(&mut w, peers[1], "wrong");
    log_in_with(&mut w, peers[2], "pw");
    assert_eq!(
        w.held.len(),
        3,
        "all three were asked for before any answer"
    );
    w.release();
    assert_eq!(
        last_error(&w, peers[1]).map(|e| e.0),
        Some(ErrorCode::BadCredentials)
    );
    assert_eq!(
        last_error(&w, peers[2]).map(|e| e.0),
        Some(ErrorCode::LockedOut),
        "the right password arrived after the lock"
    );
    assert_eq!(w.hub.user(w.peers[peers[2]].conn), None);
}

#[test]
fn transport_framing_counts_for_the_idle_timeout_and_is_paid_for_from_the_byte_budget() {
    let config = Config {
        byte_rate: 100,
        byte_burst: 1000,
        ..Config::default()
    };
    let idle = config.idle_timeout;
    let mut w = World::with_accounts(config, &["alice"]);
    let a = w.login("alice", false);
    let conn = w.peers[a].conn;
    // Framing alone keeps the session alive past its idle timeout: the
    // peer does not read, so the server's PINGs go unanswered.
    w.peers[a].reading = false;
    for _ in 0..6 {
        w.advance(idle / 2);
        w.hub.handle_transport_bytes(w.now, conn, 8);
        w.run();
    }
    assert_ne!(w.hub.phase(conn), Some(Phase::Closed));
    w.peers[a].reading = true;
    w.run();
    assert!(w.errors(a).is_empty(), "{:?}", w.peers[a].got);
    // A flood of it spends the byte budget: reading pauses, and it is told.
    for _ in 0..100 {
        w.hub.handle_transport_bytes(w.now, conn, 200);
    }
    w.run();
    assert_ne!(w.hub.read_ready(w.now, conn), crate::ReadReady::Now);
    assert_eq!(w.errors(a), [ErrorCode::RateLimited]);
}
