//! A session's timers: the login deadline, the idle ping, an unfinished
//! frame, the rate-limit pause and flood detection.

use std::time::Instant;

use crate::error::ProtocolError;
use crate::event::Event;
use crate::id::{ConnId, Ref};
use crate::send_queue::Class;

use super::Hub;

/// When a connection's reader may feed more bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadReady {
    /// Now.
    Now,
    /// Not before then (rate limit): TCP back-pressure does the rest.
    At(Instant),
    /// Never: the session is closing or gone.
    Never,
}

impl Hub {
    /// Runs the session's timers (see the module docs).
    pub fn handle_timeout(&mut self, now: Instant, conn: ConnId) {
        if self.sessions.get(conn).is_none_or(|s| s.state.is_closed()) {
            return;
        }
        if self.irc_deadline(conn).is_some_and(|t| now >= t) {
            self.irc_graced(now, conn);
        }
        let config = &self.config;
        let Some(s) = self.sessions.get_mut(conn) else {
            return;
        };
        let m = s.marks();
        let fatal = if s.state.auth_deadline().is_some_and(|d| now >= d) {
            Some(ProtocolError::AuthTimeout)
        } else if m
            .frame_started
            .is_some_and(|t| now >= t + config.frame_timeout)
        {
            Some(ProtocolError::FrameTimeout)
        } else if m.paused_until.is_some()
            && m.throttled_since
                .is_some_and(|t| now >= t + config.flood_timeout)
        {
            Some(ProtocolError::Flooding)
        } else if m.ping_sent.is_some_and(|t| now >= t + config.idle_timeout) {
            Some(ProtocolError::IdleTimeout)
        } else {
            None
        };
        if let Some(error) = fatal {
            if error == ProtocolError::Flooding {
                if let Some(user) = s.logged_in().map(|l| l.user) {
                    self.guard.penalize(now, user, &self.config);
                }
            }
            self.fatal(conn, Ref(0), error);
            self.finish();
            return;
        }
        if s.marks().paused_until.is_some_and(|t| now >= t) {
            s.set_marks(|m| m.paused_until = None);
        }
        s.refill_marks(now, config);
        if s.marks().ping_sent.is_none() && now >= s.last_heard + config.idle_timeout {
            s.set_marks(|m| m.ping_sent = Some(now));
            let token = self.next_ping;
            self.next_ping += 1;
            self.push(conn, Event::Ping { token }, Class::Control);
            self.finish();
        }
    }

    /// The next instant at which [`Hub::handle_timeout`] has work for `conn`.
    pub fn poll_timeout(&self, conn: ConnId) -> Option<Instant> {
        let own = self.sessions.get(conn)?.deadline(&self.config);
        match (own, self.irc_deadline(conn)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the reader may feed bytes now.
    pub fn read_ready(&self, now: Instant, conn: ConnId) -> ReadReady {
        match self.sessions.get(conn) {
            None => ReadReady::Never,
            Some(s) if s.state.is_closed() => ReadReady::Never,
            Some(s) => match s.marks().paused_until {
                Some(t) if t > now => ReadReady::At(t),
                _ => ReadReady::Now,
            },
        }
    }
}
