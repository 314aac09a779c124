//! The flood classes of issue 15, one attack each, measured the same way:
//! well-behaved clients on 127.0.0.1 send paced room messages (their
//! delivery latency is the figure), an attacker on another loopback address
//! (`--attack-source`) floods, and where the attack is on logins a probe
//! from a third address (`--probe-source`) connects and logs in again and
//! again (its success and connect+login latency are the figure). `--off`
//! runs the very same scenario without the attacker, for the comparison;
//! the suite interleaves the two.
//!
//! Every attacker is a task of the run's executor: it stops when the
//! measured phase ends (its task is dropped, closing its sockets), and
//! everything it holds is bounded (connections held by the storm, frames
//! in one write).
//!
//! `logins` is apart: one account logging in 1,000 times in a row with the
//! server's default password hashing, the server's RSS read at checkpoints
//! (issue 15, must-show 3).

use std::collections::VecDeque;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use async_io::Timer;
use confab_engine::frame::{ErrorCode, Text, PROTOCOL_VERSION};
use confab_engine::{Frame, Name, Ref, Target};
use futures_lite::io::AsyncWrite;
use futures_lite::{future, AsyncWriteExt};
use serde_json::{json, Value};

use crate::conn::{self, encode_send, err, Connector, Error, Login, Reader, Result, Stamp, Stream};
use crate::drive::Role;
use crate::fleet::{Fleet, Member};
use crate::procfs::{peak_rss_bytes, rss_bytes, CpuMark};
use crate::rt::{self, describe, now_ns, summary, timeout};
use crate::scenarios::{all_ready, login_of, merge, mib, name, spawn_paced_senders, PASSWORD};
use crate::{run_id, AttackArgs, LoginsArgs};

/// Which flood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Kind {
    /// One address opens a TCP connection every `--interval-ms` and holds
    /// it (each is refused: the server is full), while a probe from a third
    /// address logs in again and again into the slots left by departed
    /// users.
    Storm,
    /// Connections that say HELLO and then send PINGs (even ones) or
    /// wrong-state SENDs (odd ones) as fast as the socket takes them,
    /// never logging in.
    PreAuth,
    /// Logged-in clients sending 60 KB frames of an unknown type (0x7e) as
    /// fast as the socket takes them.
    UnknownFrame,
    /// Connections registering new accounts back to back, while a probe
    /// from a third address logs in again and again.
    Register,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Storm => "storm",
            Kind::PreAuth => "pre-auth",
            Kind::UnknownFrame => "unknown-frame",
            Kind::Register => "register",
        }
    }

    /// Attacking connections when `--attackers` is not given.
    fn default_attackers(self) -> u32 {
        match self {
            Kind::Storm => 1,
            Kind::PreAuth | Kind::UnknownFrame => 4,
            Kind::Register => 32,
        }
    }

    /// Whether the probe logs in again and again during the attack.
    fn probes(self) -> bool {
        matches!(self, Kind::Storm | Kind::Register)
    }
}

/// The frame type no version of the protocol uses (the unknown-frame flood).
const UNKNOWN_TYPE: u8 = 0x7e;
/// Payload of one unknown frame: under the logged-in 64 KiB frame limit.
const UNKNOWN_PAYLOAD: usize = 60_000;
/// Connections the storm holds open at once at most.
const STORM_HELD_MAX: usize = 2000;
/// An attacker's write-and-read loop yields to the executor after this many
/// rounds of progress, so that it cannot starve the well-behaved clients
/// sharing the bench's threads.
const ROUNDS_PER_POLL: usize = 16;

/// What the attackers saw, summed over them.
#[derive(Debug, Default)]
pub(crate) struct AttackStats {
    /// TCP connections made.
    connects: AtomicU64,
    /// Connection attempts that failed (refused by the kernel, timed out).
    connect_errors: AtomicU64,
    /// Connections the server ended (EOF or reset).
    closed: AtomicU64,
    /// Logins of the logged-in attackers (first ones and after a close).
    logins: AtomicU64,
    /// Bytes the server took from the attackers.
    bytes_out: AtomicU64,
    /// Bytes the server sent them.
    bytes_in: AtomicU64,
    /// Frames the server sent them.
    frames_in: AtomicU64,
    /// ERROR RATE_LIMITED received.
    rate_limited: AtomicU64,
    /// Fatal ERRORs received.
    fatal: AtomicU64,
    /// Other ERRORs received.
    other_errors: AtomicU64,
    /// Accounts registered (OK answers to REGISTER).
    registered: AtomicU64,
    /// REGISTERs refused with an ERROR.
    register_refused: AtomicU64,
    /// The first few distinct error texts.
    notes: Mutex<Vec<String>>,
}

impl AttackStats {
    fn note(&self, e: impl std::fmt::Display) {
        let e = e.to_string();
        if let Ok(mut v) = self.notes.lock() {
            if v.len() < 10 && !v.contains(&e) {
                v.push(e);
            }
        }
    }

    /// Counts one frame from the server.
    fn saw(&self, frame: &Frame<'_>) {
        self.frames_in.fetch_add(1, Relaxed);
        if let Frame::Error { code, text, .. } = frame {
            if *code == ErrorCode::RateLimited {
                self.rate_limited.fetch_add(1, Relaxed);
            } else if code.is_fatal() {
                self.fatal.fetch_add(1, Relaxed);
                self.note(format!("{code:?}: {}", text.as_str()));
            } else {
                self.other_errors.fetch_add(1, Relaxed);
                self.note(format!("{code:?}: {}", text.as_str()));
            }
        }
    }

    fn json(&self, secs: f64) -> Value {
        let get = |a: &AtomicU64| a.load(Relaxed);
        let secs = secs.max(1e-9);
        json!({
            "connects": get(&self.connects),
            "connect_errors": get(&self.connect_errors),
            "closed_by_server": get(&self.closed),
            "logins": get(&self.logins),
            "bytes_out": get(&self.bytes_out),
            "accepted_mib_per_s": get(&self.bytes_out) as f64 / 1048576.0 / secs,
            "bytes_in": get(&self.bytes_in),
            "frames_in": get(&self.frames_in),
            "answers_per_s": get(&self.frames_in) as f64 / secs,
            "rate_limited": get(&self.rate_limited),
            "fatal": get(&self.fatal),
            "other_errors": get(&self.other_errors),
            "registered": get(&self.registered),
            "registered_per_min": get(&self.registered) as f64 * 60.0 / secs,
            "register_refused": get(&self.register_refused),
            "errors": self.notes.lock().map(|v| v.clone()).unwrap_or_default(),
        })
    }
}

/// Connect+login attempts of the probe.
#[derive(Debug, Default)]
pub(crate) struct Probe {
    attempts: AtomicU64,
    ok: AtomicU64,
    failed: AtomicU64,
    /// Connect + login durations of the successful attempts, ns.
    login_ns: Mutex<Vec<u64>>,
    notes: Mutex<Vec<String>>,
}

impl Probe {
    fn json(&self) -> Value {
        let mut v = self.login_ns.lock().map(|v| v.clone()).unwrap_or_default();
        v.sort_unstable();
        let at = |q: f64| {
            (!v.is_empty()).then(|| v[((v.len() - 1) as f64 * q).round() as usize] as f64 / 1e6)
        };
        let attempts = self.attempts.load(Relaxed);
        let ok = self.ok.load(Relaxed);
        json!({
            "attempts": attempts,
            "ok": ok,
            "failed": self.failed.load(Relaxed),
            "success": (attempts > 0).then(|| ok as f64 / attempts as f64),
            "login_p50_ms": at(0.5),
            "login_p99_ms": at(0.99),
            "login_max_ms": at(1.0),
            "errors": self.notes.lock().map(|v| v.clone()).unwrap_or_default(),
        })
    }
}

/// Logs `name` in (no REGISTER) again and again, `pause` apart, until
/// `count` attempts were made or the task is dropped. Each attempt is
/// bounded by `limit`.
async fn probe(how: Login, name: Name, pause: Duration, limit: Duration, count: u64, p: &Probe) {
    for _ in 0..count {
        let t0 = now_ns();
        let result = timeout(limit, conn::login(&how, name)).await;
        // Counted once done: an attempt cut off by the end of the run is none.
        p.attempts.fetch_add(1, Relaxed);
        match result {
            Some(Ok(client)) => {
                let t1 = now_ns();
                p.ok.fetch_add(1, Relaxed);
                if let Ok(mut v) = p.login_ns.lock() {
                    v.push(t1 - t0);
                }
                drop(client);
            }
            other => {
                p.failed.fetch_add(1, Relaxed);
                let e = match other {
                    Some(Err(e)) => e.to_string(),
                    _ => format!("login timed out after {limit:?}"),
                };
                if let Ok(mut v) = p.notes.lock() {
                    if v.len() < 5 && !v.contains(&e) {
                        v.push(e);
                    }
                }
            }
        }
        if !pause.is_zero() {
            Timer::after(pause).await;
        }
    }
}

/// The storm: a TCP connection from `source` every `interval`, each held
/// (never read, never written) for `hold` or until [`STORM_HELD_MAX`] are
/// open, then dropped. Plain TCP even against a TLS server: the refusal is
/// what is tested, not the handshake.
async fn storm(
    remote: std::net::SocketAddr,
    source: IpAddr,
    interval: Duration,
    hold: Duration,
    st: &AttackStats,
) {
    let mut held: VecDeque<(Instant, Stream)> = VecDeque::new();
    let mut next = Instant::now();
    loop {
        match timeout(
            Duration::from_secs(1),
            Connector::Tcp.connect(remote, Some(source)),
        )
        .await
        {
            Some(Ok(s)) => {
                st.connects.fetch_add(1, Relaxed);
                held.push_back((Instant::now() + hold, s));
            }
            Some(Err(e)) => {
                st.connect_errors.fetch_add(1, Relaxed);
                st.note(e);
            }
            None => {
                st.connect_errors.fetch_add(1, Relaxed);
                st.note("connect timed out");
            }
        }
        let now = Instant::now();
        while held
            .front()
            .is_some_and(|(until, _)| *until <= now || held.len() > STORM_HELD_MAX)
        {
            held.pop_front();
        }
        // Paced from a fixed origin; missed ticks are skipped, not caught up.
        next = (next + interval).max(now);
        Timer::at(next).await;
    }
}

/// Writes `chunk` over and over while reading and counting what comes
/// back, until the server closes the connection (`Ok`) or an I/O error.
async fn blast(
    stream: &mut Stream,
    reader: &mut Reader,
    chunk: &[u8],
    st: &AttackStats,
) -> Result<()> {
    let mut pos = 0;
    let result = future::poll_fn(|cx| {
        for _ in 0..ROUNDS_PER_POLL {
            let mut progress = false;
            match Pin::new(&mut *stream).poll_write(cx, &chunk[pos..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    pos = (pos + n) % chunk.len();
                    st.bytes_out.fetch_add(n as u64, Relaxed);
                    progress = true;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
            match reader.poll_fill(cx, stream) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(n)) => {
                    st.bytes_in.fetch_add(n as u64, Relaxed);
                    loop {
                        match reader.next_frame() {
                            Ok(Some(f)) => st.saw(&f),
                            Ok(None) => break,
                            Err(e) => return Poll::Ready(Err(io::Error::other(e.0))),
                        }
                    }
                    progress = true;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
            if !progress {
                return Poll::Pending;
            }
        }
        // Still going: let the other tasks run, then come back.
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
    st.closed.fetch_add(1, Relaxed);
    result.map_err(Error::from)
}

fn hello() -> Vec<u8> {
    let mut out = Vec::new();
    Frame::Hello {
        version: PROTOCOL_VERSION,
        client: Text::new("confab-bench-attack").unwrap_or_default(),
    }
    .encode(&mut out);
    out
}

/// A pre-auth flooder: connect, HELLO, then `chunk` (PINGs or SENDs) as
/// fast as it goes; again when the server closes.
async fn pre_auth(how: Arc<Login>, chunk: Arc<Vec<u8>>, st: &AttackStats) {
    let hello = hello();
    loop {
        match how.connector.connect(how.addr, how.source).await {
            Ok(mut stream) => {
                st.connects.fetch_add(1, Relaxed);
                let mut reader = Reader::new(16 * 1024);
                let r = match stream.write_all(&hello).await {
                    Ok(()) => blast(&mut stream, &mut reader, &chunk, st).await,
                    Err(e) => Err(e.into()),
                };
                if let Err(e) = r {
                    st.note(e);
                }
            }
            Err(e) => {
                st.connect_errors.fetch_add(1, Relaxed);
                st.note(e);
            }
        }
        Timer::after(Duration::from_millis(10)).await;
    }
}

/// An unknown-frame flooder: log in as `me`, then `chunk` (unknown frames)
/// as fast as it goes; log in again when the server closes.
async fn unknown_frames(
    how: Arc<Login>,
    me: Name,
    chunk: Arc<Vec<u8>>,
    limit: Duration,
    st: &AttackStats,
) {
    let mut how = (*how).clone();
    loop {
        match timeout(limit, conn::login(&how, me)).await {
            Some(Ok(mut client)) => {
                how.register = false;
                st.logins.fetch_add(1, Relaxed);
                if let Err(e) = blast(&mut client.stream, &mut client.reader, &chunk, st).await {
                    st.note(e);
                }
                Timer::after(Duration::from_millis(10)).await;
            }
            other => {
                st.note(match other {
                    Some(Err(e)) => e.to_string(),
                    _ => "login timed out".into(),
                });
                // Locked out for flooding, say: try again a little later.
                Timer::after(Duration::from_millis(500)).await;
            }
        }
    }
}

/// A registration spammer: connect, HELLO, then REGISTER `r<run>-<i>-<k>`
/// for k = 0, 1, ..., each sent when the previous one is answered (an
/// attacker ignores retry_after); again when the server closes.
async fn register(how: Arc<Login>, run: String, i: u32, st: &AttackStats) {
    let hello = hello();
    let password = Text::new(PASSWORD).unwrap_or_default();
    let mut k: u32 = 0;
    loop {
        let Ok(mut stream) = how.connector.connect(how.addr, how.source).await else {
            st.connect_errors.fetch_add(1, Relaxed);
            Timer::after(Duration::from_millis(100)).await;
            continue;
        };
        st.connects.fetch_add(1, Relaxed);
        let mut reader = Reader::new(4096);
        let mut out = hello.clone();
        let ended: Result<()> = async {
            loop {
                let user = name(&format!("r{run}-{i}-{k}"))?;
                let reference = k.wrapping_add(1).max(1);
                k = k.wrapping_add(1);
                Frame::Register {
                    reference: Ref(reference),
                    user,
                    password,
                }
                .encode(&mut out);
                stream.write_all(&out).await?;
                out.clear();
                'answer: loop {
                    while let Some(frame) = reader.next_frame()? {
                        st.saw(&frame);
                        match frame {
                            Frame::Ok { reference: r } if r == Ref(reference) => {
                                st.registered.fetch_add(1, Relaxed);
                                break 'answer;
                            }
                            // Counted by `saw`; the server closes next.
                            Frame::Error { code, .. } if code.is_fatal() => {}
                            Frame::Error { reference: r, .. } if r == Ref(reference) => {
                                st.register_refused.fetch_add(1, Relaxed);
                                break 'answer;
                            }
                            _ => {}
                        }
                    }
                    let n = reader.fill(&mut stream).await?;
                    if n == 0 {
                        return Ok(());
                    }
                    st.bytes_in.fetch_add(n as u64, Relaxed);
                }
            }
        }
        .await;
        st.closed.fetch_add(1, Relaxed);
        if let Err(e) = ended {
            st.note(e);
        }
        Timer::after(Duration::from_millis(10)).await;
    }
}

/// Frames each pre-auth flooder writes per round: `count` PINGs (`ping`)
/// or wrong-state room SENDs.
fn pre_auth_chunk(ping: bool, count: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..count {
        if ping {
            Frame::Ping { token: i as u64 }.encode(&mut out);
        } else {
            let stamp = Stamp {
                sent_ns: 0,
                sender: conn::FOREIGN_SENDER,
                seq: i as u32,
            };
            encode_send(&mut out, i as u32 + 1, None, &Target::Room, 32, stamp);
        }
    }
    out
}

/// `count` frames of the unknown type, [`UNKNOWN_PAYLOAD`] bytes each.
fn unknown_chunk(count: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(count * (UNKNOWN_PAYLOAD + 5));
    for _ in 0..count {
        out.extend_from_slice(&(1 + UNKNOWN_PAYLOAD as u32).to_be_bytes());
        out.push(UNKNOWN_TYPE);
        out.resize(out.len() + UNKNOWN_PAYLOAD, b'u');
    }
    out
}

/// One flood class against well-behaved clients (or, `--off`, none).
pub(crate) fn attack(a: &AttackArgs) -> Result<Value> {
    let g = a.good.clients;
    if g < 2 {
        return err("need at least 2 well-behaved clients");
    }
    for ip in [a.attack_source, a.probe_source] {
        if !ip.is_loopback() {
            return err(format!("{ip} is not a loopback address"));
        }
    }
    let kind = a.kind;
    let attackers = a.attackers.unwrap_or(kind.default_attackers());
    let login = login_of(&a.common, 64 * 1024)?;
    let run = run_id();
    let pid = a.common.server_pid;
    let paced = a.good.paced(&run, a.duration);
    let expected = paced.expected();
    let limit = a.common.login_timeout();
    let stats = Arc::new(AttackStats::default());
    let probe_stats = Arc::new(Probe::default());
    let (stats, probe_stats) = (&stats, &probe_stats);
    let (result, recorded) = rt::run(a.common.threads, |ex| async move {
        // The probe's account first, while the server has room.
        let probe_name = name(&format!("b{run}-p"))?;
        let mut probe_login = login.clone();
        probe_login.source = Some(a.probe_source);
        if kind.probes() {
            let c = timeout(limit, conn::login(&probe_login, probe_name)).await;
            c.unwrap_or_else(|| err("the probe's first login timed out"))?;
        }
        probe_login.register = false;

        let (good, mut start) = Fleet::new(login.clone(), a.common.login_concurrency, limit);
        let tasks = spawn_paced_senders(&ex, &good, &paced)?;
        all_ready(&[(&good, g)], limit + Duration::from_secs(5)).await?;
        // Idle users filling the server (the storm's), from addresses of
        // their own so the per-source limit does not stop them.
        let (idle, _idle_start) = Fleet::new(login.clone(), a.common.login_concurrency, limit);
        let mut fillers = Vec::new();
        for i in 0..a.fillers {
            fillers.push(idle.spawn(
                &ex,
                Member {
                    name: name(&format!("b{run}-i{i}"))?,
                    source: Some(IpAddr::from([127, 0, 1, 1 + (i % 8) as u8])),
                    addr: None,
                    role: Role {
                        senders: 0,
                        record: false,
                        send: None,
                    },
                    wait_start: false,
                    reconnect: false,
                },
            ));
        }
        all_ready(&[(&idle, a.fillers)], limit + Duration::from_secs(5)).await?;

        let mut attack_tasks = Vec::new();
        let mut how = login.clone();
        how.source = Some(a.attack_source);
        let how = Arc::new(how);
        if !a.off {
            match kind {
                Kind::Storm => {
                    let (every, hold) = (
                        Duration::from_millis(a.interval_ms.max(1)),
                        Duration::from_millis(a.hold_ms),
                    );
                    for _ in 0..attackers {
                        let (st, remote, from) = (stats.clone(), how.addr, a.attack_source);
                        attack_tasks.push(
                            ex.spawn(async move { storm(remote, from, every, hold, &st).await }),
                        );
                    }
                }
                Kind::PreAuth => {
                    let pings = Arc::new(pre_auth_chunk(true, 64));
                    let sends = Arc::new(pre_auth_chunk(false, 64));
                    for i in 0..attackers {
                        let chunk = if i % 2 == 0 { &pings } else { &sends };
                        let (st, how, chunk) = (stats.clone(), how.clone(), chunk.clone());
                        attack_tasks.push(ex.spawn(async move { pre_auth(how, chunk, &st).await }));
                    }
                }
                Kind::UnknownFrame => {
                    let chunk = Arc::new(unknown_chunk(4));
                    for i in 0..attackers {
                        let me = name(&format!("b{run}-u{i}"))?;
                        let (st, how, chunk) = (stats.clone(), how.clone(), chunk.clone());
                        attack_tasks.push(ex.spawn(async move {
                            unknown_frames(how, me, chunk, limit, &st).await
                        }));
                    }
                }
                Kind::Register => {
                    for i in 0..attackers {
                        let (st, how, run) = (stats.clone(), how.clone(), run.clone());
                        attack_tasks
                            .push(ex.spawn(async move { register(how, run, i, &st).await }));
                    }
                }
            }
        }
        let attack_t0 = now_ns();
        Timer::after(Duration::from_secs(a.warmup)).await;
        // Some users leave: their slots are the probe's to take.
        for f in fillers.drain(..(a.leave.min(a.fillers) as usize)) {
            drop(f);
        }
        let cpu = pid.map(CpuMark::now);
        let t0 = now_ns();
        start.go(&good, t0);
        let probe_task = kind.probes().then(|| {
            let (p, pause) = (probe_stats.clone(), Duration::from_millis(a.probe_pause_ms));
            ex.spawn(
                async move { probe(probe_login, probe_name, pause, limit, u64::MAX, &p).await },
            )
        });
        Timer::after(Duration::from_secs(a.duration)).await;
        let rss_end = pid.and_then(rss_bytes);
        drop(probe_task);
        drop(attack_tasks);
        let attack_secs = (now_ns() - attack_t0) as f64 / 1e9;
        let cpu = cpu.map(|m| m.since());
        let c = &good.counters;
        let complete = wait_until_delivered(c, expected, Duration::from_secs(a.timeout)).await;
        drop(fillers);
        drop(tasks);
        let delivered = c.delivered.load(Relaxed);
        Ok::<Value, Error>(json!({
            "scenario": "attack",
            "kind": kind.label(),
            "attack": !a.off,
            "attackers": if a.off { 0 } else { attackers },
            "clients": g, "rate": a.good.rate, "duration_s": a.duration,
            "fillers": a.fillers, "left": a.leave.min(a.fillers),
            "complete": complete,
            "expected": expected,
            "delivered": delivered,
            "loss": expected.saturating_sub(delivered),
            "missed": c.missed.load(Relaxed),
            "good_rate_limited": c.rate_limited.load(Relaxed),
            "good_closed": c.closed.load(Relaxed),
            "fillers_closed": idle.counters.closed.load(Relaxed),
            "probe": kind.probes().then(|| probe_stats.json()),
            "attacker": (!a.off).then(|| stats.json(attack_secs)),
            "server_cpu_s": cpu.and_then(|c| c.0),
            "server_rss_end_mib": mib(rss_end),
            "server_peak_rss_mib": mib(pid.and_then(peak_rss_bytes)),
            "errors": c.notes(),
        }))
    });
    let mut v = result?;
    merge(
        &mut v,
        json!({
            "latency": summary(&recorded.delivery),
            "ack_latency": summary(&recorded.ack),
        }),
    );
    eprintln!(
        "attack {}{}: {g} good clients at {}/s: {}/{} delivered (loss {}); good latency {}; probe {}; attacker {}; server peak RSS {} MiB",
        kind.label(),
        if a.off { " (off)" } else { "" },
        a.good.rate,
        v["delivered"],
        v["expected"],
        v["loss"],
        describe(&recorded.delivery),
        v["probe"],
        v["attacker"],
        v["server_peak_rss_mib"],
    );
    Ok(v)
}

async fn wait_until_delivered(c: &crate::drive::Counters, expected: u64, limit: Duration) -> bool {
    crate::fleet::wait_until(limit, || c.delivered.load(Relaxed) >= expected).await
}

/// The server's RSS after sequential logins with its default hashing.
pub(crate) fn logins(a: &LoginsArgs) -> Result<Value> {
    let Some(pid) = a.common.server_pid else {
        return err("logins needs --server-pid to read the server's memory");
    };
    let mut checkpoints = a.checkpoints.clone();
    checkpoints.sort_unstable();
    checkpoints.dedup();
    let total = checkpoints.last().copied().unwrap_or(0);
    if total == 0 {
        return err("no checkpoint above 0");
    }
    let login = login_of(&a.common, 16 * 1024)?;
    let run = run_id();
    let limit = a.common.login_timeout();
    let p = Probe::default();
    let (p, points) = (&p, checkpoints.len());
    let checkpoints = &checkpoints;
    let (result, _) = rt::run(1, |_ex| async move {
        let me = name(&format!("b{run}-l"))?;
        let rss_start = rss_bytes(pid);
        // The REGISTER (and first login) is not counted.
        timeout(limit, conn::login(&login, me))
            .await
            .unwrap_or_else(|| err("the first login timed out"))?;
        let mut how = login.clone();
        how.register = false;
        let t0 = now_ns();
        let mut done = 0;
        let mut points = Vec::new();
        for &n in checkpoints {
            probe(how.clone(), me, Duration::ZERO, limit, n - done, p).await;
            done = n;
            points.push(json!({
                "logins": n,
                "server_rss_mib": mib(rss_bytes(pid)),
                "seconds": (now_ns() - t0) as f64 / 1e9,
            }));
        }
        Ok::<Value, Error>(json!({
            "scenario": "logins",
            "logins": total,
            "server_rss_start_mib": mib(rss_start),
            "checkpoints": points,
            "server_peak_rss_mib": mib(peak_rss_bytes(pid)),
        }))
    });
    let mut v = result?;
    let rss = |i: usize| v["checkpoints"][i]["server_rss_mib"].as_f64();
    let ratio = rss(points - 1).zip(rss(0)).map(|(z, a)| z / a.max(1e-9));
    merge(
        &mut v,
        json!({
            "rss_ratio_last_to_first": ratio,
            "probe": p.json(),
        }),
    );
    eprintln!(
        "logins: {total} sequential logins: RSS {} MiB at start; {}; last/first {}; peak {} MiB; login {}",
        v["server_rss_start_mib"],
        v["checkpoints"]
            .as_array()
            .map(|c| c
                .iter()
                .map(|p| format!("{} after {}", p["server_rss_mib"], p["logins"]))
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_default(),
        ratio.map_or("?".into(), |r| format!("{r:.2}x")),
        v["server_peak_rss_mib"],
        v["probe"],
    );
    if v["probe"]["failed"].as_u64().unwrap_or(0) > 0 {
        eprintln!("logins: some logins failed: {}", v["probe"]["errors"]);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attack_chunks_decode_as_the_frames_they_claim() {
        let pings = pre_auth_chunk(true, 3);
        let mut r = &pings[..];
        for token in 0..3 {
            let (f, used) = confab_engine::decode(r, 1024)
                .expect("decodes")
                .expect("whole");
            assert_eq!(f, Frame::Ping { token });
            r = &r[used..];
        }
        assert!(r.is_empty());
        let sends = pre_auth_chunk(false, 2);
        let (f, _) = confab_engine::decode(&sends, 1024)
            .expect("decodes")
            .expect("whole");
        assert!(
            matches!(
                f,
                Frame::Send {
                    reference: Ref(1),
                    ..
                }
            ),
            "{f:?}"
        );
        // Under the logged-in frame limit, and of a type nobody knows.
        let unknown = unknown_chunk(2);
        assert_eq!(unknown.len(), 2 * (5 + UNKNOWN_PAYLOAD));
        match confab_engine::decode(&unknown, 64 * 1024) {
            Err(confab_engine::DecodeError::UnknownType { frame_len, .. }) => {
                assert_eq!(frame_len, 5 + UNKNOWN_PAYLOAD)
            }
            other => panic!("not an unknown type: {other:?}"),
        }
    }
}
