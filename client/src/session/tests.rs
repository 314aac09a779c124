use confab_engine::frame::{kind, ErrorCode, HistoryEntry, Presence, ServerInfo};
use confab_engine::Config;

use super::*;

fn n(s: &str) -> Name {
    Name::new(s).unwrap()
}

fn bytes(frames: &[Frame<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        f.encode(&mut out);
    }
    out
}

/// Everything the session wants to send, decoded and rendered with `{:?}`
/// (frames borrow their buffer, so they are compared as text).
fn sent(s: &mut Session) -> Vec<String> {
    let mut buf = Vec::new();
    let _ = s.poll_transmit(&mut buf);
    let mut off = 0;
    let mut out = Vec::new();
    while let Some((f, used)) = decode(&buf[off..], u32::MAX).unwrap() {
        out.push(format!("{f:?}"));
        off += used;
    }
    assert_eq!(off, buf.len(), "the session sent a partial frame");
    out
}

fn events(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn info() -> ServerInfo {
    Config::default().server_info()
}

/// A session past HELLO and SERVER_HELLO, with its outbox emptied.
fn greeted() -> Session {
    let mut s = Session::new("test");
    let _ = sent(&mut s);
    s.handle_input(&bytes(&[Frame::ServerHello {
        version: PROTOCOL_VERSION,
        server: Text::new("srv").unwrap(),
        info: info(),
    }]))
    .unwrap();
    let _ = events(&mut s);
    s
}

/// A session logged in as alice, with or without the roster, synced.
fn logged_in(roster: bool) -> Session {
    let mut s = greeted();
    let r = s
        .login(
            n("alice"),
            "pw",
            LoginOptions {
                resume_after: MessageId(0),
                roster,
            },
        )
        .unwrap();
    let mut input = bytes(&[Frame::LoginOk {
        reference: r,
        user: n("alice"),
    }]);
    if roster {
        input.extend(bytes(&[Frame::RosterSnapshot {
            version: RosterVersion(1),
            last: true,
            users: vec![n("alice")],
        }]));
    }
    s.handle_input(&input).unwrap();
    let _ = events(&mut s);
    let _ = sent(&mut s);
    assert_eq!(s.phase(), Phase::Messaging);
    s
}

#[test]
fn a_new_session_says_hello_and_reports_the_servers_limits() {
    let mut s = Session::new("confab-test/1");
    assert_eq!(
        sent(&mut s),
        vec![format!(
            "{:?}",
            Frame::Hello {
                version: PROTOCOL_VERSION,
                client: Text::new("confab-test/1").unwrap()
            }
        )]
    );
    s.handle_input(&bytes(&[Frame::ServerHello {
        version: PROTOCOL_VERSION,
        server: Text::new("srv").unwrap(),
        info: info(),
    }]))
    .unwrap();
    let want = ServerHello {
        server: "srv".into(),
        info: info(),
    };
    assert_eq!(events(&mut s), vec![Event::ServerHello(want.clone())]);
    assert_eq!(s.server(), Some(&want));
    assert_eq!(s.phase(), Phase::Auth);
}

#[test]
fn chat_requests_wait_for_the_roster_snapshot_which_is_acknowledged_automatically() {
    let mut s = greeted();
    assert_eq!(s.send(Target::Room, "hi"), Err(ApiMisuse::NotLoggedIn));
    let r = s.login(n("Alice"), "pw", LoginOptions::default()).unwrap();
    assert_eq!(
        s.login(n("alice"), "pw", LoginOptions::default()),
        Err(ApiMisuse::AuthPending)
    );
    let _ = sent(&mut s);
    s.handle_input(&bytes(&[
        Frame::LoginOk {
            reference: r,
            user: n("alice"),
        },
        Frame::RosterSnapshot {
            version: RosterVersion(4),
            last: false,
            users: vec![n("carol")],
        },
    ]))
    .unwrap();
    assert_eq!(s.phase(), Phase::RosterSync);
    assert_eq!(s.user(), Some(n("alice")));
    assert_eq!(s.send(Target::Room, "hi"), Err(ApiMisuse::RosterSyncing));
    assert_eq!(
        sent(&mut s),
        Vec::<String>::new(),
        "no ack before the last chunk"
    );
    s.handle_input(&bytes(&[Frame::RosterSnapshot {
        version: RosterVersion(4),
        last: true,
        users: vec![n("alice")],
    }]))
    .unwrap();
    assert_eq!(
        events(&mut s),
        vec![
            Event::LoginOk {
                reference: r,
                user: n("alice")
            },
            Event::RosterSnapshot {
                version: RosterVersion(4),
                users: vec![n("alice"), n("carol")]
            }
        ]
    );
    assert_eq!(
        sent(&mut s),
        vec!["RosterAck { version: RosterVersion(4) }".to_owned()]
    );
    assert_eq!(s.phase(), Phase::Messaging);
    assert!(s.send(Target::Room, "hi").is_ok());
}

#[test]
fn roster_deltas_are_applied_and_acknowledged_once_per_batch() {
    let mut s = logged_in(true);
    s.handle_input(&bytes(&[
        Frame::RosterDelta {
            version: RosterVersion(2),
            presence: Presence::Online,
            user: n("bob"),
        },
        Frame::RosterDelta {
            version: RosterVersion(3),
            presence: Presence::Online,
            user: n("carol"),
        },
        Frame::RosterDelta {
            version: RosterVersion(4),
            presence: Presence::Offline,
            user: n("bob"),
        },
    ]))
    .unwrap();
    assert_eq!(events(&mut s).len(), 3);
    assert_eq!(
        sent(&mut s),
        vec!["RosterAck { version: RosterVersion(4) }".to_owned()]
    );
    let users: Vec<Name> = s.roster().users().copied().collect();
    assert_eq!(users, vec![n("alice"), n("carol")]);
    // A stale delta changes nothing and is not acknowledged again.
    s.handle_input(&bytes(&[Frame::RosterDelta {
        version: RosterVersion(3),
        presence: Presence::Online,
        user: n("zed"),
    }]))
    .unwrap();
    assert_eq!(events(&mut s), vec![]);
    assert_eq!(sent(&mut s), Vec::<String>::new());
}

#[test]
fn a_login_without_the_roster_may_chat_at_once_and_never_acks() {
    let mut s = logged_in(false);
    assert!(s.roster().is_empty());
    assert!(s.send(Target::User(n("bob")), "psst").is_ok());
    assert_eq!(sent(&mut s).len(), 1);
}

#[test]
fn pings_are_answered_with_the_same_token() {
    let mut s = greeted();
    s.handle_input(&bytes(&[Frame::Ping { token: 77 }]))
        .unwrap();
    assert_eq!(sent(&mut s), vec!["Pong { token: 77 }".to_owned()]);
    assert_eq!(events(&mut s), vec![]);
}

#[test]
fn a_ping_of_ours_is_answered_by_a_pong_event_with_its_token() {
    let mut s = greeted();
    s.ping(9).unwrap();
    assert_eq!(sent(&mut s), vec!["Ping { token: 9 }".to_owned()]);
    s.handle_input(&bytes(&[Frame::Pong { token: 9 }])).unwrap();
    assert_eq!(events(&mut s), vec![Event::Pong { token: 9 }]);
    s.handle_eof();
    assert_eq!(s.ping(10), Err(ApiMisuse::Closed));
}

#[test]
fn answers_name_the_request_they_answer() {
    let mut s = logged_in(false);
    let a = s.send(Target::Room, "one").unwrap();
    let b = s.send(Target::Group(n("dev")), "two").unwrap();
    let c = s.group_join(n("ops")).unwrap();
    assert!(a < b && b < c, "references increase");
    assert_eq!(
        s.pending(b),
        Some(&Request::Send {
            target: Target::Group(n("dev"))
        })
    );
    s.handle_input(&bytes(&[
        Frame::Ack {
            reference: a,
            id: MessageId(10),
            timestamp_ms: 5,
        },
        Frame::Error {
            code: ErrorCode::NotAMember,
            reference: b,
            retry_after_ms: 0,
            text: Text::new("not a member of dev").unwrap(),
        },
        Frame::Ok { reference: c },
    ]))
    .unwrap();
    assert_eq!(
        events(&mut s),
        vec![
            Event::Ack {
                reference: a,
                id: MessageId(10),
                timestamp_ms: 5,
                target: Some(Target::Room)
            },
            Event::Error(ServerError {
                code: ErrorCode::NotAMember,
                reference: b,
                retry_after_ms: 0,
                text: "not a member of dev".into(),
                request: Some(Request::Send {
                    target: Target::Group(n("dev"))
                }),
            }),
            Event::Ok {
                reference: c,
                request: Some(Request::GroupJoin { group: n("ops") })
            },
        ]
    );
    assert_eq!(s.pending(a), None);
    assert_eq!(
        s.last_id(),
        MessageId(0),
        "an ACK may overtake queued messages: it is no resume point"
    );
    assert_eq!(s.phase(), Phase::Messaging, "a refusal is not fatal");
}

#[test]
fn a_frame_split_across_reads_is_decoded_once_complete() {
    let mut s = logged_in(false);
    let input = bytes(&[Frame::Message {
        id: MessageId(3),
        timestamp_ms: 9,
        sender: n("bob"),
        target: Target::Room,
        body: Text::new("héllo").unwrap(),
    }]);
    for b in &input[..input.len() - 1] {
        s.handle_input(std::slice::from_ref(b)).unwrap();
        assert_eq!(s.poll_event(), None);
    }
    s.handle_input(&input[input.len() - 1..]).unwrap();
    assert_eq!(
        events(&mut s),
        vec![Event::Message(Message {
            id: MessageId(3),
            timestamp_ms: 9,
            sender: n("bob"),
            target: Target::Room,
            body: "héllo".into()
        })]
    );
}

#[test]
fn a_bad_frame_is_a_sticky_error_that_closes_the_session() {
    let mut s = greeted();
    let garbage = [0, 0, 0, 3, kind::MESSAGE, 1, 2];
    let e = s.handle_input(&garbage).unwrap_err();
    assert!(matches!(e, Error::Decode(_)), "{e:?}");
    assert_eq!(s.phase(), Phase::Closed);
    assert_eq!(
        s.handle_input(&bytes(&[Frame::Ping { token: 1 }])),
        Err(e.clone())
    );
    assert_eq!(s.error(), Some(&e));
    assert_eq!(s.register(n("x"), "pw"), Err(ApiMisuse::Closed));
}

#[test]
fn a_frame_only_clients_send_is_refused_and_unknown_types_are_skipped() {
    let mut s = greeted();
    // An unknown type byte with a body: skipped, the next frame still decodes.
    let mut input = vec![0, 0, 0, 3, 0x7f, 1, 2];
    input.extend(bytes(&[Frame::Ping { token: 5 }]));
    s.handle_input(&input).unwrap();
    assert_eq!(sent(&mut s), vec!["Pong { token: 5 }".to_owned()]);

    let e = s
        .handle_input(&bytes(&[Frame::Logout { reference: Ref(1) }]))
        .unwrap_err();
    assert_eq!(e, Error::UnexpectedFrame { got: "LOGOUT" });
}

#[test]
fn a_server_of_another_version_is_refused() {
    let mut s = Session::new("t");
    let e = s
        .handle_input(&bytes(&[Frame::ServerHello {
            version: 9,
            server: Text::new("future").unwrap(),
            info: info(),
        }]))
        .unwrap_err();
    assert_eq!(e, Error::UnsupportedVersion(9));
}

#[test]
fn shutdown_and_fatal_errors_close_the_session() {
    let mut s = logged_in(true);
    s.handle_input(&bytes(&[Frame::Shutdown {
        retry_after_ms: 5000,
        reason: Text::new("maintenance").unwrap(),
    }]))
    .unwrap();
    assert_eq!(
        events(&mut s),
        vec![Event::Shutdown {
            retry_after_ms: 5000,
            reason: "maintenance".into()
        }]
    );
    assert_eq!(s.phase(), Phase::Closed);
    assert_eq!(s.send(Target::Room, "x"), Err(ApiMisuse::Closed));

    let mut s = logged_in(false);
    s.handle_input(&bytes(&[Frame::Error {
        code: ErrorCode::IdleTimeout,
        reference: Ref(0),
        retry_after_ms: 0,
        text: Text::new("no pong").unwrap(),
    }]))
    .unwrap();
    assert_eq!(s.phase(), Phase::Closed);
}

#[test]
fn a_refused_login_may_be_retried_and_logout_closes() {
    let mut s = greeted();
    let r = s.login(n("alice"), "bad", LoginOptions::default()).unwrap();
    s.handle_input(&bytes(&[Frame::Error {
        code: ErrorCode::BadCredentials,
        reference: r,
        retry_after_ms: 0,
        text: Text::new("wrong").unwrap(),
    }]))
    .unwrap();
    assert_eq!(s.phase(), Phase::Auth);
    assert!(s.register(n("alice"), "").is_err(), "empty password");
    let r = s
        .login(n("alice"), "good", LoginOptions::default())
        .unwrap();
    s.handle_input(&bytes(&[
        Frame::LoginOk {
            reference: r,
            user: n("alice"),
        },
        Frame::RosterSnapshot {
            version: RosterVersion(1),
            last: true,
            users: vec![],
        },
        Frame::CaughtUp {
            last_id: MessageId(40),
        },
    ]))
    .unwrap();
    assert_eq!(s.last_id(), MessageId(40));
    let r = s.logout().unwrap();
    s.handle_input(&bytes(&[Frame::Ok { reference: r }]))
        .unwrap();
    assert_eq!(s.phase(), Phase::Closed);
}

#[test]
fn history_comes_oldest_first_with_each_dms_actual_recipient() {
    let mut s = logged_in(false);
    let r = s.history(Target::User(n("bob")), MessageId(0), 10).unwrap();
    s.handle_input(&bytes(&[Frame::HistoryPage {
        reference: r,
        target: Target::User(n("bob")),
        more: true,
        entries: vec![
            HistoryEntry {
                id: MessageId(9),
                timestamp_ms: 2,
                sender: n("bob"),
                body: Text::new("yes").unwrap(),
            },
            HistoryEntry {
                id: MessageId(4),
                timestamp_ms: 1,
                sender: n("alice"),
                body: Text::new("ok?").unwrap(),
            },
        ],
    }]))
    .unwrap();
    let Some(Event::HistoryPage(page)) = s.poll_event() else {
        panic!("expected a history page")
    };
    assert!(page.more);
    let got: Vec<(MessageId, Name, Target)> = page
        .messages
        .iter()
        .map(|m| (m.id, m.sender, m.target))
        .collect();
    assert_eq!(
        got,
        vec![
            (MessageId(4), n("alice"), Target::User(n("bob"))),
            (MessageId(9), n("bob"), Target::User(n("alice"))),
        ]
    );
}

/// The client session against the real engine hub, in memory: a fake shell
/// that accepts every password and stores every message.
mod pair;
mod v2;

mod with_the_engine {
    use std::time::Duration;

    use super::pair::Pair;
    use super::*;

    #[test]
    fn a_session_logs_in_syncs_its_roster_and_chats_with_the_real_hub() {
        let mut p = Pair::with_accounts(&["alice", "bob"]);
        let (a, b) = (p.connect(), p.connect());
        for (i, name) in [(a, "alice"), (b, "bob")] {
            let s = &mut p.clients[i].1;
            s.login(n(name), "pw", LoginOptions::default()).unwrap();
            p.step();
            assert_eq!(p.clients[i].1.phase(), Phase::Messaging, "{name}");
        }
        let alice_saw = p.events(a);
        assert!(
            alice_saw.contains(&Event::RosterDelta {
                version: RosterVersion(2),
                presence: Presence::Online,
                user: n("bob")
            }),
            "{alice_saw:?}"
        );
        let _ = p.events(b);

        let r = p.clients[a].1.send(Target::Room, "hello bob").unwrap();
        p.step();
        let acked = p.events(a);
        assert!(
            matches!(acked.as_slice(), [Event::Ack { reference, target: Some(Target::Room), .. }] if *reference == r),
            "{acked:?}"
        );
        let got = p.events(b);
        assert!(
            matches!(got.as_slice(), [Event::Message(m)] if m.body == "hello bob" && m.sender == n("alice")),
            "{got:?}"
        );
        assert_eq!(p.clients[b].1.roster().len(), 2);
    }

    #[test]
    fn the_session_answers_the_hubs_idle_ping_and_stays_connected() {
        let mut p = Pair::with_accounts(&["alice"]);
        let a = p.connect();
        p.clients[a]
            .1
            .login(n("alice"), "pw", LoginOptions::default())
            .unwrap();
        p.step();
        let conn = p.clients[a].0;
        // Jump to each deadline twice: the ping, then the point where an
        // unanswered ping would close the session.
        for _ in 0..2 {
            let t = p
                .hub
                .poll_timeout(conn)
                .expect("a logged-in session has a deadline");
            p.now = p.now.max(t) + Duration::from_millis(1);
            p.hub.handle_timeout(p.now, conn);
            p.step();
        }
        let seen = p.events(a);
        assert!(
            !seen.iter().any(|e| matches!(e, Event::Error(_))),
            "{seen:?}"
        );
        assert_eq!(p.clients[a].1.phase(), Phase::Messaging);
    }
}
