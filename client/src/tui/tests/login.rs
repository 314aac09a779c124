//! The login screen: logging in, how problems are worded, logging out.

use confab_engine::MessageId;

use super::harness::{message, n, room, Client};
use crate::tui::editor::Edit;
use crate::tui::login_form::{Field, Problem};
use crate::tui::model::{Link, Screen};
use crate::tui::network::{Command, Login, LoginProblem, NetEvent};
use crate::tui::update::HISTORY_PAGE;
use crate::tui::Action;
use crate::tui::Msg;

#[test]
fn logging_in_lists_groups_and_loads_the_rooms_history() {
    let mut c = Client::new("alice");
    let cmds = c.key(Msg::Submit);
    assert_eq!(
        cmds,
        vec![Command::Connect(Login {
            host: "127.0.0.1".into(),
            port: 7878,
            user: n("alice"),
            password: "pw".into(),
            register: false,
            resume_after: MessageId(0),
            device: None,
        })]
    );
    assert_eq!(c.m.link, Link::Connecting);
    let cmds = c.logged_in("Alice");
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
    assert_eq!(c.m.screen, Screen::Main);
    assert_eq!(c.m.me(), Some(n("Alice")));
    assert_eq!(c.m.link, Link::Online);
}

#[test]
fn a_tls_login_shows_in_the_status_bar_and_a_first_use_pin_is_announced() {
    let mut c = Client::new("bob");
    c.key(Msg::Submit);
    c.net(NetEvent::LoggedIn {
        user: n("bob"),
        addr: "127.0.0.1:7878".into(),
        tls: true,
        notice: Some("trusting the certificate of 127.0.0.1:7878 on first use".into()),
        server: None,
    });
    assert!(c.m.account.as_ref().unwrap().tls);
    let notice = c.m.notice.clone().unwrap().text;
    assert!(notice.contains("on first use"), "{notice}");
}

#[test]
fn login_problems_are_shown_in_words() {
    let mut c = Client::new("bob");
    c.key(Msg::Submit);
    c.net(NetEvent::LoginFailed(LoginProblem::LockedOut {
        until_ms: 1_700_000_000_000 + 90_000,
    }));
    assert_eq!(c.m.link, Link::Offline);
    assert!(!c.m.login.busy);
    let text = c.m.describe(c.m.login.problem.as_ref().unwrap());
    assert!(text.contains("try again in 1 min 30 s"), "{text}");

    // A bad name is caught before anything is sent.
    c.m.login.field = Field::User;
    c.key(Msg::Edit(Edit::Insert('!')));
    assert_eq!(c.key(Msg::Submit), vec![]);
    assert!(matches!(c.m.login.problem, Some(Problem::Form(_))));
    assert_eq!(c.m.login.field, Field::User);
}

#[test]
fn logging_out_forgets_the_conversations() {
    let mut c = Client::online("bob", &["bob"], MessageId(0));
    c.ev(message(MessageId(1), "alice", room(), "hi"));
    assert_eq!(c.key(Msg::Action(Action::Account)), vec![Command::Logout]);
    c.net(NetEvent::LoggedOut);
    assert_eq!(c.m.screen, Screen::Login);
    assert!(c.m.account.is_none());
    assert!(c.ids(room()).is_empty());
    assert_eq!(c.m.bookmark, MessageId(0));
}
