//! `confab-bench`: drives a real `confab-server` over loopback and measures
//! it (issue 9). See `confab-bench --help` and docs/PERFORMANCE.md.
//!
//! Every scenario is bounded in clients, messages and time, and stops by
//! itself; it prints a human summary on stderr and one JSON line on stdout.

mod ack_loop;
mod attack;
mod body;
mod conn;
mod counts;
mod drive;
mod fleet;
mod irc;
mod peers;
mod procfs;
mod relay;
mod rt;
mod scenarios;
mod suite;
mod table;
mod ws;

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::conn::{check_loopback, Connector, Result};

/// Load generator for confab-server (loopback only).
#[derive(Debug, Parser)]
#[command(name = "confab-bench", version, max_term_width = 100)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// N clients in the room, S of them sending M messages of B bytes:
    /// delivery throughput, loss, latency, server CPU per delivery.
    Fanout(FanoutArgs),
    /// N idle logged-in connections: connect+login time, server RSS per
    /// connection, optionally one room message to all of them.
    Conns(ConnsArgs),
    /// Acknowledged messages/s and ACK latency (durable storage) at several
    /// numbers of concurrent senders.
    Storage(StorageArgs),
    /// Latency of well-behaved clients while flooders and slowloris
    /// connections attack.
    Abuse(AbuseArgs),
    /// One flood class of issue 15 (refused-connection storm, pre-auth
    /// flood, unknown-frame flood, registration spam) against well-behaved
    /// clients, or with --off the same scenario without the attack.
    Attack(AttackArgs),
    /// The server's RSS after sequential logins (default password hashing
    /// is what it is about: run the server without cheap hashing).
    Logins(LoginsArgs),
    /// Builds nothing: starts the given confab-server for each scenario run
    /// (fresh data dir, limits raised as needed), runs every scenario 3
    /// times and reports the medians. `bench/run.sh` builds and calls this.
    Suite(suite::SuiteArgs),
    /// A minimal relay server (issue 17's floor): one epoll thread that
    /// logs anyone in and writes each room message once per recipient,
    /// storing and checking nothing. Serves until killed.
    Relay(relay::RelayArgs),
}

/// Options every scenario takes.
#[derive(Debug, Clone, Args)]
pub(crate) struct Common {
    /// Server host (must be loopback).
    #[arg(long, default_value = "127.0.0.1")]
    pub(crate) host: String,
    /// Server port.
    #[arg(long)]
    pub(crate) port: u16,
    /// The server's pid, to read its CPU time and memory from /proc.
    #[arg(long)]
    pub(crate) server_pid: Option<u32>,
    /// Send SIGUSR2 to --server-pid at the start and the end of fanout's
    /// measured window: confab-server then logs its counters (lock holds,
    /// wake-ups, writes), which the suite reports per delivery. Only for
    /// confab-server: the signal's default action ends other processes.
    #[arg(long, requires = "server_pid")]
    pub(crate) server_counters: bool,
    /// Load-generator threads.
    #[arg(long, default_value_t = 2)]
    pub(crate) threads: usize,
    /// Logins in flight at once.
    #[arg(long, default_value_t = 128)]
    pub(crate) login_concurrency: usize,
    /// Seconds one client may take to connect and log in.
    #[arg(long, default_value_t = 60)]
    pub(crate) login_timeout: u64,
    /// Connect over TLS 1.3 (with --tls-ca or --insecure-skip-tls-verify).
    #[arg(long)]
    pub(crate) tls: bool,
    /// For --tls: trust this CA certificate (PEM), e.g. the server's
    /// self-signed tls-cert.pem; implies --tls.
    #[arg(long)]
    pub(crate) tls_ca: Option<PathBuf>,
    /// For --tls: accept any server certificate. Benchmarks against a
    /// throwaway local server only: nothing is authenticated.
    #[arg(long)]
    pub(crate) insecure_skip_tls_verify: bool,
    /// The protocol the clients speak: confab, or IRC (for issue 17's
    /// comparison with IRC servers; fanout only, plain TCP).
    #[arg(long, value_enum, default_value_t = Protocol::Confab)]
    pub(crate) protocol: Protocol,
    /// How the clients reach the server: TCP (or TLS), or the WebSocket
    /// at /ws of a server's --web-listen port (give that port as --port;
    /// wss with --tls).
    #[arg(long, value_enum, default_value_t = Transport::Tcp)]
    pub(crate) transport: Transport,
}

/// How the bench's clients carry their bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Transport {
    /// TCP, or TLS over it.
    Tcp,
    /// A WebSocket (subprotocol confab.v2) over TCP or TLS.
    Ws,
}

/// A wire protocol of the bench's clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Protocol {
    /// confab's binary protocol, version 1.
    Confab,
    /// IRC (RFC 1459/2812): NICK, USER, JOIN #bench, PRIVMSG.
    Irc,
}

impl Common {
    pub(crate) fn addr(&self) -> Result<SocketAddr> {
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| conn::Error(format!("cannot resolve {}: {e}", self.host)))?
            .next()
            .ok_or_else(|| conn::Error(format!("{} resolves to nothing", self.host)))?;
        check_loopback(&addr)?;
        Ok(addr)
    }

    pub(crate) fn connector(&self) -> Result<Connector> {
        let base = if !self.tls && self.tls_ca.is_none() && !self.insecure_skip_tls_verify {
            Connector::Tcp
        } else {
            Connector::tls(
                &self.host,
                self.tls_ca.as_deref(),
                self.insecure_skip_tls_verify,
            )?
        };
        Ok(match self.transport {
            Transport::Tcp => base,
            Transport::Ws => Connector::Ws(Box::new(base)),
        })
    }

    pub(crate) fn login_timeout(&self) -> Duration {
        Duration::from_secs(self.login_timeout)
    }
}

#[derive(Debug, Clone, Args)]
pub(crate) struct FanoutArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Clients in the room.
    #[arg(long, default_value_t = 100)]
    pub(crate) clients: u32,
    /// How many of them send.
    #[arg(long, default_value_t = 10)]
    pub(crate) senders: u32,
    /// Messages per sender.
    #[arg(long, default_value_t = 1000)]
    pub(crate) messages: u32,
    /// Body bytes (at least 32: the send time and sequence number).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(32..))]
    pub(crate) size: u16,
    /// Messages per second in total (all senders); default: as fast as
    /// the server takes them (window-bounded).
    #[arg(long)]
    pub(crate) rate: Option<f64>,
    /// Un-acknowledged SENDs per sender.
    #[arg(long, default_value_t = 64)]
    pub(crate) window: usize,
    /// Seconds to wait for every delivery after the start.
    #[arg(long, default_value_t = 60)]
    pub(crate) timeout: u64,
    /// Other nodes of a cluster (same host): the receivers connect to
    /// these ports in turn, the senders to --port, so every delivery
    /// crosses the bus (docs/SCALING.md).
    #[arg(long, value_delimiter = ',')]
    pub(crate) receiver_ports: Vec<u16>,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct ConnsArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Idle connections.
    #[arg(long, default_value_t = 1000)]
    pub(crate) clients: u32,
    /// Source addresses 127.0.0.1 .. 127.0.0.K to spread the connections
    /// over (each client binds 127.0.0.(1 + i % K) before connecting).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u8).range(1..=254))]
    pub(crate) sources: u8,
    /// Then one extra client sends a room message that must reach all N.
    #[arg(long)]
    pub(crate) broadcast: bool,
    /// Seconds for all connections to log in (and for the broadcast).
    #[arg(long, default_value_t = 120)]
    pub(crate) timeout: u64,
    /// Seconds to let the server settle before reading its RSS.
    #[arg(long, default_value_t = 1)]
    pub(crate) settle: u64,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct StorageArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Concurrency levels: numbers of senders, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
    pub(crate) senders: Vec<u32>,
    /// Messages per sender at each level.
    #[arg(long, default_value_t = 1000)]
    pub(crate) messages: u32,
    /// Un-acknowledged SENDs per sender (1: each waits for its ACK).
    #[arg(long, default_value_t = 1)]
    pub(crate) window: usize,
    /// Body bytes.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(32..))]
    pub(crate) size: u16,
    /// Send to the room instead of to oneself (adds fan-out to the senders).
    #[arg(long)]
    pub(crate) room: bool,
    /// SEND2 from a device (protocol version 2's exactly-once path: the
    /// send's key is stored with the message) instead of SEND; plain TCP.
    #[arg(long)]
    pub(crate) send2: bool,
    /// Seconds per level.
    #[arg(long, default_value_t = 120)]
    pub(crate) timeout: u64,
}

/// The well-behaved clients of `abuse` and `attack`: paced room
/// messages from 127.0.0.1, latency measured.
#[derive(Debug, Clone, Args)]
pub(crate) struct WellBehaved {
    /// Well-behaved clients.
    #[arg(long, default_value_t = 20)]
    pub(crate) clients: u32,
    /// Messages per second each well-behaved client sends.
    #[arg(long, default_value_t = 5.0)]
    pub(crate) rate: f64,
    /// Body bytes.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(32..))]
    pub(crate) size: u16,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct AbuseArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) good: WellBehaved,
    /// Logged-in clients sending room messages as fast as they can
    /// (reconnecting when disconnected).
    #[arg(long, default_value_t = 50)]
    pub(crate) flooders: u32,
    /// Connections that send half a frame and hold it (reconnecting when
    /// the server closes them).
    #[arg(long, default_value_t = 200)]
    pub(crate) slowloris: u32,
    /// Seconds of measured sending.
    #[arg(long, default_value_t = 20)]
    pub(crate) duration: u64,
    /// Seconds the attack runs before the measurement starts.
    #[arg(long, default_value_t = 2)]
    pub(crate) warmup: u64,
    /// Seconds to wait for the last deliveries after sending ends.
    #[arg(long, default_value_t = 30)]
    pub(crate) timeout: u64,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct AttackArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// The flood.
    #[arg(value_enum)]
    pub(crate) kind: attack::Kind,
    /// Run the scenario without the attacker (the comparison run).
    #[arg(long)]
    pub(crate) off: bool,
    /// Attacking connections (storm: connecting tasks) [default: storm 1,
    /// pre-auth 4, unknown-frame 4, register 32].
    #[arg(long)]
    pub(crate) attackers: Option<u32>,
    /// The attacker's source address (loopback).
    #[arg(long, default_value = "127.0.0.2")]
    pub(crate) attack_source: IpAddr,
    /// The probe's source address (loopback), for the attacks on logins.
    #[arg(long, default_value = "127.0.0.3")]
    pub(crate) probe_source: IpAddr,
    #[command(flatten)]
    pub(crate) good: WellBehaved,
    /// Idle logged-in users besides the well-behaved clients (to fill the
    /// server for the storm), from 127.0.1.1 .. 127.0.1.8.
    #[arg(long, default_value_t = 0)]
    pub(crate) fillers: u32,
    /// How many of the fillers leave when the measurement starts.
    #[arg(long, default_value_t = 0)]
    pub(crate) leave: u32,
    /// Storm: milliseconds between two connection attempts.
    #[arg(long, default_value_t = 4)]
    pub(crate) interval_ms: u64,
    /// Storm: milliseconds each connection is held open (unread) before
    /// it is dropped.
    #[arg(long, default_value_t = 2000)]
    pub(crate) hold_ms: u64,
    /// Milliseconds between the end of one probe login and the next.
    #[arg(long, default_value_t = 100)]
    pub(crate) probe_pause_ms: u64,
    /// Seconds of measured sending (the attack runs throughout).
    #[arg(long, default_value_t = 10)]
    pub(crate) duration: u64,
    /// Seconds the attack runs before the measurement starts.
    #[arg(long, default_value_t = 2)]
    pub(crate) warmup: u64,
    /// Seconds to wait for the last deliveries after the attack stopped.
    #[arg(long, default_value_t = 30)]
    pub(crate) timeout: u64,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct LoginsArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Numbers of sequential logins after which the server's RSS is read,
    /// comma-separated; the last is the total.
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000")]
    pub(crate) checkpoints: Vec<u64>,
}

/// Runs one scenario (not `suite`) and returns its JSON object.
pub(crate) fn scenario(command: Command) -> Result<serde_json::Value> {
    let common = match &command {
        Command::Fanout(a)
            if (a.common.tls || a.common.transport == Transport::Ws)
                && a.common.protocol == Protocol::Irc =>
        {
            return Err(conn::Error("--protocol irc is plain TCP only".into()))
        }
        Command::Fanout(_) => None,
        Command::Conns(ConnsArgs { common, .. })
        | Command::Storage(StorageArgs { common, .. })
        | Command::Abuse(AbuseArgs { common, .. })
        | Command::Attack(AttackArgs { common, .. })
        | Command::Logins(LoginsArgs { common, .. }) => Some(common),
        Command::Suite(_) | Command::Relay(_) => None,
    };
    if common.is_some_and(|c| c.protocol != Protocol::Confab) {
        return Err(conn::Error(
            "--protocol irc is for fanout only (the other scenarios need confab's storage, groups or logins)".into(),
        ));
    }
    match command {
        Command::Fanout(a) => scenarios::fanout(&a),
        Command::Conns(a) => scenarios::conns(&a),
        Command::Storage(a) => scenarios::storage(&a),
        Command::Abuse(a) => scenarios::abuse(&a),
        Command::Attack(a) => attack::attack(&a),
        Command::Logins(a) => attack::logins(&a),
        Command::Suite(_) => Err(conn::Error("a suite cannot run inside a suite".into())),
        Command::Relay(_) => Err(conn::Error("the relay is a server, not a scenario".into())),
    }
}

/// Runs one parsed command, printing its JSON line(s) on stdout.
pub(crate) fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Suite(a) => suite::run(&a).map(drop),
        Command::Relay(a) => relay::run(&a),
        command => {
            println!("{}", scenario(command)?);
            Ok(())
        }
    }
}

/// A short id for this run's account names (`b<run>-<i>`), unique enough
/// across runs against the same data dir.
pub(crate) fn run_id() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let x = t ^ (u64::from(std::process::id()) << 32);
    format!("{:06x}", (x ^ (x >> 24)) & 0xff_ffff)
}

/// `127.0.0.(1 + i % k)`.
pub(crate) fn source(i: u32, k: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, 1 + (i % u32::from(k)) as u8])
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    procfs::raise_nofile();
    match run(cli) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("confab-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn tls_needs_a_way_to_trust_and_only_loopback_is_accepted() {
        let cli = Cli::try_parse_from(["confab-bench", "fanout", "--port", "1", "--tls"])
            .expect("parses");
        let Command::Fanout(a) = cli.command else {
            panic!("fanout")
        };
        let e = a.common.connector().expect_err("no CA, no insecure flag");
        assert!(e.to_string().contains("--tls-ca"), "{e}");
        let mut c = a.common.clone();
        c.insecure_skip_tls_verify = true;
        assert!(matches!(c.connector(), Ok(Connector::Tls(..))));
        c.tls_ca = Some("/nonexistent.pem".into());
        assert!(c.connector().is_err(), "a CA and no verification at once");
        let mut c = a.common.clone();
        c.host = "10.0.0.1".into();
        assert!(c.addr().is_err());
        c.host = "127.0.0.1".into();
        assert!(c.addr().is_ok());
    }

    #[test]
    fn sources_cycle_over_loopback() {
        assert_eq!(source(0, 16), IpAddr::from([127, 0, 0, 1]));
        assert_eq!(source(17, 16), IpAddr::from([127, 0, 0, 2]));
        assert!(source(253, 254).is_loopback());
    }
}
