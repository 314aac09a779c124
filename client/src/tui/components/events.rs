//! The invisible component that turns non-key events (ticks, network
//! events from the port, resizes) into messages. It is never focused and
//! subscribes to every event, so each reaches update exactly once.

use tuirealm::component::AppComponent;
use tuirealm::event::Event;

use super::{Canvas, Draw};
use crate::tui::network::NetEvent;
use crate::tui::Msg;

/// Nothing to draw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Nothing;

impl Draw for Nothing {
    fn draw(
        &self,
        _frame: &mut tuirealm::ratatui::Frame<'_>,
        _area: tuirealm::ratatui::layout::Rect,
    ) {
    }
}

/// The event sink.
#[derive(Default, tuirealm::component::Component)]
pub(crate) struct Events {
    component: Canvas<Nothing>,
}

impl AppComponent<Msg, NetEvent> for Events {
    fn on(&mut self, ev: &Event<NetEvent>) -> Option<Msg> {
        match ev {
            Event::Tick => Some(Msg::Tick),
            Event::User(e) => Some(Msg::Net(e.clone())),
            Event::WindowResize(w, h) => Some(Msg::Resize(*w, *h)),
            _ => None,
        }
    }
}
