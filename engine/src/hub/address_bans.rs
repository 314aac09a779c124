//! Bans of address blocks (CIDR): every session from a banned block is
//! closed with ERROR BANNED, and [`Hub::admit`] turns its new connections
//! away with the reason and the time left, before they cost a session.
//! The shell stores them and hands them back at start and reload.
//!
//! The list grows only by what an operator asks, never by a client; a
//! block banned again replaces its entry, and expired ones go at each
//! ban. A connection is checked against each block in turn: operators
//! ban few.

use std::time::{Duration, Instant};

use crate::effect::{AddressBanRecord, Effect};
use crate::error::ProtocolError;
use crate::id::{ConnId, Ref, Source};
use crate::remote::Remote;
use crate::request::AddressAsk;
use crate::source_net::SourceNet;

use super::moderation::Sanction;
use super::Hub;

impl Hub {
    /// Bans the block `net` until `until` (`None`: for good); returns how
    /// many sessions from it were closed.
    pub fn ban_address(
        &mut self,
        now: Instant,
        net: SourceNet,
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
        let bans = &mut self.moderation.address_bans;
        bans.retain(|(n, s)| *n != net && s.left(now).is_some());
        bans.push((net, sanction));
        let error = ProtocolError::AddressBanned {
            reason: reason.to_owned(),
            retry,
        };
        let conns: Vec<ConnId> = self
            .sessions
            .ids()
            .filter(|&c| self.sessions.get(c).is_some_and(|s| net.contains(s.source)))
            .collect();
        for &conn in &conns {
            self.fatal(conn, Ref(0), error.clone());
        }
        self.finish();
        conns.len()
    }

    /// Lifts the ban of exactly the block `net`; whether there was one.
    pub fn unban_address(&mut self, net: SourceNet) -> bool {
        let bans = &mut self.moderation.address_bans;
        let before = bans.len();
        bans.retain(|(n, _)| *n != net);
        bans.len() != before
    }

    /// BAN_ADDRESS: an operator's ban (or lifting) takes effect at once,
    /// as `confab-server ban-address` does through the control socket;
    /// the OK follows once storage has it (the ban, the audit line).
    pub(super) fn ban_address_asked(
        &mut self,
        now: Instant,
        conn: ConnId,
        reference: Ref,
        ask: AddressAsk<'_>,
    ) {
        let Some(actor) = self.user(conn) else { return };
        if !self.is_operator(&actor) {
            return self.refuse(conn, reference, ProtocolError::NotOperator);
        }
        let (block, net) = match SourceNet::parse(ask.block) {
            Ok(parsed) => parsed,
            Err(e) => return self.refuse(conn, reference, e),
        };
        if !self.begin_request(conn, reference) {
            return;
        }
        let left = (ask.seconds > 0).then(|| Duration::from_secs(u64::from(ask.seconds)));
        let told = if ask.lift {
            self.unban_address(net);
            Remote::UnbanAddress { net }
        } else {
            self.ban_address(now, net, left.map(|d| now + d), ask.reason);
            let reason = ask.reason.to_owned();
            Remote::BanAddress { net, left, reason }
        };
        self.tell_when_stored(conn, reference, told);
        self.outbox.effect(Effect::BanAddress {
            conn,
            reference,
            record: AddressBanRecord {
                actor,
                block,
                lift: ask.lift,
                seconds: if ask.lift { 0 } else { ask.seconds },
                reason: ask.reason.to_owned(),
            },
        });
    }

    /// Why a connection from `source` is turned away, if a ban covers it.
    pub(super) fn address_ban_refusal(
        &self,
        now: Instant,
        source: Source,
    ) -> Option<ProtocolError> {
        self.moderation
            .address_bans
            .iter()
            .filter(|(net, _)| net.contains(source))
            .find_map(|(_, s)| {
                s.left(now).map(|retry| ProtocolError::AddressBanned {
                    reason: s.reason.clone(),
                    retry,
                })
            })
    }

    pub(super) fn address_bans_in_force(&self, now: Instant) -> usize {
        let bans = &self.moderation.address_bans;
        bans.iter().filter(|(_, s)| s.left(now).is_some()).count()
    }
}
