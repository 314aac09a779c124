//! The status bar (connection state, TLS, user, round trip) and the key
//! hints bar.

use tuirealm::component::AppComponent;
use tuirealm::event::Event;
use tuirealm::ratatui::layout::Rect;
use tuirealm::ratatui::style::{Color, Modifier, Style};
use tuirealm::ratatui::text::{Line, Span};
use tuirealm::ratatui::widgets::Paragraph;
use tuirealm::ratatui::Frame;

use super::{Canvas, Draw};
use crate::tui::network::NetEvent;
use crate::tui::Msg;

/// How healthy the connection is, for its color.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Health {
    /// Logged in.
    Good,
    /// Connecting, reconnecting.
    #[default]
    Pending,
    /// Offline, lost.
    Bad,
}

/// What the status bar shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct StatusView {
    /// The connection state in words.
    pub(crate) link: String,
    /// Its health.
    pub(crate) health: Health,
    /// `TLS` or `no TLS`, when connected.
    pub(crate) security: Option<String>,
    /// `alice@host:port`.
    pub(crate) who: Option<String>,
    /// `rtt 3 ms`.
    pub(crate) rtt: Option<String>,
    /// The local time.
    pub(crate) clock: String,
}

impl Draw for StatusView {
    fn draw(&self, frame: &mut Frame<'_>, area: Rect) {
        let bar = Style::default().bg(Color::Blue).fg(Color::White);
        let sep = Span::styled(" │ ", bar.fg(Color::Gray));
        let dot = match self.health {
            Health::Good => Color::LightGreen,
            Health::Pending => Color::Yellow,
            Health::Bad => Color::LightRed,
        };
        let mut spans = vec![
            Span::styled(" confab", bar.add_modifier(Modifier::BOLD)),
            sep.clone(),
            Span::styled("● ", bar.fg(dot)),
            Span::styled(self.link.clone(), bar),
        ];
        for s in [&self.security, &self.who, &self.rtt].into_iter().flatten() {
            spans.push(sep.clone());
            spans.push(Span::styled(s.clone(), bar));
        }
        spans.push(sep);
        spans.push(Span::styled(self.clock.clone(), bar));
        frame.render_widget(Paragraph::new(Line::from(spans)).style(bar), area);
    }
}

/// What the key hints bar shows: key, then what it does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct HintsView {
    /// The hints, in order.
    pub(crate) hints: Vec<(String, String)>,
}

impl Draw for HintsView {
    fn draw(&self, frame: &mut Frame<'_>, area: Rect) {
        let mut spans = Vec::new();
        for (key, what) in &self.hints {
            spans.push(Span::styled(
                key.clone(),
                Style::default()
                    .fg(Color::Black)
                    .bg(Color::Cyan)
                    .add_modifier(Modifier::BOLD),
            ));
            spans.push(Span::raw(format!(" {what} ")));
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), area);
    }
}

/// The status bar (never focused).
#[derive(Default, tuirealm::component::Component)]
pub(crate) struct StatusBar {
    component: Canvas<StatusView>,
}

impl AppComponent<Msg, NetEvent> for StatusBar {
    fn on(&mut self, _ev: &Event<NetEvent>) -> Option<Msg> {
        None
    }
}

/// The key hints bar (never focused).
#[derive(Default, tuirealm::component::Component)]
pub(crate) struct KeyHints {
    component: Canvas<HintsView>,
}

impl AppComponent<Msg, NetEvent> for KeyHints {
    fn on(&mut self, _ev: &Event<NetEvent>) -> Option<Msg> {
        None
    }
}
