//! The main screen's keys: the focus moving between the input line and the
//! lists, editing and recalling lines, scrolling, picking a row.

use confab_engine::Target;

use super::conversations::{open, page_up, send, step_conversation};
use super::slash::slash;
use crate::tui::editor::Editor;
use crate::tui::model::{Focus, Model};
use crate::tui::network::Command;
use crate::tui::Msg;

/// A key on the main screen.
pub(super) fn main_key(m: &mut Model, key: Msg, out: &mut Vec<Command>) {
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

/// Up/Down in the input line: step through the lines sent.
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

/// Enter in the input line: a `/command`, or a message (`//` escapes a
/// leading slash); a line not sent stays in the input line.
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
