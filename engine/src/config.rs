//! Limits and settings, passed in by the shell.
//!
//! Every buffer, queue and map a client can grow is bounded by one of these.
//! The defaults are the documented defaults of `confab-server` (see
//! docs/PROTOCOL.md, "Limits").

use std::time::Duration;

use crate::frame::Frame;
use crate::frame::{
    Credential, DeviceInfo, GroupInfo, HistoryEntry, Resume, ServerInfo, Target, Text,
};
use crate::id::{MessageId, Ref};
use crate::lockout::Policy as LockoutPolicy;
use crate::name::Name;
use crate::registrations::RegistrationLimit;

/// Configuration of a [`crate::Hub`].
#[derive(Clone, Debug)]
pub struct Config {
    /// Announced in SERVER_HELLO.
    pub server_name: String,
    /// Whether REGISTER is accepted.
    pub registration_open: bool,
    /// Largest frame after login (length field value).
    pub max_frame: u32,
    /// Largest frame before login: keeps unauthenticated peers cheap.
    pub max_frame_pre_auth: u32,
    /// Longest message body in bytes.
    pub max_body: u16,
    /// Messages per second a session may send, sustained.
    pub msg_rate: u16,
    /// Messages a session may send in a burst.
    pub msg_burst: u16,
    /// Bytes per second a session may send, sustained.
    pub byte_rate: u32,
    /// Bytes a session may send in a burst.
    pub byte_burst: u32,
    /// Every frame costs at least this many bytes of the byte budget, so
    /// that tiny frames (a PING flood) are bounded by it too.
    pub min_frame_charge: u32,
    /// Frames a session may send before it has logged in, at once...
    pub pre_auth_burst: u16,
    /// ...and per second after that; beyond them it is closed (FLOODING).
    pub pre_auth_rate: u16,
    /// How long a session may stay rate-limited without pausing before it is
    /// disconnected for flooding.
    pub flood_timeout: Duration,
    /// After a disconnect for flooding, the account may not log in again
    /// for this long, so a flooder cannot come back at once with a fresh burst.
    pub flood_penalty: Duration,
    /// When failed logins lock an account, an address, or the pair of them
    /// out (see [`crate::lockout`]): with the flood penalty, the one policy
    /// of who may not log in, kept by the hub before any password is hashed.
    pub lockout: LockoutPolicy,
    /// Accounts one source address may create (REGISTER attempts, taken
    /// names included).
    pub registrations_per_source: RegistrationLimit,
    /// Accounts the whole server may create.
    pub registrations_per_server: RegistrationLimit,
    /// Most groups a user may belong to.
    pub groups_per_user: u16,
    /// Most members a group may have.
    pub members_per_group: u32,
    /// Most groups on the server (bounds GROUP_LIST to one frame).
    pub max_groups: u32,
    /// Most entries in one history page.
    pub history_page_max: u16,
    /// Most requests a session may have waiting for the shell (stores,
    /// history loads) before it is told "busy".
    pub max_inflight: u16,
    /// Bytes a session's outbound queue may hold before it drops the lowest
    /// priority traffic.
    pub send_queue_bytes: usize,
    /// Live messages held for a session while its resume replay loads.
    pub replay_hold: usize,
    /// Room message ids the room log remembers beyond the messages it
    /// holds (`send_queue_bytes` of them), so that a session that fell
    /// behind is told exactly what it missed; one further behind is
    /// closed as a slow consumer. 8 bytes each.
    pub room_log_ids: usize,
    /// Time from connect to a successful login.
    pub auth_timeout: Duration,
    /// Silence after which the server pings; as long again without a PONG closes.
    pub idle_timeout: Duration,
    /// Time from the first byte of a frame to its last.
    pub frame_timeout: Duration,
    /// Roster deltas sent beyond the client's last ROSTER_ACK before the
    /// server waits for an ack.
    pub roster_window: u64,
    /// Roster deltas remembered; a session further behind gets a snapshot.
    pub roster_log: usize,
    /// Sessions in total.
    pub max_clients: u32,
    /// Sessions from one source address (Ergo allows 16, InspIRCd 3: one
    /// address must not be able to take the whole server).
    pub max_per_source: u32,
    /// Of those, connections that have not logged in: holding slots
    /// without an account is cheap, so one address may hold only a few.
    pub max_pre_auth_per_source: u32,
    /// Frames handled from one session before the shell should let others run.
    pub frames_per_turn: usize,
    /// Most messages one resume replay carries; older missed ones are
    /// reported as skipped (MISSED), and the client pages them from history.
    pub replay_max: usize,
    /// The retry delay SHUTDOWN announces: about how long a restart takes.
    pub shutdown_retry: Duration,
    /// Most devices one user may have (v2; `TOO_MANY_DEVICES` beyond).
    pub devices_per_user: u16,
    /// A device token not used to log in for this long expires.
    pub token_idle: Duration,
    /// How long a SEND2's key is remembered at least: a retry within it is
    /// never stored twice.
    pub dedup_window: Duration,
    /// How many keys are kept per device at most (the newest), whatever
    /// their age; far more than `max_inflight`, so no send a client may
    /// still retry is forgotten by count.
    pub dedup_per_device: u32,
    /// Read markers kept per user (the most recently set).
    pub read_markers_per_user: u16,
    /// Whether this hub is one node of several: then it tells the shell
    /// when a user's first session here logs in and their last here
    /// leaves ([`crate::Effect::NodePresence`]), and what the other nodes
    /// must apply too (sanctions, login outcomes, registrations:
    /// [`crate::Effect::TellNodes`]), for the other nodes. A single node
    /// leaves it off and pays nothing.
    pub announce_presence: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            server_name: "confab".into(),
            registration_open: true,
            max_frame: 64 * 1024,
            max_frame_pre_auth: 1024,
            max_body: 4096,
            msg_rate: 20,
            msg_burst: 50,
            byte_rate: 64 * 1024,
            byte_burst: 256 * 1024,
            min_frame_charge: 64,
            pre_auth_burst: 10,
            pre_auth_rate: 1,
            flood_timeout: Duration::from_secs(10),
            flood_penalty: Duration::from_secs(30),
            lockout: LockoutPolicy::default(),
            // Synapse allows an address 3 at once and one per 6 s; Ergo, 30
            // per 10 minutes server-wide. A team's server sees a handful a day.
            registrations_per_source: RegistrationLimit {
                burst: 5,
                every: Duration::from_secs(60),
            },
            registrations_per_server: RegistrationLimit {
                burst: 30,
                every: Duration::from_secs(20),
            },
            groups_per_user: 64,
            members_per_group: 10_000,
            max_groups: 1000,
            history_page_max: 200,
            max_inflight: 256,
            send_queue_bytes: 1024 * 1024,
            replay_hold: 4096,
            room_log_ids: 1 << 18,
            auth_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            frame_timeout: Duration::from_secs(10),
            roster_window: 256,
            roster_log: 4096,
            max_clients: 10_000,
            max_per_source: 16,
            max_pre_auth_per_source: 4,
            frames_per_turn: 64,
            replay_max: 1000,
            shutdown_retry: Duration::from_secs(5),
            devices_per_user: 32,
            token_idle: Duration::from_secs(90 * 24 * 3600),
            dedup_window: Duration::from_secs(24 * 3600),
            dedup_per_device: 10_000,
            read_markers_per_user: 1024,
            announce_presence: false,
        }
    }
}

/// A [`Config`] the protocol cannot work with: a limit out of its range,
/// or a frame limit too small for a frame the server must carry whole.
/// `field` is the [`Config`] field's name (a command line spells it with
/// dashes).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A limit outside the range it may take.
    #[error("{field} is {value}; it must be {min} to {max}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The smallest allowed.
        min: u64,
        /// The largest allowed.
        max: u64,
    },
    /// A frame limit below the longest frame it must carry.
    #[error("{field} is {value}; it must be at least {needed} to carry {carrying}")]
    FrameTooSmall {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u32,
        /// The smallest that works.
        needed: u32,
        /// Which frame needs it.
        carrying: &'static str,
    },
}

impl Config {
    /// The largest `max_frame` allowed: what the confab client accepts
    /// from a server (its `MAX_INBOUND_FRAME`), 16 MiB.
    pub const MAX_FRAME_CEILING: u32 = 16 * 1024 * 1024;
    /// The most deltas `roster_log` may remember (each costs a name).
    pub const ROSTER_LOG_CEILING: usize = 1_000_000;
    /// The most messages `replay_max` may carry in one replay (held in
    /// memory whole while it is routed).
    pub const REPLAY_MAX_CEILING: usize = 100_000;
    /// The most devices `devices_per_user` may allow (a list of them fits
    /// one frame of the default `max_frame`).
    pub const DEVICES_CEILING: u16 = 1000;

    /// `max_frame` for a server whose bodies are up to `max_body` bytes
    /// and which sets no frame limit of its own: the default, or more if a
    /// body needs it (a frame holds the body plus its header and names,
    /// well within 1 KiB).
    pub fn default_max_frame(max_body: u16) -> u32 {
        Config::default().max_frame.max(u32::from(max_body) + 1024)
    }

    /// The least `max_frame` that carries, whole, every frame the server
    /// cannot cut: a MESSAGE (and a SEND, and a one-entry HISTORY page)
    /// with a `max_body` body between the longest names, and GROUP_LIST
    /// with `max_groups` groups. Measured on the codec (header included,
    /// as the history page fitting counts it), not from literals.
    pub fn needed_max_frame(&self) -> (u32, &'static str) {
        let longest = longest_name();
        let body = "x".repeat(usize::from(self.max_body));
        let body = Text::truncated(&body);
        let target = Target::User(longest);
        let message = Frame::Message {
            id: MessageId(u64::MAX),
            timestamp_ms: u64::MAX,
            sender: longest,
            target,
            body,
        };
        let page = Frame::HistoryPage {
            reference: Ref(u32::MAX),
            target,
            more: true,
            entries: vec![HistoryEntry {
                id: MessageId(u64::MAX),
                timestamp_ms: u64::MAX,
                sender: longest,
                body,
            }],
        };
        let list = |n: usize| Frame::GroupList {
            reference: Ref(u32::MAX),
            groups: vec![
                GroupInfo {
                    name: longest,
                    members: u32::MAX,
                    is_member: true,
                };
                n
            ],
        };
        let (empty, one) = (encoded_len(&list(0)), encoded_len(&list(1)));
        let groups = u64::from(self.max_groups.min(u32::from(u16::MAX)));
        let list_len = empty + groups * (one - empty);
        let device = DeviceInfo {
            name: longest,
            created_ms: u64::MAX,
            last_seen_ms: u64::MAX,
            current: true,
        };
        let devices = |n: usize| Frame::DeviceList {
            reference: Ref(u32::MAX),
            devices: vec![device; n],
        };
        let (empty, one) = (encoded_len(&devices(0)), encoded_len(&devices(1)));
        let devices_len = empty + u64::from(self.devices_per_user) * (one - empty);
        [
            (devices_len, "the device list of devices_per_user devices"),
            (encoded_len(&message), "a message of max_body bytes"),
            (encoded_len(&page), "a history entry of max_body bytes"),
            (list_len, "the group list of max_groups groups"),
        ]
        .into_iter()
        .max_by_key(|(n, _)| *n)
        .map(|(n, what)| (u32::try_from(n).unwrap_or(u32::MAX), what))
        .unwrap_or((0, ""))
    }

    /// The least `max_frame_pre_auth` that carries the longest HELLO,
    /// REGISTER and LOGIN a client can encode (a 255-byte password or
    /// client text between the longest names), so that a frame limit never
    /// answers for the credentials check.
    pub fn needed_max_frame_pre_auth() -> u32 {
        let longest = longest_name();
        let text = "x".repeat(255);
        let text = Text::truncated(&text);
        let frames = [
            Frame::Hello {
                version: u16::MAX,
                client: text,
            },
            Frame::Register {
                reference: Ref(u32::MAX),
                user: longest,
                password: text,
            },
            Frame::Login {
                reference: Ref(u32::MAX),
                user: longest,
                password: text,
                resume_after: MessageId(u64::MAX),
                roster: true,
            },
            Frame::Login2 {
                reference: Ref(u32::MAX),
                user: longest,
                credential: Credential::Password(text),
                device: Some(longest),
                issue_token: true,
                resume: Resume::After(MessageId(u64::MAX)),
                roster: true,
            },
        ];
        let n = frames.iter().map(encoded_len).max().unwrap_or(0);
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Checks the limits a protocol session depends on (see [`ConfigError`]);
    /// a shell calls it before building a [`crate::Hub`] from options.
    pub fn check(&self) -> Result<(), ConfigError> {
        let range = |field, value: u64, min: u64, max: u64| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(ConfigError::OutOfRange {
                    field,
                    value,
                    min,
                    max,
                })
            }
        };
        let at_least_one = |field, value: u64| range(field, value, 1, u64::MAX);
        at_least_one("groups_per_user", u64::from(self.groups_per_user))?;
        at_least_one("members_per_group", u64::from(self.members_per_group))?;
        at_least_one("max_groups", u64::from(self.max_groups))?;
        at_least_one("history_page_max", u64::from(self.history_page_max))?;
        at_least_one("max_inflight", u64::from(self.max_inflight))?;
        at_least_one("roster_window", self.roster_window)?;
        range(
            "devices_per_user",
            u64::from(self.devices_per_user),
            1,
            Config::DEVICES_CEILING.into(),
        )?;
        at_least_one("read_markers_per_user", self.read_markers_per_user.into())?;
        // Zero would expire every token at once, or remember no send.
        at_least_one("token_idle (seconds)", self.token_idle.as_secs())?;
        at_least_one("dedup_window (seconds)", self.dedup_window.as_secs())?;
        range(
            "dedup_per_device",
            self.dedup_per_device.into(),
            self.max_inflight.into(),
            u32::MAX.into(),
        )?;
        let roster_log = self.roster_log as u64;
        range(
            "roster_log",
            roster_log,
            1,
            Config::ROSTER_LOG_CEILING as u64,
        )?;
        let replay_max = self.replay_max as u64;
        range(
            "replay_max",
            replay_max,
            1,
            Config::REPLAY_MAX_CEILING as u64,
        )?;
        let ceiling = u64::from(Config::MAX_FRAME_CEILING);
        range("max_frame", u64::from(self.max_frame), 1, ceiling)?;
        let (needed, carrying) = self.needed_max_frame();
        if self.max_frame < needed {
            return Err(ConfigError::FrameTooSmall {
                field: "max_frame",
                value: self.max_frame,
                needed,
                carrying,
            });
        }
        let needed = Config::needed_max_frame_pre_auth();
        if self.max_frame_pre_auth < needed {
            return Err(ConfigError::FrameTooSmall {
                field: "max_frame_pre_auth",
                value: self.max_frame_pre_auth,
                needed,
                carrying: "the longest LOGIN",
            });
        }
        let (value, max) = (self.max_frame_pre_auth, self.max_frame);
        range(
            "max_frame_pre_auth",
            value.into(),
            needed.into(),
            max.into(),
        )
    }

    /// What SERVER_HELLO announces.
    pub fn server_info(&self) -> ServerInfo {
        ServerInfo {
            registration_open: self.registration_open,
            max_frame: self.max_frame,
            max_frame_pre_auth: self.max_frame_pre_auth,
            max_body: self.max_body,
            msg_rate: self.msg_rate,
            msg_burst: self.msg_burst,
            groups_per_user: self.groups_per_user,
            history_page_max: self.history_page_max,
            idle_timeout_ms: self.idle_timeout.as_millis().min(u32::MAX as u128) as u32,
        }
    }
}

/// A name of [`Name::MAX_LEN`] bytes, for sizing frames.
fn longest_name() -> Name {
    Name::new(&"n".repeat(Name::MAX_LEN)).unwrap_or_else(|_| unreachable!("a valid name"))
}

/// A frame's encoded length, header included.
fn encoded_len(frame: &Frame<'_>) -> u64 {
    let mut out = Vec::new();
    frame.encode(&mut out);
    out.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_pass_their_own_check() {
        assert_eq!(Config::default().check(), Ok(()));
        assert_eq!(Config::default_max_frame(4096), Config::default().max_frame);
    }

    #[test]
    fn a_max_frame_below_a_maximal_message_is_refused() {
        let c = Config {
            max_frame: 4096,
            ..Config::default()
        };
        let Err(ConfigError::FrameTooSmall { needed, .. }) = c.check() else {
            panic!("a 4096-byte body cannot fit a 4096-byte frame");
        };
        let fits = Config {
            max_frame: needed,
            ..c
        };
        assert_eq!(fits.check(), Ok(()));
    }

    #[test]
    fn a_pre_auth_frame_must_carry_a_login_and_stay_below_max_frame() {
        let small = Config {
            max_frame_pre_auth: 64,
            ..Config::default()
        };
        assert!(matches!(
            small.check(),
            Err(ConfigError::FrameTooSmall {
                field: "max_frame_pre_auth",
                ..
            })
        ));
        let large = Config {
            max_frame_pre_auth: Config::default().max_frame + 1,
            ..Config::default()
        };
        assert!(matches!(
            large.check(),
            Err(ConfigError::OutOfRange {
                field: "max_frame_pre_auth",
                ..
            })
        ));
    }

    #[test]
    fn the_version_2_limits_are_checked() {
        let refused = |c: Config| match c.check() {
            Err(ConfigError::OutOfRange { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let d = Config::default;
        let zero = std::time::Duration::ZERO;
        assert_eq!(
            refused(Config {
                token_idle: zero,
                ..d()
            }),
            "token_idle (seconds)"
        );
        assert_eq!(
            refused(Config {
                dedup_window: zero,
                ..d()
            }),
            "dedup_window (seconds)"
        );
        assert_eq!(
            refused(Config {
                dedup_per_device: 10,
                ..d()
            }),
            "dedup_per_device"
        );
        assert_eq!(
            refused(Config {
                devices_per_user: 1001,
                ..d()
            }),
            "devices_per_user"
        );
    }

    #[test]
    fn more_groups_than_a_group_list_frame_holds_are_refused() {
        let c = Config {
            max_groups: 10_000,
            ..Config::default()
        };
        assert!(matches!(
            c.check(),
            Err(ConfigError::FrameTooSmall {
                field: "max_frame",
                ..
            })
        ));
    }
}
