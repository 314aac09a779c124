//! Reconnecting: from the bookmark without duplicates, backing off, after a
//! shutdown notice, and not when the certificate changed.

use std::time::Duration;

use confab::Event;
use confab_engine::{MessageId, RosterVersion};

use super::harness::{group, message, n, room, user, Client};
use crate::tui::conversation::ConvId;
use crate::tui::login_form::Problem;
use crate::tui::model::{Link, Screen};
use crate::tui::network::{Command, Login, LoginProblem, NetEvent};
use crate::tui::update::{backoff, HISTORY_PAGE};

#[test]
fn a_lost_connection_reconnects_from_the_bookmark_and_catches_up_without_duplicates() {
    let mut c = Client::online("bob", &["alice", "bob"], MessageId(10));
    c.ev(message(MessageId(11), "alice", room(), "live room"));
    c.ev(message(MessageId(12), "alice", group("dev"), "live group"));
    c.ev(message(MessageId(13), "alice", user("bob"), "a DM"));
    c.type_line("mine");
    let r = c.ref_of(&Command::Send {
        target: room(),
        body: "mine".into(),
    });
    // Id 14 (carol's) is still on its way when our ACK (15) overtakes it.
    c.ev(Event::Ack {
        reference: r,
        id: MessageId(15),
        timestamp_ms: 15,
        target: Some(room()),
    });
    assert_eq!(
        c.m.bookmark,
        MessageId(13),
        "an ACK does not raise the bookmark"
    );
    assert_eq!(c.unread(group("dev")), 1);
    assert_eq!(c.unread(user("alice")), 1);

    c.net(NetEvent::Lost("connection reset".into()));
    assert!(matches!(c.m.link, Link::Waiting { attempt: 0, .. }));
    assert_eq!(c.m.roster.len(), 2, "the roster stays shown until resynced");
    assert_eq!(c.advance(Duration::from_millis(100)), vec![]);
    let cmds = c.advance(backoff(0));
    assert_eq!(
        cmds,
        vec![Command::Connect(Login {
            host: "127.0.0.1".into(),
            port: 7878,
            user: n("bob"),
            password: "pw".into(),
            register: false,
            resume_after: MessageId(13),
            device: None,
        })]
    );
    assert_eq!(c.m.link, Link::Reconnecting { attempt: 1 });

    // Back in: the groups are listed again, and the room's first page,
    // which never came, is asked for again. The replay brings 14 and 16,
    // and repeats 15, which we have from its ACK.
    let cmds = c.logged_in("bob");
    assert_eq!(
        cmds,
        vec![
            Command::GroupList,
            Command::History {
                target: room(),
                before: MessageId(0),
                limit: HISTORY_PAGE
            }
        ]
    );
    c.ev(Event::RosterSnapshot {
        version: RosterVersion(30),
        users: vec![n("bob"), n("carol")],
    });
    c.ev(message(
        MessageId(14),
        "carol",
        room(),
        "in flight when we were cut off",
    ));
    c.ev(message(MessageId(15), "bob", room(), "mine"));
    c.ev(message(
        MessageId(16),
        "carol",
        group("dev"),
        "missed while away",
    ));
    c.ev(Event::CaughtUp {
        last_id: MessageId(16),
    });
    c.ev(message(MessageId(17), "carol", room(), "live again"));

    assert_eq!(
        c.ids(room()),
        vec![MessageId(11), MessageId(14), MessageId(15), MessageId(17)]
    );
    assert_eq!(c.ids(group("dev")), vec![MessageId(12), MessageId(16)]);
    assert_eq!(c.ids(user("alice")), vec![MessageId(13)]);
    assert_eq!(c.unread(group("dev")), 2);
    assert_eq!(c.unread(user("alice")), 1);
    assert_eq!(c.m.bookmark, MessageId(17));
    assert_eq!(c.m.link, Link::Online);
    let people: Vec<String> = c.m.roster.values().map(|u| u.to_string()).collect();
    assert_eq!(people, vec!["bob", "carol"], "the roster was resynced");
}

#[test]
fn failed_reconnects_back_off_and_a_wrong_password_returns_to_the_login_screen() {
    let mut c = Client::online("bob", &["bob"], MessageId(5));
    c.net(NetEvent::Lost("reset".into()));
    c.advance(backoff(0));
    assert_eq!(c.m.link, Link::Reconnecting { attempt: 1 });
    c.net(NetEvent::LoginFailed(LoginProblem::Unreachable {
        addr: "127.0.0.1:7878".into(),
        reason: "connection refused".into(),
    }));
    assert!(matches!(c.m.link, Link::Waiting { attempt: 1, .. }));
    assert_eq!(c.advance(backoff(0)), vec![], "the second wait is longer");
    assert_eq!(c.advance(backoff(1) - backoff(0)).len(), 1);
    assert_eq!(c.m.link, Link::Reconnecting { attempt: 2 });
    assert!(backoff(3) > backoff(2) && backoff(40) == Duration::from_secs(30));

    c.net(NetEvent::LoginFailed(LoginProblem::WrongPassword));
    assert_eq!(c.m.screen, Screen::Login);
    assert_eq!(c.m.link, Link::Offline);
    assert_eq!(
        c.m.login.problem,
        Some(Problem::Login(LoginProblem::WrongPassword))
    );
    assert!(c.m.conversations[&ConvId::Room].messages.is_empty());
}

#[test]
fn a_shutdown_notice_sets_when_to_come_back() {
    let mut c = Client::online("bob", &["bob"], MessageId(5));
    c.ev(Event::Shutdown {
        retry_after_ms: 3000,
        reason: "maintenance".into(),
    });
    c.net(NetEvent::Lost("the server closed the connection".into()));
    assert!(matches!(c.m.link, Link::Waiting { .. }), "{:?}", c.m.link);
    let notice = c.m.notice.clone().unwrap().text;
    assert!(notice.contains("maintenance"), "the notice stays: {notice}");
    assert_eq!(c.advance(Duration::from_millis(2900)), vec![]);
    assert_eq!(c.advance(Duration::from_millis(100)).len(), 1);
}

#[test]
fn a_changed_certificate_stops_reconnecting_and_says_which_line_to_remove() {
    let mut c = Client::online("bob", &["bob"], MessageId(5));
    c.net(NetEvent::Lost("reset".into()));
    c.advance(backoff(0));
    assert_eq!(c.m.link, Link::Reconnecting { attempt: 1 });
    let problem = LoginProblem::CertificateChanged {
        addr: "127.0.0.1:7878".into(),
        fingerprint: "SHA256:ab:cd".into(),
        known_servers: "/home/bob/.config/confab/known_servers".into(),
    };
    assert!(!problem.is_transient());
    c.net(NetEvent::LoginFailed(problem));
    assert_eq!(c.m.screen, Screen::Login);
    let text = c.m.describe(c.m.login.problem.as_ref().unwrap());
    assert!(
        text.contains("The certificate of 127.0.0.1:7878 has changed (SHA256:ab:cd)")
            && text.contains("remove its line from /home/bob/.config/confab/known_servers"),
        "{text}"
    );
    assert_eq!(c.advance(backoff(5)), vec![], "no reconnect by itself");
}
