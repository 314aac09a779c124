//! The view: builds each component's `…View` from the model, hands it over
//! (`Attribute::Content`), gives the keys to the right component, and lays
//! the components out. Reads the model, never changes it.

use tuirealm::application::Application;
use tuirealm::props::Attribute;
use tuirealm::ratatui::Frame;

use super::clock::human_secs;
use super::components::conversation::{ConversationView, Said};
use super::components::dialog::DialogView;
use super::components::lists::{ListView, RowView};
use super::components::login::LoginView;
use super::components::status::{Health, HintsView, StatusView};
use super::components::{content, Draw};
use super::conversation::Older;
use super::editor::Editor;
use super::layout;
use super::model::{Dialog, Focus, GroupAction, Link, Model, Screen};
use super::network::NetEvent;
use super::sidebar::Row;
use super::update::{label, LOGIN_MENU, MAIN_MENU};
use super::{Action, Id, Msg};
use confab_engine::Target;

/// The keys and commands, as the help dialog and client/TUI.md list them.
pub(crate) const HELP: &[(&str, &str)] = &[
    ("Enter", "send the line / open the selected row"),
    ("Tab, Shift-Tab", "move between input, groups and people"),
    (
        "Up, Down",
        "select a row; in the input line, recall sent lines",
    ),
    ("Ctrl-N, Ctrl-P, Alt-↑↓", "next / previous conversation"),
    ("PgUp, PgDn", "scroll; PgUp at the top loads older history"),
    ("Esc", "back to the newest messages / close a dialog"),
    ("Ctrl-A E U W", "line start, end, clear, delete word"),
    (
        "F1 / F9 / F10",
        "this help / actions menu / quit (also Ctrl-C)",
    ),
    ("F2", "log in (login screen) / log out"),
    ("F3, Space", "register toggle (login screen)"),
    ("F5 / F6 / F7", "create / join / leave a group"),
    (
        "/msg NAME [TEXT]",
        "DM someone (or open the DM); #group, all work too",
    ),
    (
        "/join, /create, /leave",
        "groups: /join dev, /leave (the current one)",
    ),
    (
        "/kick, /ban, /mute NAME [7d] [why]",
        "operators: also /unban, /unmute NAME",
    ),
    (
        "/remove, /gmute [30m], /gunmute, /appoint, /dismiss NAME",
        "in the group shown: its owner and moderators",
    ),
    (
        "/delete ID [why], /announce TEXT",
        "operators: delete a message, notify everyone",
    ),
    (
        "/logout, /quit",
        "log out, quit; // sends a line starting with /",
    ),
];

/// Hands every component its data and focuses the one that takes keys.
pub(crate) fn push(app: &mut Application<Id, Msg, NetEvent>, m: &Model) {
    set(app, Id::Status, status(m));
    set(app, Id::Hints, hints(m));
    set(app, Id::Dialog, dialog(m));
    match m.screen {
        Screen::Login => set(app, Id::Login, login(m)),
        Screen::Main => {
            set(app, Id::Conversation, conversation(m));
            set(app, Id::Groups, list(m, "Groups", Focus::Groups));
            set(app, Id::People, list(m, "People", Focus::People));
            set(app, Id::Input, input(m));
        }
    }
    let active = match (&m.dialog, m.screen, m.focus) {
        (Some(_), _, _) => Id::Dialog,
        (None, Screen::Login, _) => Id::Login,
        (None, Screen::Main, Focus::Input) => Id::Input,
        (None, Screen::Main, Focus::Groups) => Id::Groups,
        (None, Screen::Main, Focus::People) => Id::People,
    };
    if app.focus() != Some(&active) {
        // Every id is mounted at startup, so this cannot fail.
        let _ = app.active(&active);
    }
}

/// Draws the screen.
pub(crate) fn draw(app: &mut Application<Id, Msg, NetEvent>, m: &Model, f: &mut Frame<'_>) {
    let area = f.area();
    match m.screen {
        Screen::Login => {
            let [status, _, hints] = tuirealm::ratatui::layout::Layout::vertical([
                tuirealm::ratatui::layout::Constraint::Length(1),
                tuirealm::ratatui::layout::Constraint::Min(1),
                tuirealm::ratatui::layout::Constraint::Length(1),
            ])
            .areas(area);
            app.view(&Id::Status, f, status);
            app.view(&Id::Login, f, area);
            app.view(&Id::Hints, f, hints);
        }
        Screen::Main => {
            let a = layout::Main::of(area);
            app.view(&Id::Status, f, a.status);
            app.view(&Id::Conversation, f, a.conversation);
            app.view(&Id::Groups, f, a.groups);
            app.view(&Id::People, f, a.people);
            app.view(&Id::Input, f, a.input);
            app.view(&Id::Hints, f, a.hints);
        }
    }
    if m.dialog.is_some() {
        app.view(&Id::Dialog, f, area);
    }
}

fn set<D: Draw>(app: &mut Application<Id, Msg, NetEvent>, id: Id, data: D) {
    // Every id is mounted at startup, so this cannot fail.
    let _ = app.attr(&id, Attribute::Content, content(data));
}

fn status(m: &Model) -> StatusView {
    let (link, health) = match &m.link {
        Link::Offline => ("offline".to_owned(), Health::Bad),
        Link::Connecting => ("connecting…".to_owned(), Health::Pending),
        Link::Online => ("online".to_owned(), Health::Good),
        Link::Waiting { retry_at, .. } => {
            // The reason is in the news line; the bar stays short.
            let left = m
                .now
                .map_or(0, |n| retry_at.saturating_duration_since(n.mono).as_secs());
            (
                format!("disconnected · retrying in {}", human_secs(left + 1)),
                Health::Bad,
            )
        }
        Link::Reconnecting { attempt } => (
            format!("reconnecting (attempt {attempt})…"),
            Health::Pending,
        ),
        Link::LoggingOut => ("logging out…".to_owned(), Health::Pending),
    };
    let account = m.account.as_ref();
    StatusView {
        link,
        health,
        security: account.map(|a| {
            if a.tls {
                "TLS".to_owned()
            } else {
                "no TLS".to_owned()
            }
        }),
        who: account.map(|a| format!("{}@{}", a.user, a.addr)),
        rtt: m.rtt.map(|d| {
            let us = d.as_micros();
            if us < 10_000 {
                format!("rtt {:.1} ms", us as f64 / 1000.0)
            } else {
                format!("rtt {} ms", us / 1000)
            }
        }),
        clock: m.now.map_or_else(String::new, |n| m.clock(n.wall_ms)),
    }
}

fn hints(m: &Model) -> HintsView {
    let hints: &[(&str, &str)] = match m.screen {
        Screen::Login => &[
            ("F1", "Help"),
            ("F2", "Log in"),
            ("F3", "Register"),
            ("F9", "Menu"),
            ("F10", "Quit"),
        ],
        Screen::Main => &[
            ("F1", "Help"),
            ("F2", "Logout"),
            ("F5", "Create"),
            ("F6", "Join"),
            ("F7", "Leave"),
            ("F9", "Menu"),
            ("F10", "Quit"),
            ("Tab", "Lists"),
            ("^N/^P", "Switch"),
            ("PgUp", "Older"),
        ],
    };
    HintsView {
        hints: hints
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

/// An action's name in the menu.
fn action_name(m: &Model, a: Action) -> (&'static str, &'static str) {
    match a {
        Action::Help => ("F1", "Help"),
        Action::Account if m.screen == Screen::Login => ("F2", "Log in"),
        Action::Account => ("F2", "Log out"),
        Action::Register if m.screen == Screen::Login => ("F3", "Register toggle"),
        Action::Register => ("F3", "Register another account"),
        Action::CreateGroup => ("F5", "Create a group"),
        Action::JoinGroup => ("F6", "Join a group"),
        Action::LeaveGroup => ("F7", "Leave a group"),
        Action::Menu => ("F9", "Menu"),
        Action::Quit => ("F10", "Quit"),
    }
}

fn dialog(m: &Model) -> DialogView {
    match &m.dialog {
        None => DialogView::Hidden,
        Some(Dialog::Help) => DialogView::Help {
            lines: HELP
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        },
        Some(Dialog::Menu { selected }) => {
            let menu: &[Action] = if m.screen == Screen::Login {
                &LOGIN_MENU
            } else {
                &MAIN_MENU
            };
            DialogView::Menu {
                entries: menu
                    .iter()
                    .map(|a| {
                        let (k, v) = action_name(m, *a);
                        (k.to_owned(), v.to_owned())
                    })
                    .collect(),
                selected: *selected,
            }
        }
        Some(Dialog::Prompt { action, text }) => DialogView::Prompt {
            title: match action {
                GroupAction::Create => "Create a group",
                GroupAction::Join => "Join a group",
                GroupAction::Leave => "Leave a group",
            }
            .to_owned(),
            text: text.text().to_owned(),
            cursor: text.cursor(),
        },
    }
}

fn login(m: &Model) -> LoginView {
    let f = &m.login;
    let pair = |e: &Editor| (e.text().to_owned(), e.cursor());
    LoginView {
        host: pair(&f.host),
        port: pair(&f.port),
        user: pair(&f.user),
        password: (f.password.text().chars().count(), f.password.cursor()),
        register: f.register,
        field: f.field,
        problem: f.problem.as_ref().map(|p| m.describe(p)),
        busy: f.busy,
    }
}

fn conversation(m: &Model) -> ConversationView {
    let c = m.current();
    let mut lines: Vec<Said> = c
        .messages
        .values()
        .map(|e| Said {
            time: m.clock(e.ts_ms),
            sender: e.sender.to_string(),
            mine: m.is_me(&e.sender),
            pending: false,
            body: e.body.clone(),
        })
        .collect();
    if let Some(me) = m.me() {
        lines.extend(m.pending_in_current().into_iter().map(|body| Said {
            time: String::new(),
            sender: me.to_string(),
            mine: true,
            pending: true,
            body,
        }));
    }
    let mut title = match c.target {
        Target::Room => "all · the room".to_owned(),
        Target::User(u) if !m.roster.contains_key(&u.key()) => format!("@{u} · offline"),
        t => label(&t),
    };
    let max = m
        .current_height()
        .saturating_sub(usize::from(m.pane().height));
    if c.fetching {
        title.push_str(" · loading history…");
    } else if c.scroll > 0 && c.scroll >= max && c.older == Older::Complete {
        title.push_str(" · start of the conversation");
    }
    if c.scroll > 0 {
        title.push_str(&format!(" · ↑ {} lines (Esc: newest)", c.scroll));
    }
    ConversationView {
        title,
        lines,
        scroll: c.scroll,
        notice: m.notice.as_ref().map(|n| (n.text.clone(), n.error)),
    }
}

fn list(m: &Model, title: &str, which: Focus) -> ListView {
    let (rows, selected) = match which {
        Focus::Groups => (m.group_rows(), m.groups_selected),
        _ => (m.people_rows(), m.people_selected),
    };
    let online = m.roster.len();
    let title = match which {
        Focus::People => format!("{title} · {online} online"),
        _ => title.to_owned(),
    };
    ListView {
        title,
        rows: rows.iter().map(|r| row(m, r)).collect(),
        selected,
        focused: m.focus == which && m.dialog.is_none(),
    }
}

fn row(m: &Model, r: &Row) -> RowView {
    let (label, me) = match r.target {
        Target::Room => ("all".to_owned(), false),
        Target::Group(g) => (format!("#{g}"), false),
        Target::User(u) => (u.to_string(), m.is_me(&u)),
    };
    RowView {
        label,
        unread: r.unread,
        active: r.active,
        current: r.current,
        me,
    }
}

fn input(m: &Model) -> super::components::input::InputView {
    super::components::input::InputView {
        prompt: format!("[{}]", label(&m.current().target)),
        text: m.input.text().to_owned(),
        cursor: m.input.cursor(),
        focused: m.focus == Focus::Input && m.dialog.is_none(),
    }
}
