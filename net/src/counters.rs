//! What the server did, counted: lock holds, writer wake-ups, drains and
//! writes, so a benchmark can report them per delivered message.
//!
//! Why counters and not a profile: the machine's speed drifts, counts do
//! not. A load generator sends SIGUSR2 at the start and the end of its
//! measurement window and divides the difference of the two
//! [`Counters::line`]s the server logs by the messages it delivered
//! (`confab-bench`, docs/PERFORMANCE.md).
//!
//! Each counter is a relaxed atomic: an increment per lock hold, wake-up,
//! drain or write, which is already a far larger cost of its own.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// The counters (see the module docs). All count from the server's start.
#[derive(Debug, Default)]
pub struct Counters {
    /// Acquisitions of the hub lock.
    pub lock_acquired: AtomicU64,
    /// Acquisitions that found it held.
    pub lock_contended: AtomicU64,
    /// Writer tasks woken by the hub.
    pub wakes: AtomicU64,
    /// `Hub::drain` calls that handed over bytes.
    pub drains: AtomicU64,
    /// Socket (or TLS) write calls.
    pub writes: AtomicU64,
    /// Bytes those writes took.
    pub written_bytes: AtomicU64,
}

impl Counters {
    /// Adds `n` to `counter`.
    #[inline]
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// `counters: lock_acquired=N lock_contended=N ...`: one line, keys in
    /// a fixed order, values as integers, for the log.
    pub fn line(&self) -> String {
        let mut line = String::from("counters:");
        for (key, value) in [
            ("lock_acquired", &self.lock_acquired),
            ("lock_contended", &self.lock_contended),
            ("wakes", &self.wakes),
            ("drains", &self.drains),
            ("writes", &self.writes),
            ("written_bytes", &self.written_bytes),
        ] {
            let _ = write!(line, " {key}={}", value.load(Ordering::Relaxed));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_every_counter_with_its_value() {
        let c = Counters::default();
        Counters::add(&c.wakes, 3);
        Counters::add(&c.written_bytes, 1500);
        assert_eq!(
            c.line(),
            "counters: lock_acquired=0 lock_contended=0 wakes=3 drains=0 writes=0 written_bytes=1500"
        );
    }
}
