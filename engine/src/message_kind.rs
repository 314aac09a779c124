//! What a message is besides its text: its kind (a message or a notice)
//! and the client-only tags an IRC client put on it.
//!
//! The kind is stored with the message, so history replays a NOTICE as a
//! NOTICE; confab's own protocol has one kind of message and shows both
//! alike (docs/PROTOCOL.md). Client-only tags (`+key=value`) are carried
//! with a message as it is routed live, to IRC readers that negotiated
//! `message-tags`, and are not stored (docs/IRC.md).

use std::sync::Arc;

/// A message's kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// An ordinary message (IRC's PRIVMSG).
    #[default]
    Message,
    /// A notice (IRC's NOTICE: not to be answered automatically).
    Notice,
}

impl MessageKind {
    /// The stored code: 0 a message, 1 a notice.
    pub fn code(self) -> u8 {
        match self {
            MessageKind::Message => 0,
            MessageKind::Notice => 1,
        }
    }

    /// The kind of a stored code; an unknown one reads as a message.
    pub fn from_code(code: u8) -> MessageKind {
        match code {
            1 => MessageKind::Notice,
            _ => MessageKind::Message,
        }
    }

    /// The IRC command of this kind.
    pub fn irc_command(self) -> &'static str {
        match self {
            MessageKind::Message => "PRIVMSG",
            MessageKind::Notice => "NOTICE",
        }
    }
}

/// Most bytes of client-only tags a message carries (the IRCv3
/// message-tags limit for client tags, `;` separators included).
pub const CLIENT_TAGS_MAX: usize = 4094;

/// A message's client-only tags, as the client wrote them (escaped,
/// `+key[=value]` joined by `;`), at most [`CLIENT_TAGS_MAX`] bytes;
/// shared, since a message is routed to many readers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ClientTags(Option<Arc<str>>);

impl ClientTags {
    /// The client-only tags (`+` keys) among a line's raw `tags`; `None`
    /// if they are over [`CLIENT_TAGS_MAX`] bytes.
    pub fn from_raw(tags: &str) -> Option<ClientTags> {
        let mut kept = String::new();
        for t in tags
            .split(';')
            .filter(|t| t.starts_with('+') && t.len() > 1)
        {
            if !kept.is_empty() {
                kept.push(';');
            }
            kept.push_str(t);
            if kept.len() > CLIENT_TAGS_MAX {
                return None;
            }
        }
        Some(match kept.is_empty() {
            true => ClientTags(None),
            false => ClientTags(Some(kept.into())),
        })
    }

    /// The tags, `;` joined; `None` when there are none.
    pub fn get(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// Bytes they take.
    pub fn len(&self) -> usize {
        self.0.as_deref().map_or(0, str::len)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_client_tags_are_kept_and_too_many_bytes_are_refused() {
        let t = ClientTags::from_raw("label=x;+draft/reply=5;msgid=1;+a=b\\sc;+");
        assert_eq!(
            t.as_ref().and_then(ClientTags::get),
            Some("+draft/reply=5;+a=b\\sc")
        );
        assert_eq!(ClientTags::from_raw("label=x"), Some(ClientTags::default()));
        let long = format!("+k={}", "v".repeat(CLIENT_TAGS_MAX));
        assert_eq!(ClientTags::from_raw(&long), None);
    }

    #[test]
    fn a_kind_survives_its_stored_code() {
        for k in [MessageKind::Message, MessageKind::Notice] {
            assert_eq!(MessageKind::from_code(k.code()), k);
        }
        assert_eq!(MessageKind::from_code(9), MessageKind::Message);
    }
}
