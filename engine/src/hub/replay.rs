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

/// What [`Replays::hold`] did with a live message.
pub(super) enum Held {
    /// No replay is under way: queue it.
    No(Queued),
    /// Held until the replay is queued.
    Yes,
    /// The hold is full: the message is dropped (and must be reported).
    Full,
}

impl Replays {
    /// Holds a live message for `conn` if its replay is under way.
    pub(super) fn hold(&mut self, conn: ConnId, item: Queued, cap: usize) -> Held {
        match self.holds.get_mut(&conn) {
            None => Held::No(item),
            Some(h) if h.held.len() < cap => {
                h.held.push(item);
                Held::Yes
            }
            Some(_) => Held::Full,
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
                for m in loaded.messages.into_iter().filter(|m| m.id <= hold.upto) {
                    let message = (conversation_of(&m.target, &m.sender, &me), m.id);
                    let event = Shared::new(Event::Message(m));
                    self.push_shared(conn, &event, Class::Message, Some(message));
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
