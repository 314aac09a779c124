//! Every refusal the server can answer with, in one place.
//!
//! A request the server will not carry out (a wrong password, a full
//! group, a frame out of place, a client that floods) is a
//! [`ProtocolError`] wherever it is decided: in the hub, in storage, in the
//! password pool. Each variant fixes its [`ErrorCode`], its text and its
//! retry delay here, so one refusal reads the same whoever decides it, and
//! a front end turns it into its own protocol's error (the confab codec
//! into an ERROR frame) without knowing why it happened.

use std::time::Duration;

use crate::codec::DecodeError;
use crate::frame::{ErrorCode, OLDEST_VERSION, PROTOCOL_VERSION};
use crate::name::Name;
use crate::password::Password;

/// Why a request was refused or a session closed (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    // ---- framing ----
    /// The bytes are not a frame (fatal).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A frame of a type this server does not know; it was skipped.
    #[error("unknown frame type 0x{kind:02x} skipped")]
    UnknownFrameType {
        /// Its type byte.
        kind: u8,
    },
    /// A request the session's state does not take.
    #[error("{request} is not accepted in state {phase}")]
    WrongState {
        /// The request's name in docs/PROTOCOL.md.
        request: &'static str,
        /// The state's name in docs/PROTOCOL.md.
        phase: &'static str,
    },
    /// A second LOGIN or REGISTER while the first is being checked.
    #[error("a login or registration is already being checked")]
    AuthPending,
    /// HELLO with a version the server does not speak (fatal).
    #[error("this server speaks protocol versions {OLDEST_VERSION} to {PROTOCOL_VERSION}, not {version}")]
    UnsupportedVersion {
        /// The client's version.
        version: u16,
    },

    // ---- accounts ----
    /// REGISTER on a server that does not take it.
    #[error("registration is closed on this server")]
    RegistrationClosed,
    /// A password outside the protocol's limits.
    #[error("a password is {} to {} bytes", Password::MIN_LEN, Password::MAX_LEN)]
    BadPassword,
    /// Wrong name or password; the next attempt waits `retry`.
    #[error("wrong user name or password")]
    BadCredentials {
        /// The backoff before the next attempt is checked.
        retry: Duration,
    },
    /// Too many failed logins for the account or the address.
    #[error("too many failed logins; try again in {} s", retry.as_secs_f64().ceil())]
    LockedOut {
        /// Until the lockout ends.
        retry: Duration,
    },
    /// A LOGIN2 by a token that is not one: wrong, revoked, expired, or
    /// not the named user's. The next attempt waits `retry`.
    #[error("unknown, revoked or expired device token")]
    BadToken {
        /// The backoff before the next attempt is checked.
        retry: Duration,
    },
    /// A request that needs a session logged in as a device.
    #[error("{request} needs a session logged in with a device (LOGIN2)")]
    NoDevice {
        /// The request's name.
        request: &'static str,
    },
    /// A LOGIN2 naming a new device for a user who has `max` already.
    #[error("a user may have at most {max} devices; revoke one first")]
    TooManyDevices {
        /// The limit.
        max: u16,
    },
    /// DEVICE_REVOKE of a device the user does not have.
    #[error("no device {device}")]
    NoSuchDevice {
        /// The name.
        device: Name,
    },
    /// The session's device was revoked (fatal).
    #[error("this device was revoked; log in with a password again")]
    DeviceRevoked,
    /// A request of a newer protocol version than the session's HELLO.
    #[error("{request} is not in protocol version {version}")]
    NotInVersion {
        /// The request's name.
        request: &'static str,
        /// The session's version.
        version: u16,
    },
    /// The name is registered already (ignoring case).
    #[error("the name {user} is taken")]
    NameTaken {
        /// The name asked for.
        user: Name,
    },
    /// The address created as many accounts as it may for now.
    #[error("too many accounts were created from your address; try again in {} s", secs(*retry))]
    RegistrationsFromSource {
        /// Until the next one is allowed.
        retry: Duration,
    },
    /// The server created as many accounts as it may for now.
    #[error("too many accounts are being created on this server; try again in {} s", secs(*retry))]
    RegistrationsOnServer {
        /// Until the next one is allowed.
        retry: Duration,
    },
    /// The account was disconnected for flooding a short while ago.
    #[error("this account was disconnected for flooding; log in again later")]
    AccountPenalized {
        /// Until the penalty ends.
        retry: Duration,
    },
    /// A message or history request names an account that does not exist.
    #[error("no user {user}")]
    NoSuchUser {
        /// The name.
        user: Name,
    },

    // ---- groups ----
    /// No group of that name.
    #[error("no group {group}")]
    NoSuchGroup {
        /// The name.
        group: Name,
    },
    /// The user is not one of the group's members.
    #[error("not a member of {group}")]
    NotAMember {
        /// The group.
        group: Name,
    },
    /// GROUP_CREATE for a name that exists (or is being created).
    #[error("group {group} already exists")]
    GroupExists {
        /// The name.
        group: Name,
    },
    /// GROUP_JOIN by a member.
    #[error("already a member of {group}")]
    AlreadyMember {
        /// The group.
        group: Name,
    },
    /// The group has `members_per_group` members.
    #[error("group {group} is full")]
    GroupFull {
        /// The group.
        group: Name,
    },
    /// The user is in `groups_per_user` groups.
    #[error("a user may belong to at most {max} groups")]
    TooManyGroups {
        /// The limit.
        max: u16,
    },
    /// The server has `max_groups` groups.
    #[error("the server has {max} groups, as many as it allows")]
    ServerGroupsFull {
        /// The limit.
        max: u32,
    },

    // ---- messages ----
    /// An empty body or one over `max_body`.
    #[error("a message body is 1 to {max} bytes")]
    BadBody {
        /// The limit.
        max: u16,
    },

    // ---- budgets ----
    /// Reading is paused for `retry`; keeping it up closes the session.
    #[error("sending faster than the rate limit: reading is paused; keep it up and you will be disconnected")]
    RateLimited {
        /// Until reading resumes.
        retry: Duration,
    },
    /// Kept sending faster than the rate limit after being told (fatal).
    #[error("kept sending faster than the rate limit")]
    Flooding,
    /// More frames before logging in than the pre-auth budget (fatal).
    #[error("sent more than {burst} frames before logging in (then {rate} a second)")]
    FloodingBeforeLogin {
        /// `Config::pre_auth_burst`.
        burst: u16,
        /// `Config::pre_auth_rate`.
        rate: u16,
    },
    /// Too many requests waiting for answers.
    #[error("too many requests in flight; wait for answers")]
    TooManyInFlight,
    /// A queue of the server's is full; retry shortly.
    #[error("the server is busy {doing}; retry")]
    Busy {
        /// What it was doing ("storing messages").
        doing: &'static str,
    },
    /// The session's queue overflowed (fatal).
    #[error("did not read its traffic; the send queue overflowed")]
    SlowConsumer,

    // ---- connections and timers (fatal) ----
    /// The server has `max_clients` connections.
    #[error("the server has as many connections as it allows")]
    ServerFull,
    /// The address has `max_per_source` connections.
    #[error("too many connections from your address")]
    TooManyFromSource,
    /// The address has `max_pre_auth_per_source` connections not logged in.
    #[error("too many connections from your address have not logged in")]
    TooManyUnauthenticated,
    /// A connection from the address flooded before logging in.
    #[error("a connection from your address flooded before logging in; try again later")]
    SourceBarred {
        /// Until the bar ends.
        retry: Duration,
    },
    /// Not logged in within `auth_timeout`.
    #[error("not logged in within the auth timeout")]
    AuthTimeout,
    /// A frame started and not finished within `frame_timeout`.
    #[error("a frame was started and not finished in time")]
    FrameTimeout,
    /// No PONG to the server's PING.
    #[error("no answer to ping")]
    IdleTimeout,

    // ---- moderation ----
    /// An operator closed the session (fatal); the text is their reason.
    #[error("kicked by an operator: {reason}")]
    Kicked {
        /// Why, as the operator gave it.
        reason: String,
    },
    /// The account is banned: the login is refused (fatal), `retry` is the
    /// time left (`None`: for good).
    #[error("the account is banned{}: {reason}", match retry { Some(d) => format!(" for {} s more", secs(*d)), None => " for good".to_owned() })]
    Banned {
        /// Why, as the operator gave it.
        reason: String,
        /// Time left, `None` for good.
        retry: Option<Duration>,
    },
    /// The sender is muted: SENDs are refused until `retry` passes.
    #[error("you are muted{}: {reason}", match retry { Some(d) => format!(" for {} s more", secs(*d)), None => " until an operator lifts it".to_owned() })]
    Muted {
        /// Why, as the operator gave it.
        reason: String,
        /// Time left, `None` until lifted.
        retry: Option<Duration>,
    },

    /// The connection's address is banned (fatal), `retry` the time left
    /// (`None`: for good).
    #[error("this address is banned{}: {reason}", match retry { Some(d) => format!(" for {} s more", secs(*d)), None => " for good".to_owned() })]
    AddressBanned {
        /// Why, as the operator gave it.
        reason: String,
        /// Time left, `None` for good.
        retry: Option<Duration>,
    },

    /// A GROUP_MODERATE (or a DELETE in a group) from someone without the
    /// group role it takes.
    #[error("only the owner of #{group}{} may do that", if *owner_only { "" } else { ", its moderators or a server operator" })]
    NotGroupModerator {
        /// The group.
        group: Name,
        /// Whether only the owner (or an operator) may.
        owner_only: bool,
    },
    /// The sender is muted in this group (its other conversations are not
    /// affected).
    #[error("you are muted in #{group}{}: {reason}", match retry { Some(d) => format!(" for {} s more", secs(*d)), None => " until a moderator lifts it".to_owned() })]
    MutedInGroup {
        /// The group.
        group: Name,
        /// Why.
        reason: String,
        /// Time left, `None` until lifted.
        retry: Option<Duration>,
    },

    /// A MODERATE from a session that is not a server operator's.
    #[error("only a server operator may moderate")]
    NotOperator,
    /// A BAN_ADDRESS block that is neither an address nor a CIDR block.
    #[error("{text:?} is not an address or a block like 10.0.0.0/8 or 2001:db8::/32")]
    BadAddress {
        /// The text as sent (cut to 64 bytes).
        text: String,
    },
    /// A DELETE names a message that is not stored (never was, or gone
    /// by retention).
    #[error("no message {id} is stored")]
    NoSuchMessage {
        /// The id asked for.
        id: u64,
    },

    // ---- storage ----
    /// Storage failed; the text says what it was doing.
    #[error("{0}")]
    Storage(String),
}

/// Whole seconds, rounded up, for texts that say "try again in N s".
fn secs(d: Duration) -> u128 {
    d.as_millis().max(1).div_ceil(1000)
}

impl ProtocolError {
    /// The wire code.
    pub fn code(&self) -> ErrorCode {
        use ProtocolError::*;
        match self {
            Decode(e) => e.code(),
            UnknownFrameType { .. } => ErrorCode::UnknownFrameType,
            WrongState { .. } | AuthPending => ErrorCode::WrongState,
            UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            RegistrationClosed => ErrorCode::RegistrationClosed,
            BadPassword | BadCredentials { .. } | BadToken { .. } => ErrorCode::BadCredentials,
            NoDevice { .. } => ErrorCode::NoDevice,
            TooManyDevices { .. } => ErrorCode::TooManyDevices,
            NoSuchDevice { .. } => ErrorCode::NoSuchDevice,
            DeviceRevoked => ErrorCode::DeviceRevoked,
            NotInVersion { .. } => ErrorCode::UnknownFrameType,
            LockedOut { .. } => ErrorCode::LockedOut,
            NameTaken { .. } => ErrorCode::NameTaken,
            RegistrationsFromSource { .. } | RegistrationsOnServer { .. } => ErrorCode::RateLimited,
            AccountPenalized { .. } | RateLimited { .. } => ErrorCode::RateLimited,
            NoSuchUser { .. } => ErrorCode::NoSuchUser,
            NoSuchGroup { .. } => ErrorCode::NoSuchGroup,
            NotAMember { .. } => ErrorCode::NotAMember,
            GroupExists { .. } => ErrorCode::GroupExists,
            AlreadyMember { .. } => ErrorCode::AlreadyMember,
            GroupFull { .. } => ErrorCode::GroupFull,
            TooManyGroups { .. } => ErrorCode::TooManyGroups,
            ServerGroupsFull { .. } => ErrorCode::ServerGroupsFull,
            BadBody { .. } => ErrorCode::BadBody,
            Flooding | FloodingBeforeLogin { .. } => ErrorCode::Flooding,
            TooManyInFlight | Busy { .. } => ErrorCode::Busy,
            SlowConsumer => ErrorCode::SlowConsumer,
            ServerFull | TooManyFromSource | TooManyUnauthenticated | SourceBarred { .. } => {
                ErrorCode::TooManyConnections
            }
            AuthTimeout => ErrorCode::AuthTimeout,
            FrameTimeout => ErrorCode::FrameTimeout,
            IdleTimeout => ErrorCode::IdleTimeout,
            Storage(_) => ErrorCode::StorageError,
            Kicked { .. } => ErrorCode::Kicked,
            Banned { .. } => ErrorCode::Banned,
            Muted { .. } => ErrorCode::Muted,
            NotOperator => ErrorCode::NotOperator,
            AddressBanned { .. } => ErrorCode::Banned,
            NotGroupModerator { .. } => ErrorCode::NotGroupModerator,
            MutedInGroup { .. } => ErrorCode::Muted,
            NoSuchMessage { .. } => ErrorCode::NoSuchMessage,
            BadAddress { .. } => ErrorCode::BadAddress,
        }
    }

    /// When the client may retry, in ms (0: it need not wait, or retrying
    /// will not help). The delays of the server's own queues are fixed
    /// here too: a full in-flight window clears within a round trip, a
    /// full server queue within a second.
    pub fn retry_after_ms(&self) -> u32 {
        use ProtocolError::*;
        let ms = |d: &Duration| d.as_millis().clamp(1, u128::from(u32::MAX)) as u32;
        match self {
            BadCredentials { retry } | BadToken { retry } if retry.is_zero() => 0,
            BadCredentials { retry } | BadToken { retry } => {
                retry.as_millis().min(u128::from(u32::MAX)) as u32
            }
            LockedOut { retry }
            | RegistrationsFromSource { retry }
            | RegistrationsOnServer { retry }
            | AccountPenalized { retry }
            | RateLimited { retry }
            | SourceBarred { retry } => ms(retry),
            Banned {
                retry: Some(retry), ..
            }
            | Muted {
                retry: Some(retry), ..
            }
            | AddressBanned {
                retry: Some(retry), ..
            }
            | MutedInGroup {
                retry: Some(retry), ..
            } => ms(retry),
            TooManyInFlight => 100,
            Busy { .. } => 1000,
            _ => 0,
        }
    }

    /// Whether the session is closed after this error is sent.
    pub fn is_fatal(&self) -> bool {
        self.code().is_fatal()
    }
}
