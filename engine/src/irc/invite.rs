//! INVITE: the inviter's checks and its 341, answered from the hub's
//! directory; the INVITE line itself is relayed live to the invitee's IRC
//! sessions by the hub (`hub::irc_relay`), never stored.
//!
//! An invitation grants nothing: a confab group is open to anyone who
//! joins it (docs/IRC.md), so it only tells the invitee where to go.

use crate::name::Name;
use crate::wire::frame::Target;

use super::line::Line;
use super::queries::{members, target};
use super::replies::{numeric, Directory};
use super::{Act, IrcConfig};

/// `INVITE nick #channel` from `me`: 461 without both, 401 for a nick
/// not online, 403 for a channel that is not one, 442 when `me` is not
/// in it, 443 when the nick already is; else 341 to `me` and the relay.
pub fn invite(
    out: &mut Vec<u8>,
    acts: &mut Vec<Act<'_>>,
    (dir, config): (&dyn Directory, &IrcConfig),
    me: &Name,
    line: &Line<'_>,
) {
    let (nick, channel) = (line.param(0), line.param(1));
    if line.params.len() < 2 || nick.is_empty() || channel.is_empty() {
        numeric(out, config, "461", me.as_str())
            .param("INVITE")
            .trailing("Not enough parameters");
        return;
    }
    let online = dir.online();
    let invitee = Name::new(nick)
        .ok()
        .and_then(|n| online.iter().copied().find(|o| o.key() == n.key()));
    let Some(invitee) = invitee else {
        numeric(out, config, "401", me.as_str())
            .param(nick)
            .trailing("No such nick/channel");
        return;
    };
    let in_it = match target(config, channel) {
        Some(Target::Room | Target::Group(_)) => members(dir, config, channel),
        _ => None,
    };
    let Some(in_it) = in_it else {
        numeric(out, config, "403", me.as_str())
            .param(channel)
            .trailing("No such channel");
        return;
    };
    let member = |n: &Name| in_it.iter().any(|m| m.key() == n.key());
    if !member(me) {
        numeric(out, config, "442", me.as_str())
            .param(channel)
            .trailing("You're not on that channel");
        return;
    }
    if member(&invitee) {
        numeric(out, config, "443", me.as_str())
            .param(invitee.as_str())
            .param(channel)
            .trailing("is already on channel");
        return;
    }
    numeric(out, config, "341", me.as_str())
        .param(invitee.as_str())
        .param(channel)
        .end();
    acts.push(Act::Invite {
        invitee,
        channel: channel.to_owned(),
    });
}
