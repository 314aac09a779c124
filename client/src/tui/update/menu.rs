//! The function keys' actions (also the F9 menu's entries) and the
//! dialogs: the menu, the help, the group-name prompt.

use confab_engine::{Name, Target};

use super::login::submit_login;
use crate::tui::editor::Editor;
use crate::tui::login_form::Problem;
use crate::tui::model::{Dialog, GroupAction, Link, Model, Screen};
use crate::tui::network::Command;
use crate::tui::{Action, Msg};

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

/// Does what a function key (or the menu entry) says.
pub(super) fn action(m: &mut Model, a: Action, out: &mut Vec<Command>) {
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

/// A key while a dialog is open.
pub(super) fn dialog_key(m: &mut Model, key: Msg, out: &mut Vec<Command>) {
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
