//! Messages: a SEND checked and handed to storage, its commit answered to
//! the sender, and every committed message routed to the sessions
//! entitled to it.
//!
//! Commit and route are two inputs. [`Hub::handle_result`] with
//! [`EffectResult::Stored`](crate::EffectResult::Stored) only acknowledges
//! the sender. [`Hub::handle_committed`] routes a committed message,
//! whoever committed it: this node's storage writer today, and a bus
//! subscriber on every node, for every commit, its own included, when
//! there are several. One function, [`recipients`], says who is entitled
//! to a message of any kind; a group's or a direct message is one
//! [`Shared`] event queued for all of them, its length asked of each
//! protocol's codec once, and a room message is one push into the room's
//! log (see [`super::room`]), which every session reads at drain time.

use std::sync::Arc;
use std::time::Instant;

use crate::config::Config;
use crate::device::ClientId;
use crate::effect::{Committed, Effect, NewMessage, SendKey, StoredMessage};
use crate::error::ProtocolError;
use crate::event::Event;
use crate::id::{ConnId, MessageId, Ref};
use crate::message_kind::{ClientTags, MessageKind};
use crate::name::NameKey;
use crate::protocol::Codec;
use crate::protocol::MAX_PROTOCOLS;
use crate::roster::Roster;
use crate::send_queue::{Class, Queued};
use crate::shared::Shared;
use crate::wire::frame::Target;

use super::groups::Groups;
use super::outbox::Outbox;
use super::replay::Replays;
use super::sessions::Sessions;
use super::Hub;

impl Hub {
    /// SEND2: a SEND that storage commits at most once per client id of
    /// the session's device.
    pub(super) fn send2(
        &mut self,
        now: Instant,
        conn: ConnId,
        reference: Ref,
        client_id: ClientId,
        target: Target,
        body: &str,
    ) {
        let device = self
            .sessions
            .get(conn)
            .and_then(|s| s.logged_in())
            .and_then(|l| l.device);
        match device {
            Some(device) => {
                let once = Some(SendKey { device, client_id });
                let plain = (body, MessageKind::Message, ClientTags::default());
                self.send(now, conn, reference, target, plain, once)
            }
            None => self.refuse(
                conn,
                reference,
                ProtocolError::NoDevice { request: "SEND2" },
            ),
        }
    }

    pub(super) fn send(
        &mut self,
        now: Instant,
        conn: ConnId,
        reference: Ref,
        target: Target,
        (body, kind, tags): (&str, MessageKind, ClientTags),
        once: Option<SendKey>,
    ) {
        let Some(user) = self.user(conn) else { return };
        if let Some(muted) = self.mute_refusal(now, &user) {
            return self.refuse(conn, reference, muted);
        }
        let max = self.config.max_body;
        if body.is_empty() || body.len() > max as usize {
            return self.refuse(conn, reference, ProtocolError::BadBody { max });
        }
        let target = match target {
            Target::Group(g) => match self.groups.of_member(&user, &g) {
                Ok(name) => match self.group_mute_refusal(now, &name, &user) {
                    Some(muted) => return self.refuse(conn, reference, muted),
                    None => Target::Group(name),
                },
                Err(e) => return self.refuse(conn, reference, e),
            },
            // Prefer the registered spelling when the recipient is online;
            // storage canonicalises it otherwise.
            Target::User(u) => Target::User(self.roster.online.get(&u.key()).map_or(u, |o| o.name)),
            Target::Room => Target::Room,
        };
        if !self.begin_request(conn, reference) {
            return;
        }
        self.syncs.sent += 1;
        self.outbox.effect(Effect::Store {
            conn,
            reference,
            message: NewMessage {
                sender: user,
                target,
                body: body.to_owned(),
                kind,
                tags,
            },
            once,
        });
    }

    /// The storage result of a SEND: the sender's ACK, or why not.
    pub(super) fn stored(
        &mut self,
        conn: ConnId,
        reference: Ref,
        result: Result<Committed, (NewMessage, ProtocolError)>,
    ) {
        self.end_request(conn);
        self.syncs.answered += 1;
        match result {
            Ok(c) => {
                let ack = Event::Ack {
                    reference,
                    id: c.id,
                    timestamp_ms: c.timestamp_ms,
                };
                self.push(conn, ack, Class::Control);
            }
            Err((_, e)) => self.refuse(conn, reference, e),
        }
    }

    /// A message committed (by this node's storage or another's): it goes
    /// to every session entitled to it, except `origin`, the session that
    /// sent it (its copy is the ACK). Messages must come in id order.
    pub fn handle_committed(
        &mut self,
        now: Instant,
        message: StoredMessage,
        origin: Option<ConnId>,
    ) {
        let _ = now;
        self.last_id = self.last_id.max(message.id);
        let id = message.id;
        self.counts.committed[super::counts::kind(&message.target)] += 1;
        let shared = Shared::new(Event::Message(message));
        let Event::Message(m) = shared.event() else {
            unreachable!("built as a message just above")
        };
        let Hub {
            sessions,
            outbox,
            replays,
            config,
            codecs,
            roster,
            groups,
            room,
            ..
        } = self;
        if m.target == Target::Room && room.takes(m.id) {
            // One push into the room's log, whatever the audience.
            let len = shared.encoded_len(crate::Protocol::CONFAB, &*codecs[0]) as usize;
            room.push(shared, id, len, origin, sessions, |s, c| outbox.wake(s, c));
            self.finish();
            self.release_syncs();
            return;
        }
        let mut delivery = Delivery {
            sessions,
            outbox,
            replays,
            config,
            codecs,
            shared: &shared,
            lens: [None; MAX_PROTOCOLS],
        };
        recipients(roster, groups, m, |conn, conversation| {
            if Some(conn) != origin {
                delivery.to(conn, (conversation, m.id));
            }
        });
        self.finish();
        self.release_syncs();
    }
}

/// Every session entitled to `m`, with the conversation it belongs to from
/// that session's side (for MISSED): the room's is everyone online, a
/// group's its online members, a direct message's the recipient's and the
/// sender's sessions.
pub(super) fn recipients(
    roster: &Roster,
    groups: &Groups,
    m: &StoredMessage,
    mut each: impl FnMut(ConnId, Target),
) {
    let mut sessions_of = |user: &NameKey, conversation: Target| {
        if let Some(online) = roster.online.get(user) {
            for &c in &online.sessions {
                each(c, conversation);
            }
        }
    };
    match m.target {
        Target::Room => {
            for online in roster.online.values() {
                for &c in &online.sessions {
                    each(c, Target::Room);
                }
            }
        }
        Target::Group(g) => {
            for member in groups.member_keys(&g) {
                sessions_of(member, Target::Group(g));
            }
        }
        Target::User(to) => {
            sessions_of(&to.key(), Target::User(m.sender));
            if to.key() != m.sender.key() {
                sessions_of(&m.sender.key(), Target::User(to));
            }
        }
    }
}

/// One broadcast on its way to its recipients: the per-recipient step is
/// one `Arc` clone and a queue push.
struct Delivery<'a> {
    sessions: &'a mut Sessions,
    outbox: &'a mut Outbox,
    replays: &'a mut Replays,
    config: &'a Config,
    codecs: &'a [Arc<dyn Codec>],
    shared: &'a Arc<Shared>,
    /// The event's length per protocol, asked of the codec once.
    lens: [Option<u32>; MAX_PROTOCOLS],
}

impl Delivery<'_> {
    fn to(&mut self, conn: ConnId, message: (Target, MessageId)) {
        let Some(s) = self.sessions.get_mut(conn) else {
            return;
        };
        if s.logged_in().is_none() {
            return;
        }
        let p = s.protocol;
        let len = *self.lens[p.index()]
            .get_or_insert_with(|| self.shared.encoded_len(p, &*self.codecs[p.index()]));
        let item = Queued {
            event: self.shared.clone(),
            len,
            message: Some(message),
        };
        if self.replays.holds(conn) {
            // Its replay is loading: kept until it is queued, in id order.
            if !self.replays.keep(conn, item, self.config.replay_hold)
                && !s.queue.note_dropped(message.0, message.1)
            {
                self.outbox.overflowed(conn);
            }
            return;
        }
        let limit = self.config.send_queue_bytes;
        self.outbox.push(s, conn, item, Class::Message, limit);
    }
}
