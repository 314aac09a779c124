//! What the network thread reports ([`NetEvent`]) and the server says
//! ([`Event`]): logins, answers to our requests, messages, roster and group
//! changes, history pages, errors, notices.

use std::time::Duration;

use confab::session::code_name;
use confab::{Event, ServerError};
use confab_engine::frame::GroupChange;
use confab_engine::{MessageId, Name, Ref, Target};

use super::conversations::{fetch_if_unknown, label, open};
use super::reconnect::{login_failed, lost, SHUTDOWN_MIN};
use crate::tui::clock::{human_secs, Now};
use crate::tui::conversation::{ConvId, Entry, Older, DELETED};
use crate::tui::model::{Account, Focus, Link, Model, Screen};
use crate::tui::network::{Command, NetEvent};
use crate::tui::wrap;

pub(super) fn net(m: &mut Model, e: NetEvent, now: Now, out: &mut Vec<Command>) {
    match e {
        NetEvent::LoggedIn {
            user,
            addr,
            tls,
            notice,
            server,
        } => {
            logged_in(m, user, addr, tls, server.map(|s| s.info.max_body), out);
            if let Some(notice) = notice {
                m.say(notice);
            }
        }
        NetEvent::LoginFailed(p) => login_failed(m, p, now),
        NetEvent::Requested { reference, command } => {
            m.requests.insert(reference, command);
        }
        NetEvent::NotSent { command, reason } => {
            if let Command::History { target, .. } = &command {
                m.conversation_mut(target).fetching = false;
            }
            m.complain(format!("{}: {reason}", what(&command)));
        }
        NetEvent::Session(e) => session(m, e, now, out),
        NetEvent::Rtt(d) => m.rtt = Some(d),
        NetEvent::Lost(reason) => lost(m, reason, now),
        NetEvent::LoggedOut => {
            m.forget_chat();
            m.say("Logged out.");
        }
    }
}

fn logged_in(
    m: &mut Model,
    user: Name,
    addr: String,
    tls: bool,
    max_body: Option<u16>,
    out: &mut Vec<Command>,
) {
    let reconnect = matches!(m.link, Link::Reconnecting { .. });
    if reconnect {
        m.say("Reconnected: catching up.");
    } else {
        let f = &mut m.login;
        m.account = Some(Account {
            user,
            addr: addr.clone(),
            tls,
            max_body: usize::from(max_body.unwrap_or(4096)),
            host: f.host.text().trim().to_owned(),
            port: f.port.text().trim().parse().unwrap_or(0),
            // A device reconnects by its token: no password kept.
            password: if m.device.is_some() {
                String::new()
            } else {
                f.password.text().to_owned()
            },
        });
        f.busy = false;
        f.register = false;
        f.problem = None;
        m.screen = Screen::Main;
        m.focus = Focus::Input;
        m.say(format!("Logged in to {addr} as {user}. F1 shows the keys."));
    }
    if let Some(a) = &mut m.account {
        a.user = user;
        a.addr = addr;
        a.tls = tls;
        if let Some(max) = max_body {
            a.max_body = usize::from(max);
        }
    }
    m.link = Link::Online;
    m.requests.clear();
    m.rtt = None;
    out.push(Command::GroupList);
    let current = m.current().target;
    fetch_if_unknown(m, &current, out);
}

fn session(m: &mut Model, e: Event, now: Now, out: &mut Vec<Command>) {
    match e {
        Event::ServerHello(h) => {
            if let Some(a) = &mut m.account {
                a.max_body = usize::from(h.info.max_body);
            }
        }
        Event::Ok { reference, .. } => ok(m, reference, out),
        Event::RosterSnapshot { users, .. } => m.roster_snapshot(&users),
        Event::RosterDelta { presence, user, .. } => m.roster_delta(presence, user),
        Event::CaughtUp { last_id } => m.saw_caught_up(last_id),
        Event::Message(msg) => {
            let conv = m.conversation_of(&msg.sender, &msg.target);
            let entry = Entry {
                id: msg.id,
                ts_ms: msg.timestamp_ms,
                sender: msg.sender,
                body: shown_body(&msg.body),
            };
            m.store(&conv, entry, true);
            m.saw(msg.id);
        }
        Event::Ack {
            reference,
            id,
            timestamp_ms,
            ..
        } => {
            if let (Some(Command::Send { target, body }), Some(me)) =
                (m.requests.remove(&reference), m.me())
            {
                let entry = Entry {
                    id,
                    ts_ms: timestamp_ms,
                    sender: me,
                    body: wrap::clean(&body),
                };
                m.store(&target, entry, false);
            }
        }
        Event::GroupEvent {
            change,
            group,
            user,
        } => {
            let joined = change == GroupChange::Joined;
            m.group_member(group, &user, joined);
            let verb = if joined { "joined" } else { "left" };
            m.say(format!("{user} {verb} #{group}."));
            if !joined && m.is_me(&user) && m.current == ConvId::Group(group.key()) {
                open(m, &Target::Room, out);
            }
        }
        Event::GroupList { reference, groups } => {
            m.requests.remove(&reference);
            m.group_list(&groups);
        }
        Event::HistoryPage(page) => {
            let before = match m.requests.remove(&page.reference) {
                Some(Command::History { before, .. }) => before,
                _ => MessageId(0),
            };
            let c = m.conversation_mut(&page.target);
            c.fetching = false;
            let extends_top = before == MessageId(0) || c.oldest().is_none_or(|o| before <= o);
            if extends_top {
                c.older = if page.more {
                    Older::More
                } else {
                    Older::Complete
                };
            }
            for msg in page.messages {
                let entry = Entry {
                    id: msg.id,
                    ts_ms: msg.timestamp_ms,
                    sender: msg.sender,
                    body: shown_body(&msg.body),
                };
                m.store(&page.target, entry, false);
            }
        }
        Event::Missed {
            target,
            last,
            count,
            ..
        } => {
            // Exactly the dropped ones: the newest `count` below `last + 1`.
            out.push(Command::History {
                target,
                before: MessageId(last.0.saturating_add(1)),
                limit: u16::try_from(count).unwrap_or(u16::MAX).min(200),
            });
            m.complain(format!(
                "{count} message(s) of {} were dropped in transit; fetching them.",
                label(&target)
            ));
        }
        Event::ReadMarker { target, id } => m.read_marker(&target, id),
        Event::Deleted { id, by } if m.tombstone(id, Some(&by)) => {
            m.say(format!("{by} deleted a message."));
        }
        Event::Notice { text } => m.say(format!("Announcement: {}", wrap::clean(&text))),
        Event::Error(err) => server_error(m, err),
        Event::Shutdown {
            retry_after_ms,
            reason,
        } => {
            let delay = Duration::from_millis(u64::from(retry_after_ms)).max(SHUTDOWN_MIN);
            m.link = Link::Waiting {
                retry_at: now.mono + delay,
                attempt: 0,
            };
            m.complain(format!(
                "The server is shutting down ({reason}). Reconnecting in {}.",
                human_secs(delay.as_secs().max(1))
            ));
        }
        // Consumed by the network thread (LOGIN_OK, PONG) or new.
        _ => {}
    }
}

fn ok(m: &mut Model, reference: Ref, out: &mut Vec<Command>) {
    let Some(command) = m.requests.remove(&reference) else {
        return;
    };
    let me = m.me();
    match command {
        Command::GroupCreate(g) | Command::GroupJoin(g) => {
            if let Some(me) = me {
                m.group_member(g, &me, true);
            }
            if let Some(group) = m.groups.get_mut(&g.key()) {
                group.members.get_or_insert(1);
            }
            let verb = if matches!(command, Command::GroupCreate(_)) {
                "Created"
            } else {
                "Joined"
            };
            m.say(format!("{verb} #{g}."));
            open(m, &Target::Group(g), out);
        }
        Command::Moderate { action, user, .. } => {
            m.say(format!("Done: /{} @{user}.", action.as_str()));
        }
        Command::Delete { id, .. } => m.say(format!("Deleted message {}.", id.0)),
        Command::Announce(_) => m.say("Announced."),
        Command::GroupModerate {
            group,
            action,
            user,
            ..
        } => m.say(format!("Done: {} @{user} in #{group}.", action.as_str())),
        Command::GroupLeave(g) => {
            if let Some(me) = me {
                m.group_member(g, &me, false);
            }
            m.say(format!("Left #{g}."));
            if m.current == ConvId::Group(g.key()) {
                open(m, &Target::Room, out);
            }
        }
        _ => {}
    }
}

fn server_error(m: &mut Model, err: ServerError) {
    let command = m.requests.remove(&err.reference);
    if let Some(Command::History { target, .. }) = &command {
        m.conversation_mut(target).fetching = false;
    }
    let what = command.as_ref().map_or_else(
        || "The server says".to_owned(),
        |c| format!("{} refused", what(c)),
    );
    let mut text = format!("{what}: {} ({})", err.text, code_name(err.code));
    if err.retry_after_ms > 0 {
        text.push_str(&format!(
            "; try again in {}",
            human_secs(u64::from(err.retry_after_ms).div_ceil(1000))
        ));
    }
    m.complain(text);
}

/// A command in words, for messages about it.
fn what(c: &Command) -> String {
    match c {
        Command::Send { target, .. } => format!("Message to {}", label(target)),
        Command::GroupCreate(g) => format!("Creating #{g}"),
        Command::GroupJoin(g) => format!("Joining #{g}"),
        Command::GroupLeave(g) => format!("Leaving #{g}"),
        Command::GroupList => "Listing groups".into(),
        Command::Moderate { action, user, .. } => format!("/{} @{user}", action.as_str()),
        Command::Delete { id, .. } => format!("/delete {}", id.0),
        Command::Announce(_) => "/announce".into(),
        Command::GroupModerate { group, action, .. } => format!("{} in #{group}", action.as_str()),
        Command::MarkRead { .. } => "Marking read".into(),
        Command::History { target, .. } => format!("History of {}", label(target)),
        Command::Connect(_) => "Logging in".into(),
        Command::Logout => "Logging out".into(),
        Command::Quit => "Quitting".into(),
    }
}

/// What a message's body shows as: a deleted message's (a tombstone's
/// empty body) says so until DELETED says who.
fn shown_body(body: &str) -> String {
    if body.is_empty() {
        DELETED.to_owned()
    } else {
        wrap::clean(body)
    }
}
