//! The reader and the writer of one connection as one hand-written future.
//!
//! An idle connection's task is mostly this future, and it is paid for per
//! connection for as long as the connection lives (docs/PERFORMANCE.md,
//! "Fourth step"). As two `async` blocks raced by `future::or`, each kept
//! its own copy of the references it was called with, its `poll_fn`
//! closures' captures and the write's progress, 392 bytes in all; as plain
//! structs polled in turn they hold each thing once (see the size test).
//!
//! The behaviour is that of the loops it replaced, step for step:
//!
//! - **Reader.** Fed once at the start (the hub's first deadline), then, by
//!   what the hub last said about reading: `Now`, waits for the socket and
//!   the timer in one poll, the read first; `Now` with a whole frame held
//!   back by the per-turn budget, yields once and feeds again; `At`, waits
//!   for the timer (armed no later than `At`) and then reads what came
//!   meanwhile in with the held-back frames; `Never`, the session is closing:
//!   the writer ends the race by flushing, and the reader's timer bounds
//!   that by [`CLOSE_FLUSH`]. The timer exists only while a deadline is
//!   within [`NEAR`]: farther ones are watched by the sweep
//!   ([`crate::sweep`]), which wakes the task when they come near.
//! - **Writer.** Drains up to [`WRITE_BATCH`] under the lock, parking in the
//!   same hold when that emptied the queue; writes outside it through the
//!   thread's contiguous buffer; when parked, takes the lock again only once
//!   the hub has set `woken`.
//!
//! Both are polled in each poll of the task, the reader first, as
//! `future::or` did.

use std::cell::RefCell;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{ready, Context, Poll};
use std::time::Instant;

use async_io::Timer;
use confab_engine::{ConnId, Outgoing, ReadReady};

use super::{feed, End, Fed, Transport, CLOSE_FLUSH, MIN_REARM, WRITE_BATCH, WRITE_CHUNK};
use crate::counters::Counters;
use crate::shared::Shared;
use crate::sweep::NEAR;

/// A connection's reader and writer until one of them ends it.
pub(crate) struct Serve<'a, T> {
    shared: &'a Shared,
    stream: &'a T,
    conn: ConnId,
    woken: &'a AtomicBool,
    reader: Reader,
    writer: Writer,
}

/// The reader's state between polls.
struct Reader {
    /// Bytes the hub has not taken yet; freed whenever it empties.
    leftover: Vec<u8>,
    /// A timer for `armed` only while it is near ([`NEAR`]), or for the
    /// close bound: boxed, so that an idle connection, whose deadline is its
    /// idle ping far away, holds neither a timer in its task nor an entry in
    /// the reactor's timer map (~110 bytes per connection); the sweep
    /// ([`crate::sweep`]) wakes the task when its deadline comes near.
    timer: Option<Box<Timer>>,
    /// The hub's deadline for the connection (`None`: none, or fired).
    armed: Option<Instant>,
    /// What the hub last said about reading, and how far the step is.
    reading: Reading,
}

/// What the hub last said about reading ([`ReadReady`] and whether a whole
/// frame is held back), one byte: `At`'s instant is not kept, the timer is
/// armed no later than it.
#[derive(Clone, Copy)]
enum Reading {
    /// Read when the socket is readable.
    Now,
    /// The leftover holds a whole frame the hub did not take (budget):
    /// yield once, then feed again.
    Backlog,
    /// The budget's yield was taken: the next poll feeds again.
    Yielded,
    /// Paused by the rate limit until the timer fires.
    Paused,
    /// Never again: the session is closing; the close bound is not armed yet.
    Closing,
    /// The close bound is armed.
    ClosingArmed,
}

/// The writer's state between polls.
struct Writer {
    /// The drained frames being written (empty, and unallocated, when parked).
    frames: Vec<Outgoing>,
    /// The next frame to write, and how much of it is written.
    next: u32,
    offset: u32,
    /// The hub holds this task's waker: drain again only once `woken` is set.
    parked: bool,
    /// `frames` is being written.
    writing: bool,
    /// After these frames, the session is over.
    close: bool,
}

impl<'a, T: Transport> Serve<'a, T> {
    /// Feeds the hub once (nothing read yet), which gives the first deadline.
    pub(crate) fn new(
        shared: &'a Shared,
        stream: &'a T,
        conn: ConnId,
        woken: &'a AtomicBool,
    ) -> Serve<'a, T> {
        let mut reader = Reader {
            leftover: Vec::new(),
            timer: None,
            armed: None,
            reading: Reading::Now,
        };
        let fed = feed(shared, conn, &mut reader.leftover, &[], false);
        reader.set(fed);
        Serve {
            shared,
            stream,
            conn,
            woken,
            reader,
            writer: Writer {
                frames: Vec::new(),
                next: 0,
                offset: 0,
                parked: false,
                writing: false,
                close: false,
            },
        }
    }
}

impl<T: Transport> Future for Serve<'_, T> {
    type Output = End;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<End> {
        let s = self.get_mut();
        if let Poll::Ready(end) = s.reader.poll(cx, s.shared, s.stream, s.conn) {
            return Poll::Ready(end);
        }
        s.writer.poll(cx, s.shared, s.stream, s.conn, s.woken)
    }
}

impl Reader {
    /// Takes in what the hub said, moving the timer if its deadline moved
    /// (a far deadline's timer goes at the next [`Reader::poll_timer`]).
    fn set(&mut self, fed: Fed) {
        if fed.deadline != self.armed {
            match (&mut self.timer, fed.deadline) {
                (Some(timer), Some(t)) => timer.set_at(t),
                _ => self.timer = None,
            }
            self.armed = fed.deadline;
        }
        self.reading = match fed.ready {
            ReadReady::Now if fed.backlog => Reading::Backlog,
            ReadReady::Now => Reading::Now,
            ReadReady::At(_) => Reading::Paused,
            ReadReady::Never => Reading::Closing,
        };
    }

    /// Ready once `armed` has passed, which is then cleared. A near
    /// deadline is waited for with a timer of its own; a far one is left to
    /// the sweep, which wakes this task once it is near.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(t) = self.armed else {
            return Poll::Pending;
        };
        if t.saturating_duration_since(Instant::now()) > NEAR {
            self.timer = None;
            return Poll::Pending;
        }
        let timer = self.timer.get_or_insert_with(|| Box::new(Timer::at(t)));
        ready!(Pin::new(&mut **timer).poll(cx));
        self.timer = None;
        self.armed = None;
        Poll::Ready(())
    }

    /// Handles a timer firing.
    fn on_timer(&mut self, shared: &Shared, conn: ConnId) {
        let fed = feed(shared, conn, &mut self.leftover, &[], true);
        self.set(not_sooner(fed));
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
        shared: &Shared,
        stream: &impl Transport,
        conn: ConnId,
    ) -> Poll<End> {
        loop {
            match self.reading {
                Reading::Closing => {
                    // Closing: the writer flushes and ends the race, within a
                    // bound. The reader's timer measures it.
                    self.reading = Reading::ClosingArmed;
                    self.timer = Some(Box::new(Timer::after(CLOSE_FLUSH)));
                }
                Reading::ClosingArmed => {
                    if let Some(timer) = &mut self.timer {
                        ready!(Pin::new(&mut **timer).poll(cx));
                    }
                    return Poll::Ready(End::FlushTimeout);
                }
                Reading::Paused => {
                    // Paused by the rate limit; the deadline is no later than `At`.
                    ready!(self.poll_timer(cx));
                    // What arrived meanwhile goes in with the held-back frames,
                    // so the hub sees a flood that never paused as one.
                    match stream.read_now_and_feed(shared, conn, &mut self.leftover) {
                        Ok(Some(fed)) => self.set(not_sooner(fed)),
                        Ok(None) => self.on_timer(shared, conn),
                        Err(end) => return Poll::Ready(end),
                    }
                }
                Reading::Backlog => {
                    // Let the other tasks of the thread run before the next turn.
                    self.reading = Reading::Yielded;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Reading::Yielded => {
                    let fed = feed(shared, conn, &mut self.leftover, &[], false);
                    self.set(fed);
                }
                Reading::Now => {
                    // The read first, then the timer. A read reads and feeds in
                    // one step after its wait, or not at all.
                    match stream.poll_read_and_feed(cx, shared, conn, &mut self.leftover) {
                        Poll::Ready(Ok(fed)) => self.set(fed),
                        Poll::Ready(Err(end)) => return Poll::Ready(end),
                        Poll::Pending => {
                            ready!(self.poll_timer(cx));
                            self.on_timer(shared, conn);
                        }
                    }
                }
            }
        }
    }
}

/// After a timeout: the next deadline is at least [`MIN_REARM`] away.
fn not_sooner(mut fed: Fed) -> Fed {
    let soonest = Instant::now() + MIN_REARM;
    fed.deadline = fed.deadline.map(|t| t.max(soonest));
    fed
}

impl Writer {
    fn poll(
        &mut self,
        cx: &mut Context<'_>,
        shared: &Shared,
        stream: &impl Transport,
        conn: ConnId,
        woken: &AtomicBool,
    ) -> Poll<End> {
        loop {
            if !self.writing {
                // Unless parked, drain at once; parked (the task is woken by
                // the reader's events too), take the lock only if the hub woke
                // this writer.
                if self.parked && !woken.swap(false, Ordering::AcqRel) {
                    return Poll::Pending;
                }
                let (frames, parked) = (&mut self.frames, &mut self.parked);
                let drained = shared.with_core(|core, _| {
                    // The sweep wakes the task through this waker too.
                    core.remember_waker(conn, cx.waker());
                    let drained = core.hub.drain(conn, frames, WRITE_BATCH);
                    if drained.bytes == 0 && !drained.close {
                        core.park_writer(conn);
                        *parked = true;
                        // Parked, perhaps for hours: an idle connection
                        // keeps no buffer (the vector is empty here). A
                        // busy one keeps it from drain to drain.
                        *frames = Vec::new();
                        None
                    } else {
                        // Emptied: park in this same hold, before writing,
                        // so the loop need not lock again only to park.
                        *parked = drained.empty && !drained.close;
                        if *parked {
                            core.park_writer(conn);
                        }
                        Some(drained)
                    }
                });
                let Some(drained) = drained else {
                    return Poll::Pending;
                };
                if drained.bytes > 0 {
                    Counters::add(&shared.counters.drains, 1);
                }
                (self.writing, self.close) = (true, drained.close);
                (self.next, self.offset) = (0, 0);
            }
            if let Err(e) = ready!(self.poll_write(cx, stream, &shared.counters)) {
                return Poll::Ready(End::Io(e));
            }
            self.writing = false;
            if self.close {
                return Poll::Ready(End::Closed);
            }
            self.frames.clear();
            if self.parked || self.frames.capacity() > 1024 {
                // Parked: perhaps idle from now on (see above).
                self.frames = Vec::new();
            }
        }
    }

    /// Writes every frame, looping on partial writes, then flushes.
    ///
    /// The frames are copied into one contiguous buffer of the thread's,
    /// [`WRITE_CHUNK`] bytes at a time, and each chunk is one plain write:
    /// the kernel copies one contiguous buffer several times faster than
    /// the same bytes in one iovec per ~150-byte frame (docs/PERFORMANCE.md,
    /// "Where the CPU goes"). The buffer is the thread's, not the task's, so
    /// a waiting write holds none: the progress is two integers, and a chunk
    /// the socket did not take is copied again when it is writable.
    fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        stream: &impl Transport,
        counters: &Counters,
    ) -> Poll<io::Result<()>> {
        let frames = &self.frames;
        while let Some(first) = frames.get(self.next as usize) {
            let n = WRITE_BUF.with_borrow_mut(|buf| {
                buf.clear();
                let rest = frames[self.next as usize + 1..].iter().map(|f| &f[..]);
                for f in std::iter::once(&first[self.offset as usize..]).chain(rest) {
                    if !buf.is_empty() && buf.len() + f.len() > WRITE_CHUNK {
                        break;
                    }
                    buf.extend_from_slice(f);
                }
                let n = stream.poll_write_vectored(cx, &[IoSlice::new(buf)]);
                if buf.capacity() > 2 * WRITE_CHUNK {
                    // A frame larger than a chunk (a history page): not kept.
                    *buf = Vec::with_capacity(WRITE_CHUNK);
                }
                n
            });
            let mut n = ready!(n)?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            Counters::add(&counters.writes, 1);
            Counters::add(&counters.written_bytes, n as u64);
            while let Some(f) = frames.get(self.next as usize) {
                let rest = f.len() - self.offset as usize;
                if n < rest {
                    // Frames are bounded by the frame limit, far below 4 GiB.
                    self.offset += n as u32;
                    break;
                }
                n -= rest;
                self.next += 1;
                self.offset = 0;
            }
        }
        stream.poll_flush(cx)
    }
}

thread_local! {
    /// The contiguous copy of the frames a writer is writing (see
    /// [`Writer::poll_write`]).
    static WRITE_BUF: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(WRITE_CHUNK));
}
