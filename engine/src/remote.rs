//! What one node of a cluster tells the others to apply too: the
//! sanctions an operator took there (through a client's MODERATE or
//! BAN_ADDRESS, or the node's control socket), the devices revoked
//! there, and the login outcomes and registrations its guard counted.
//!
//! The hub that takes the action queues it as [`crate::Effect::TellNodes`]
//! (only with `Config::announce_presence`, i.e. one node of several); the
//! shell carries it on the bus; every other hub takes it as
//! [`crate::Input::Remote`] and applies it through the same functions the
//! local control socket calls, so the codes, texts and lockout ladders
//! are the engine's on every node. Ends travel as the time left (not as
//! an `Instant`, which means nothing on another machine, nor as a wall
//! clock time, which would depend on the nodes' clocks agreeing): the
//! bus adds milliseconds to a ban of minutes.

use std::time::Duration;

use crate::device::DeviceId;
use crate::id::Source;
use crate::name::Name;
use crate::source_net::SourceNet;

/// An action another node applied (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Remote {
    /// `user`'s sessions are closed with ERROR KICKED.
    Kick {
        /// Whose.
        user: Name,
        /// Shown to them.
        reason: String,
    },
    /// `user` is banned for `left` (`None`: for good).
    Ban {
        /// Whom.
        user: Name,
        /// Time left when it was taken; `None` for good.
        left: Option<Duration>,
        /// Shown to them.
        reason: String,
    },
    /// `user`'s ban is lifted.
    Unban {
        /// Whose.
        user: Name,
    },
    /// `user` is muted for `left` (`None`: until lifted).
    Mute {
        /// Whom.
        user: Name,
        /// Time left when it was taken; `None` until lifted.
        left: Option<Duration>,
        /// Shown to them.
        reason: String,
    },
    /// `user`'s mute is lifted.
    Unmute {
        /// Whose.
        user: Name,
    },
    /// `user` is made a server operator, or no longer.
    Operator {
        /// Whom.
        user: Name,
        /// Operator from now on, or not.
        operator: bool,
    },
    /// The device was revoked (its owner, `user passwd`, `user revoke`):
    /// its sessions are closed with ERROR DEVICE_REVOKED.
    DeviceRevoked(DeviceId),
    /// The block is banned for `left` (`None`: for good).
    BanAddress {
        /// Which.
        net: SourceNet,
        /// Time left when it was taken; `None` for good.
        left: Option<Duration>,
        /// Shown to its connections.
        reason: String,
    },
    /// The block's ban is lifted.
    UnbanAddress {
        /// Which.
        net: SourceNet,
    },
    /// A wrong password or token for `user` from `source` was counted
    /// there: it counts here too, so the lockout ladders are the
    /// cluster's, not one node's.
    LoginFailed {
        /// The account as typed.
        user: Name,
        /// From where.
        source: Source,
    },
    /// `user` logged in from `source` there: the account's and the
    /// pair's failures start over here too, as on one node.
    LoggedIn {
        /// The account as typed.
        user: Name,
        /// From where.
        source: Source,
    },
    /// A REGISTER from `source` was charged there: it is charged to the
    /// same budgets here.
    Registered {
        /// From where.
        source: Source,
    },
    /// An operator's unlock there: one account's failures (`user`), one
    /// address's (`source`), or, with neither, everyone's go here too.
    Unlock {
        /// The account, if one.
        user: Option<Name>,
        /// The address, if one (and no account).
        source: Option<Source>,
    },
}
