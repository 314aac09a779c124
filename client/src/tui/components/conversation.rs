//! The conversation pane: time, sender and wrapped text of each message,
//! scrolled as the model says, with the news line in its bottom border.

use tuirealm::component::AppComponent;
use tuirealm::event::Event;
use tuirealm::ratatui::layout::Rect;
use tuirealm::ratatui::style::{Color, Modifier, Style};
use tuirealm::ratatui::text::{Line, Span};
use tuirealm::ratatui::widgets::{Block, Borders, Paragraph};
use tuirealm::ratatui::Frame;

use super::{Canvas, Draw};
use crate::tui::network::NetEvent;
use crate::tui::wrap;
use crate::tui::Msg;

/// One message as shown.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Said {
    /// `HH:MM`.
    pub(crate) time: String,
    /// Who.
    pub(crate) sender: String,
    /// Sent by this user.
    pub(crate) mine: bool,
    /// Not acknowledged yet.
    pub(crate) pending: bool,
    /// The text, cleaned.
    pub(crate) body: String,
}

/// What the pane shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ConversationView {
    /// The title: the conversation's name and its state.
    pub(crate) title: String,
    /// The messages, oldest first.
    pub(crate) lines: Vec<Said>,
    /// Screen lines scrolled up from the bottom.
    pub(crate) scroll: usize,
    /// The news line, and whether it is bad news.
    pub(crate) notice: Option<(String, bool)>,
}

const NAME_COLORS: [Color; 6] = [
    Color::Cyan,
    Color::Green,
    Color::Magenta,
    Color::Blue,
    Color::LightRed,
    Color::LightGreen,
];

/// A stable color per name, so people are easy to tell apart.
pub(crate) fn name_color(name: &str) -> Color {
    let h = name
        .bytes()
        .map(|b| b.to_ascii_lowercase())
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    NAME_COLORS[h as usize % NAME_COLORS.len()]
}

impl Draw for ConversationView {
    fn draw(&self, frame: &mut Frame<'_>, area: Rect) {
        let mut block = Block::default()
            .borders(Borders::ALL)
            .border_style(Style::default().fg(Color::DarkGray))
            .title(Span::styled(
                format!(" {} ", self.title),
                Style::default().add_modifier(Modifier::BOLD),
            ));
        if let Some((text, bad)) = &self.notice {
            let style = if *bad {
                Style::default().fg(Color::LightRed)
            } else {
                Style::default().fg(Color::Gray)
            };
            block = block.title_bottom(Span::styled(format!(" {text} "), style));
        }
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let width = usize::from(inner.width);
        let mut out: Vec<Line<'static>> = Vec::new();
        for said in &self.lines {
            let prefix = wrap::prefix_width(&said.sender);
            let name_style = if said.mine {
                Style::default().add_modifier(Modifier::BOLD)
            } else {
                Style::default()
                    .fg(name_color(&said.sender))
                    .add_modifier(Modifier::BOLD)
            };
            let body_style = if said.pending {
                Style::default().fg(Color::DarkGray)
            } else {
                Style::default()
            };
            for (i, piece) in wrap::body_lines(prefix, &said.body, width)
                .into_iter()
                .enumerate()
            {
                let mut spans = Vec::with_capacity(5);
                if i == 0 {
                    let time = if said.pending { "  …  " } else { &said.time };
                    spans.push(Span::styled(
                        format!("{time} "),
                        Style::default().fg(Color::DarkGray),
                    ));
                    spans.push(Span::styled("<", Style::default().fg(Color::DarkGray)));
                    spans.push(Span::styled(said.sender.clone(), name_style));
                    spans.push(Span::styled("> ", Style::default().fg(Color::DarkGray)));
                } else {
                    spans.push(Span::raw(" ".repeat(prefix)));
                }
                spans.push(Span::styled(piece, body_style));
                out.push(Line::from(spans));
            }
        }
        let height = usize::from(inner.height);
        let end = out.len().saturating_sub(self.scroll);
        let start = end.saturating_sub(height);
        let shown: Vec<Line<'static>> = out.drain(start..end).collect();
        frame.render_widget(Paragraph::new(shown), inner);
    }
}

/// The pane (never focused: keys go to the input line).
#[derive(Default, tuirealm::component::Component)]
pub(crate) struct ConversationPane {
    component: Canvas<ConversationView>,
}

impl AppComponent<Msg, NetEvent> for ConversationPane {
    fn on(&mut self, _ev: &Event<NetEvent>) -> Option<Msg> {
        None
    }
}

#[cfg(test)]
mod tests {
    use tuirealm::component::Component;
    use tuirealm::ratatui::layout::Size;
    use tuirealm::testing::render_to_string;

    use super::*;

    #[test]
    fn long_messages_wrap_under_their_text_and_the_bottom_is_shown() {
        let said = |sender: &str, body: &str| Said {
            time: "12:34".into(),
            sender: sender.into(),
            mine: false,
            pending: false,
            body: body.into(),
        };
        let mut c = ConversationPane::default();
        c.attr(
            tuirealm::props::Attribute::Content,
            super::super::content(ConversationView {
                title: "all".into(),
                lines: vec![
                    said("bob", "first, scrolled away"),
                    said("alice", "hello there, this is a long line that wraps"),
                ],
                scroll: 0,
                notice: Some(("Logged in.".into(), false)),
            }),
        );
        let screen = render_to_string(&mut c, Size::new(40, 4));
        assert_eq!(
            screen,
            "┌ all ─────────────────────────────────┐\n\
             │12:34 <alice> hello there, this is a  │\n\
             │              long line that wraps    │\n\
             └ Logged in. ──────────────────────────┘\n"
        );
    }
}
