//! `--metrics-listen ADDR`: Prometheus text exposition at `GET /metrics`,
//! encoded by prometheus-client, served by a minimal HTTP/1.1 responder
//! (httparse reads the request; one response, then close).
//!
//! Two sources: what the hub counts and holds ([`confab_engine::HubCounts`],
//! [`confab_engine::HubStats`], read under the lock at each scrape), and
//! what the shell measures itself in [`NET`] (storage commit latency and
//! batch size, password-hash latency, connections accepted and refused, TLS
//! handshakes by outcome). `NET` is process-wide, like the process's
//! memory and CPU: the worker threads see only their inbox, never the
//! hub's `Shared`, and a histogram is its own lock-free aggregate. No label
//! takes a value a client chooses (no names); only fixed sets (outcome,
//! conversation kind, error code).

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use confab_engine::frame::ErrorCode;
use confab_engine::hub::{code_index, KINDS};
use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};
use log::{info, warn};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use crate::measures::NET;
use crate::shared::Shared;

/// The bound metrics listener.
pub struct Listener {
    listener: Async<TcpListener>,
    addr: SocketAddr,
}

impl Listener {
    /// The address bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Binds `addr` for `/metrics`.
pub fn bind(addr: SocketAddr) -> io::Result<Listener> {
    let listener = Async::<TcpListener>::bind(addr)?;
    let addr = listener.get_ref().local_addr()?;
    Ok(Listener { listener, addr })
}

/// The largest request read.
const MAX_REQUEST: usize = 8192;
/// How long a scrape may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Serves scrapes until dropped, one at a time (Prometheus scrapes
/// rarely; a slow client only delays the next scrape, up to [`TIMEOUT`]).
pub(crate) async fn serve(listener: Listener, shared: Arc<Shared>, started: Instant) {
    info!("metrics served at http://{}/metrics", listener.addr);
    let collector = Arc::new(HubCollector { shared, started });
    let mut registry = Registry::default();
    register_net(&mut registry);
    registry.register_collector(Box::new(collector));
    loop {
        let stream = match listener.listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                warn!("metrics: accepting failed: {e}");
                Timer::after(Duration::from_millis(100)).await;
                continue;
            }
        };
        let answered = respond(stream, &registry)
            .or(async {
                Timer::after(TIMEOUT).await;
                Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"))
            })
            .await;
        if let Err(e) = answered {
            warn!("metrics: {e}");
        }
    }
}

async fn respond(stream: Async<TcpStream>, registry: &Registry) -> io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let path = loop {
        let n = (&stream).read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                let openmetrics = request.headers.iter().any(|h| {
                    h.name.eq_ignore_ascii_case("accept")
                        && String::from_utf8_lossy(h.value).contains("application/openmetrics-text")
                });
                break (request.method == Some("GET"))
                    .then(|| (request.path.unwrap_or("").to_owned(), openmetrics));
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST => continue,
            Ok(httparse::Status::Partial) | Err(_) => break None,
        }
    };
    let (status, content_type, body) = match path.as_ref().map(|(p, o)| (p.as_str(), *o)) {
        Some(("/metrics", openmetrics)) => {
            let mut body = String::new();
            match prometheus_client::encoding::text::encode(&mut body, registry) {
                Ok(()) if openmetrics => (
                    "200 OK",
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    body,
                ),
                Ok(()) => (
                    "200 OK",
                    "text/plain; version=0.0.4; charset=utf-8",
                    classic_text(&body),
                ),
                Err(_) => (
                    "500 Internal Server Error",
                    "text/plain",
                    "encoding failed\n".to_owned(),
                ),
            }
        }
        Some(_) => (
            "404 Not Found",
            "text/plain",
            "only /metrics is here\n".to_owned(),
        ),
        None => (
            "400 Bad Request",
            "text/plain",
            "a GET request, please\n".to_owned(),
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut writer = &stream;
    writer.write_all(head.as_bytes()).await?;
    writer.write_all(body.as_bytes()).await?;
    writer.flush().await
}

/// OpenMetrics text as the classic Prometheus text format (0.0.4), for
/// scrapers that do not ask for OpenMetrics (and for `promtool check
/// metrics`, which reads only the classic one): a counter family's HELP
/// and TYPE carry its samples' `_total` name, and UNIT and EOF lines go.
fn classic_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 16 * counters.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let rewritten = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(rewritten.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

fn register_net(registry: &mut Registry) {
    let net = &*NET;
    registry.register_with_unit(
        "confab_storage_commit_duration",
        "Time one storage group commit took",
        Unit::Seconds,
        net.commit_seconds.clone(),
    );
    registry.register(
        "confab_storage_commit_batch_writes",
        "Writes in one storage group commit",
        net.commit_batch.clone(),
    );
    registry.register_with_unit(
        "confab_auth_hash_duration",
        "Time one password check or hash took",
        Unit::Seconds,
        net.hash_seconds.clone(),
    );
}

/// What the hub and the shell hold, read at each scrape.
#[derive(Debug)]
struct HubCollector {
    shared: Arc<Shared>,
    started: Instant,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shared")
    }
}

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    v: i64,
) -> std::fmt::Result {
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, unit, g.metric_type())?)
}

/// A counter with one label taking each of a fixed set of values.
fn counters<'a>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &'static str,
    values: impl IntoIterator<Item = (&'a str, u64)>,
) -> std::fmt::Result {
    let mut family = e.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Counter,
    )?;
    for (value, n) in values {
        let labels = [(label, value)];
        ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Every error code the server sends, with its protocol name.
const CODES: &[(ErrorCode, &str)] = &[
    (ErrorCode::MalformedFrame, "MALFORMED_FRAME"),
    (ErrorCode::FrameTooLarge, "FRAME_TOO_LARGE"),
    (ErrorCode::UnsupportedVersion, "UNSUPPORTED_VERSION"),
    (ErrorCode::WrongState, "WRONG_STATE"),
    (ErrorCode::UnknownFrameType, "UNKNOWN_FRAME_TYPE"),
    (ErrorCode::BadCredentials, "BAD_CREDENTIALS"),
    (ErrorCode::NameTaken, "NAME_TAKEN"),
    (ErrorCode::RegistrationClosed, "REGISTRATION_CLOSED"),
    (ErrorCode::LockedOut, "LOCKED_OUT"),
    (ErrorCode::NoDevice, "NO_DEVICE"),
    (ErrorCode::TooManyDevices, "TOO_MANY_DEVICES"),
    (ErrorCode::NoSuchUser, "NO_SUCH_USER"),
    (ErrorCode::NoSuchGroup, "NO_SUCH_GROUP"),
    (ErrorCode::GroupExists, "GROUP_EXISTS"),
    (ErrorCode::NotAMember, "NOT_A_MEMBER"),
    (ErrorCode::AlreadyMember, "ALREADY_MEMBER"),
    (ErrorCode::TooManyGroups, "TOO_MANY_GROUPS"),
    (ErrorCode::GroupFull, "GROUP_FULL"),
    (ErrorCode::BadBody, "BAD_BODY"),
    (ErrorCode::ServerGroupsFull, "SERVER_GROUPS_FULL"),
    (ErrorCode::NoSuchDevice, "NO_SUCH_DEVICE"),
    (ErrorCode::RateLimited, "RATE_LIMITED"),
    (ErrorCode::Busy, "BUSY"),
    (ErrorCode::TooManyConnections, "TOO_MANY_CONNECTIONS"),
    (ErrorCode::AuthTimeout, "AUTH_TIMEOUT"),
    (ErrorCode::IdleTimeout, "IDLE_TIMEOUT"),
    (ErrorCode::FrameTimeout, "FRAME_TIMEOUT"),
    (ErrorCode::SlowConsumer, "SLOW_CONSUMER"),
    (ErrorCode::Flooding, "FLOODING"),
    (ErrorCode::DeviceRevoked, "DEVICE_REVOKED"),
    (ErrorCode::StorageError, "STORAGE_ERROR"),
    (ErrorCode::Kicked, "KICKED"),
    (ErrorCode::Banned, "BANNED"),
    (ErrorCode::Muted, "MUTED"),
    (ErrorCode::NotOperator, "NOT_OPERATOR"),
];

impl Collector for HubCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (counts, stats) = self
            .shared
            .with_core(|core, now| (core.hub.counts().clone(), core.hub.stats(now)));
        let net = &*NET;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let i64_of = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let effects = &self.shared.effects;

        counters(
            &mut e,
            "confab_connections",
            "Connections at accept, by outcome",
            "outcome",
            [
                ("accepted", load(&net.accepted)),
                ("refused", load(&net.refused)),
            ],
        )?;
        gauge(
            &mut e,
            "confab_connections_open",
            "Connections the hub holds",
            None,
            i64::from(stats.connections),
        )?;
        gauge(
            &mut e,
            "confab_sessions_logged_in",
            "Connections logged in",
            None,
            i64::from(stats.logged_in),
        )?;
        gauge(
            &mut e,
            "confab_users_online",
            "Users with a session here",
            None,
            stats.sessions_per_user.len() as i64,
        )?;
        let mut logins = vec![("ok", counts.logins_ok)];
        logins.extend(
            CODES
                .iter()
                .map(|&(code, name)| (name, counts.logins_refused[code_index(code)]))
                .filter(|&(_, n)| n > 0),
        );
        counters(
            &mut e,
            "confab_logins",
            "Logins checked, by outcome (ok or the error code)",
            "outcome",
            logins,
        )?;
        counters(
            &mut e,
            "confab_errors_sent",
            "ERRORs sent to clients, by code (rate limits, floods, ...)",
            "code",
            CODES
                .iter()
                .map(|&(code, name)| (name, counts.errors[code_index(code)])),
        )?;
        counters(
            &mut e,
            "confab_rate_limit_events",
            "Sessions paused for their rate limit or closed for flooding",
            "kind",
            [
                ("paused", counts.errors[code_index(ErrorCode::RateLimited)]),
                ("flooding", counts.errors[code_index(ErrorCode::Flooding)]),
            ],
        )?;
        counters(
            &mut e,
            "confab_messages_stored",
            "Messages committed, by conversation kind",
            "kind",
            KINDS.iter().copied().zip(counts.committed),
        )?;
        counters(
            &mut e,
            "confab_messages_delivered",
            "Messages handed to writers, by conversation kind",
            "kind",
            KINDS.iter().copied().zip(counts.delivered),
        )?;
        counter(
            &mut e,
            "confab_messages_dropped_slow_consumer",
            "Messages dropped from slow readers' queues (reported by MISSED)",
            counts.dropped,
        )?;
        gauge(
            &mut e,
            "confab_send_queue",
            "Bytes queued for all sessions",
            Some(&Unit::Bytes),
            i64_of(stats.queued_bytes),
        )?;
        gauge(
            &mut e,
            "confab_send_queue_deepest",
            "Bytes queued for the most behind session",
            Some(&Unit::Bytes),
            i64_of(stats.deepest_queue),
        )?;
        gauge(
            &mut e,
            "confab_storage_write_queue_jobs",
            "Writes waiting for the storage writer",
            None,
            effects.writes.len() as i64,
        )?;
        gauge(
            &mut e,
            "confab_storage_read_queue_jobs",
            "Loads waiting for a storage reader",
            None,
            effects.reads.len() as i64,
        )?;
        gauge(
            &mut e,
            "confab_auth_queue_jobs",
            "Logins waiting for a hashing thread",
            None,
            effects.auth.len() as i64,
        )?;
        let (pairs, accounts, addresses) = stats.lockouts;
        {
            let mut family = e.encode_descriptor(
                "confab_lockout_entries",
                "Failed-login records held, by what they key",
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for (key, n) in [
                ("pair", pairs),
                ("account", accounts),
                ("address", addresses),
            ] {
                ConstGauge::new(n as i64).encode(family.encode_family(&[("key", key)])?)?;
            }
        }
        gauge(
            &mut e,
            "confab_bans",
            "Bans in force",
            None,
            stats.bans as i64,
        )?;
        gauge(
            &mut e,
            "confab_address_bans",
            "Bans of address blocks in force",
            None,
            stats.address_bans as i64,
        )?;
        gauge(
            &mut e,
            "confab_mutes",
            "Mutes in force",
            None,
            stats.mutes as i64,
        )?;
        counters(
            &mut e,
            "confab_tls_handshakes",
            "TLS handshakes, by outcome",
            "outcome",
            [
                ("ok", load(&net.tls_ok)),
                ("failed", load(&net.tls_failed)),
                ("timeout", load(&net.tls_timeout)),
            ],
        )?;
        gauge(
            &mut e,
            "confab_uptime",
            "Seconds since the server started",
            Some(&Unit::Seconds),
            self.started.elapsed().as_secs() as i64,
        )?;
        process(&mut e)
    }
}

/// `process_resident_memory_bytes` and `process_cpu_seconds_total`, from
/// /proc (Linux; elsewhere they are left out).
fn process(e: &mut DescriptorEncoder) -> std::fmt::Result {
    use prometheus_client::metrics::MetricType;
    if let Some(kib) = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse::<i64>().ok()
        })
    {
        let g = ConstGauge::new(kib.saturating_mul(1024));
        g.encode(e.encode_descriptor(
            "process_resident_memory",
            "Resident memory size",
            Some(&Unit::Bytes),
            MetricType::Gauge,
        )?)?;
    }
    if let Some(ticks) = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // The fields after the command name, which is in parentheses.
            let rest = &s[s.rfind(')')? + 1..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            // utime and stime are fields 14 and 15 of stat(5), 12 and 13 here.
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
    {
        let c = ConstCounter::new(ticks as f64 / clock_ticks());
        c.encode(e.encode_descriptor(
            "process_cpu",
            "User and system CPU time spent",
            Some(&Unit::Seconds),
            MetricType::Counter,
        )?)?;
    }
    Ok(())
}

/// Clock ticks per second, in which /proc/self/stat counts CPU time.
fn clock_ticks() -> f64 {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: sysconf only reads a constant of the C library.
        let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if t > 0 {
            return t as f64;
        }
    }
    100.0
}
