//! Work the engine asks the shell to do, and the results it takes back.
//!
//! The engine never blocks and never touches storage or crypto: logging in
//! needs a password hash checked, a message needs committing before it is
//! acknowledged, history needs loading. Each of those leaves the hub as an
//! [`Effect`] from [`crate::Hub::poll_output`] and comes back as an
//! [`EffectResult`] through [`crate::Hub::handle_result`], carrying the
//! [`ConnId`] it was for. Results for a connection that has gone are
//! dropped; what was committed for it is still routed to everyone else,
//! because routing is its own input (`Hub::handle_committed`).

use std::time::Duration;

use crate::device::{ClientId, DeviceId, Token};
use crate::error::ProtocolError;
use crate::frame::{Presence, Target};
use crate::id::{ConnId, MessageId, Ref};
use crate::message_kind::{ClientTags, MessageKind};
use crate::name::Name;
use crate::password::Password;

mod loaded;
mod records;
pub use loaded::{HistoryLoaded, Latest, ReplayLoaded};
pub use records::{AddressBanRecord, AuditLine, ModerationRecord};

/// A message before it has an id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMessage {
    /// Who sends it.
    pub sender: Name,
    /// Where to: the room, a group, or (a DM) the recipient.
    pub target: Target,
    /// The text, already checked against the body limit.
    pub body: String,
    /// A message or a notice (stored).
    pub kind: MessageKind,
    /// Client-only tags, relayed live and not stored.
    pub tags: ClientTags,
}

/// What makes a SEND2 unique: storage commits at most one message per
/// key, in the same transaction as the message (docs/PROTOCOL.md,
/// "Exactly-once sends").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SendKey {
    /// The sending device.
    pub device: DeviceId,
    /// The client's id for the send.
    pub client_id: ClientId,
}

/// How a LOGIN2 proves who it is, checked by the shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Secret {
    /// The account's password (checked against its argon2id hash).
    Password(Password),
    /// A device token (looked up by its blake3 hash).
    Token(Token),
}

/// The device a password LOGIN2 names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceAsk {
    /// Its name (created at its first login, within `max_devices`).
    pub name: Name,
    /// Issue a new token for it, replacing the old one.
    pub issue_token: bool,
}

/// The device a session is logged in as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seat {
    /// Storage's id for it.
    pub id: DeviceId,
    /// Its name.
    pub name: Name,
    /// The newest id it acknowledged (DELIVERED), 0 for none.
    pub bookmark: MessageId,
}

/// A successful LOGIN2, as the shell found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceLogin {
    /// The account's registered name.
    pub user: Name,
    /// The session's device, if the login named one.
    pub seat: Option<Seat>,
    /// The new token, if one was issued: the only time it exists outside
    /// the client.
    pub token: Option<Token>,
    /// The user's read markers (at most `Config::read_markers_per_user`).
    pub read_markers: Vec<(Target, MessageId)>,
}

/// A device as storage lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Storage's id.
    pub id: DeviceId,
    /// Its name.
    pub name: Name,
    /// First login, ms since the Unix epoch.
    pub created_ms: u64,
    /// Last login by token (or its creation), ms since the Unix epoch.
    pub last_seen_ms: u64,
}

/// A committed message, as storage returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    /// Its id.
    pub id: MessageId,
    /// Commit time, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// Who sent it.
    pub sender: Name,
    /// Where it was sent.
    pub target: Target,
    /// The text.
    pub body: String,
    /// A message or a notice (stored with it).
    pub kind: MessageKind,
    /// Client-only tags: carried live, empty when read from storage.
    pub tags: ClientTags,
}

/// A change to a group's membership, to be committed before it takes effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupOp {
    /// Create `group` with `user` as its first member.
    Create {
        /// The new group.
        group: Name,
        /// Its creator.
        user: Name,
    },
    /// Add `user` to `group`.
    Join {
        /// The group.
        group: Name,
        /// The user.
        user: Name,
    },
    /// Remove `user` from `group`.
    Leave {
        /// The group.
        group: Name,
        /// The user.
        user: Name,
    },
    /// A group owner's, moderator's or server operator's action on a
    /// member (see [`GroupAction`](crate::frame::GroupAction)): a removal
    /// is a leave, and the rest change roles or mutes; each is committed
    /// with its audit line.
    Moderate {
        /// The group.
        group: Name,
        /// To whom.
        user: Name,
        /// What.
        action: crate::frame::GroupAction,
        /// A mute's length in seconds; 0: until lifted.
        seconds: u32,
        /// Why.
        reason: String,
        /// Who did it.
        by: Name,
    },
}

/// Which messages a resuming session is sent after it logs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplayScope {
    /// Everything the user may see with an id in `(after, upto]`: room
    /// messages, messages of `groups`, and direct messages to or from them.
    Since {
        /// The client's last id.
        after: MessageId,
        /// The user's groups.
        groups: Vec<Name>,
    },
    /// Direct messages to the user that arrived while none of their sessions
    /// was online (after the mark storage keeps from [`Effect::UserOffline`]),
    /// with an id up to `upto`.
    OfflineDirect,
}

/// Work for the shell.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Effect {
    /// Check `password` for `user`; answer with [`EffectResult::Authenticated`].
    Authenticate {
        /// The session.
        conn: ConnId,
        /// The name as typed (any case).
        user: Name,
        /// The password.
        password: Password,
    },
    /// Create an account; answer with [`EffectResult::Registered`].
    Register {
        /// The session.
        conn: ConnId,
        /// The wanted name.
        user: Name,
        /// The password.
        password: Password,
    },
    /// Commit a message, assigning its id and timestamp; answer with
    /// [`EffectResult::Stored`], which only answers the sender, and hand
    /// the committed message to [`crate::Hub::handle_committed`], which
    /// routes it (on every node, if there are several). Results must come
    /// back in the order the effects went out, because ids are handed out
    /// in commit order.
    Store {
        /// The sending session.
        conn: ConnId,
        /// The SEND's reference.
        reference: Ref,
        /// The message.
        message: NewMessage,
        /// For a SEND2: commit the message only if no message has this key
        /// (within `Config::dedup_window`), else answer with
        /// [`EffectResult::StoredBefore`] and route nothing.
        once: Option<SendKey>,
    },
    /// Commit a group change; answer with [`EffectResult::GroupStored`]
    /// (the requester's OK) and hand the change to
    /// [`crate::Hub::handle_group_committed`] (the membership and the
    /// members' events).
    StoreGroup {
        /// The session.
        conn: ConnId,
        /// The request's reference.
        reference: Ref,
        /// The change.
        op: GroupOp,
    },
    /// Load a page of history; answer with [`EffectResult::History`].
    LoadHistory {
        /// The session.
        conn: ConnId,
        /// The request's reference.
        reference: Ref,
        /// Who asks (a DM conversation is between `user` and the target).
        user: Name,
        /// The conversation.
        target: Target,
        /// Which of its messages.
        window: crate::window::Window,
        /// At most this many.
        limit: u16,
    },
    /// List the conversations `user` reads whose latest message falls
    /// within `between`; answer with [`EffectResult::Targets`].
    LoadTargets {
        /// The session.
        conn: ConnId,
        /// The request's reference.
        reference: Ref,
        /// Who asks: the room, `groups` and their direct conversations.
        user: Name,
        /// The user's groups now (the hub's membership, so every store
        /// reads the same set).
        groups: Vec<Name>,
        /// Exclusive bounds, ms since the Unix epoch, the earlier first.
        between: (u64, u64),
        /// At most this many, the earliest.
        limit: u16,
    },
    /// Load what a session missed; answer with [`EffectResult::Replayed`].
    Replay {
        /// The session.
        conn: ConnId,
        /// Whose messages.
        user: Name,
        /// Which.
        scope: ReplayScope,
        /// Only ids up to this: later ones reach the session live.
        upto: MessageId,
        /// At most this many messages, the newest (`Config::replay_max`);
        /// the older ones are reported as skipped.
        max: usize,
    },
    /// Check a LOGIN2: the password or the token, then the device (find
    /// or create it by name, issue a token; or find it by token, refusing
    /// one idle for longer than `token_idle`), and load the user's read
    /// markers. Answer with [`EffectResult::LoggedIn2`]. Every wrong
    /// secret is `BAD_CREDENTIALS`, whichever part was wrong.
    Login2 {
        /// The session.
        conn: ConnId,
        /// The name as typed.
        user: Name,
        /// The password or the token.
        secret: Secret,
        /// The device a password login names.
        device: Option<DeviceAsk>,
        /// A token not used for this long is expired (and deleted).
        token_idle: Duration,
        /// A user may have at most this many devices (`TOO_MANY_DEVICES`).
        max_devices: u16,
        /// At most this many read markers are loaded, the newest.
        max_read_markers: u16,
    },
    /// Store the device's bookmark (the newest id it acknowledged, only
    /// ever raised). Answer with [`EffectResult::BookmarkSaved`], in
    /// order with the other writes.
    SaveBookmark {
        /// The device.
        device: DeviceId,
        /// Its new bookmark.
        upto: MessageId,
        /// A LOGOUT waiting for this write: its OK goes out after it.
        logout: Option<(ConnId, Ref)>,
    },
    /// Store a read marker (only ever raised; the user's oldest markers
    /// beyond `max` go). Answer with [`EffectResult::ReadMarkerSaved`].
    SaveReadMarker {
        /// The session that set it.
        conn: ConnId,
        /// Whose.
        user: Name,
        /// The conversation, as the user sees it (a DM: the other party).
        target: Target,
        /// Read up to here.
        id: MessageId,
        /// Markers kept per user.
        max: u16,
    },
    /// List the user's devices; answer with [`EffectResult::Devices`].
    ListDevices {
        /// The session.
        conn: ConnId,
        /// The request's reference.
        reference: Ref,
        /// Whose.
        user: Name,
    },
    /// Tombstone a message (its body gone, who deleted it kept) with its
    /// audit line; answer with [`EffectResult::MessageDeleted`].
    DeleteMessage {
        /// The asking session.
        conn: ConnId,
        /// Its request.
        reference: Ref,
        /// Who deletes it.
        actor: Name,
        /// The message.
        id: MessageId,
        /// Why, for the audit log.
        reason: String,
        /// `None` for a server operator; otherwise the groups the actor
        /// owns or moderates, one of which the message must be sent to.
        within: Option<Vec<Name>>,
    },
    /// Append a line to the audit log (an announcement); answer with
    /// [`EffectResult::Moderated`].
    Audit {
        /// The asking session.
        conn: ConnId,
        /// Its request.
        reference: Ref,
        /// What to record.
        line: AuditLine,
    },
    /// Store an operator's moderation (a ban's or mute's end, the audit
    /// line); answer with [`EffectResult::Moderated`].
    Moderate {
        /// The operator's session.
        conn: ConnId,
        /// Its request.
        reference: Ref,
        /// What was done.
        record: ModerationRecord,
    },
    /// Store an operator's ban of an address block (or its lifting) with
    /// its audit line; answer with [`EffectResult::Moderated`].
    BanAddress {
        /// The operator's session.
        conn: ConnId,
        /// Its request.
        reference: Ref,
        /// What was done.
        record: AddressBanRecord,
    },
    /// Delete one of the user's devices (its token, bookmark and send
    /// records); answer with [`EffectResult::DeviceRevoked`].
    RevokeDevice {
        /// The session.
        conn: ConnId,
        /// The request's reference.
        reference: Ref,
        /// Whose.
        user: Name,
        /// Which.
        device: Name,
    },
    /// The user's last session left; every direct message with an id up to
    /// `seen_upto` was routed while they were online. Storage keeps this mark
    /// for [`ReplayScope::OfflineDirect`]. Needs no answer.
    UserOffline {
        /// The user.
        user: Name,
        /// The newest id routed before they left.
        seen_upto: MessageId,
    },
    /// Only with `Config::announce_presence`: the user's first session on
    /// this node logged in (`Online`) or their last here left
    /// (`Offline`); the shell tells the other nodes, whose hubs take it
    /// as [`Input::Presence`]. Needs no answer.
    NodePresence {
        /// The user.
        user: Name,
        /// Online or offline here.
        presence: Presence,
    },
    /// Only with `Config::announce_presence`: what the other nodes must
    /// apply too (see [`crate::remote`]). Needs no answer.
    TellNodes(crate::remote::Remote),
}

/// Where a committed message got its id and time: what the sender's ACK says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Committed {
    /// Its id.
    pub id: MessageId,
    /// Commit time, ms since the Unix epoch.
    pub timestamp_ms: u64,
}

impl StoredMessage {
    /// Its id and time.
    pub fn committed(&self) -> Committed {
        Committed {
            id: self.id,
            timestamp_ms: self.timestamp_ms,
        }
    }
}

/// The answer to an [`Effect`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EffectResult {
    /// The answer to [`Effect::Authenticate`]: the account's registered name.
    Authenticated {
        /// The session.
        conn: ConnId,
        /// The canonical name, or why not.
        result: Result<Name, ProtocolError>,
    },
    /// The answer to [`Effect::Register`].
    Registered {
        /// The session.
        conn: ConnId,
        /// Created, or why not.
        result: Result<(), ProtocolError>,
    },
    /// The answer to [`Effect::Store`], in the same order.
    Stored {
        /// The sending session.
        conn: ConnId,
        /// The SEND's reference.
        reference: Ref,
        /// Where it was committed, or why it was not (the message is
        /// handed back then).
        result: Result<Committed, (NewMessage, ProtocolError)>,
    },
    /// The answer to an [`Effect::Store`] with a key that was committed
    /// before: the original message's id and time (the ACK a retried
    /// SEND2 gets). Nothing is routed.
    StoredBefore {
        /// The sending session.
        conn: ConnId,
        /// The SEND2's reference.
        reference: Ref,
        /// The original commit.
        committed: Committed,
    },
    /// The answer to [`Effect::Login2`].
    LoggedIn2 {
        /// The session.
        conn: ConnId,
        /// The login, or why not.
        result: Result<DeviceLogin, ProtocolError>,
    },
    /// The answer to [`Effect::SaveBookmark`].
    BookmarkSaved {
        /// The device.
        device: DeviceId,
        /// The bookmark written.
        upto: MessageId,
        /// The LOGOUT that waited for it.
        logout: Option<(ConnId, Ref)>,
        /// Whether it was stored (a failure is logged by the shell; the
        /// device is at worst sent some messages again).
        saved: bool,
    },
    /// The answer to [`Effect::SaveReadMarker`], once it is stored.
    ReadMarkerSaved {
        /// The session that set it.
        conn: ConnId,
        /// Whose.
        user: Name,
        /// The conversation.
        target: Target,
        /// The marker as stored (never lower than before), or why not.
        result: Result<MessageId, ProtocolError>,
    },
    /// The answer to [`Effect::ListDevices`].
    Devices {
        /// The session.
        conn: ConnId,
        /// The request's reference.
        reference: Ref,
        /// By name, or why not.
        result: Result<Vec<DeviceRecord>, ProtocolError>,
    },
    /// The answer to [`Effect::DeleteMessage`].
    MessageDeleted {
        /// The asking session.
        conn: ConnId,
        /// Its request.
        reference: Ref,
        /// Who deleted it.
        by: Name,
        /// The tombstone (whose conversation says who is told), or why not
        /// (`NO_SUCH_MESSAGE`).
        result: Result<StoredMessage, ProtocolError>,
    },
    /// The answer to [`Effect::Moderate`] and [`Effect::Audit`].
    Moderated {
        /// The operator's session.
        conn: ConnId,
        /// Its request.
        reference: Ref,
        /// Stored, or why not.
        result: Result<(), ProtocolError>,
    },
    /// The answer to [`Effect::RevokeDevice`].
    DeviceRevoked {
        /// The session.
        conn: ConnId,
        /// The request's reference.
        reference: Ref,
        /// The revoked device, or why not (`NO_SUCH_DEVICE`).
        result: Result<DeviceId, ProtocolError>,
    },
    /// The answer to [`Effect::StoreGroup`].
    GroupStored {
        /// The session.
        conn: ConnId,
        /// The request's reference.
        reference: Ref,
        /// The change.
        op: GroupOp,
        /// Committed, or why not.
        result: Result<(), ProtocolError>,
    },
    /// The answer to [`Effect::LoadHistory`].
    History {
        /// The session.
        conn: ConnId,
        /// The request's reference.
        reference: Ref,
        /// The conversation.
        target: Target,
        /// Newest first, or why not.
        result: Result<HistoryLoaded, ProtocolError>,
    },
    /// The answer to [`Effect::LoadTargets`].
    Targets {
        /// The session.
        conn: ConnId,
        /// The request's reference.
        reference: Ref,
        /// Earliest latest message first, or why not.
        result: Result<Vec<Latest>, ProtocolError>,
    },
    /// The answer to [`Effect::Replay`].
    Replayed {
        /// The session.
        conn: ConnId,
        /// Oldest first, or why not.
        result: Result<ReplayLoaded, ProtocolError>,
    },
}

/// What a shell's workers hand back to the hub, in the order it happened:
/// the answer to an effect, or a commit to route. A storage writer feeds
/// a committed message's [`EffectResult::Stored`] (the sender's ACK) and
/// then its [`Input::Committed`] (everyone else's copy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// See [`crate::Hub::handle_result`].
    Result(EffectResult),
    /// See [`crate::Hub::handle_committed`].
    Committed {
        /// The message.
        message: StoredMessage,
        /// The session that sent it, if it is on this node.
        origin: Option<ConnId>,
    },
    /// See [`crate::Hub::handle_group_committed`].
    GroupCommitted {
        /// The change.
        op: GroupOp,
        /// The session that asked for it, if it is on this node.
        origin: Option<ConnId>,
    },
    /// See [`crate::Hub::handle_presence`]: another node's first session
    /// of `user` came online, or its last left.
    Presence {
        /// The user.
        user: Name,
        /// Online or offline there.
        presence: Presence,
    },
    /// See [`crate::Hub::handle_remote`]: what another node applied.
    Remote(crate::remote::Remote),
}

impl Input {
    /// What a storage writer feeds for a message it was asked to commit:
    /// the sender's answer, then, if it was committed, the commit to route
    /// (with the sender as its origin).
    pub fn message_written(
        conn: ConnId,
        reference: Ref,
        result: Result<StoredMessage, (NewMessage, ProtocolError)>,
    ) -> Vec<Input> {
        let (result, routed) = match result {
            Ok(stored) => (Ok(stored.committed()), Some(stored)),
            Err(e) => (Err(e), None),
        };
        let answer = EffectResult::Stored {
            conn,
            reference,
            result,
        };
        let routed = routed.map(|message| Input::Committed {
            message,
            origin: Some(conn),
        });
        std::iter::once(answer.into()).chain(routed).collect()
    }

    /// What a storage writer feeds for a SEND2 whose key was committed
    /// before: the original ACK, and nothing to route.
    pub fn message_stored_before(conn: ConnId, reference: Ref, committed: Committed) -> Vec<Input> {
        vec![EffectResult::StoredBefore {
            conn,
            reference,
            committed,
        }
        .into()]
    }

    /// What a storage writer feeds for a group change it was asked to
    /// commit: the requester's answer, then, if it was committed, the
    /// change to apply.
    pub fn group_written(
        conn: ConnId,
        reference: Ref,
        op: GroupOp,
        result: Result<(), ProtocolError>,
    ) -> Vec<Input> {
        let routed = result.is_ok().then(|| Input::GroupCommitted {
            op: op.clone(),
            origin: Some(conn),
        });
        let answer = EffectResult::GroupStored {
            conn,
            reference,
            op,
            result,
        };
        std::iter::once(answer.into()).chain(routed).collect()
    }
}

impl From<EffectResult> for Input {
    fn from(r: EffectResult) -> Input {
        Input::Result(r)
    }
}
