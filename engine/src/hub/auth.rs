//! Logging in and registering, and the penalties that bar them.
//!
//! A session says HELLO, then REGISTER or LOGIN; the password check is the
//! shell's ([`Effect::Authenticate`], [`Effect::Register`]), one at a time
//! per session. The [`Guard`] holds what bars a login or a connection
//! before any work is done, in one place: failed logins' lockouts (per
//! account and address, per address, per account), accounts disconnected
//! for flooding, source addresses whose connection flooded before logging
//! in, and how many accounts each address and the server may still create.
//!
//! A locked-out login is refused before it reaches the shell, so it costs
//! no hash. One that was already being checked when its key locked is
//! refused when its answer comes back, whatever the answer: at most
//! `max_pre_auth_per_source` hashes per address are spent that way.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::device::Token;
use crate::effect::{DeviceAsk, DeviceLogin, Effect, ReplayScope, Secret};
use crate::error::ProtocolError;
use crate::event::Event;
use crate::id::{ConnId, Ref};
use crate::lockout::Lockout;
use crate::name::{Name, NameKey};
use crate::password::Password;
use crate::registrations::{self, Registrations};
use crate::send_queue::Class;
use crate::session::state::{Auth, PendingAuth};
use crate::session::{Source, State};
use crate::wire::frame::{Credential, Resume, OLDEST_VERSION, PROTOCOL_VERSION};

use super::Hub;

/// Penalties remembered at once; beyond this (a flood of floods) the
/// expired ones go, and if none has expired no new one is recorded.
const MAX_PENALTIES: usize = 10_000;

/// What bars a login or a connection (see the module docs).
#[derive(Debug)]
pub(super) struct Guard {
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
    /// Failed logins, and the lockouts they earned.
    lockout: Lockout,
}

impl Guard {
    pub(super) fn new(config: &Config) -> Guard {
        Guard {
            penalties: HashMap::new(),
            barred: HashMap::new(),
            registrations: Registrations::new(
                config.registrations_per_source,
                config.registrations_per_server,
            ),
            lockout: Lockout::new(config.lockout),
        }
    }

    /// Lockout entries held (pairs, accounts, sources).
    pub(super) fn lockouts(&self) -> (usize, usize, usize) {
        self.lockout.len()
    }

    /// Registrations charged since start, here or on other nodes.
    pub(super) fn registrations_charged(&self) -> u64 {
        self.registrations.charged()
    }

    /// An operator's unlock: failures, lockouts and, for an address or
    /// everyone, flood bars and login penalties go; how many entries.
    pub(super) fn unlock(&mut self, which: crate::lockout::Unlock) -> usize {
        use crate::lockout::Unlock;
        let mut n = self.lockout.clear(which);
        match which {
            Unlock::All => {
                n += self.barred.len() + self.penalties.len();
                self.barred.clear();
                self.penalties.clear();
            }
            Unlock::User(user) => n += usize::from(self.penalties.remove(&user).is_some()),
            Unlock::Source(source) => n += usize::from(self.barred.remove(&source).is_some()),
        }
        n
    }

    /// How long `source` is still barred, if it is.
    pub(super) fn barred(&self, now: Instant, source: Source) -> Option<Duration> {
        remaining(&self.barred, &source, now)
    }

    /// Bars `source` for `flood_penalty`.
    pub(super) fn bar(&mut self, now: Instant, source: Source, config: &Config) {
        insert_penalty(&mut self.barred, source, now + config.flood_penalty, now);
    }

    /// Bars `user` from logging in for `flood_penalty`.
    pub(super) fn penalize(&mut self, now: Instant, user: Name, config: &Config) {
        let until = now + config.flood_penalty;
        insert_penalty(&mut self.penalties, user.key(), until, now);
    }

    /// A failed login another node counted: counted here too (its wait is
    /// that node's to answer).
    pub(super) fn failed_elsewhere(&mut self, now: Instant, user: &Name, source: Source) {
        let _ = self.lockout.failure(now, user.key(), Some(source));
    }

    /// A login another node let in: the account and the pair start over.
    pub(super) fn logged_in_elsewhere(&mut self, user: &Name, source: Source) {
        self.lockout.success(user.key(), Some(source));
    }

    /// A registration another node charged: charged here too.
    pub(super) fn registered_elsewhere(&mut self, now: Instant, source: Source) {
        self.registrations.charged_elsewhere(now, source);
    }

    fn penalized(&self, now: Instant, user: &Name) -> Option<Duration> {
        remaining(&self.penalties, &user.key(), now)
    }
}

fn remaining<K: Hash + Eq>(map: &HashMap<K, Instant>, key: &K, now: Instant) -> Option<Duration> {
    let until = map.get(key).filter(|t| **t > now)?;
    Some(until.duration_since(now))
}

/// Records a penalty until `until`, keeping the map within
/// `MAX_PENALTIES`: the expired ones go first, and if none has expired no
/// new one is recorded (a flood of floods).
fn insert_penalty<K: Hash + Eq>(
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

impl Hub {
    pub(super) fn hello(&mut self, conn: ConnId, version: u16) {
        if !(OLDEST_VERSION..=PROTOCOL_VERSION).contains(&version) {
            self.fatal(conn, Ref(0), ProtocolError::UnsupportedVersion { version });
            return;
        }
        let Some(s) = self.sessions.get_mut(conn) else {
            return;
        };
        if let State::AwaitHello(a) = s.state {
            s.state = State::Auth(a.hello());
        }
        s.version = version;
        let hello = self.server_hello[usize::from(version - OLDEST_VERSION)].clone();
        self.push_shared(conn, &hello, Class::Control, None);
    }

    pub(super) fn register(
        &mut self,
        now: Instant,
        conn: ConnId,
        reference: Ref,
        user: Name,
        password: &str,
    ) {
        if !self.config.registration_open {
            self.refuse(conn, reference, ProtocolError::RegistrationClosed);
            return;
        }
        let Some(password) = Password::new(password) else {
            self.refuse(conn, reference, ProtocolError::BadPassword);
            return;
        };
        let Some(source) = self.sessions.get(conn).map(|s| s.source) else {
            return;
        };
        if let Err(refused) = self.guard.registrations.charge(now, source) {
            let error = match refused {
                registrations::Refused::Source(retry) => {
                    ProtocolError::RegistrationsFromSource { retry }
                }
                registrations::Refused::Server(retry) => {
                    ProtocolError::RegistrationsOnServer { retry }
                }
            };
            self.refuse(conn, reference, error);
            return;
        }
        self.tell_nodes(crate::remote::Remote::Registered { source });
        if self.begin_auth(conn, reference, PendingAuth::Register { reference }) {
            // A PONG waits for it too (IRC's REGISTER answers before a later PONG).
            self.syncs.sent += 1;
            self.outbox.effect(Effect::Register {
                conn,
                user,
                password,
            });
        }
    }

    /// LOGIN; `pending` holds what the answer needs (its reference, the
    /// name as typed, the resume point, the roster choice).
    pub(super) fn login(
        &mut self,
        now: Instant,
        conn: ConnId,
        user: Name,
        password: &str,
        pending: PendingAuth,
    ) {
        let Some(source) = self.sessions.get(conn).map(|s| s.source) else {
            return;
        };
        let PendingAuth::Login { reference, .. } = pending else {
            return;
        };
        if let Err(retry) = self.guard.lockout.check(now, user.key(), Some(source)) {
            return self.refuse(conn, reference, ProtocolError::LockedOut { retry });
        }
        if self.begin_auth(conn, reference, pending) {
            self.outbox.effect(Effect::Authenticate {
                conn,
                user,
                password: Password::offered(password),
            });
        }
    }

    /// LOGIN2: a password (and a device to be) or a device token. A
    /// token that is not a token's length is wrong like any other: it
    /// counts as a failed login without reaching the shell.
    pub(super) fn login2(
        &mut self,
        now: Instant,
        conn: ConnId,
        user: Name,
        credential: Credential<'_>,
        device: Option<DeviceAsk>,
        pending: PendingAuth,
    ) {
        let Some(source) = self.sessions.get(conn).map(|s| s.source) else {
            return;
        };
        let PendingAuth::Login2 { reference, .. } = pending else {
            return;
        };
        if let Err(retry) = self.guard.lockout.check(now, user.key(), Some(source)) {
            return self.refuse(conn, reference, ProtocolError::LockedOut { retry });
        }
        if !self.begin_auth(conn, reference, pending) {
            return;
        }
        let secret = match credential {
            Credential::Password(p) => Secret::Password(Password::offered(p.as_str())),
            Credential::Token(bytes) => match Token::from_slice(bytes) {
                Some(t) => Secret::Token(t),
                None => {
                    let bad = ProtocolError::BadToken {
                        retry: Duration::ZERO,
                    };
                    return self.authenticated2(now, conn, Err(bad));
                }
            },
        };
        self.outbox.effect(Effect::Login2 {
            conn,
            user,
            secret,
            device,
            token_idle: self.config.token_idle,
            max_devices: self.config.devices_per_user,
            max_read_markers: self.config.read_markers_per_user,
        });
    }

    /// The answer to a LOGIN2: as a LOGIN's, with the device attached, its
    /// token shown, the user's read markers, and the replay from the
    /// device's bookmark if asked.
    pub(super) fn authenticated2(
        &mut self,
        now: Instant,
        conn: ConnId,
        result: Result<DeviceLogin, ProtocolError>,
    ) {
        let Some(PendingAuth::Login2 {
            reference,
            user: typed,
            resume,
            roster,
        }) = self.take_pending_auth(conn)
        else {
            return;
        };
        let (result, login) = match result {
            Ok(login) => (Ok(login.user), Some(login)),
            Err(e) => (Err(e), None),
        };
        let Some(user) = self.admit_login(now, conn, reference, typed, result) else {
            return;
        };
        let Some(login) = login else { return };
        let others_online = self.roster.online.contains_key(&user.key());
        let seat = login.seat;
        self.log_in(conn, user, seat.map(|s| s.id), roster);
        if let Some(seat) = seat {
            self.devices.attach(seat.id, conn, seat.bookmark);
            self.place_new_device(seat.id, seat.bookmark);
        }
        let ok = Event::LoginOk2 {
            reference,
            user,
            device: seat.map(|s| s.name),
            token: login.token,
            bookmark: seat.map_or(crate::MessageId(0), |s| s.bookmark),
        };
        self.push(conn, ok, Class::Control);
        for (target, id) in login.read_markers {
            self.push(conn, Event::ReadMarker { target, id }, Class::Control);
        }
        let resume_after = match resume {
            Resume::After(id) => id,
            Resume::Device => seat.map_or(crate::MessageId(0), |s| s.bookmark),
        };
        self.logged_in_answer(conn, user, roster, resume_after, others_online);
    }

    /// Records a pending REGISTER/LOGIN; refuses a second one while the first is checked.
    fn begin_auth(&mut self, conn: ConnId, reference: Ref, pending: PendingAuth) -> bool {
        let Some(s) = self.sessions.get_mut(conn) else {
            return false;
        };
        let State::Auth(a) = &mut s.state else {
            return false;
        };
        if a.pending.is_some() {
            self.refuse(conn, reference, ProtocolError::AuthPending);
            return false;
        }
        a.pending = Some(pending);
        s.inflight += 1;
        true
    }

    fn take_pending_auth(&mut self, conn: ConnId) -> Option<PendingAuth> {
        let s = self.sessions.get_mut(conn)?;
        let State::Auth(a) = &mut s.state else {
            return None;
        };
        let p = a.pending.take()?;
        s.inflight = s.inflight.saturating_sub(1);
        Some(p)
    }

    pub(super) fn registered(&mut self, conn: ConnId, result: Result<(), ProtocolError>) {
        let Some(PendingAuth::Register { reference }) = self.take_pending_auth(conn) else {
            return;
        };
        match result {
            Ok(()) => self.push(conn, Event::Ok { reference }, Class::Control),
            Err(e) => self.refuse(conn, reference, e),
        }
    }

    pub(super) fn authenticated(
        &mut self,
        now: Instant,
        conn: ConnId,
        result: Result<Name, ProtocolError>,
    ) {
        let Some(PendingAuth::Login {
            reference,
            user: typed,
            resume_after,
            roster,
        }) = self.take_pending_auth(conn)
        else {
            return;
        };
        let Some(user) = self.admit_login(now, conn, reference, typed, result) else {
            return;
        };
        let others_online = self.roster.online.contains_key(&user.key());
        self.log_in(conn, user, None, roster);
        self.push(conn, Event::LoginOk { reference, user }, Class::Control);
        self.logged_in_answer(conn, user, roster, resume_after, others_online);
    }

    /// The rest of a login's answer, after LOGIN_OK: the roster snapshot
    /// if asked, then the replay (from `resume_after`, or the offline
    /// direct messages if no other session of the user was online), then
    /// CAUGHT_UP.
    fn logged_in_answer(
        &mut self,
        conn: ConnId,
        user: Name,
        roster: bool,
        resume_after: crate::MessageId,
        others_online: bool,
    ) {
        if roster {
            self.subscribers.insert(conn);
            // Part of the login's answer: ahead of the replay and
            // CAUGHT_UP (Message class), which may be queued before the
            // client reads anything.
            self.push_snapshot(conn, Class::Control);
        }
        let scope = if resume_after.get() > 0 {
            Some(ReplayScope::Since {
                after: resume_after,
                groups: self.groups.of(&user),
            })
        } else if !others_online {
            Some(ReplayScope::OfflineDirect)
        } else {
            None
        };
        match scope {
            Some(scope) => self.start_replay(conn, user, scope),
            None => {
                let last_id = self.last_id;
                self.push(conn, Event::CaughtUp { last_id }, Class::Message);
            }
        }
    }

    /// Whether a checked login of `typed` may go on: the lockout's
    /// verdict ([`Hub::judge_login`]), then the flood penalty. A refusal
    /// is answered here.
    fn admit_login(
        &mut self,
        now: Instant,
        conn: ConnId,
        reference: Ref,
        typed: Name,
        result: Result<Name, ProtocolError>,
    ) -> Option<Name> {
        let source = self.sessions.get(conn)?.source;
        let verdict = self
            .judge_login(now, typed, source, result)
            .and_then(|user| match self.ban_refusal(now, &user) {
                Some(banned) => Err(banned),
                None => Ok(user),
            })
            .and_then(|user| match self.guard.penalized(now, &user) {
                Some(retry) => Err(ProtocolError::AccountPenalized { retry }),
                None => Ok(user),
            });
        match verdict {
            Ok(user) => {
                self.counts.logins_ok += 1;
                Some(user)
            }
            Err(e) => {
                self.counts.logins_refused[super::counts::code_index(e.code())] += 1;
                self.refuse(conn, reference, e);
                None
            }
        }
    }

    /// The lockout's verdict on a checked login: a key that locked while
    /// it was checked is refused whatever the answer; a wrong password
    /// counts, and says how long the next attempt waits; a right one
    /// clears the account's and the pair's counts.
    fn judge_login(
        &mut self,
        now: Instant,
        typed: Name,
        source: Source,
        result: Result<Name, ProtocolError>,
    ) -> Result<Name, ProtocolError> {
        let lockout = &mut self.guard.lockout;
        let key = typed.key();
        if let Err(retry) = lockout.check(now, key, Some(source)) {
            return Err(ProtocolError::LockedOut { retry });
        }
        let verdict = match result {
            Ok(user) => {
                lockout.success(key, Some(source));
                Ok(user)
            }
            Err(ProtocolError::BadCredentials { .. }) => Err(ProtocolError::BadCredentials {
                retry: lockout.failure(now, key, Some(source)),
            }),
            Err(ProtocolError::BadToken { .. }) => Err(ProtocolError::BadToken {
                retry: lockout.failure(now, key, Some(source)),
            }),
            Err(e) => return Err(e),
        };
        // Counted here: counted by the other nodes too.
        self.tell_login(typed, source, verdict.is_ok());
        verdict
    }

    /// The session's transition out of Auth: it joins the roster and
    /// starts its own budgets.
    fn log_in(&mut self, conn: ConnId, user: Name, device: Option<crate::DeviceId>, roster: bool) {
        self.announce_arrival(user);
        if let Some(delta) = self.roster.attach(user, conn) {
            self.broadcast_roster(&delta, Some(conn));
        }
        let version = self.roster.version();
        let Some(s) = self.sessions.get_mut(conn) else {
            return;
        };
        // The pre-auth budget is spent: logged in, the session starts with
        // full buckets of its own limits.
        s.set_marks(|m| {
            m.msgs = None;
            m.bytes = None;
        });
        s.state = Auth::logged_in(user, device, version, roster);
        // In the roster from now on: it gets the room's messages from here.
        s.room = Some(self.room.head());
        self.sessions.logged_in(conn);
    }
}
