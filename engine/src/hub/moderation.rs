//! Moderation: what an operator decides about an account on a running
//! server. A kick closes the account's sessions with the operator's
//! reason; a ban does that and refuses its logins until it ends; a mute
//! refuses its SENDs. The shell stores bans and mutes and hands them
//! back at start ([`Hub::ban`], [`Hub::mute`]); the hub only keeps and
//! enforces them, and says how long each has left.
//!
//! The maps grow only by what an operator asks (never by a client) and
//! lose their expired entries at each insert.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::effect::{Effect, ModerationRecord};
use crate::error::ProtocolError;
use crate::event::Event;
use crate::frame::ModAction;
use crate::id::{ConnId, Ref};
use crate::name::{Name, NameKey};
use crate::protocol::MAX_PROTOCOLS;
use crate::remote::Remote;
use crate::request::ModerationAsk;
use crate::send_queue::Class;

use super::Hub;

/// A ban or a mute: until when (`None`: until lifted), and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sanction {
    /// When it ends; `None` for good.
    pub until: Option<Instant>,
    /// The operator's reason, shown to the account.
    pub reason: String,
}

impl Sanction {
    pub(super) fn left(&self, now: Instant) -> Option<Option<Duration>> {
        match self.until {
            None => Some(None),
            Some(t) if t > now => Some(Some(t - now)),
            Some(_) => None,
        }
    }
}

/// The bans and mutes in force.
#[derive(Debug, Default)]
pub(super) struct Moderation {
    bans: HashMap<NameKey, Sanction>,
    mutes: HashMap<NameKey, Sanction>,
    /// The server operators, who may send MODERATE.
    operators: HashSet<NameKey>,
    /// Banned blocks of addresses, each once (see `address_bans.rs`).
    pub(super) address_bans: Vec<(crate::source_net::SourceNet, Sanction)>,
    /// One node of several: a client's moderation to tell the other
    /// nodes once it is stored, by its request, in the order asked (a
    /// reference reused while in flight queues behind; see `remote.rs`).
    pub(super) told: HashMap<(ConnId, Ref), Vec<crate::remote::Remote>>,
}

fn insert(map: &mut HashMap<NameKey, Sanction>, now: Instant, key: NameKey, s: Sanction) {
    map.retain(|_, s| s.left(now).is_some());
    map.insert(key, s);
}

/// What the hub holds, for `confab-server status` and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Connections held, closing ones included.
    pub connections: u32,
    /// Connections per protocol, at its [`crate::Protocol`] index.
    pub per_protocol: Vec<u32>,
    /// Connections logged in.
    pub logged_in: u32,
    /// Each online user and their sessions here, sorted by name.
    pub sessions_per_user: Vec<(Name, u32)>,
    /// Bytes queued for all sessions together.
    pub queued_bytes: u64,
    /// The deepest session queue, in bytes.
    pub deepest_queue: u64,
    /// Lockout entries (address and account pairs, accounts, addresses).
    pub lockouts: (usize, usize, usize),
    /// Registrations charged since start, here or (in a cluster) on
    /// another node.
    pub registrations_charged: u64,
    /// Bans of accounts in force.
    pub bans: usize,
    /// Bans of address blocks in force.
    pub address_bans: usize,
    /// Mutes in force.
    pub mutes: usize,
}

impl Hub {
    /// Closes every session of `user` with ERROR KICKED carrying
    /// `reason`; returns how many there were.
    pub fn kick(&mut self, now: Instant, user: &Name, reason: &str) -> usize {
        let _ = now;
        let error = ProtocolError::Kicked {
            reason: reason.to_owned(),
        };
        self.close_user(user, &error)
    }

    /// Bans `user` until `until` (`None`: for good): their sessions are
    /// closed with ERROR BANNED and their logins refused with it. Returns
    /// how many sessions were closed.
    pub fn ban(
        &mut self,
        now: Instant,
        user: &Name,
        until: Option<Instant>,
        reason: &str,
    ) -> usize {
        let sanction = Sanction {
            until,
            reason: reason.to_owned(),
        };
        let Some(retry) = sanction.left(now) else {
            return 0;
        };
        insert(&mut self.moderation.bans, now, user.key(), sanction);
        let error = ProtocolError::Banned {
            reason: reason.to_owned(),
            retry,
        };
        self.close_user(user, &error)
    }

    /// Lifts `user`'s ban; whether there was one.
    pub fn unban(&mut self, user: &Name) -> bool {
        self.moderation.bans.remove(&user.key()).is_some()
    }

    /// Mutes `user` until `until` (`None`: until lifted): their SENDs are
    /// refused with ERROR MUTED.
    pub fn mute(&mut self, now: Instant, user: &Name, until: Option<Instant>, reason: &str) {
        let sanction = Sanction {
            until,
            reason: reason.to_owned(),
        };
        if sanction.left(now).is_some() {
            insert(&mut self.moderation.mutes, now, user.key(), sanction);
        }
    }

    /// Lifts `user`'s mute; whether there was one.
    pub fn unmute(&mut self, user: &Name) -> bool {
        self.moderation.mutes.remove(&user.key()).is_some()
    }

    /// Clears lockouts (see [`crate::lockout::Unlock`]); how many entries
    /// went.
    pub fn unlock(&mut self, which: crate::lockout::Unlock) -> usize {
        self.guard.unlock(which)
    }

    /// Lifts every ban and mute (before the shell hands the stored ones
    /// back on a reload).
    pub fn clear_sanctions(&mut self) {
        self.moderation.bans.clear();
        self.moderation.mutes.clear();
        self.moderation.address_bans.clear();
    }

    /// Makes `user` a server operator (who may send MODERATE) or not.
    pub fn set_operator(&mut self, user: &Name, operator: bool) {
        if operator {
            self.moderation.operators.insert(user.key());
        } else {
            self.moderation.operators.remove(&user.key());
        }
    }

    /// Whether `user` is a server operator.
    pub(super) fn is_operator(&self, user: &Name) -> bool {
        self.moderation.operators.contains(&user.key())
    }

    /// MODERATE: an operator's action takes effect at once; the OK
    /// follows once storage has it (the ban's end, the audit line).
    pub(super) fn moderate(
        &mut self,
        now: Instant,
        conn: ConnId,
        reference: Ref,
        ask: ModerationAsk<'_>,
    ) {
        let Some(actor) = self.user(conn) else { return };
        if !self.is_operator(&actor) {
            return self.refuse(conn, reference, ProtocolError::NotOperator);
        }
        if !self.begin_request(conn, reference) {
            return;
        }
        let left = (ask.seconds > 0).then(|| Duration::from_secs(u64::from(ask.seconds)));
        let until = left.map(|d| now + d);
        let target = ask.user;
        let (user, reason) = (target, ask.reason.to_owned());
        let told = match ask.action {
            ModAction::Kick => Remote::Kick { user, reason },
            ModAction::Ban => Remote::Ban { user, left, reason },
            ModAction::Unban => Remote::Unban { user },
            ModAction::Mute => Remote::Mute { user, left, reason },
            ModAction::Unmute => Remote::Unmute { user },
        };
        self.tell_when_stored(conn, reference, told);
        match ask.action {
            ModAction::Kick => {
                self.kick(now, &target, ask.reason);
            }
            ModAction::Ban => {
                self.ban(now, &target, until, ask.reason);
            }
            ModAction::Unban => {
                self.unban(&target);
            }
            ModAction::Mute => self.mute(now, &target, until, ask.reason),
            ModAction::Unmute => {
                self.unmute(&target);
            }
        }
        self.outbox.effect(Effect::Moderate {
            conn,
            reference,
            record: ModerationRecord {
                actor,
                action: ask.action,
                target,
                seconds: ask.seconds,
                reason: ask.reason.to_owned(),
            },
        });
    }

    /// Storage's answer to a MODERATE.
    pub(super) fn moderated(
        &mut self,
        conn: ConnId,
        reference: Ref,
        result: Result<(), ProtocolError>,
    ) {
        self.end_request(conn);
        self.stored_tell(conn, reference, result.is_ok());
        match result {
            Ok(()) => self.push(conn, Event::Ok { reference }, Class::Control),
            Err(e) => self.refuse(conn, reference, e),
        }
    }

    /// What the hub holds now.
    pub fn stats(&self, now: Instant) -> HubStats {
        let mut stats = HubStats {
            connections: self.sessions.count(),
            per_protocol: vec![0; self.codecs.len().min(MAX_PROTOCOLS)],
            lockouts: self.guard.lockouts(),
            registrations_charged: self.guard.registrations_charged(),
            bans: count_live(&self.moderation.bans, now),
            address_bans: self.address_bans_in_force(now),
            mutes: count_live(&self.moderation.mutes, now),
            ..HubStats::default()
        };
        for conn in self.sessions.ids() {
            let Some(s) = self.sessions.get(conn) else {
                continue;
            };
            if let Some(n) = stats.per_protocol.get_mut(s.protocol.index()) {
                *n += 1;
            }
            if s.logged_in().is_some() {
                stats.logged_in += 1;
            }
            let bytes = s.queue.bytes() as u64;
            stats.queued_bytes += bytes;
            stats.deepest_queue = stats.deepest_queue.max(bytes);
        }
        let mut users: Vec<(Name, u32)> = self
            .roster
            .online
            .values()
            .filter(|o| !o.sessions.is_empty())
            .map(|o| (o.name, o.sessions.len() as u32))
            .collect();
        users.sort();
        stats.sessions_per_user = users;
        stats
    }

    /// Why `user` may not log in now, if they are banned.
    pub(super) fn ban_refusal(&self, now: Instant, user: &Name) -> Option<ProtocolError> {
        let ban = self.moderation.bans.get(&user.key())?;
        Some(ProtocolError::Banned {
            reason: ban.reason.clone(),
            retry: ban.left(now)?,
        })
    }

    /// Why `user` may not send now, if they are muted.
    pub(super) fn mute_refusal(&self, now: Instant, user: &Name) -> Option<ProtocolError> {
        let mute = self.moderation.mutes.get(&user.key())?;
        Some(ProtocolError::Muted {
            reason: mute.reason.clone(),
            retry: mute.left(now)?,
        })
    }

    fn close_user(&mut self, user: &Name, error: &ProtocolError) -> usize {
        let conns: Vec<ConnId> = self
            .roster
            .online
            .get(&user.key())
            .map(|o| o.sessions.to_vec())
            .unwrap_or_default();
        for &conn in &conns {
            self.fatal(conn, Ref(0), error.clone());
        }
        self.finish();
        conns.len()
    }
}

fn count_live(map: &HashMap<NameKey, Sanction>, now: Instant) -> usize {
    map.values().filter(|s| s.left(now).is_some()).count()
}
