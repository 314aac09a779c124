//! The components. Each is a tui-realm [`AppComponent`] whose `on` only
//! maps keys to a [`Msg`]; what it draws is handed to it by the view as a
//! plain value (its `…View` type) through `Attribute::Content`, and drawn
//! by a [`Canvas`]. No component holds state that update needs.
//!
//! [`AppComponent`]: tuirealm::component::AppComponent

pub(crate) mod conversation;
pub(crate) mod dialog;
pub(crate) mod events;
pub(crate) mod input;
pub(crate) mod lists;
pub(crate) mod login;
pub(crate) mod status;

use std::fmt::Debug;

use tuirealm::command::{Cmd, CmdResult};
use tuirealm::component::Component;
use tuirealm::event::{Event, Key, KeyEvent, KeyModifiers};
use tuirealm::props::{AttrValue, Attribute, PropBound, PropPayload, Props, QueryResult};
use tuirealm::ratatui::layout::Rect;
use tuirealm::ratatui::Frame;
use tuirealm::state::State;

use super::editor::Edit;
use super::network::NetEvent;
use super::{Action, Msg};

/// What a component draws: a value the view builds from the model.
pub(crate) trait Draw: Clone + PartialEq + Debug + Default + Send + Sync + 'static {
    /// Draws itself into `area`.
    fn draw(&self, frame: &mut Frame<'_>, area: Rect);
}

/// A [`Component`] drawing the `D` it was last given (see the module docs).
#[derive(Default)]
pub(crate) struct Canvas<D> {
    props: Props,
    data: D,
}

impl<D: Draw> Component for Canvas<D> {
    fn view(&mut self, frame: &mut Frame<'_>, area: Rect) {
        self.data.draw(frame, area);
    }

    fn query<'a>(&'a self, attr: Attribute) -> Option<QueryResult<'a>> {
        self.props.get_for_query(attr)
    }

    fn attr(&mut self, attr: Attribute, value: AttrValue) {
        if attr == Attribute::Content {
            if let AttrValue::Payload(PropPayload::Any(any)) = &value {
                if let Some(d) = any.as_any().downcast_ref::<D>() {
                    self.data = d.clone();
                    return;
                }
            }
        }
        self.props.set(attr, value);
    }

    fn state(&self) -> State {
        State::None
    }

    fn perform(&mut self, cmd: Cmd) -> CmdResult {
        CmdResult::Invalid(cmd)
    }
}

/// The attribute value that hands `data` to a [`Canvas`].
pub(crate) fn content<D: Draw>(data: D) -> AttrValue {
    AttrValue::Payload(PropPayload::Any(data.to_any_prop()))
}

/// Keys that mean the same everywhere: function keys, Ctrl-C, Tab, Esc,
/// Enter, arrows, paging, switching conversations.
pub(crate) fn common(ev: &Event<NetEvent>) -> Option<Msg> {
    let Event::Keyboard(KeyEvent { code, modifiers }) = ev else {
        return None;
    };
    let ctrl = modifiers.contains(KeyModifiers::CONTROL);
    let alt = modifiers.contains(KeyModifiers::ALT);
    Some(match code {
        Key::Function(1) => Msg::Action(Action::Help),
        Key::Function(2) => Msg::Action(Action::Account),
        Key::Function(3) => Msg::Action(Action::Register),
        Key::Function(5) => Msg::Action(Action::CreateGroup),
        Key::Function(6) => Msg::Action(Action::JoinGroup),
        Key::Function(7) => Msg::Action(Action::LeaveGroup),
        Key::Function(9) => Msg::Action(Action::Menu),
        Key::Function(10) => Msg::Action(Action::Quit),
        Key::Char('c' | 'd') if ctrl => Msg::Action(Action::Quit),
        Key::Char('n') if ctrl => Msg::NextConversation,
        Key::Char('p') if ctrl => Msg::PrevConversation,
        Key::AltDown => Msg::NextConversation,
        Key::AltUp => Msg::PrevConversation,
        Key::Down if alt => Msg::NextConversation,
        Key::Up if alt => Msg::PrevConversation,
        Key::Tab => Msg::Next,
        Key::BackTab => Msg::Prev,
        Key::Esc => Msg::Cancel,
        Key::Enter => Msg::Submit,
        Key::Up => Msg::Up,
        Key::Down => Msg::Down,
        Key::PageUp => Msg::PageUp,
        Key::PageDown => Msg::PageDown,
        _ => return None,
    })
}

/// Keys that edit a line of text (and pasted text).
pub(crate) fn editing(ev: &Event<NetEvent>) -> Option<Msg> {
    let (code, modifiers) = match ev {
        Event::Keyboard(KeyEvent { code, modifiers }) => (code, modifiers),
        Event::Paste(s) => return Some(Msg::Edit(Edit::Paste(s.clone()))),
        _ => return None,
    };
    let ctrl = modifiers.contains(KeyModifiers::CONTROL);
    let edit = match code {
        Key::Char('a') if ctrl => Edit::Home,
        Key::Char('e') if ctrl => Edit::End,
        Key::Char('u') if ctrl => Edit::Clear,
        Key::Char('w') if ctrl => Edit::DeleteWord,
        Key::Char('h') if ctrl => Edit::Backspace,
        Key::Char(_) if ctrl || modifiers.contains(KeyModifiers::ALT) => return None,
        Key::Char(c) => Edit::Insert(*c),
        Key::Backspace => Edit::Backspace,
        Key::Delete => Edit::Delete,
        Key::Left => Edit::Left,
        Key::Right => Edit::Right,
        Key::Home => Edit::Home,
        Key::End => Edit::End,
        _ => return None,
    };
    Some(Msg::Edit(edit))
}

/// The keys of a component with a text field: common keys, then editing.
pub(crate) fn text_keys(ev: &Event<NetEvent>) -> Option<Msg> {
    common(ev).or_else(|| editing(ev))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(code: Key, modifiers: KeyModifiers, want: Option<Msg>) {
        let ev = Event::Keyboard(KeyEvent { code, modifiers });
        assert_eq!(text_keys(&ev), want, "{code:?} {modifiers:?}");
    }

    #[test]
    fn keys_map_to_messages() {
        let none = KeyModifiers::NONE;
        check(Key::Char('x'), none, Some(Msg::Edit(Edit::Insert('x'))));
        check(
            Key::Char('X'),
            KeyModifiers::SHIFT,
            Some(Msg::Edit(Edit::Insert('X'))),
        );
        check(
            Key::Char('c'),
            KeyModifiers::CONTROL,
            Some(Msg::Action(Action::Quit)),
        );
        check(
            Key::Char('w'),
            KeyModifiers::CONTROL,
            Some(Msg::Edit(Edit::DeleteWord)),
        );
        check(
            Key::Function(5),
            none,
            Some(Msg::Action(Action::CreateGroup)),
        );
        check(Key::PageUp, none, Some(Msg::PageUp));
        check(Key::Down, KeyModifiers::ALT, Some(Msg::NextConversation));
        check(Key::Down, none, Some(Msg::Down));
        check(Key::Char('z'), KeyModifiers::CONTROL, None);
        assert_eq!(text_keys(&Event::Tick), None);
    }
}
