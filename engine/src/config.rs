//! Limits and settings, passed in by the shell.
//!
//! Every buffer, queue and map a client can grow is bounded by one of these.
//! The defaults are the documented defaults of `confab-server` (see
//! docs/PROTOCOL.md, "Limits").

use std::time::Duration;

use crate::frame::ServerInfo;
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
    /// The retry delay SHUTDOWN announces to a connection that arrives
    /// while the server is shutting down.
    pub shutdown_retry: Duration,
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
            auth_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            frame_timeout: Duration::from_secs(10),
            roster_window: 256,
            roster_log: 4096,
            max_clients: 10_000,
            max_per_source: 16,
            max_pre_auth_per_source: 4,
            frames_per_turn: 64,
            shutdown_retry: Duration::from_secs(5),
        }
    }
}

impl Config {
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
