//! What a server is started with ([`ServerOptions`]) and why it may fail
//! to start ([`StartError`]); split from `server.rs`, which runs it.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use confab_engine::irc::IrcConfig;
use confab_engine::Config;

use crate::auth::{HashError, HashParams};
use crate::store::sqlite::StoredSanction;
use crate::store::{Retention, StoreError};
use crate::web::WebOptions;

/// Everything the server needs besides storage.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Where to listen; port 0 picks one.
    pub listen: SocketAddr,
    /// I/O threads (at least 1).
    pub threads: usize,
    /// The engine's limits.
    pub engine: Config,
    /// Password-hashing threads.
    pub auth_threads: usize,
    /// Logins waiting for a hashing thread.
    pub auth_queue: usize,
    /// Of those, from one source address.
    pub auth_queue_per_source: usize,
    /// Cost of new password hashes.
    pub hash: HashParams,
    /// Messages and group changes waiting for the writer.
    pub write_queue: usize,
    /// History and replay threads.
    pub read_threads: usize,
    /// History and replay loads waiting for a reader.
    pub read_queue: usize,
    /// Applied every minute, if set.
    pub retention: Option<Retention>,
    /// How long connections get to flush and close at shutdown.
    pub shutdown_timeout: Duration,
    /// Serve TLS with this configuration (see [`crate::tls`]); `None`: plain TCP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Log the [`Counters`](crate::counters::Counters) at each SIGUSR2 (the
    /// binary does; a server embedded in a test process leaves the signal
    /// alone).
    pub counters_on_signal: bool,
    /// Serve the browser client and its WebSocket here too (see [`crate::web`]).
    pub web: Option<WebOptions>,
    /// Also serve IRC here (see `confab_engine::irc`).
    pub irc_listen: Option<SocketAddr>,
    /// The IRC gateway's settings.
    pub irc: IrcConfig,
    /// Serve the control socket in this directory (see [`crate::control`]).
    pub control_dir: Option<std::path::PathBuf>,
    /// Bans and mutes in force at start (from the database).
    pub sanctions: Vec<StoredSanction>,
    /// The address bans stored, put in force at start.
    pub address_bans: Vec<crate::store::sqlite::StoredAddressBan>,
    /// The server operators at start (from the database).
    pub operators: Vec<confab_engine::Name>,
    /// Serve Prometheus metrics here (see [`crate::metrics`]).
    pub metrics_listen: Option<SocketAddr>,
    /// Where new TLS handshakes take their configuration from, if a
    /// reload may replace it (then it wins over `tls`).
    pub tls_slot: Option<Arc<crate::tls::TlsSlot>>,
    /// What SIGHUP and `confab-server reload` run (see [`crate::reload`]).
    pub reloader: Option<Arc<dyn crate::reload::Reload>>,
    /// One node of several: PostgreSQL and the bus (see `cluster`);
    /// `None`, a single node.
    pub cluster: Option<crate::cluster::ClusterOptions>,
}

impl Default for ServerOptions {
    /// 127.0.0.1 on a free port, 2 threads of each kind, engine defaults.
    fn default() -> ServerOptions {
        ServerOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            threads: 2,
            engine: Config::default(),
            auth_threads: 2,
            auth_queue: 256,
            auth_queue_per_source: 16,
            hash: HashParams::default(),
            write_queue: 8192,
            read_threads: 2,
            read_queue: 256,
            retention: None,
            shutdown_timeout: Duration::from_secs(5),
            tls: None,
            counters_on_signal: false,
            web: None,
            irc_listen: None,
            irc: IrcConfig::default(),
            control_dir: None,
            sanctions: Vec::new(),
            address_bans: Vec::new(),
            operators: Vec::new(),
            metrics_listen: None,
            tls_slot: None,
            reloader: None,
            cluster: None,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Storage could not be opened or loaded.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The password-hash parameters are unusable.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// A thread could not be started.
    #[error("cannot start a thread: {0}")]
    Thread(io::Error),
    /// The cluster's part could not start.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    /// The hub has no room for the IRC gateway's protocols.
    #[error("the hub speaks too many protocols to add IRC")]
    Protocols,
    /// The control socket could not be bound.
    #[error("cannot open the control socket in {}: {source}", dir.display())]
    Control {
        /// The data dir.
        dir: std::path::PathBuf,
        /// Why.
        source: io::Error,
    },
}
