//! One node of several: what an operator or the guard did here is told to
//! the other nodes ([`Effect::TellNodes`]), and what they did is applied
//! here ([`Hub::handle_remote`]) through the same functions the control
//! socket calls, so a sanction closes sessions with the same codes and
//! texts on every node and the lockout and registration budgets are the
//! cluster's (see [`crate::remote`]). A single node tells nothing.
//!
//! A client's MODERATE or BAN_ADDRESS is told once storage has it: its
//! note waits in `Moderation::told` (one per request in flight, so as
//! bounded as they are) for the answer.

use std::time::Instant;

use crate::effect::Effect;
use crate::id::{ConnId, Ref, Source};
use crate::name::Name;
use crate::remote::Remote;

use super::Hub;

/// What applying a [`Remote`] did here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// How many sessions it closed (a kick, a ban, a revoked device).
    Closed(usize),
    /// Whether there was something to lift (an unban, an unmute).
    Lifted(bool),
    /// How many lockout entries an unlock cleared.
    Cleared(usize),
    /// It took effect (a mute, an operator change, a guard count).
    Done,
}

impl Hub {
    /// What another node applied: applied here too, and not told again.
    pub fn handle_remote(&mut self, now: Instant, remote: Remote) {
        self.apply_remote(now, &remote);
    }

    /// An operator's action on this node's control socket: applied here
    /// and, on one node of several, told to the others.
    pub fn order(&mut self, now: Instant, remote: Remote) -> Applied {
        let applied = self.apply_remote(now, &remote);
        self.tell_nodes(remote);
        applied
    }

    fn apply_remote(&mut self, now: Instant, remote: &Remote) -> Applied {
        let until = |left: Option<std::time::Duration>| left.map(|d| now + d);
        match remote {
            Remote::Kick { user, reason } => Applied::Closed(self.kick(now, user, reason)),
            Remote::Ban { user, left, reason } => {
                Applied::Closed(self.ban(now, user, until(*left), reason))
            }
            Remote::Unban { user } => Applied::Lifted(self.unban(user)),
            Remote::Mute { user, left, reason } => {
                self.mute(now, user, until(*left), reason);
                Applied::Done
            }
            Remote::Unmute { user } => Applied::Lifted(self.unmute(user)),
            Remote::Operator { user, operator } => {
                self.set_operator(user, *operator);
                Applied::Done
            }
            Remote::DeviceRevoked(device) => Applied::Closed(self.handle_device_revoked(*device)),
            Remote::BanAddress { net, left, reason } => {
                Applied::Closed(self.ban_address(now, *net, until(*left), reason))
            }
            Remote::UnbanAddress { net } => Applied::Lifted(self.unban_address(*net)),
            Remote::LoginFailed { user, source } => {
                self.guard.failed_elsewhere(now, user, *source);
                Applied::Done
            }
            Remote::LoggedIn { user, source } => {
                self.guard.logged_in_elsewhere(user, *source);
                Applied::Done
            }
            Remote::Registered { source } => {
                self.guard.registered_elsewhere(now, *source);
                Applied::Done
            }
            Remote::Unlock { user, source } => {
                use crate::lockout::Unlock;
                let which = match (user, source) {
                    (Some(user), _) => Unlock::User(user.key()),
                    (None, Some(source)) => Unlock::Source(*source),
                    (None, None) => Unlock::All,
                };
                Applied::Cleared(self.unlock(which))
            }
        }
    }

    /// Queues `remote` for the other nodes; a single node drops it.
    pub(super) fn tell_nodes(&mut self, remote: Remote) {
        if self.config.announce_presence {
            self.outbox.effect(Effect::TellNodes(remote));
        }
    }

    /// A client's moderation, applied here: told once stored (see the
    /// module docs).
    pub(super) fn tell_when_stored(&mut self, conn: ConnId, reference: Ref, remote: Remote) {
        if self.config.announce_presence {
            let queued = self.moderation.told.entry((conn, reference)).or_default();
            queued.push(remote);
        }
    }

    /// Storage answered the request: its note goes out if it was stored.
    pub(super) fn stored_tell(&mut self, conn: ConnId, reference: Ref, stored: bool) {
        let key = (conn, reference);
        let Some(queued) = self.moderation.told.get_mut(&key) else {
            return;
        };
        let remote = (!queued.is_empty()).then(|| queued.remove(0));
        if queued.is_empty() {
            self.moderation.told.remove(&key);
        }
        if let (Some(remote), true) = (remote, stored) {
            self.tell_nodes(remote);
        }
    }

    /// A login's outcome as the guard counted it, for the other nodes.
    pub(super) fn tell_login(&mut self, user: Name, source: Source, ok: bool) {
        let remote = if ok {
            Remote::LoggedIn { user, source }
        } else {
            Remote::LoginFailed { user, source }
        };
        self.tell_nodes(remote);
    }
}
