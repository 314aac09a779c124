//! The loop every logged-in bench client runs: read and account for what
//! arrives, answer PINGs, and (for senders) keep a window of SENDs in
//! flight, paced or as fast as the server takes them.
//!
//! One task per connection polls reading, writing and its pacing timer
//! together, so a client that is flooded with deliveries still sends, and
//! nothing needs a lock or a channel. Counters are kept locally and added
//! to the shared ones once per read, latencies go to the thread's
//! histogram: the hot path allocates nothing and contends on nothing.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::task::Poll;
use std::time::Instant;

use async_io::Timer;
use confab_engine::frame::ErrorCode;
use confab_engine::{Frame, Ref, Target};
use futures_lite::future;

use crate::conn::{encode_send, Client, Out, Result, Stamp};
use crate::irc;
use crate::rt::{now_ns, record_ack, record_delivery};

/// Counters of one group of clients (all receivers of a run, or the
/// flooders of an abuse run), added to once per read.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// MESSAGEs from counted senders.
    pub(crate) delivered: AtomicU64,
    /// MESSAGEs from anyone else (flooders, other runs).
    pub(crate) foreign: AtomicU64,
    /// A counted sender's sequence number skipped ahead.
    pub(crate) gaps: AtomicU64,
    /// A counted sender's sequence number went back (duplicate or reorder).
    pub(crate) reordered: AtomicU64,
    /// Messages the server reported as dropped (MISSED counts).
    pub(crate) missed: AtomicU64,
    /// SENDs written.
    pub(crate) sent: AtomicU64,
    /// ACKs received.
    pub(crate) acked: AtomicU64,
    /// ERRORs answering a SEND.
    pub(crate) send_errors: AtomicU64,
    /// ERROR RATE_LIMITED received.
    pub(crate) rate_limited: AtomicU64,
    /// ERROR BUSY received.
    pub(crate) busy: AtomicU64,
    /// Fatal ERRORs received (FLOODING, SLOW_CONSUMER, ...).
    pub(crate) fatal: AtomicU64,
    /// PINGs answered.
    pub(crate) pings: AtomicU64,
    /// Connections that ended (closed by the server, or an I/O error).
    pub(crate) closed: AtomicU64,
    /// Monotonic ns of the newest counted delivery.
    pub(crate) last_delivery_ns: AtomicU64,
    /// Monotonic ns of the newest ACK.
    pub(crate) last_ack_ns: AtomicU64,
    /// The first few error texts, for the report.
    pub(crate) errors: Mutex<Vec<String>>,
}

impl Counters {
    /// Keeps an error text if fewer than 10 are kept.
    pub(crate) fn note(&self, e: impl std::fmt::Display) {
        if let Ok(mut v) = self.errors.lock() {
            if v.len() < 10 {
                v.push(e.to_string());
            }
        }
    }

    /// The kept error texts.
    pub(crate) fn notes(&self) -> Vec<String> {
        self.errors.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

/// What a client sends.
#[derive(Clone, Debug)]
pub(crate) struct SendPlan {
    /// Sender id in the body header.
    pub(crate) id: u32,
    /// SENDs in total (`u64::MAX`: until cancelled).
    pub(crate) messages: u64,
    /// Most SENDs not yet answered by ACK or ERROR (`usize::MAX`: no limit).
    pub(crate) window: usize,
    /// Time between two SENDs of this client; `None`: as fast as allowed.
    pub(crate) interval_ns: Option<u64>,
    /// Body size in bytes.
    pub(crate) size: usize,
    /// Where to.
    pub(crate) target: Target,
    /// Added to the pacing origin, so paced senders do not all fire at once.
    pub(crate) phase_ns: u64,
    /// SEND2 (exactly once, from a device) instead of SEND; plain-TCP
    /// storage runs only (`ack_loop`).
    pub(crate) once: bool,
}

/// What a client does besides reading.
#[derive(Clone, Debug)]
pub(crate) struct Role {
    /// Counted senders have ids `0..senders`.
    pub(crate) senders: u32,
    /// Whether latencies go into the histograms.
    pub(crate) record: bool,
    /// Sending, if any.
    pub(crate) send: Option<SendPlan>,
}

/// SENDs encoded per write at most.
const BATCH: usize = 64;
/// ACK latencies are tracked for windows up to this size.
const TRACK: usize = 4096;

/// Local tallies between flushes.
#[derive(Default)]
struct Tally {
    delivered: u64,
    foreign: u64,
    gaps: u64,
    reordered: u64,
    missed: u64,
    sent: u64,
    acked: u64,
    send_errors: u64,
    rate_limited: u64,
    busy: u64,
    fatal: u64,
    pings: u64,
}

impl Tally {
    /// Counts a delivered message's body: a delivery of a counted sender
    /// (its latency recorded, its sequence checked), or a foreign one.
    fn message(&mut self, role: &Role, next_seq: &mut [u32], now: u64, body: &str) {
        match Stamp::parse(body) {
            Some(s) if s.sender < role.senders => {
                self.delivered += 1;
                if role.record {
                    record_delivery(now.saturating_sub(s.sent_ns));
                }
                let Some(next) = next_seq.get_mut(s.sender as usize) else {
                    return;
                };
                if s.seq == *next {
                    *next += 1;
                } else if s.seq > *next {
                    self.gaps += 1;
                    *next = s.seq + 1;
                } else {
                    self.reordered += 1;
                }
            }
            _ => self.foreign += 1,
        }
    }

    fn flush(&mut self, c: &Counters, now: u64) {
        let add = |a: &AtomicU64, v: &mut u64| {
            if *v > 0 {
                a.fetch_add(std::mem::take(v), Ordering::Relaxed);
            }
        };
        if self.delivered > 0 {
            c.last_delivery_ns.fetch_max(now, Ordering::Relaxed);
        }
        if self.acked > 0 {
            c.last_ack_ns.fetch_max(now, Ordering::Relaxed);
        }
        add(&c.delivered, &mut self.delivered);
        add(&c.foreign, &mut self.foreign);
        add(&c.gaps, &mut self.gaps);
        add(&c.reordered, &mut self.reordered);
        add(&c.missed, &mut self.missed);
        add(&c.sent, &mut self.sent);
        add(&c.acked, &mut self.acked);
        add(&c.send_errors, &mut self.send_errors);
        add(&c.rate_limited, &mut self.rate_limited);
        add(&c.busy, &mut self.busy);
        add(&c.fatal, &mut self.fatal);
        add(&c.pings, &mut self.pings);
    }
}

/// Runs `client` in `role` until the connection ends (or the task is
/// cancelled). `start_ns` is the pacing origin. Returns an error for an
/// I/O or protocol failure; a server close is `Ok`.
pub(crate) async fn drive(
    client: &mut Client,
    role: &Role,
    counters: &Counters,
    start_ns: u64,
) -> Result<()> {
    let result = drive_inner(client, role, counters, start_ns).await;
    counters.closed.fetch_add(1, Ordering::Relaxed);
    result
}

async fn drive_inner(
    client: &mut Client,
    role: &Role,
    counters: &Counters,
    start_ns: u64,
) -> Result<()> {
    let Client {
        stream,
        reader,
        irc,
    } = client;
    let irc = *irc;
    let mut out = Out::default();
    let mut tally = Tally::default();
    let mut next_seq = vec![0u32; role.senders as usize];
    let plan = role.send.as_ref();
    let start_ns = start_ns + plan.map_or(0, |p| p.phase_ns);
    let track = plan.map_or(0, |p| p.window.min(TRACK));
    let mut sent_at = vec![0u64; track];
    let mut seq: u64 = 0;
    let mut outstanding: usize = 0;
    let mut timer = Timer::never();
    let mut timer_at: Option<u64> = None;
    let epoch = Instant::now() - std::time::Duration::from_nanos(now_ns());

    loop {
        // Top up the write buffer with due SENDs.
        if let Some(p) = plan {
            if out.is_empty() && seq < p.messages && outstanding < p.window {
                let now = now_ns();
                let mut due = (p.messages - seq).min((p.window - outstanding) as u64);
                if let Some(iv) = p.interval_ns {
                    let by_time = now.saturating_sub(start_ns) / iv.max(1) + 1;
                    due = due.min(by_time.saturating_sub(seq));
                }
                let due = due.min(BATCH as u64);
                for _ in 0..due {
                    let reference = (seq % u64::from(u32::MAX)) as u32 + 1;
                    let stamp = Stamp {
                        sent_ns: now,
                        sender: p.id,
                        seq: seq as u32,
                    };
                    if irc {
                        irc::encode_privmsg(&mut out.buf, reference, p.size, stamp);
                    } else {
                        encode_send(&mut out.buf, reference, None, &p.target, p.size, stamp);
                    }
                    if track > 0 {
                        sent_at[(reference as usize - 1) % track] = now;
                    }
                    seq += 1;
                    outstanding = outstanding.saturating_add(1);
                }
                tally.sent += due;
                if due == 0 {
                    if let Some(iv) = p.interval_ns {
                        let at = start_ns + seq * iv;
                        if timer_at != Some(at) {
                            timer.set_at(epoch + std::time::Duration::from_nanos(at));
                            timer_at = Some(at);
                        }
                    }
                }
            }
        }

        // Wait for bytes in, bytes out, or the pacing timer.
        let (read, ticked) = future::poll_fn(|cx| {
            let mut progress = false;
            if !out.is_empty() {
                match out.poll_write(cx, stream) {
                    Poll::Ready(Ok(())) => progress = true,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {}
                }
            }
            let read = match reader.poll_fill(cx, stream) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok((None, false))),
                Poll::Ready(Ok(n)) => Some(n),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => None,
            };
            let mut ticked = false;
            if timer_at.is_some() && Pin::new(&mut timer).poll(cx).is_ready() {
                ticked = true;
            }
            if progress || read.is_some() || ticked {
                Poll::Ready(Ok((Some(read.unwrap_or(0)), ticked)))
            } else {
                Poll::Pending
            }
        })
        .await?;
        if ticked {
            timer_at = None;
        }
        let Some(read) = read else {
            tally.flush(counters, now_ns());
            return Ok(());
        };
        if read == 0 {
            continue;
        }

        let now = now_ns();
        // An ACK (confab) or the PONG standing in for one (IRC).
        let ack = |tally: &mut Tally, outstanding: &mut usize, reference: Ref| {
            tally.acked += 1;
            *outstanding = outstanding.saturating_sub(1);
            if track > 0 && reference > Ref(0) && role.record {
                let at = sent_at[(reference.0 as usize - 1) % track];
                record_ack(now.saturating_sub(at));
            }
        };
        if irc {
            while let Some(line) = reader.next_line() {
                match irc::parse(line) {
                    irc::Line::Privmsg { text, .. } => {
                        let body = std::str::from_utf8(text).unwrap_or_default();
                        tally.message(role, &mut next_seq, now, body);
                    }
                    irc::Line::Pong(token) => {
                        let reference = std::str::from_utf8(token)
                            .ok()
                            .and_then(|t| t.parse().ok())
                            .unwrap_or(0);
                        ack(&mut tally, &mut outstanding, Ref(reference));
                    }
                    irc::Line::Ping(token) => {
                        tally.pings += 1;
                        irc::encode_pong(&mut out.buf, token);
                    }
                    irc::Line::Missed(count) => tally.missed += count,
                    irc::Line::Error(text) => {
                        tally.fatal += 1;
                        counters.note(format!("IRC ERROR: {}", String::from_utf8_lossy(text)));
                    }
                    irc::Line::Numeric(n @ 400..=599, params) if n != 422 => {
                        tally.send_errors += 1;
                        counters.note(format!("IRC {n} {}", String::from_utf8_lossy(params)));
                    }
                    _ => {}
                }
            }
            tally.flush(counters, now);
            continue;
        }
        while let Some(frame) = reader.next_frame()? {
            match frame {
                Frame::Message { body, .. } => {
                    tally.message(role, &mut next_seq, now, body.as_str())
                }
                Frame::Ack { reference, .. } => ack(&mut tally, &mut outstanding, reference),
                Frame::Error {
                    code,
                    reference,
                    text,
                    ..
                } => {
                    match code {
                        ErrorCode::RateLimited => tally.rate_limited += 1,
                        ErrorCode::Busy => tally.busy += 1,
                        _ => {}
                    }
                    if code.is_fatal() {
                        tally.fatal += 1;
                        counters.note(format!("{code:?}: {}", text.as_str()));
                    } else if reference > Ref(0) && plan.is_some() {
                        tally.send_errors += 1;
                        outstanding = outstanding.saturating_sub(1);
                        if code != ErrorCode::Busy {
                            counters.note(format!("SEND refused: {code:?}: {}", text.as_str()));
                        }
                    }
                }
                Frame::Missed { count, .. } => tally.missed += u64::from(count),
                Frame::Ping { token } => {
                    tally.pings += 1;
                    Frame::Pong { token }.encode(&mut out.buf);
                }
                _ => {}
            }
        }
        tally.flush(counters, now);
    }
}
