//! The four measurements. Each builds its clients, waits (bounded) for
//! them to log in, measures one phase, and returns its JSON object after
//! printing a human summary on stderr.

use std::io::Write as _;
use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::sync::Arc;
use std::time::Duration;

use async_executor::Task;
use async_io::Timer;
use confab_engine::codec::HEADER_LEN;
use confab_engine::frame::kind;
use confab_engine::{Name, Target};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use serde_json::{json, Value};

use crate::ack_loop;
use crate::conn::{self, err, Client, Connector, Error, Login, Result, Stream, FOREIGN_SENDER};
use crate::counts::{ask_for_counters, ProcCounts};
use crate::drive::{Counters, Role, SendPlan};
use crate::fleet::{login_summary, wait_until, Fleet, Member};
use crate::procfs::{peak_rss_bytes, rss_bytes, CpuMark};
use crate::rt::{self, describe, now_ns, summary, Recorded};
use crate::{run_id, source, AbuseArgs, Common, ConnsArgs, FanoutArgs, StorageArgs};

pub(crate) const PASSWORD: &str = "confab-bench";

pub(crate) fn name(s: &str) -> Result<Name> {
    Name::new(s).map_err(|e| Error(format!("bad name {s}: {e}")))
}

pub(crate) fn login_of(c: &Common, read_buf: usize) -> Result<Login> {
    Ok(Login {
        connector: c.connector()?,
        addr: c.addr()?,
        source: None,
        password: PASSWORD,
        read_buf,
        register: true,
        device: false,
        irc: c.protocol == crate::Protocol::Irc,
    })
}

pub(crate) fn mib(b: Option<u64>) -> Value {
    b.map_or(Value::Null, |b| {
        json!((b as f64 / 1048576.0 * 10.0).round() / 10.0)
    })
}

/// Waits until every client of `fleets` logged in or gave up; an error if any gave up.
pub(crate) async fn all_ready(fleets: &[(&Fleet, u32)], limit: Duration) -> Result<()> {
    let done = wait_until(limit, || {
        fleets
            .iter()
            .all(|(f, n)| f.ready.load(Acquire) + f.failed.load(Acquire) >= u64::from(*n))
    })
    .await;
    for (f, n) in fleets {
        let (ready, failed) = (f.ready.load(Acquire), f.failed.load(Acquire));
        if !done || failed > 0 {
            let notes = f.counters.notes();
            return err(format!(
                "only {ready} of {n} clients logged in ({failed} failed{}){}",
                if done { "" } else { ", the rest timed out" },
                notes
                    .first()
                    .map_or(String::new(), |e| format!("; first error: {e}"))
            ));
        }
    }
    Ok(())
}

fn cpu_fields(cpu: Option<(Option<f64>, Option<f64>)>, deliveries: u64) -> Value {
    let (stat, precise) = cpu.unwrap_or((None, None));
    let per_m = |s: Option<f64>| {
        s.filter(|_| deliveries > 0)
            .map_or(Value::Null, |s| json!(s / (deliveries as f64 / 1e6)))
    };
    json!({
        "server_cpu_s": stat,
        "server_cpu_s_schedstat": precise,
        "server_cpu_s_per_m_deliveries": per_m(stat),
        "server_cpu_s_per_m_deliveries_schedstat": per_m(precise),
    })
}

pub(crate) fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, from) {
        a.extend(b);
    }
}

/// Fan-out: N clients in the room, S senders.
pub(crate) fn fanout(a: &FanoutArgs) -> Result<Value> {
    let (n, s, m) = (a.clients, a.senders, a.messages);
    if n < 2 || s == 0 || s > n {
        return err("need at least 2 clients and 1 to clients senders");
    }
    let login = login_of(&a.common, 64 * 1024)?;
    let base = login.addr;
    let run = run_id();
    let pid = a.common.server_pid;
    let expected = u64::from(s) * u64::from(m) * u64::from(n - 1);
    let interval = a.rate.map(|r| (1e9 * f64::from(s) / r.max(1e-3)) as u64);
    let (result, recorded) = rt::run(a.common.threads, |ex| async move {
        let (fleet, mut start) =
            Fleet::new(login, a.common.login_concurrency, a.common.login_timeout());
        let mut tasks: Vec<Task<()>> = Vec::with_capacity(n as usize);
        for i in 0..n {
            let send = (i < s).then(|| SendPlan {
                id: i,
                messages: u64::from(m),
                window: a.window.max(1),
                interval_ns: interval,
                size: usize::from(a.size),
                target: Target::Room,
                phase_ns: interval.map_or(0, |iv| iv * u64::from(i) / u64::from(s)),
                once: false,
            });
            let ports = &a.receiver_ports;
            let addr = (i >= s && !ports.is_empty()).then(|| {
                let mut at = base;
                at.set_port(ports[(i - s) as usize % ports.len()]);
                at
            });
            let member = Member {
                name: name(&format!("b{run}-{i}"))?,
                source: None,
                addr,
                role: Role {
                    senders: s,
                    record: true,
                    send,
                },
                wait_start: true,
                reconnect: false,
            };
            tasks.push(fleet.spawn(&ex, member));
        }
        all_ready(
            &[(&fleet, n)],
            a.common.login_timeout() + Duration::from_secs(5),
        )
        .await?;
        let cpu = pid.map(CpuMark::now);
        let counts = pid.and_then(ProcCounts::read);
        if let Some(pid) = pid.filter(|_| a.common.server_counters) {
            ask_for_counters(pid);
        }
        let own = CpuMark::now(std::process::id());
        let t0 = now_ns();
        start.go(&fleet, t0);
        let c = &fleet.counters;
        let complete = wait_until(Duration::from_secs(a.timeout), || {
            c.delivered.load(Relaxed) >= expected
        })
        .await;
        let cpu = cpu.map(|m| m.since());
        let counts_end = pid.and_then(ProcCounts::read);
        if let Some(pid) = pid.filter(|_| a.common.server_counters) {
            ask_for_counters(pid);
        }
        let own = own.since();
        let t_end = c.last_delivery_ns.load(Relaxed).max(t0 + 1);
        // A little longer, to see duplicates or extra deliveries, if any.
        Timer::after(Duration::from_millis(20)).await;
        drop(tasks);
        let delivered = c.delivered.load(Relaxed);
        let secs = (t_end - t0) as f64 / 1e9;
        let mut v = json!({
            "scenario": "fanout",
            "clients": n, "senders": s, "messages": m, "size": a.size,
            "rate": a.rate, "window": a.window,
            "complete": complete,
            "sent": c.sent.load(Relaxed),
            "acked": c.acked.load(Relaxed),
            "send_errors": c.send_errors.load(Relaxed),
            "expected": expected,
            "delivered": delivered,
            "loss": expected.saturating_sub(delivered),
            "missed": c.missed.load(Relaxed),
            "gaps": c.gaps.load(Relaxed),
            "reordered": c.reordered.load(Relaxed),
            "duration_s": secs,
            "deliveries_per_s": delivered as f64 / secs,
            "server_peak_rss_mib": mib(pid.and_then(peak_rss_bytes)),
            "bench_cpu_s": own.1.or(own.0),
            "errors": c.notes(),
        });
        merge(&mut v, cpu_fields(cpu, delivered));
        if let (Some(a), Some(b)) = (counts, counts_end) {
            merge(&mut v, b.per_delivery(&a, delivered));
        }
        Ok::<Value, Error>(v)
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
        "fanout: {n} clients, {s} senders x {m} msgs of {} B{}: {}/{} delivered (loss {}) in {:.3} s = {:.0} deliveries/s\n  latency: {}\n  ack:     {}\n  server: {} CPU s per M deliveries, peak RSS {} MiB; bench CPU {:.3} s",
        a.size,
        a.rate.map_or(String::new(), |r| format!(" at {r} msg/s")),
        v["delivered"], v["expected"], v["loss"],
        v["duration_s"].as_f64().unwrap_or(0.0),
        v["deliveries_per_s"].as_f64().unwrap_or(0.0),
        describe(&recorded.delivery),
        describe(&recorded.ack),
        v["server_cpu_s_per_m_deliveries"]
            .as_f64()
            .map_or("?".into(), |x| format!("{x:.3}")),
        v["server_peak_rss_mib"],
        v["bench_cpu_s"].as_f64().unwrap_or(0.0),
    );
    Ok(v)
}

/// Idle connections.
pub(crate) fn conns(a: &ConnsArgs) -> Result<Value> {
    let n = a.clients;
    let login = login_of(&a.common, 4096)?;
    let run = run_id();
    let pid = a.common.server_pid;
    let rss_before = pid.and_then(rss_bytes);
    let (result, recorded) = rt::run(a.common.threads, |ex| async move {
        let (fleet, _start) = Fleet::new(
            login.clone(),
            a.common.login_concurrency,
            a.common.login_timeout(),
        );
        let cpu = pid.map(CpuMark::now);
        let t0 = now_ns();
        let mut tasks: Vec<Task<()>> = Vec::with_capacity(n as usize + 1);
        for i in 0..n {
            let member = Member {
                name: name(&format!("b{run}-{i}"))?,
                source: Some(source(i, a.sources)),
                addr: None,
                role: Role {
                    senders: 1,
                    record: true,
                    send: None,
                },
                wait_start: false,
                reconnect: false,
            };
            tasks.push(fleet.spawn(&ex, member));
        }
        let limit = Duration::from_secs(a.timeout);
        let all = wait_until(limit, || {
            fleet.ready.load(Acquire) + fleet.failed.load(Acquire) >= u64::from(n)
        })
        .await;
        let ready = fleet.ready.load(Acquire);
        let connect_s = (fleet.last_ready_ns.load(Relaxed).max(t0) - t0) as f64 / 1e9;
        let cpu = cpu.map(|m| m.since());
        Timer::after(Duration::from_secs(a.settle)).await;
        let rss_after = pid.and_then(rss_bytes);
        let per_conn = rss_before
            .zip(rss_after)
            .map(|(b, a)| a.saturating_sub(b) as f64 / f64::from(n.max(1)));
        let mut v = json!({
            "scenario": "conns",
            "clients": n,
            "sources": a.sources,
            "connected": ready,
            "failed": fleet.failed.load(Relaxed),
            "timed_out": !all,
            "connect_s": connect_s,
            "login_latency": login_summary(&fleet),
            "server_cpu_s_connect": cpu.and_then(|c| c.0),
            "server_rss_before_mib": mib(rss_before),
            "server_rss_after_mib": mib(rss_after),
            "server_rss_per_conn_kib": per_conn.map(|b| b / 1024.0),
            "closed_early": fleet.counters.closed.load(Relaxed),
        });
        if a.broadcast {
            let (bfleet, _bstart) = Fleet::new(login, 1, a.common.login_timeout());
            let before = fleet.counters.delivered.load(Relaxed);
            tasks.push(bfleet.spawn(
                &ex,
                Member {
                    name: name(&format!("b{run}-x"))?,
                    source: Some(source(0, 1)),
                    addr: None,
                    role: Role {
                        senders: 1,
                        record: false,
                        send: Some(SendPlan {
                            id: 0,
                            messages: 1,
                            window: 1,
                            interval_ns: None,
                            size: 64,
                            target: Target::Room,
                            phase_ns: 0,
                            once: false,
                        }),
                    },
                    wait_start: false,
                    reconnect: false,
                },
            ));
            let reached = wait_until(limit, || {
                fleet.counters.delivered.load(Relaxed) - before >= ready
            })
            .await;
            let got = fleet.counters.delivered.load(Relaxed) - before;
            merge(
                &mut v,
                json!({
                    "broadcast_expected": ready,
                    "broadcast_delivered": got,
                    "broadcast_loss": ready.saturating_sub(got),
                    "broadcast_complete": reached,
                    "broadcast_acked": bfleet.counters.acked.load(Relaxed),
                }),
            );
        }
        merge(
            &mut v,
            json!({
                "server_peak_rss_mib": mib(pid.and_then(peak_rss_bytes)),
                "errors": fleet.counters.notes(),
            }),
        );
        drop(tasks);
        Ok::<Value, Error>(v)
    });
    let mut v = result?;
    if a.broadcast {
        // Every receiver's latency is in the histogram: its max is the time
        // the message took to reach the last one.
        let h = &recorded.delivery;
        merge(
            &mut v,
            json!({
                "broadcast_all_ms": (!h.is_empty()).then(|| h.max() as f64 / 1e6),
                "broadcast_p50_ms": (!h.is_empty()).then(|| h.value_at_quantile(0.5) as f64 / 1e6),
            }),
        );
    }
    eprintln!(
        "conns: {}/{n} connected+logged in in {:.2} s ({} failed), login {}; server RSS {} -> {} MiB = {} KiB per connection{}",
        v["connected"], v["connect_s"].as_f64().unwrap_or(0.0), v["failed"], v["login_latency"],
        v["server_rss_before_mib"], v["server_rss_after_mib"],
        v["server_rss_per_conn_kib"].as_f64().map_or("?".into(), |k| format!("{k:.2}")),
        if a.broadcast {
            format!(
                "; broadcast {}/{} in {} ms",
                v["broadcast_delivered"], v["broadcast_expected"], v["broadcast_all_ms"]
            )
        } else {
            String::new()
        },
    );
    Ok(v)
}

/// What storage sender `id` sends: the run's messages, to itself (or the
/// room), a window at a time, as fast as the ACKs come.
fn storage_plan(a: &StorageArgs, id: u32, me: Name) -> SendPlan {
    SendPlan {
        id,
        messages: u64::from(a.messages),
        window: a.window.max(1),
        interval_ns: None,
        size: usize::from(a.size),
        target: if a.room {
            Target::Room
        } else {
            Target::User(me)
        },
        phase_ns: 0,
        once: a.send2,
    }
}

/// A storage level's figures: `c` senders, `total` SENDs, counted in `k`
/// from `t0` (monotonic ns) to the last ACK.
fn storage_level(
    c: u32,
    total: u64,
    complete: bool,
    k: &Counters,
    t0: u64,
    server_cpu_s: Option<f64>,
) -> Value {
    let t_end = k.last_ack_ns.load(Relaxed).max(t0 + 1);
    let acked = k.acked.load(Relaxed);
    let secs = (t_end - t0) as f64 / 1e9;
    json!({
        "senders": c,
        "messages": total,
        "complete": complete,
        "acked": acked,
        "send_errors": k.send_errors.load(Relaxed),
        "busy": k.busy.load(Relaxed),
        "duration_s": secs,
        "acks_per_s": acked as f64 / secs,
        "server_cpu_s": server_cpu_s,
        "errors": k.notes(),
    })
}

/// One storage level over plain TCP: the senders log in on the async
/// runtime, then run [`ack_loop`] on the bench's threads (see there why).
fn storage_level_plain(
    a: &StorageArgs,
    login: Login,
    run: &str,
    c: u32,
) -> (Result<Value>, Recorded) {
    let total = u64::from(c) * u64::from(a.messages);
    let limit = a.common.login_timeout();
    let names: Vec<Result<Name>> = (0..c).map(|i| name(&format!("b{run}-s{c}-{i}"))).collect();
    let (clients, _) = rt::run(a.common.threads, |ex| async move {
        // A bounded channel used as a semaphore: a send takes a permit.
        let permits = Arc::new(async_channel::bounded::<()>(
            a.common.login_concurrency.max(1),
        ));
        let tasks: Vec<Task<Result<(Name, Client)>>> = names
            .into_iter()
            .map(|me| {
                let how = login.clone();
                let permits = permits.clone();
                ex.spawn(async move {
                    let me = me?;
                    let _ = permits.0.send(()).await;
                    let client = rt::timeout(limit, conn::login(&how, me)).await;
                    let _ = permits.1.try_recv();
                    let client =
                        client.unwrap_or_else(|| err(format!("login of {me} timed out")))?;
                    Ok((me, client))
                })
            })
            .collect();
        let mut clients = Vec::with_capacity(tasks.len());
        for t in tasks {
            clients.push(t.await);
        }
        clients
    });
    let threads = a.common.threads.max(1);
    let mut parts: Vec<Vec<ack_loop::Sender>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, client) in clients.into_iter().enumerate() {
        let sender = client.and_then(|(me, client)| {
            let Stream::Tcp(tcp) = client.stream else {
                return err("a plain TCP login gave a TLS stream");
            };
            Ok(ack_loop::Sender {
                stream: tcp.into_inner()?,
                reader: client.reader,
                plan: storage_plan(a, i as u32, me),
            })
        });
        match sender {
            Ok(s) => parts[i % threads].push(s),
            Err(e) => return (Err(e), Recorded::default()),
        }
    }
    let counters = Counters::default();
    let cpu = a.common.server_pid.map(CpuMark::now);
    let t0 = now_ns();
    let (finished, recorded) = rt::on_threads(parts, |part| {
        ack_loop::run(part, &counters, Duration::from_secs(a.timeout))
    });
    let cpu = cpu.map(|m| m.since());
    let mut complete = true;
    for f in finished {
        match f {
            Ok(all) => complete &= all,
            Err(e) => {
                counters.note(e);
                complete = false;
            }
        }
    }
    let answered = counters.acked.load(Relaxed) + counters.send_errors.load(Relaxed);
    let v = storage_level(
        c,
        total,
        complete && answered >= total,
        &counters,
        t0,
        cpu.and_then(|c| c.0),
    );
    (Ok(v), recorded)
}

/// Durable ACK throughput per concurrency level.
pub(crate) fn storage(a: &StorageArgs) -> Result<Value> {
    let mut login = login_of(&a.common, 16 * 1024)?;
    login.device = a.send2;
    if a.send2 && !matches!(login.connector, Connector::Tcp) {
        return err("--send2 runs over plain TCP only (the async path sends SEND)");
    }
    let run = run_id();
    let pid = a.common.server_pid;
    let mut levels = Vec::new();
    for &c in &a.senders {
        if c == 0 {
            continue;
        }
        let total = u64::from(c) * u64::from(a.messages);
        let login = login.clone();
        let run = &run;
        let (result, recorded) = if matches!(login.connector, Connector::Tcp) {
            storage_level_plain(a, login, run, c)
        } else {
            rt::run(a.common.threads, |ex| async move {
                let (fleet, mut start) =
                    Fleet::new(login, a.common.login_concurrency, a.common.login_timeout());
                let mut tasks = Vec::new();
                for i in 0..c {
                    let me = name(&format!("b{run}-s{c}-{i}"))?;
                    tasks.push(fleet.spawn(
                        &ex,
                        Member {
                            name: me,
                            source: None,
                            addr: None,
                            role: Role {
                                senders: 0,
                                record: true,
                                send: Some(storage_plan(a, i, me)),
                            },
                            wait_start: true,
                            reconnect: false,
                        },
                    ));
                }
                all_ready(
                    &[(&fleet, c)],
                    a.common.login_timeout() + Duration::from_secs(5),
                )
                .await?;
                let cpu = pid.map(CpuMark::now);
                let t0 = now_ns();
                start.go(&fleet, t0);
                let k = &fleet.counters;
                let complete = wait_until(Duration::from_secs(a.timeout), || {
                    k.acked.load(Relaxed) + k.send_errors.load(Relaxed) >= total
                })
                .await;
                let cpu = cpu.map(|m| m.since());
                drop(tasks);
                Ok::<Value, Error>(storage_level(
                    c,
                    total,
                    complete,
                    k,
                    t0,
                    cpu.and_then(|c| c.0),
                ))
            })
        };
        let mut v = result?;
        merge(&mut v, json!({ "ack_latency": summary(&recorded.ack) }));
        eprintln!(
            "storage: {c} senders x {} (window {}): {} acked in {:.3} s = {:.0} acks/s; ack {}",
            a.messages,
            a.window,
            v["acked"],
            v["duration_s"].as_f64().unwrap_or(0.0),
            v["acks_per_s"].as_f64().unwrap_or(0.0),
            describe(&recorded.ack)
        );
        levels.push(v);
    }
    Ok(json!({
        "scenario": "storage",
        "window": a.window,
        "size": a.size,
        "levels": levels,
        "server_peak_rss_mib": mib(pid.and_then(peak_rss_bytes)),
    }))
}

/// The well-behaved clients of the abuse and attack scenarios: `clients`
/// members from 127.0.0.1, each sending `per_client` room messages of
/// `size` bytes every `interval_ns`, phased evenly, recorded.
pub(crate) struct Paced {
    pub(crate) run: String,
    pub(crate) clients: u32,
    pub(crate) per_client: u64,
    pub(crate) interval_ns: u64,
    pub(crate) size: u16,
}

impl crate::WellBehaved {
    /// The plan for `duration` seconds of sending, in run `run`.
    pub(crate) fn paced(&self, run: &str, duration: u64) -> Paced {
        Paced {
            run: run.to_owned(),
            clients: self.clients,
            per_client: (self.rate * duration as f64).round().max(1.0) as u64,
            interval_ns: (1e9 / self.rate.max(1e-3)) as u64,
            size: self.size,
        }
    }
}

impl Paced {
    /// Deliveries expected: each message reaches every other client.
    pub(crate) fn expected(&self) -> u64 {
        let g = u64::from(self.clients);
        self.per_client * g * g.saturating_sub(1)
    }
}

/// Spawns [`Paced`] senders in `good`.
pub(crate) fn spawn_paced_senders(
    ex: &rt::Ex,
    good: &Arc<Fleet>,
    p: &Paced,
) -> Result<Vec<Task<()>>> {
    let Paced {
        ref run,
        clients: g,
        per_client,
        interval_ns: interval,
        size,
    } = *p;
    let mut tasks = Vec::new();
    for i in 0..g {
        tasks.push(good.spawn(
            ex,
            Member {
                name: name(&format!("b{run}-{i}"))?,
                source: None,
                addr: None,
                role: Role {
                    senders: g,
                    record: true,
                    send: Some(SendPlan {
                        id: i,
                        messages: per_client,
                        window: 64,
                        interval_ns: Some(interval),
                        size: usize::from(size),
                        target: Target::Room,
                        phase_ns: interval * u64::from(i) / u64::from(g),
                        once: false,
                    }),
                },
                wait_start: true,
                reconnect: false,
            },
        ));
    }
    Ok(tasks)
}

/// Slowloris: connect, send half a pre-auth frame, hold it until the server
/// closes, again; counts the cycles.
async fn slowloris(login: Arc<Login>, cycles: Arc<std::sync::atomic::AtomicU64>) {
    // A frame as long as the pre-auth limit allows, of which only half is sent.
    const LEN: u32 = 1024;
    let mut half = Vec::with_capacity(HEADER_LEN + LEN as usize / 2);
    half.extend_from_slice(&LEN.to_be_bytes());
    half.push(kind::HELLO);
    half.resize(HEADER_LEN + LEN as usize / 2, b'x');
    let mut sink = [0u8; 1024];
    loop {
        if let Ok(mut stream) = login.connector.connect(login.addr, None).await {
            if stream.write_all(&half).await.is_ok() {
                // Hold until the server gives up on us (bounded by the run).
                while let Ok(n) = stream.read(&mut sink).await {
                    if n == 0 {
                        break;
                    }
                }
            }
            cycles.fetch_add(1, Relaxed);
        }
        Timer::after(Duration::from_millis(50)).await;
    }
}

/// Well-behaved clients under attack.
pub(crate) fn abuse(a: &AbuseArgs) -> Result<Value> {
    let g = a.good.clients;
    if g < 2 {
        return err("need at least 2 well-behaved clients");
    }
    let login = login_of(&a.common, 64 * 1024)?;
    let run = run_id();
    let pid = a.common.server_pid;
    let paced = a.good.paced(&run, a.duration);
    let expected = paced.expected();
    let (result, recorded) = rt::run(a.common.threads, |ex| async move {
        let (good, mut start) = Fleet::new(
            login.clone(),
            a.common.login_concurrency,
            a.common.login_timeout(),
        );
        let (bad, _bad_start) = Fleet::new(
            login.clone(),
            a.common.login_concurrency,
            a.common.login_timeout(),
        );
        let mut tasks = spawn_paced_senders(&ex, &good, &paced)?;
        for i in 0..a.flooders {
            tasks.push(bad.spawn(
                &ex,
                Member {
                    name: name(&format!("b{run}-f{i}"))?,
                    source: None,
                    addr: None,
                    role: Role {
                        senders: 0,
                        record: false,
                        send: Some(SendPlan {
                            id: FOREIGN_SENDER + i,
                            messages: u64::MAX,
                            window: usize::MAX,
                            interval_ns: None,
                            size: usize::from(a.good.size),
                            target: Target::Room,
                            phase_ns: 0,
                            once: false,
                        }),
                    },
                    wait_start: false,
                    reconnect: true,
                },
            ));
        }
        let limit = a.common.login_timeout() + Duration::from_secs(5);
        all_ready(&[(&good, g), (&bad, a.flooders)], limit).await?;
        let cycles = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let shared_login = Arc::new(login);
        for _ in 0..a.slowloris {
            tasks.push(ex.spawn(slowloris(shared_login.clone(), cycles.clone())));
        }
        Timer::after(Duration::from_secs(a.warmup)).await;
        let cpu = pid.map(CpuMark::now);
        let t0 = now_ns();
        start.go(&good, t0);
        Timer::after(Duration::from_secs(a.duration)).await;
        let c = &good.counters;
        let complete = wait_until(Duration::from_secs(a.timeout), || {
            c.delivered.load(Relaxed) >= expected
        })
        .await;
        let cpu = cpu.map(|m| m.since());
        let secs = (now_ns() - t0) as f64 / 1e9;
        drop(tasks);
        let b = &bad.counters;
        let delivered = c.delivered.load(Relaxed);
        Ok::<Value, Error>(json!({
            "scenario": "abuse",
            "clients": g, "rate": a.good.rate, "flooders": a.flooders, "slowloris": a.slowloris,
            "duration_s": a.duration,
            "complete": complete,
            "expected": expected,
            "delivered": delivered,
            "loss": expected.saturating_sub(delivered),
            "missed": c.missed.load(Relaxed),
            "good_rate_limited": c.rate_limited.load(Relaxed),
            "good_closed": c.closed.load(Relaxed),
            "flood_sent": b.sent.load(Relaxed),
            "flood_acked": b.acked.load(Relaxed),
            "flood_rate_limited": b.rate_limited.load(Relaxed),
            "flood_disconnects": b.fatal.load(Relaxed),
            "flood_relogins": bad.relogins.load(Relaxed),
            "slowloris_cycles": cycles.load(Relaxed),
            "server_cpu_s": cpu.and_then(|c| c.0),
            "measured_s": secs,
            "server_peak_rss_mib": mib(pid.and_then(peak_rss_bytes)),
            "errors": c.notes(),
            "flood_errors": b.notes(),
        }))
    });
    let mut v = result?;
    merge(&mut v, json!({ "latency": summary(&recorded.delivery) }));
    eprintln!(
        "abuse: {g} good clients at {}/s, {} flooders, {} slowloris: {}/{} delivered (loss {}); good latency {}; flooders {} acked, {} disconnected; slowloris cycles {}; server peak RSS {} MiB",
        a.good.rate, a.flooders, a.slowloris, v["delivered"], v["expected"], v["loss"],
        describe(&recorded.delivery), v["flood_acked"], v["flood_disconnects"],
        v["slowloris_cycles"], v["server_peak_rss_mib"],
    );
    let _ = std::io::stderr().flush();
    Ok(v)
}
