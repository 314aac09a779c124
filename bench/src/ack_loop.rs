//! The storage scenario's senders on plain TCP, without the async runtime.
//!
//! The load generator shares the machine with the server it measures, so
//! every microsecond it spends per message is one the server does not get.
//! On the async path each wait for an ACK costs a task wake-up, an
//! executor turn and a reactor re-registration (`epoll_ctl`, async-io
//! polls one-shot); here each thread polls its share of the connections
//! with one level-triggered [`Poller`], each socket registered once for
//! the whole run, so an ACK costs the read that brings it and the write of
//! the next SEND. TLS runs keep the async path (`drive.rs`).
//!
//! What is counted is the same as there: ACKs and refused SENDs in the
//! shared [`Counters`], ACK latencies in the thread's histogram
//! ([`record_ack`]).

use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use confab_engine::frame::ErrorCode;
use confab_engine::{Frame, Ref};
use polling::{Event, Events, PollMode, Poller};

use crate::conn::{encode_send, err, Error, Reader, Result, Stamp};
use crate::drive::{Counters, SendPlan};
use crate::rt::{now_ns, record_ack};

/// One logged-in sender, taken off the async runtime.
pub(crate) struct Sender {
    pub(crate) stream: TcpStream,
    /// With whatever arrived after LOGIN_OK.
    pub(crate) reader: Reader,
    pub(crate) plan: SendPlan,
}

/// A sender during the run.
struct Running {
    stream: TcpStream,
    reader: Reader,
    plan: SendPlan,
    /// Send time of each SEND in flight, by `(reference - 1) % window`.
    sent_at: Vec<u64>,
    sent: u64,
    /// Answered by an ACK or an ERROR.
    answered: u64,
    out: Vec<u8>,
    written: usize,
    /// Registered for writability too (a write was cut short).
    wants_write: bool,
}

impl Running {
    fn done(&self) -> bool {
        self.answered >= self.plan.messages
    }

    /// Encodes SENDs up to the window (and the plan's total).
    fn top_up(&mut self, now: u64) {
        let window = self.plan.window.max(1);
        while self.sent < self.plan.messages && self.sent - self.answered < window as u64 {
            let reference = (self.sent % u64::from(u32::MAX)) as u32 + 1;
            let stamp = Stamp {
                sent_ns: now,
                sender: self.plan.id,
                seq: self.sent as u32,
            };
            // Client ids are unique per device: each sender is its own user.
            let client_id = self.plan.once.then_some(self.sent + 1);
            encode_send(
                &mut self.out,
                reference,
                client_id,
                &self.plan.target,
                self.plan.size,
                stamp,
            );
            self.sent_at[(reference as usize - 1) % window] = now;
            self.sent += 1;
        }
    }

    /// Writes what is pending as far as the socket takes it; says whether
    /// something is left.
    fn flush(&mut self) -> io::Result<bool> {
        while self.written < self.out.len() {
            match self.stream.write(&self.out[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.written = 0;
        Ok(false)
    }

    /// Handles the frames read so far; returns how many ACKs came.
    fn take_frames(&mut self, counters: &Counters, now: u64) -> Result<u64> {
        let window = self.plan.window.max(1);
        let mut acks = 0;
        while let Some(frame) = self.reader.next_frame()? {
            match frame {
                Frame::Ack { reference, .. } => {
                    acks += 1;
                    self.answered += 1;
                    if reference > Ref(0) {
                        let at = self.sent_at[(reference.0 as usize - 1) % window];
                        record_ack(now.saturating_sub(at));
                    }
                }
                Frame::Error {
                    code,
                    reference,
                    text,
                    ..
                } => {
                    if code.is_fatal() {
                        counters.fatal.fetch_add(1, Relaxed);
                        return err(format!("{code:?}: {}", text.as_str()));
                    }
                    if reference > Ref(0) {
                        self.answered += 1;
                        counters.send_errors.fetch_add(1, Relaxed);
                        if code == ErrorCode::Busy {
                            counters.busy.fetch_add(1, Relaxed);
                        } else {
                            counters.note(format!("SEND refused: {code:?}: {}", text.as_str()));
                        }
                    }
                }
                Frame::Ping { token } => {
                    counters.pings.fetch_add(1, Relaxed);
                    Frame::Pong { token }.encode(&mut self.out);
                }
                // The DM to oneself, presence: not what is measured.
                _ => {}
            }
        }
        Ok(acks)
    }
}

/// Runs `senders` on the calling thread until each has had its plan's
/// SENDs answered, or until `limit`; returns whether all finished. An I/O
/// or protocol failure of any connection ends the run with an error.
pub(crate) fn run(senders: Vec<Sender>, counters: &Counters, limit: Duration) -> Result<bool> {
    let deadline = Instant::now() + limit;
    let poller = Poller::new()?;
    let mut running: Vec<Running> = Vec::with_capacity(senders.len());
    for s in senders {
        s.stream.set_nonblocking(true)?;
        running.push(Running {
            sent_at: vec![0; s.plan.window.max(1)],
            stream: s.stream,
            reader: s.reader,
            plan: s.plan,
            sent: 0,
            answered: 0,
            out: Vec::with_capacity(4096),
            written: 0,
            wants_write: false,
        });
    }
    let mut added = 0;
    let mut result = Ok(());
    for (key, r) in running.iter().enumerate() {
        // Safety (of the registration, which `polling` marks unsafe): every
        // socket added is deleted from the poller below, before `running`,
        // which owns the sockets, is dropped.
        result = unsafe { poller.add_with_mode(&r.stream, Event::readable(key), PollMode::Level) };
        if result.is_err() {
            break;
        }
        added += 1;
    }
    let result = match result {
        Ok(()) => serve(&poller, &mut running, counters, deadline),
        Err(e) => Err(e.into()),
    };
    for r in &running[..added] {
        let _ = poller.delete(&r.stream);
    }
    result
}

fn serve(
    poller: &Poller,
    running: &mut [Running],
    counters: &Counters,
    deadline: Instant,
) -> Result<bool> {
    let now = now_ns();
    for (key, r) in running.iter_mut().enumerate() {
        r.top_up(now);
        let sent = r.sent;
        counters.sent.fetch_add(sent, Relaxed);
        write_out(poller, key, r)?;
        // Frames that came with LOGIN_OK.
        let acks = r.take_frames(counters, now)?;
        counters.acked.fetch_add(acks, Relaxed);
    }
    let mut left = running.iter().filter(|r| !r.done()).count();
    let mut events = Events::new();
    while left > 0 {
        let Some(wait) = deadline.checked_duration_since(Instant::now()) else {
            return Ok(false);
        };
        events.clear();
        poller.wait(&mut events, Some(wait))?;
        let now = now_ns();
        let mut acked = 0;
        for ev in events.iter() {
            let key = ev.key;
            let Some(r) = running.get_mut(key) else {
                continue;
            };
            if ev.writable && r.wants_write {
                write_out(poller, key, r)?;
            }
            if !ev.readable {
                continue;
            }
            let was_done = r.done();
            match r.reader.fill_from(&mut r.stream) {
                Ok(0) => return err(format!("the server closed sender {}", r.plan.id)),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error(format!("sender {}: {e}", r.plan.id))),
            }
            acked += r.take_frames(counters, now)?;
            let before = r.sent;
            r.top_up(now);
            counters.sent.fetch_add(r.sent - before, Relaxed);
            write_out(poller, key, r)?;
            if !was_done && r.done() {
                left -= 1;
            }
        }
        if acked > 0 {
            counters.acked.fetch_add(acked, Relaxed);
            counters.last_ack_ns.fetch_max(now, Relaxed);
        }
    }
    Ok(true)
}

/// Flushes `r`'s output, registering for writability while some is left.
fn write_out(poller: &Poller, key: usize, r: &mut Running) -> Result<()> {
    let left = r.flush()?;
    if left != r.wants_write {
        let interest = if left {
            Event::all(key)
        } else {
            Event::readable(key)
        };
        poller.modify_with_mode(&r.stream, interest, PollMode::Level)?;
        r.wants_write = left;
    }
    Ok(())
}
