//! The login/register form, with the last problem shown inline.

use tuirealm::component::AppComponent;
use tuirealm::event::Event;
use tuirealm::ratatui::layout::{Position, Rect};
use tuirealm::ratatui::style::{Color, Modifier, Style};
use tuirealm::ratatui::text::{Line, Span};
use tuirealm::ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use tuirealm::ratatui::Frame;
use unicode_width::UnicodeWidthStr;

use super::{text_keys, Canvas, Draw};
use crate::tui::layout;
use crate::tui::login_form::Field;
use crate::tui::network::NetEvent;
use crate::tui::Msg;

/// What the form shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LoginView {
    /// Host, port, user: text and cursor.
    pub(crate) host: (String, usize),
    /// Port.
    pub(crate) port: (String, usize),
    /// User.
    pub(crate) user: (String, usize),
    /// The password's length and cursor (it is drawn masked).
    pub(crate) password: (usize, usize),
    /// The register toggle.
    pub(crate) register: bool,
    /// The focused field.
    pub(crate) field: Field,
    /// What went wrong, in words.
    pub(crate) problem: Option<String>,
    /// A login is under way.
    pub(crate) busy: bool,
}

impl Default for LoginView {
    fn default() -> Self {
        LoginView {
            host: Default::default(),
            port: Default::default(),
            user: Default::default(),
            password: Default::default(),
            register: false,
            field: Field::Host,
            problem: None,
            busy: false,
        }
    }
}

const LABEL: usize = 12;

impl Draw for LoginView {
    fn draw(&self, frame: &mut Frame<'_>, area: Rect) {
        // A long problem (a changed certificate names a fingerprint and a
        // file) gets the rows it needs; word wrapping wastes some.
        let problem_rows = self
            .problem
            .as_ref()
            .map_or(0, |p| (p.width() + 4).div_ceil(54));
        let problem_rows = u16::try_from(problem_rows).unwrap_or(u16::MAX);
        let area = layout::login_box(area, problem_rows);
        frame.render_widget(Clear, area);
        let title = if self.register {
            " confab · register "
        } else {
            " confab · log in "
        };
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(Style::default().fg(Color::Cyan))
            .title(Span::styled(
                title,
                Style::default().add_modifier(Modifier::BOLD),
            ));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let mask = "•".repeat(self.password.0);
        let fields: [(Field, &str, &str, usize); 4] = [
            (Field::Host, "Server", &self.host.0, self.host.1),
            (Field::Port, "Port", &self.port.0, self.port.1),
            (Field::User, "User", &self.user.0, self.user.1),
            (Field::Password, "Password", &mask, self.password.1),
        ];
        let mut lines = vec![Line::raw("")];
        let mut cursor = None;
        for (i, (field, label, text, at)) in fields.iter().enumerate() {
            let focused = *field == self.field;
            let label_style = if focused {
                Style::default()
                    .fg(Color::Yellow)
                    .add_modifier(Modifier::BOLD)
            } else {
                Style::default().fg(Color::Gray)
            };
            let marker = if focused { "▸ " } else { "  " };
            lines.push(Line::from(vec![
                Span::styled(format!("{marker}{label:<w$}", w = LABEL - 2), label_style),
                Span::styled(
                    (*text).to_owned(),
                    Style::default().add_modifier(Modifier::UNDERLINED),
                ),
            ]));
            if focused {
                let before: String = text.chars().take(*at).collect();
                cursor = Some((LABEL + before.width(), i + 1));
            }
        }
        let focused = self.field == Field::Register;
        let tick = if self.register { "[x]" } else { "[ ]" };
        let style = if focused {
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        let marker = if focused { "▸ " } else { "  " };
        lines.push(Line::styled(
            format!("{marker}{tick} Register a new account"),
            style,
        ));
        lines.push(Line::raw(""));
        let action = if self.register {
            "register and log in"
        } else {
            "log in"
        };
        lines.push(Line::styled(
            format!("  Enter {action} · Tab next · Space/F3 register · F10 quit"),
            Style::default().fg(Color::DarkGray),
        ));
        lines.push(Line::raw(""));
        if self.busy {
            lines.push(Line::styled(
                "  Connecting…",
                Style::default().fg(Color::Yellow),
            ));
        } else if let Some(p) = &self.problem {
            lines.push(Line::styled(
                format!("  ✖ {p}"),
                Style::default()
                    .fg(Color::LightRed)
                    .add_modifier(Modifier::BOLD),
            ));
        }
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
        if let Some((x, y)) = cursor {
            let x = inner.x + u16::try_from(x).unwrap_or(0);
            let y = inner.y + u16::try_from(y).unwrap_or(0);
            if x < inner.right() && y < inner.bottom() {
                frame.set_cursor_position(Position::new(x, y));
            }
        }
    }
}

/// The form.
#[derive(Default, tuirealm::component::Component)]
pub(crate) struct LoginForm {
    component: Canvas<LoginView>,
}

impl AppComponent<Msg, NetEvent> for LoginForm {
    fn on(&mut self, ev: &Event<NetEvent>) -> Option<Msg> {
        text_keys(ev)
    }
}
