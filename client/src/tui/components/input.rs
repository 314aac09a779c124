//! The input line: a prompt naming where the text goes, the text, the cursor.

use tuirealm::component::AppComponent;
use tuirealm::event::Event;
use tuirealm::ratatui::layout::{Position, Rect};
use tuirealm::ratatui::style::{Color, Modifier, Style};
use tuirealm::ratatui::text::{Line, Span};
use tuirealm::ratatui::widgets::Paragraph;
use tuirealm::ratatui::Frame;
use unicode_width::UnicodeWidthStr;

use super::{text_keys, Canvas, Draw};
use crate::tui::network::NetEvent;
use crate::tui::Msg;

/// What the input line shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct InputView {
    /// Where the text goes: `[#dev]`.
    pub(crate) prompt: String,
    /// The text.
    pub(crate) text: String,
    /// The cursor, in characters.
    pub(crate) cursor: usize,
    /// Whether keys go here (the cursor is shown).
    pub(crate) focused: bool,
}

impl Draw for InputView {
    fn draw(&self, frame: &mut Frame<'_>, area: Rect) {
        let prompt = format!("{} ", self.prompt);
        let pw = prompt.width();
        let room = usize::from(area.width).saturating_sub(pw + 1).max(1);
        // Scroll the text sideways so the cursor stays in view.
        let chars: Vec<char> = self.text.chars().collect();
        let before: String = chars[..self.cursor.min(chars.len())].iter().collect();
        let mut skip = 0;
        while before.chars().skip(skip).collect::<String>().width() > room {
            skip += 1;
        }
        let visible: String = chars.iter().skip(skip).collect();
        let cursor_x = before.chars().skip(skip).collect::<String>().width();
        let style = if self.focused {
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().fg(Color::DarkGray)
        };
        let line = Line::from(vec![Span::styled(prompt, style), Span::raw(visible)]);
        frame.render_widget(Paragraph::new(line), area);
        if self.focused {
            let x = area.x + u16::try_from(pw + cursor_x).unwrap_or(u16::MAX);
            frame.set_cursor_position(Position::new(x.min(area.right().saturating_sub(1)), area.y));
        }
    }
}

/// The input line.
#[derive(Default, tuirealm::component::Component)]
pub(crate) struct InputLine {
    component: Canvas<InputView>,
}

impl AppComponent<Msg, NetEvent> for InputLine {
    fn on(&mut self, ev: &Event<NetEvent>) -> Option<Msg> {
        text_keys(ev)
    }
}
