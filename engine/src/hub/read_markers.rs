//! Read markers (protocol version 2): "read up to id N" per conversation
//! and user, stored durably and told to the user's other sessions, so
//! that unread counts agree across devices.
//!
//! A marker only ever rises (storage keeps the higher of the old and the
//! new), and is told to the other sessions once stored, as a message is
//! routed once committed. Storage keeps `read_markers_per_user` per user,
//! the most recently set: a client cannot grow the table by naming
//! conversations.

use crate::effect::Effect;
use crate::error::ProtocolError;
use crate::event::Event;
use crate::id::{ConnId, MessageId, Ref};
use crate::name::Name;
use crate::send_queue::Class;
use crate::wire::frame::Target;

use super::Hub;

impl Hub {
    /// MARK_READ: a group must be one of the user's (it has no ref, so a
    /// refusal carries 0); an id beyond the newest committed is cut to it.
    pub(super) fn mark_read(&mut self, conn: ConnId, target: Target, id: MessageId) {
        let Some(user) = self.user(conn) else { return };
        let target = match target {
            Target::Group(g) => match self.groups.of_member(&user, &g) {
                Ok(name) => Target::Group(name),
                Err(e) => return self.refuse(conn, Ref(0), e),
            },
            t => t,
        };
        let id = id.min(self.last_id);
        if !self.begin_request(conn, Ref(0)) {
            return;
        }
        self.outbox.effect(Effect::SaveReadMarker {
            conn,
            user,
            target,
            id,
            max: self.config.read_markers_per_user,
        });
    }

    /// A marker is stored: the user's other version 2 sessions are told;
    /// or it is not, and the setter is.
    pub(super) fn read_marker_saved(
        &mut self,
        conn: ConnId,
        user: Name,
        target: Target,
        result: Result<MessageId, ProtocolError>,
    ) {
        self.end_request(conn);
        match result {
            Ok(id) => self.handle_read_marker(user, target, id, Some(conn)),
            Err(e) => self.refuse(conn, Ref(0), e),
        }
    }

    /// A read marker of `user` was stored (here, or on another node):
    /// every version 2 session of theirs but `origin` gets READ_MARKER.
    pub fn handle_read_marker(
        &mut self,
        user: Name,
        target: Target,
        id: MessageId,
        origin: Option<ConnId>,
    ) {
        let Some(online) = self.roster.online.get(&user.key()) else {
            return;
        };
        let conns: Vec<ConnId> = online
            .sessions
            .iter()
            .copied()
            .filter(|c| Some(*c) != origin)
            .filter(|c| self.sessions.get(*c).is_some_and(|s| s.version >= 2))
            .collect();
        let shared = crate::shared::Shared::new(Event::ReadMarker { target, id });
        for c in conns {
            self.push_shared(c, &shared, Class::Roster, None);
        }
        self.finish();
    }
}
