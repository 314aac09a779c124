//! Deleting a message and announcing: what an operator tells every
//! client. A DELETE is stored first (the store empties the body and keeps
//! who deleted it, a tombstone that history and resume show), then every
//! session that could see the message is told DELETED, in id order after
//! the message itself. An ANNOUNCE is a NOTICE queued for every session
//! logged in, and its OK follows the audit line's commit.
//!
//! Which sessions hear of either is their codec's decision
//! ([`crate::Codec::tells`]): a version 1 confab session has no frame for
//! them.

use std::sync::Arc;

use crate::effect::{AuditLine, Effect, StoredMessage};
use crate::error::ProtocolError;
use crate::event::Event;
use crate::id::{ConnId, MessageId, Ref};
use crate::name::Name;
use crate::send_queue::{Class, Queued};
use crate::shared::Shared;

use super::routing::recipients;
use super::Hub;

impl Hub {
    /// DELETE: an operator's request, or a group owner's or moderator's
    /// (for a message to one of their groups: storage checks), goes to
    /// storage; the OK and the DELETED frames follow its commit.
    pub(super) fn delete(&mut self, conn: ConnId, reference: Ref, id: MessageId, reason: &str) {
        let Some(actor) = self.user(conn) else { return };
        let within = if self.is_operator(&actor) {
            None
        } else {
            match self.groups.moderated_by(&actor) {
                groups if groups.is_empty() => {
                    return self.refuse(conn, reference, ProtocolError::NotOperator)
                }
                groups => Some(groups),
            }
        };
        if !self.begin_request(conn, reference) {
            return;
        }
        self.outbox.effect(Effect::DeleteMessage {
            conn,
            reference,
            actor,
            id,
            reason: reason.to_owned(),
            within,
        });
    }

    /// Storage's answer to a DELETE.
    pub(super) fn message_deleted(
        &mut self,
        conn: ConnId,
        reference: Ref,
        by: Name,
        result: Result<StoredMessage, ProtocolError>,
    ) {
        self.end_request(conn);
        match result {
            Ok(m) => {
                self.push(conn, Event::Ok { reference }, Class::Control);
                self.tell_deleted(&m, &by);
            }
            Err(e) => self.refuse(conn, reference, e),
        }
    }

    /// Tells every session entitled to `m` (a tombstone now) that `by`
    /// deleted it; returns how many were told. The shell calls this when
    /// the command line deleted a message in the database.
    pub fn tell_deleted(&mut self, m: &StoredMessage, by: &Name) -> usize {
        let event = Shared::new(Event::Deleted { id: m.id, by: *by });
        let mut conns = Vec::new();
        recipients(&self.roster, &self.groups, m, |c, _| conns.push(c));
        let told = conns
            .into_iter()
            .filter(|&c| self.tell(c, &event, Class::Message))
            .count();
        self.finish();
        told
    }

    /// ANNOUNCE: an operator's notice goes to everyone at once; the OK
    /// follows its audit line.
    pub(super) fn announce_request(&mut self, conn: ConnId, reference: Ref, text: &str) {
        let Some(actor) = self.user(conn) else { return };
        if !self.is_operator(&actor) {
            return self.refuse(conn, reference, ProtocolError::NotOperator);
        }
        let max = self.config.max_body;
        if text.is_empty() || text.len() > max as usize {
            return self.refuse(conn, reference, ProtocolError::BadBody { max });
        }
        if !self.begin_request(conn, reference) {
            return;
        }
        self.announce(text);
        self.outbox.effect(Effect::Audit {
            conn,
            reference,
            line: AuditLine {
                actor,
                action: "announce",
                target: String::new(),
                reason: text.to_owned(),
            },
        });
    }

    /// Queues a NOTICE with `text` for every session logged in; returns
    /// how many. The text is the caller's to bound (the command line's
    /// is a line of the control socket; a client's is checked against
    /// `max_body`).
    pub fn announce(&mut self, text: &str) -> usize {
        let event = Shared::new(Event::Notice {
            text: text.to_owned(),
        });
        let conns: Vec<ConnId> = self
            .roster
            .online
            .values()
            .flat_map(|o| o.sessions.iter().copied())
            .collect();
        let told = conns
            .into_iter()
            .filter(|&c| self.tell(c, &event, Class::Control))
            .count();
        self.finish();
        told
    }

    /// Queues `event` for `conn` if its codec tells its version of it;
    /// held with the live messages while its replay loads.
    fn tell(&mut self, conn: ConnId, event: &Arc<Shared>, class: Class) -> bool {
        let Some(s) = self.sessions.get_mut(conn) else {
            return false;
        };
        let codec = &*self.codecs[s.protocol.index()];
        if s.logged_in().is_none() || !codec.tells(event.event(), s.version) {
            return false;
        }
        let item = Queued {
            len: event.encoded_len(s.protocol, codec),
            event: event.clone(),
            message: None,
        };
        if class == Class::Message && self.replays.holds(conn) {
            // Kept for after the replay, which may still show the message;
            // a full hold lets it go now (the client then hides nothing
            // it has not been shown, and history shows the tombstone).
            if self
                .replays
                .keep(conn, item.clone(), self.config.replay_hold)
            {
                return true;
            }
        }
        let limit = self.config.send_queue_bytes;
        self.outbox.push(s, conn, item, class, limit);
        true
    }
}
