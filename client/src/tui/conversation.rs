//! One conversation as the client holds it: which one ([`ConvId`]), its
//! messages by id (each once, ordered), unread count, what is known of its
//! older history, its scroll position and read marker.

use std::collections::BTreeMap;
use std::fmt;

use confab_engine::name::NameKey;
use confab_engine::{MessageId, Name, Target};

/// Which conversation: the room, a group or the DMs with one user. Names
/// are compared ignoring case, as the server does.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum ConvId {
    /// The room.
    Room,
    /// A group.
    Group(NameKey),
    /// Direct messages with this user.
    User(NameKey),
}

impl ConvId {
    /// The conversation a target names (for a DM: the other party).
    pub(crate) fn of(target: &Target) -> ConvId {
        match target {
            Target::Room => ConvId::Room,
            Target::Group(g) => ConvId::Group(g.key()),
            Target::User(u) => ConvId::User(u.key()),
        }
    }
}

impl fmt::Debug for ConvId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConvId::Room => f.write_str("all"),
            ConvId::Group(g) => write!(f, "#{}", g.as_str()),
            ConvId::User(u) => write!(f, "@{}", u.as_str()),
        }
    }
}

/// What a deleted message shows instead of its body.
pub(crate) const DELETED: &str = "(message deleted)";

/// One stored message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Its id.
    pub(crate) id: MessageId,
    /// Commit time, ms since the Unix epoch.
    pub(crate) ts_ms: u64,
    /// Who sent it.
    pub(crate) sender: Name,
    /// The text, cleaned of control characters.
    pub(crate) body: String,
}

/// What is known about a conversation's older history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Older {
    /// Never asked.
    Unknown,
    /// The server has more before the oldest message held.
    More,
    /// Everything is here.
    Complete,
}

/// One conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Conversation {
    /// Its target, in the spelling first seen.
    pub(crate) target: Target,
    /// Messages by id: ordered, each once.
    pub(crate) messages: BTreeMap<MessageId, Entry>,
    /// Messages from others that arrived while another conversation was shown.
    pub(crate) unread: u32,
    /// Older history.
    pub(crate) older: Older,
    /// A history request for it is on its way.
    pub(crate) fetching: bool,
    /// How many screen lines the view is scrolled up from the bottom.
    pub(crate) scroll: usize,
    /// Read up to here, on every device of the user (MARK_READ sent, or
    /// READ_MARKER received).
    pub(crate) read_up_to: MessageId,
}

impl Conversation {
    /// An empty conversation, nothing known of its history.
    pub(crate) fn new(target: Target) -> Conversation {
        Conversation {
            target,
            messages: BTreeMap::new(),
            unread: 0,
            older: Older::Unknown,
            fetching: false,
            scroll: 0,
            read_up_to: MessageId(0),
        }
    }

    /// The oldest id held, for HISTORY_REQUEST's `before`.
    pub(crate) fn oldest(&self) -> Option<MessageId> {
        self.messages.keys().next().copied()
    }
}
