//! The command line of `confab-server`: every option also reads an
//! environment variable `CONFAB_<NAME>`, and the defaults run a working
//! server on 127.0.0.1:7878 with its data in ./confab-data.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::FalseyValueParser;
use clap::{ArgAction, Args, CommandFactory, Parser, Subcommand, ValueEnum};
use confab_engine::{Config, ConfigError, Name, RegistrationLimit};

use crate::auth::HashParams;
use crate::store::Retention;
use confab_engine::lockout;

pub mod ops;

/// The confab chat server.
///
/// Run without a subcommand to serve. Accounts can be managed with
/// `confab-server user ...` (the data dir is opened directly).
#[derive(Debug, Parser)]
#[command(name = "confab-server", version, max_term_width = 100)]
pub struct Cli {
    /// Serving options.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Account management instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do instead of serving.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage accounts in the data dir.
    #[command(subcommand)]
    User(UserCommand),
    /// Moderation and control of the running server.
    #[command(flatten)]
    Ops(ops::OpsCommand),
    /// Check a config file: every error with its line; exit status 1 if any.
    CheckConfig {
        /// The file.
        file: PathBuf,
    },
    /// Make the running server re-read its config file (as SIGHUP does) and
    /// print what it applied, or every error (then nothing changed).
    Reload,
    /// Copy a single node's SQLite data into an empty PostgreSQL database
    /// (ids, tokens and bookmarks included), to run it as a cluster.
    Migrate {
        /// `sqlite:DIR`: the data dir of a stopped node.
        #[arg(long)]
        from: String,
        /// `postgres://...`: an empty database.
        #[arg(long)]
        to: String,
    },
}

/// `confab-server user ...`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account.
    Add {
        /// The account name: 1 to 32 of A-Z a-z 0-9 _ - . starting with a letter or digit.
        name: Name,
        #[command(flatten)]
        password: PasswordArg,
    },
    /// Delete an account and its group memberships.
    Del {
        /// The account name (any case).
        name: Name,
    },
    /// Set an account's password; this revokes every device of the account.
    Passwd {
        /// The account name (any case).
        name: Name,
        #[command(flatten)]
        password: PasswordArg,
        /// Keep the account's devices and their tokens.
        #[arg(long)]
        keep_devices: bool,
    },
    /// List the accounts, one per line.
    List,
    /// List an account's devices: name, created, last seen, whether its token is valid.
    Devices {
        /// The account name (any case).
        name: Name,
    },
    /// Delete one of an account's devices: its token, bookmark and send
    /// records. A running server refuses the device from its next login;
    /// its open sessions stay until they reconnect.
    Revoke {
        /// The account name (any case).
        name: Name,
        /// The device name (any case).
        device: Name,
    },
    /// Make an account a server operator.
    Op {
        /// The account name (any case).
        name: Name,
    },
    /// Take an account's operator role away.
    Deop {
        /// The account name (any case).
        name: Name,
    },
}

/// Where a password comes from.
#[derive(Debug, Args)]
pub struct PasswordArg {
    /// The password (1 to 255 bytes). Without it, CONFAB_PASSWORD is used,
    /// or it is asked for on the terminal.
    #[arg(long, env = "CONFAB_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
}

/// Whether anyone may create an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Registration {
    /// Clients may REGISTER.
    Open,
    /// Only `confab-server user add` creates accounts.
    Closed,
}

/// How hard SQLite syncs a commit to disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SyncMode {
    /// Sync every commit to disk: an acknowledged message survives a power cut.
    Full,
    /// Sync less often: faster, but a power cut may lose the last commits.
    Normal,
}

/// How much to log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Nothing.
    Off,
    /// Failures only.
    Error,
    /// Failures and warnings.
    Warn,
    /// Connections, logins, start and stop.
    Info,
    /// Also internals (lock contention at shutdown).
    Debug,
    /// Everything.
    Trace,
}

impl From<LogLevel> for log::LevelFilter {
    fn from(l: LogLevel) -> log::LevelFilter {
        match l {
            LogLevel::Off => log::LevelFilter::Off,
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
        }
    }
}

/// Options of the server (and, for `--data-dir` and logging, of `user`).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the log line
    /// "listening on ADDR" tells which).
    #[arg(long, env = "CONFAB_LISTEN", default_value = "127.0.0.1:7878")]
    pub listen: SocketAddr,

    /// Also serve the browser client (its page and its WebSocket at /ws)
    /// on this address; port 0 picks a free port (the log line "web
    /// listening on ADDR" tells which). Over TLS when the server has a
    /// certificate.
    #[arg(long, env = "CONFAB_WEB_LISTEN")]
    pub web_listen: Option<SocketAddr>,

    /// An origin (scheme://host[:port]) whose pages may open the WebSocket,
    /// besides the server's own; repeatable (the variable: comma-separated).
    #[arg(
        long = "web-allowed-origin",
        env = "CONFAB_WEB_ALLOWED_ORIGINS",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    pub web_allowed_origins: Vec<String>,
    /// A TOML file of settings, one per option (`max-body = 2048`); the
    /// command line and the environment win over it. SIGHUP or
    /// `confab-server reload` re-reads it.
    #[arg(long, env = "CONFAB_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Where the data lives: omitted, SQLite in the data dir; a
    /// `postgres://USER@HOST:PORT/DB` URL, PostgreSQL, which several nodes
    /// (each with its own data dir) may share (docs/SCALING.md). A
    /// command without it acts on the store the server on its data dir
    /// last started with (the data dir's file `store`).
    #[arg(long, env = "CONFAB_STORE", value_name = "URL")]
    pub store: Option<String>,

    /// The bus between nodes sharing a PostgreSQL store: a
    /// `redis://HOST:PORT` URL (Redis pub/sub).
    #[arg(long, env = "CONFAB_BUS", value_name = "URL")]
    pub bus: Option<String>,

    /// Serve Prometheus metrics at http://ADDR/metrics (plain HTTP: keep
    /// it on loopback or a private network); port 0 picks a free port
    /// (the log line "metrics served at" tells which).
    #[arg(long, env = "CONFAB_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,

    /// Also serve IRC here (over TLS when TLS is on); port 0 picks a free
    /// port (the log line "irc listening on ADDR" tells which).
    #[arg(long, env = "CONFAB_IRC_LISTEN")]
    pub irc_listen: Option<SocketAddr>,

    /// The IRC channel that is the room.
    #[arg(long, env = "CONFAB_IRC_ROOM_CHANNEL", default_value = "#confab", value_parser = room_channel)]
    pub irc_room_channel: String,

    /// Give IRC clients without credentials an account named for their
    /// nick (for conformance suites only: anyone may log in as a guest).
    #[arg(long, env = "CONFAB_IRC_GUESTS")]
    pub irc_guests: bool,

    /// Do not JOIN IRC clients to the room's channel or show its presence
    /// (for conformance suites, which count every line).
    #[arg(long, env = "CONFAB_IRC_QUIET_ROOM")]
    pub irc_quiet_room: bool,

    /// Directory of the database; created if missing.
    #[arg(
        long,
        env = "CONFAB_DATA_DIR",
        default_value = "./confab-data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// I/O threads [default: number of cores].
    #[arg(long, env = "CONFAB_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,

    /// Most connections at once.
    #[arg(long, env = "CONFAB_MAX_CLIENTS", default_value_t = 10_000)]
    pub max_clients: u32,

    /// Most connections from one IP address [1..]; raise it for many users behind one NAT.
    #[arg(long, env = "CONFAB_MAX_PER_SOURCE", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_per_source: u32,

    /// Of those, connections that have not logged in yet (1-65535): one
    /// address cannot hold the server's slots without an account.
    #[arg(long, env = "CONFAB_MAX_PRE_AUTH_PER_SOURCE", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=65535))]
    pub max_pre_auth_per_source: u32,

    /// Seconds of silence before the server pings; as long again without an answer disconnects.
    #[arg(long, env = "CONFAB_IDLE_TIMEOUT", default_value_t = 60, value_parser = secs())]
    pub idle_timeout: u64,

    /// Seconds from connecting to a successful login.
    #[arg(long, env = "CONFAB_AUTH_TIMEOUT", default_value_t = 10, value_parser = secs())]
    pub auth_timeout: u64,

    /// Seconds from the first byte of a frame to its last.
    #[arg(long, env = "CONFAB_FRAME_TIMEOUT", default_value_t = 10, value_parser = secs())]
    pub frame_timeout: u64,

    /// Messages per second a session may send, sustained.
    #[arg(long, env = "CONFAB_MSG_RATE", default_value_t = 20)]
    pub msg_rate: u16,

    /// Messages a session may send in a burst.
    #[arg(long, env = "CONFAB_MSG_BURST", default_value_t = 50)]
    pub msg_burst: u16,

    /// Bytes per second a session may send, sustained.
    #[arg(long, env = "CONFAB_BYTE_RATE", default_value_t = 64 * 1024)]
    pub byte_rate: u32,

    /// Bytes a session may send in a burst.
    #[arg(long, env = "CONFAB_BYTE_BURST", default_value_t = 256 * 1024)]
    pub byte_burst: u32,

    /// Bytes of the byte budget every frame costs at least, so that floods
    /// of tiny frames (PING) are bounded by it too (1-65536).
    #[arg(long, env = "CONFAB_MIN_FRAME_CHARGE", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub min_frame_charge: u32,

    /// Frames a connection may send before it has logged in, at once (1-1000);
    /// beyond its budget it is disconnected (FLOODING).
    #[arg(long, env = "CONFAB_PRE_AUTH_BURST", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub pre_auth_burst: u16,

    /// Frames per second a connection may send before it has logged in,
    /// after its burst (0-1000).
    #[arg(long, env = "CONFAB_PRE_AUTH_RATE", default_value_t = 1, value_parser = clap::value_parser!(u16).range(0..=1000))]
    pub pre_auth_rate: u16,

    /// Accounts one address may create at once (REGISTER attempts, taken
    /// names included; 1-65535)...
    #[arg(long, env = "CONFAB_REGISTER_SOURCE_BURST", default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    pub register_source_burst: u16,

    /// ...and then one more every this many seconds (0-86400; 0: no limit).
    #[arg(long, env = "CONFAB_REGISTER_SOURCE_EVERY", default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub register_source_every: u64,

    /// Accounts the whole server may create at once (1-65535)...
    #[arg(long, env = "CONFAB_REGISTER_SERVER_BURST", default_value_t = 30, value_parser = clap::value_parser!(u16).range(1..))]
    pub register_server_burst: u16,

    /// ...and then one more every this many seconds (0-86400; 0: no limit).
    #[arg(long, env = "CONFAB_REGISTER_SERVER_EVERY", default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub register_server_every: u64,

    /// Seconds a session may keep exceeding its rate limit before it is disconnected.
    #[arg(long, env = "CONFAB_FLOOD_TIMEOUT", default_value_t = 10, value_parser = secs())]
    pub flood_timeout: u64,

    /// Seconds an account disconnected for flooding may not log in again.
    #[arg(long, env = "CONFAB_FLOOD_PENALTY", default_value_t = 30, value_parser = secs())]
    pub flood_penalty: u64,

    /// Longest message body in bytes.
    #[arg(long, env = "CONFAB_MAX_BODY", default_value_t = 4096, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_body: u16,

    /// Largest frame a logged-in client may send and the server sends, in
    /// bytes (length field value): at least what a --max-body message and
    /// the list of --max-groups groups need, at most 16 MiB (what the
    /// confab client accepts). [default: 65536, or more if --max-body needs it]
    #[arg(long, env = "CONFAB_MAX_FRAME", value_parser = clap::value_parser!(u32).range(1..=i64::from(Config::MAX_FRAME_CEILING)))]
    pub max_frame: Option<u32>,

    /// Largest frame before login, in bytes: at least the longest LOGIN a
    /// client can send (about 300), at most --max-frame.
    #[arg(long, env = "CONFAB_MAX_FRAME_PRE_AUTH", default_value_t = Config::default().max_frame_pre_auth, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_frame_pre_auth: u32,

    /// Most groups a user may belong to (1-65535).
    #[arg(long, env = "CONFAB_GROUPS_PER_USER", default_value_t = Config::default().groups_per_user, value_parser = clap::value_parser!(u16).range(1..))]
    pub groups_per_user: u16,

    /// Most members a group may have [1..].
    #[arg(long, env = "CONFAB_MEMBERS_PER_GROUP", default_value_t = Config::default().members_per_group, value_parser = clap::value_parser!(u32).range(1..))]
    pub members_per_group: u32,

    /// Most groups on the server [1..]: the group list of all of them must
    /// fit one --max-frame frame (about 1700 per 64 KiB).
    #[arg(long, env = "CONFAB_MAX_GROUPS", default_value_t = Config::default().max_groups, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_groups: u32,

    /// Most entries in one history page (1-65535); longer pages are also cut to fit --max-frame.
    #[arg(long, env = "CONFAB_HISTORY_PAGE_MAX", default_value_t = Config::default().history_page_max, value_parser = clap::value_parser!(u16).range(1..))]
    pub history_page_max: u16,

    /// Requests a session may have waiting for storage before it is answered "busy" (1-65535).
    #[arg(long, env = "CONFAB_MAX_INFLIGHT", default_value_t = Config::default().max_inflight, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_inflight: u16,

    /// Roster deltas sent to a session beyond its last acknowledgement before the server waits [1..].
    #[arg(long, env = "CONFAB_ROSTER_WINDOW", default_value_t = Config::default().roster_window, value_parser = clap::value_parser!(u64).range(1..))]
    pub roster_window: u64,

    /// Roster deltas remembered (1-1000000); a session further behind is sent a snapshot.
    #[arg(long, env = "CONFAB_ROSTER_LOG", default_value_t = Config::default().roster_log as u64, value_parser = clap::value_parser!(u64).range(1..=Config::ROSTER_LOG_CEILING as u64))]
    pub roster_log: u64,

    /// Most missed messages replayed at login (1-100000); older ones are
    /// reported as missed, for the client to page from history.
    #[arg(long, env = "CONFAB_REPLAY_MAX", default_value_t = Config::default().replay_max as u64, value_parser = clap::value_parser!(u64).range(1..=Config::REPLAY_MAX_CEILING as u64))]
    pub replay_max: u64,

    /// Most devices one user may have (1-1000).
    #[arg(long, env = "CONFAB_DEVICES_PER_USER", default_value_t = Config::default().devices_per_user, value_parser = clap::value_parser!(u16).range(1..=i64::from(Config::DEVICES_CEILING)))]
    pub devices_per_user: u16,

    /// Days a device token may go unused before it expires (1-36500).
    #[arg(long, env = "CONFAB_TOKEN_IDLE_DAYS", default_value_t = 90, value_parser = clap::value_parser!(u64).range(1..=36_500))]
    pub token_idle_days: u64,

    /// Seconds a SEND2's id is remembered at least: a retry within them is
    /// never stored twice [1..].
    #[arg(long, env = "CONFAB_DEDUP_WINDOW_SECS", default_value_t = 86_400, value_parser = secs())]
    pub dedup_window_secs: u64,

    /// SEND2 ids remembered per device at most, the newest, whatever their
    /// age (at least --max-inflight) [1..].
    #[arg(long, env = "CONFAB_DEDUP_PER_DEVICE", default_value_t = Config::default().dedup_per_device, value_parser = clap::value_parser!(u32).range(1..))]
    pub dedup_per_device: u32,

    /// Read markers kept per user, the most recently set (1-65535).
    #[arg(long, env = "CONFAB_READ_MARKERS_PER_USER", default_value_t = Config::default().read_markers_per_user, value_parser = clap::value_parser!(u16).range(1..))]
    pub read_markers_per_user: u16,

    /// Bytes queued for a client before its lowest-priority traffic is
    /// dropped; also the bytes of room messages the room log keeps, once
    /// for everyone (a client further behind loses the oldest).
    #[arg(long, env = "CONFAB_SEND_QUEUE_BYTES", default_value_t = 1024 * 1024, value_parser = clap::value_parser!(u64).range(64 * 1024..))]
    pub send_queue_bytes: u64,

    /// Room message ids the room log remembers (8 bytes each), so that a
    /// client that fell behind is told exactly what it missed; one further
    /// behind is closed as a slow consumer [1024..].
    #[arg(long, env = "CONFAB_ROOM_LOG_IDS", default_value_t = Config::default().room_log_ids as u64, value_parser = clap::value_parser!(u64).range(1024..))]
    pub room_log_ids: u64,

    /// Whether clients may create accounts.
    #[arg(long, env = "CONFAB_REGISTRATION", value_enum, default_value_t = Registration::Open)]
    pub registration: Registration,

    /// Keep at most this many messages per conversation [default: all].
    #[arg(long, env = "CONFAB_RETENTION_COUNT", value_parser = clap::value_parser!(u64).range(1..))]
    pub retention_count: Option<u64>,

    /// Delete messages older than this many days [default: never].
    #[arg(long, env = "CONFAB_RETENTION_DAYS", value_parser = clap::value_parser!(u64).range(1..))]
    pub retention_days: Option<u64>,

    /// SQLite synchronous mode.
    #[arg(long, env = "CONFAB_SYNC", value_enum, default_value_t = SyncMode::Full)]
    pub sync: SyncMode,

    /// Password-hashing threads; also the most logins checked at once.
    #[arg(long, env = "CONFAB_AUTH_THREADS", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pub auth_threads: u16,

    /// Logins waiting for a hashing thread before more are answered "busy".
    #[arg(long, env = "CONFAB_AUTH_QUEUE", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub auth_queue: u32,

    /// Of those, waiting from one IP address [1..]; the threads serve addresses in turn.
    #[arg(long, env = "CONFAB_AUTH_QUEUE_PER_SOURCE", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub auth_queue_per_source: u32,

    /// Failed logins from one address (against one account, or in all) before that address is locked out.
    #[arg(long, env = "CONFAB_LOCKOUT_AFTER", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub lockout_after: u32,

    /// Failed logins against one account, from all addresses together, before the account is locked for everyone (a distributed attack) [1..].
    #[arg(long, env = "CONFAB_LOCKOUT_ACCOUNT_AFTER", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub lockout_account_after: u32,

    /// Seconds of the first lockout; doubles with each further failure, up to an hour.
    #[arg(long, env = "CONFAB_LOCKOUT_SECS", default_value_t = 300, value_parser = secs())]
    pub lockout_secs: u64,

    /// Argon2id memory per hash, KiB (new hashes; weaker stored ones are upgraded at login).
    #[arg(long, env = "CONFAB_HASH_MEMORY_KIB", default_value_t = HashParams::default().memory_kib, value_parser = clap::value_parser!(u32).range(8..))]
    pub hash_memory_kib: u32,

    /// Argon2id passes per hash.
    #[arg(long, env = "CONFAB_HASH_PASSES", default_value_t = HashParams::default().passes, value_parser = clap::value_parser!(u32).range(1..))]
    pub hash_passes: u32,

    /// Messages queued for the storage writer before more are answered "busy".
    #[arg(long, env = "CONFAB_WRITE_QUEUE", default_value_t = 8192, value_parser = clap::value_parser!(u32).range(1..))]
    pub write_queue: u32,

    /// Seconds to let clients flush and close at shutdown before dropping them.
    #[arg(long, env = "CONFAB_SHUTDOWN_TIMEOUT", default_value_t = 5)]
    pub shutdown_timeout: u64,

    /// Log level.
    #[arg(long, env = "CONFAB_LOG_LEVEL", value_enum, default_value_t = LogLevel::Info, global = true)]
    pub log_level: LogLevel,

    /// Append the log to this file instead of stderr.
    #[arg(long, env = "CONFAB_LOG_FILE", global = true)]
    pub log_file: Option<PathBuf>,

    /// Server name announced to clients.
    #[arg(long, env = "CONFAB_SERVER_NAME", default_value = "confab")]
    pub server_name: String,

    /// Serve TLS 1.3 with this certificate chain (PEM); needs --tls-key.
    #[arg(
        long,
        env = "CONFAB_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long,
        env = "CONFAB_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// Serve TLS 1.3 with a self-signed certificate kept in the data dir
    /// (created on first start for the listen address and localhost); its
    /// fingerprint is logged for clients to compare.
    #[arg(long, env = "CONFAB_TLS_SELF_SIGNED", conflicts_with = "tls_cert",
          action = ArgAction::SetTrue, value_parser = FalseyValueParser::new())]
    pub tls_self_signed: bool,

    /// Serve plaintext on an address other than loopback: passwords and
    /// messages cross the network unencrypted.
    #[arg(long, env = "CONFAB_INSECURE_PLAINTEXT", conflicts_with_all = ["tls_cert", "tls_self_signed"],
          action = ArgAction::SetTrue, value_parser = FalseyValueParser::new())]
    pub insecure_plaintext: bool,
}

/// A whole number of seconds, at least 1.
fn secs() -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(1..)
}

impl ServeArgs {
    /// The engine's configuration: the options above over its defaults.
    pub fn engine_config(&self) -> Config {
        let defaults = Config::default();
        Config {
            server_name: self.server_name.clone(),
            lockout: self.lockout_policy(),
            registration_open: self.registration == Registration::Open,
            max_frame: self
                .max_frame
                .unwrap_or_else(|| Config::default_max_frame(self.max_body)),
            max_frame_pre_auth: self.max_frame_pre_auth,
            max_body: self.max_body,
            groups_per_user: self.groups_per_user,
            members_per_group: self.members_per_group,
            max_groups: self.max_groups,
            history_page_max: self.history_page_max,
            max_inflight: self.max_inflight,
            roster_window: self.roster_window,
            roster_log: usize::try_from(self.roster_log).unwrap_or(usize::MAX),
            replay_max: usize::try_from(self.replay_max).unwrap_or(usize::MAX),
            msg_rate: self.msg_rate,
            msg_burst: self.msg_burst,
            byte_rate: self.byte_rate,
            byte_burst: self.byte_burst,
            min_frame_charge: self.min_frame_charge,
            registrations_per_source: RegistrationLimit {
                burst: self.register_source_burst,
                every: Duration::from_secs(self.register_source_every),
            },
            registrations_per_server: RegistrationLimit {
                burst: self.register_server_burst,
                every: Duration::from_secs(self.register_server_every),
            },
            pre_auth_burst: self.pre_auth_burst,
            pre_auth_rate: self.pre_auth_rate,
            flood_timeout: Duration::from_secs(self.flood_timeout),
            flood_penalty: Duration::from_secs(self.flood_penalty),
            send_queue_bytes: usize::try_from(self.send_queue_bytes).unwrap_or(usize::MAX),
            room_log_ids: usize::try_from(self.room_log_ids).unwrap_or(usize::MAX),
            auth_timeout: Duration::from_secs(self.auth_timeout),
            idle_timeout: Duration::from_secs(self.idle_timeout),
            frame_timeout: Duration::from_secs(self.frame_timeout),
            max_clients: self.max_clients,
            max_per_source: self.max_per_source,
            max_pre_auth_per_source: self.max_pre_auth_per_source,
            devices_per_user: self.devices_per_user,
            token_idle: Duration::from_secs(self.token_idle_days.saturating_mul(86_400)),
            dedup_window: Duration::from_secs(self.dedup_window_secs),
            dedup_per_device: self.dedup_per_device,
            read_markers_per_user: self.read_markers_per_user,
            ..defaults
        }
    }

    /// Checks the engine's configuration as a whole (limits that depend
    /// on each other, see [`Config::check`]); the error names the option,
    /// as clap's own range errors do.
    pub fn check(&self) -> Result<(), clap::Error> {
        self.engine_config().check().map_err(|e| {
            let field = match &e {
                ConfigError::OutOfRange { field, .. }
                | ConfigError::FrameTooSmall { field, .. } => field,
                _ => "a limit",
            };
            let option = field.replace('_', "-");
            Cli::command().error(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value for '--{option}': {e}"),
            )
        })
    }

    /// The retention to apply every minute, if any.
    pub fn retention(&self) -> Option<Retention> {
        let r = Retention {
            max_count: self.retention_count,
            max_age_secs: self.retention_days.map(|d| d.saturating_mul(86_400)),
        };
        (r != Retention::default()).then_some(r)
    }

    /// The lockout thresholds.
    pub fn lockout_policy(&self) -> lockout::Policy {
        lockout::Policy {
            after: self.lockout_after,
            account_after: self.lockout_account_after,
            lockout: Duration::from_secs(self.lockout_secs),
            ..lockout::Policy::default()
        }
    }

    /// The argon2id parameters for new hashes.
    pub fn hash_params(&self) -> HashParams {
        HashParams {
            memory_kib: self.hash_memory_kib,
            passes: self.hash_passes,
            ..HashParams::default()
        }
    }

    /// Whether TLS is asked for.
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some() || self.tls_self_signed
    }

    /// I/O threads: the option, or one per core.
    pub fn io_threads(&self) -> usize {
        match self.threads {
            Some(n) => usize::from(n),
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

#[cfg(test)]
mod tests;

/// A `#name` whose name is a confab name.
fn room_channel(s: &str) -> Result<String, String> {
    match s.strip_prefix('#').map(Name::new) {
        Some(Ok(_)) => Ok(s.to_owned()),
        _ => Err("an IRC channel is # and a name (A-Z a-z 0-9 _ - .)".to_owned()),
    }
}
