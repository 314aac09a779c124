//! The session slab, and the connection limits that decide who gets a slot.
//!
//! Sessions live in one vector of slots, addressed by [`ConnId`]: its
//! index is the slot, its generation says which tenant of the slot it
//! means, so a handle to a session that has gone is recognised and finds
//! nothing. [`Sessions::get`] and [`Sessions::get_mut`] are the only way
//! to a session. The slab also counts connections, in all, per source
//! address, and per source those that have not logged in, for
//! [`Hub::admit`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::error::ProtocolError;
use crate::event::Event;
use crate::id::{ConnId, Ref};
use crate::protocol::Protocol;
use crate::send_queue::Class;
use crate::session::{CloseReason, Session, Source};
use crate::shared::Shared;

use super::Hub;

#[derive(Debug)]
struct Slot {
    generation: u32,
    session: Option<Session>,
}

/// The slab (see the module docs).
#[derive(Debug, Default)]
pub(super) struct Sessions {
    slots: Vec<Slot>,
    free: Vec<u32>,
    count: u32,
    per_source: HashMap<Source, u32>,
    /// Connections per source that have not logged in (a subset of
    /// `per_source`'s, so bounded by it).
    unauthenticated: HashMap<Source, u32>,
}

impl Sessions {
    /// The session `conn` names, if it is still there.
    #[inline]
    pub(super) fn get(&self, conn: ConnId) -> Option<&Session> {
        let slot = self.slots.get(conn.index())?;
        (slot.generation == conn.generation())
            .then_some(slot.session.as_ref())
            .flatten()
    }

    /// The session `conn` names, if it is still there.
    #[inline]
    pub(super) fn get_mut(&mut self, conn: ConnId) -> Option<&mut Session> {
        let slot = self.slots.get_mut(conn.index())?;
        (slot.generation == conn.generation())
            .then_some(slot.session.as_mut())
            .flatten()
    }

    /// Every live session's handle.
    pub(super) fn ids(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.session
                .as_ref()
                .map(|_| ConnId::new(i as u32, s.generation))
        })
    }

    pub(super) fn count(&self) -> u32 {
        self.count
    }

    fn connected_from(&self, source: Source) -> u32 {
        self.per_source.get(&source).copied().unwrap_or(0)
    }

    fn unauthenticated_from(&self, source: Source) -> u32 {
        self.unauthenticated.get(&source).copied().unwrap_or(0)
    }

    /// Puts a new session in a free slot; it counts as not logged in.
    fn insert(&mut self, mut session: Session) -> ConnId {
        let source = session.source;
        session.unauthenticated = true;
        let conn = match self.free.pop() {
            Some(index) => {
                let slot = &mut self.slots[index as usize];
                slot.session = Some(session);
                ConnId::new(index, slot.generation)
            }
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    session: Some(session),
                });
                ConnId::new(self.slots.len() as u32 - 1, 0)
            }
        };
        self.count += 1;
        *self.per_source.entry(source).or_default() += 1;
        *self.unauthenticated.entry(source).or_default() += 1;
        conn
    }

    /// Takes a session out; its slot's next tenant gets a new generation.
    fn remove(&mut self, conn: ConnId) -> Option<Session> {
        let slot = self.slots.get_mut(conn.index())?;
        if slot.generation != conn.generation() {
            return None;
        }
        let session = slot.session.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(conn.index() as u32);
        self.count -= 1;
        decrement(&mut self.per_source, session.source);
        if session.unauthenticated {
            decrement(&mut self.unauthenticated, session.source);
        }
        Some(session)
    }

    /// `conn` logged in: it no longer counts against its source's
    /// connections that have not.
    pub(super) fn logged_in(&mut self, conn: ConnId) {
        let Some(s) = self.get_mut(conn) else { return };
        if std::mem::take(&mut s.unauthenticated) {
            let source = s.source;
            decrement(&mut self.unauthenticated, source);
        }
    }
}

fn decrement(counts: &mut HashMap<Source, u32>, source: Source) {
    if let Some(n) = counts.get_mut(&source) {
        *n -= 1;
        if *n == 0 {
            counts.remove(&source);
        }
    }
}

/// Why [`Hub::admit`] turned a connection away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TurnedAway {
    /// The server has `max_clients` connections.
    Full,
    /// The source has `max_per_source` connections.
    PerSource,
    /// A connection from the source flooded before logging in, less than
    /// `flood_penalty` ago.
    Flooded,
    /// The source is in a block an operator banned.
    Banned,
}

/// A connection [`Hub::admit`] turned away.
#[derive(Debug, Clone)]
pub struct Refused {
    /// Why.
    pub reason: TurnedAway,
    /// The whole error to write to it before closing, encoded (in the
    /// confab protocol: a connection turned away has spoken no other).
    pub frame: Arc<[u8]>,
}

impl Hub {
    /// Whether a new connection from `source` fits the connection limits,
    /// decided without creating a session. A refusal carries its reason and
    /// the ERROR frame (`TOO_MANY_CONNECTIONS`) to write before closing, so
    /// that a storm of refused connections costs the shell one write each
    /// and never occupies a slot: a refused connection is not counted.
    /// Call it under the same hold as the [`Hub::connect`] it guards.
    pub fn admit(&self, now: Instant, source: Source) -> Result<(), Refused> {
        let (reason, error) = if let Some(error) = self.address_ban_refusal(now, source) {
            (TurnedAway::Banned, error)
        } else if let Some(retry) = self.guard.barred(now, source) {
            (TurnedAway::Flooded, ProtocolError::SourceBarred { retry })
        } else if let Some(error) = self.over_limits(source, 1) {
            let reason = match error {
                ProtocolError::ServerFull => TurnedAway::Full,
                _ => TurnedAway::PerSource,
            };
            (reason, error)
        } else {
            return Ok(());
        };
        let event = Shared::new(Event::Error {
            reference: Ref(0),
            error,
        });
        let frame = Arc::from(event.encoded(Protocol::CONFAB, &*self.codecs[0]));
        Err(Refused { reason, frame })
    }

    /// Which connection limit a connection from `source` breaks, with
    /// `extra` connections counted beyond those the slab holds.
    fn over_limits(&self, source: Source, extra: u32) -> Option<ProtocolError> {
        let c = &self.config;
        if self.sessions.count() + extra > c.max_clients {
            Some(ProtocolError::ServerFull)
        } else if self.sessions.connected_from(source) + extra > c.max_per_source {
            Some(ProtocolError::TooManyFromSource)
        } else if self.sessions.unauthenticated_from(source) + extra > c.max_pre_auth_per_source {
            Some(ProtocolError::TooManyUnauthenticated)
        } else {
            None
        }
    }

    /// A new connection from `source`, speaking `protocol` (its codec reads
    /// its bytes and encodes its events). Over the connection limits, the
    /// session starts closed with `TOO_MANY_CONNECTIONS` queued.
    pub fn connect(&mut self, now: Instant, source: Source, protocol: Protocol) -> ConnId {
        let protocol = if protocol.index() < self.codecs.len() {
            protocol
        } else {
            Protocol::CONFAB
        };
        let session = Session::new(now, source, protocol, &self.config);
        let conn = self.sessions.insert(session);
        if self.shutting_down {
            let event = Shared::new(Event::Shutdown {
                retry_after: self.config.shutdown_retry,
                reason: "server is shutting down".to_owned(),
            });
            self.push_shared(conn, &event, Class::Control, None);
            self.close(conn, CloseReason::Shutdown);
        } else if let Some(error) = self
            .over_limits(source, 0)
            .filter(|e| !matches!(e, ProtocolError::TooManyUnauthenticated))
        {
            self.fatal(conn, Ref(0), error);
        }
        self.finish();
        conn
    }

    /// The connection is gone (peer closed, I/O error, or the shell closed it
    /// after [`Drained::close`](super::Drained)). Frees its state.
    pub fn disconnect(&mut self, now: Instant, conn: ConnId) {
        let _ = now;
        self.irc_gone(conn);
        let Some(session) = self.sessions.remove(conn) else {
            return;
        };
        self.left(conn, session.logged_in().copied());
        self.finish();
    }
}
