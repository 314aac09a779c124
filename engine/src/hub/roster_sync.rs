//! The roster stream: who is online, sent to the sessions that asked for
//! it as a snapshot, then one delta per change, within a window of
//! unacknowledged deltas.
//!
//! A session is sent deltas in version order, never skipping one, while
//! it is at most `roster_window` ahead of its last ROSTER_ACK; beyond that
//! it waits, and catches up on its next ack. A session whose queued deltas
//! had to be dropped, or that fell behind what the delta log remembers,
//! gets a fresh snapshot instead (queued by its next drain).

use std::sync::Arc;
use std::time::Instant;

use crate::frame::Presence;
use crate::id::{ConnId, RosterVersion};
use crate::name::Name;
use crate::send_queue::{Class, Pushed, Queued};
use crate::shared::Shared;

use super::Hub;

impl Hub {
    /// Another node says `user`'s first session there came online, or its
    /// last there left (a bus subscriber feeds this for every other node's
    /// presence). The roster here counts a user online while any node has
    /// a session of theirs, so its deltas are those of the whole cluster.
    pub fn handle_presence(&mut self, now: Instant, user: Name, presence: Presence) {
        let _ = now;
        if let Some(delta) = self.roster.remote(user, presence) {
            self.broadcast_roster(&delta, None);
        }
        self.finish();
    }

    pub(super) fn roster_ack(&mut self, conn: ConnId, version: RosterVersion) {
        let Some(s) = self.sessions.get_mut(conn) else {
            return;
        };
        let Some(l) = s.logged_in_mut() else { return };
        l.roster.acked = l.roster.acked.max(version.min(l.roster.sent));
        let synced = l.roster.acked >= l.roster.synced_at;
        if let (true, crate::session::State::RosterSync(l)) = (synced, &s.state) {
            s.state = l.synced();
        }
        self.roster_catch_up(conn);
    }

    /// Queues the current snapshot for `conn` in `class`.
    pub(super) fn push_snapshot(&mut self, conn: ConnId, class: Class) {
        let Some(s) = self.sessions.get(conn) else {
            return;
        };
        let codec = self.codecs[s.protocol.index()].clone();
        for chunk in self.roster.snapshot(s.protocol, &*codec).iter() {
            self.push_shared(conn, chunk, class, None);
        }
    }

    /// Sends a session the deltas it is behind on, within its window, or a
    /// fresh snapshot if the log no longer reaches back far enough.
    pub(super) fn roster_catch_up(&mut self, conn: ConnId) {
        if !self.subscribers.contains(&conn) {
            return;
        }
        let window = self.config.roster_window;
        let version = self.roster.version();
        loop {
            let Some(l) = self.sessions.get(conn).and_then(|s| s.logged_in()) else {
                return;
            };
            let c = &l.roster;
            let ahead = c.sent.get() - c.acked.get();
            if !c.needs_snapshot && (c.sent >= version || ahead >= window) {
                return;
            }
            let next = c.sent.next();
            match (c.needs_snapshot, self.roster.delta(next)) {
                (false, Some(delta)) => {
                    if !self.push_roster(conn, &delta) {
                        return;
                    }
                    if let Some(l) = self.sessions.get_mut(conn).and_then(|s| s.logged_in_mut()) {
                        l.roster.sent = next;
                    }
                }
                _ => return self.resnapshot(conn),
            }
        }
    }

    /// Replaces whatever roster frames are queued for `conn` with a fresh
    /// snapshot.
    fn resnapshot(&mut self, conn: ConnId) {
        let version = self.roster.version();
        let Some(s) = self.sessions.get_mut(conn) else {
            return;
        };
        s.queue.clear(Class::Roster);
        let codec = self.codecs[s.protocol.index()].clone();
        let chunks = self.roster.snapshot(s.protocol, &*codec);
        for chunk in chunks.iter() {
            if !self.push_roster(conn, chunk) {
                return;
            }
        }
        if let Some(l) = self.sessions.get_mut(conn).and_then(|s| s.logged_in_mut()) {
            l.roster.sent = version;
            l.roster.synced_at = version;
            l.roster.needs_snapshot = false;
        }
    }

    /// Queues a roster frame; when it does not fit, drops the session's
    /// queued roster frames and marks it for a snapshot instead.
    fn push_roster(&mut self, conn: ConnId, event: &Arc<Shared>) -> bool {
        let limit = self.config.send_queue_bytes;
        let Some(s) = self.sessions.get_mut(conn) else {
            return false;
        };
        let codec = &*self.codecs[s.protocol.index()];
        let item = Queued {
            len: event.encoded_len(s.protocol, codec),
            event: event.clone(),
            message: None,
        };
        match s.queue.push(item, Class::Roster, limit) {
            Pushed::Queued { was_empty } => {
                if was_empty {
                    self.outbox.wake(s, conn);
                }
                true
            }
            Pushed::Dropped | Pushed::Overflow => {
                s.queue.clear(Class::Roster);
                if let Some(l) = s.logged_in_mut() {
                    l.roster.needs_snapshot = true;
                }
                false
            }
        }
    }

    /// Sends a roster delta to every subscribed session that is up to date
    /// and within its window; the others catch up on their next ack.
    pub(super) fn broadcast_roster(&mut self, delta: &Arc<Shared>, except: Option<ConnId>) {
        if self.shutting_down {
            return;
        }
        let version = self.roster.version();
        let window = self.config.roster_window;
        let subs: Vec<ConnId> = self
            .subscribers
            .iter()
            .copied()
            .filter(|c| Some(*c) != except)
            .collect();
        for conn in subs {
            let Some(l) = self.sessions.get(conn).and_then(|s| s.logged_in()) else {
                continue;
            };
            let c = &l.roster;
            if c.needs_snapshot
                || c.sent.next() != version
                || c.sent.get() - c.acked.get() >= window
            {
                continue;
            }
            if self.push_roster(conn, delta) {
                if let Some(l) = self.sessions.get_mut(conn).and_then(|s| s.logged_in_mut()) {
                    l.roster.sent = version;
                }
            }
        }
    }
}
