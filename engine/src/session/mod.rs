//! One connection's session: its state machine ([`state`]), its rate
//! limits' buckets and its queue, as the hub keeps them.
//!
//! Timers (auth deadline, idle ping, frame completion, rate-limit pause and
//! flood) are plain `Instant`s compared against the `now` passed in.

pub(crate) mod state;

use std::time::Instant;

use crate::config::Config;
use crate::protocol::Protocol;
use crate::send_queue::SendQueue;

pub(crate) use crate::bucket::Bucket;
pub(crate) use state::State;

pub use crate::id::Source;
pub use state::{CloseReason, Phase};

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
    /// The front end it speaks: which codec encodes its events.
    pub(crate) protocol: Protocol,
    /// The protocol version its HELLO named (1 until then): requests of a
    /// later version are answered as that version's server would.
    pub(crate) version: u16,
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
    /// Where it is in the room log, from when it joined the roster
    /// (see `hub::room`).
    pub(crate) room: Option<crate::room_log::Cursor>,
    /// Listed among the room's waiters: woken by the next room message.
    pub(crate) room_waiting: bool,
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

    pub(crate) fn new(
        now: Instant,
        source: Source,
        protocol: Protocol,
        config: &Config,
    ) -> Session {
        Session {
            state: State::AwaitHello(state::AwaitHello {
                deadline: now + config.auth_timeout,
            }),
            source,
            protocol,
            version: 1,
            queue: SendQueue::default(),
            last_heard: now,
            marks: None,
            inflight: 0,
            wake_pending: false,
            unauthenticated: false,
            room: None,
            room_waiting: false,
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        self.state.phase()
    }

    /// The logged-in state, if any.
    #[inline]
    pub(crate) fn logged_in(&self) -> Option<&state::LoggedIn> {
        self.state.logged_in()
    }

    pub(crate) fn logged_in_mut(&mut self) -> Option<&mut state::LoggedIn> {
        self.state.logged_in_mut()
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
        min(self.state.auth_deadline());
        min(marks.frame_started.map(|t| t + config.frame_timeout));
        min(marks.paused_until);
        // Flooding is judged only while the session is held back.
        if marks.paused_until.is_some() {
            min(marks.throttled_since.map(|t| t + config.flood_timeout));
        }
        Some(d)
    }
}
