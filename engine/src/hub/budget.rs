//! What a request costs a session before the hub acts on it.
//!
//! Before login a session has a small budget of requests
//! (`pre_auth_burst`, refilled at `pre_auth_rate`): logging in takes a
//! few, so one that sends more is flooding, and is closed with its address
//! barred. After login every request pays its bytes as the front end read
//! them (at least `min_frame_charge`) against the byte budget, and all but
//! the exempt ones (see [`Request::is_exempt`](crate::Request::is_exempt))
//! a message token; a session over either is paused, told once, and
//! closed for flooding if it keeps it up past `flood_timeout`.

use std::time::{Duration, Instant};

use crate::error::ProtocolError;
use crate::id::{ConnId, Ref};
use crate::session::Bucket;

use super::Hub;

impl Hub {
    /// Pays for a request of `len` bytes before it is acted on; false if
    /// it may not be read now (the session was paused or closed instead).
    pub(super) fn pay(&mut self, now: Instant, conn: ConnId, exempt: bool, len: usize) -> bool {
        let Some(s) = self.sessions.get(conn) else {
            return false;
        };
        let source = s.source;
        if s.state.before_login() {
            if self.charge_pre_auth(now, conn) {
                return true;
            }
            let error = ProtocolError::FloodingBeforeLogin {
                burst: self.config.pre_auth_burst,
                rate: self.config.pre_auth_rate,
            };
            self.guard.bar(now, source, &self.config);
            self.fatal(conn, Ref(0), error);
            return false;
        }
        match self.charge(now, conn, exempt, len) {
            Ok(()) => true,
            Err(wait) => {
                self.throttle(now, conn, wait);
                false
            }
        }
    }

    /// Takes one request from a session's pre-auth budget; false if it is
    /// spent. Every request counts, PING included; its bytes are bounded by
    /// `max_frame_pre_auth`.
    fn charge_pre_auth(&mut self, now: Instant, conn: ConnId) -> bool {
        let config = &self.config;
        let Some(s) = self.sessions.get_mut(conn) else {
            return true;
        };
        let (rate, burst) = (
            f64::from(config.pre_auth_rate),
            f64::from(config.pre_auth_burst),
        );
        let mut frames = s.marks().msgs.unwrap_or(Bucket::full(burst, now));
        if frames.take(1.0, now, rate, burst).is_err() {
            return false;
        }
        s.set_marks(|m| m.msgs = Some(frames));
        true
    }

    /// Charges a request against a logged-in session's rate limits (see
    /// the module docs); the wait until it could be paid, if it cannot.
    fn charge(
        &mut self,
        now: Instant,
        conn: ConnId,
        exempt: bool,
        len: usize,
    ) -> Result<(), Duration> {
        let config = &self.config;
        let Some(s) = self.sessions.get_mut(conn) else {
            return Ok(());
        };
        let (mr, mb) = (config.msg_rate as f64, config.msg_burst as f64);
        let (br, bb) = (config.byte_rate as f64, config.byte_burst as f64);
        let cost = len.max(config.min_frame_charge as usize) as f64;
        // A client with slack in its buckets has been sending below its
        // rate: whatever it did before, it is not flooding now.
        let marks = s.marks();
        let mut msgs = marks.msgs.unwrap_or(Bucket::full(mb, now));
        let mut bytes = marks.bytes.unwrap_or(Bucket::full(bb, now));
        if (exempt || msgs.peek(now, mr, mb) >= 2.0) && bytes.peek(now, br, bb) >= 2.0 * cost {
            s.set_marks(|m| m.throttled_since = None);
        }
        // Check both before taking either, so a refused request costs nothing.
        if !exempt {
            msgs.take(1.0, now, mr, mb)?;
        }
        bytes.take(cost, now, br, bb)?;
        s.set_marks(|m| {
            if !exempt {
                m.msgs = Some(msgs);
            }
            m.bytes = Some(bytes);
        });
        Ok(())
    }

    /// Pauses reading for `wait`; the first time, tells the client.
    fn throttle(&mut self, now: Instant, conn: ConnId, wait: Duration) {
        let Some(s) = self.sessions.get_mut(conn) else {
            return;
        };
        s.set_marks(|m| m.paused_until = Some(now + wait));
        if s.marks().throttled_since.is_none() {
            s.set_marks(|m| m.throttled_since = Some(now));
            let wait = wait.max(Duration::from_millis(1));
            self.refuse(conn, Ref(0), ProtocolError::RateLimited { retry: wait });
        }
    }

    /// Counts a request handed to the shell; over the in-flight limit the
    /// client is told to retry.
    pub(super) fn begin_request(&mut self, conn: ConnId, reference: Ref) -> bool {
        let max = self.config.max_inflight;
        let Some(s) = self.sessions.get_mut(conn) else {
            return false;
        };
        if s.inflight >= max {
            self.refuse(conn, reference, ProtocolError::TooManyInFlight);
            return false;
        }
        s.inflight += 1;
        true
    }

    pub(super) fn end_request(&mut self, conn: ConnId) {
        if let Some(s) = self.sessions.get_mut(conn) {
            s.inflight = s.inflight.saturating_sub(1);
        }
    }
}
