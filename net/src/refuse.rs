//! Connections the hub turns away: one write, a bounded linger, and a log
//! line per interval rather than per connection.
//!
//! A refused connection never becomes a session and never counts against
//! the limits ([`Hub::admit`](confab_engine::Hub::admit) decides before any
//! session exists). Its ERROR frame, encoded by the engine, goes out with
//! one non-blocking write (a fresh socket's send buffer always has room for
//! it), then our side is shut down. So that the kernel does not answer the
//! peer's unread bytes with a reset that could destroy the frame, the
//! socket lingers like a closing session's, reading and dropping for at
//! most a second and [`REFUSED_LINGER_BYTES`], but at most
//! [`MAX_LINGERING`] refused sockets at once: beyond that a storm's
//! sockets are closed at once, as are those of an address barred for
//! flooding.
//!
//! Logging each refusal let a storm flood the log (2,188 lines in 5 s).
//! The first refusal after a quiet interval is logged with its peer; the
//! rest are counted and summed up in one line per [`SUMMARY_EVERY`].

use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_executor::Executor;
use async_io::Async;
use confab_engine::{Refused, TurnedAway};
use log::info;

use crate::linger;

/// Refused sockets lingering at once (each is a descriptor and a small task).
pub(crate) const MAX_LINGERING: usize = 256;
/// Bytes a refused socket's linger reads at most: a client that is told
/// no has sent a HELLO and perhaps a LOGIN, not more.
pub(crate) const REFUSED_LINGER_BYTES: usize = 16 * 1024;
/// How often refusals are summed up in the log.
pub(crate) const SUMMARY_EVERY: Duration = Duration::from_secs(10);

/// The accept loop's refusals (see the module docs).
pub(crate) struct Refusals {
    lingering: Arc<AtomicUsize>,
    /// Counted since the last summary, by reason.
    full: u64,
    per_source: u64,
    flooded: u64,
    banned: u64,
    /// When the counted ones are due to be summed up; `None`: none counted.
    due: Option<Instant>,
}

impl Refusals {
    pub(crate) fn new() -> Refusals {
        Refusals {
            lingering: Arc::new(AtomicUsize::new(0)),
            full: 0,
            per_source: 0,
            flooded: 0,
            banned: 0,
            due: None,
        }
    }

    /// Writes the refusal, closes our side and lets the socket linger if
    /// there is room; logs per the module docs.
    pub(crate) fn turn_away(
        &mut self,
        ex: &Executor<'_>,
        now: Instant,
        stream: Async<TcpStream>,
        peer: SocketAddr,
        refused: Refused,
    ) {
        // Non-blocking: whatever does not fit is dropped, never waited for.
        let _ = stream.get_ref().write(&refused.frame);
        let _ = stream.get_ref().shutdown(Shutdown::Write);
        match self.due {
            None => {
                info!(
                    "turned away a connection peer={peer}: {}; further refusals are summed up every {} s",
                    describe(refused.reason),
                    SUMMARY_EVERY.as_secs()
                );
                self.due = Some(now + SUMMARY_EVERY);
            }
            Some(_) => match refused.reason {
                TurnedAway::Full => self.full += 1,
                TurnedAway::PerSource => self.per_source += 1,
                TurnedAway::Flooded => self.flooded += 1,
                TurnedAway::Banned => self.banned += 1,
            },
        }
        // An address barred for flooding gets no linger: it would only
        // write on into it, and a reset is all a flooder is owed.
        if refused.reason == TurnedAway::Flooded {
            return;
        }
        if self.lingering.fetch_add(1, Ordering::AcqRel) >= MAX_LINGERING {
            self.lingering.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        let lingering = self.lingering.clone();
        ex.spawn(async move {
            linger::linger_up_to(&stream, REFUSED_LINGER_BYTES).await;
            lingering.fetch_sub(1, Ordering::AcqRel);
        })
        .detach();
    }

    /// When [`Refusals::summarize`] is due.
    pub(crate) fn due(&self) -> Option<Instant> {
        self.due
    }

    /// Logs what was counted since the last line, if anything; a quiet
    /// interval ends the summing up.
    pub(crate) fn summarize(&mut self, now: Instant) {
        let total = self.full + self.per_source + self.flooded + self.banned;
        if total == 0 {
            self.due = None;
            return;
        }
        info!(
            "turned away {total} more connections in {} s: {} {}, {} {}, {} {}, {} {}",
            SUMMARY_EVERY.as_secs(),
            self.per_source,
            describe(TurnedAway::PerSource),
            self.full,
            describe(TurnedAway::Full),
            self.flooded,
            describe(TurnedAway::Flooded),
            self.banned,
            describe(TurnedAway::Banned),
        );
        self.full = 0;
        self.per_source = 0;
        self.flooded = 0;
        self.banned = 0;
        self.due = Some(now + SUMMARY_EVERY);
    }
}

pub(crate) fn describe(reason: TurnedAway) -> &'static str {
    match reason {
        TurnedAway::Full => "the server is full",
        TurnedAway::PerSource => "too many connections from the address",
        TurnedAway::Flooded => "the address flooded before logging in",
        TurnedAway::Banned => "the address is banned",
    }
}
