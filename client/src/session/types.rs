//! The session's public types: the requests it remembers, the events it
//! reports, and its two kinds of error.

use confab_engine::codec::DecodeError;
use confab_engine::frame::{
    DeviceInfo, ErrorCode, GroupChange, GroupInfo, Presence, ServerInfo, PROTOCOL_VERSION,
};
use confab_engine::{MessageId, Name, Password, Ref, RosterVersion, Target, Token};

use super::MAX_UNACKED;

/// A request the client made, remembered under its reference until answered.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// REGISTER of this name.
    Register {
        /// The name.
        user: Name,
    },
    /// LOGIN as this name.
    Login {
        /// The name as typed.
        user: Name,
        /// Whether the roster was requested.
        roster: bool,
    },
    /// LOGIN2 as this name (by password or token).
    Login2 {
        /// The name as typed.
        user: Name,
        /// Whether the roster was requested.
        roster: bool,
    },
    /// DEVICE_LIST_REQUEST.
    DeviceList,
    /// DEVICE_REVOKE of this device.
    DeviceRevoke {
        /// The device.
        device: Name,
    },
    /// MODERATE of this user.
    Moderate {
        /// What was asked.
        action: confab_engine::frame::ModAction,
        /// To whom.
        user: Name,
    },
    /// DELETE of this message.
    Delete {
        /// The message.
        id: MessageId,
    },
    /// ANNOUNCE.
    Announce,
    /// BAN_ADDRESS (a ban or its lifting).
    BanAddress,
    /// GROUP_MODERATE of this member of this group.
    GroupModerate {
        /// The group.
        group: Name,
        /// The member.
        user: Name,
    },
    /// LOGOUT.
    Logout,
    /// SEND to this target.
    Send {
        /// Where to.
        target: Target,
    },
    /// GROUP_CREATE.
    GroupCreate {
        /// The group.
        group: Name,
    },
    /// GROUP_JOIN.
    GroupJoin {
        /// The group.
        group: Name,
    },
    /// GROUP_LEAVE.
    GroupLeave {
        /// The group.
        group: Name,
    },
    /// GROUP_LIST_REQUEST.
    GroupList,
    /// HISTORY_REQUEST for this conversation.
    History {
        /// The conversation.
        target: Target,
    },
}

/// Options of LOGIN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginOptions {
    /// The last message id this client has (0: none). The server replays
    /// everything newer that the account may see, then sends CAUGHT_UP.
    pub resume_after: MessageId,
    /// Whether to subscribe to presence: a snapshot, then deltas.
    pub roster: bool,
}

impl Default for LoginOptions {
    fn default() -> LoginOptions {
        LoginOptions {
            resume_after: MessageId(0),
            roster: true,
        }
    }
}

/// What the server said in SERVER_HELLO.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerHello {
    /// The server's free-form name.
    pub server: String,
    /// Its limits.
    pub info: ServerInfo,
}

/// A chat message, live, replayed or from history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Its id (increasing in commit order across all conversations).
    pub id: MessageId,
    /// Commit time in ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// Who sent it.
    pub sender: Name,
    /// Where it was sent: the room, a group, or for a DM the recipient.
    pub target: Target,
    /// The text.
    pub body: String,
}

/// An ERROR frame from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerError {
    /// What went wrong.
    pub code: ErrorCode,
    /// The failed request's reference, or 0 for an error about no request.
    pub reference: Ref,
    /// When to retry in ms, or 0.
    pub retry_after_ms: u32,
    /// The server's explanation.
    pub text: String,
    /// The request it answers, if the reference was one of ours.
    pub request: Option<Request>,
}

impl ServerError {
    /// Whether the server closes the connection after it.
    pub fn is_fatal(&self) -> bool {
        self.code.is_fatal()
    }
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            code_name(self.code),
            self.code.to_u16(),
            self.text
        )?;
        if self.retry_after_ms > 0 {
            write!(f, " (retry after {} ms)", self.retry_after_ms)?;
        }
        Ok(())
    }
}

/// A page of history, oldest entry first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryPage {
    /// The request's reference.
    pub reference: Ref,
    /// The conversation.
    pub target: Target,
    /// Whether older messages remain (ask again with `before` set to the
    /// first entry's id).
    pub more: bool,
    /// The messages, oldest first. For a direct conversation each entry's
    /// target is its actual recipient (the other party or this user).
    pub messages: Vec<Message>,
}

/// Something the server said, decoded and applied.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The server's hello, with its limits.
    ServerHello(ServerHello),
    /// A request without a payload (REGISTER, LOGOUT, group changes) succeeded.
    Ok {
        /// Its reference.
        reference: Ref,
        /// The request, if the reference was one of ours.
        request: Option<Request>,
    },
    /// Logged in.
    LoginOk {
        /// The LOGIN's reference.
        reference: Ref,
        /// The account name as registered.
        user: Name,
    },
    /// LOGIN_OK2 issued a new token for the device: store it (as
    /// [`Token::to_hex`]); the server never shows it again. Comes right
    /// after [`Event::LoginOk`].
    TokenIssued {
        /// The device.
        device: Name,
        /// Its token.
        token: Token,
    },
    /// The user has read a conversation up to `id` (set by another session,
    /// or one of the markers right after LOGIN_OK2).
    ReadMarker {
        /// The conversation (for direct messages, the other party).
        target: Target,
        /// Read up to here.
        id: MessageId,
    },
    /// The answer to a device list request.
    DeviceList {
        /// The request's reference.
        reference: Ref,
        /// The user's devices, by name.
        devices: Vec<DeviceInfo>,
    },
    /// A complete roster snapshot was applied (and acknowledged).
    RosterSnapshot {
        /// Its version.
        version: RosterVersion,
        /// Everyone online, in name order.
        users: Vec<Name>,
    },
    /// A roster change was applied.
    RosterDelta {
        /// The version after it.
        version: RosterVersion,
        /// Online or offline.
        presence: Presence,
        /// Who.
        user: Name,
    },
    /// Every message missed since LOGIN's `resume_after` has been delivered.
    CaughtUp {
        /// The newest message id the server had then.
        last_id: MessageId,
    },
    /// A message from someone else (or from another session of this user).
    Message(Message),
    /// A message this session sent is stored.
    Ack {
        /// The SEND's reference.
        reference: Ref,
        /// The message's id.
        id: MessageId,
        /// Its commit time in ms since the Unix epoch.
        timestamp_ms: u64,
        /// Where it went, if the reference was one of ours.
        target: Option<Target>,
    },
    /// Someone joined or left a group this user belongs to (or this user's
    /// own membership changed in another session).
    GroupEvent {
        /// Joined or left.
        change: GroupChange,
        /// The group.
        group: Name,
        /// Who.
        user: Name,
    },
    /// The answer to a group list request.
    GroupList {
        /// The request's reference.
        reference: Ref,
        /// Every group.
        groups: Vec<GroupInfo>,
    },
    /// The answer to a history request.
    HistoryPage(HistoryPage),
    /// Messages were dropped for this session (it read too slowly); they
    /// can be fetched with a history request.
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
    /// The server refused a request, or is closing the session (a fatal code).
    Error(ServerError),
    /// The answer to [`Session::ping`](super::Session::ping): the PING's token, echoed.
    Pong {
        /// The token.
        token: u64,
    },
    /// A message was deleted (by an operator): hide it. In history and
    /// resume a deleted message has an empty body and is followed by this.
    Deleted {
        /// The message.
        id: MessageId,
        /// Who deleted it.
        by: Name,
    },
    /// A server notice: an operator's announcement.
    Notice {
        /// The text.
        text: String,
    },
    /// The server is shutting down; come back after the delay.
    Shutdown {
        /// When to reconnect, in ms.
        retry_after_ms: u32,
        /// Why.
        reason: String,
    },
}

/// The server sent something this client cannot accept. Sticky.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A frame could not be decoded.
    #[error("the server sent a bad frame: {0}")]
    Decode(#[from] DecodeError),
    /// The server sent a frame only a client sends.
    #[error("the server sent {got}, which only a client sends")]
    UnexpectedFrame {
        /// The frame's name.
        got: &'static str,
    },
    /// The server speaks another protocol version.
    #[error("the server speaks protocol version {0}; this client speaks {PROTOCOL_VERSION}")]
    UnsupportedVersion(u16),
}

/// A request the session's state does not allow; nothing was sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiMisuse {
    /// The request needs a logged-in session.
    #[error("not logged in")]
    NotLoggedIn,
    /// Chat requests wait until the roster snapshot has arrived.
    #[error("the roster snapshot has not arrived yet")]
    RosterSyncing,
    /// REGISTER and LOGIN are for sessions that are not logged in.
    #[error("already logged in")]
    AlreadyLoggedIn,
    /// A REGISTER or LOGIN is waiting for its answer.
    #[error("a login or registration is already waiting for its answer")]
    AuthPending,
    /// The session is closed.
    #[error("the session is closed")]
    Closed,
    /// Too many sends wait for their ACK.
    #[error(
        "{} messages wait for the server's acknowledgement already",
        MAX_UNACKED
    )]
    OutboxFull,
    /// The password is outside the protocol's limits.
    #[error("a password is {} to {} bytes", Password::MIN_LEN, Password::MAX_LEN)]
    BadPassword,
    /// The body cannot be carried by a frame.
    #[error("a message body is at most {max} bytes, this one has {len}")]
    BodyTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// The protocol name of an error code, as in docs/PROTOCOL.md
/// (`NO_SUCH_USER`); `UNKNOWN` for a code this client does not know.
pub fn code_name(code: ErrorCode) -> &'static str {
    use ErrorCode::*;
    match code {
        MalformedFrame => "MALFORMED_FRAME",
        FrameTooLarge => "FRAME_TOO_LARGE",
        UnsupportedVersion => "UNSUPPORTED_VERSION",
        WrongState => "WRONG_STATE",
        UnknownFrameType => "UNKNOWN_FRAME_TYPE",
        BadCredentials => "BAD_CREDENTIALS",
        NameTaken => "NAME_TAKEN",
        RegistrationClosed => "REGISTRATION_CLOSED",
        LockedOut => "LOCKED_OUT",
        NoSuchUser => "NO_SUCH_USER",
        NoSuchGroup => "NO_SUCH_GROUP",
        GroupExists => "GROUP_EXISTS",
        NotAMember => "NOT_A_MEMBER",
        AlreadyMember => "ALREADY_MEMBER",
        TooManyGroups => "TOO_MANY_GROUPS",
        GroupFull => "GROUP_FULL",
        ServerGroupsFull => "SERVER_GROUPS_FULL",
        BadBody => "BAD_BODY",
        RateLimited => "RATE_LIMITED",
        Busy => "BUSY",
        TooManyConnections => "TOO_MANY_CONNECTIONS",
        AuthTimeout => "AUTH_TIMEOUT",
        IdleTimeout => "IDLE_TIMEOUT",
        FrameTimeout => "FRAME_TIMEOUT",
        SlowConsumer => "SLOW_CONSUMER",
        Flooding => "FLOODING",
        StorageError => "STORAGE_ERROR",
        NoDevice => "NO_DEVICE",
        TooManyDevices => "TOO_MANY_DEVICES",
        NoSuchDevice => "NO_SUCH_DEVICE",
        DeviceRevoked => "DEVICE_REVOKED",
        Kicked => "KICKED",
        Banned => "BANNED",
        Muted => "MUTED",
        NotOperator => "NOT_OPERATOR",
        NoSuchMessage => "NO_SUCH_MESSAGE",
        NotGroupModerator => "NOT_GROUP_MODERATOR",
        BadAddress => "BAD_ADDRESS",
        _ => "UNKNOWN",
    }
}
