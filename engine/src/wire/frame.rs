//! Every frame of the wire protocol, as typed values.
//!
//! One enum covers both directions so that the codec, the fuzz targets and
//! second implementations have a single table to follow (docs/PROTOCOL.md).
//! Which side may send which frame, and in which session state, is the
//! session's business ([`crate::session`]), not the parser's.
//!
//! Frames borrow their text from the input buffer: decoding allocates only
//! for frames that carry lists (roster snapshots, group lists, history pages).

use crate::id::{MessageId, Ref, RosterVersion};
use crate::name::Name;

/// Protocol version spoken by this engine.
pub const PROTOCOL_VERSION: u16 = 1;

/// UTF-8 text carried with a 16-bit length (message bodies, error texts):
/// at most [`Text::MAX_LEN`] bytes, so it always encodes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Text<'a>(&'a str);

/// A string too long for a [`Text`] field.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[error("text of {0} bytes is longer than the 65535 a frame can carry")]
pub struct TextTooLong(pub usize);

impl<'a> Text<'a> {
    /// The longest text, in bytes.
    pub const MAX_LEN: usize = u16::MAX as usize;

    /// Checks the length.
    pub fn new(s: &'a str) -> Result<Text<'a>, TextTooLong> {
        if s.len() > Text::MAX_LEN {
            return Err(TextTooLong(s.len()));
        }
        Ok(Text(s))
    }

    /// Cuts `s` at the last character boundary within the limit; for texts the
    /// server writes itself (error messages), where a cut is harmless.
    pub fn truncated(s: &'a str) -> Text<'a> {
        let mut end = s.len().min(Text::MAX_LEN);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        Text(&s[..end])
    }

    /// The text.
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

/// Where a message goes, and which conversation a history request reads.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Target {
    /// The main room: every logged-in user.
    Room,
    /// A named group: its members.
    Group(Name),
    /// A user: every session of that account (a direct message). In a
    /// history request it names the other party of the conversation.
    User(Name),
}

impl Target {
    pub(crate) const ROOM: u8 = 0;
    pub(crate) const GROUP: u8 = 1;
    pub(crate) const USER: u8 = 2;
}

/// A change of the roster (who is online).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Presence {
    /// The user's first session logged in.
    Online = 1,
    /// The user's last session left.
    Offline = 0,
}

/// A change in a group's membership.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum GroupChange {
    /// The user left the group.
    Left = 0,
    /// The user joined the group (or created it, becoming its first member).
    Joined = 1,
}

/// One row of a group list.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct GroupInfo {
    /// The group.
    pub name: Name,
    /// How many members it has.
    pub members: u32,
    /// Whether the asking user is one of them.
    pub is_member: bool,
}

/// One stored message in a history page.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct HistoryEntry<'a> {
    /// Its id.
    pub id: MessageId,
    /// When the server committed it, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Who sent it.
    pub sender: Name,
    /// Its text.
    pub body: Text<'a>,
}

/// The limits and facts a server announces in its hello.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ServerInfo {
    /// Whether REGISTER is accepted.
    pub registration_open: bool,
    /// The largest frame (length field value) accepted after login.
    pub max_frame: u32,
    /// The largest frame accepted before login.
    pub max_frame_pre_auth: u32,
    /// The longest message body, in bytes.
    pub max_body: u16,
    /// Messages per second a session may send, sustained.
    pub msg_rate: u16,
    /// Messages a session may send in a burst.
    pub msg_burst: u16,
    /// Most groups one user may belong to.
    pub groups_per_user: u16,
    /// Most entries in one history page.
    pub history_page_max: u16,
    /// After this many milliseconds of silence the server pings; a client that
    /// does not answer within the same time again is closed.
    pub idle_timeout_ms: u32,
}

/// Error codes of the ERROR frame. The numeric values are part of the wire
/// protocol; docs/PROTOCOL.md has the table with which ones close the
/// connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame could not be parsed. Fatal.
    MalformedFrame,
    /// The length field exceeds the limit. Fatal.
    FrameTooLarge,
    /// The client speaks a protocol version the server does not. Fatal.
    UnsupportedVersion,
    /// The frame is not accepted in the session's current state.
    WrongState,
    /// The frame type is unknown. The frame is skipped.
    UnknownFrameType,
    /// The user name or password is wrong.
    BadCredentials,
    /// The name is already registered (ignoring case).
    NameTaken,
    /// Registration is closed on this server.
    RegistrationClosed,
    /// Too many failed logins; retry after the given delay.
    LockedOut,
    /// No such user.
    NoSuchUser,
    /// No such group.
    NoSuchGroup,
    /// A group of that name already exists.
    GroupExists,
    /// The user is not a member of the group.
    NotAMember,
    /// The user is already a member of the group.
    AlreadyMember,
    /// The user belongs to as many groups as allowed.
    TooManyGroups,
    /// The group has as many members as allowed.
    GroupFull,
    /// The body is empty or longer than the announced limit.
    BadBody,
    /// The server has as many groups as it allows (`max_groups`); a
    /// GROUP_CREATE cannot succeed however long the client waits.
    ServerGroupsFull,
    /// The session sends faster than allowed; slow down and retry after the delay.
    RateLimited,
    /// The server cannot take the request now; retry after the delay.
    Busy,
    /// The server (or this source address) has as many connections as allowed. Fatal.
    TooManyConnections,
    /// Not logged in within the auth timeout. Fatal.
    AuthTimeout,
    /// No answer to the server's ping. Fatal.
    IdleTimeout,
    /// A frame was started but not finished in time. Fatal.
    FrameTimeout,
    /// The session did not read its traffic and its queue overflowed. Fatal.
    SlowConsumer,
    /// The session kept sending faster than allowed after being told. Fatal.
    Flooding,
    /// The server failed to store or load data.
    StorageError,
    /// A code this implementation does not know (kept for forward compatibility).
    Other(u16),
}

impl ErrorCode {
    /// The code's number on the wire.
    pub fn to_u16(self) -> u16 {
        use ErrorCode::*;
        match self {
            MalformedFrame => 1,
            FrameTooLarge => 2,
            UnsupportedVersion => 3,
            WrongState => 4,
            UnknownFrameType => 5,
            BadCredentials => 10,
            NameTaken => 11,
            RegistrationClosed => 12,
            LockedOut => 13,
            NoSuchUser => 20,
            NoSuchGroup => 21,
            GroupExists => 22,
            NotAMember => 23,
            AlreadyMember => 24,
            TooManyGroups => 25,
            GroupFull => 26,
            BadBody => 27,
            ServerGroupsFull => 28,
            RateLimited => 30,
            Busy => 31,
            TooManyConnections => 32,
            AuthTimeout => 33,
            IdleTimeout => 34,
            FrameTimeout => 35,
            SlowConsumer => 36,
            Flooding => 37,
            StorageError => 40,
            Other(n) => n,
        }
    }

    /// The code for a number on the wire.
    pub fn from_u16(n: u16) -> ErrorCode {
        use ErrorCode::*;
        match n {
            1 => MalformedFrame,
            2 => FrameTooLarge,
            3 => UnsupportedVersion,
            4 => WrongState,
            5 => UnknownFrameType,
            10 => BadCredentials,
            11 => NameTaken,
            12 => RegistrationClosed,
            13 => LockedOut,
            20 => NoSuchUser,
            21 => NoSuchGroup,
            22 => GroupExists,
            23 => NotAMember,
            24 => AlreadyMember,
            25 => TooManyGroups,
            26 => GroupFull,
            27 => BadBody,
            28 => ServerGroupsFull,
            30 => RateLimited,
            31 => Busy,
            32 => TooManyConnections,
            33 => AuthTimeout,
            34 => IdleTimeout,
            35 => FrameTimeout,
            36 => SlowConsumer,
            37 => Flooding,
            40 => StorageError,
            n => Other(n),
        }
    }

    /// Whether the server closes the connection after sending this error.
    pub fn is_fatal(self) -> bool {
        use ErrorCode::*;
        matches!(
            self,
            MalformedFrame
                | FrameTooLarge
                | UnsupportedVersion
                | TooManyConnections
                | AuthTimeout
                | IdleTimeout
                | FrameTimeout
                | SlowConsumer
                | Flooding
        )
    }
}

/// A frame of the confab protocol. The doc line of each variant gives its
/// type byte and its direction (C→S client to server, S→C server to client).
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Frame<'a> {
    /// 0x01, both ways: are you there? Answered by PONG with the same token.
    Ping {
        /// Echoed in the PONG.
        token: u64,
    },
    /// 0x02, both ways: the answer to a PING.
    Pong {
        /// The PING's token.
        token: u64,
    },
    /// 0x10, C→S: first frame of every connection.
    Hello {
        /// The protocol version the client speaks.
        version: u16,
        /// Free-form client name and version, for the server's logs.
        client: Text<'a>,
    },
    /// 0x11, C→S: create an account. Answered by OK or ERROR.
    Register {
        /// Echoed in the answer.
        reference: Ref,
        /// The account name.
        user: Name,
        /// The password, 1 to 128 bytes.
        password: Text<'a>,
    },
    /// 0x12, C→S: log in. Answered by LOGIN_OK then ROSTER_SNAPSHOT, or ERROR.
    Login {
        /// Echoed in the answer.
        reference: Ref,
        /// The account name (any case).
        user: Name,
        /// The password.
        password: Text<'a>,
        /// The id of the last message this client already has, or 0. The
        /// server sends every message the account may see with a larger id,
        /// then CAUGHT_UP.
        resume_after: MessageId,
        /// Whether the session wants the roster (presence) stream. Bots and
        /// one-shot senders say no and skip the snapshot and the deltas.
        roster: bool,
    },
    /// 0x13, C→S: end the session. Answered by OK, then the server closes.
    Logout {
        /// Echoed in the answer.
        reference: Ref,
    },
    /// 0x14, C→S: the client has applied the roster up to this version.
    RosterAck {
        /// The version applied.
        version: RosterVersion,
    },
    /// 0x15, C→S: create a group and become its first member.
    GroupCreate {
        /// Echoed in the answer.
        reference: Ref,
        /// The new group.
        group: Name,
    },
    /// 0x16, C→S: join a group.
    GroupJoin {
        /// Echoed in the answer.
        reference: Ref,
        /// The group.
        group: Name,
    },
    /// 0x17, C→S: leave a group.
    GroupLeave {
        /// Echoed in the answer.
        reference: Ref,
        /// The group.
        group: Name,
    },
    /// 0x18, C→S: list the groups. Answered by GROUP_LIST.
    GroupListRequest {
        /// Echoed in the answer.
        reference: Ref,
    },
    /// 0x19, C→S: send a message. Answered by ACK once stored, or ERROR.
    Send {
        /// Echoed in the answer.
        reference: Ref,
        /// Where to.
        target: Target,
        /// The text.
        body: Text<'a>,
    },
    /// 0x1A, C→S: read stored messages of a conversation, newest first.
    HistoryRequest {
        /// Echoed in the answer.
        reference: Ref,
        /// The conversation (for a user: the direct messages with that user).
        target: Target,
        /// Only messages with an id below this; 0 means from the newest.
        before: MessageId,
        /// At most this many (the server caps it at its announced maximum).
        limit: u16,
    },
    /// 0x40, S→C: the server's answer to HELLO.
    ServerHello {
        /// The protocol version the server speaks.
        version: u16,
        /// Free-form server name.
        server: Text<'a>,
        /// Limits the client must respect.
        info: ServerInfo,
    },
    /// 0x41, S→C: the request with this reference succeeded.
    Ok {
        /// The request's reference.
        reference: Ref,
    },
    /// 0x42, S→C: login succeeded.
    LoginOk {
        /// The LOGIN's reference.
        reference: Ref,
        /// The account name as registered.
        user: Name,
    },
    /// 0x43, S→C: everyone online, as of `version`.
    RosterSnapshot {
        /// The roster version this snapshot is.
        version: RosterVersion,
        /// Whether this is the snapshot's final chunk. A roster larger than
        /// one frame comes as several ROSTER_SNAPSHOT frames with the same
        /// version; the client replaces its roster when the final one arrives.
        last: bool,
        /// The online users in this chunk.
        users: Vec<Name>,
    },
    /// 0x44, S→C: one change of the roster.
    RosterDelta {
        /// The version after this change; one more than the previous one the
        /// session saw (deltas are never skipped: if some must be dropped the
        /// server sends a fresh snapshot instead).
        version: RosterVersion,
        /// Online or offline.
        presence: Presence,
        /// Who.
        user: Name,
    },
    /// 0x45, S→C: the message sent with `reference` is stored under `id`.
    Ack {
        /// The SEND's reference.
        reference: Ref,
        /// The message's id.
        id: MessageId,
        /// When the server committed it, in ms since the Unix epoch.
        timestamp_ms: u64,
    },
    /// 0x46, S→C: a message.
    Message {
        /// Its id.
        id: MessageId,
        /// When the server committed it, in ms since the Unix epoch.
        timestamp_ms: u64,
        /// Who sent it.
        sender: Name,
        /// Where it was sent: the room, a group, or (for a DM) the recipient.
        target: Target,
        /// The text.
        body: Text<'a>,
    },
    /// 0x47, S→C: someone joined or left a group the session belongs to.
    GroupEvent {
        /// Joined or left.
        change: GroupChange,
        /// The group.
        group: Name,
        /// Who.
        user: Name,
    },
    /// 0x48, S→C: the answer to GROUP_LIST_REQUEST.
    GroupList {
        /// The request's reference.
        reference: Ref,
        /// Every group, by name.
        groups: Vec<GroupInfo>,
    },
    /// 0x49, S→C: the answer to HISTORY_REQUEST, newest first.
    HistoryPage {
        /// The request's reference.
        reference: Ref,
        /// The conversation.
        target: Target,
        /// Whether older messages remain.
        more: bool,
        /// The messages, newest first.
        entries: Vec<HistoryEntry<'a>>,
    },
    /// 0x4A, S→C: every missed message since the login's `resume_after` has been sent.
    CaughtUp {
        /// The newest message id the server had committed at that moment.
        last_id: MessageId,
    },
    /// 0x4B, S→C: messages for this session were dropped because it did not
    /// read fast enough; they are in history.
    Missed {
        /// The conversation.
        target: Target,
        /// The first dropped id.
        first: MessageId,
        /// The last dropped id.
        last: MessageId,
        /// How many were dropped in that range.
        count: u32,
    },
    /// 0x4C, S→C: a request failed, or the session is being closed.
    Error {
        /// What went wrong.
        code: ErrorCode,
        /// The failed request's reference, or 0.
        reference: Ref,
        /// When to retry, in milliseconds, or 0.
        retry_after_ms: u32,
        /// Human-readable explanation.
        text: Text<'a>,
    },
    /// 0x4D, S→C: the server is shutting down; reconnect after the delay.
    Shutdown {
        /// When to come back, in milliseconds.
        retry_after_ms: u32,
        /// Human-readable reason.
        reason: Text<'a>,
    },
}

/// The frame type byte of each frame.
pub mod kind {
    #![allow(missing_docs)]
    pub const PING: u8 = 0x01;
    pub const PONG: u8 = 0x02;
    pub const HELLO: u8 = 0x10;
    pub const REGISTER: u8 = 0x11;
    pub const LOGIN: u8 = 0x12;
    pub const LOGOUT: u8 = 0x13;
    pub const ROSTER_ACK: u8 = 0x14;
    pub const GROUP_CREATE: u8 = 0x15;
    pub const GROUP_JOIN: u8 = 0x16;
    pub const GROUP_LEAVE: u8 = 0x17;
    pub const GROUP_LIST_REQUEST: u8 = 0x18;
    pub const SEND: u8 = 0x19;
    pub const HISTORY_REQUEST: u8 = 0x1A;
    pub const SERVER_HELLO: u8 = 0x40;
    pub const OK: u8 = 0x41;
    pub const LOGIN_OK: u8 = 0x42;
    pub const ROSTER_SNAPSHOT: u8 = 0x43;
    pub const ROSTER_DELTA: u8 = 0x44;
    pub const ACK: u8 = 0x45;
    pub const MESSAGE: u8 = 0x46;
    pub const GROUP_EVENT: u8 = 0x47;
    pub const GROUP_LIST: u8 = 0x48;
    pub const HISTORY_PAGE: u8 = 0x49;
    pub const CAUGHT_UP: u8 = 0x4A;
    pub const MISSED: u8 = 0x4B;
    pub const ERROR: u8 = 0x4C;
    pub const SHUTDOWN: u8 = 0x4D;
}

impl Frame<'_> {
    /// The frame's type byte.
    pub fn kind(&self) -> u8 {
        use kind::*;
        match self {
            Frame::Ping { .. } => PING,
            Frame::Pong { .. } => PONG,
            Frame::Hello { .. } => HELLO,
            Frame::Register { .. } => REGISTER,
            Frame::Login { .. } => LOGIN,
            Frame::Logout { .. } => LOGOUT,
            Frame::RosterAck { .. } => ROSTER_ACK,
            Frame::GroupCreate { .. } => GROUP_CREATE,
            Frame::GroupJoin { .. } => GROUP_JOIN,
            Frame::GroupLeave { .. } => GROUP_LEAVE,
            Frame::GroupListRequest { .. } => GROUP_LIST_REQUEST,
            Frame::Send { .. } => SEND,
            Frame::HistoryRequest { .. } => HISTORY_REQUEST,
            Frame::ServerHello { .. } => SERVER_HELLO,
            Frame::Ok { .. } => OK,
            Frame::LoginOk { .. } => LOGIN_OK,
            Frame::RosterSnapshot { .. } => ROSTER_SNAPSHOT,
            Frame::RosterDelta { .. } => ROSTER_DELTA,
            Frame::Ack { .. } => ACK,
            Frame::Message { .. } => MESSAGE,
            Frame::GroupEvent { .. } => GROUP_EVENT,
            Frame::GroupList { .. } => GROUP_LIST,
            Frame::HistoryPage { .. } => HISTORY_PAGE,
            Frame::CaughtUp { .. } => CAUGHT_UP,
            Frame::Missed { .. } => MISSED,
            Frame::Error { .. } => ERROR,
            Frame::Shutdown { .. } => SHUTDOWN,
        }
    }

    /// The frame's name as in docs/PROTOCOL.md, for errors and logs.
    pub fn name(&self) -> &'static str {
        kind_name(self.kind())
    }
}

/// The protocol name of a frame type byte.
pub fn kind_name(k: u8) -> &'static str {
    use kind::*;
    match k {
        PING => "PING",
        PONG => "PONG",
        HELLO => "HELLO",
        REGISTER => "REGISTER",
        LOGIN => "LOGIN",
        LOGOUT => "LOGOUT",
        ROSTER_ACK => "ROSTER_ACK",
        GROUP_CREATE => "GROUP_CREATE",
        GROUP_JOIN => "GROUP_JOIN",
        GROUP_LEAVE => "GROUP_LEAVE",
        GROUP_LIST_REQUEST => "GROUP_LIST_REQUEST",
        SEND => "SEND",
        HISTORY_REQUEST => "HISTORY_REQUEST",
        SERVER_HELLO => "SERVER_HELLO",
        OK => "OK",
        LOGIN_OK => "LOGIN_OK",
        ROSTER_SNAPSHOT => "ROSTER_SNAPSHOT",
        ROSTER_DELTA => "ROSTER_DELTA",
        ACK => "ACK",
        MESSAGE => "MESSAGE",
        GROUP_EVENT => "GROUP_EVENT",
        GROUP_LIST => "GROUP_LIST",
        HISTORY_PAGE => "HISTORY_PAGE",
        CAUGHT_UP => "CAUGHT_UP",
        MISSED => "MISSED",
        ERROR => "ERROR",
        SHUTDOWN => "SHUTDOWN",
        _ => "UNKNOWN",
    }
}
