//! A session's outbound queue: bounded in bytes, drained by priority.
//!
//! Entries are shared typed events ([`Shared`]): a broadcast is one
//! allocation queued for every recipient, encoded once per protocol when
//! the first recipient of that protocol drains it. Each entry carries its
//! encoded length in the recipient's protocol, asked of its codec when it
//! is queued, so the byte budget is exact without encoding anything.
//!
//! All MESSAGE frames (direct, room and group) share one FIFO class, so a
//! session receives messages in id order and "the newest id I have" is a
//! complete resume point. Direct messages get their priority where it
//! matters under load: when the byte budget is spent, room and group
//! messages are evicted (newest first, so what stays is a contiguous
//! prefix) to make room for a direct message or anything more important,
//! and a direct message is only ever evicted to make room for a control
//! frame. Every message dropped is remembered per conversation so the
//! session can be told exactly what it missed. Other frames are never
//! dropped; if one does not fit even after evicting every message, the
//! queue reports overflow and the session is closed as a slow consumer.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::event::Event;
use crate::frame::Target;
use crate::id::MessageId;
use crate::shared::Shared;

/// Priority classes, most important first (docs/PROTOCOL.md, "Flow control").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// PING, PONG, OK, ACK, ERROR, SHUTDOWN, LOGIN_OK, SERVER_HELLO, the
    /// roster snapshot that answers a login, and the MISSED of a replay's
    /// left-out oldest messages (older than anything the replay queues).
    Control = 0,
    /// MESSAGE frames of every conversation, and CAUGHT_UP, in one FIFO;
    /// the MISSED reports of drops are written in their place in it.
    Message = 1,
    /// Roster deltas and later snapshots, group events.
    Roster = 2,
    /// History pages and group lists.
    Bulk = 3,
}

const CLASSES: usize = 4;

/// Which part of a queue a drain takes (see [`SendQueue::drain_part`]).
#[derive(Clone, Debug)]
pub(crate) struct Drain {
    pub(crate) classes: std::ops::RangeInclusive<Class>,
    pub(crate) below: MessageId,
}

/// Where a message-class frame stands in id order: a message's own id,
/// and CAUGHT_UP just after the last id it covers, so that a room message
/// merged from the log goes before exactly the queued frames newer than it.
pub(crate) fn key(q: &Queued) -> MessageId {
    match (q.message, q.event.event()) {
        (Some((_, id)), _) => id,
        (None, Event::CaughtUp { last_id }) => last_id.next(),
        // Just after the message it deletes, so never before it.
        (None, Event::Deleted { id, .. }) => id.next(),
        (None, _) => MessageId::ZERO,
    }
}

/// One queued event.
#[derive(Clone, Debug)]
pub(crate) struct Queued {
    pub(crate) event: Arc<Shared>,
    /// Its encoded length in the recipient's protocol.
    pub(crate) len: u32,
    /// For messages: which conversation and id, so a drop can be reported.
    pub(crate) message: Option<(Target, MessageId)>,
}

/// Messages dropped from one conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MissedRange {
    pub(crate) first: MessageId,
    pub(crate) last: MessageId,
    pub(crate) count: u32,
}

/// What [`SendQueue::push`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued; `was_empty` says the writer may need waking.
    Queued { was_empty: bool },
    /// Not queued: dropped (and recorded if it was a message).
    Dropped,
    /// A control frame did not fit even after evicting everything else.
    Overflow,
}

/// The bounded queue (see the module docs).
///
/// Its state is boxed and exists only while something is queued or a drop
/// is unreported: most sessions are idle most of the time, and an empty
/// queue is then one null pointer in every session instead of 160 bytes.
#[derive(Debug, Default)]
pub(crate) struct SendQueue {
    /// Invariant: `None`, or not [`Inner::is_idle`] (outside a method).
    inner: Option<Box<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    classes: [VecDeque<Queued>; CLASSES],
    bytes: usize,
    /// Dropped messages by conversation; bounded by `MAX_MISSED_TARGETS`.
    missed: Vec<(Target, MissedRange)>,
    /// Where the drops must be reported: after this many of the frames
    /// queued in the message class, before the rest. Invariant: `Some`
    /// exactly while `missed` is not empty, and every queued message
    /// behind that point is newer than no dropped one it would overtake:
    /// a drop moves the point to just before the first queued message
    /// newer than it (the end of the queue for a message that was never
    /// queued, its own place for an evicted one). So a MISSED report comes
    /// before any message with a larger id than a message it reports, and
    /// "the newest id I have" stays a safe bookmark.
    gap: Option<usize>,
}

/// Conversations whose drops a session remembers before it is simply closed.
pub(crate) const MAX_MISSED_TARGETS: usize = 128;

/// Queue states given back by sessions whose queue emptied, for the next
/// session that needs one.
///
/// Why: a session whose writer keeps up empties its queue after every
/// drain, and with the state freed each time, routing one room message
/// to 100 sessions that drain at once spent ~45% of its time in malloc
/// and free (criterion `route_room_message`). Bounded, and only small
/// buffers are kept, so idle sessions still cost no queue memory beyond
/// [`MAX_SPARE`] states for the whole hub.
#[derive(Debug, Default)]
pub(crate) struct SpareQueues {
    // Boxed: the boxes move between here and sessions' queues as they are.
    #[allow(clippy::vec_box)]
    spare: Vec<Box<Inner>>,
}

/// Most queue states kept spare.
pub(crate) const MAX_SPARE: usize = 256;
/// Frames a spare state's class buffers may hold without reallocating;
/// larger buffers are freed rather than kept.
const SPARE_FRAMES: usize = 16;

impl SpareQueues {
    fn take(&mut self) -> Box<Inner> {
        self.spare.pop().unwrap_or_default()
    }

    fn give(&mut self, mut inner: Box<Inner>) {
        debug_assert!(inner.is_idle());
        if self.spare.len() >= MAX_SPARE {
            return;
        }
        for q in &mut inner.classes {
            if q.capacity() > SPARE_FRAMES {
                *q = VecDeque::new();
            }
        }
        inner.missed = Vec::new();
        self.spare.push(inner);
    }

    /// States kept (tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.spare.len()
    }
}

impl SendQueue {
    /// Bytes queued.
    pub(crate) fn bytes(&self) -> usize {
        self.inner.as_ref().map_or(0, |q| q.bytes)
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.inner.as_ref().is_none_or(|q| q.is_empty())
    }

    /// Whether messages were dropped and not yet reported.
    pub(crate) fn has_missed(&self) -> bool {
        self.inner.as_ref().is_some_and(|q| !q.missed.is_empty())
    }

    /// Queues a frame within `limit` bytes (see the module docs).
    #[inline]
    pub(crate) fn push(&mut self, item: Queued, class: Class, limit: usize) -> Pushed {
        let pushed = self.inner.get_or_insert_default().push(item, class, limit);
        self.release_if_idle();
        pushed
    }

    /// [`SendQueue::push`], taking the state from `spare` if it needs one.
    #[inline]
    pub(crate) fn push_from(
        &mut self,
        spare: &mut SpareQueues,
        item: Queued,
        class: Class,
        limit: usize,
    ) -> Pushed {
        let inner = self.inner.get_or_insert_with(|| spare.take());
        let pushed = inner.push(item, class, limit);
        self.release_if_idle();
        pushed
    }

    /// Removes every queued frame of `class` (superseded roster deltas).
    pub(crate) fn clear(&mut self, class: Class) {
        if let Some(q) = &mut self.inner {
            q.clear(class);
        }
        self.release_if_idle();
    }

    /// Moves queued frames, most important class first, into `out`, up to
    /// about `max_bytes` (always at least one frame if any is queued); gives
    /// the state to `spare` if that emptied it.
    #[cfg(test)]
    pub(crate) fn drain_into<T>(
        &mut self,
        out: &mut Vec<T>,
        max_bytes: usize,
        spare: &mut SpareQueues,
        encode: impl FnMut(Arc<Shared>) -> T,
    ) -> usize {
        let all = Drain {
            classes: Class::Control..=Class::Bulk,
            below: MessageId(u64::MAX),
        };
        self.drain_part(out, max_bytes, spare, all, encode)
    }

    /// [`SendQueue::drain_into`], of the classes `part` names only, and in
    /// the message class only frames whose [`key`] is below `part.below`
    /// (the hub merges the room log in between, by id).
    pub(crate) fn drain_part<T>(
        &mut self,
        out: &mut Vec<T>,
        max_bytes: usize,
        spare: &mut SpareQueues,
        part: Drain,
        encode: impl FnMut(Arc<Shared>) -> T,
    ) -> usize {
        let taken = self
            .inner
            .as_mut()
            .map_or(0, |q| q.drain_into(out, max_bytes, part, encode));
        if let Some(inner) = self.inner.take_if(|q| q.is_idle()) {
            spare.give(inner);
        }
        taken
    }

    /// The [`key`] of the oldest frame in the message class, if any.
    pub(crate) fn message_key(&self) -> Option<MessageId> {
        let q = self.inner.as_ref()?;
        q.classes[Class::Message as usize].front().map(key)
    }

    /// Whether the drain has reached the point where the drops must be
    /// reported (see `Inner::gap`): report them before draining on.
    pub(crate) fn at_gap(&self) -> bool {
        self.inner.as_ref().is_some_and(|q| q.gap == Some(0))
    }

    /// Takes the record of dropped messages.
    pub(crate) fn take_missed(&mut self) -> Vec<(Target, MissedRange)> {
        let missed = self
            .inner
            .as_mut()
            .map(|q| {
                q.gap = None;
                std::mem::take(&mut q.missed)
            })
            .unwrap_or_default();
        self.release_if_idle();
        missed
    }

    /// Records a message that was dropped before it reached the queue;
    /// false if the record is full.
    pub(crate) fn note_dropped(&mut self, t: Target, id: MessageId) -> bool {
        let q = self.inner.get_or_insert_default();
        let end = q.classes[Class::Message as usize].len();
        q.record_missed(t, id, end)
    }

    /// Frames queued in `class` (tests).
    #[cfg(test)]
    fn len(&self, class: Class) -> usize {
        self.inner
            .as_ref()
            .map_or(0, |q| q.classes[class as usize].len())
    }

    /// Frees the state once nothing is queued and nothing is to report.
    fn release_if_idle(&mut self) {
        if self.inner.as_ref().is_some_and(|q| q.is_idle()) {
            self.inner = None;
        }
    }
}

impl Inner {
    fn is_empty(&self) -> bool {
        self.bytes == 0 && self.classes.iter().all(VecDeque::is_empty)
    }

    fn is_idle(&self) -> bool {
        self.is_empty() && self.missed.is_empty()
    }

    #[inline]
    fn push(&mut self, item: Queued, class: Class, limit: usize) -> Pushed {
        let was_empty = self.is_empty();
        let len = item.len as usize;
        // What a frame may evict: room/group messages always (except to make
        // room for another room/group message), direct messages only for control.
        let pushing_bulk_message = matches!(item.message, Some((t, _)) if !is_direct(&t));
        while self.bytes + len > limit {
            let evicted = if pushing_bulk_message {
                None
            } else {
                self.evict(|t| !is_direct(t)).or_else(|| {
                    if class == Class::Control {
                        self.evict(is_direct)
                    } else {
                        None
                    }
                })
            };
            match evicted {
                Some(true) => {}
                Some(false) => return Pushed::Overflow,
                None => match item.message {
                    Some((t, id)) if class != Class::Control => {
                        let end = self.classes[Class::Message as usize].len();
                        return if self.record_missed(t, id, end) {
                            Pushed::Dropped
                        } else {
                            Pushed::Overflow
                        };
                    }
                    _ => return Pushed::Overflow,
                },
            }
        }
        self.bytes += len;
        self.classes[class as usize].push_back(item);
        Pushed::Queued { was_empty }
    }

    /// Evicts the newest queued message whose conversation `which` selects;
    /// `None` if there is none, `Some(false)` if the drop could not be recorded.
    fn evict(&mut self, which: impl Fn(&Target) -> bool) -> Option<bool> {
        let q = &mut self.classes[Class::Message as usize];
        let pos = q
            .iter()
            .rposition(|f| f.message.is_some_and(|(t, _)| which(&t)))?;
        let v = q.remove(pos).expect("position is in range");
        self.bytes -= v.len as usize;
        let (t, id) = v.message.expect("found by is_some_and");
        // What queued behind it is newer: the report goes where it was.
        Some(self.record_missed(t, id, pos))
    }

    fn clear(&mut self, class: Class) {
        let q = &mut self.classes[class as usize];
        self.bytes -= q.iter().map(|q| q.len as usize).sum::<usize>();
        q.clear();
        if class == Class::Message {
            self.gap = self.gap.map(|_| 0);
        }
    }

    /// Drains most important class first, stopping in the message class
    /// at the gap (see `Inner::gap`), so the caller reports it first, and
    /// at the first frame whose key is not below `part.below`.
    fn drain_into<T>(
        &mut self,
        out: &mut Vec<T>,
        max_bytes: usize,
        part: Drain,
        mut encode: impl FnMut(Arc<Shared>) -> T,
    ) -> usize {
        let mut taken = 0;
        let (first, last) = (*part.classes.start() as usize, *part.classes.end() as usize);
        for (class, q) in self.classes.iter_mut().enumerate() {
            if class < first || class > last {
                continue;
            }
            let is_messages = class == Class::Message as usize;
            let mut before_gap = match self.gap {
                Some(n) if is_messages => n,
                _ => usize::MAX,
            };
            let mut stop = false;
            while let Some(front) = q.front() {
                if taken > 0 && taken + front.len as usize > max_bytes {
                    stop = true;
                    break;
                }
                if before_gap == 0 {
                    break;
                }
                if is_messages && key(front) >= part.below {
                    stop = true;
                    break;
                }
                let f = q.pop_front().expect("front exists");
                taken += f.len as usize;
                out.push(encode(f.event));
                before_gap -= 1;
            }
            if is_messages {
                if let Some(gap) = &mut self.gap {
                    *gap = before_gap;
                }
            }
            if stop || (is_messages && self.gap == Some(0)) {
                self.bytes -= taken;
                return taken;
            }
        }
        self.bytes -= taken;
        // Empty, yet kept for its record of drops: still give the buffers back.
        if !self.missed.is_empty() && self.is_empty() {
            for q in &mut self.classes {
                if q.capacity() > 0 {
                    *q = VecDeque::new();
                }
            }
        }
        taken
    }

    /// Records a dropped message whose report must come before the
    /// message-class frame now at `pos` (see `Inner::gap`).
    fn record_missed(&mut self, t: Target, id: MessageId, pos: usize) -> bool {
        if let Some((_, r)) = self.missed.iter_mut().find(|(x, _)| *x == t) {
            r.first = r.first.min(id);
            r.last = r.last.max(id);
            r.count += 1;
            self.gap = Some(self.gap.map_or(pos, |g| g.min(pos)));
            return true;
        }
        if self.missed.len() >= MAX_MISSED_TARGETS {
            return false;
        }
        self.gap = Some(self.gap.map_or(pos, |g| g.min(pos)));
        self.missed.push((
            t,
            MissedRange {
                first: id,
                last: id,
                count: 1,
            },
        ));
        true
    }
}

fn is_direct(t: &Target) -> bool {
    matches!(t, Target::User(_))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    /// An event `n` bytes long when encoded (the bytes are made up: the
    /// queue only counts them).
    fn frame(n: usize, msg: Option<u64>) -> Queued {
        Queued {
            event: Shared::new(Event::Ping { token: n as u64 }),
            len: n as u32,
            message: msg.map(|id| (Target::Room, MessageId(id))),
        }
    }

    /// Drains as a writer would, each event as `len` zero bytes.
    fn drain(
        q: &mut SendQueue,
        out: &mut Vec<Arc<[u8]>>,
        max: usize,
        spare: &mut SpareQueues,
    ) -> usize {
        q.drain_into(out, max, spare, |e: Arc<Shared>| match e.event() {
            Event::Ping { token } => vec![0u8; *token as usize].into(),
            _ => unreachable!("only pings are queued here"),
        })
    }

    fn dm(n: usize, id: u64) -> Queued {
        Queued {
            event: Shared::new(Event::Ping { token: n as u64 }),
            len: n as u32,
            message: Some((
                Target::User(crate::Name::new("bob").unwrap()),
                MessageId(id),
            )),
        }
    }

    #[test]
    fn drains_control_before_bulk_whatever_the_arrival_order() {
        let mut q = SendQueue::default();
        q.push(frame(10, Some(1)), Class::Message, 100);
        q.push(frame(11, None), Class::Control, 100);
        let mut out = Vec::new();
        drain(&mut q, &mut out, 1000, &mut SpareQueues::default());
        assert_eq!(out.iter().map(|b| b.len()).collect::<Vec<_>>(), [11, 10]);
        assert!(q.is_empty());
    }

    #[test]
    fn a_full_queue_evicts_newest_bulk_for_control_and_records_what_was_missed() {
        let mut q = SendQueue::default();
        for id in 1..=5 {
            assert!(matches!(
                q.push(frame(20, Some(id)), Class::Message, 100),
                Pushed::Queued { .. }
            ));
        }
        // Full: a new bulk message is dropped, a control frame evicts id 5.
        assert_eq!(
            q.push(frame(20, Some(6)), Class::Message, 100),
            Pushed::Dropped
        );
        assert!(matches!(
            q.push(frame(20, None), Class::Control, 100),
            Pushed::Queued { .. }
        ));
        assert_eq!(q.len(Class::Message), 4);
        let missed = q.take_missed();
        assert_eq!(
            missed,
            vec![(
                Target::Room,
                MissedRange {
                    first: MessageId(5),
                    last: MessageId(6),
                    count: 2
                }
            )]
        );
        assert!(q.bytes() <= 100);
    }

    #[test]
    fn messages_stay_in_id_order_and_a_dm_evicts_room_messages_but_not_the_reverse() {
        let mut q = SendQueue::default();
        q.push(frame(30, Some(1)), Class::Message, 100);
        q.push(dm(30, 2), Class::Message, 100);
        q.push(frame(30, Some(3)), Class::Message, 100);
        // Full: a room message is dropped, a DM evicts the newest room message.
        assert_eq!(
            q.push(frame(30, Some(4)), Class::Message, 100),
            Pushed::Dropped
        );
        assert!(matches!(
            q.push(dm(30, 5), Class::Message, 100),
            Pushed::Queued { .. }
        ));
        let mut out = Vec::new();
        drain(&mut q, &mut out, 1000, &mut SpareQueues::default());
        assert_eq!(out.len(), 2, "ids 1 and 2, then the gap where 3 and 4 were");
        assert!(q.at_gap());
        let missed = q.take_missed();
        assert_eq!(
            missed,
            vec![(
                Target::Room,
                MissedRange {
                    first: MessageId(3),
                    last: MessageId(4),
                    count: 2
                }
            )]
        );
        drain(&mut q, &mut out, 1000, &mut SpareQueues::default());
        assert_eq!(out.len(), 3, "then id 5");
        // Only control evicts a DM.
        q.push(dm(60, 6), Class::Message, 100);
        assert_eq!(q.push(dm(60, 7), Class::Message, 100), Pushed::Dropped);
        assert!(matches!(
            q.push(frame(60, None), Class::Control, 100),
            Pushed::Queued { .. }
        ));
        assert_eq!(q.len(Class::Message), 0);
    }

    #[test]
    fn control_that_cannot_fit_even_alone_overflows() {
        let mut q = SendQueue::default();
        q.push(frame(90, None), Class::Control, 100);
        assert_eq!(
            q.push(frame(20, None), Class::Control, 100),
            Pushed::Overflow
        );
    }

    #[test]
    fn a_drained_queue_holds_no_buffers() {
        let mut q = SendQueue::default();
        q.push(frame(50, Some(1)), Class::Message, 1000);
        q.push(frame(50, None), Class::Control, 1000);
        let mut out = Vec::new();
        drain(&mut q, &mut out, 1000, &mut SpareQueues::default());
        assert!(q.inner.is_none());
    }

    #[test]
    fn emptied_queue_states_are_reused_and_at_most_max_spare_are_kept() {
        let mut spare = SpareQueues::default();
        let mut out = Vec::new();
        let mut queues: Vec<SendQueue> =
            (0..MAX_SPARE + 10).map(|_| SendQueue::default()).collect();
        for q in &mut queues {
            q.push_from(&mut spare, frame(10, Some(1)), Class::Message, 1000);
        }
        for q in &mut queues {
            drain(q, &mut out, 1000, &mut spare);
            assert!(q.inner.is_none());
        }
        assert_eq!(spare.len(), MAX_SPARE);
        // A reused state starts empty, whatever it held before.
        let mut q = SendQueue::default();
        q.push_from(&mut spare, frame(10, None), Class::Control, 1000);
        assert_eq!(spare.len(), MAX_SPARE - 1);
        assert_eq!(
            (q.bytes(), q.len(Class::Control), q.len(Class::Message)),
            (10, 1, 0)
        );
        // A queue that still has drops to report keeps its state.
        let mut q = SendQueue::default();
        q.push_from(&mut spare, frame(60, Some(1)), Class::Message, 100);
        q.push_from(&mut spare, frame(60, Some(2)), Class::Message, 100);
        drain(&mut q, &mut out, 1000, &mut spare);
        assert!(q.has_missed() && q.inner.is_some());
    }

    #[test]
    fn drain_respects_the_byte_budget_but_always_makes_progress() {
        let mut q = SendQueue::default();
        q.push(frame(50, None), Class::Control, 1000);
        q.push(frame(50, None), Class::Control, 1000);
        let mut out = Vec::new();
        assert_eq!(drain(&mut q, &mut out, 10, &mut SpareQueues::default()), 50);
        assert_eq!(q.bytes(), 50);
    }
}
