//! TAGMSG and INVITE: relayed live, never stored (docs/IRC.md).
//!
//! A TAGMSG has no id and no history: it goes to the sessions that are
//! entitled to a message to the same target now (`routing::recipients`),
//! only those that read IRC with `message-tags` (no other protocol has a
//! word for it), encoded once and shared. The sender gets its echo with
//! `echo-message`, or an `ACK` when labeled.

use std::time::Instant;

use crate::effect::StoredMessage;
use crate::error::ProtocolError;
use crate::event::Event;
use crate::id::{ConnId, MessageId};
use crate::irc::codec::{source, TagSet};
use crate::irc::line::Out;
use crate::irc::replies::{labeled, send_refused};
use crate::irc::session::Caps;
use crate::message_kind::{ClientTags, MessageKind};
use crate::name::Name;
use crate::send_queue::Class;
use crate::shared::Shared;
use crate::wire::frame::Target;

use super::routing::recipients;
use super::Hub;

impl Hub {
    /// Relays a TAGMSG from `conn` to `target` (`to` as the client wrote it).
    pub(super) fn irc_relay(
        &mut self,
        now: Instant,
        conn: ConnId,
        target: Target,
        to: &str,
        tags: &ClientTags,
        label: Option<&str>,
    ) {
        let Some(user) = self.user(conn) else { return };
        let resolved = self.relay_target(now, &user, target);
        let last = self.last_id.get();
        let Some(g) = self.irc.as_deref_mut() else {
            return;
        };
        // Its msgid is no message's: unique (the newest stored id, then a
        // count), and not a reference CHATHISTORY reads.
        g.relayed += 1;
        let msgid = format!("{last}-t{}", g.relayed);
        let g = &*g;
        let (config, all) = (g.config.clone(), g.protocols.of(TagSet::All));
        let Some(s) = g.sessions.get(&conn) else {
            return;
        };
        let target = match resolved {
            Ok(target) => target,
            Err(e) => {
                let lines = send_refused(s, "TAGMSG", to, &e, &config);
                let out = labeled(lines, label, s, &config);
                return self.push(conn, Event::Raw(out.into()), Class::Control);
            }
        };
        let line = tagmsg_line(&user, &config.room_channel, &target, tags, &msgid);
        let echo = match s.caps.has(Caps::ECHO) {
            true => labeled(line.clone(), label, s, &config),
            false => labeled(Vec::new(), label, s, &config),
        };
        // The audience of a message to the same target, now.
        let probe = StoredMessage {
            id: MessageId(0),
            timestamp_ms: 0,
            sender: user,
            target,
            body: String::new(),
            kind: MessageKind::Message,
            tags: ClientTags::default(),
        };
        // A TAGMSG to oneself also reaches the sending session, after its
        // echo (as a PRIVMSG to oneself does).
        let to_self = matches!(probe.target, Target::User(u) if u.key() == user.key());
        let mut readers = Vec::new();
        recipients(&self.roster, &self.groups, &probe, |c, _| {
            if c != conn || to_self {
                readers.push(c);
            }
        });
        if !echo.is_empty() {
            self.push(conn, Event::Raw(echo.into()), Class::Control);
        }
        let shared = Shared::new(Event::Raw(line.into()));
        for c in readers {
            if self.sessions.get(c).is_some_and(|r| r.protocol == all) {
                self.push_shared(c, &shared, Class::Message, None);
            }
        }
    }

    /// Relays `conn`'s INVITE (checked by `irc::invite`) to `invitee`'s
    /// IRC sessions, with the inviter's account for those that asked for
    /// `account-tag` (or `message-tags`).
    pub(super) fn irc_invite(&mut self, conn: ConnId, invitee: Name, channel: &str) {
        let Some(user) = self.user(conn) else { return };
        let probe = StoredMessage {
            id: MessageId(0),
            timestamp_ms: 0,
            sender: user,
            target: Target::User(invitee),
            body: String::new(),
            kind: MessageKind::Message,
            tags: ClientTags::default(),
        };
        let mut readers = Vec::new();
        recipients(&self.roster, &self.groups, &probe, |c, _| readers.push(c));
        // A direct message's audience has the sender's sessions too.
        readers.retain(|&c| self.user(c).is_some_and(|u| u.key() == invitee.key()));
        let Some(g) = self.irc.as_deref() else { return };
        let lines: Vec<(ConnId, Vec<u8>)> = readers
            .into_iter()
            .filter_map(|c| {
                let s = g.sessions.get(&c)?;
                let mut line = Vec::new();
                let mut o = Out::new(&mut line);
                if s.caps.tags().account() {
                    o = o.tag("account", user.as_str());
                }
                o.command(&source(&user), "INVITE")
                    .param(invitee.as_str())
                    .param(channel)
                    .end();
                Some((c, line))
            })
            .collect();
        for (c, line) in lines {
            self.push(c, Event::Raw(line.into()), Class::Control);
        }
    }

    /// Where a TAGMSG goes, refused as a SEND to the same target would be
    /// (`routing::send`): a muted sender, a group the sender is not in or
    /// is muted in, a user not online (a TAGMSG is never kept for later).
    fn relay_target(
        &self,
        now: Instant,
        user: &Name,
        target: Target,
    ) -> Result<Target, ProtocolError> {
        if let Some(muted) = self.mute_refusal(now, user) {
            return Err(muted);
        }
        match target {
            Target::Group(group) => {
                let name = self.groups.of_member(user, &group)?;
                match self.group_mute_refusal(now, &name, user) {
                    Some(muted) => Err(muted),
                    None => Ok(Target::Group(name)),
                }
            }
            Target::User(u) => match self.roster.online.get(&u.key()) {
                Some(online) => Ok(Target::User(online.name)),
                None => Err(ProtocolError::NoSuchUser { user: u }),
            },
            Target::Room => Ok(Target::Room),
        }
    }
}

/// The TAGMSG line every reader shares: the client's tags, its msgid and
/// the sender's account, to the target as IRC names it.
fn tagmsg_line(
    user: &Name,
    room_channel: &str,
    target: &Target,
    tags: &ClientTags,
    msgid: &str,
) -> Vec<u8> {
    let shown = match target {
        Target::Room => room_channel.to_owned(),
        Target::Group(g) => format!("#{g}"),
        Target::User(u) => u.to_string(),
    };
    let mut line = Vec::new();
    let mut o = Out::new(&mut line);
    if let Some(t) = tags.get() {
        o = o.tag(t, "");
    }
    o.tag("msgid", msgid)
        .tag("account", user.as_str())
        .command(&source(user), "TAGMSG")
        .param(&shown)
        .end();
    line
}
