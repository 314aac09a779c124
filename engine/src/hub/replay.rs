//! Resume: what a session missed, replayed after it logs in, with the live
//! messages that arrive meanwhile held back so it sees ids in order.

use std::collections::HashMap;

use crate::effect::{Effect, ReplayLoaded, ReplayScope};
use crate::error::ProtocolError;
use crate::event::Event;
use crate::id::{ConnId, MessageId, Ref};
use crate::name::Name;
use crate::send_queue::{Class, Queued};
use crate::shared::Shared;
use crate::wire::frame::Target;

use super::Hub;

/// Live messages held for a session while its resume replay loads, so the
/// session sees ids in order; bounded by `Config::replay_hold`.
#[derive(Debug)]
struct Hold {
    /// The replay covers ids up to this; held ones are newer.
    upto: MessageId,
    held: Vec<Queued>,
}

/// Replays under way.
#[derive(Debug, Default)]
pub(super) struct Replays {
    holds: HashMap<ConnId, Hold>,
}

impl Replays {
    /// Whether `conn`'s replay is under way, so live messages must wait.
    #[inline]
    pub(super) fn holds(&self, conn: ConnId) -> bool {
        // Almost always: no replay under way anywhere.
        !self.holds.is_empty() && self.holds.contains_key(&conn)
    }

    /// Keeps a live message for `conn` until its replay is queued; false
    /// if the hold is full (the message is dropped, and must be reported).
    pub(super) fn keep(&mut self, conn: ConnId, item: Queued, cap: usize) -> bool {
        match self.holds.get_mut(&conn) {
            Some(h) if h.held.len() < cap => {
                h.held.push(item);
                true
            }
            _ => false,
        }
    }

    /// `conn` is gone or closed: its replay, if any, is dropped.
    pub(super) fn cancel(&mut self, conn: ConnId) {
        self.holds.remove(&conn);
    }
}

impl Hub {
    /// Asks the shell for what `user` missed, up to the newest id now.
    pub(super) fn start_replay(&mut self, conn: ConnId, user: Name, scope: ReplayScope) {
        let upto = self.last_id;
        self.replays.holds.insert(
            conn,
            Hold {
                upto,
                held: Vec::new(),
            },
        );
        if let Some(s) = self.sessions.get_mut(conn) {
            s.inflight += 1;
        }
        self.outbox.effect(Effect::Replay {
            conn,
            user,
            scope,
            upto,
            max: self.config.replay_max,
        });
    }

    /// The replay loaded: what it left out is reported, then what it
    /// carries, CAUGHT_UP, and the live messages held meanwhile.
    pub(super) fn replayed(&mut self, conn: ConnId, result: Result<ReplayLoaded, ProtocolError>) {
        let Some(hold) = self.replays.holds.remove(&conn) else {
            return;
        };
        let Some(s) = self.sessions.get_mut(conn) else {
            return;
        };
        s.inflight = s.inflight.saturating_sub(1);
        match result {
            Ok(loaded) => {
                for (target, first, last, count) in loaded.skipped {
                    let missed = Event::Missed {
                        target,
                        first,
                        last,
                        count,
                    };
                    self.push(conn, missed, Class::Control);
                }
                let Some(me) = self.user(conn) else { return };
                let Some(s) = self.sessions.get(conn) else {
                    return;
                };
                let (version, codec) = (s.version, self.codecs[s.protocol.index()].clone());
                let mut deleted = loaded.deleted.into_iter().peekable();
                for m in loaded.messages.into_iter().filter(|m| m.id <= hold.upto) {
                    let id = m.id;
                    let message = (conversation_of(&m.target, &m.sender, &me), id);
                    let event = Shared::new(Event::Message(m));
                    self.push_shared(conn, &event, Class::Message, Some(message));
                    // A tombstone's deleter, right after it.
                    while let Some((d, by)) = deleted.next_if(|(d, _)| *d <= id) {
                        let told = Event::Deleted { id, by };
                        if d == id && codec.tells(&told, version) {
                            self.push(conn, told, Class::Message);
                        }
                    }
                }
            }
            Err(e) => self.refuse(conn, Ref(0), e),
        }
        let last_id = hold.upto;
        self.push(conn, Event::CaughtUp { last_id }, Class::Message);
        for q in hold.held {
            self.push_shared(conn, &q.event, Class::Message, q.message);
        }
    }
}

/// The conversation a message belongs to from `me`'s side (for MISSED).
fn conversation_of(target: &Target, sender: &Name, me: &Name) -> Target {
    match target {
        Target::User(to) if to.key() == me.key() => Target::User(*sender),
        t => *t,
    }
}
