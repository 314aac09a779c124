//! The test client: a [`Model`] driven through `update` with events and
//! keys, a virtual clock, and a fake network that echoes each command back
//! with a fresh reference, as the network thread does.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use confab::{Event, Message};
use confab_engine::{MessageId, Name, Ref, RosterVersion, Target};

use crate::tui::clock::Now;
use crate::tui::conversation::ConvId;
use crate::tui::editor::Edit;
use crate::tui::login_form::LoginForm;
use crate::tui::model::Model;
use crate::tui::network::{Command, NetEvent};
use crate::tui::update::update;
use crate::tui::Msg;

pub(super) fn n(s: &str) -> Name {
    Name::new(s).unwrap()
}

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// A model and a virtual clock.
pub(super) struct Client {
    pub(super) m: Model,
    ms: u64,
    /// The next request reference the fake network hands out.
    next_ref: u32,
}

impl Client {
    pub(super) fn new(user: &str) -> Client {
        let form = LoginForm::new("127.0.0.1", 7878, user, "pw", false);
        Client {
            m: Model::new(form, (120, 40), 0),
            ms: 0,
            next_ref: 1,
        }
    }

    /// A client logged in as `user` with `online` in the roster and
    /// CAUGHT_UP at `caught_up`.
    pub(super) fn online(user: &str, online: &[&str], caught_up: MessageId) -> Client {
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

    pub(super) fn now(&self) -> Now {
        Now {
            mono: base() + Duration::from_millis(self.ms),
            wall_ms: 1_700_000_000_000 + self.ms,
        }
    }

    /// Runs a message through update; the commands that reach the network
    /// are echoed back as `Requested` with fresh references, as the
    /// network thread does.
    pub(super) fn msg(&mut self, msg: Msg) -> Vec<Command> {
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

    pub(super) fn key(&mut self, msg: Msg) -> Vec<Command> {
        self.msg(msg)
    }

    pub(super) fn net(&mut self, e: NetEvent) -> Vec<Command> {
        self.msg(Msg::Net(e))
    }

    pub(super) fn ev(&mut self, e: Event) -> Vec<Command> {
        self.net(NetEvent::Session(e))
    }

    pub(super) fn logged_in(&mut self, user: &str) -> Vec<Command> {
        self.next_ref = 1;
        self.net(NetEvent::LoggedIn {
            user: n(user),
            addr: "127.0.0.1:7878".into(),
            tls: false,
            notice: None,
            server: None,
        })
    }

    pub(super) fn type_line(&mut self, text: &str) -> Vec<Command> {
        for c in text.chars() {
            self.key(Msg::Edit(Edit::Insert(c)));
        }
        self.key(Msg::Submit)
    }

    pub(super) fn advance(&mut self, d: Duration) -> Vec<Command> {
        self.ms += d.as_millis() as u64;
        self.msg(Msg::Tick)
    }

    /// The ids stored in a conversation, in order.
    pub(super) fn ids(&self, t: Target) -> Vec<MessageId> {
        self.m
            .conversations
            .get(&ConvId::of(&t))
            .map(|c| c.messages.keys().copied().collect())
            .unwrap_or_default()
    }

    pub(super) fn unread(&self, t: Target) -> u32 {
        self.m
            .conversations
            .get(&ConvId::of(&t))
            .map_or(0, |c| c.unread)
    }

    /// The reference the model holds for a pending command.
    pub(super) fn ref_of(&self, want: &Command) -> Ref {
        *self
            .m
            .requests
            .iter()
            .find(|(_, c)| *c == want)
            .unwrap_or_else(|| panic!("no request {want:?} in {:?}", self.m.requests))
            .0
    }
}

pub(super) fn message(id: MessageId, sender: &str, target: Target, body: &str) -> Event {
    Event::Message(Message {
        id,
        timestamp_ms: 1_700_000_000_000 + id.0,
        sender: n(sender),
        target,
        body: body.into(),
    })
}

pub(super) fn room() -> Target {
    Target::Room
}

pub(super) fn group(g: &str) -> Target {
    Target::Group(n(g))
}

pub(super) fn user(u: &str) -> Target {
    Target::User(n(u))
}
