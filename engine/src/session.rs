//! One connection's state machine: Auth → RosterSync → Messaging → Closed.
//!
//! Each state holds exactly the data valid in it (the logged-in user exists
//! only once a login succeeded). [`accepts`] is the whole table of which
//! frame each state takes; the hub consults it before acting on a frame, so
//! a frame out of place gets `WRONG_STATE` and nothing else happens.
//! Timers (auth deadline, idle ping, frame completion, rate-limit pause and
//! flood) are plain `Instant`s compared against the `now` passed in.

use std::time::{Duration, Instant};

use crate::config::Config;
use crate::frame::{kind, ErrorCode};
use crate::id::{MessageId, Ref, RosterVersion};
use crate::name::Name;
use crate::send_queue::SendQueue;

/// An opaque key for the peer's source address: the shell maps addresses to
/// it (the engine does no networking), and the hub counts sessions per key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Source(pub u128);

/// The state of a session, with the data valid in it.
#[derive(Debug)]
pub(crate) enum State {
    /// Before login: HELLO, then REGISTER/LOGIN.
    Auth(state::Auth),
    /// Logged in, the roster snapshot sent, waiting for its ROSTER_ACK.
    RosterSync(state::LoggedIn),
    /// Logged in and synced.
    Messaging(state::LoggedIn),
    /// Closing: whatever is queued is flushed, then the shell closes.
    Closed(state::Closed),
}

pub(crate) mod state {
    use super::*;

    #[derive(Debug)]
    pub(crate) struct Auth {
        pub(crate) deadline: Instant,
        pub(crate) hello: bool,
        /// A REGISTER or LOGIN waiting for the shell's answer.
        pub(crate) pending: Option<PendingAuth>,
    }

    #[derive(Debug, Clone, Copy)]
    pub(crate) enum PendingAuth {
        Register {
            reference: Ref,
        },
        Login {
            reference: Ref,
            resume_after: MessageId,
            roster: bool,
        },
    }

    #[derive(Debug)]
    pub(crate) struct LoggedIn {
        pub(crate) user: Name,
        pub(crate) roster: RosterCursor,
    }

    /// Where a session stands in the roster stream.
    #[derive(Debug, Default)]
    pub(crate) struct RosterCursor {
        /// Newest version queued for the session.
        pub(crate) sent: RosterVersion,
        /// Newest version the client acknowledged.
        pub(crate) acked: RosterVersion,
        /// Queued deltas had to be dropped: send a snapshot when there is room.
        pub(crate) needs_snapshot: bool,
        /// The version of the last snapshot sent: acking it ends RosterSync.
        pub(crate) synced_at: RosterVersion,
    }

    #[derive(Debug)]
    pub(crate) struct Closed {
        pub(crate) reason: CloseReason,
    }
}

/// Why a session closed, for the shell's log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The client logged out.
    Logout,
    /// The server is shutting down.
    Shutdown,
    /// A fatal protocol error was sent to the client.
    Error(ErrorCode, String),
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::Logout => f.write_str("logged out"),
            CloseReason::Shutdown => f.write_str("server shutdown"),
            CloseReason::Error(code, text) => write!(f, "error {}: {text}", code.to_u16()),
        }
    }
}

/// The state names of docs/PROTOCOL.md, for errors and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Connected, no HELLO yet.
    AwaitHello,
    /// HELLO done, not logged in (or a login is being checked).
    Auth,
    /// Logged in, waiting for the snapshot's ROSTER_ACK.
    RosterSync,
    /// Logged in and synced.
    Messaging,
    /// Closing.
    Closed,
}

/// Whether a session in `phase` accepts a frame of type `k` from the client.
/// This is the table "Frames accepted per state" of docs/PROTOCOL.md.
pub fn accepts(phase: Phase, k: u8) -> bool {
    use Phase::*;
    match k {
        kind::PING | kind::PONG => phase != Closed,
        kind::HELLO => phase == AwaitHello,
        kind::REGISTER | kind::LOGIN => phase == Auth,
        kind::LOGOUT | kind::ROSTER_ACK => matches!(phase, RosterSync | Messaging),
        kind::GROUP_CREATE
        | kind::GROUP_JOIN
        | kind::GROUP_LEAVE
        | kind::GROUP_LIST_REQUEST
        | kind::SEND
        | kind::HISTORY_REQUEST => phase == Messaging,
        // Server-to-client frames are never accepted from a client.
        _ => false,
    }
}

/// A token bucket: `rate` per second sustained, `burst` at most.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub(crate) fn full(burst: f64, now: Instant) -> Bucket {
        Bucket {
            tokens: burst,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant, rate: f64, burst: f64) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * rate).min(burst);
        self.at = now;
    }

    /// The tokens there would be at `now`, without taking any.
    pub(crate) fn peek(&self, now: Instant, rate: f64, burst: f64) -> f64 {
        let mut b = *self;
        b.refill(now, rate, burst);
        b.tokens
    }

    /// Takes `n` tokens, or says how long until they are there.
    pub(crate) fn take(
        &mut self,
        n: f64,
        now: Instant,
        rate: f64,
        burst: f64,
    ) -> Result<(), Duration> {
        self.refill(now, rate, burst);
        // A cost above the burst could never be paid: charge it down to the
        // burst so an oversized (but allowed) frame waits, rather than forever.
        let n = n.min(burst);
        if self.tokens >= n {
            self.tokens -= n;
            Ok(())
        } else if rate <= 0.0 {
            Err(Duration::from_secs(3600))
        } else {
            Err(Duration::from_secs_f64((n - self.tokens) / rate).max(Duration::from_millis(1)))
        }
    }
}

/// A session's state that is set only for a while: most sessions, idle
/// ones, have none of it, so it lives in a box that exists only while
/// something is set (~110 bytes less per idle connection; a PING round trip
/// allocates it once a minute or so).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Marks {
    /// The rate limits' token buckets; `None` is full (see
    /// [`Session::refill_marks`]).
    pub(crate) msgs: Option<Bucket>,
    pub(crate) bytes: Option<Bucket>,
    /// An unanswered PING of ours: when it went out.
    pub(crate) ping_sent: Option<Instant>,
    /// When the first byte of a still-incomplete frame arrived.
    pub(crate) frame_started: Option<Instant>,
    /// Reading is paused until then (rate limit).
    pub(crate) paused_until: Option<Instant>,
    /// Since when the client has been ahead of its rate limit.
    pub(crate) throttled_since: Option<Instant>,
}

/// No marks set: what a session without its box reads.
const NO_MARKS: Marks = Marks {
    msgs: None,
    bytes: None,
    ping_sent: None,
    frame_started: None,
    paused_until: None,
    throttled_since: None,
};

/// Everything the hub keeps per connection.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) state: State,
    pub(crate) source: Source,
    pub(crate) queue: SendQueue,
    /// Last time any byte arrived.
    pub(crate) last_heard: Instant,
    /// Boxed only while one of them is set (see [`Marks`]).
    marks: Option<Box<Marks>>,
    /// Requests handed to the shell and not answered yet.
    pub(crate) inflight: u16,
    /// The writer was told about queued bytes and has not drained yet.
    pub(crate) wake_pending: bool,
    /// Counted among its source's connections that have not logged in
    /// (see `Config::max_pre_auth_per_source`) until it logs in or goes.
    pub(crate) unauthenticated: bool,
}

impl Session {
    /// The marks, read in place (no copy on the per-frame path).
    pub(crate) fn marks(&self) -> &Marks {
        self.marks.as_deref().unwrap_or(&NO_MARKS)
    }

    /// Forgets buckets that have refilled, so that an idle session's marks
    /// can be freed.
    pub(crate) fn refill_marks(&mut self, now: Instant, config: &Config) {
        let full = |b: Option<Bucket>, rate: f64, burst: f64| {
            b.filter(|b| b.peek(now, rate, burst) < burst)
        };
        let m = *self.marks();
        let (msgs, bytes) = (
            full(
                m.msgs,
                f64::from(config.msg_rate),
                f64::from(config.msg_burst),
            ),
            full(
                m.bytes,
                f64::from(config.byte_rate),
                f64::from(config.byte_burst),
            ),
        );
        if (msgs.is_none() && m.msgs.is_some()) || (bytes.is_none() && m.bytes.is_some()) {
            self.set_marks(|m| {
                m.msgs = msgs;
                m.bytes = bytes;
            });
        }
    }

    #[cfg(test)]
    pub(crate) fn holds_marks(&self) -> bool {
        self.marks.is_some()
    }

    /// Changes the marks; frees their box once none is set.
    pub(crate) fn set_marks(&mut self, change: impl FnOnce(&mut Marks)) {
        match &mut self.marks {
            Some(b) => {
                change(b);
                if **b == NO_MARKS {
                    self.marks = None;
                }
            }
            None => {
                let mut marks = NO_MARKS;
                change(&mut marks);
                if marks != NO_MARKS {
                    self.marks = Some(Box::new(marks));
                }
            }
        }
    }

    pub(crate) fn new(now: Instant, source: Source, config: &Config) -> Session {
        Session {
            state: State::Auth(state::Auth {
                deadline: now + config.auth_timeout,
                hello: false,
                pending: None,
            }),
            source,
            queue: SendQueue::default(),
            last_heard: now,
            marks: None,
            inflight: 0,
            wake_pending: false,
            unauthenticated: false,
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        match &self.state {
            State::Auth(a) if !a.hello => Phase::AwaitHello,
            State::Auth(_) => Phase::Auth,
            State::RosterSync(_) => Phase::RosterSync,
            State::Messaging(_) => Phase::Messaging,
            State::Closed(_) => Phase::Closed,
        }
    }

    /// The logged-in state, if any.
    pub(crate) fn logged_in(&self) -> Option<&state::LoggedIn> {
        match &self.state {
            State::RosterSync(l) | State::Messaging(l) => Some(l),
            _ => None,
        }
    }

    pub(crate) fn logged_in_mut(&mut self) -> Option<&mut state::LoggedIn> {
        match &mut self.state {
            State::RosterSync(l) | State::Messaging(l) => Some(l),
            _ => None,
        }
    }

    /// The next instant at which [`crate::Hub::handle_timeout`] has work for
    /// this session.
    pub(crate) fn deadline(&self, config: &Config) -> Option<Instant> {
        if let State::Closed(_) = self.state {
            return None;
        }
        let marks = self.marks();
        let mut d = match marks.ping_sent {
            Some(sent) => sent + config.idle_timeout,
            None => self.last_heard + config.idle_timeout,
        };
        let mut min = |t: Option<Instant>| {
            if let Some(t) = t {
                d = d.min(t);
            }
        };
        if let State::Auth(a) = &self.state {
            min(Some(a.deadline));
        }
        min(marks.frame_started.map(|t| t + config.frame_timeout));
        min(marks.paused_until);
        // Flooding is judged only while the session is held back.
        if marks.paused_until.is_some() {
            min(marks.throttled_since.map(|t| t + config.flood_timeout));
        }
        Some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_table_admits_chat_frames_only_after_sync() {
        assert!(accepts(Phase::AwaitHello, kind::HELLO));
        assert!(!accepts(Phase::AwaitHello, kind::LOGIN));
        assert!(accepts(Phase::Auth, kind::LOGIN));
        assert!(!accepts(Phase::Auth, kind::SEND));
        assert!(!accepts(Phase::RosterSync, kind::SEND));
        assert!(accepts(Phase::RosterSync, kind::ROSTER_ACK));
        assert!(accepts(Phase::Messaging, kind::SEND));
        assert!(!accepts(Phase::Messaging, kind::HELLO));
        assert!(!accepts(Phase::Messaging, kind::MESSAGE));
        assert!(!accepts(Phase::Closed, kind::PING));
    }

    #[test]
    fn a_bucket_refills_at_its_rate_up_to_its_burst() {
        let t0 = Instant::now();
        let mut b = Bucket::full(2.0, t0);
        assert!(b.take(1.0, t0, 10.0, 2.0).is_ok());
        assert!(b.take(1.0, t0, 10.0, 2.0).is_ok());
        let wait = b.take(1.0, t0, 10.0, 2.0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        assert!(b.take(1.0, t0 + wait, 10.0, 2.0).is_ok());
        // Long idle does not bank more than the burst.
        let later = t0 + Duration::from_secs(60);
        assert!(b.take(2.0, later, 10.0, 2.0).is_ok());
        assert!(b.take(1.0, later, 10.0, 2.0).is_err());
    }
}
