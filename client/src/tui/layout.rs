//! Where each part of the screen goes, as a pure function of the terminal
//! size: the view draws into these areas and the model scrolls by the
//! conversation pane's height.

use tuirealm::ratatui::layout::{Constraint, Layout, Rect};

/// Width of the side bar (groups and people).
const SIDEBAR: u16 = 26;

/// The main screen's areas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Main {
    /// The status bar, top line.
    pub(crate) status: Rect,
    /// The conversation pane, border included.
    pub(crate) conversation: Rect,
    /// The groups list (the room first), border included.
    pub(crate) groups: Rect,
    /// The people list, border included.
    pub(crate) people: Rect,
    /// The input line.
    pub(crate) input: Rect,
    /// The key hints, bottom line.
    pub(crate) hints: Rect,
}

impl Main {
    /// The areas for a terminal of this size.
    pub(crate) fn of(area: Rect) -> Main {
        let [status, middle, input, hints] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(3),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .areas(area);
        let [conversation, side] =
            Layout::horizontal([Constraint::Min(20), Constraint::Length(SIDEBAR)]).areas(middle);
        let [groups, people] =
            Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(side);
        Main {
            status,
            conversation,
            groups,
            people,
            input,
            hints,
        }
    }

    /// The text area of the conversation pane (inside its border).
    pub(crate) fn conversation_text(&self) -> Rect {
        inner(self.conversation)
    }
}

/// The login screen's box, centred, with `problem_rows` for the problem
/// line (two fit without growing it).
pub(crate) fn login_box(area: Rect, problem_rows: u16) -> Rect {
    centred(area, 64, 11 + problem_rows.max(2))
}

/// A dialog box of at most `w`×`h`, centred.
pub(crate) fn centred(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// The inside of a box with a one-cell border.
pub(crate) fn inner(r: Rect) -> Rect {
    Rect {
        x: r.x.saturating_add(1),
        y: r.y.saturating_add(1),
        width: r.width.saturating_sub(2),
        height: r.height.saturating_sub(2),
    }
}
