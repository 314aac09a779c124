//! The IRC gateway's sessions in the hub (see [`crate::irc`]).
//!
//! An IRC connection is a session whose protocol is one of
//! [`IrcProtocols`]: its bytes are read as IRC lines here (each paid for
//! like a frame), each line's [`Act`]s carried out on the same paths a
//! confab request takes, and what drains for it is rendered with its nick
//! and labels where a reply is meant for it alone. Broadcasts keep their
//! shared encoding, once per tag set.
//!
//! The PONG to a client's PING goes through [`Hub::sync`]: it is queued
//! only after every message and group change stored before the PING has
//! been routed, in the last class (after messages, the room's log and
//! group events), so a client that reads up to its PONG has read
//! everything sent before its PING (irctest relies on this). Before the
//! barrier, a PONG waits `IrcConfig::pong_grace` (a session timer), so a
//! line another client sent just before the PING, still unread in its
//! socket, is read and stored first.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use crate::error::ProtocolError;
use crate::event::Event;
use crate::frame::ErrorCode;
use crate::id::{ConnId, MessageId};
use crate::irc::commands::{self, welcome_now};
use crate::irc::line::{self, Out, Parsed};
use crate::irc::replies::{self, numeric, Directory};
use crate::irc::session::{Login, PENDING_MAX};
use crate::irc::{Act, IrcCodec, IrcConfig, IrcProtocols, IrcSession, LoginAsk, Pending, TagSet};
use crate::name::Name;
use crate::request::Request;
use crate::send_queue::Class;
use crate::session::CloseReason;
use crate::shared::{Outgoing, Shared};
use crate::wire::frame::{Credential, Resume, Text};

use super::Hub;

/// PONGs waiting for stores, at most (beyond, a PONG goes out at once).
const SYNCS_MAX: usize = 65_536;

/// The gateway's part of the hub.
#[derive(Debug)]
pub(crate) struct Gateway {
    pub(super) config: Arc<IrcConfig>,
    pub(super) protocols: IrcProtocols,
    pub(super) sessions: HashMap<ConnId, IrcSession>,
    /// JOINs that found the group being created by another client: they
    /// join once its creation is committed (bounded: each is one of its
    /// session's `PENDING_MAX` remembered requests).
    joins_waiting: Vec<(Name, ConnId, crate::id::Ref)>,
    /// TAGMSGs relayed, for their msgids (`hub::irc_relay`).
    pub(super) relayed: u64,
}

/// Stores sent and answered, and the PONGs waiting on them.
#[derive(Debug, Default)]
pub(crate) struct Syncs {
    /// Store effects sent.
    pub(crate) sent: u64,
    /// Store effects answered.
    pub(crate) answered: u64,
    waiting: VecDeque<(u64, ConnId, Vec<u8>)>,
}

impl Directory for Hub {
    fn online(&self) -> Vec<Name> {
        Hub::online(self)
    }
    fn members(&self, group: &Name) -> Option<Vec<Name>> {
        self.groups.members(group)
    }
    fn groups_of(&self, user: &Name) -> Vec<Name> {
        self.groups.of(user)
    }
    fn groups(&self) -> Vec<(Name, usize)> {
        self.groups.all()
    }
    fn last_id(&self) -> MessageId {
        self.last_id
    }
    fn registration_open(&self) -> bool {
        self.config.registration_open
    }
    fn moderates(&self, group: &Name, user: &Name) -> bool {
        self.groups
            .groups
            .get(&group.key())
            .is_some_and(|g| g.roles.moderates(&user.key()))
    }
}

impl Hub {
    /// Adds the IRC gateway: its protocols, one per tag set. Accept IRC
    /// connections with [`IrcProtocols::plain`]; a session moves to the
    /// others as it negotiates tags. `None` if the hub has no room for
    /// three more protocols, or already has a gateway.
    pub fn add_irc(&mut self, config: IrcConfig) -> Option<IrcProtocols> {
        let sets = TagSet::EVERY.len();
        if self.irc.is_some() || self.codecs.len() + sets > crate::MAX_PROTOCOLS {
            return None;
        }
        let config = Arc::new(config);
        let mut each = [crate::Protocol::CONFAB; TagSet::EVERY.len()];
        for (p, t) in each.iter_mut().zip(TagSet::EVERY) {
            *p = self.add_protocol(Arc::new(IrcCodec::new(t, config.clone())))?;
        }
        let protocols = IrcProtocols {
            plain: each[0],
            each,
        };
        self.irc = Some(Box::new(Gateway {
            config,
            protocols,
            sessions: HashMap::new(),
            joins_waiting: Vec::new(),
            relayed: 0,
        }));
        Some(protocols)
    }

    /// Whether `conn` speaks IRC.
    pub(super) fn is_irc(&self, conn: ConnId) -> bool {
        match (&self.irc, self.sessions.get(conn)) {
            (Some(g), Some(s)) => g.protocols.contains(s.protocol),
            _ => false,
        }
    }

    /// `delta` (`conn`'s user going offline) with the reason of `conn`'s
    /// IRC QUIT, if it gave one; the roster's log keeps the plain delta.
    pub(super) fn with_quit_reason(&self, conn: ConnId, delta: Arc<Shared>) -> Arc<Shared> {
        let reason = self
            .irc
            .as_ref()
            .and_then(|g| g.sessions.get(&conn)?.quit.clone());
        match (reason, delta.event()) {
            (
                Some(reason),
                Event::RosterDelta {
                    version,
                    presence,
                    user,
                    ..
                },
            ) => Shared::new(Event::RosterDelta {
                version: *version,
                presence: *presence,
                user: *user,
                reason: Some(reason),
            }),
            _ => delta,
        }
    }

    /// An IRC connection went away.
    pub(super) fn irc_gone(&mut self, conn: ConnId) {
        if let Some(g) = &mut self.irc {
            g.sessions.remove(&conn);
            g.joins_waiting.retain(|(_, c, _)| *c != conn);
        }
    }

    /// Bytes from an IRC client: its lines, each paid for, then acted on.
    pub(super) fn irc_bytes(&mut self, now: Instant, conn: ConnId, input: &[u8]) -> usize {
        let mut off = 0;
        for _ in 0..self.config.frames_per_turn {
            if self.sessions.get(conn).is_none_or(|s| s.state.is_closed()) {
                return input.len();
            }
            match self.irc_take(now, conn, &input[off..]) {
                Some(len) => off += len,
                None => break,
            }
            self.finish();
        }
        if self.sessions.get(conn).is_none_or(|s| s.state.is_closed()) {
            return input.len();
        }
        off
    }

    /// Takes one line off `input`; `None` to wait for more (or for the budget).
    fn irc_take(&mut self, now: Instant, conn: ConnId, input: &[u8]) -> Option<usize> {
        if input.is_empty() {
            return None;
        }
        if let Some(s) = self.sessions.get_mut(conn) {
            s.last_heard = now;
            if s.marks().ping_sent.is_some() {
                s.set_marks(|m| m.ping_sent = None);
            }
        }
        if self.irc_session(conn).is_some_and(|s| s.skipping) {
            let Some(lf) = input.iter().position(|&b| b == b'\n') else {
                return Some(input.len());
            };
            self.with_irc(conn, |s| s.skipping = false);
            return Some(lf + 1);
        }
        match line::parse(input) {
            Ok(Parsed::Incomplete) => None,
            Ok(Parsed::Empty(len)) => Some(len),
            Ok(Parsed::Line(l, len)) => {
                let exempt = ["PING", "PONG"]
                    .iter()
                    .any(|c| l.command.eq_ignore_ascii_case(c));
                if !self.pay(now, conn, exempt, len) {
                    return None;
                }
                self.irc_line(now, conn, &l);
                Some(len)
            }
            Err(e) => {
                let (len, ended) = match e {
                    line::LineError::TooLong { len, ended } => (len, ended),
                    line::LineError::NotUtf8 { len } => (len, true),
                };
                if !self.pay(now, conn, false, len) {
                    return None;
                }
                self.irc_bad_line(conn, e, ended);
                Some(len)
            }
        }
    }

    /// 417 for a line too long (the rest of it skipped), FAIL for bad UTF-8.
    fn irc_bad_line(&mut self, conn: ConnId, e: line::LineError, ended: bool) {
        let Some(g) = self.irc.as_deref_mut() else {
            return;
        };
        let config = g.config.clone();
        let Some(s) = g.sessions.get_mut(&conn) else {
            return;
        };
        s.skipping = !ended;
        let mut out = Vec::new();
        match e {
            line::LineError::TooLong { .. } => {
                numeric(&mut out, &config, "417", &s.me()).trailing("Input line was too long")
            }
            line::LineError::NotUtf8 { .. } => Out::new(&mut out)
                .command(&config.server, "FAIL")
                .param("*")
                .param("INVALID_UTF8")
                .trailing("Lines must be UTF-8; this one was dropped"),
        }
        self.push(conn, Event::Raw(out.into()), Class::Control);
    }

    fn irc_session(&self, conn: ConnId) -> Option<&IrcSession> {
        self.irc.as_ref()?.sessions.get(&conn)
    }

    fn with_irc<R>(&mut self, conn: ConnId, f: impl FnOnce(&mut IrcSession) -> R) -> Option<R> {
        let g = self.irc.as_deref_mut()?;
        Some(f(g.sessions.entry(conn).or_default()))
    }

    /// One client line: its acts, carried out.
    fn irc_line(&mut self, now: Instant, conn: ConnId, l: &line::Line<'_>) {
        let Some(g) = self.irc.as_deref_mut() else {
            return;
        };
        let config = g.config.clone();
        let mut s = g.sessions.remove(&conn).unwrap_or_default();
        let mut acts = Vec::new();
        commands::command(&mut s, l, &*self, &config, &mut acts);
        if let Some(g) = self.irc.as_deref_mut() {
            g.sessions.insert(conn, s);
        }
        for act in acts {
            self.irc_act(now, conn, act);
        }
    }

    fn irc_act(&mut self, now: Instant, conn: ConnId, act: Act<'_>) {
        match act {
            Act::Reply(bytes) => self.push(conn, Event::Raw(bytes.into()), Class::Control),
            Act::Synced(bytes) => {
                let grace = self.irc.as_ref().map(|g| g.config.pong_grace);
                let left = self.with_irc(conn, |s| {
                    if s.reading_history() && s.pongs.len() < PENDING_MAX {
                        s.pongs.push(bytes);
                        return None;
                    }
                    match grace.filter(|g| !g.is_zero()) {
                        Some(g) if s.graced.len() < PENDING_MAX => {
                            s.graced.push_back((now + g, bytes));
                            None
                        }
                        _ => Some(bytes),
                    }
                });
                if let Some(Some(bytes)) = left {
                    self.sync(conn, bytes);
                }
            }
            Act::Request(r, _) => self.dispatch(now, conn, r),
            Act::Login(ask) => self.irc_login(now, conn, ask),
            Act::Register {
                user,
                password,
                command,
            } => {
                let pending = Pending::Register {
                    user,
                    password: password.clone(),
                    command,
                };
                let Some(reference) = self.with_irc(conn, |s| s.remember(pending)).flatten() else {
                    return;
                };
                self.irc_hello(conn);
                self.dispatch(
                    now,
                    conn,
                    Request::Register {
                        reference,
                        user,
                        password: &password,
                    },
                );
            }
            Act::Relay {
                target,
                to,
                tags,
                label,
            } => self.irc_relay(now, conn, target, &to, &tags, label.as_deref()),
            Act::Invite { invitee, channel } => self.irc_invite(conn, invitee, &channel),
            Act::Tags(tags) => {
                let Some(p) = self.irc.as_ref().map(|g| g.protocols.of(tags)) else {
                    return;
                };
                if let Some(s) = self.sessions.get_mut(conn) {
                    s.protocol = p;
                }
            }
            Act::Close(bytes) => {
                // A muted user's QUIT reason is not shown to anyone.
                if self
                    .user(conn)
                    .is_some_and(|u| self.mute_refusal(now, &u).is_some())
                {
                    self.with_irc(conn, |s| s.quit = None);
                }
                self.push(conn, Event::Raw(bytes.into()), Class::Control);
                self.close(conn, CloseReason::Logout);
            }
        }
    }

    /// HELLO version 2, once, for a session about to log in.
    fn irc_hello(&mut self, conn: ConnId) {
        let waiting = self
            .sessions
            .get(conn)
            .is_some_and(|s| matches!(s.state, crate::session::State::AwaitHello(_)));
        if waiting {
            self.hello(conn, crate::frame::PROTOCOL_VERSION);
        }
    }

    /// HELLO, then LOGIN2 by password as the device the client named.
    fn irc_login(&mut self, now: Instant, conn: ConnId, ask: LoginAsk) {
        let LoginAsk {
            user,
            password,
            device,
            replay,
            sasl,
        } = ask;
        let Some(reference) = self
            .with_irc(conn, |s| s.remember(Pending::Login { sasl }))
            .flatten()
        else {
            return;
        };
        self.irc_hello(conn);
        let Ok(text) = Text::new(&password) else {
            let error = ProtocolError::BadCredentials {
                retry: std::time::Duration::ZERO,
            };
            return self.push(conn, Event::Error { reference, error }, Class::Control);
        };
        let resume = if replay {
            Resume::Device
        } else {
            Resume::After(self.last_id)
        };
        let request = Request::Login2 {
            reference,
            user,
            credential: Credential::Password(text),
            device: Some(device),
            issue_token: false,
            resume,
            roster: true,
        };
        self.dispatch(now, conn, request);
    }

    /// A guest's account exists: it logs in with the password it was given.
    pub(super) fn irc_registered(&mut self, now: Instant, conn: ConnId, ok: bool) {
        if !ok || !self.is_irc(conn) {
            return;
        }
        let taken = self.with_irc(conn, |s| {
            let at = s
                .pending
                .iter()
                .position(|(_, p)| matches!(p, Pending::Register { .. }))?;
            match s.pending.remove(at) {
                Some((
                    _,
                    Pending::Register {
                        user,
                        password,
                        command,
                    },
                )) => Some((user, password, command)),
                _ => None,
            }
        });
        if let Some(Some((user, password, command))) = taken {
            if command {
                let config = self.irc.as_ref().map(|g| g.config.clone());
                if let Some(config) = config {
                    let line = crate::irc::register::success(&config, user.as_str());
                    self.push(conn, Event::Raw(line.into()), Class::Control);
                }
            }
            let device = Name::new(commands::DEFAULT_DEVICE).unwrap_or(user);
            let replay = self
                .irc_session(conn)
                .is_some_and(|s| !s.caps.has(crate::irc::session::Caps::CHATHISTORY));
            let ask = LoginAsk {
                user,
                password,
                device,
                replay,
                sasl: false,
            };
            self.irc_login(now, conn, ask);
        }
    }

    /// The reason `user` gave for leaving `group`, if one of their IRC
    /// sessions asked with a PART that is not answered yet.
    pub(super) fn irc_part_reason(&self, group: &Name, user: &Name) -> Option<Arc<str>> {
        let g = self.irc.as_deref()?;
        let channel = format!("#{group}");
        let online = self.roster.online.get(&user.key())?;
        online.sessions.iter().find_map(|c| {
            g.sessions
                .get(c)?
                .pending
                .iter()
                .find_map(|(_, p)| match p {
                    Pending::Part {
                        channel: ch,
                        reason: Some(r),
                        ..
                    } if ch.eq_ignore_ascii_case(&channel) => Some(Arc::from(r.as_str())),
                    _ => None,
                })
        })
    }

    /// `group` exists now: the JOINs that waited for it are made.
    pub(super) fn irc_group_created(&mut self, group: Name) {
        let Some(g) = self.irc.as_deref_mut() else {
            return;
        };
        let (now_ready, rest) = std::mem::take(&mut g.joins_waiting)
            .into_iter()
            .partition(|(n, ..)| n.key() == group.key());
        g.joins_waiting = rest;
        let ready: Vec<(Name, ConnId, crate::id::Ref)> = now_ready;
        for (group, conn, reference) in ready {
            self.group_request(conn, reference, crate::GroupRequest::Join, group);
        }
    }

    /// Queues `bytes` for `conn` once every message stored before now is
    /// routed (see the module docs).
    pub(super) fn sync(&mut self, conn: ConnId, bytes: Vec<u8>) {
        let s = &mut self.syncs;
        if s.answered >= s.sent || s.waiting.len() >= SYNCS_MAX {
            return self.push(conn, Event::Raw(bytes.into()), Class::Bulk);
        }
        s.waiting.push_back((s.sent, conn, bytes));
    }

    /// The PONGs of `conn` whose grace is over take the store barrier.
    pub(super) fn irc_graced(&mut self, now: Instant, conn: ConnId) {
        let Some(s) = self
            .irc
            .as_deref_mut()
            .and_then(|g| g.sessions.get_mut(&conn))
        else {
            return;
        };
        let mut due = Vec::new();
        while s.graced.front().is_some_and(|(t, _)| *t <= now) {
            due.extend(s.graced.pop_front().map(|(_, bytes)| bytes));
        }
        if due.is_empty() {
            return;
        }
        for bytes in due {
            self.sync(conn, bytes);
        }
        self.finish();
    }

    /// When the first PONG of `conn` in its grace is due.
    pub(super) fn irc_deadline(&self, conn: ConnId) -> Option<Instant> {
        self.irc_session(conn)?.graced.front().map(|(t, _)| *t)
    }

    /// Releases the PONGs whose stores are all answered.
    pub(super) fn release_syncs(&mut self) {
        while let Some((seq, ..)) = self.syncs.waiting.front() {
            if *seq > self.syncs.answered {
                break;
            }
            let Some((_, conn, bytes)) = self.syncs.waiting.pop_front() else {
                break;
            };
            self.push(conn, Event::Raw(bytes.into()), Class::Bulk);
        }
    }

    /// Renders what drained for an IRC session from `start` on: its own
    /// replies with its nick and labels, the rest as encoded; until the
    /// welcome, what follows the login is held.
    pub(super) fn irc_drained(&mut self, conn: ConnId, out: &mut Vec<Outgoing>, start: usize) {
        let Some(g) = self.irc.as_deref_mut() else {
            return;
        };
        let config = g.config.clone();
        let Some(mut s) = g.sessions.remove(&conn) else {
            return;
        };
        let (protocol, codec) = match self.sessions.get(conn) {
            Some(x) => (x.protocol, self.codecs[x.protocol.index()].clone()),
            None => return,
        };
        let mut after = Vec::new();
        let (mut ack, mut close, mut newest, mut rejoin) = (None, false, 0, None);
        for o in out.drain(start..) {
            let event = o.event();
            if let Event::Message(m) = event {
                newest = newest.max(m.id.get());
            }
            let passes = matches!(
                event,
                Event::Raw(_) | Event::LoginOk2 { .. } | Event::Error { .. }
            );
            let held = !passes && !s.welcomed && s.account().is_some();
            let Some(r) = replies::render(&mut s, event, &*self, &config) else {
                // A broadcast, or lines already written for this session:
                // its bytes, shared, go out as they are.
                // (Events IRC does not show, such as the room's presence
                // under `--irc-quiet-room`, encode as nothing: dropped.)
                if held {
                    s.held.extend_from_slice(&o);
                } else if !o.is_empty() {
                    after.push(o);
                }
                continue;
            };
            ack = ack.or(r.roster_ack);
            rejoin = rejoin.or(r.rejoin);
            close |= r.close;
            let mut bytes = r.bytes;
            if matches!(event, Event::LoginOk2 { .. }) {
                welcome_after_login(&mut s, &config, &mut bytes);
            }
            if bytes.is_empty() {
                continue;
            }
            if held {
                s.held.extend(bytes);
            } else {
                after.push(Outgoing::new(
                    Shared::new(Event::Raw(bytes.into())),
                    protocol,
                    &*codec,
                ));
            }
        }
        out.extend(after);
        let over = s.held.len() > self.config.send_queue_bytes;
        let device = s.account().is_some() && newest > s.delivered;
        s.delivered = s.delivered.max(newest);
        if s.login == Login::None && close {
            s.pending.clear();
        }
        let pongs = s.pongs_due();
        if let Some(g) = self.irc.as_deref_mut() {
            g.sessions.insert(conn, s);
        }
        for pong in pongs {
            self.sync(conn, pong);
        }
        if let Some((reference, group)) = rejoin {
            match (self.groups.members(&group), self.irc.as_deref_mut()) {
                (None, Some(g)) => g.joins_waiting.push((group, conn, reference)),
                _ => self.group_request(conn, reference, crate::GroupRequest::Join, group),
            }
        }
        self.irc_after_drain(conn, ack, close, over, device.then_some(MessageId(newest)));
    }

    fn irc_after_drain(
        &mut self,
        conn: ConnId,
        ack: Option<crate::id::RosterVersion>,
        close: bool,
        over: bool,
        delivered: Option<MessageId>,
    ) {
        if let Some(v) = ack {
            self.roster_ack(conn, v);
        }
        if let Some(id) = delivered {
            if self
                .sessions
                .get(conn)
                .is_some_and(|s| s.logged_in().is_some_and(|l| l.device.is_some()))
            {
                self.delivered(conn, id);
            }
        }
        if over {
            self.slow_consumer(conn);
        } else if close {
            self.close(
                conn,
                CloseReason::Error(ErrorCode::BadCredentials, "login failed".into()),
            );
        }
        self.finish();
    }
}

/// After the login's answer, the welcome, if registration is over (if not,
/// `CAP END` brings it).
fn welcome_after_login(s: &mut IrcSession, config: &IrcConfig, bytes: &mut Vec<u8>) {
    let Some(user) = s.account().filter(|_| s.registration_done() && !s.welcomed) else {
        return;
    };
    let mut acts = Vec::new();
    welcome_now(s, user, config, &mut acts);
    for a in acts {
        if let Act::Reply(b) = a {
            bytes.extend(b);
        }
    }
}
