//! The room: its committed messages in one shared log, read by every
//! session from its own cursor when it drains.
//!
//! Why: a room message to N sessions used to be N `Arc` clones and N
//! queue pushes under the hub's lock, on memory the I/O threads touched
//! last (docs/PERFORMANCE.md, issue 17). Now a commit is one push into
//! [`RoomLog`] and one wake-up per session that was waiting for more;
//! each drain copies out what lies after its cursor, merged by id with the
//! session's own queue (groups, direct messages, CAUGHT_UP), so a session
//! still gets every message in id order.
//!
//! Bounds: the log holds `Config::send_queue_bytes` of messages (a reader
//! may fall as far behind the room as its queue could hold) and the ids
//! of the last `Config::room_log_ids`. A reader behind the bytes is told
//! what it missed, exactly, in place (oldest first: what it still gets is
//! the newest); one behind even the ids is closed as a slow consumer.
//!
//! Invariants: a logged-in session has a cursor from the moment it joins
//! the roster (the log's head then, so it gets exactly the room messages
//! committed while it is online); while its resume replay loads, its
//! cursor waits (the replay covers what came before, and CAUGHT_UP's key
//! orders the rest); once it closes, it reads only what was committed
//! before, and then it is done. A session is in `waiters` at most once
//! (its `room_waiting` flag), and only while its cursor was at the head.

use std::sync::Arc;

use crate::config::Config;
use crate::event::Event;
use crate::id::{ConnId, MessageId};
use crate::room_log::{Cursor, Read, RoomLog};
use crate::session::{Session, State};
use crate::shared::{Outgoing, Shared};
use crate::wire::frame::Target;

use super::sessions::Sessions;

/// One committed room message in the log.
#[derive(Debug)]
pub(super) struct RoomEntry {
    event: Arc<Shared>,
    /// The session that sent it: its copy is the ACK.
    origin: Option<ConnId>,
}

/// The room's log and who waits for it (see the module docs).
pub(super) struct Room {
    log: RoomLog<RoomEntry>,
    /// Sessions whose cursor was at the head when they last drained.
    waiters: Vec<ConnId>,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room")
            .field("bytes", &self.log.bytes())
            .field("waiters", &self.waiters.len())
            .finish()
    }
}

/// What a session's drain got from the room log.
pub(super) struct FromLog {
    /// Bytes handed over (MISSED reports included).
    pub(super) bytes: usize,
    /// The session fell behind even the ids kept.
    pub(super) cut: bool,
}

impl Room {
    pub(super) fn new(config: &Config) -> Room {
        Room {
            log: RoomLog::new(config.send_queue_bytes, config.room_log_ids),
            waiters: Vec::new(),
        }
    }

    /// Where a session joining the room starts: after everything committed.
    pub(super) fn head(&self) -> Cursor {
        self.log.head()
    }

    /// Whether a room message with this id may go into the log: ids must
    /// increase in it. The hub's input promises id order; one that breaks
    /// it (a confused peer node) is routed the slow way, queue by queue,
    /// rather than lost or allowed to break the log's order.
    pub(super) fn takes(&self, id: MessageId) -> bool {
        self.log.last_id().is_none_or(|last| last < id)
    }

    /// Appends a committed room message (`len` bytes in the first
    /// protocol's encoding, for the bound) and has `wake` wake every
    /// session that was waiting for one, but its sender.
    pub(super) fn push(
        &mut self,
        event: Arc<Shared>,
        id: MessageId,
        len: usize,
        origin: Option<ConnId>,
        sessions: &mut Sessions,
        mut wake: impl FnMut(&mut Session, ConnId),
    ) {
        self.log.push(id, len, RoomEntry { event, origin });
        let mut kept = 0;
        for i in 0..self.waiters.len() {
            let conn = self.waiters[i];
            let Some(s) = sessions.get_mut(conn) else {
                continue;
            };
            if Some(conn) == origin {
                // Nothing new for it: it stays waiting for the next one.
                self.waiters[kept] = conn;
                kept += 1;
                continue;
            }
            s.room_waiting = false;
            wake(s, conn);
        }
        self.waiters.truncate(kept);
    }

    /// Records that `s` (`conn`) has read everything, so the next push
    /// wakes it.
    pub(super) fn wait(&mut self, s: &mut Session, conn: ConnId) {
        if !s.room_waiting {
            s.room_waiting = true;
            self.waiters.push(conn);
        }
    }

    /// Drops the waiters that are gone, once they could outnumber the
    /// live sessions: without a room message for a while, sessions that
    /// come and go would otherwise grow the list without bound.
    pub(super) fn prune(&mut self, sessions: &Sessions) {
        if self.waiters.len() > 2 * sessions.count() as usize + 64 {
            self.waiters
                .retain(|c| sessions.get(*c).is_some_and(|s| s.room_waiting));
        }
    }

    /// The bound a session's reads stop below: everything for an open
    /// session, what was committed before it closed for a closed one.
    fn bound(s: &Session) -> MessageId {
        match &s.state {
            State::Closed(c) => c.room_below,
            _ => MessageId(u64::MAX),
        }
    }

    /// The id of the next log entry `s` is to get before any queued frame
    /// keyed at or above it, if it reads the log and one is there.
    pub(super) fn next_id(&self, s: &Session) -> Option<MessageId> {
        let cursor = s.room?;
        self.log.next_id(cursor).filter(|id| *id < Room::bound(s))
    }

    /// Whether `s` has log entries (or a MISSED report, or a cut) waiting.
    pub(super) fn pending(&self, s: &Session) -> bool {
        let Some(cursor) = s.room else { return false };
        if self.log.is_read(cursor) {
            return false;
        }
        // Behind the ids kept (`None`): a cut, which the next read reports.
        self.log
            .next_id(cursor)
            .is_none_or(|id| id < Room::bound(s))
    }

    /// Reads `s`'s entries below `below` into `out` in `s`'s protocol, up
    /// to about `max_bytes`: first a MISSED report of what it fell behind,
    /// then the messages, its own skipped.
    pub(super) fn read(
        &self,
        s: &mut Session,
        conn: ConnId,
        below: MessageId,
        max_bytes: usize,
        encode: &mut dyn FnMut(Arc<Shared>) -> Outgoing,
        out: &mut Vec<Outgoing>,
    ) -> FromLog {
        let Some(mut cursor) = s.room else {
            return FromLog {
                bytes: 0,
                cut: false,
            };
        };
        let below = below.min(Room::bound(s));
        let at = out.len();
        let read: Read = self.log.read(&mut cursor, below, max_bytes, |e| {
            if e.origin != Some(conn) {
                out.push(encode(e.event.clone()));
            }
        });
        s.room = Some(cursor);
        let mut bytes: usize = out[at..].iter().map(|o| o.len()).sum();
        if let Some(m) = read.missed {
            let report = encode(Shared::new(Event::Missed {
                target: Target::Room,
                first: m.first,
                last: m.last,
                count: u32::try_from(m.count).unwrap_or(u32::MAX),
            }));
            bytes += report.len();
            // Before the messages this read handed over: they are newer.
            out.insert(at, report);
        }
        FromLog {
            bytes,
            cut: read.cut,
        }
    }
}
