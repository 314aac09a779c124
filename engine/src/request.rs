//! What a client asks of the server, whatever protocol it speaks.
//!
//! Every front end (the confab binary codec, and next the IRC and
//! WebSocket gateways) turns its bytes into these and hands them to
//! [`crate::Hub::handle_request`]; the hub never sees a frame. Texts borrow
//! from the front end's input buffer, so a request is parsed without
//! allocating; the hub copies what outlives the call (a body it stores).

use crate::device::ClientId;
use crate::id::{MessageId, Ref, RosterVersion};
use crate::name::Name;
use crate::wire::frame::{Credential, Resume, Target};

/// A change to group membership a client asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupRequest {
    /// Create the group and become its first member.
    Create,
    /// Join it.
    Join,
    /// Leave it.
    Leave,
}

/// A client's request (see the module docs). Variants follow the requests
/// of docs/PROTOCOL.md; [`Request::name`] gives the document's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// Are you there? Answered with [`crate::Event::Pong`].
    Ping {
        /// Echoed.
        token: u64,
    },
    /// The answer to the server's ping.
    Pong {
        /// The ping's token.
        token: u64,
    },
    /// The first request of every session.
    Hello {
        /// The protocol version the client speaks.
        version: u16,
    },
    /// Create an account.
    Register {
        /// Echoed in the answer.
        reference: Ref,
        /// The name wanted.
        user: Name,
        /// The password (checked against [`crate::Password`]'s limits).
        password: &'a str,
    },
    /// Log in.
    Login {
        /// Echoed in the answer.
        reference: Ref,
        /// The account, any case.
        user: Name,
        /// The password.
        password: &'a str,
        /// The newest id the client has, or zero.
        resume_after: MessageId,
        /// Whether the session wants the roster stream.
        roster: bool,
    },
    /// End the session.
    Logout {
        /// Echoed in the answer.
        reference: Ref,
    },
    /// The client has applied the roster up to this version.
    RosterAck {
        /// The version applied.
        version: RosterVersion,
    },
    /// Create, join or leave a group.
    Group {
        /// Echoed in the answer.
        reference: Ref,
        /// Which change.
        op: GroupRequest,
        /// The group.
        group: Name,
    },
    /// List the groups.
    GroupList {
        /// Echoed in the answer.
        reference: Ref,
    },
    /// Send a message.
    Send {
        /// Echoed in the answer.
        reference: Ref,
        /// Where to.
        target: Target,
        /// The text.
        body: &'a str,
        /// A message or a notice (confab's own clients send messages).
        kind: crate::MessageKind,
        /// Client-only tags (IRC's `+key=value`), relayed live only.
        tags: crate::ClientTags,
    },
    /// Log in (version 2): by password or device token, as a device.
    Login2 {
        /// Echoed in the answer.
        reference: Ref,
        /// The account, any case.
        user: Name,
        /// The password or the token.
        credential: Credential<'a>,
        /// With a password: the device the session is.
        device: Option<Name>,
        /// With a password and a device: issue it a new token.
        issue_token: bool,
        /// What to replay.
        resume: Resume,
        /// Whether the session wants the roster stream.
        roster: bool,
    },
    /// Send a message at most once per `client_id` (version 2).
    Send2 {
        /// Echoed in the answer.
        reference: Ref,
        /// Unique per device.
        client_id: ClientId,
        /// Where to.
        target: Target,
        /// The text.
        body: &'a str,
    },
    /// The device has every message up to `id` (version 2).
    Delivered {
        /// Cumulative.
        id: MessageId,
    },
    /// The user has read a conversation up to `id` (version 2).
    MarkRead {
        /// The conversation (a DM: the other party).
        target: Target,
        /// Read up to here.
        id: MessageId,
    },
    /// List the user's devices (version 2).
    Devices {
        /// Echoed in the answer.
        reference: Ref,
    },
    /// Revoke one of the user's devices (version 2).
    RevokeDevice {
        /// Echoed in the answer.
        reference: Ref,
        /// Which.
        device: Name,
    },
    /// A server operator's moderation (version 2).
    Moderate {
        /// Echoed in the answer.
        reference: Ref,
        /// What to do, to whom, for how long and why.
        ask: ModerationAsk<'a>,
    },
    /// Delete a message, leaving a tombstone (version 2).
    Delete {
        /// Echoed in the answer.
        reference: Ref,
        /// The message.
        id: MessageId,
        /// Why, for the audit log.
        reason: &'a str,
    },
    /// A group owner's or moderator's action on a member (version 2).
    GroupModerate {
        /// Echoed in the answer.
        reference: Ref,
        /// The group.
        group: Name,
        /// What, to whom, for how long, why.
        ask: GroupAsk<'a>,
    },
    /// A server operator's ban of an address block, or its lifting
    /// (version 2).
    BanAddress {
        /// Echoed in the answer.
        reference: Ref,
        /// Which block, for how long, why.
        ask: AddressAsk<'a>,
    },
    /// A server notice to everyone (version 2).
    Announce {
        /// Echoed in the answer.
        reference: Ref,
        /// The notice.
        text: &'a str,
    },
    /// Read a page of a conversation.
    History {
        /// Echoed in the answer.
        reference: Ref,
        /// The conversation.
        target: Target,
        /// Which of its messages (confab's: the newest below an id).
        window: crate::window::Window,
        /// At most this many (capped at the server's page size).
        limit: u16,
    },
    /// List the conversations the user reads whose latest message falls
    /// strictly between two times (IRC's CHATHISTORY TARGETS; confab's
    /// protocol has no frame for it).
    HistoryTargets {
        /// Echoed in the answer.
        reference: Ref,
        /// Exclusive bounds, ms since the Unix epoch, the earlier first.
        between: (u64, u64),
        /// At most this many (capped at the server's page size).
        limit: u16,
    },
}

impl Request<'_> {
    /// The request's name in docs/PROTOCOL.md, for errors and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Ping { .. } => "PING",
            Request::Pong { .. } => "PONG",
            Request::Hello { .. } => "HELLO",
            Request::Register { .. } => "REGISTER",
            Request::Login { .. } => "LOGIN",
            Request::Logout { .. } => "LOGOUT",
            Request::RosterAck { .. } => "ROSTER_ACK",
            Request::Group {
                op: GroupRequest::Create,
                ..
            } => "GROUP_CREATE",
            Request::Group {
                op: GroupRequest::Join,
                ..
            } => "GROUP_JOIN",
            Request::Group {
                op: GroupRequest::Leave,
                ..
            } => "GROUP_LEAVE",
            Request::GroupList { .. } => "GROUP_LIST_REQUEST",
            Request::Send { .. } => "SEND",
            Request::History { .. } => "HISTORY_REQUEST",
            Request::HistoryTargets { .. } => "CHATHISTORY TARGETS",
            Request::Login2 { .. } => "LOGIN2",
            Request::Send2 { .. } => "SEND2",
            Request::Delivered { .. } => "DELIVERED",
            Request::MarkRead { .. } => "MARK_READ",
            Request::Devices { .. } => "DEVICE_LIST_REQUEST",
            Request::RevokeDevice { .. } => "DEVICE_REVOKE",
            Request::Moderate { .. } => "MODERATE",
            Request::Delete { .. } => "DELETE",
            Request::Announce { .. } => "ANNOUNCE",
            Request::GroupModerate { .. } => "GROUP_MODERATE",
            Request::BanAddress { .. } => "BAN_ADDRESS",
        }
    }

    /// The reference its answer echoes (zero for requests without one).
    pub fn reference(&self) -> Ref {
        match self {
            Request::Register { reference, .. }
            | Request::Login { reference, .. }
            | Request::Logout { reference }
            | Request::Group { reference, .. }
            | Request::GroupList { reference }
            | Request::Send { reference, .. }
            | Request::History { reference, .. }
            | Request::HistoryTargets { reference, .. }
            | Request::Login2 { reference, .. }
            | Request::Send2 { reference, .. }
            | Request::Devices { reference }
            | Request::RevokeDevice { reference, .. }
            | Request::Moderate { reference, .. }
            | Request::Delete { reference, .. }
            | Request::Announce { reference, .. }
            | Request::GroupModerate { reference, .. }
            | Request::BanAddress { reference, .. } => *reference,
            Request::Ping { .. }
            | Request::Pong { .. }
            | Request::Hello { .. }
            | Request::RosterAck { .. }
            | Request::Delivered { .. }
            | Request::MarkRead { .. } => Ref(0),
        }
    }

    /// Whether it takes no message token, only bytes (see the hub's
    /// budget): a limited session can still prove it is alive and keep
    /// its roster.
    pub fn is_exempt(&self) -> bool {
        matches!(
            self,
            Request::Ping { .. }
                | Request::Pong { .. }
                | Request::RosterAck { .. }
                | Request::Delivered { .. }
        )
    }

    /// The protocol version that introduced the request: a session that
    /// said HELLO with an older one is answered as that version's server
    /// would answer an unknown frame.
    pub fn since_version(&self) -> u16 {
        match self {
            Request::Login2 { .. }
            | Request::Send2 { .. }
            | Request::Delivered { .. }
            | Request::MarkRead { .. }
            | Request::Devices { .. }
            | Request::RevokeDevice { .. }
            | Request::Moderate { .. }
            | Request::Delete { .. }
            | Request::Announce { .. }
            | Request::GroupModerate { .. }
            | Request::BanAddress { .. } => 2,
            _ => 1,
        }
    }
}

/// What a MODERATE asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModerationAsk<'a> {
    /// What to do.
    pub action: crate::frame::ModAction,
    /// To whom.
    pub user: Name,
    /// How long a ban or mute lasts, in seconds; 0: until lifted.
    pub seconds: u32,
    /// Why.
    pub reason: &'a str,
}

/// What a BAN_ADDRESS asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressAsk<'a> {
    /// Whether it lifts the ban rather than gives it.
    pub lift: bool,
    /// The block as sent (the hub parses it).
    pub block: &'a str,
    /// How long a ban lasts, in seconds; 0: until lifted.
    pub seconds: u32,
    /// Why.
    pub reason: &'a str,
}

/// What a GROUP_MODERATE asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupAsk<'a> {
    /// What to do.
    pub action: crate::frame::GroupAction,
    /// To whom.
    pub user: Name,
    /// A mute's length in seconds; 0: until lifted.
    pub seconds: u32,
    /// Why.
    pub reason: &'a str,
}
