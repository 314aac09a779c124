//! Modal dialogs over the screen: the actions menu, the group name prompt,
//! the help.

use tuirealm::component::AppComponent;
use tuirealm::event::Event;
use tuirealm::ratatui::layout::{Position, Rect};
use tuirealm::ratatui::style::{Color, Modifier, Style};
use tuirealm::ratatui::text::{Line, Span};
use tuirealm::ratatui::widgets::{Block, Borders, Clear, Paragraph};
use tuirealm::ratatui::Frame;
use unicode_width::UnicodeWidthStr;

use super::{text_keys, Canvas, Draw};
use crate::tui::layout;
use crate::tui::network::NetEvent;
use crate::tui::Msg;

/// What the dialog shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum DialogView {
    /// No dialog.
    #[default]
    Hidden,
    /// The actions menu: (key, action) rows and the selected one.
    Menu {
        /// The rows.
        entries: Vec<(String, String)>,
        /// The selected row.
        selected: usize,
    },
    /// A one-line prompt.
    Prompt {
        /// What is asked.
        title: String,
        /// The text typed.
        text: String,
        /// The cursor, in characters.
        cursor: usize,
    },
    /// Lines of help.
    Help {
        /// (keys, what they do).
        lines: Vec<(String, String)>,
    },
}

fn frame_box<'a>(title: &'a str) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(Style::default().fg(Color::Yellow))
        .title(Span::styled(
            format!(" {title} "),
            Style::default().add_modifier(Modifier::BOLD),
        ))
}

impl Draw for DialogView {
    fn draw(&self, frame: &mut Frame<'_>, area: Rect) {
        match self {
            DialogView::Hidden => {}
            DialogView::Menu { entries, selected } => {
                let h = u16::try_from(entries.len() + 2).unwrap_or(u16::MAX);
                let r = layout::centred(area, 34, h);
                frame.render_widget(Clear, r);
                let block = frame_box("Actions");
                let inner = block.inner(r);
                frame.render_widget(block, r);
                let lines: Vec<Line<'static>> = entries
                    .iter()
                    .enumerate()
                    .map(|(i, (key, what))| {
                        let style = if i == *selected {
                            Style::default().add_modifier(Modifier::REVERSED)
                        } else {
                            Style::default()
                        };
                        Line::from(vec![
                            Span::styled(format!(" {key:<4}"), style.fg(Color::Cyan)),
                            Span::styled(format!("{what:<27}"), style),
                        ])
                    })
                    .collect();
                frame.render_widget(Paragraph::new(lines), inner);
            }
            DialogView::Prompt {
                title,
                text,
                cursor,
            } => {
                let r = layout::centred(area, 48, 5);
                frame.render_widget(Clear, r);
                let block = frame_box(title);
                let inner = block.inner(r);
                frame.render_widget(block, r);
                let lines = vec![
                    Line::from(vec![Span::raw(" # "), Span::raw(text.clone())]),
                    Line::styled(
                        " Enter OK · Esc cancel",
                        Style::default().fg(Color::DarkGray),
                    ),
                ];
                frame.render_widget(Paragraph::new(lines), inner);
                let before: String = text.chars().take(*cursor).collect();
                let x = inner.x + 3 + u16::try_from(before.width()).unwrap_or(0);
                if x < inner.right() {
                    frame.set_cursor_position(Position::new(x, inner.y));
                }
            }
            DialogView::Help { lines } => {
                let h = u16::try_from(lines.len() + 4).unwrap_or(u16::MAX);
                let r = layout::centred(area, 80, h);
                frame.render_widget(Clear, r);
                let block = frame_box("Keys and commands");
                let inner = block.inner(r);
                frame.render_widget(block, r);
                let mut out: Vec<Line<'static>> = lines
                    .iter()
                    .map(|(k, what)| {
                        Line::from(vec![
                            Span::styled(format!(" {k:<24}"), Style::default().fg(Color::Cyan)),
                            Span::raw(what.clone()),
                        ])
                    })
                    .collect();
                out.push(Line::raw(""));
                out.push(Line::styled(
                    " Esc or Enter closes this.",
                    Style::default().fg(Color::DarkGray),
                ));
                frame.render_widget(Paragraph::new(out), inner);
            }
        }
    }
}

/// The dialog (focused while shown).
#[derive(Default, tuirealm::component::Component)]
pub(crate) struct Dialog {
    component: Canvas<DialogView>,
}

impl AppComponent<Msg, NetEvent> for Dialog {
    fn on(&mut self, ev: &Event<NetEvent>) -> Option<Msg> {
        text_keys(ev)
    }
}
