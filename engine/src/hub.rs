//! The hub: every session, the room, the groups, and the routing between them.
//!
//! Like quinn's `Endpoint`, the hub owns per-connection state addressed by a
//! [`ConnId`] and turns input into output without doing I/O:
//!
//! - [`Hub::connect`], [`Hub::handle_bytes`], [`Hub::handle_timeout`],
//!   [`Hub::handle_result`], [`Hub::disconnect`] and [`Hub::shutdown`] feed it;
//! - [`Hub::poll_output`] yields effects for the shell and writer wake-ups;
//!   after every call that feeds the hub, drain it until it returns `None`;
//! - [`Hub::drain`] hands a connection's queued frames to its writer;
//! - [`Hub::poll_timeout`] and [`Hub::read_ready`] say when to call again.
//!
//! `now` must never go backwards; an extra `handle_timeout` does nothing.
//! A broadcast is encoded once and the same `Arc<[u8]>` is queued for every
//! recipient; nothing on the delivery path allocates per recipient.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::codec::{decode, DecodeError};
use crate::config::Config;
use crate::effect::{
    Effect, EffectResult, GroupOp, HistoryLoaded, NewMessage, ReplayLoaded, ReplayScope,
    StoredMessage,
};
use crate::error::ProtocolError;
use crate::frame::{
    kind, ErrorCode, Frame, GroupChange, GroupInfo, HistoryEntry, Target, Text, PROTOCOL_VERSION,
};
use crate::id::{ConnId, MessageId, Ref, RosterVersion};
use crate::name::{Name, NameKey};
use crate::password::Password;
use crate::registrations::{self, Registrations};
use crate::roster::Roster;
use crate::send_queue::{Class, Pushed, Queued, SpareQueues};
use crate::session::{accepts, state, Bucket, CloseReason, Phase, Session, Source, State};

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

/// When a connection's reader may feed more bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadReady {
    /// Now.
    Now,
    /// Not before then (rate limit): TCP back-pressure does the rest.
    At(Instant),
    /// Never: the session is closing or gone.
    Never,
}

/// What [`Hub::drain`] handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Bytes moved into the caller's vector.
    pub bytes: usize,
    /// After writing them, close the connection: the session is over.
    pub close: bool,
    /// Nothing is left to hand over (no frame queued, no MISSED report or
    /// roster snapshot waiting for a drain to queue it): the next frame
    /// queued for the connection yields [`Output::Wake`], so a writer may
    /// park now, before writing these, instead of draining once more only
    /// to find nothing.
    pub empty: bool,
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
}

/// A connection [`Hub::admit`] turned away.
#[derive(Debug, Clone)]
pub struct Refused {
    /// Why.
    pub reason: TurnedAway,
    /// The whole ERROR frame to write to it before closing.
    pub frame: Arc<[u8]>,
}

#[derive(Debug)]
struct Slot {
    generation: u32,
    session: Option<Session>,
}

#[derive(Debug)]
struct Group {
    name: Name,
    members: BTreeMap<NameKey, Name>,
}

/// Live messages held for a session while its resume replay loads, so the
/// session sees ids in order; bounded by `Config::replay_hold`.
#[derive(Debug)]
struct Hold {
    /// The replay covers ids up to this; held ones are newer.
    upto: MessageId,
    held: Vec<(Queued, Class)>,
}

/// The hub (see the module docs).
#[derive(Debug)]
pub struct Hub {
    config: Config,
    slots: Vec<Slot>,
    free: Vec<u32>,
    count: u32,
    per_source: HashMap<Source, u32>,
    /// Connections per source that have not logged in (a subset of
    /// `per_source`'s, so bounded by it).
    unauthenticated: HashMap<Source, u32>,
    roster: Roster,
    /// Sessions that asked for the roster stream.
    subscribers: HashSet<ConnId>,
    groups: HashMap<NameKey, Group>,
    /// Groups per user, for the groups-per-user limit.
    memberships: HashMap<NameKey, u16>,
    /// Groups whose creation is being committed.
    pending_creates: HashSet<NameKey>,
    /// Replays under way, with the last id each covers.
    holds: HashMap<ConnId, Hold>,
    last_id: MessageId,
    outputs: VecDeque<Output>,
    server_hello: Arc<[u8]>,
    shutting_down: bool,
    next_ping: u64,
    /// Connections whose queue overflowed during a broadcast; closed after it.
    overflowed: Vec<ConnId>,
    /// Queue states of sessions whose queue emptied, for reuse.
    spare_queues: SpareQueues,
    /// Accounts disconnected for flooding, and until when they may not log
    /// in; bounded by `MAX_PENALTIES`.
    penalties: HashMap<NameKey, Instant>,
    /// Source addresses one of whose connections flooded before logging
    /// in, and until when [`Hub::admit`] turns them away; bounded by
    /// `MAX_PENALTIES` like `penalties`. A flooder without an account has
    /// nothing else to be barred by, and reconnecting costs the server far
    /// more than a refusal does.
    barred: HashMap<Source, Instant>,
    /// How many accounts each source and the server may still create.
    registrations: Registrations,
}

/// Flood penalties remembered at once; beyond this (a flood of floods) the
/// expired ones go, and if none has expired no new one is recorded.
const MAX_PENALTIES: usize = 10_000;

impl Hub {
    /// A hub with the groups and the last committed message id that storage
    /// had at start.
    pub fn new(
        config: Config,
        groups: impl IntoIterator<Item = (Name, Vec<Name>)>,
        last_id: MessageId,
    ) -> Hub {
        let server_hello = Frame::ServerHello {
            version: PROTOCOL_VERSION,
            server: Text::truncated(&config.server_name),
            info: config.server_info(),
        }
        .to_shared();
        let registrations = Registrations::new(
            config.registrations_per_source,
            config.registrations_per_server,
        );
        let mut hub = Hub {
            roster: Roster::new(config.roster_log, config.max_frame),
            config,
            slots: Vec::new(),
            free: Vec::new(),
            count: 0,
            per_source: HashMap::new(),
            unauthenticated: HashMap::new(),
            subscribers: HashSet::new(),
            groups: HashMap::new(),
            memberships: HashMap::new(),
            pending_creates: HashSet::new(),
            holds: HashMap::new(),
            last_id,
            outputs: VecDeque::new(),
            server_hello,
            shutting_down: false,
            next_ping: 1,
            overflowed: Vec::new(),
            spare_queues: SpareQueues::default(),
            penalties: HashMap::new(),
            barred: HashMap::new(),
            registrations,
        };
        for (name, members) in groups {
            let g = hub.groups.entry(name.key()).or_insert(Group {
                name,
                members: BTreeMap::new(),
            });
            for m in members {
                if g.members.insert(m.key(), m).is_none() {
                    *hub.memberships.entry(m.key()).or_default() += 1;
                }
            }
        }
        hub
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether a new connection from `source` fits the connection limits,
    /// decided without creating a session. A refusal carries its reason and
    /// the ERROR frame (`TOO_MANY_CONNECTIONS`) to write before closing, so
    /// that a storm of refused connections costs the shell one write each
    /// and never occupies a slot: a refused connection is not counted.
    /// Call it under the same hold as the [`Hub::connect`] it guards.
    pub fn admit(&self, now: Instant, source: Source) -> Result<(), Refused> {
        if let Some(until) = self.barred.get(&source).filter(|t| **t > now) {
            let ms = until
                .duration_since(now)
                .as_millis()
                .clamp(1, u32::MAX as u128) as u32;
            let text = "a connection from your address flooded before logging in; try again later";
            return Err(Refused {
                reason: TurnedAway::Flooded,
                frame: error_frame(ErrorCode::TooManyConnections, Ref(0), ms, text),
            });
        }
        let (reason, text) = if self.count >= self.config.max_clients {
            (
                TurnedAway::Full,
                "the server has as many connections as it allows",
            )
        } else if self.per_source.get(&source).copied().unwrap_or(0) >= self.config.max_per_source {
            (
                TurnedAway::PerSource,
                "too many connections from your address",
            )
        } else if self.unauthenticated.get(&source).copied().unwrap_or(0)
            >= self.config.max_pre_auth_per_source
        {
            (
                TurnedAway::PerSource,
                "too many connections from your address have not logged in",
            )
        } else {
            return Ok(());
        };
        Err(Refused {
            reason,
            frame: error_frame(ErrorCode::TooManyConnections, Ref(0), 0, text),
        })
    }

    /// A new connection from `source`. Over the connection limits, the
    /// session starts closed with `TOO_MANY_CONNECTIONS` queued.
    pub fn connect(&mut self, now: Instant, source: Source) -> ConnId {
        let session = Session::new(now, source, &self.config);
        let id = match self.free.pop() {
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
        *self.unauthenticated.entry(source).or_default() += 1;
        if let Some(s) = session_in(&mut self.slots, id) {
            s.unauthenticated = true;
        }
        let from_source = self.per_source.entry(source).or_default();
        *from_source += 1;
        let from_source = *from_source;
        if self.shutting_down {
            let bytes = shutdown_frame(Duration::from_secs(5), "server is shutting down");
            self.push(id, bytes, Class::Control, None);
            self.close(id, CloseReason::Shutdown);
        } else if self.count > self.config.max_clients {
            self.fatal(
                id,
                ErrorCode::TooManyConnections,
                Ref(0),
                "the server has as many connections as it allows",
            );
        } else if from_source > self.config.max_per_source {
            self.fatal(
                id,
                ErrorCode::TooManyConnections,
                Ref(0),
                "too many connections from your address",
            );
        }
        id
    }

    /// Bytes that arrived from the peer. Returns how many were consumed: the
    /// rest (an incomplete frame, or frames held back by the rate limit or
    /// the per-turn budget) must be passed again, with anything newer
    /// appended, when [`Hub::read_ready`] allows.
    pub fn handle_bytes(&mut self, now: Instant, conn: ConnId, input: &[u8]) -> usize {
        let Some(s) = self.session_mut(conn) else {
            return input.len();
        };
        if matches!(s.state, State::Closed(_)) {
            return input.len();
        }
        // The PONG to our own PING is the server's doing, paid for by its
        // ping schedule: it does not touch the budgets, so an idle session
        // that answers pings holds no rate state (see `Marks`).
        let mut solicited_pong = false;
        if !input.is_empty() {
            s.last_heard = now;
            if s.marks().ping_sent.is_some() {
                s.set_marks(|m| m.ping_sent = None);
                solicited_pong = true;
            }
        }
        let mut off = 0;
        let mut frames = 0;
        let (pre_auth_max, max_frame) = (self.config.max_frame_pre_auth, self.config.max_frame);
        while frames < self.config.frames_per_turn {
            let Some(s) = self.session_mut(conn) else {
                return input.len();
            };
            if matches!(s.state, State::Closed(_)) {
                return input.len();
            }
            if s.marks().paused_until.is_some_and(|t| t > now) {
                break;
            }
            let max = match s.state {
                State::Auth(_) => pre_auth_max,
                _ => max_frame,
            };
            match decode(&input[off..], max) {
                Ok(None) => break,
                Ok(Some((frame, n))) => {
                    let free = solicited_pong && matches!(frame, Frame::Pong { .. });
                    solicited_pong &= !free;
                    if !free && !self.pay(now, conn, is_exempt(frame.kind()), n) {
                        break;
                    }
                    off += n;
                    frames += 1;
                    self.handle_frame(now, conn, frame);
                }
                Err(DecodeError::UnknownType { kind, frame_len }) => {
                    // Skipped, but paid for like any other frame.
                    if !self.pay(now, conn, false, frame_len) {
                        break;
                    }
                    off += frame_len;
                    frames += 1;
                    let text = format!("unknown frame type 0x{kind:02x} skipped");
                    self.error(conn, ErrorCode::UnknownFrameType, Ref(0), 0, &text);
                }
                Err(e) => {
                    self.fatal(conn, e.code(), Ref(0), &e.to_string());
                    return input.len();
                }
            }
        }
        let rest = &input[off..];
        let incomplete = !rest.is_empty() && matches!(decode(rest, u32::MAX), Ok(None));
        if let Some(s) = self.session_mut(conn) {
            // The deadline is the incomplete frame's own: if frames were
            // taken in this call, the one left over is a newer frame than
            // any that was incomplete before, and its clock starts now.
            match (incomplete, off) {
                (false, _) => s.set_marks(|m| m.frame_started = None),
                (true, 0) => s.set_marks(|m| {
                    m.frame_started.get_or_insert(now);
                }),
                (true, _) => s.set_marks(|m| m.frame_started = Some(now)),
            }
        }
        off
    }

    /// Runs the session's timers: auth deadline, idle ping, frame completion,
    /// rate-limit pause and flood detection.
    pub fn handle_timeout(&mut self, now: Instant, conn: ConnId) {
        let config = &self.config;
        let Some(s) = self.slots.get_mut(conn.index()).and_then(|slot| {
            (slot.generation == conn.generation())
                .then_some(slot.session.as_mut())
                .flatten()
        }) else {
            return;
        };
        let fatal = match &s.state {
            State::Closed(_) => return,
            State::Auth(a) if now >= a.deadline => Some((
                ErrorCode::AuthTimeout,
                "not logged in within the auth timeout",
            )),
            _ if s
                .marks()
                .frame_started
                .is_some_and(|t| now >= t + config.frame_timeout) =>
            {
                Some((
                    ErrorCode::FrameTimeout,
                    "a frame was started and not finished in time",
                ))
            }
            _ if s.marks().paused_until.is_some()
                && s.marks()
                    .throttled_since
                    .is_some_and(|t| now >= t + config.flood_timeout) =>
            {
                Some((
                    ErrorCode::Flooding,
                    "kept sending faster than the rate limit",
                ))
            }
            _ if s
                .marks()
                .ping_sent
                .is_some_and(|t| now >= t + config.idle_timeout) =>
            {
                Some((ErrorCode::IdleTimeout, "no answer to ping"))
            }
            _ => None,
        };
        if let Some((code, text)) = fatal {
            if code == ErrorCode::Flooding {
                self.penalize(now, conn);
            }
            self.fatal(conn, code, Ref(0), text);
            return;
        }
        if s.marks().paused_until.is_some_and(|t| now >= t) {
            s.set_marks(|m| m.paused_until = None);
        }
        s.refill_marks(now, config);
        if s.marks().ping_sent.is_none() && now >= s.last_heard + config.idle_timeout {
            s.set_marks(|m| m.ping_sent = Some(now));
            let token = self.next_ping;
            self.next_ping += 1;
            let bytes = Frame::Ping { token }.to_shared();
            self.push(conn, bytes, Class::Control, None);
        }
    }

    /// The next instant at which [`Hub::handle_timeout`] has work for `conn`.
    pub fn poll_timeout(&self, conn: ConnId) -> Option<Instant> {
        self.session(conn)?.deadline(&self.config)
    }

    /// Whether `input`, bytes of `conn` that [`Hub::handle_bytes`] left
    /// unread, already holds a whole request: then the reader should feed
    /// them again when reading resumes, without waiting for the socket.
    /// The shell asks here rather than parsing frames itself; `conn` names
    /// the session whose framing applies (today every session speaks the
    /// confab codec).
    pub fn holds_request(&self, conn: ConnId, input: &[u8]) -> bool {
        let _ = conn;
        crate::codec::frame_len(input).is_some_and(|n| input.len() >= n)
    }

    /// Whether the reader may feed bytes now.
    pub fn read_ready(&self, now: Instant, conn: ConnId) -> ReadReady {
        match self.session(conn) {
            None => ReadReady::Never,
            Some(s) if matches!(s.state, State::Closed(_)) => ReadReady::Never,
            Some(s) => match s.marks().paused_until {
                Some(t) if t > now => ReadReady::At(t),
                _ => ReadReady::Now,
            },
        }
    }

    /// The next thing for the shell to do.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Moves up to about `max_bytes` of `conn`'s queued frames, most important
    /// first, into `out`. Call until it returns no bytes, then wait for
    /// [`Output::Wake`]; close the connection when it says so.
    pub fn drain(&mut self, conn: ConnId, out: &mut Vec<Arc<[u8]>>, max_bytes: usize) -> Drained {
        let Some(s) = self.session_mut(conn) else {
            return Drained {
                bytes: 0,
                close: true,
                empty: true,
            };
        };
        s.wake_pending = false;
        let needs_snapshot = self
            .session(conn)
            .and_then(Session::logged_in)
            .is_some_and(|l| l.roster.needs_snapshot);
        if needs_snapshot {
            self.roster_catch_up(conn);
        }
        self.close_overflowed();
        let Hub {
            slots,
            spare_queues,
            ..
        } = self;
        let Some(s) = session_in(slots, conn) else {
            return Drained {
                bytes: 0,
                close: true,
                empty: true,
            };
        };
        let mut bytes = 0;
        loop {
            bytes += s
                .queue
                .drain_into(out, max_bytes - bytes.min(max_bytes), spare_queues);
            if !s.queue.at_gap() {
                break;
            }
            // Messages were dropped here: the report goes before anything
            // newer (see `send_queue`), straight to the writer.
            for (target, r) in s.queue.take_missed() {
                let report = Frame::Missed {
                    target,
                    first: r.first,
                    last: r.last,
                    count: r.count,
                }
                .to_shared();
                bytes += report.len();
                out.push(report);
            }
            if bytes >= max_bytes {
                break;
            }
        }
        let close = matches!(s.state, State::Closed(_)) && s.queue.is_empty();
        // MISSED reports and roster snapshots are queued by a drain, not
        // when they arise: with either pending, drain again.
        let empty = s.queue.is_empty()
            && !s.queue.has_missed()
            && !s.logged_in().is_some_and(|l| l.roster.needs_snapshot);
        Drained {
            bytes,
            close,
            empty,
        }
    }

    /// The connection is gone (peer closed, I/O error, or the shell closed it
    /// after [`Drained::close`]). Frees its state.
    pub fn disconnect(&mut self, now: Instant, conn: ConnId) {
        let _ = now;
        if self.session(conn).is_none() {
            return;
        }
        self.leave(conn);
        let slot = &mut self.slots[conn.index()];
        let session = slot.session.take().expect("checked above");
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(conn.index() as u32);
        self.count -= 1;
        if let Some(n) = self.per_source.get_mut(&session.source) {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&session.source);
            }
        }
        if session.unauthenticated {
            self.authenticated_from(session.source);
        }
    }

    /// One connection from `source` no longer counts as not logged in.
    fn authenticated_from(&mut self, source: Source) {
        if let Some(n) = self.unauthenticated.get_mut(&source) {
            *n -= 1;
            if *n == 0 {
                self.unauthenticated.remove(&source);
            }
        }
    }

    /// Begins shutdown: every session is sent SHUTDOWN and closes once its
    /// queue is flushed; new connections are turned away the same way.
    pub fn shutdown(&mut self, now: Instant, retry_after: Duration, reason: &str) {
        let _ = now;
        self.shutting_down = true;
        let bytes = shutdown_frame(retry_after, reason);
        let ids: Vec<ConnId> = self.ids().collect();
        for conn in ids {
            if matches!(
                self.session(conn).map(|s| &s.state),
                Some(State::Closed(_)) | None
            ) {
                continue;
            }
            self.push(conn, bytes.clone(), Class::Control, None);
            self.close(conn, CloseReason::Shutdown);
        }
    }

    /// Takes the answer to an [`Effect`].
    pub fn handle_result(&mut self, now: Instant, result: EffectResult) {
        let _ = now;
        match result {
            EffectResult::Authenticated { conn, result } => self.authenticated(now, conn, result),
            EffectResult::Registered { conn, result } => self.registered(conn, result),
            EffectResult::Stored {
                conn,
                reference,
                result,
            } => self.stored(conn, reference, result),
            EffectResult::GroupStored {
                conn,
                reference,
                op,
                result,
            } => self.group_stored(conn, reference, op, result),
            EffectResult::History {
                conn,
                reference,
                target,
                result,
            } => self.history_loaded(conn, reference, target, result),
            EffectResult::Replayed { conn, result } => self.replayed(conn, result),
        }
        self.close_overflowed();
    }

    /// Why `conn` is closing, if it is.
    pub fn close_reason(&self, conn: ConnId) -> Option<&CloseReason> {
        match &self.session(conn)?.state {
            State::Closed(c) => Some(&c.reason),
            _ => None,
        }
    }

    /// The session's state (for tests and logs).
    pub fn phase(&self, conn: ConnId) -> Option<Phase> {
        self.session(conn).map(Session::phase)
    }

    /// Whether `conn`'s session has its marks boxed (tests of its memory).
    #[cfg(test)]
    pub(crate) fn holds_marks(&self, conn: ConnId) -> Option<bool> {
        self.session(conn).map(Session::holds_marks)
    }

    /// The logged-in user of `conn`.
    pub fn user(&self, conn: ConnId) -> Option<Name> {
        self.session(conn)?.logged_in().map(|l| l.user)
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
        self.groups
            .get(&group.key())
            .map(|g| g.members.values().copied().collect())
    }

    /// Bytes queued for `conn` (for tests, fuzzing and metrics).
    pub fn queued_bytes(&self, conn: ConnId) -> Option<usize> {
        self.session(conn).map(|s| s.queue.bytes())
    }

    /// Connections the hub holds.
    pub fn connections(&self) -> u32 {
        self.count
    }

    /// The newest committed message id the hub has seen.
    pub fn last_id(&self) -> MessageId {
        self.last_id
    }

    // ---- frames ----

    fn handle_frame(&mut self, now: Instant, conn: ConnId, frame: Frame<'_>) {
        let Some(s) = self.session_mut(conn) else {
            return;
        };
        let phase = s.phase();
        if !accepts(phase, frame.kind()) {
            let text = format!("{} is not accepted in state {phase:?}", frame.name());
            self.error(conn, ErrorCode::WrongState, reference_of(&frame), 0, &text);
            return;
        }
        match frame {
            Frame::Ping { token } => {
                let bytes = Frame::Pong { token }.to_shared();
                self.push(conn, bytes, Class::Control, None);
            }
            Frame::Pong { .. } => {}
            Frame::Hello { version, .. } => {
                if version != PROTOCOL_VERSION {
                    let text = format!(
                        "this server speaks protocol version {PROTOCOL_VERSION}, not {version}"
                    );
                    self.fatal(conn, ErrorCode::UnsupportedVersion, Ref(0), &text);
                    return;
                }
                if let State::Auth(a) = &mut s.state {
                    a.hello = true;
                }
                let hello = self.server_hello.clone();
                self.push(conn, hello, Class::Control, None);
            }
            Frame::Register {
                reference,
                user,
                password,
            } => self.register(now, conn, reference, user, password.as_str()),
            Frame::Login {
                reference,
                user,
                password,
                resume_after,
                roster,
            } => self.login(
                conn,
                reference,
                user,
                password.as_str(),
                resume_after,
                roster,
            ),
            Frame::Logout { reference } => {
                self.push(conn, ok_frame(reference), Class::Control, None);
                self.close(conn, CloseReason::Logout);
            }
            Frame::RosterAck { version } => self.roster_ack(conn, version),
            Frame::GroupCreate { reference, group } => {
                self.group_request(conn, reference, GroupRequest::Create, group)
            }
            Frame::GroupJoin { reference, group } => {
                self.group_request(conn, reference, GroupRequest::Join, group)
            }
            Frame::GroupLeave { reference, group } => {
                self.group_request(conn, reference, GroupRequest::Leave, group)
            }
            Frame::GroupListRequest { reference } => self.group_list(conn, reference),
            Frame::Send {
                reference,
                target,
                body,
            } => self.send(conn, reference, target, body.as_str()),
            Frame::HistoryRequest {
                reference,
                target,
                before,
                limit,
            } => self.history(conn, reference, target, before, limit),
            // `accepts` admits no other frame from a client.
            _ => {}
        }
        let _ = now;
    }

    /// Pays for a frame of `len` bytes before it is acted on; false if it
    /// may not be read now (the session was paused or closed instead).
    fn pay(&mut self, now: Instant, conn: ConnId, exempt: bool, len: usize) -> bool {
        let Some(s) = self.session_mut(conn) else {
            return false;
        };
        if matches!(s.state, State::Auth(_)) {
            return match self.charge_pre_auth(now, conn) {
                Ok(()) => true,
                Err(()) => {
                    let text = format!(
                        "sent more than {} frames before logging in (then {} a second)",
                        self.config.pre_auth_burst, self.config.pre_auth_rate
                    );
                    self.bar_source(now, conn);
                    self.fatal(conn, ErrorCode::Flooding, Ref(0), &text);
                    false
                }
            };
        }
        match self.charge(now, conn, exempt, len) {
            Ok(()) => true,
            Err(wait) => {
                self.throttle(now, conn, wait);
                false
            }
        }
    }

    /// Charges a frame from a session that has not logged in against its
    /// small budget of frames (`pre_auth_burst`, refilled at
    /// `pre_auth_rate`): logging in takes a few frames, so a session that
    /// sends more is flooding and is closed rather than paused. Every
    /// frame counts, PING included; its bytes are bounded by
    /// `max_frame_pre_auth`.
    fn charge_pre_auth(&mut self, now: Instant, conn: ConnId) -> Result<(), ()> {
        let config = &self.config;
        let Some(s) = session_in(&mut self.slots, conn) else {
            return Ok(());
        };
        let (rate, burst) = (
            f64::from(config.pre_auth_rate),
            f64::from(config.pre_auth_burst),
        );
        let mut frames = s.marks().msgs.unwrap_or(Bucket::full(burst, now));
        frames.take(1.0, now, rate, burst).map_err(|_| ())?;
        s.set_marks(|m| m.msgs = Some(frames));
        Ok(())
    }

    /// Charges a frame against a logged-in session's rate limits. Every
    /// frame's bytes count against the byte budget, at least
    /// `min_frame_charge` each (a frame costs the server work beyond its
    /// bytes); every frame but PING, PONG and ROSTER_ACK also takes a
    /// message token, so that a limited session can still prove it is
    /// alive and keep its roster, and those three are bounded by bytes.
    fn charge(
        &mut self,
        now: Instant,
        conn: ConnId,
        exempt: bool,
        len: usize,
    ) -> Result<(), Duration> {
        let config = &self.config;
        let Some(s) = session_in(&mut self.slots, conn) else {
            return Ok(());
        };
        let (mr, mb) = (config.msg_rate as f64, config.msg_burst as f64);
        let (br, bb) = (config.byte_rate as f64, config.byte_burst as f64);
        let cost = len.max(config.min_frame_charge as usize) as f64;
        // A client with slack in its buckets has been sending below its
        // rate: whatever it did before, it is not flooding now.
        let marks = s.marks();
        let mut msgs = marks.msgs.unwrap_or(Bucket::full(mb, now));
        let mut bytes = marks.bytes.unwrap_or(Bucket::full(bb, now));
        if (exempt || msgs.peek(now, mr, mb) >= 2.0) && bytes.peek(now, br, bb) >= 2.0 * cost {
            s.set_marks(|m| m.throttled_since = None);
        }
        // Check both before taking either, so a refused frame costs nothing.
        if !exempt {
            msgs.take(1.0, now, mr, mb)?;
        }
        bytes.take(cost, now, br, bb)?;
        s.set_marks(|m| {
            if !exempt {
                m.msgs = Some(msgs);
            }
            m.bytes = Some(bytes);
        });
        Ok(())
    }

    fn throttle(&mut self, now: Instant, conn: ConnId, wait: Duration) {
        let Some(s) = self.session_mut(conn) else {
            return;
        };
        s.set_marks(|m| m.paused_until = Some(now + wait));
        if s.marks().throttled_since.is_none() {
            s.set_marks(|m| m.throttled_since = Some(now));
            let ms = wait.as_millis().clamp(1, u32::MAX as u128) as u32;
            self.error(
                conn,
                ErrorCode::RateLimited,
                Ref(0),
                ms,
                "sending faster than the rate limit: reading is paused; keep it up and you will be disconnected",
            );
        }
    }

    fn register(&mut self, now: Instant, conn: ConnId, reference: Ref, user: Name, password: &str) {
        if !self.config.registration_open {
            self.error(
                conn,
                ErrorCode::RegistrationClosed,
                reference,
                0,
                "registration is closed on this server",
            );
            return;
        }
        let Some(password) = Password::new(password) else {
            let e = ProtocolError::BadPassword;
            self.error(
                conn,
                e.code(),
                reference,
                e.retry_after_ms(),
                &e.to_string(),
            );
            return;
        };
        let Some(source) = self.session(conn).map(|s| s.source) else {
            return;
        };
        if let Err(refused) = self.registrations.charge(now, source) {
            let (wait, text) = match refused {
                registrations::Refused::Source(wait) => {
                    (wait, "too many accounts were created from your address")
                }
                registrations::Refused::Server(wait) => {
                    (wait, "too many accounts are being created on this server")
                }
            };
            let ms = wait.as_millis().clamp(1, u32::MAX as u128) as u32;
            let text = format!("{text}; try again in {} s", ms.div_ceil(1000));
            self.error(conn, ErrorCode::RateLimited, reference, ms, &text);
            return;
        }
        if !self.begin_auth(conn, reference, state::PendingAuth::Register { reference }) {
            return;
        }
        self.outputs.push_back(Output::Effect(Effect::Register {
            conn,
            user,
            password,
        }));
    }

    fn login(
        &mut self,
        conn: ConnId,
        reference: Ref,
        user: Name,
        password: &str,
        resume_after: MessageId,
        roster: bool,
    ) {
        if !self.begin_auth(
            conn,
            reference,
            state::PendingAuth::Login {
                reference,
                resume_after,
                roster,
            },
        ) {
            return;
        }
        self.outputs.push_back(Output::Effect(Effect::Authenticate {
            conn,
            user,
            password: Password::offered(password),
        }));
    }

    /// Records a pending REGISTER/LOGIN; refuses a second one while the first is checked.
    fn begin_auth(&mut self, conn: ConnId, reference: Ref, pending: state::PendingAuth) -> bool {
        let Some(s) = self.session_mut(conn) else {
            return false;
        };
        let State::Auth(a) = &mut s.state else {
            return false;
        };
        if a.pending.is_some() {
            self.error(
                conn,
                ErrorCode::WrongState,
                reference,
                0,
                "a login or registration is already being checked",
            );
            return false;
        }
        a.pending = Some(pending);
        s.inflight += 1;
        true
    }

    fn take_pending_auth(&mut self, conn: ConnId) -> Option<state::PendingAuth> {
        let s = self.session_mut(conn)?;
        let State::Auth(a) = &mut s.state else {
            return None;
        };
        let p = a.pending.take()?;
        s.inflight = s.inflight.saturating_sub(1);
        Some(p)
    }

    fn registered(&mut self, conn: ConnId, result: Result<(), ProtocolError>) {
        let Some(state::PendingAuth::Register { reference }) = self.take_pending_auth(conn) else {
            return;
        };
        match result {
            Ok(()) => self.push(conn, ok_frame(reference), Class::Control, None),
            Err(r) => self.error(
                conn,
                r.code(),
                reference,
                r.retry_after_ms(),
                &r.to_string(),
            ),
        }
    }

    fn authenticated(&mut self, now: Instant, conn: ConnId, result: Result<Name, ProtocolError>) {
        let Some(state::PendingAuth::Login {
            reference,
            resume_after,
            roster,
        }) = self.take_pending_auth(conn)
        else {
            return;
        };
        let user = match result {
            Ok(user) => user,
            Err(r) => {
                self.error(
                    conn,
                    r.code(),
                    reference,
                    r.retry_after_ms(),
                    &r.to_string(),
                );
                return;
            }
        };
        if let Some(until) = self.penalties.get(&user.key()).filter(|t| **t > now) {
            let ms = until
                .duration_since(now)
                .as_millis()
                .clamp(1, u32::MAX as u128) as u32;
            self.error(
                conn,
                ErrorCode::RateLimited,
                reference,
                ms,
                "this account was disconnected for flooding; log in again later",
            );
            return;
        }
        let others_online = self.roster.online.contains_key(&user.key());
        if let Some(delta) = self.roster.attach(user, conn) {
            self.broadcast_roster(delta, conn);
        }
        let version = self.roster.version();
        let logged_in = state::LoggedIn {
            user,
            roster: state::RosterCursor {
                sent: version,
                acked: RosterVersion(0),
                needs_snapshot: false,
                synced_at: version,
            },
        };
        let Some(s) = self.session_mut(conn) else {
            return;
        };
        // The pre-auth budget is spent: logged in, the session starts with
        // full buckets of its own limits.
        s.set_marks(|m| {
            m.msgs = None;
            m.bytes = None;
        });
        let counted = std::mem::take(&mut s.unauthenticated);
        let source = s.source;
        s.state = if roster {
            State::RosterSync(logged_in)
        } else {
            State::Messaging(logged_in)
        };
        if counted {
            self.authenticated_from(source);
        }
        self.push(
            conn,
            Frame::LoginOk { reference, user }.to_shared(),
            Class::Control,
            None,
        );
        if roster {
            self.subscribers.insert(conn);
            // Part of the login's answer: ahead of the replay and
            // CAUGHT_UP (Message class), which may be queued before the
            // client reads anything.
            for chunk in self.roster.snapshot().iter() {
                self.push(conn, chunk.clone(), Class::Control, None);
            }
        }
        let upto = self.last_id;
        let scope = if resume_after > MessageId::ZERO {
            Some(ReplayScope::Since {
                after: resume_after,
                groups: self.groups_of(&user),
            })
        } else if !others_online {
            Some(ReplayScope::OfflineDirect)
        } else {
            None
        };
        match scope {
            Some(scope) => {
                self.holds.insert(
                    conn,
                    Hold {
                        upto,
                        held: Vec::new(),
                    },
                );
                if let Some(s) = self.session_mut(conn) {
                    s.inflight += 1;
                }
                self.outputs.push_back(Output::Effect(Effect::Replay {
                    conn,
                    user,
                    scope,
                    upto,
                    max: self.config.replay_max,
                }));
            }
            None => {
                let bytes = Frame::CaughtUp { last_id: upto }.to_shared();
                self.push(conn, bytes, Class::Message, None);
            }
        }
    }

    fn replayed(&mut self, conn: ConnId, result: Result<ReplayLoaded, ProtocolError>) {
        let Some(hold) = self.holds.remove(&conn) else {
            return;
        };
        let Some(s) = self.session_mut(conn) else {
            return;
        };
        s.inflight = s.inflight.saturating_sub(1);
        match result {
            Ok(loaded) => {
                for (target, first, last, count) in loaded.skipped {
                    let bytes = Frame::Missed {
                        target,
                        first,
                        last,
                        count,
                    }
                    .to_shared();
                    self.push(conn, bytes, Class::Control, None);
                }
                let Some(me) = self.user(conn) else { return };
                for m in loaded.messages.iter().filter(|m| m.id <= hold.upto) {
                    let bytes = message_frame(m);
                    let (class, conversation) = conversation_of(&m.target, &m.sender, &me);
                    self.push(conn, bytes, class, Some((conversation, m.id)));
                }
            }
            Err(r) => self.error(conn, r.code(), Ref(0), r.retry_after_ms(), &r.to_string()),
        }
        let bytes = Frame::CaughtUp { last_id: hold.upto }.to_shared();
        self.push(conn, bytes, Class::Message, None);
        for (q, class) in hold.held {
            self.push(conn, q.bytes, class, q.message);
        }
    }

    fn roster_ack(&mut self, conn: ConnId, version: RosterVersion) {
        let Some(s) = self.session_mut(conn) else {
            return;
        };
        let synced = match &mut s.state {
            State::RosterSync(l) | State::Messaging(l) => {
                l.roster.acked = l.roster.acked.max(version.min(l.roster.sent));
                l.roster.acked >= l.roster.synced_at
            }
            _ => return,
        };
        if synced {
            if let State::RosterSync(_) = s.state {
                let State::RosterSync(l) = std::mem::replace(
                    &mut s.state,
                    State::Closed(state::Closed {
                        reason: CloseReason::Logout,
                    }),
                ) else {
                    unreachable!("matched RosterSync just above")
                };
                s.state = State::Messaging(l);
            }
        }
        self.roster_catch_up(conn);
    }

    /// Sends a session the deltas it is behind on, within its window, or a
    /// fresh snapshot if the log no longer reaches back far enough.
    fn roster_catch_up(&mut self, conn: ConnId) {
        if !self.subscribers.contains(&conn) {
            return;
        }
        let window = self.config.roster_window;
        let version = self.roster.version();
        loop {
            let Some(l) = self.session(conn).and_then(Session::logged_in) else {
                return;
            };
            let c = &l.roster;
            if !c.needs_snapshot && (c.sent >= version || c.sent.0 - c.acked.0 >= window) {
                return;
            }
            let next = c.sent.next();
            match (c.needs_snapshot, self.roster.delta(next)) {
                (false, Some(delta)) => {
                    if !self.push_roster(conn, delta) {
                        return;
                    }
                    if let Some(l) = self.session_mut(conn).and_then(Session::logged_in_mut) {
                        l.roster.sent = next;
                    }
                }
                _ => {
                    let Some(s) = self.session_mut(conn) else {
                        return;
                    };
                    s.queue.clear(Class::Roster);
                    let chunks = self.roster.snapshot();
                    for chunk in chunks.iter() {
                        if !self.push_roster(conn, chunk.clone()) {
                            return;
                        }
                    }
                    if let Some(l) = self.session_mut(conn).and_then(Session::logged_in_mut) {
                        l.roster.sent = version;
                        l.roster.synced_at = version;
                        l.roster.needs_snapshot = false;
                    }
                    return;
                }
            }
        }
    }

    /// Queues a roster frame; when it does not fit, drops the session's
    /// queued roster frames and marks it for a snapshot instead.
    fn push_roster(&mut self, conn: ConnId, bytes: Arc<[u8]>) -> bool {
        let limit = self.config.send_queue_bytes;
        let Some(s) = self.session_mut(conn) else {
            return false;
        };
        match s.queue.push(
            Queued {
                bytes,
                message: None,
            },
            Class::Roster,
            limit,
        ) {
            Pushed::Queued { was_empty } => {
                if was_empty {
                    self.wake(conn);
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
    fn broadcast_roster(&mut self, delta: Arc<[u8]>, except: ConnId) {
        if self.shutting_down {
            return;
        }
        let version = self.roster.version();
        let window = self.config.roster_window;
        let subs: Vec<ConnId> = self
            .subscribers
            .iter()
            .copied()
            .filter(|c| *c != except)
            .collect();
        for conn in subs {
            let Some(l) = self.session(conn).and_then(Session::logged_in) else {
                continue;
            };
            let c = &l.roster;
            if c.needs_snapshot || c.sent.next() != version || c.sent.0 - c.acked.0 >= window {
                continue;
            }
            if self.push_roster(conn, delta.clone()) {
                if let Some(l) = self.session_mut(conn).and_then(Session::logged_in_mut) {
                    l.roster.sent = version;
                }
            }
        }
    }

    /// The registered name of group `g`, if it exists and `user` is a
    /// member; otherwise the error to answer with.
    fn group_of_member(&self, user: &Name, g: &Name) -> Result<Name, (ErrorCode, String)> {
        match self.groups.get(&g.key()) {
            None => Err((ErrorCode::NoSuchGroup, format!("no group {g}"))),
            Some(group) if !group.members.contains_key(&user.key()) => {
                Err((ErrorCode::NotAMember, format!("not a member of {g}")))
            }
            Some(group) => Ok(group.name),
        }
    }

    /// Bars the account of `conn` from logging in for `flood_penalty`.
    fn penalize(&mut self, now: Instant, conn: ConnId) {
        let Some(user) = self.user(conn) else { return };
        let until = now + self.config.flood_penalty;
        insert_penalty(&mut self.penalties, user.key(), until, now);
    }

    /// Turns `conn`'s source away for `flood_penalty` (see `Hub::barred`).
    fn bar_source(&mut self, now: Instant, conn: ConnId) {
        let Some(source) = self.session(conn).map(|s| s.source) else {
            return;
        };
        let until = now + self.config.flood_penalty;
        insert_penalty(&mut self.barred, source, until, now);
    }

    fn groups_of(&self, user: &Name) -> Vec<Name> {
        let key = user.key();
        let mut v: Vec<Name> = self
            .groups
            .values()
            .filter(|g| g.members.contains_key(&key))
            .map(|g| g.name)
            .collect();
        v.sort();
        v
    }

    fn group_request(&mut self, conn: ConnId, reference: Ref, req: GroupRequest, group: Name) {
        let Some(user) = self.user(conn) else { return };
        let key = group.key();
        let existing = self
            .groups
            .get(&key)
            .map(|g| (g.name, g.members.len(), g.members.contains_key(&user.key())));
        let is_member = existing.is_some_and(|(_, _, m)| m);
        let mine = self.memberships.get(&user.key()).copied().unwrap_or(0);
        let refusal = match req {
            GroupRequest::Create if existing.is_some() || self.pending_creates.contains(&key) => {
                Some((
                    ErrorCode::GroupExists,
                    format!("group {group} already exists"),
                ))
            }
            GroupRequest::Create
                if self.groups.len() + self.pending_creates.len()
                    >= self.config.max_groups as usize =>
            {
                Some((
                    ErrorCode::ServerGroupsFull,
                    format!(
                        "the server has {} groups, as many as it allows",
                        self.config.max_groups
                    ),
                ))
            }
            GroupRequest::Join | GroupRequest::Leave if existing.is_none() => {
                Some((ErrorCode::NoSuchGroup, format!("no group {group}")))
            }
            GroupRequest::Join if is_member => Some((
                ErrorCode::AlreadyMember,
                format!("already a member of {group}"),
            )),
            GroupRequest::Join
                if existing
                    .is_some_and(|(_, n, _)| n >= self.config.members_per_group as usize) =>
            {
                Some((ErrorCode::GroupFull, format!("group {group} is full")))
            }
            GroupRequest::Leave if !is_member => {
                Some((ErrorCode::NotAMember, format!("not a member of {group}")))
            }
            GroupRequest::Create | GroupRequest::Join if mine >= self.config.groups_per_user => {
                Some((
                    ErrorCode::TooManyGroups,
                    format!(
                        "a user may belong to at most {} groups",
                        self.config.groups_per_user
                    ),
                ))
            }
            _ => None,
        };
        if let Some((code, text)) = refusal {
            self.error(conn, code, reference, 0, &text);
            return;
        }
        if !self.begin_request(conn, reference) {
            return;
        }
        let group = existing.map_or(group, |(name, _, _)| name);
        let op = match req {
            GroupRequest::Create => {
                self.pending_creates.insert(key);
                GroupOp::Create { group, user }
            }
            GroupRequest::Join => GroupOp::Join { group, user },
            GroupRequest::Leave => GroupOp::Leave { group, user },
        };
        self.outputs.push_back(Output::Effect(Effect::StoreGroup {
            conn,
            reference,
            op,
        }));
    }

    fn group_stored(
        &mut self,
        conn: ConnId,
        reference: Ref,
        op: GroupOp,
        result: Result<(), ProtocolError>,
    ) {
        self.end_request(conn);
        if let GroupOp::Create { group, .. } = &op {
            self.pending_creates.remove(&group.key());
        }
        if let Err(r) = result {
            self.error(
                conn,
                r.code(),
                reference,
                r.retry_after_ms(),
                &r.to_string(),
            );
            return;
        }
        let (group, user, change) = match op {
            GroupOp::Create { group, user } => {
                self.groups.entry(group.key()).or_insert(Group {
                    name: group,
                    members: BTreeMap::new(),
                });
                (group, user, GroupChange::Joined)
            }
            GroupOp::Join { group, user } => (group, user, GroupChange::Joined),
            GroupOp::Leave { group, user } => (group, user, GroupChange::Left),
        };
        let Some(g) = self.groups.get_mut(&group.key()) else {
            return;
        };
        let changed = match change {
            GroupChange::Joined => g.members.insert(user.key(), user).is_none(),
            GroupChange::Left => g.members.remove(&user.key()).is_some(),
        };
        if changed {
            let n = self.memberships.entry(user.key()).or_default();
            match change {
                GroupChange::Joined => *n += 1,
                GroupChange::Left => *n = n.saturating_sub(1),
            }
        }
        // Tell the group's online members and the user's other sessions.
        let event: Arc<[u8]> = Frame::GroupEvent {
            change,
            group: g.name,
            user,
        }
        .to_shared();
        let g = self.groups.get(&group.key()).expect("looked up above");
        let mut recipients: Vec<ConnId> = g
            .members
            .keys()
            .chain(std::iter::once(&user.key()))
            .filter_map(|k| self.roster.online.get(k))
            .flat_map(|o| o.sessions.iter().copied())
            .filter(|c| *c != conn)
            .collect();
        recipients.sort();
        recipients.dedup();
        self.push(conn, ok_frame(reference), Class::Control, None);
        for r in recipients {
            self.push(r, event.clone(), Class::Roster, None);
        }
    }

    fn group_list(&mut self, conn: ConnId, reference: Ref) {
        let Some(user) = self.user(conn) else { return };
        let key = user.key();
        let mut groups: Vec<GroupInfo> = self
            .groups
            .values()
            .map(|g| GroupInfo {
                name: g.name,
                members: g.members.len() as u32,
                is_member: g.members.contains_key(&key),
            })
            .collect();
        groups.sort_by_key(|g| g.name.key());
        groups.truncate(u16::MAX as usize);
        let bytes = Frame::GroupList { reference, groups }.to_shared();
        self.push(conn, bytes, Class::Bulk, None);
    }

    fn send(&mut self, conn: ConnId, reference: Ref, target: Target, body: &str) {
        let Some(user) = self.user(conn) else { return };
        if body.is_empty() || body.len() > self.config.max_body as usize {
            let text = format!("a message body is 1 to {} bytes", self.config.max_body);
            self.error(conn, ErrorCode::BadBody, reference, 0, &text);
            return;
        }
        let target = match target {
            Target::Group(g) => match self.group_of_member(&user, &g) {
                Ok(name) => Target::Group(name),
                Err((code, text)) => {
                    self.error(conn, code, reference, 0, &text);
                    return;
                }
            },
            // Prefer the registered spelling when the recipient is online;
            // storage canonicalises it otherwise.
            Target::User(u) => Target::User(self.roster.online.get(&u.key()).map_or(u, |o| o.name)),
            Target::Room => Target::Room,
        };
        if !self.begin_request(conn, reference) {
            return;
        }
        self.outputs.push_back(Output::Effect(Effect::Store {
            conn,
            reference,
            message: NewMessage {
                sender: user,
                target,
                body: body.to_owned(),
            },
        }));
    }

    fn stored(
        &mut self,
        conn: ConnId,
        reference: Ref,
        result: Result<StoredMessage, (NewMessage, ProtocolError)>,
    ) {
        self.end_request(conn);
        let m = match result {
            Ok(m) => m,
            Err((_, r)) => {
                self.error(
                    conn,
                    r.code(),
                    reference,
                    r.retry_after_ms(),
                    &r.to_string(),
                );
                return;
            }
        };
        self.last_id = self.last_id.max(m.id);
        let ack = Frame::Ack {
            reference,
            id: m.id,
            timestamp_ms: m.timestamp_ms,
        }
        .to_shared();
        self.push(conn, ack, Class::Control, None);
        self.route(&m, conn);
    }

    /// Delivers a committed message to every session entitled to it except
    /// the one that sent it.
    fn route(&mut self, m: &StoredMessage, origin: ConnId) {
        let bytes = message_frame(m);
        match m.target {
            Target::Room => {
                let Hub {
                    roster,
                    slots,
                    spare_queues,
                    outputs,
                    holds,
                    config,
                    overflowed,
                    ..
                } = self;
                for online in roster.online.values() {
                    for &c in &online.sessions {
                        if c != origin {
                            deliver(
                                slots,
                                spare_queues,
                                outputs,
                                holds,
                                overflowed,
                                config,
                                c,
                                &bytes,
                                Class::Message,
                                (Target::Room, m.id),
                            );
                        }
                    }
                }
            }
            Target::Group(g) => {
                let Hub {
                    roster,
                    slots,
                    spare_queues,
                    outputs,
                    holds,
                    config,
                    overflowed,
                    groups,
                    ..
                } = self;
                let Some(group) = groups.get(&g.key()) else {
                    return;
                };
                for member in group.members.keys() {
                    let Some(online) = roster.online.get(member) else {
                        continue;
                    };
                    for &c in &online.sessions {
                        if c != origin {
                            deliver(
                                slots,
                                spare_queues,
                                outputs,
                                holds,
                                overflowed,
                                config,
                                c,
                                &bytes,
                                Class::Message,
                                (m.target, m.id),
                            );
                        }
                    }
                }
            }
            Target::User(to) => {
                let Hub {
                    roster,
                    slots,
                    spare_queues,
                    outputs,
                    holds,
                    config,
                    overflowed,
                    ..
                } = self;
                let conversations = [(to, Target::User(m.sender)), (m.sender, Target::User(to))];
                let same = to.key() == m.sender.key();
                for (who, conversation) in conversations.iter().take(if same { 1 } else { 2 }) {
                    let Some(online) = roster.online.get(&who.key()) else {
                        continue;
                    };
                    for &c in &online.sessions {
                        if c != origin {
                            deliver(
                                slots,
                                spare_queues,
                                outputs,
                                holds,
                                overflowed,
                                config,
                                c,
                                &bytes,
                                Class::Message,
                                (*conversation, m.id),
                            );
                        }
                    }
                }
            }
        }
    }

    fn history(
        &mut self,
        conn: ConnId,
        reference: Ref,
        target: Target,
        before: MessageId,
        limit: u16,
    ) {
        let Some(user) = self.user(conn) else { return };
        if let Target::Group(g) = &target {
            if let Err((code, text)) = self.group_of_member(&user, g) {
                self.error(conn, code, reference, 0, &text);
                return;
            }
        }
        let max = self.config.history_page_max;
        let limit = if limit == 0 || limit > max {
            max
        } else {
            limit
        };
        if !self.begin_request(conn, reference) {
            return;
        }
        self.outputs.push_back(Output::Effect(Effect::LoadHistory {
            conn,
            reference,
            user,
            target,
            before,
            limit,
        }));
    }

    fn history_loaded(
        &mut self,
        conn: ConnId,
        reference: Ref,
        target: Target,
        result: Result<HistoryLoaded, ProtocolError>,
    ) {
        self.end_request(conn);
        let loaded = match result {
            Ok(l) => l,
            Err(r) => {
                self.error(
                    conn,
                    r.code(),
                    reference,
                    r.retry_after_ms(),
                    &r.to_string(),
                );
                return;
            }
        };
        // Fit the page into one frame; what does not fit is "more".
        let budget = self.config.max_frame as usize;
        let mut size = 4 + 1 + 4 + 2 + Name::MAX_LEN + 1 + 2;
        let mut entries = Vec::with_capacity(loaded.messages.len());
        let mut more = loaded.more;
        for m in &loaded.messages {
            let n = 8 + 8 + 1 + m.sender.as_str().len() + 2 + m.body.len();
            if size + n > budget || entries.len() == u16::MAX as usize {
                more = true;
                break;
            }
            size += n;
            entries.push(HistoryEntry {
                id: m.id,
                timestamp_ms: m.timestamp_ms,
                sender: m.sender,
                body: Text::truncated(&m.body),
            });
        }
        let bytes = Frame::HistoryPage {
            reference,
            target,
            more,
            entries,
        }
        .to_shared();
        self.push(conn, bytes, Class::Bulk, None);
    }

    /// Counts a request handed to the shell; over the in-flight limit the
    /// client is told to retry.
    fn begin_request(&mut self, conn: ConnId, reference: Ref) -> bool {
        let max = self.config.max_inflight;
        let Some(s) = self.session_mut(conn) else {
            return false;
        };
        if s.inflight >= max {
            self.error(
                conn,
                ErrorCode::Busy,
                reference,
                100,
                "too many requests in flight; wait for answers",
            );
            return false;
        }
        s.inflight += 1;
        true
    }

    fn end_request(&mut self, conn: ConnId) {
        if let Some(s) = self.session_mut(conn) {
            s.inflight = s.inflight.saturating_sub(1);
        }
    }

    // ---- queues and closing ----

    /// Queues a frame for one session, waking its writer if it was idle.
    fn push(
        &mut self,
        conn: ConnId,
        bytes: Arc<[u8]>,
        class: Class,
        message: Option<(Target, MessageId)>,
    ) {
        let limit = self.config.send_queue_bytes;
        let Hub {
            slots,
            spare_queues,
            ..
        } = self;
        let Some(s) = session_in(slots, conn) else {
            return;
        };
        match s
            .queue
            .push_from(spare_queues, Queued { bytes, message }, class, limit)
        {
            Pushed::Queued { .. } | Pushed::Dropped => self.wake(conn),
            Pushed::Overflow => self.slow_consumer(conn),
        }
    }

    fn wake(&mut self, conn: ConnId) {
        let Some(s) = self.session_mut(conn) else {
            return;
        };
        if !s.wake_pending {
            s.wake_pending = true;
            self.outputs.push_back(Output::Wake(conn));
        }
    }

    fn slow_consumer(&mut self, conn: ConnId) {
        let Some(s) = self.session_mut(conn) else {
            return;
        };
        if matches!(s.state, State::Closed(_)) {
            return;
        }
        // What is queued will not be read in time; make room for the reason.
        s.queue = Default::default();
        self.fatal(
            conn,
            ErrorCode::SlowConsumer,
            Ref(0),
            "did not read its traffic; the send queue overflowed",
        );
    }

    fn close_overflowed(&mut self) {
        while let Some(conn) = self.overflowed.pop() {
            self.slow_consumer(conn);
        }
    }

    /// Sends an error; a fatal one closes the session.
    fn error(
        &mut self,
        conn: ConnId,
        code: ErrorCode,
        reference: Ref,
        retry_after_ms: u32,
        text: &str,
    ) {
        if code.is_fatal() {
            self.fatal(conn, code, reference, text);
            return;
        }
        self.push(
            conn,
            error_frame(code, reference, retry_after_ms, text),
            Class::Control,
            None,
        );
    }

    fn fatal(&mut self, conn: ConnId, code: ErrorCode, reference: Ref, text: &str) {
        let bytes = error_frame(code, reference, 0, text);
        let limit = self.config.send_queue_bytes;
        let Some(s) = self.session_mut(conn) else {
            return;
        };
        if matches!(s.state, State::Closed(_)) {
            return;
        }
        // In the last class, so that it is the last frame written, after
        // whatever was queued before it (nothing is queued after it: the
        // session is closed), as the spec promises.
        if let Pushed::Overflow = s.queue.push(
            Queued {
                bytes: bytes.clone(),
                message: None,
            },
            Class::Bulk,
            limit,
        ) {
            s.queue = Default::default();
            let _ = s.queue.push(
                Queued {
                    bytes,
                    message: None,
                },
                Class::Bulk,
                usize::MAX,
            );
        }
        self.close(conn, CloseReason::Error(code, text.to_owned()));
    }

    /// Moves a session to Closed: it leaves the roster and its groups' view
    /// now; its queue is still flushed by the writer.
    fn close(&mut self, conn: ConnId, reason: CloseReason) {
        self.leave(conn);
        let Some(s) = self.session_mut(conn) else {
            return;
        };
        s.state = State::Closed(state::Closed { reason });
        s.set_marks(|m| m.paused_until = None);
        s.set_marks(|m| m.frame_started = None);
        self.wake(conn);
    }

    /// Takes a logged-in session out of the roster.
    fn leave(&mut self, conn: ConnId) {
        self.subscribers.remove(&conn);
        self.holds.remove(&conn);
        let Some(user) = self.user(conn) else { return };
        if let Some(s) = self.session_mut(conn) {
            // Leave a placeholder until `close` or `disconnect` sets the real end.
            s.state = State::Closed(state::Closed {
                reason: CloseReason::Logout,
            });
        }
        if let Some(delta) = self.roster.detach(user, conn) {
            self.outputs.push_back(Output::Effect(Effect::UserOffline {
                user,
                seen_upto: self.last_id,
            }));
            self.broadcast_roster(delta, conn);
        }
    }

    fn session(&self, conn: ConnId) -> Option<&Session> {
        let slot = self.slots.get(conn.index())?;
        if slot.generation != conn.generation() {
            return None;
        }
        slot.session.as_ref()
    }

    fn session_mut(&mut self, conn: ConnId) -> Option<&mut Session> {
        session_in(&mut self.slots, conn)
    }

    fn ids(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.session
                .as_ref()
                .map(|_| ConnId::new(i as u32, s.generation))
        })
    }
}

#[derive(Clone, Copy, Debug)]
enum GroupRequest {
    Create,
    Join,
    Leave,
}

/// Records a penalty until `until`, keeping the map within
/// `MAX_PENALTIES`: the expired ones go first, and if none has expired no
/// new one is recorded (a flood of floods).
fn insert_penalty<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, Instant>,
    key: K,
    until: Instant,
    now: Instant,
) {
    if map.len() >= MAX_PENALTIES {
        map.retain(|_, t| *t > now);
        if map.len() >= MAX_PENALTIES {
            return;
        }
    }
    map.insert(key, until);
}

fn session_in(slots: &mut [Slot], conn: ConnId) -> Option<&mut Session> {
    let slot = slots.get_mut(conn.index())?;
    if slot.generation != conn.generation() {
        return None;
    }
    slot.session.as_mut()
}

/// The per-recipient step of a broadcast: one `Arc` clone and a queue push.
#[allow(clippy::too_many_arguments)]
fn deliver(
    slots: &mut [Slot],
    spare_queues: &mut SpareQueues,
    outputs: &mut VecDeque<Output>,
    holds: &mut HashMap<ConnId, Hold>,
    overflowed: &mut Vec<ConnId>,
    config: &Config,
    conn: ConnId,
    bytes: &Arc<[u8]>,
    class: Class,
    message: (Target, MessageId),
) {
    let Some(s) = session_in(slots, conn) else {
        return;
    };
    if s.logged_in().is_none() {
        return;
    }
    let item = Queued {
        bytes: bytes.clone(),
        message: Some(message),
    };
    if let Some(hold) = holds.get_mut(&conn) {
        if hold.held.len() < config.replay_hold {
            hold.held.push((item, class));
        } else if !s.queue.note_dropped(message.0, message.1) {
            overflowed.push(conn);
        }
        return;
    }
    match s
        .queue
        .push_from(spare_queues, item, class, config.send_queue_bytes)
    {
        Pushed::Queued { .. } | Pushed::Dropped => {
            if !s.wake_pending {
                s.wake_pending = true;
                outputs.push_back(Output::Wake(conn));
            }
        }
        Pushed::Overflow => overflowed.push(conn),
    }
}

/// Which queue class a message goes in for `me`, and the conversation it
/// belongs to from `me`'s side (for MISSED).
fn conversation_of(target: &Target, sender: &Name, me: &Name) -> (Class, Target) {
    match target {
        Target::User(to) if to.key() == me.key() => (Class::Message, Target::User(*sender)),
        Target::User(to) => (Class::Message, Target::User(*to)),
        t => (Class::Message, *t),
    }
}

fn message_frame(m: &StoredMessage) -> Arc<[u8]> {
    Frame::Message {
        id: m.id,
        timestamp_ms: m.timestamp_ms,
        sender: m.sender,
        target: m.target,
        body: Text::truncated(&m.body),
    }
    .to_shared()
}

fn ok_frame(reference: Ref) -> Arc<[u8]> {
    Frame::Ok { reference }.to_shared()
}

fn error_frame(code: ErrorCode, reference: Ref, retry_after_ms: u32, text: &str) -> Arc<[u8]> {
    Frame::Error {
        code,
        reference,
        retry_after_ms,
        text: Text::truncated(text),
    }
    .to_shared()
}

fn shutdown_frame(retry_after: Duration, reason: &str) -> Arc<[u8]> {
    Frame::Shutdown {
        retry_after_ms: retry_after.as_millis().min(u32::MAX as u128) as u32,
        reason: Text::truncated(reason),
    }
    .to_shared()
}

/// The reference a request carries, for the error that answers it.
/// Frames that take no message token (see [`Hub::charge`]).
fn is_exempt(k: u8) -> bool {
    matches!(k, kind::PING | kind::PONG | kind::ROSTER_ACK)
}

fn reference_of(f: &Frame<'_>) -> Ref {
    match f {
        Frame::Register { reference, .. }
        | Frame::Login { reference, .. }
        | Frame::Logout { reference }
        | Frame::GroupCreate { reference, .. }
        | Frame::GroupJoin { reference, .. }
        | Frame::GroupLeave { reference, .. }
        | Frame::GroupListRequest { reference }
        | Frame::Send { reference, .. }
        | Frame::HistoryRequest { reference, .. } => *reference,
        _ => Ref(0),
    }
}
