//! The client model, driven through `update` with events and keys, read
//! back as state: no terminal, no socket, virtual time.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use confab::session::HistoryPage;
use confab::{Event, Message};
use confab_engine::frame::{ErrorCode, GroupChange, GroupInfo, Presence};
use confab_engine::{MessageId, Name, Ref, RosterVersion, Target};

use super::model::{ConvId, Edit, Field, Link, LoginForm, Model, Now, Older, Problem, Screen};
use super::network::{Command, Login, LoginProblem, NetEvent};
use super::update::{backoff, update, HISTORY_PAGE};
use super::{Action, Msg};

fn n(s: &str) -> Name {
    Name::new(s).unwrap()
}

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// A model and a virtual clock.
struct Client {
    m: Model,
    ms: u64,
    /// The next request reference the fake network hands out.
    next_ref: u32,
}

impl Client {
    fn new(user: &str) -> Client {
        let form = LoginForm::new("127.0.0.1", 7878, user, "pw", false);
        Client {
            m: Model::new(form, (120, 40), 0),
            ms: 0,
            next_ref: 1,
        }
    }

    /// A client logged in as `user` with `online` in the roster and
    /// CAUGHT_UP at `caught_up`.
    fn online(user: &str, online: &[&str], caught_up: MessageId) -> Client {
        let mut c = Client::new(user);
        let cmds = c.key(Msg::Submit);
        assert!(matches!(&cmds[..], [Command::Connect(_)]), "{cmds:?}");
        c.logged_in(user);
        let users: Vec<Name> = online.iter().map(|u| n(u)).collect();
        c.ev(Event::RosterSnapshot {
            version: RosterVersion(1),
            users,
        });
        c.ev(Event::CaughtUp { last_id: caught_up });
        c
    }

    fn now(&self) -> Now {
        Now {
            mono: base() + Duration::from_millis(self.ms),
            wall_ms: 1_700_000_000_000 + self.ms,
        }
    }

    /// Runs a message through update; the commands that reach the network
    /// are echoed back as `Requested` with fresh references, as the
    /// network thread does.
    fn msg(&mut self, msg: Msg) -> Vec<Command> {
        let now = self.now();
        let cmds = update(&mut self.m, msg, now);
        for c in &cmds {
            let unanswered = matches!(
                c,
                Command::Connect(_) | Command::Logout | Command::Quit | Command::MarkRead { .. }
            );
            if !unanswered {
                let reference = self.next_ref;
                self.next_ref += 1;
                let now = self.now();
                let _ = update(
                    &mut self.m,
                    Msg::Net(NetEvent::Requested {
                        reference: Ref(reference),
                        command: c.clone(),
                    }),
                    now,
                );
            }
        }
        cmds
    }

    fn key(&mut self, msg: Msg) -> Vec<Command> {
        self.msg(msg)
    }

    fn net(&mut self, e: NetEvent) -> Vec<Command> {
        self.msg(Msg::Net(e))
    }

    fn ev(&mut self, e: Event) -> Vec<Command> {
        self.net(NetEvent::Session(e))
    }

    fn logged_in(&mut self, user: &str) -> Vec<Command> {
        self.next_ref = 1;
        self.net(NetEvent::LoggedIn {
            user: n(user),
            addr: "127.0.0.1:7878".into(),
            tls: false,
            notice: None,
            server: None,
        })
    }

    fn type_line(&mut self, text: &str) -> Vec<Command> {
        for c in text.chars() {
            self.key(Msg::Edit(Edit::Insert(c)));
        }
        self.key(Msg::Submit)
    }

    fn advance(&mut self, d: Duration) -> Vec<Command> {
        self.ms += d.as_millis() as u64;
        self.msg(Msg::Tick)
    }

    /// The ids stored in a conversation, in order.
    fn ids(&self, t: Target) -> Vec<MessageId> {
        self.m
            .conversations
            .get(&ConvId::of(&t))
            .map(|c| c.messages.keys().copied().collect())
            .unwrap_or_default()
    }

    fn unread(&self, t: Target) -> u32 {
        self.m
            .conversations
            .get(&ConvId::of(&t))
            .map_or(0, |c| c.unread)
    }

    /// The reference the model holds for a pending command.
    fn ref_of(&self, want: &Command) -> Ref {
        *self
            .m
            .requests
            .iter()
            .find(|(_, c)| *c == want)
            .unwrap_or_else(|| panic!("no request {want:?} in {:?}", self.m.requests))
            .0
    }
}

fn message(id: MessageId, sender: &str, target: Target, body: &str) -> Event {
    Event::Message(Message {
        id,
        timestamp_ms: 1_700_000_000_000 + id.0,
        sender: n(sender),
        target,
        body: body.into(),
    })
}

fn room() -> Target {
    Target::Room
}

fn group(g: &str) -> Target {
    Target::Group(n(g))
}

fn user(u: &str) -> Target {
    Target::User(n(u))
}

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
fn messages_land_in_their_conversation_and_count_as_unread_elsewhere() {
    let mut c = Client::online("bob", &["alice", "bob"], MessageId(0));
    c.ev(message(MessageId(1), "alice", room(), "hello room"));
    c.ev(message(MessageId(2), "alice", user("bob"), "psst"));
    c.ev(message(MessageId(3), "alice", group("dev"), "hi devs"));
    c.ev(message(MessageId(4), "alice", group("dev"), "still there?"));

    assert_eq!(c.m.current, ConvId::Room);
    assert_eq!(c.ids(room()), vec![MessageId(1)]);
    // The DM sent to bob is filed under its sender, alice.
    assert_eq!(c.ids(user("alice")), vec![MessageId(2)]);
    assert_eq!(c.ids(group("dev")), vec![MessageId(3), MessageId(4)]);
    assert_eq!(c.unread(room()), 0, "the shown conversation is read");
    assert_eq!(c.unread(user("alice")), 1);
    assert_eq!(c.unread(group("dev")), 2);

    // A DM of our own from another session goes under its recipient.
    c.ev(message(MessageId(5), "bob", user("carol"), "from my phone"));
    assert_eq!(c.ids(user("carol")), vec![MessageId(5)]);
    assert_eq!(c.unread(user("carol")), 0, "our own words are not unread");
}

#[test]
fn switching_conversations_marks_them_read_and_loads_their_history_once() {
    let mut c = Client::online("bob", &["alice", "bob"], MessageId(0));
    c.ev(message(MessageId(3), "alice", group("dev"), "hi devs"));
    c.ev(message(MessageId(4), "alice", user("bob"), "psst"));

    // Ctrl-N walks the lists in order: all, #dev, then the people.
    let cmds = c.key(Msg::NextConversation);
    assert_eq!(c.m.current, ConvId::of(&group("dev")));
    assert_eq!(c.unread(group("dev")), 0);
    assert_eq!(
        cmds,
        vec![
            Command::History {
                target: group("dev"),
                before: MessageId(0),
                limit: HISTORY_PAGE
            },
            // The user's other sessions learn that it is read.
            Command::MarkRead {
                target: group("dev"),
                id: MessageId(3)
            }
        ]
    );
    // Typing goes to the shown conversation.
    let cmds = c.type_line("hello devs");
    assert_eq!(
        cmds,
        vec![Command::Send {
            target: group("dev"),
            body: "hello devs".into()
        }]
    );
    assert_eq!(c.m.pending_in_current(), vec!["hello devs".to_owned()]);

    // Picking alice in the people list (Tab Tab, Down past ourselves, Enter).
    c.key(Msg::Next);
    c.key(Msg::Next);
    c.key(Msg::Down);
    c.key(Msg::Down);
    let cmds = c.key(Msg::Submit);
    assert_eq!(c.m.current, ConvId::of(&user("alice")));
    assert_eq!(c.unread(user("alice")), 0);
    assert_eq!(cmds.len(), 2, "{cmds:?}");
    assert_eq!(
        cmds[1],
        Command::MarkRead {
            target: user("alice"),
            id: MessageId(4)
        }
    );
    // Back to the group: its history is not fetched again.
    let cmds = c.type_line("/msg #dev");
    assert_eq!(c.m.current, ConvId::of(&group("dev")));
    assert_eq!(cmds, vec![]);
    // A DM to someone new opens their conversation.
    let cmds = c.type_line("/msg carol are you there");
    assert_eq!(
        cmds,
        vec![Command::Send {
            target: user("carol"),
            body: "are you there".into()
        }]
    );
}

#[test]
fn a_read_marker_from_another_device_recomputes_the_unread_count_from_the_marker() {
    let mut c = Client::online("bob", &["alice", "bob"], MessageId(0));
    for id in [3, 4, 5] {
        c.ev(message(MessageId(id), "alice", group("dev"), "hi devs"));
    }
    assert_eq!(c.unread(group("dev")), 3);
    c.ev(Event::ReadMarker {
        target: group("dev"),
        id: MessageId(4),
    });
    assert_eq!(c.unread(group("dev")), 1);
    c.ev(Event::ReadMarker {
        target: group("dev"),
        id: MessageId(5),
    });
    assert_eq!(c.unread(group("dev")), 0);
    // An older marker arriving late changes nothing, and viewing the
    // conversation now sends no MARK_READ: the server knows already.
    c.ev(Event::ReadMarker {
        target: group("dev"),
        id: MessageId(3),
    });
    assert_eq!(c.unread(group("dev")), 0);
    let cmds = c.key(Msg::NextConversation);
    assert!(
        !cmds.iter().any(|c| matches!(c, Command::MarkRead { .. })),
        "{cmds:?}"
    );
    // A marker heard before the messages (at login, before the replay)
    // keeps them from counting as unread.
    c.ev(Event::ReadMarker {
        target: user("alice"),
        id: MessageId(9),
    });
    c.ev(message(MessageId(9), "alice", user("bob"), "old news"));
    c.ev(message(MessageId(10), "alice", user("bob"), "new"));
    assert_eq!(c.unread(user("alice")), 1);
}

#[test]
fn viewing_a_conversation_marks_it_read_once_per_new_message() {
    let mut c = Client::online("bob", &["alice", "bob"], MessageId(0));
    let marks = |cmds: &[Command]| -> Vec<MessageId> {
        cmds.iter()
            .filter_map(|c| match c {
                Command::MarkRead { id, .. } => Some(*id),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        marks(&c.ev(message(MessageId(7), "alice", room(), "hi"))),
        vec![MessageId(7)]
    );
    assert_eq!(marks(&c.advance(Duration::from_millis(10))), vec![]);
    assert_eq!(
        marks(&c.ev(message(MessageId(8), "alice", room(), "yo"))),
        vec![MessageId(8)]
    );
}

#[test]
fn acks_store_our_messages_and_history_adds_no_unread() {
    let mut c = Client::online("bob", &["bob"], MessageId(0));
    c.type_line("first");
    let r = c.ref_of(&Command::Send {
        target: room(),
        body: "first".into(),
    });
    c.ev(Event::Ack {
        reference: r,
        id: MessageId(7),
        timestamp_ms: 1,
        target: Some(room()),
    });
    assert_eq!(c.ids(room()), vec![MessageId(7)]);
    assert!(c.m.pending_in_current().is_empty());

    let r = c.ref_of(&Command::History {
        target: room(),
        before: MessageId(0),
        limit: HISTORY_PAGE,
    });
    let page = |ids: &[MessageId]| -> Vec<Message> {
        ids.iter()
            .map(|&id| Message {
                id,
                timestamp_ms: id.0,
                sender: n("alice"),
                target: room(),
                body: format!("old {id}"),
            })
            .collect()
    };
    c.ev(Event::HistoryPage(HistoryPage {
        reference: r,
        target: room(),
        more: true,
        messages: page(&[MessageId(3), MessageId(5), MessageId(7)]),
    }));
    assert_eq!(
        c.ids(room()),
        vec![MessageId(3), MessageId(5), MessageId(7)],
        "id 7 is held once"
    );
    assert_eq!(c.unread(room()), 0);
    assert_eq!(c.m.current().older, Older::More);

    // Scrolling to the top asks for the page before the oldest message.
    let cmds = c.key(Msg::PageUp);
    let want = Command::History {
        target: room(),
        before: MessageId(3),
        limit: HISTORY_PAGE,
    };
    assert_eq!(cmds, vec![want.clone()]);
    assert_eq!(c.key(Msg::PageUp), vec![], "one request at a time");
    let r = c.ref_of(&want);
    c.ev(Event::HistoryPage(HistoryPage {
        reference: r,
        target: room(),
        more: false,
        messages: page(&[MessageId(1), MessageId(2)]),
    }));
    assert_eq!(
        c.ids(room()),
        vec![
            MessageId(1),
            MessageId(2),
            MessageId(3),
            MessageId(5),
            MessageId(7)
        ]
    );
    assert_eq!(c.m.current().older, Older::Complete);
    assert_eq!(c.key(Msg::PageUp), vec![], "nothing older to fetch");
}

#[test]
fn roster_snapshots_and_deltas_update_the_people_list() {
    let mut c = Client::online("bob", &["carol", "bob", "alice"], MessageId(0));
    let people = |c: &Client| -> Vec<(String, bool)> {
        c.m.people_rows()
            .iter()
            .map(|r| (confab::address::format_target(&r.target), r.active))
            .collect()
    };
    let s = |v: &[(&str, bool)]| -> Vec<(String, bool)> {
        v.iter().map(|(a, b)| ((*a).to_owned(), *b)).collect()
    };
    assert_eq!(
        people(&c),
        s(&[("@bob", true), ("@alice", true), ("@carol", true)])
    );
    c.ev(Event::RosterDelta {
        version: RosterVersion(2),
        presence: Presence::Offline,
        user: n("carol"),
    });
    c.ev(Event::RosterDelta {
        version: RosterVersion(3),
        presence: Presence::Online,
        user: n("Dave"),
    });
    assert_eq!(
        people(&c),
        s(&[("@bob", true), ("@alice", true), ("@Dave", true)])
    );
    // Someone offline with a DM conversation stays listed, dimmed.
    c.ev(message(MessageId(9), "Dave", user("bob"), "bye"));
    c.ev(Event::RosterDelta {
        version: RosterVersion(4),
        presence: Presence::Offline,
        user: n("dave"),
    });
    assert_eq!(
        people(&c),
        s(&[("@bob", true), ("@alice", true), ("@Dave", false)])
    );
    // A fresh snapshot (after a reconnect, or a coalesced one) replaces it all.
    c.ev(Event::RosterSnapshot {
        version: RosterVersion(10),
        users: vec![n("bob"), n("erin")],
    });
    assert_eq!(
        people(&c),
        s(&[("@bob", true), ("@erin", true), ("@Dave", false)])
    );
}

#[test]
fn groups_follow_the_list_events_and_our_answers() {
    let mut c = Client::online("bob", &["bob"], MessageId(0));
    let r = c.ref_of(&Command::GroupList);
    c.ev(Event::GroupList {
        reference: r,
        groups: vec![
            GroupInfo {
                name: n("dev"),
                members: 2,
                is_member: true,
            },
            GroupInfo {
                name: n("ops"),
                members: 1,
                is_member: false,
            },
        ],
    });
    let groups = |c: &Client| -> Vec<(String, bool)> {
        c.m.group_rows()
            .iter()
            .map(|r| (confab::address::format_target(&r.target), r.active))
            .collect()
    };
    assert_eq!(
        groups(&c),
        vec![
            ("all".into(), true),
            ("#dev".into(), true),
            ("#ops".into(), false)
        ]
    );
    // Enter on a group not joined joins it; the OK opens it.
    c.key(Msg::Next);
    c.key(Msg::Down);
    c.key(Msg::Down);
    assert_eq!(c.key(Msg::Submit), vec![Command::GroupJoin(n("ops"))]);
    let r = c.ref_of(&Command::GroupJoin(n("ops")));
    let cmds = c.ev(Event::Ok {
        reference: r,
        request: None,
    });
    assert_eq!(c.m.current, ConvId::of(&group("ops")));
    assert_eq!(cmds.len(), 1, "its history: {cmds:?}");
    // Another session of ours creates a group: it shows up as joined.
    c.ev(Event::GroupEvent {
        change: GroupChange::Joined,
        group: n("new"),
        user: n("bob"),
    });
    assert!(groups(&c).contains(&("#new".into(), true)));
    // F7 on the shown group, Enter: leave it, and go back to the room.
    c.key(Msg::Action(Action::LeaveGroup));
    assert_eq!(c.key(Msg::Submit), vec![Command::GroupLeave(n("ops"))]);
    let r = c.ref_of(&Command::GroupLeave(n("ops")));
    c.ev(Event::Ok {
        reference: r,
        request: None,
    });
    assert_eq!(c.m.current, ConvId::Room);
    assert!(groups(&c).contains(&("#ops".into(), false)));
}

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
    let text = super::model::describe_problem(c.m.login.problem.as_ref().unwrap(), &c.m);
    assert!(
        text.contains("The certificate of 127.0.0.1:7878 has changed (SHA256:ab:cd)")
            && text.contains("remove its line from /home/bob/.config/confab/known_servers"),
        "{text}"
    );
    assert_eq!(c.advance(backoff(5)), vec![], "no reconnect by itself");
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
    let text = super::model::describe_problem(c.m.login.problem.as_ref().unwrap(), &c.m);
    assert!(text.contains("try again in 1 min 30 s"), "{text}");

    // A bad name is caught before anything is sent.
    c.m.login.field = Field::User;
    c.key(Msg::Edit(Edit::Insert('!')));
    assert_eq!(c.key(Msg::Submit), vec![]);
    assert!(matches!(c.m.login.problem, Some(Problem::Form(_))));
    assert_eq!(c.m.login.field, Field::User);
}

#[test]
fn refusals_are_reported_and_pending_messages_dropped() {
    let mut c = Client::online("bob", &["bob"], MessageId(0));
    c.type_line("/msg nobody hello?");
    let r = c.ref_of(&Command::Send {
        target: user("nobody"),
        body: "hello?".into(),
    });
    c.ev(Event::Error(confab::ServerError {
        code: ErrorCode::NoSuchUser,
        reference: r,
        retry_after_ms: 0,
        text: "no user nobody".into(),
        request: None,
    }));
    let notice = c.m.notice.clone().unwrap();
    assert!(notice.error);
    assert!(notice.text.contains("NO_SUCH_USER"), "{}", notice.text);
    let sending =
        c.m.requests
            .values()
            .any(|c| matches!(c, Command::Send { .. }));
    assert!(!sending);
}

#[test]
fn a_message_too_long_or_while_offline_stays_in_the_input_line() {
    let mut c = Client::online("bob", &["bob"], MessageId(0));
    c.net(NetEvent::Lost("reset".into()));
    assert_eq!(c.type_line("are you there"), vec![]);
    assert_eq!(c.m.input.text(), "are you there");
    assert!(c.m.notice.as_ref().unwrap().error);
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

#[test]
fn missed_messages_are_fetched_from_history_and_count_as_read() {
    let mut c = Client::online("bob", &["bob"], MessageId(0));
    c.ev(message(
        MessageId(50),
        "alice",
        group("dev"),
        "after the gap",
    ));
    let cmds = c.ev(Event::Missed {
        target: group("dev"),
        first: MessageId(41),
        last: MessageId(48),
        count: 3,
    });
    let want = Command::History {
        target: group("dev"),
        before: MessageId(49),
        limit: 3,
    };
    assert_eq!(cmds, vec![want.clone()]);
    let r = c.ref_of(&want);
    let page = [41, 44, 48].map(|id| Message {
        id: MessageId(id),
        timestamp_ms: id,
        sender: n("alice"),
        target: group("dev"),
        body: format!("dropped {id}"),
    });
    c.ev(Event::HistoryPage(HistoryPage {
        reference: r,
        target: group("dev"),
        more: true,
        messages: page.to_vec(),
    }));
    assert_eq!(
        c.ids(group("dev")),
        vec![MessageId(41), MessageId(44), MessageId(48), MessageId(50)]
    );
    let dev = &c.m.conversations[&ConvId::of(&group("dev"))];
    // The page reaches below the oldest message held, so PgUp goes on
    // from it.
    assert_eq!(dev.older, Older::More);
    assert_eq!(dev.unread, 1, "history is not unread");
}

#[test]
fn moderation_commands_become_moderate_requests_with_their_length_and_reason() {
    use confab_engine::frame::ModAction;
    let mut c = Client::online("carol", &["bob", "carol"], MessageId(0));
    let moderate = |action, user: &str, seconds, reason: &str| Command::Moderate {
        action,
        user: n(user),
        seconds,
        reason: reason.into(),
    };
    assert_eq!(
        c.type_line("/kick @bob stop spamming"),
        vec![moderate(ModAction::Kick, "bob", 0, "stop spamming")]
    );
    assert_eq!(
        c.type_line("/ban bob 7d spam"),
        vec![moderate(ModAction::Ban, "bob", 604_800, "spam")]
    );
    assert_eq!(
        c.type_line("/mute bob too loud"),
        vec![moderate(ModAction::Mute, "bob", 0, "too loud")]
    );
    assert_eq!(
        c.type_line("/unban bob"),
        vec![moderate(ModAction::Unban, "bob", 0, "")]
    );
    assert_eq!(c.type_line("/kick !bad"), vec![], "refused locally");
}

#[test]
fn delete_and_announce_become_requests_and_a_deletion_or_notice_shows() {
    let mut c = Client::online("carol", &["bob", "carol"], MessageId(0));
    assert_eq!(
        c.type_line("/delete 42 spam"),
        vec![Command::Delete {
            id: MessageId(42),
            reason: "spam".into()
        }]
    );
    assert_eq!(
        c.type_line("/announce back soon"),
        vec![Command::Announce("back soon".into())]
    );
    assert_eq!(c.type_line("/delete soon"), vec![], "refused locally");
    assert!(c.m.notice.as_ref().is_some_and(|n| n.error));

    c.ev(message(MessageId(7), "bob", room(), "buy coins"));
    c.ev(message(MessageId(8), "bob", room(), ""));
    let body = |c: &Client, id: u64| {
        c.m.conversations[&ConvId::Room].messages[&MessageId(id)]
            .body
            .clone()
    };
    assert_eq!(body(&c, 8), "(message deleted)", "a tombstone from history");
    c.ev(Event::Deleted {
        id: MessageId(7),
        by: n("carol"),
    });
    assert_eq!(body(&c, 7), "(message deleted) by carol");
    assert_eq!(c.m.notice.clone().unwrap().text, "carol deleted a message.");
    c.ev(Event::Notice {
        text: "restart at noon".into(),
    });
    assert_eq!(
        c.m.notice.clone().unwrap().text,
        "Announcement: restart at noon"
    );
}

#[test]
fn group_moderation_commands_act_in_the_group_shown() {
    use confab_engine::frame::GroupAction;
    let mut c = Client::online("olga", &["bob", "olga"], MessageId(0));
    assert_eq!(c.type_line("/remove bob"), vec![], "not in a group");
    c.m.conversation_mut(&group("dev"));
    c.m.current = ConvId::of(&group("dev"));
    assert_eq!(
        c.type_line("/gmute @bob 30m"),
        vec![Command::GroupModerate {
            group: n("dev"),
            action: GroupAction::Mute,
            user: n("bob"),
            seconds: 1800,
        }]
    );
    assert_eq!(
        c.type_line("/remove bob"),
        vec![Command::GroupModerate {
            group: n("dev"),
            action: GroupAction::Remove,
            user: n("bob"),
            seconds: 0,
        }]
    );
}
