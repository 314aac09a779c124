//! What storage loads for a reader: a history page, the conversations
//! a CHATHISTORY TARGETS lists, a replay.

use super::StoredMessage;
use crate::frame::Target;
use crate::id::MessageId;
use crate::name::Name;

/// A loaded history page.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct HistoryLoaded {
    /// Newest first.
    pub messages: Vec<StoredMessage>,
    /// Whether older ones remain.
    pub more: bool,
    /// The tombstones among them (their bodies are empty), in the same
    /// order: id and who deleted it.
    pub deleted: Vec<(MessageId, Name)>,
}

/// A conversation and the time of its latest message (a line of IRC's
/// CHATHISTORY TARGETS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Latest {
    /// The conversation as its reader sees it (a DM: the other party).
    pub target: Target,
    /// Its latest message's commit time, ms since the Unix epoch.
    pub timestamp_ms: u64,
}

/// Loaded missed messages.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ReplayLoaded {
    /// Oldest first.
    pub messages: Vec<StoredMessage>,
    /// Conversations where more were missed than a replay carries: the
    /// oldest ones were left out, `(target, first, last, count)`.
    pub skipped: Vec<(Target, MessageId, MessageId, u32)>,
    /// The tombstones among them (their bodies are empty), in the same
    /// order: id and who deleted it.
    pub deleted: Vec<(MessageId, Name)>,
}
