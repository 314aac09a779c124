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

impl Remote {
    /// Whether the other nodes must still get this when the bus comes back
    /// after an outage: a sanction's state (who is banned, muted or an
    /// operator, which devices and blocks are barred, an unlock) outlasts
    /// the moment. A kick and the guard's counts do not: the kicked
    /// sessions may be long gone, and replaying counts whose windows the
    /// outage outlived would lock people out for nothing.
    pub fn is_lasting(&self) -> bool {
        !matches!(
            self,
            Remote::Kick { .. }
                | Remote::LoginFailed { .. }
                | Remote::LoggedIn { .. }
                | Remote::Registered { .. }
        )
    }

    /// This note `elapsed` after it was taken: a ban's or mute's time left
    /// shrinks by it (to zero, a sanction that has run out).
    pub fn aged(self, elapsed: Duration) -> Remote {
        let age = |left: Option<Duration>| left.map(|d| d.saturating_sub(elapsed));
        match self {
            Remote::Ban { user, left, reason } => Remote::Ban {
                user,
                left: age(left),
                reason,
            },
            Remote::Mute { user, left, reason } => Remote::Mute {
                user,
                left: age(left),
                reason,
            },
            Remote::BanAddress { net, left, reason } => Remote::BanAddress {
                net,
                left: age(left),
                reason,
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bob() -> Name {
        Name::new("bob").expect("a valid name")
    }

    #[test]
    fn a_ban_held_through_an_outage_has_the_outage_taken_off_its_time_left() {
        let ban = Remote::Ban {
            user: bob(),
            left: Some(Duration::from_secs(60)),
            reason: "spam".into(),
        };
        let aged = ban.aged(Duration::from_secs(45));
        assert_eq!(
            aged,
            Remote::Ban {
                user: bob(),
                left: Some(Duration::from_secs(15)),
                reason: "spam".into(),
            }
        );
        let gone = aged.aged(Duration::from_secs(30));
        assert!(matches!(gone, Remote::Ban { left: Some(d), .. } if d.is_zero()));
        let for_good = Remote::Mute {
            user: bob(),
            left: None,
            reason: String::new(),
        };
        assert_eq!(for_good.clone().aged(Duration::from_secs(9)), for_good);
    }

    #[test]
    fn sanctions_last_through_an_outage_and_kicks_and_counts_do_not() {
        assert!(Remote::Unban { user: bob() }.is_lasting());
        assert!(Remote::Unlock {
            user: None,
            source: None
        }
        .is_lasting());
        assert!(!Remote::Kick {
            user: bob(),
            reason: String::new()
        }
        .is_lasting());
        assert!(!Remote::LoggedIn {
            user: bob(),
            source: Source(1)
        }
        .is_lasting());
    }
}
