//! Storage behind one interface: what the shell's storage threads need
//! from a database, and what they hand back to the hub.
//!
//! This is an interface only, no I/O: `confab-server` implements it on
//! SQLite, [`crate::testing`] in memory. It is shaped so a PostgreSQL
//! implementation can follow: ids and timestamps are assigned by the store
//! at commit, and writes come in batches so one commit (one fsync) covers
//! many messages. A refusal a store decides (a DM to an unknown account, a
//! group that exists) is the engine's [`ProtocolError`], so it reads the
//! same whichever store decides it.
//!
//! Each thread that uses storage opens its own `Store` (one writer thread,
//! a few reader threads); implementations must allow that.

use crate::device::DeviceId;
use crate::effect::{
    Committed, DeviceRecord, GroupOp, HistoryLoaded, Latest, NewMessage, ReplayLoaded, ReplayScope,
    SendKey, StoredMessage,
};
use crate::error::ProtocolError;
use crate::frame::Target;
use crate::id::MessageId;
use crate::name::Name;
use crate::window::{Range, Window};

/// An account as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The name as registered (its spelling); lookups ignore case.
    pub name: Name,
    /// The PHC string of the argon2id hash, parameters included.
    pub password_hash: String,
}

/// One write in a group-committed batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// A message to commit; gets the next id and the commit timestamp.
    Message(NewMessage),
    /// A SEND2's message: committed only if no message has its key yet.
    MessageOnce(NewMessage, SendKey),
    /// A device's bookmark, raised to `upto` (never lowered).
    Bookmark {
        /// The device.
        device: DeviceId,
        /// The newest id it acknowledged.
        upto: MessageId,
    },
    /// A read marker, raised to `id` (never lowered); the user's markers
    /// beyond `max` go, least recently set first.
    ReadMarker {
        /// Whose.
        user: Name,
        /// The conversation as the user sees it (a DM: the other party).
        target: Target,
        /// Read up to here.
        id: MessageId,
        /// Markers kept per user.
        max: u16,
    },
    /// A group change.
    Group(GroupOp),
    /// A user's last session left (see `Effect::UserOffline`).
    Offline {
        /// The user.
        user: Name,
        /// Direct messages up to this id were routed while they were online.
        seen_upto: MessageId,
    },
}

/// The outcome of one [`Write`], in the same position of the batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Written {
    /// The committed message, or why not (e.g. `NO_SUCH_USER` for a DM to
    /// an unknown account: nothing is stored then).
    Message(Result<StoredMessage, ProtocolError>),
    /// A [`Write::MessageOnce`] whose key was committed before: the
    /// original message's id and time; nothing new was stored.
    Duplicate(Committed),
    /// Recorded (a device revoked meanwhile is no error).
    Bookmark,
    /// The marker as stored (the higher of the old and the new).
    ReadMarker(MessageId),
    /// Committed, or why not (`GROUP_EXISTS`, `NO_SUCH_GROUP`, ...).
    Group(Result<(), ProtocolError>),
    /// Recorded.
    Offline,
}

/// What the hub needs at start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    /// The newest committed message id (0 for an empty store).
    pub last_id: MessageId,
    /// Every group with its members.
    pub groups: Vec<(Name, Vec<Name>)>,
    /// Group roles: `(group, user, owner)`, owner false for a moderator.
    pub roles: Vec<(Name, Name, bool)>,
    /// Group mutes in force: `(group, user, seconds left or None for
    /// until lifted, reason)`.
    pub group_mutes: Vec<GroupMute>,
}

/// A group mute as loaded: `(group, user, seconds left or None for until
/// lifted, reason)`.
pub type GroupMute = (Name, Name, Option<u64>, String);

/// A device as storage holds it: [`DeviceRecord`], and what logging in
/// by it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredDevice {
    /// What a device list shows.
    pub record: DeviceRecord,
    /// Whose.
    pub user: Name,
    /// The blake3 hash of its token; `None` once no token is valid.
    pub token_hash: Option<[u8; 32]>,
    /// The newest id it acknowledged.
    pub bookmark: MessageId,
}

/// Retention of messages; `None` keeps forever.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most this many messages per conversation.
    pub max_count: Option<u64>,
    /// Drop messages older than this many seconds.
    pub max_age_secs: Option<u64>,
}

/// A storage failure, with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data dir or database cannot be opened (missing permissions,
    /// read-only, corrupt, not a database).
    #[error("cannot open the database at {path}: {reason}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The database was written by a newer confab.
    #[error("the database at {path} has schema version {found}, newer than this confab's {supported}; upgrade confab")]
    TooNew {
        /// The file.
        path: String,
        /// Its version.
        found: u32,
        /// Ours.
        supported: u32,
    },
    /// A query or commit failed (disk full, I/O error, ...).
    #[error("storage failed while {doing}: {reason}")]
    Failed {
        /// What was being done.
        doing: &'static str,
        /// The underlying error.
        reason: String,
    },
}

/// Storage (see the module docs). All methods are blocking; the server calls
/// them from its storage threads, never from an I/O thread.
pub trait Store: Send {
    /// The hub's starting state.
    fn load(&mut self) -> Result<Loaded, StoreError>;
    /// Looks an account up, ignoring case.
    fn account(&mut self, user: &Name) -> Result<Option<Account>, StoreError>;
    /// Creates an account; `Ok(false)` if the name is taken (ignoring case).
    /// Committed before it returns.
    fn create_account(&mut self, user: &Name, password_hash: &str) -> Result<bool, StoreError>;
    /// Creates several accounts, committed together before it returns (one
    /// fsync for all: registrations that arrive together are one group
    /// commit); per account, whether it was created (`false`: the name,
    /// ignoring case, was taken, perhaps earlier in the same batch).
    fn create_accounts(&mut self, accounts: &[(Name, String)]) -> Result<Vec<bool>, StoreError> {
        accounts
            .iter()
            .map(|(user, hash)| self.create_account(user, hash))
            .collect()
    }
    /// Replaces a password hash; `Ok(false)` if there is no such account.
    fn set_password(&mut self, user: &Name, password_hash: &str) -> Result<bool, StoreError>;
    /// Deletes an account and its group memberships; `Ok(false)` if absent.
    fn delete_account(&mut self, user: &Name) -> Result<bool, StoreError>;
    /// Every account name, sorted ignoring case.
    fn accounts(&mut self) -> Result<Vec<Name>, StoreError>;
    /// Commits a batch in one transaction (one fsync), returning one
    /// outcome per write in order. Message ids increase in batch order.
    /// `now_ms` is the commit timestamp (ms since the Unix epoch).
    fn commit(&mut self, batch: &[Write], now_ms: u64) -> Result<Vec<Written>, StoreError>;
    /// At most `limit` messages of `range` of a conversation as `user`
    /// sees it (the room, a group, or the direct messages between `user`
    /// and a target user): the newest, newest first, or the oldest, oldest
    /// first; `more` if the range holds more.
    fn history_range(
        &mut self,
        user: &Name,
        target: &Target,
        range: &Range,
        newest: bool,
        limit: u16,
    ) -> Result<HistoryLoaded, StoreError>;
    /// A page of a conversation as `user` sees it, newest first, ids below
    /// `before` (0: the newest).
    fn history(
        &mut self,
        user: &Name,
        target: &Target,
        before: MessageId,
        limit: u16,
    ) -> Result<HistoryLoaded, StoreError> {
        let Window::Newest(range) = Window::before(before) else {
            unreachable!("Window::before is a Newest window")
        };
        self.history_range(user, target, &range, true, limit)
    }
    /// What `window` holds, at most `limit` messages, in the order taken
    /// (newest first, but the oldest first for [`Window::Oldest`]); an
    /// AROUND is the newest below its point and the oldest from it on,
    /// newest first.
    fn history_window(
        &mut self,
        user: &Name,
        target: &Target,
        window: &Window,
        limit: u16,
    ) -> Result<HistoryLoaded, StoreError> {
        match *window {
            Window::Newest(range) => self.history_range(user, target, &range, true, limit),
            Window::Oldest(range) => self.history_range(user, target, &range, false, limit),
            Window::Around(at) => {
                let below = Range {
                    after: None,
                    before: Some(at),
                };
                let from = Range {
                    after: Some(at.just_below()),
                    before: None,
                };
                let before = self.history_range(user, target, &below, true, limit / 2)?;
                let after = self.history_range(user, target, &from, false, limit - limit / 2)?;
                let mut messages = after.messages;
                messages.reverse();
                messages.extend(before.messages);
                let mut deleted = after.deleted;
                deleted.reverse();
                deleted.extend(before.deleted);
                Ok(HistoryLoaded {
                    messages,
                    more: before.more || after.more,
                    deleted,
                })
            }
        }
    }
    /// The answer to a history request: [`Store::history`], except that a
    /// direct conversation with an account that does not exist is refused
    /// with `NO_SUCH_USER` rather than answered with an empty page (the
    /// client mistyped a name), as a message to one is.
    fn history_page(
        &mut self,
        user: &Name,
        target: &Target,
        window: &Window,
        limit: u16,
    ) -> Result<Result<HistoryLoaded, ProtocolError>, StoreError> {
        if let Target::User(other) = target {
            if self.account(other)?.is_none() {
                return Ok(Err(ProtocolError::NoSuchUser { user: *other }));
            }
        }
        self.history_window(user, target, window, limit).map(Ok)
    }
    /// The conversations `user` reads (the room, `groups`, and every
    /// direct conversation they are a party of) whose latest message was
    /// committed strictly within `between` (ms, the earlier first): at
    /// most `limit`, the earliest latest first (ties by id). A
    /// conversation written to since `between` ends is not listed, as
    /// CHATHISTORY TARGETS asks.
    fn history_targets(
        &mut self,
        user: &Name,
        groups: &[Name],
        between: (u64, u64),
        limit: u16,
    ) -> Result<Vec<Latest>, StoreError>;
    /// What `user` missed (see [`ReplayScope`]), oldest first, ids ≤ `upto`,
    /// at most `max` messages (the newest ones; the rest are reported as skipped).
    fn replay(
        &mut self,
        user: &Name,
        scope: &ReplayScope,
        upto: MessageId,
        max: usize,
    ) -> Result<ReplayLoaded, StoreError>;
    // ---- devices (protocol version 2) ----

    /// The device with this token hash, if any (whoever's it is: the
    /// caller checks the user).
    fn device_by_token(
        &mut self,
        token_hash: &[u8; 32],
    ) -> Result<Option<StoredDevice>, StoreError>;
    /// The user's device of this name (ignoring case), if any.
    fn device_by_name(
        &mut self,
        user: &Name,
        device: &Name,
    ) -> Result<Option<StoredDevice>, StoreError>;
    /// Creates a device for an existing account, committed before it
    /// returns; `now_ms` is its creation and last use.
    fn create_device(
        &mut self,
        user: &Name,
        device: &Name,
        token_hash: Option<[u8; 32]>,
        now_ms: u64,
    ) -> Result<StoredDevice, StoreError>;
    /// Replaces a device's token hash (`None`: no token is valid).
    fn set_device_token(
        &mut self,
        device: DeviceId,
        token_hash: Option<[u8; 32]>,
    ) -> Result<(), StoreError>;
    /// Records a login by the device at `now_ms` (what token expiry counts from).
    fn touch_device(&mut self, device: DeviceId, now_ms: u64) -> Result<(), StoreError>;
    /// The user's devices, by name ignoring case.
    fn devices(&mut self, user: &Name) -> Result<Vec<DeviceRecord>, StoreError>;
    /// Deletes the user's device of this name with its bookmark and send
    /// records; its id, or `None` if there is none.
    fn revoke_device(&mut self, user: &Name, device: &Name)
        -> Result<Option<DeviceId>, StoreError>;
    /// Records an operator's moderation at `now_ms`: a ban's or mute's
    /// end (or its lifting) and the audit line. Stores without moderation
    /// (tests) keep nothing.
    fn moderate(
        &mut self,
        record: &crate::effect::ModerationRecord,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let _ = (record, now_ms);
        Ok(())
    }
    /// Records an operator's ban of an address block (or its lifting) at
    /// `now_ms`, with its audit line. Stores without moderation (tests)
    /// keep nothing.
    fn record_address_ban(
        &mut self,
        record: &crate::effect::AddressBanRecord,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let _ = (record, now_ms);
        Ok(())
    }
    /// Tombstones message `id` at `now_ms`: its body is emptied, who
    /// deleted it (and why, in the audit log) kept; history and replay
    /// list it in their `deleted`. The tombstone, or `None` if no message
    /// has that id. Deleting a tombstone again keeps the first deleter.
    fn delete_message(
        &mut self,
        id: MessageId,
        by: &Name,
        reason: &str,
        now_ms: u64,
    ) -> Result<Option<StoredMessage>, StoreError>;
    /// Message `id` as stored (a tombstone's body is empty), if any.
    fn message(&mut self, id: MessageId) -> Result<Option<StoredMessage>, StoreError>;
    /// A DELETE: [`Store::delete_message`], refused with `NO_SUCH_MESSAGE`,
    /// or with `NOT_OPERATOR` when `within` (the groups a non-operator
    /// moderates) does not hold the message's group.
    fn delete_within(
        &mut self,
        id: MessageId,
        by: &Name,
        reason: &str,
        now_ms: u64,
        within: Option<&[Name]>,
    ) -> Result<Result<StoredMessage, ProtocolError>, StoreError> {
        if let Some(groups) = within {
            let Some(m) = self.message(id)? else {
                return Ok(Err(ProtocolError::NoSuchMessage { id: id.0 }));
            };
            let theirs =
                matches!(m.target, Target::Group(g) if groups.iter().any(|h| h.key() == g.key()));
            if !theirs {
                return Ok(Err(ProtocolError::NotOperator));
            }
        }
        Ok(self
            .delete_message(id, by, reason, now_ms)?
            .ok_or(ProtocolError::NoSuchMessage { id: id.0 }))
    }
    /// Appends a line to the audit log. Stores without one (tests) keep
    /// nothing.
    fn audit_line(
        &mut self,
        line: &crate::effect::AuditLine,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let _ = (line, now_ms);
        Ok(())
    }
    /// Deletes every device of the user (a changed password); their ids.
    fn revoke_devices(&mut self, user: &Name) -> Result<Vec<DeviceId>, StoreError>;
    /// The user's read markers, the `max` most recently set.
    fn read_markers(
        &mut self,
        user: &Name,
        max: u16,
    ) -> Result<Vec<(Target, MessageId)>, StoreError>;
    /// Forgets send records (the exactly-once keys) older than
    /// `older_than_ms`, and beyond the newest `keep` of each device;
    /// returns how many.
    fn prune_sends(&mut self, older_than_ms: u64, keep: u32) -> Result<u64, StoreError>;

    /// Deletes messages outside the retention; returns how many.
    fn apply_retention(&mut self, retention: &Retention, now_ms: u64) -> Result<u64, StoreError>;
    /// Work a store defers off the acknowledgement path: a store may commit
    /// into a layout cheap to append to and make it cheap to read later
    /// (SQLite: it indexes the newest messages by conversation). The
    /// writer calls this between batches, saying how much time it has
    /// (see [`CatchUp`]); reads see every committed message either way.
    /// Returns how many messages it caught up on, 0 when there was nothing
    /// worth doing.
    fn catch_up(&mut self, when: CatchUp) -> Result<u64, StoreError> {
        let _ = when;
        Ok(0)
    }
}

/// How much of its deferred work [`Store::catch_up`] should do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatchUp {
    /// Writes are waiting: a short step, only if the backlog has grown
    /// past its bound.
    Due,
    /// Nothing is waiting: a short step, if there is enough to be worth it.
    Spare,
    /// Idle or stopping: everything.
    All,
}

/// Re-exported for implementations.
pub type Stored = StoredMessage;
