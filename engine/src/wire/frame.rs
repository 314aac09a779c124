//! Every frame of the wire protocol, as typed values.
//!
//! One enum covers both directions so that the codec, the fuzz targets and
//! second implementations have a single table to follow (docs/PROTOCOL.md).
//! Which side may send which frame, and in which session state, is the
//! session's business ([`crate::session`]), not the parser's.
//!
//! Frames borrow their text from the input buffer: decoding allocates only
//! for frames that carry lists (roster snapshots, group lists, history pages).

use crate::device::{ClientId, Token};
use crate::id::{MessageId, Ref, RosterVersion};
use crate::name::Name;

pub use super::error_code::ErrorCode;
pub use super::group_action::GroupAction;
pub use super::kinds::{kind, kind_name};
pub use super::mod_action::ModAction;

/// The newest protocol version this engine speaks (it speaks every one
/// from [`OLDEST_VERSION`]): version 2 adds devices, tokens, exactly-once
/// sends and read markers to version 1, whose frames it keeps unchanged.
pub const PROTOCOL_VERSION: u16 = 2;

/// The oldest protocol version this engine speaks.
pub const OLDEST_VERSION: u16 = 1;

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

/// How a LOGIN2 proves who it is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Credential<'a> {
    /// The account's password, 1 to 255 bytes.
    Password(Text<'a>),
    /// A device token as LOGIN_OK2 gave it (any length on the wire: one
    /// that is not 32 bytes is simply wrong).
    Token(&'a [u8]),
}

impl Credential<'_> {
    pub(crate) const PASSWORD: u8 = 0;
    pub(crate) const TOKEN: u8 = 1;
}

/// Where a LOGIN2 resumes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Resume {
    /// As version 1's `resume_after`: after this id, or (0) the direct
    /// messages that arrived while the user was offline.
    After(MessageId),
    /// After the device's bookmark on the server.
    Device,
}

/// One row of a device list.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct DeviceInfo {
    /// The device's name, unique per user (ignoring case).
    pub name: Name,
    /// When it was first logged in, ms since the Unix epoch.
    pub created_ms: u64,
    /// When its token last logged in, ms since the Unix epoch.
    pub last_seen_ms: u64,
    /// Whether it is the asking session's device.
    pub current: bool,
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
        /// The password, 1 to 255 bytes.
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
    /// 0x1B, C→S, v2: log in with a password or a device token.
    Login2 {
        /// Echoed in the answer.
        reference: Ref,
        /// The account name (any case).
        user: Name,
        /// The password or the token.
        credential: Credential<'a>,
        /// With a password: the device this session is (created at its
        /// first login). With a token: `None`, the token names it.
        device: Option<Name>,
        /// With a password and a device: issue a new token for the device
        /// (replacing its old one), shown once in LOGIN_OK2.
        issue_token: bool,
        /// What to replay.
        resume: Resume,
        /// Whether the session wants the roster stream.
        roster: bool,
    },
    /// 0x1C, C→S, v2: send a message at most once per `client_id`.
    Send2 {
        /// Echoed in the answer.
        reference: Ref,
        /// Unique per device, non-zero.
        client_id: ClientId,
        /// Where to.
        target: Target,
        /// The text.
        body: Text<'a>,
    },
    /// 0x1D, C→S, v2: the device has every message up to `id`.
    Delivered {
        /// The newest id it has, cumulative.
        id: MessageId,
    },
    /// 0x1E, C→S, v2: the user has read a conversation up to `id`.
    MarkRead {
        /// The conversation (for a DM: the other party).
        target: Target,
        /// Read up to here.
        id: MessageId,
    },
    /// 0x1F, C→S, v2: list the user's devices. Answered by DEVICE_LIST.
    DeviceListRequest {
        /// Echoed in the answer.
        reference: Ref,
    },
    /// 0x20, C→S, v2: revoke one of the user's devices. Answered by OK.
    DeviceRevoke {
        /// Echoed in the answer.
        reference: Ref,
        /// Which.
        device: Name,
    },
    /// 0x21, C→S, v2: a server operator's moderation of an account.
    /// Answered by OK once stored, or ERROR NOT_OPERATOR.
    Moderate {
        /// Echoed in the answer.
        reference: Ref,
        /// What to do.
        action: ModAction,
        /// To whom.
        user: Name,
        /// How long a ban or mute lasts, in seconds; 0: until lifted.
        seconds: u32,
        /// Why: shown to the user, kept in the audit log.
        reason: Text<'a>,
    },
    /// 0x22, C→S, v2: delete a message, leaving a tombstone. Answered by
    /// OK once stored, or ERROR NOT_OPERATOR / NO_SUCH_MESSAGE.
    Delete {
        /// Echoed in the answer.
        reference: Ref,
        /// The message.
        id: MessageId,
        /// Why: kept in the audit log.
        reason: Text<'a>,
    },
    /// 0x23, C→S, v2: a server notice to everyone. Answered by OK once
    /// its audit line is stored, or ERROR NOT_OPERATOR / BAD_BODY.
    Announce {
        /// Echoed in the answer.
        reference: Ref,
        /// The notice.
        text: Text<'a>,
    },
    /// 0x24, C→S, v2: a group's owner's or moderator's action on a member.
    GroupModerate {
        /// Echoed in the answer.
        reference: Ref,
        /// The group.
        group: Name,
        /// What to do.
        action: GroupAction,
        /// To whom.
        user: Name,
        /// A mute's length in seconds; 0: until lifted.
        seconds: u32,
        /// Why: kept in the audit log.
        reason: Text<'a>,
    },
    /// 0x25, C→S, v2: a server operator bans (or lifts the ban of) a
    /// block of addresses. Answered by OK once stored, or ERROR
    /// NOT_OPERATOR / BAD_ADDRESS.
    BanAddress {
        /// Echoed in the answer.
        reference: Ref,
        /// Whether it lifts the ban (action 1) rather than gives it (0).
        lift: bool,
        /// The block as text (`10.0.0.0/8`, `2001:db8::/32`, one address);
        /// the hub parses it.
        block: Text<'a>,
        /// How long a ban lasts, in seconds; 0: until lifted.
        seconds: u32,
        /// Why: shown to the turned-away connections, kept in the audit log.
        reason: Text<'a>,
    },
    /// 0x4E, S→C, v2: the answer to LOGIN2.
    LoginOk2 {
        /// The LOGIN2's reference.
        reference: Ref,
        /// The account name as registered.
        user: Name,
        /// The session's device, if it has one.
        device: Option<Name>,
        /// A new token, when LOGIN2 asked for one: shown only here.
        token: Option<Token>,
        /// The device's bookmark on the server (0: none).
        bookmark: MessageId,
    },
    /// 0x4F, S→C, v2: the user has read a conversation up to `id`.
    ReadMarker {
        /// The conversation (for a DM: the other party).
        target: Target,
        /// Read up to here.
        id: MessageId,
    },
    /// 0x50, S→C, v2: the answer to DEVICE_LIST_REQUEST.
    DeviceList {
        /// The request's reference.
        reference: Ref,
        /// The user's devices, by name.
        devices: Vec<DeviceInfo>,
    },
    /// 0x51, S→C, v2: a message was deleted; hide it.
    Deleted {
        /// The message.
        id: MessageId,
        /// Who deleted it.
        by: Name,
    },
    /// 0x52, S→C, v2: a server notice (an operator's announcement).
    Notice {
        /// The notice.
        text: Text<'a>,
    },
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
            Frame::Login2 { .. } => LOGIN2,
            Frame::Send2 { .. } => SEND2,
            Frame::Delivered { .. } => DELIVERED,
            Frame::MarkRead { .. } => MARK_READ,
            Frame::DeviceListRequest { .. } => DEVICE_LIST_REQUEST,
            Frame::DeviceRevoke { .. } => DEVICE_REVOKE,
            Frame::Moderate { .. } => MODERATE,
            Frame::LoginOk2 { .. } => LOGIN_OK2,
            Frame::ReadMarker { .. } => READ_MARKER,
            Frame::DeviceList { .. } => DEVICE_LIST,
            Frame::Delete { .. } => DELETE,
            Frame::GroupModerate { .. } => GROUP_MODERATE,
            Frame::BanAddress { .. } => BAN_ADDRESS,
            Frame::Announce { .. } => ANNOUNCE,
            Frame::Deleted { .. } => DELETED,
            Frame::Notice { .. } => NOTICE,
        }
    }

    /// The frame's name as in docs/PROTOCOL.md, for errors and logs.
    pub fn name(&self) -> &'static str {
        kind_name(self.kind())
    }

    /// The protocol version that introduced the frame: a session that
    /// said HELLO with an older one is answered `UNKNOWN_FRAME_TYPE`, as
    /// that version's server would.
    pub fn since_version(&self) -> u16 {
        if self.kind() >= kind::LOGIN2 && self.kind() < kind::SERVER_HELLO
            || self.kind() >= kind::LOGIN_OK2
        {
            2
        } else {
            1
        }
    }
}
