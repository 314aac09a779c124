//! Queueing events for sessions, waking their writers, draining, closing.
//!
//! Every event for a session goes through [`Outbox::push`], which charges
//! it to the session's queue at its length in the session's protocol and
//! wakes the writer if it was idle. A push never closes anything itself:
//! a queue that overflows is recorded, and [`Hub::finish`] closes it once
//! the input that caused it is handled, so pushing is safe from anywhere
//! (a broadcast loop, a roster update) without re-entering the hub.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::effect::Effect;
use crate::error::ProtocolError;
use crate::event::Event;
use crate::id::{ConnId, MessageId, Ref};
use crate::send_queue::{Class, Drain, Pushed, Queued, SpareQueues};
use crate::session::state::{Closed, LoggedIn};
use crate::session::{CloseReason, Session, State};
use crate::shared::{Outgoing, Shared};
use crate::wire::frame::Target;

use super::room::Room;
use super::{Hub, Output};

/// What [`Hub::drain`] handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Bytes moved into the caller's vector.
    pub bytes: usize,
    /// After writing them, close the connection: the session is over.
    pub close: bool,
    /// Nothing is left to hand over (no frame queued, no MISSED report or
    /// roster snapshot waiting for a drain to queue it): the next frame
    /// queued for the connection yields [`Output::Wake`], so a writer may
    /// park now, before writing these, instead of draining once more only
    /// to find nothing.
    pub empty: bool,
}

/// The hub's outputs and the queues' shared spare state (see the module docs).
#[derive(Debug, Default)]
pub(super) struct Outbox {
    pub(super) outputs: VecDeque<Output>,
    /// Queue states of sessions whose queue emptied, for reuse.
    spare: SpareQueues,
    /// Sessions whose queue overflowed; closed by [`Hub::finish`].
    overflowed: Vec<ConnId>,
}

impl Outbox {
    /// Queues `item` for session `s` (`conn`) within `limit` bytes.
    #[inline]
    pub(super) fn push(
        &mut self,
        s: &mut Session,
        conn: ConnId,
        item: Queued,
        class: Class,
        limit: usize,
    ) {
        match s.queue.push_from(&mut self.spare, item, class, limit) {
            Pushed::Queued { .. } | Pushed::Dropped => self.wake(s, conn),
            Pushed::Overflow => self.overflowed.push(conn),
        }
    }

    /// Records a session to close as a slow consumer once the input is handled.
    pub(super) fn overflowed(&mut self, conn: ConnId) {
        self.overflowed.push(conn);
    }

    pub(super) fn take_overflowed(&mut self) -> Option<ConnId> {
        self.overflowed.pop()
    }

    /// Tells the shell to drain `conn`, once until it does.
    #[inline]
    pub(super) fn wake(&mut self, s: &mut Session, conn: ConnId) {
        if !s.wake_pending {
            s.wake_pending = true;
            self.outputs.push_back(Output::Wake(conn));
        }
    }

    pub(super) fn effect(&mut self, effect: Effect) {
        self.outputs.push_back(Output::Effect(effect));
    }
}

impl Hub {
    /// Queues a new event for one session.
    pub(super) fn push(&mut self, conn: ConnId, event: Event, class: Class) {
        self.push_shared(conn, &Shared::new(event), class, None);
    }

    /// Queues a shared event for one session; `message` names the
    /// conversation and id of a message, so that a drop can be reported.
    pub(super) fn push_shared(
        &mut self,
        conn: ConnId,
        event: &Arc<Shared>,
        class: Class,
        message: Option<(Target, MessageId)>,
    ) {
        let Some(s) = self.sessions.get_mut(conn) else {
            return;
        };
        let codec = &*self.codecs[s.protocol.index()];
        let item = Queued {
            len: event.encoded_len(s.protocol, codec),
            event: event.clone(),
            message,
        };
        self.outbox
            .push(s, conn, item, class, self.config.send_queue_bytes);
    }

    /// Answers a request with an error; a fatal one closes the session.
    pub(super) fn refuse(&mut self, conn: ConnId, reference: Ref, error: ProtocolError) {
        if error.is_fatal() {
            self.fatal(conn, reference, error);
        } else {
            self.counts.errors[super::counts::code_index(error.code())] += 1;
            self.push(conn, Event::Error { reference, error }, Class::Control);
        }
    }

    /// Sends a fatal error and closes the session.
    pub(super) fn fatal(&mut self, conn: ConnId, reference: Ref, error: ProtocolError) {
        let limit = self.config.send_queue_bytes;
        let Some(s) = self.sessions.get_mut(conn) else {
            return;
        };
        if s.state.is_closed() {
            return;
        }
        self.counts.errors[super::counts::code_index(error.code())] += 1;
        let reason = CloseReason::Error(error.code(), error.to_string());
        let event = Shared::new(Event::Error { reference, error });
        let codec = &*self.codecs[s.protocol.index()];
        let item = Queued {
            len: event.encoded_len(s.protocol, codec),
            event,
            message: None,
        };
        // In the last class, so that it is the last frame written, after
        // whatever was queued before it (nothing is queued after it: the
        // session is closed), as the spec promises.
        if let Pushed::Overflow = s.queue.push(item.clone(), Class::Bulk, limit) {
            s.queue = Default::default();
            let _ = s.queue.push(item, Class::Bulk, usize::MAX);
        }
        self.close(conn, reason);
    }

    /// `conn` fell behind even the ids the room log keeps: an open session
    /// is closed as a slow consumer; a closed one stops reading the room.
    fn room_cut(&mut self, conn: ConnId) {
        let Some(s) = self.sessions.get_mut(conn) else {
            return;
        };
        s.room = None;
        if !s.state.is_closed() {
            self.slow_consumer(conn);
            self.finish();
        }
    }

    pub(super) fn slow_consumer(&mut self, conn: ConnId) {
        let Some(s) = self.sessions.get_mut(conn) else {
            return;
        };
        if s.state.is_closed() {
            return;
        }
        // What is queued will not be read in time; make room for the reason.
        s.queue = Default::default();
        self.fatal(conn, Ref(0), ProtocolError::SlowConsumer);
    }

    /// Moves a session to Closed: it leaves the roster and its groups' view
    /// now; its queue is still flushed by the writer.
    pub(super) fn close(&mut self, conn: ConnId, reason: CloseReason) {
        let Some(s) = self.sessions.get_mut(conn) else {
            return;
        };
        let closed = Closed {
            reason,
            room_below: self.last_id.next(),
        };
        let was = std::mem::replace(&mut s.state, State::Closed(closed));
        s.set_marks(|m| {
            m.paused_until = None;
            m.frame_started = None;
        });
        self.left(conn, was.logged_in().copied());
        if let Some(s) = self.sessions.get_mut(conn) {
            self.outbox.wake(s, conn);
        }
    }

    /// `conn` (of `user`, if it had logged in) is closed or gone: it leaves
    /// the roster and the streams it was in.
    pub(super) fn left(&mut self, conn: ConnId, logged_in: Option<LoggedIn>) {
        self.subscribers.remove(&conn);
        self.replays.cancel(conn);
        let Some(LoggedIn { user, device, .. }) = logged_in else {
            return;
        };
        if let Some(device) = device {
            self.device_left(conn, device);
        }
        let delta = self.roster.detach(user, conn);
        self.announce_departure(user);
        if let Some(delta) = delta {
            let delta = self.with_quit_reason(conn, delta);
            self.outbox.effect(Effect::UserOffline {
                user,
                seen_upto: self.last_id,
            });
            self.broadcast_roster(&delta, Some(conn));
        }
    }

    /// Moves up to about `max_bytes` of `conn`'s queued events, most
    /// important first, into `out`, each encoded by its protocol's codec
    /// (once per event and protocol: see [`Outgoing`]). Call
    /// until it returns no bytes, then wait for [`Output::Wake`]; close the
    /// connection when it says so.
    pub fn drain(&mut self, conn: ConnId, out: &mut Vec<Outgoing>, max_bytes: usize) -> Drained {
        let start = out.len();
        let drained = self.drain_queued(conn, out, max_bytes);
        self.count_drained(&out[start..]);
        if self.is_irc(conn) {
            self.irc_drained(conn, out, start);
        }
        drained
    }

    /// [`Hub::drain`] before a gateway renders what it moved.
    fn drain_queued(&mut self, conn: ConnId, out: &mut Vec<Outgoing>, max_bytes: usize) -> Drained {
        const GONE: Drained = Drained {
            bytes: 0,
            close: true,
            empty: true,
        };
        let Some(s) = self.sessions.get_mut(conn) else {
            return GONE;
        };
        s.wake_pending = false;
        if s.logged_in().is_some_and(|l| l.roster.needs_snapshot) {
            self.roster_catch_up(conn);
        }
        self.finish();
        let Hub {
            sessions,
            outbox,
            codecs,
            room,
            replays,
            ..
        } = self;
        let Some(s) = sessions.get_mut(conn) else {
            return GONE;
        };
        let (protocol, codec) = (s.protocol, &*codecs[s.protocol.index()]);
        // While its replay loads, the room log waits (see `room`).
        let reads_room = s.room.is_some() && !replays.holds(conn);
        let mut pass = Pass {
            s,
            spare: &mut outbox.spare,
            encode: |e| Outgoing::new(e, protocol, codec),
            out,
            max_bytes,
            bytes: 0,
        };
        pass.part(Class::Control..=Class::Control, MessageId(u64::MAX));
        let cut = pass.messages(conn, reads_room.then_some(&*room));
        if !cut {
            pass.part(Class::Roster..=Class::Bulk, MessageId(u64::MAX));
        }
        let (s, bytes) = (pass.s, pass.bytes);
        let room_pending = reads_room && room.pending(s);
        let close = s.state.is_closed() && s.queue.is_empty() && !room_pending;
        // MISSED reports and roster snapshots are queued by a drain, not
        // when they arise: with either pending, drain again.
        let empty = s.queue.is_empty()
            && !s.queue.has_missed()
            && !s.logged_in().is_some_and(|l| l.roster.needs_snapshot)
            && !room_pending;
        if reads_room && !room_pending && !s.state.is_closed() {
            room.wait(s, conn);
        }
        room.prune(sessions);
        if cut {
            // Closed now (or no longer reading the room): drain what that
            // queued, the error first. The second drain cannot cut again.
            self.room_cut(conn);
            let rest = self.drain_queued(conn, out, max_bytes.saturating_sub(bytes));
            return Drained {
                bytes: bytes + rest.bytes,
                ..rest
            };
        }
        Drained {
            bytes,
            close,
            empty,
        }
    }
}

/// One drain of one session: what it has handed over so far, within
/// `max_bytes`.
struct Pass<'a, F> {
    s: &'a mut Session,
    spare: &'a mut SpareQueues,
    encode: F,
    out: &'a mut Vec<Outgoing>,
    max_bytes: usize,
    bytes: usize,
}

impl<F: FnMut(Arc<Shared>) -> Outgoing> Pass<'_, F> {
    fn left(&self) -> usize {
        self.max_bytes - self.bytes.min(self.max_bytes)
    }

    /// Drains the queue's `classes` (the message class below `below`).
    fn part(&mut self, classes: std::ops::RangeInclusive<Class>, below: MessageId) -> usize {
        let part = Drain { classes, below };
        let left = self.left();
        let n = self
            .s
            .queue
            .drain_part(self.out, left, self.spare, part, &mut self.encode);
        self.bytes += n;
        n
    }

    /// The message class, merged by id with the room log from the
    /// session's cursor (if it reads it now); true if the session fell
    /// behind even the ids the log keeps.
    fn messages(&mut self, conn: ConnId, room: Option<&Room>) -> bool {
        while self.bytes < self.max_bytes {
            if self.s.queue.at_gap() {
                // Messages were dropped here: the report goes before
                // anything newer (see `send_queue`), straight to the writer.
                self.bytes += report_missed(self.s, &mut self.encode, self.out);
                continue;
            }
            let mut moved = 0;
            if let Some(room) = room {
                let below = self.s.queue.message_key().unwrap_or(MessageId(u64::MAX));
                let left = self.left();
                let read = room.read(self.s, conn, below, left, &mut self.encode, self.out);
                if read.cut {
                    return true;
                }
                moved = read.bytes;
                self.bytes += moved;
            }
            // On a tie (CAUGHT_UP is keyed just after the id it covers)
            // the queue goes first: ids are unique, so only CAUGHT_UP ties.
            let below = match room.and_then(|r| r.next_id(self.s)) {
                Some(id) => id.next(),
                None => MessageId(u64::MAX),
            };
            let queued = self.part(Class::Message..=Class::Message, below);
            if moved == 0 && queued == 0 && !self.s.queue.at_gap() {
                break;
            }
        }
        false
    }
}

/// Hands the writer the MISSED reports of the drops recorded at the
/// drain's point in the message class; returns their bytes.
fn report_missed(
    s: &mut Session,
    encode: &mut impl FnMut(Arc<Shared>) -> Outgoing,
    out: &mut Vec<Outgoing>,
) -> usize {
    let mut bytes = 0;
    for (target, r) in s.queue.take_missed() {
        let report = encode(Shared::new(Event::Missed {
            target,
            first: r.first,
            last: r.last,
            count: r.count,
        }));
        bytes += report.len();
        out.push(report);
    }
    bytes
}
