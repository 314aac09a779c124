//! `confab-server status`, `kick`, `ban`, `mute`, `audit`: moderation
//! and control, through the running server's control socket (see
//! [`crate::control`]) and the database.

use std::time::Duration;

use clap::{Args, Subcommand};
use confab_engine::Name;

/// Moderation and control commands.
#[derive(Debug, Subcommand)]
pub enum OpsCommand {
    /// Show what the running server is doing: uptime, connections,
    /// sessions per user, queue depths, lockouts, bans.
    Status,
    /// Close every session of an account (needs a running server); the
    /// user sees the reason.
    Kick {
        /// The account name (any case).
        name: Name,
        #[command(flatten)]
        reason: Reason,
    },
    /// Ban an account: its sessions are closed and its logins refused,
    /// with the reason and the time left. Survives restarts.
    Ban {
        /// The account name (any case).
        name: Name,
        #[command(flatten)]
        length: Length,
        #[command(flatten)]
        reason: Reason,
    },
    /// Lift a ban.
    Unban {
        /// The account name (any case).
        name: Name,
    },
    /// Mute an account: its messages are refused (MUTED). Survives restarts.
    Mute {
        /// The account name (any case).
        name: Name,
        #[command(flatten)]
        length: Length,
        #[command(flatten)]
        reason: Reason,
    },
    /// Lift a mute.
    Unmute {
        /// The account name (any case).
        name: Name,
    },
    /// Delete a message: its body goes, a tombstone saying who deleted it
    /// stays in history; connected clients hide it at once.
    Delete {
        /// The message id (as history shows it).
        id: u64,
        #[command(flatten)]
        reason: Reason,
    },
    /// Send a server notice to everyone logged in (needs a running server).
    Announce {
        /// The notice.
        text: String,
    },
    /// Ban an address block (10.0.0.0/8, 2001:db8::/32, or one address):
    /// its connections are closed and new ones turned away with the reason
    /// and the time left. Survives restarts.
    BanAddress {
        /// The block or address.
        net: String,
        #[command(flatten)]
        length: Length,
        #[command(flatten)]
        reason: Reason,
    },
    /// Lift the ban of an address block (exactly as banned).
    UnbanAddress {
        /// The block or address.
        net: String,
    },
    /// Forget failed logins and the lockouts they earned on the running
    /// server: of one account, one address, or (with neither) everyone's.
    Unlock {
        /// The account (any case).
        #[arg(conflicts_with = "address")]
        name: Option<Name>,
        /// An address (IPv4 or IPv6), with its flood bar.
        #[arg(long)]
        address: Option<std::net::IpAddr>,
    },
    /// A server operator's action on a group's member: remove, mute,
    /// unmute, appoint (a moderator) or dismiss. Stored, then the running
    /// server applies it at once.
    Group {
        /// remove, mute, unmute, appoint or dismiss.
        #[arg(value_parser = parse_group_action)]
        action: confab_engine::frame::GroupAction,
        /// The group (any case).
        group: Name,
        /// The member (any case).
        name: Name,
        #[command(flatten)]
        length: Length,
        #[command(flatten)]
        reason: Reason,
    },
    /// Print the audit log of moderation actions, oldest first.
    Audit {
        /// How many of the newest entries.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

/// Why, shown to the user and kept in the audit log.
#[derive(Debug, Args)]
pub struct Reason {
    /// Why (shown to the user, kept in the audit log).
    #[arg(long, default_value = "")]
    pub reason: String,
}

/// How long a ban or mute lasts.
#[derive(Debug, Args)]
pub struct Length {
    /// How long: 90s, 30m, 12h, 7d; without it, until lifted.
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_length)]
    pub length: Option<Duration>,
}

/// A group action by its command-line word.
pub fn parse_group_action(s: &str) -> Result<confab_engine::frame::GroupAction, String> {
    use confab_engine::frame::GroupAction;
    Ok(match s {
        "remove" => GroupAction::Remove,
        "mute" => GroupAction::Mute,
        "unmute" => GroupAction::Unmute,
        "appoint" => GroupAction::Appoint,
        "dismiss" => GroupAction::Dismiss,
        _ => return Err(format!("{s:?}: remove, mute, unmute, appoint or dismiss")),
    })
}

/// `90s`, `30m`, `12h`, `7d` (or plain seconds).
pub fn parse_length(s: &str) -> Result<Duration, String> {
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 90s, 30m, 12h or 7d"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?}: the unit is s, m, h or d")),
    };
    match n.checked_mul(secs) {
        Some(total) if total > 0 => Ok(Duration::from_secs(total)),
        Some(_) => Err("a duration is at least 1s".to_owned()),
        None => Err(format!("{s:?} is too long")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_read_with_their_unit_and_bad_ones_say_why() {
        assert_eq!(parse_length("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_length("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_length("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_length("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_length("15"), Ok(Duration::from_secs(15)));
        assert!(parse_length("0s").is_err());
        assert!(parse_length("5w").unwrap_err().contains("unit"));
        assert!(parse_length("soon").is_err());
    }
}
