//! What the server tells a client, whatever protocol it speaks.
//!
//! The hub queues [`Event`]s, not bytes (see [`crate::shared`] for how one
//! event is shared and encoded once per protocol); each front end's codec
//! turns them into its protocol's bytes.

use std::time::Duration;

use crate::device::Token;
use crate::effect::StoredMessage;
use crate::error::ProtocolError;
use crate::id::{MessageId, Ref, RosterVersion};
use crate::name::Name;
use crate::wire::frame::{DeviceInfo, GroupChange, GroupInfo, Presence, ServerInfo, Target};

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
        /// The protocol version the session speaks (the client's).
        version: u16,
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
    /// Logged in by LOGIN2.
    LoginOk2 {
        /// The login's reference.
        reference: Ref,
        /// The account as registered.
        user: Name,
        /// The session's device, if any.
        device: Option<Name>,
        /// A new token, shown only here.
        token: Option<Token>,
        /// The device's bookmark (0: none).
        bookmark: MessageId,
    },
    /// The user has read a conversation up to `id`.
    ReadMarker {
        /// The conversation (a DM: the other party).
        target: Target,
        /// Read up to here.
        id: MessageId,
    },
    /// The user's devices.
    DeviceList {
        /// The request's reference.
        reference: Ref,
        /// By name.
        devices: Vec<DeviceInfo>,
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
        /// Why they left, if their last session said (an IRC QUIT's
        /// reason, on this node): IRC readers see it, confab's protocol
        /// has no field for it, and the roster's log keeps none.
        reason: Option<std::sync::Arc<str>>,
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
        /// Why, if the member said (an IRC PART's reason, given on this
        /// node): IRC readers see it, confab's protocol has no field for it.
        reason: Option<std::sync::Arc<str>>,
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
    /// The conversations whose latest message falls within a window,
    /// earliest first (IRC's CHATHISTORY TARGETS: never sent to a
    /// confab session, whose protocol cannot ask for it).
    HistoryTargets {
        /// The request's reference.
        reference: Ref,
        /// The conversations.
        targets: Vec<crate::effect::Latest>,
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
    /// A message was deleted (a tombstone is left): clients hide it.
    Deleted {
        /// The message.
        id: MessageId,
        /// Who deleted it.
        by: Name,
    },
    /// A server notice: an operator's announcement to everyone.
    Notice {
        /// The notice.
        text: String,
    },
    /// Lines a gateway front end wrote for one session (an IRC reply),
    /// sent as they are; the confab codec writes nothing for it.
    Raw(Box<[u8]>),
    /// The server is shutting down.
    Shutdown {
        /// When to come back.
        retry_after: Duration,
        /// Why.
        reason: String,
    },
}
