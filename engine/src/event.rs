//! What the server tells a client, whatever protocol it speaks.
//!
//! The hub queues [`Event`]s, not bytes. Each sits in a [`Shared`] beside
//! the encodings made of it, one per protocol, made the first time a
//! connection of that protocol drains it: a room message to ten thousand
//! sessions is encoded once for the confab codec and once for IRC, and
//! every queue holds the same `Arc`.

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::effect::StoredMessage;
use crate::error::ProtocolError;
use crate::id::{MessageId, Ref, RosterVersion};
use crate::name::Name;
use crate::protocol::{Codec, Protocol};
use crate::wire::frame::{GroupChange, GroupInfo, Presence, ServerInfo, Target};

/// A server event (see the module docs). Variants follow the server's
/// frames of docs/PROTOCOL.md.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Are you there? Answer with a pong.
    Ping {
        /// Echo it.
        token: u64,
    },
    /// The answer to the client's ping.
    Pong {
        /// The ping's token.
        token: u64,
    },
    /// The answer to HELLO: who the server is and the limits it keeps.
    ServerHello {
        /// Its name.
        server: String,
        /// Its limits.
        info: ServerInfo,
    },
    /// The request with this reference succeeded.
    Ok {
        /// The request's.
        reference: Ref,
    },
    /// Logged in.
    LoginOk {
        /// The login's reference.
        reference: Ref,
        /// The account as registered.
        user: Name,
    },
    /// One chunk of who is online at `version`.
    RosterSnapshot {
        /// The roster version.
        version: RosterVersion,
        /// Whether it is the final chunk.
        last: bool,
        /// The users in this chunk.
        users: Vec<Name>,
    },
    /// One change of the roster.
    RosterDelta {
        /// The version after it.
        version: RosterVersion,
        /// Online or offline.
        presence: Presence,
        /// Who.
        user: Name,
    },
    /// The message sent with `reference` is stored.
    Ack {
        /// The send's reference.
        reference: Ref,
        /// Its id.
        id: MessageId,
        /// Its commit time, ms since the Unix epoch.
        timestamp_ms: u64,
    },
    /// A message.
    Message(StoredMessage),
    /// Someone joined or left a group.
    GroupEvent {
        /// Joined or left.
        change: GroupChange,
        /// The group.
        group: Name,
        /// Who.
        user: Name,
    },
    /// Every group.
    GroupList {
        /// The request's reference.
        reference: Ref,
        /// The groups, by name.
        groups: Vec<GroupInfo>,
    },
    /// A page of a conversation, newest first.
    HistoryPage {
        /// The request's reference.
        reference: Ref,
        /// The conversation.
        target: Target,
        /// Whether older messages remain.
        more: bool,
        /// The messages.
        entries: Vec<StoredMessage>,
    },
    /// Every missed message has been sent.
    CaughtUp {
        /// The newest id committed at that moment.
        last_id: MessageId,
    },
    /// Messages for the session were dropped; they are in history.
    Missed {
        /// The conversation.
        target: Target,
        /// The first dropped id.
        first: MessageId,
        /// The last dropped id.
        last: MessageId,
        /// How many.
        count: u32,
    },
    /// A request failed, or the session is being closed.
    Error {
        /// The failed request's reference, or zero.
        reference: Ref,
        /// Why.
        error: ProtocolError,
    },
    /// The server is shutting down.
    Shutdown {
        /// When to come back.
        retry_after: Duration,
        /// Why.
        reason: String,
    },
}

/// Protocols a hub can speak at once (see [`crate::Hub::add_protocol`]).
pub const MAX_PROTOCOLS: usize = 4;

/// An event and its encodings (see the module docs).
#[derive(Debug)]
pub struct Shared {
    event: Event,
    encoded: [OnceLock<Arc<[u8]>>; MAX_PROTOCOLS],
}

impl Shared {
    /// A new shared event, not yet encoded.
    pub fn new(event: Event) -> Arc<Shared> {
        Arc::new(Shared {
            event,
            encoded: Default::default(),
        })
    }

    /// The event.
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// The length of the event in `protocol`'s encoding: the encoding's,
    /// once made, else asked of `codec` without encoding.
    pub fn encoded_len(&self, protocol: Protocol, codec: &dyn Codec) -> u32 {
        let len = match self.encoded[protocol.index()].get() {
            Some(bytes) => bytes.len(),
            None => codec.encoded_len(&self.event),
        };
        u32::try_from(len).unwrap_or(u32::MAX)
    }

    /// The event in `protocol`'s encoding, made by `codec` on first demand.
    pub fn encoded(&self, protocol: Protocol, codec: &dyn Codec) -> &Arc<[u8]> {
        self.encoded[protocol.index()].get_or_init(|| encode_shared(codec, &self.event))
    }
}

/// Encodes into a per-thread scratch vector, then allocates the shared
/// buffer once at its exact length (encoding into a fresh vector grew it
/// several times, then `Arc::from` copied it once more).
fn encode_shared(codec: &dyn Codec, event: &Event) -> Arc<[u8]> {
    thread_local! {
        static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    SCRATCH.with_borrow_mut(|scratch| {
        scratch.clear();
        codec.encode(event, scratch);
        let shared = Arc::from(&scratch[..]);
        // A large event (a history page) does not pin its buffer.
        if scratch.capacity() > SCRATCH_KEEP {
            *scratch = Vec::new();
        }
        shared
    })
}

/// Scratch capacity kept between encodings.
const SCRATCH_KEEP: usize = 16 * 1024;
