//! The hub: every session, the room, the groups, and the routing between them.
//!
//! Like quinn's `Endpoint`, the hub owns per-connection state addressed by a
//! [`ConnId`] and turns input into output without doing I/O:
//!
//! - [`Hub::connect`], [`Hub::handle_bytes`] (a front end's bytes, read by
//!   the connection's [`Codec`]), [`Hub::handle_request`] (a request a
//!   front end parsed itself), [`Hub::handle_timeout`],
//!   [`Hub::handle_result`] (the answer to an effect),
//!   [`Hub::handle_committed`] and [`Hub::handle_group_committed`] (a
//!   commit, by this node or another), [`Hub::handle_presence`] (another
//!   node's presence), [`Hub::disconnect`] and [`Hub::shutdown`] feed it;
//! - [`Hub::poll_output`] yields effects for the shell and writer wake-ups;
//!   after every call that feeds the hub, drain it until it returns `None`;
//! - [`Hub::drain`] hands a connection's queued events, encoded by its
//!   protocol's codec, to its writer;
//! - [`Hub::poll_timeout`] and [`Hub::read_ready`] say when to call again.
//!
//! `now` must never go backwards; an extra `handle_timeout` does nothing.
//!
//! The hub is split along its data, one concept per module: the session
//! slab and connection limits ([`sessions`]), the outbox (queueing, waking,
//! draining, closing: [`outbox`]), what a request pays ([`budget`]), the
//! input loop and the state table's dispatch ([`input`]), timers
//! ([`timers`]), logging in and the penalties that bar it ([`auth`]),
//! groups ([`groups`]), the roster stream ([`roster_sync`]), routing of
//! committed messages ([`routing`]), history pages ([`history`]) and resume
//! replays ([`replay`]). Side effects that would re-enter the hub from deep
//! inside a push (closing a session whose queue overflowed) are deferred
//! and run by [`Hub::finish`] at the end of every input.

mod address_bans;
mod auth;
mod budget;
mod counts;
mod devices;
mod group_roles;
mod groups;
mod history;
mod input;
mod irc;
mod irc_relay;
mod moderation;
mod node_presence;
mod notices;
mod outbox;
mod read_markers;
mod remote;
mod replay;
mod room;
mod roster_sync;
mod routing;
mod sessions;
mod timers;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::confab::Confab;
use crate::config::Config;
use crate::effect::{Effect, EffectResult, Input};
use crate::event::Event;
use crate::id::{ConnId, MessageId, RosterVersion};
use crate::name::Name;
use crate::protocol::MAX_PROTOCOLS;
use crate::protocol::{Codec, Protocol};
use crate::roster::Roster;
use crate::session::{CloseReason, Phase, Session};
use crate::shared::Shared;

use auth::Guard;
use groups::Groups;
use outbox::Outbox;
use replay::Replays;
use room::Room;
use sessions::Sessions;

pub use counts::{code_index, HubCounts, KINDS};
pub use moderation::{HubStats, Sanction};
pub use outbox::Drained;
pub use remote::Applied;
pub use sessions::{Refused, TurnedAway};
pub use timers::ReadReady;

/// Something the shell must act on.
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub enum Output {
    /// Work to do; answer with [`Hub::handle_result`].
    Effect(Effect),
    /// This connection's queue went from empty to not empty, or it is
    /// closing: its writer should call [`Hub::drain`].
    Wake(ConnId),
}

/// The hub (see the module docs).
#[derive(Debug)]
pub struct Hub {
    config: Config,
    /// The codec of each protocol, at its [`Protocol`] index.
    codecs: Vec<Arc<dyn Codec>>,
    sessions: Sessions,
    outbox: Outbox,
    roster: Roster,
    /// Sessions that asked for the roster stream.
    subscribers: HashSet<ConnId>,
    groups: Groups,
    replays: Replays,
    /// The room's shared log of committed messages (see [`room`]).
    room: Room,
    guard: Guard,
    /// Bans and mutes in force (see [`moderation`]).
    moderation: moderation::Moderation,
    /// What it did, counted (see [`counts`]).
    counts: HubCounts,
    /// The newest committed message id the hub has seen.
    last_id: MessageId,
    /// SERVER_HELLO for each version from `OLDEST_VERSION`, made once.
    server_hello: [Arc<Shared>; 2],
    /// Devices with a session here (see [`devices`]).
    pub(crate) devices: devices::Devices,
    shutting_down: bool,
    next_ping: u64,
    /// The IRC gateway, if added (see [`irc`]).
    irc: Option<Box<irc::Gateway>>,
    /// Stores in flight and the PONGs waiting on them (see [`irc`]).
    syncs: irc::Syncs,
}

impl Hub {
    /// A hub with the groups and the last committed message id that storage
    /// had at start. It speaks [`Protocol::CONFAB`]; add others with
    /// [`Hub::add_protocol`].
    pub fn new(
        config: Config,
        groups: impl IntoIterator<Item = (Name, Vec<Name>)>,
        last_id: MessageId,
    ) -> Hub {
        let server_hello = [1, 2].map(|version| {
            Shared::new(Event::ServerHello {
                version,
                server: config.server_name.clone(),
                info: config.server_info(),
            })
        });
        Hub {
            roster: Roster::new(config.roster_log, config.max_frame),
            guard: Guard::new(&config),
            moderation: moderation::Moderation::default(),
            counts: HubCounts::default(),
            codecs: vec![Arc::new(Confab)],
            sessions: Sessions::default(),
            outbox: Outbox::default(),
            subscribers: HashSet::new(),
            groups: Groups::new(groups),
            replays: Replays::default(),
            room: Room::new(&config),
            last_id,
            server_hello,
            devices: devices::Devices::default(),
            shutting_down: false,
            next_ping: 1,
            irc: None,
            syncs: irc::Syncs::default(),
            config,
        }
    }

    /// Adds a protocol front end; connections made with the returned
    /// [`Protocol`] have their events encoded by `codec`. `None` once the
    /// hub speaks [`MAX_PROTOCOLS`] protocols.
    pub fn add_protocol(&mut self, codec: Arc<dyn Codec>) -> Option<Protocol> {
        let protocol = Protocol::new(self.codecs.len())?;
        self.codecs.push(codec);
        Some(protocol)
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Puts `config` in force without dropping anyone (a reload). Limits
    /// read at each use take effect at once: sizes and rates of requests
    /// from now on, body and frame limits, timeouts armed from now on, the
    /// registration mode, and SERVER_HELLO for new connections. What was
    /// sized at start keeps its start size: the lockout and registration
    /// policies, the room and roster logs.
    pub fn reconfigure(&mut self, config: Config) {
        self.server_hello = [1, 2].map(|version| {
            Shared::new(Event::ServerHello {
                version,
                server: config.server_name.clone(),
                info: config.server_info(),
            })
        });
        self.config = config;
    }

    /// The next thing for the shell to do.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outbox.outputs.pop_front()
    }

    /// Takes the answer to an [`Effect`].
    pub fn handle_result(&mut self, now: Instant, result: EffectResult) {
        match result {
            EffectResult::Authenticated { conn, result } => self.authenticated(now, conn, result),
            EffectResult::Registered { conn, result } => {
                let ok = result.is_ok();
                self.registered(conn, result);
                self.irc_registered(now, conn, ok);
                self.syncs.answered += 1;
                self.release_syncs();
            }
            EffectResult::Stored {
                conn,
                reference,
                result,
            } => {
                // A commit's PONGs go out once it is routed; a refusal's now.
                let refused = result.is_err();
                self.stored(conn, reference, result);
                if refused {
                    self.release_syncs();
                }
            }
            EffectResult::GroupStored {
                conn,
                reference,
                op,
                result,
            } => self.group_stored(conn, reference, op, result),
            r @ (EffectResult::History { .. } | EffectResult::Targets { .. }) => {
                self.read_loaded(r)
            }
            EffectResult::Replayed { conn, result } => self.replayed(conn, result),
            EffectResult::StoredBefore {
                conn,
                reference,
                committed,
            } => {
                self.stored(conn, reference, Ok(committed));
                self.release_syncs();
            }
            EffectResult::LoggedIn2 { conn, result } => self.authenticated2(now, conn, result),
            EffectResult::BookmarkSaved {
                device,
                upto,
                logout,
                saved,
            } => self.bookmark_saved(device, upto, logout, saved),
            EffectResult::ReadMarkerSaved {
                conn,
                user,
                target,
                result,
            } => self.read_marker_saved(conn, user, target, result),
            EffectResult::Devices {
                conn,
                reference,
                result,
            } => self.devices_loaded(conn, reference, result),
            EffectResult::DeviceRevoked {
                conn,
                reference,
                result,
            } => self.device_revoked(conn, reference, result),
            EffectResult::Moderated {
                conn,
                reference,
                result,
            } => self.moderated(conn, reference, result),
            EffectResult::MessageDeleted {
                conn,
                reference,
                by,
                result,
            } => self.message_deleted(conn, reference, by, result),
        }
        self.finish();
    }

    /// Takes what a worker handed back (see [`Input`]).
    pub fn handle_input(&mut self, now: Instant, input: Input) {
        match input {
            Input::Result(r) => self.handle_result(now, r),
            Input::Committed { message, origin } => self.handle_committed(now, message, origin),
            Input::GroupCommitted { op, origin } => self.handle_group_committed(now, op, origin),
            Input::Presence { user, presence } => self.handle_presence(now, user, presence),
            Input::Remote(remote) => self.handle_remote(now, remote),
        }
    }

    /// Begins shutdown: every session is sent SHUTDOWN and closes once its
    /// queue is flushed; new connections are turned away the same way.
    pub fn shutdown(&mut self, now: Instant, retry_after: Duration, reason: &str) {
        let _ = now;
        self.shutting_down = true;
        let event = Shared::new(Event::Shutdown {
            retry_after,
            reason: reason.to_owned(),
        });
        let ids: Vec<ConnId> = self.sessions.ids().collect();
        for conn in ids {
            if self.sessions.get(conn).is_none_or(|s| s.state.is_closed()) {
                continue;
            }
            self.push_shared(conn, &event, crate::Class::Control, None);
            self.close(conn, CloseReason::Shutdown);
        }
        self.finish();
    }

    /// Runs what was deferred while an input was handled: sessions whose
    /// queue overflowed are closed now, outside the push that found it.
    fn finish(&mut self) {
        while let Some(conn) = self.outbox.take_overflowed() {
            self.slow_consumer(conn);
        }
    }

    /// Why `conn` is closing, if it is.
    pub fn close_reason(&self, conn: ConnId) -> Option<&CloseReason> {
        match &self.sessions.get(conn)?.state {
            crate::session::State::Closed(c) => Some(&c.reason),
            _ => None,
        }
    }

    /// The session's state (for tests and logs).
    pub fn phase(&self, conn: ConnId) -> Option<Phase> {
        self.sessions.get(conn).map(Session::phase)
    }

    /// Whether `conn`'s session has its marks boxed (tests of its memory).
    #[cfg(test)]
    pub(crate) fn holds_marks(&self, conn: ConnId) -> Option<bool> {
        self.sessions.get(conn).map(Session::holds_marks)
    }

    /// The logged-in user of `conn`.
    pub fn user(&self, conn: ConnId) -> Option<Name> {
        self.sessions.get(conn)?.logged_in().map(|l| l.user)
    }

    /// Online users, sorted.
    pub fn online(&self) -> Vec<Name> {
        let mut v: Vec<Name> = self.roster.online.values().map(|o| o.name).collect();
        v.sort();
        v
    }

    /// The roster version.
    pub fn roster_version(&self) -> RosterVersion {
        self.roster.version()
    }

    /// Members of a group, sorted, if it exists.
    pub fn group_members(&self, group: &Name) -> Option<Vec<Name>> {
        self.groups.members(group)
    }

    /// Bytes queued for `conn` (for tests, fuzzing and metrics).
    pub fn queued_bytes(&self, conn: ConnId) -> Option<usize> {
        self.sessions.get(conn).map(|s| s.queue.bytes())
    }

    /// Connections the hub holds.
    pub fn connections(&self) -> u32 {
        self.sessions.count()
    }

    /// The newest committed message id the hub has seen.
    pub fn last_id(&self) -> MessageId {
        self.last_id
    }
}

const _: () = assert!(MAX_PROTOCOLS <= u8::MAX as usize);
