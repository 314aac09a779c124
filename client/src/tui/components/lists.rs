//! The side bar's lists: groups (the room first) and people, each row with
//! its unread count.

use tuirealm::component::AppComponent;
use tuirealm::event::{Event, Key, KeyEvent};
use tuirealm::ratatui::layout::Rect;
use tuirealm::ratatui::style::{Color, Modifier, Style};
use tuirealm::ratatui::text::{Line, Span};
use tuirealm::ratatui::widgets::{Block, Borders, Paragraph};
use tuirealm::ratatui::Frame;

use super::{common, Canvas, Draw};
use crate::tui::editor::Edit;
use crate::tui::network::NetEvent;
use crate::tui::Msg;

/// One row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RowView {
    /// `#dev`, `all`, `bob`.
    pub(crate) label: String,
    /// Unread messages.
    pub(crate) unread: u32,
    /// A group joined, a person online (others are drawn dim).
    pub(crate) active: bool,
    /// The conversation shown.
    pub(crate) current: bool,
    /// This user (marked).
    pub(crate) me: bool,
}

/// What a list shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ListView {
    /// Its title.
    pub(crate) title: String,
    /// Its rows.
    pub(crate) rows: Vec<RowView>,
    /// The selected row, drawn highlighted while the list has the keys.
    pub(crate) selected: usize,
    /// Whether keys go here.
    pub(crate) focused: bool,
}

impl Draw for ListView {
    fn draw(&self, frame: &mut Frame<'_>, area: Rect) {
        let border = if self.focused {
            Style::default().fg(Color::Yellow)
        } else {
            Style::default().fg(Color::DarkGray)
        };
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(border)
            .title(Span::styled(
                format!(" {} ", self.title),
                Style::default().add_modifier(Modifier::BOLD),
            ));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let height = usize::from(inner.height).max(1);
        // Keep the selected row in view.
        let first = (self.selected + 1).saturating_sub(height);
        let lines: Vec<Line<'static>> = self
            .rows
            .iter()
            .enumerate()
            .skip(first)
            .take(height)
            .map(|(i, r)| {
                let mark = if r.current { "▸ " } else { "  " };
                let mut style = if r.active {
                    Style::default()
                } else {
                    Style::default().fg(Color::DarkGray)
                };
                if r.current {
                    style = style.add_modifier(Modifier::BOLD);
                }
                if self.focused && i == self.selected {
                    style = style.add_modifier(Modifier::REVERSED);
                }
                let mut spans = vec![Span::styled(format!("{mark}{}", r.label), style)];
                if r.me {
                    spans.push(Span::styled(" (you)", Style::default().fg(Color::DarkGray)));
                }
                if r.unread > 0 {
                    spans.push(Span::styled(
                        format!(" ({})", r.unread),
                        Style::default()
                            .fg(Color::LightYellow)
                            .add_modifier(Modifier::BOLD),
                    ));
                }
                Line::from(spans)
            })
            .collect();
        frame.render_widget(Paragraph::new(lines), inner);
    }
}

/// Keys in a list: common keys; a typed character goes to the input line.
fn list_keys(ev: &Event<NetEvent>) -> Option<Msg> {
    common(ev).or_else(|| match ev {
        Event::Keyboard(KeyEvent {
            code: Key::Char(c),
            modifiers,
        }) if modifiers
            .difference(tuirealm::event::KeyModifiers::SHIFT)
            .is_empty() =>
        {
            Some(Msg::Edit(Edit::Insert(*c)))
        }
        _ => None,
    })
}

/// The groups list.
#[derive(Default, tuirealm::component::Component)]
pub(crate) struct GroupsList {
    component: Canvas<ListView>,
}

impl AppComponent<Msg, NetEvent> for GroupsList {
    fn on(&mut self, ev: &Event<NetEvent>) -> Option<Msg> {
        list_keys(ev)
    }
}

/// The people list.
#[derive(Default, tuirealm::component::Component)]
pub(crate) struct PeopleList {
    component: Canvas<ListView>,
}

impl AppComponent<Msg, NetEvent> for PeopleList {
    fn on(&mut self, ev: &Event<NetEvent>) -> Option<Msg> {
        list_keys(ev)
    }
}
