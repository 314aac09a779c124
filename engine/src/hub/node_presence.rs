//! This node's part of the cluster's presence: with
//! `Config::announce_presence`, the hub tells the shell when a user's
//! first session here logs in and their last here leaves
//! ([`Effect::NodePresence`]), and the shell tells the other nodes, whose
//! hubs count the user online while any node has them
//! ([`super::Hub::handle_presence`]). Off (a single node), nothing is
//! queued.

use crate::effect::Effect;
use crate::frame::Presence;
use crate::name::Name;

use super::Hub;

impl Hub {
    /// Before `user`'s session joins the roster: announces them if they
    /// had no session here.
    pub(super) fn announce_arrival(&mut self, user: Name) {
        if self.config.announce_presence && !self.roster.is_here(&user) {
            self.outbox.effect(Effect::NodePresence {
                user,
                presence: Presence::Online,
            });
        }
    }

    /// After a session of `user` left the roster: announces them gone if
    /// it was their last here.
    pub(super) fn announce_departure(&mut self, user: Name) {
        if self.config.announce_presence && !self.roster.is_here(&user) {
            self.outbox.effect(Effect::NodePresence {
                user,
                presence: Presence::Offline,
            });
        }
    }
}
