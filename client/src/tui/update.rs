//! `update`: one [`Msg`] in, the model changed, network commands out. All
//! of the client's decisions are here: what a key does on each screen,
//! what a server event means for the model, when to fetch history, when
//! and how to reconnect.

use std::time::Duration;

use confab::address::parse_target;
use confab::session::code_name;
use confab::{Event, ServerError};
use confab_engine::frame::GroupChange;
use confab_engine::{MessageId, Name, Password, Ref, Target};

use super::model::{
    describe_problem, Account, ConvId, Dialog, Edit, Editor, Entry, Field, Focus, GroupAction,
    Link, Model, Now, Older, Problem, Screen,
};
use super::network::{Command, Login, LoginProblem, NetEvent};
use super::wrap;
use super::{Action, Msg};

/// How many messages one history request asks for.
pub(crate) const HISTORY_PAGE: u16 = 100;
/// The first reconnect waits this long; each failure doubles it.
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
/// The longest wait between reconnect attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// The shortest wait after a SHUTDOWN, whatever it says.
const SHUTDOWN_MIN: Duration = Duration::from_secs(1);

/// The actions of the F9 menu on the main screen, in order.
pub(crate) const MAIN_MENU: [Action; 7] = [
    Action::Help,
    Action::CreateGroup,
    Action::JoinGroup,
    Action::LeaveGroup,
    Action::Account,
    Action::Register,
    Action::Quit,
];
/// The actions of the F9 menu on the login screen, in order.
pub(crate) const LOGIN_MENU: [Action; 4] = [
    Action::Help,
    Action::Account,
    Action::Register,
    Action::Quit,
];

/// Applies `msg` to the model; returns the commands for the network.
pub(crate) fn update(m: &mut Model, msg: Msg, now: Now) -> Vec<Command> {
    m.now = Some(now);
    let mut out = Vec::new();
    match msg {
        Msg::Tick => tick(m, now, &mut out),
        Msg::Resize(w, h) => m.size = (w, h),
        Msg::Net(e) => net(m, e, now, &mut out),
        Msg::Action(a) => action(m, a, &mut out),
        key => {
            if m.dialog.is_some() {
                dialog_key(m, key, &mut out);
            } else if m.screen == Screen::Login {
                login_key(m, key, &mut out);
            } else {
                main_key(m, key, &mut out);
            }
        }
    }
    mark_read(m, &mut out);
    out
}

/// The conversation on screen is read up to its newest message: tell the
/// user's other sessions (once per new message there).
fn mark_read(m: &mut Model, out: &mut Vec<Command>) {
    if m.link != Link::Online || m.screen != Screen::Main {
        return;
    }
    if let Some((target, id)) = m.mark_current_read() {
        out.push(Command::MarkRead { target, id });
    }
}

/// How long to wait before reconnect attempt `attempt + 1`.
pub(crate) fn backoff(attempt: u32) -> Duration {
    BACKOFF_FIRST
        .saturating_mul(1 << attempt.min(16))
        .min(BACKOFF_MAX)
}

// ---- timers ----

fn tick(m: &mut Model, now: Now, out: &mut Vec<Command>) {
    let Link::Waiting {
        retry_at, attempt, ..
    } = m.link
    else {
        return;
    };
    if now.mono < retry_at {
        return;
    }
    let Some(a) = &m.account else {
        m.link = Link::Offline;
        return;
    };
    out.push(Command::Connect(Login {
        host: a.host.clone(),
        port: a.port,
        user: a.user,
        password: a.password.clone(),
        register: false,
        resume_after: m.bookmark,
        device: m.device,
    }));
    m.link = Link::Reconnecting {
        attempt: attempt + 1,
    };
}

// ---- the network ----

fn net(m: &mut Model, e: NetEvent, now: Now, out: &mut Vec<Command>) {
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

fn login_failed(m: &mut Model, p: LoginProblem, now: Now) {
    match m.link {
        Link::Reconnecting { attempt } if p.is_transient() => {
            let delay = match &p {
                LoginProblem::LockedOut { until_ms } => {
                    Duration::from_millis(until_ms.saturating_sub(now.wall_ms))
                }
                LoginProblem::ShuttingDown { retry_after_ms, .. }
                | LoginProblem::Busy { retry_after_ms } => {
                    Duration::from_millis(u64::from(*retry_after_ms)).max(SHUTDOWN_MIN)
                }
                _ => backoff(attempt),
            };
            let reason = describe_problem(&Problem::Login(p), m);
            m.complain(format!("Reconnecting failed: {reason}"));
            m.link = Link::Waiting {
                retry_at: now.mono + delay,
                attempt,
            };
        }
        Link::Reconnecting { .. } => {
            // The account no longer logs in as it did (a changed password,
            // a changed certificate): the user has to decide.
            m.forget_chat();
            m.login.problem = Some(Problem::Login(p));
        }
        _ => {
            m.link = Link::Offline;
            m.login.busy = false;
            m.login.problem = Some(Problem::Login(p));
        }
    }
}

fn lost(m: &mut Model, reason: String, now: Now) {
    let unsent = m
        .requests
        .values()
        .filter(|c| matches!(c, Command::Send { .. }))
        .count();
    m.requests.clear();
    m.rtt = None;
    for c in m.conversations.values_mut() {
        c.fetching = false;
    }
    match m.link {
        // A SHUTDOWN already said when to come back, and why.
        Link::Waiting { .. } if unsent == 0 => return,
        Link::Waiting { .. } => {}
        Link::LoggingOut => {
            m.forget_chat();
            m.say("Logged out.");
            return;
        }
        _ => {
            m.link = Link::Waiting {
                retry_at: now.mono + backoff(0),
                attempt: 0,
            };
        }
    }
    if unsent > 0 && m.device.is_some() {
        m.complain(format!(
            "Connection lost: {unsent} message(s) go out again, once, after reconnecting."
        ));
    } else if unsent > 0 {
        m.complain(format!(
            "Connection lost: {unsent} message(s) may not have been sent."
        ));
    } else {
        m.complain(format!("Connection lost: {reason}. Reconnecting…"));
    }
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
                super::model::human_secs(delay.as_secs().max(1))
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
            super::model::human_secs(u64::from(err.retry_after_ms).div_ceil(1000))
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

/// How a conversation is named on screen: `all`, `#group`, `@user`.
pub(crate) fn label(t: &Target) -> String {
    confab::address::format_target(t)
}

// ---- conversations ----

/// Shows `target`'s conversation, fetching its newest history the first time.
fn open(m: &mut Model, target: &Target, out: &mut Vec<Command>) {
    m.open(target);
    fetch_if_unknown(m, target, out);
}

fn fetch_if_unknown(m: &mut Model, target: &Target, out: &mut Vec<Command>) {
    if m.link != Link::Online {
        return;
    }
    let c = m.conversation_mut(target);
    if c.older == Older::Unknown && !c.fetching {
        c.fetching = true;
        out.push(Command::History {
            target: *target,
            before: MessageId(0),
            limit: HISTORY_PAGE,
        });
    }
}

fn page_up(m: &mut Model, out: &mut Vec<Command>) {
    let page = usize::from(m.pane().height.saturating_sub(1)).max(1);
    let at_top = m.scroll_up(page);
    let online = m.link == Link::Online;
    let c = m.current();
    if at_top && online && !c.fetching && c.older != Older::Complete {
        let (target, before) = (c.target, c.oldest().unwrap_or(MessageId(0)));
        m.conversation_mut(&target).fetching = true;
        out.push(Command::History {
            target,
            before,
            limit: HISTORY_PAGE,
        });
    }
}

fn step_conversation(m: &mut Model, forward: bool, out: &mut Vec<Command>) {
    let rows = m.all_rows();
    let Some(i) = rows.iter().position(|r| r.current) else {
        return;
    };
    let n = rows.len();
    let j = if forward {
        (i + 1) % n
    } else {
        (i + n - 1) % n
    };
    let target = rows[j].target;
    open(m, &target, out);
}

// ---- keys ----

fn action(m: &mut Model, a: Action, out: &mut Vec<Command>) {
    match a {
        Action::Help => m.dialog = Some(Dialog::Help),
        Action::Menu => m.dialog = Some(Dialog::Menu { selected: 0 }),
        Action::Quit => m.quit = true,
        Action::Account if m.screen == Screen::Login => submit_login(m, out),
        Action::Account => {
            m.dialog = None;
            m.link = Link::LoggingOut;
            out.push(Command::Logout);
        }
        Action::Register if m.screen == Screen::Login => {
            m.dialog = None;
            m.login.register = !m.login.register;
        }
        Action::Register => {
            m.complain("Log out first (F2), then tick Register on the login screen.");
        }
        Action::CreateGroup | Action::JoinGroup | Action::LeaveGroup
            if m.screen == Screen::Login =>
        {
            m.login.problem = Some(Problem::Form("Log in first.".into()));
        }
        Action::CreateGroup => prompt(m, GroupAction::Create, ""),
        Action::JoinGroup => prompt(m, GroupAction::Join, ""),
        Action::LeaveGroup => {
            let name = match m.current().target {
                Target::Group(g) => g.to_string(),
                _ => String::new(),
            };
            prompt(m, GroupAction::Leave, &name);
        }
    }
}

fn prompt(m: &mut Model, action: GroupAction, text: &str) {
    m.dialog = Some(Dialog::Prompt {
        action,
        text: Editor::with(text),
    });
}

fn dialog_key(m: &mut Model, key: Msg, out: &mut Vec<Command>) {
    let Some(dialog) = m.dialog.take() else {
        return;
    };
    let menu: &[Action] = if m.screen == Screen::Login {
        &LOGIN_MENU
    } else {
        &MAIN_MENU
    };
    m.dialog = match (dialog, key) {
        (_, Msg::Cancel) | (Dialog::Help, Msg::Submit) => None,
        (Dialog::Menu { selected }, Msg::Up) => Some(Dialog::Menu {
            selected: (selected + menu.len() - 1) % menu.len(),
        }),
        (Dialog::Menu { selected }, Msg::Down | Msg::Next) => Some(Dialog::Menu {
            selected: (selected + 1) % menu.len(),
        }),
        (Dialog::Menu { selected }, Msg::Submit) => {
            action(m, menu[selected.min(menu.len() - 1)], out);
            return;
        }
        (Dialog::Prompt { action, mut text }, Msg::Edit(e)) => {
            text.apply(&e);
            Some(Dialog::Prompt { action, text })
        }
        (Dialog::Prompt { action, text }, Msg::Submit) => match Name::new(text.text().trim()) {
            Ok(g) => {
                out.push(match action {
                    GroupAction::Create => Command::GroupCreate(g),
                    GroupAction::Join => Command::GroupJoin(g),
                    GroupAction::Leave => Command::GroupLeave(g),
                });
                None
            }
            Err(e) => {
                m.complain(format!("Not a group name: {e}."));
                Some(Dialog::Prompt { action, text })
            }
        },
        (d, _) => Some(d),
    };
}

fn login_key(m: &mut Model, key: Msg, out: &mut Vec<Command>) {
    let f = &mut m.login;
    match key {
        Msg::Edit(Edit::Insert(' ')) if f.field == Field::Register => f.register = !f.register,
        Msg::Edit(e) => {
            if let Some(ed) = f.editor_mut() {
                ed.apply(&e);
            }
        }
        Msg::Next | Msg::Down => f.field = f.field.step(true),
        Msg::Prev | Msg::Up => f.field = f.field.step(false),
        Msg::Submit => submit_login(m, out),
        Msg::Cancel => f.problem = None,
        _ => {}
    }
}

fn submit_login(m: &mut Model, out: &mut Vec<Command>) {
    m.dialog = None;
    let f = &mut m.login;
    if f.busy {
        return;
    }
    let host = f.host.text().trim().to_owned();
    let port = f.port.text().trim().parse::<u16>().ok().filter(|&p| p > 0);
    let user = Name::new(f.user.text().trim());
    let password = f.password.text().to_owned();
    let problem = if host.is_empty() {
        Some((Field::Host, "Which server? Type its host name.".to_owned()))
    } else if port.is_none() {
        Some((
            Field::Port,
            "The port is a number from 1 to 65535.".to_owned(),
        ))
    } else if let Err(e) = &user {
        Some((Field::User, format!("Not a user name: {e}.")))
    } else if Password::new(&password).is_none() {
        Some((
            Field::Password,
            format!(
                "A password is {} to {} bytes.",
                Password::MIN_LEN,
                Password::MAX_LEN
            ),
        ))
    } else {
        None
    };
    if let Some((field, text)) = problem {
        f.field = field;
        f.problem = Some(Problem::Form(text));
        return;
    }
    let (Some(port), Ok(user)) = (port, user) else {
        return;
    };
    f.busy = true;
    f.problem = None;
    let register = f.register;
    m.link = Link::Connecting;
    out.push(Command::Connect(Login {
        host,
        port,
        user,
        password,
        register,
        resume_after: MessageId(0),
        device: m.device,
    }));
}

fn main_key(m: &mut Model, key: Msg, out: &mut Vec<Command>) {
    match (m.focus, key) {
        (_, Msg::PageUp) => page_up(m, out),
        (_, Msg::PageDown) => {
            let page = usize::from(m.pane().height.saturating_sub(1)).max(1);
            m.scroll_down(page);
        }
        (_, Msg::NextConversation) => step_conversation(m, true, out),
        (_, Msg::PrevConversation) => step_conversation(m, false, out),
        (f, Msg::Next) => {
            m.focus = match f {
                Focus::Input => Focus::Groups,
                Focus::Groups => Focus::People,
                Focus::People => Focus::Input,
            }
        }
        (f, Msg::Prev) => {
            m.focus = match f {
                Focus::Input => Focus::People,
                Focus::People => Focus::Groups,
                Focus::Groups => Focus::Input,
            }
        }
        (Focus::Input, Msg::Edit(e)) => {
            m.input.apply(&e);
            m.recall = None;
        }
        (Focus::Input, Msg::Submit) => submit_input(m, out),
        (Focus::Input, Msg::Up) => recall(m, true),
        (Focus::Input, Msg::Down) => recall(m, false),
        (Focus::Input, Msg::Cancel) => {
            let c = m.current().scroll;
            if c > 0 {
                m.scroll_down(c);
            } else {
                m.notice = None;
            }
        }
        (Focus::Groups | Focus::People, Msg::Edit(e)) => {
            // Typing in a list goes to the input line.
            m.focus = Focus::Input;
            m.input.apply(&e);
        }
        (Focus::Groups | Focus::People, Msg::Cancel) => m.focus = Focus::Input,
        (Focus::Groups, Msg::Up) => m.groups_selected = m.groups_selected.saturating_sub(1),
        (Focus::Groups, Msg::Down) => {
            let last = m.group_rows().len().saturating_sub(1);
            m.groups_selected = (m.groups_selected + 1).min(last);
        }
        (Focus::People, Msg::Up) => m.people_selected = m.people_selected.saturating_sub(1),
        (Focus::People, Msg::Down) => {
            let last = m.people_rows().len().saturating_sub(1);
            m.people_selected = (m.people_selected + 1).min(last);
        }
        (f @ (Focus::Groups | Focus::People), Msg::Submit) => pick(m, f, out),
        _ => {}
    }
}

/// Opens the selected row of a list (joining a group first if need be).
fn pick(m: &mut Model, f: Focus, out: &mut Vec<Command>) {
    let (rows, i) = match f {
        Focus::Groups => (m.group_rows(), m.groups_selected),
        _ => (m.people_rows(), m.people_selected),
    };
    let Some(row) = rows.get(i) else {
        return;
    };
    m.focus = Focus::Input;
    match row.target {
        Target::Group(g) if !row.active => out.push(Command::GroupJoin(g)),
        t => open(m, &t, out),
    }
}

fn recall(m: &mut Model, older: bool) {
    if m.sent.is_empty() {
        return;
    }
    let last = m.sent.len() - 1;
    m.recall = match (m.recall, older) {
        (None, true) => Some(last),
        (None, false) => None,
        (Some(i), true) => Some(i.saturating_sub(1)),
        (Some(i), false) if i < last => Some(i + 1),
        (Some(_), false) => None,
    };
    m.input = match m.recall {
        Some(i) => Editor::with(&m.sent[i]),
        None => Editor::default(),
    };
}

fn submit_input(m: &mut Model, out: &mut Vec<Command>) {
    let line = m.input.take();
    m.recall = None;
    if line.trim().is_empty() {
        return;
    }
    if m.sent.last() != Some(&line) {
        m.sent.push(line.clone());
    }
    let target = m.current().target;
    let sent = match line.strip_prefix('/') {
        Some(rest) if !rest.starts_with('/') => slash(m, rest, &line, out),
        Some(rest) => send(m, target, rest.to_owned(), out),
        None => send(m, target, line.clone(), out),
    };
    if !sent {
        m.input = Editor::with(&line);
    }
}

/// Sends `body`, or says why not and returns false.
fn send(m: &mut Model, target: Target, body: String, out: &mut Vec<Command>) -> bool {
    let max = m.account.as_ref().map_or(4096, |a| a.max_body);
    if body.len() > max {
        m.complain(format!(
            "Too long to send: {} bytes, the server takes {max}. It is back in the input line.",
            body.len()
        ));
        return false;
    }
    if m.link != Link::Online {
        m.complain("Not connected: the message was not sent. It is back in the input line.");
        return false;
    }
    // Whatever was scrolled, one's own message is worth seeing.
    let c = m.conversation_mut(&target);
    c.scroll = 0;
    out.push(Command::Send { target, body });
    true
}

/// `/command args`; false when a message could not be sent.
fn slash(m: &mut Model, rest: &str, line: &str, out: &mut Vec<Command>) -> bool {
    let (cmd, args) = rest.split_once(' ').unwrap_or((rest, ""));
    let args = args.trim();
    let group = |m: &mut Model, args: &str| -> Option<Name> {
        let name = args.trim_start_matches('#');
        match Name::new(name) {
            Ok(n) => Some(n),
            Err(e) => {
                m.complain(format!("/{cmd}: not a group name: {e}."));
                None
            }
        }
    };
    match cmd {
        "join" | "j" => {
            if let Some(g) = group(m, args) {
                out.push(Command::GroupJoin(g));
            }
        }
        "create" => {
            if let Some(g) = group(m, args) {
                out.push(Command::GroupCreate(g));
            }
        }
        "leave" | "part" => {
            let args = match (args, m.current().target) {
                ("", Target::Group(g)) => g.to_string(),
                (a, _) => a.to_owned(),
            };
            if let Some(g) = group(m, &args) {
                out.push(Command::GroupLeave(g));
            }
        }
        "msg" | "query" | "q" | "m" => {
            let (to, text) = args.split_once(' ').unwrap_or((args, ""));
            let target = if to.starts_with(['@', '#']) || to.eq_ignore_ascii_case("all") {
                parse_target(to).map_err(|e| e.to_string())
            } else {
                Name::new(to).map(Target::User).map_err(|e| e.to_string())
            };
            match target {
                Ok(t) if text.trim().is_empty() => open(m, &t, out),
                Ok(t) => return send(m, t, text.to_owned(), out),
                Err(e) => m.complain(format!("/{cmd}: {e}")),
            }
        }
        "kick" | "ban" | "unban" | "mute" | "unmute" => moderate(m, cmd, args, out),
        "delete" => {
            let (id, reason) = args.split_once(' ').unwrap_or((args, ""));
            match id.trim_start_matches('#').parse::<u64>() {
                Ok(id) if id > 0 => out.push(Command::Delete {
                    id: MessageId(id),
                    reason: reason.trim().to_owned(),
                }),
                _ => m.complain(
                    "/delete ID [why]: the message id is a number (as `confab history` prints it).",
                ),
            }
        }
        "remove" | "gmute" | "gunmute" | "appoint" | "dismiss" => group_moderate(m, cmd, args, out),
        "announce" => match args.trim() {
            "" => m.complain("/announce TEXT: the notice to send to everyone."),
            text => out.push(Command::Announce(text.to_owned())),
        },
        "quit" | "exit" => m.quit = true,
        "logout" => action(m, Action::Account, out),
        "help" => m.dialog = Some(Dialog::Help),
        _ => {
            m.complain(format!(
                "Unknown command {:?}: F1 lists the commands; start with // to send a line beginning with /.",
                line.split(' ').next().unwrap_or(line)
            ));
        }
    }
    true
}

/// `/kick USER [reason]`, `/ban USER [7d] [reason]`, `/mute USER [30m]
/// [reason]`, `/unban USER`, `/unmute USER` (server operators; the server
/// refuses anyone else with NOT_OPERATOR).
fn moderate(m: &mut Model, cmd: &str, args: &str, out: &mut Vec<Command>) {
    use confab_engine::frame::ModAction;
    let action = match cmd {
        "kick" => ModAction::Kick,
        "ban" => ModAction::Ban,
        "unban" => ModAction::Unban,
        "mute" => ModAction::Mute,
        _ => ModAction::Unmute,
    };
    let (who, rest) = args.split_once(' ').unwrap_or((args, ""));
    let user = match Name::new(who.trim_start_matches('@')) {
        Ok(u) => u,
        Err(e) => return m.complain(format!("/{cmd} USER ...: not a user name: {e}.")),
    };
    let rest = rest.trim();
    let (seconds, reason) = match (action, rest.split_once(' ').unwrap_or((rest, ""))) {
        (ModAction::Ban | ModAction::Mute, (first, tail)) => match length(first) {
            Some(secs) => (secs, tail.trim()),
            None => (0, rest),
        },
        _ => (0, rest),
    };
    out.push(Command::Moderate {
        action,
        user,
        seconds,
        reason: reason.to_owned(),
    });
}

/// `90s`, `30m`, `12h`, `7d` as seconds.
fn length(s: &str) -> Option<u32> {
    let unit = match s.chars().last()? {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    let n: u32 = s[..s.len() - 1].parse().ok()?;
    n.checked_mul(unit).filter(|&secs| secs > 0)
}

/// What a message's body shows as: a deleted message's (a tombstone's
/// empty body) says so until DELETED says who.
fn shown_body(body: &str) -> String {
    if body.is_empty() {
        super::model::DELETED.to_owned()
    } else {
        wrap::clean(body)
    }
}

/// `/remove USER`, `/gmute USER [30m]`, `/gunmute USER`, `/appoint USER`,
/// `/dismiss USER` in the group shown (its owner or moderators; the
/// server refuses anyone else with NOT_GROUP_MODERATOR).
fn group_moderate(m: &mut Model, cmd: &str, args: &str, out: &mut Vec<Command>) {
    use confab_engine::frame::GroupAction;
    let Target::Group(group) = m.current().target else {
        return m.complain(format!(
            "/{cmd} USER acts in the group shown: open one first."
        ));
    };
    let action = match cmd {
        "remove" => GroupAction::Remove,
        "gmute" => GroupAction::Mute,
        "gunmute" => GroupAction::Unmute,
        "appoint" => GroupAction::Appoint,
        _ => GroupAction::Dismiss,
    };
    let (who, rest) = args.trim().split_once(' ').unwrap_or((args.trim(), ""));
    let user = match Name::new(who.trim_start_matches('@')) {
        Ok(u) => u,
        Err(e) => return m.complain(format!("/{cmd} USER: not a user name: {e}.")),
    };
    let seconds = match action {
        GroupAction::Mute => length(rest.trim()).unwrap_or(0),
        _ => 0,
    };
    out.push(Command::GroupModerate {
        group,
        action,
        user,
        seconds,
    });
}
