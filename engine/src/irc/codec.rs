//! The IRC codec: what every IRC session of one tag set reads alike.
//!
//! [`IrcCodec`] encodes the events the hub broadcasts (messages, presence,
//! group changes, the server's PING and SHUTDOWN) and the lines the
//! gateway wrote ([`Event::Raw`]). A broadcast's bytes must not depend on
//! who reads them, so each is encoded once per protocol; clients that
//! differ in the tags they negotiated ([`TagSet`]) are different
//! protocols, each its own codec. Replies to one session (numerics,
//! acknowledgements, history) need that session's nick and labels: the
//! hub renders those itself when it drains them (see `hub::irc`), and
//! this codec writes nothing for them.

use std::sync::Arc;

use crate::effect::StoredMessage;
use crate::event::Event;
use crate::name::Name;
use crate::protocol::{Codec, Decoded};
use crate::wire::frame::{GroupChange, Presence, Target};

use super::line::{self, Out, MAX_BODY_LEN};
use super::IrcConfig;

/// Which tags the clients of a protocol negotiated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagSet {
    /// None: plain RFC 1459 lines.
    Plain,
    /// `server-time` only (irssi's choice).
    Time,
    /// `account-tag` without `message-tags`: the sender's account only.
    Account,
    /// `account-tag` and `server-time`, without `message-tags`.
    TimeAccount,
    /// `message-tags`: time, msgid and account.
    All,
}

impl TagSet {
    /// Every tag set, in the order the hub registers their protocols.
    pub const EVERY: [TagSet; 5] = [
        TagSet::Plain,
        TagSet::Time,
        TagSet::Account,
        TagSet::TimeAccount,
        TagSet::All,
    ];

    /// Whether a message carries its `time`.
    pub fn time(self) -> bool {
        matches!(self, TagSet::Time | TagSet::TimeAccount | TagSet::All)
    }

    /// Whether a message carries its sender's `account`.
    pub fn account(self) -> bool {
        matches!(self, TagSet::Account | TagSet::TimeAccount | TagSet::All)
    }
}

/// The IRC codec of one [`TagSet`] (see the module docs).
#[derive(Debug)]
pub struct IrcCodec {
    tags: TagSet,
    config: Arc<IrcConfig>,
}

impl IrcCodec {
    /// A codec writing `tags`.
    pub fn new(tags: TagSet, config: Arc<IrcConfig>) -> IrcCodec {
        IrcCodec { tags, config }
    }

    fn channel(&self, target: &Target) -> String {
        match target {
            Target::Room => self.config.room_channel.clone(),
            Target::Group(g) => format!("#{g}"),
            Target::User(u) => u.as_str().to_owned(),
        }
    }
}

/// Where a confab name is seen from IRC: `nick!nick@host`.
pub fn source(name: &Name) -> String {
    format!("{name}!{name}@confab")
}

/// Writes message `m` to `target` (as the reader sees it) as PRIVMSG
/// (or NOTICE) lines, with its client-only tags for `message-tags`: a
/// body longer than a line holds, or with line breaks, is split (a part
/// is never empty unless the body is). `extra` adds tags (a batch, a
/// label) before the message's own.
pub fn message_lines(
    out: &mut Vec<u8>,
    tags: TagSet,
    m: &StoredMessage,
    target: &str,
    extra: &[(&str, &str)],
) {
    let from = source(&m.sender);
    // The room a line's text has: 512 less CR LF, the source, the
    // command, the target and their separators. (An IRC client's PRIVMSG
    // that would not fit was refused with 417: `sends::privmsg`.)
    let room = MAX_BODY_LEN - 2 - (1 + from.len() + 9 + target.len() + 2);
    let time = line::server_time(m.timestamp_ms);
    for (part, piece) in m.body.split('\n').flat_map(|l| chunks(l, room)).enumerate() {
        let msgid = match part {
            0 => m.id.get().to_string(),
            n => format!("{}.{n}", m.id.get()),
        };
        let mut o = Out::new(out);
        for (k, v) in extra {
            o = o.tag(k, v);
        }
        if tags.time() {
            o = o.tag("time", &time);
        }
        if tags == TagSet::All {
            o = o.tag("msgid", &msgid);
        }
        if tags.account() {
            o = o.tag("account", m.sender.as_str());
        }
        // Client-only tags last, as the client wrote them.
        if let (TagSet::All, Some(client)) = (tags, m.tags.get()) {
            o = o.tag(client, "");
        }
        o.command(&from, m.kind.irc_command())
            .param(target)
            .trailing(piece);
    }
}

/// `text` cut into pieces of at most `max` bytes at character bounds;
/// one empty piece for empty text.
fn chunks(text: &str, max: usize) -> impl Iterator<Item = &str> {
    let text = text.strip_suffix('\r').unwrap_or(text);
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let r = rest?;
        if r.len() <= max {
            rest = None;
            return Some(r);
        }
        let mut cut = max.max(1);
        while !r.is_char_boundary(cut) {
            cut -= 1;
        }
        let (piece, tail) = r.split_at(cut);
        rest = Some(tail);
        Some(piece)
    })
}

impl Codec for IrcCodec {
    /// Framing only, for the hub's "is a whole request buffered" checks:
    /// the gateway reads the lines themselves (see `hub::irc`).
    fn decode<'a>(&self, input: &'a [u8], _max_len: u32) -> Decoded<'a> {
        match line::parse(input) {
            Ok(line::Parsed::Incomplete) => Decoded::Incomplete,
            Ok(line::Parsed::Empty(len) | line::Parsed::Line(_, len)) => {
                Decoded::NotARequest(len, "IRC")
            }
            Err(line::LineError::TooLong { len, .. } | line::LineError::NotUtf8 { len }) => {
                Decoded::NotARequest(len, "IRC")
            }
        }
    }

    fn encode(&self, event: &Event, out: &mut Vec<u8>) {
        let server = self.config.server.as_str();
        match event {
            Event::Raw(bytes) => out.extend_from_slice(bytes),
            Event::Message(m) => message_lines(out, self.tags, m, &self.channel(&m.target), &[]),
            Event::RosterDelta { .. } if !self.config.room_presence => {}
            Event::RosterDelta {
                presence,
                user,
                reason,
                ..
            } => {
                let o = Out::new(out);
                match presence {
                    Presence::Online => o
                        .command(&source(user), "JOIN")
                        .param(&self.config.room_channel)
                        .end(),
                    Presence::Offline => o
                        .command(&source(user), "QUIT")
                        .trailing(reason.as_deref().unwrap_or("offline")),
                }
            }
            Event::GroupEvent {
                change,
                group,
                user,
                reason,
            } => {
                let command = match change {
                    GroupChange::Joined => "JOIN",
                    GroupChange::Left => "PART",
                };
                let channel = format!("#{group}");
                let o = Out::new(out)
                    .command(&source(user), command)
                    .param(&channel);
                match reason {
                    Some(r) => o.trailing(r),
                    None => o.end(),
                }
            }
            Event::Ping { token } => Out::new(out)
                .command(server, "PING")
                .trailing(&token.to_string()),
            Event::Shutdown { reason, .. } => {
                Out::new(out).command(server, "ERROR").trailing(reason);
            }
            // An announcement: a server NOTICE in the room's channel, one
            // line per line of it (docs/IRC.md). A deletion has no IRC
            // word and is not sent.
            Event::Notice { text } => {
                for line in text.split(['\r', '\n', '\0']).filter(|l| !l.is_empty()) {
                    Out::new(out)
                        .command(server, "NOTICE")
                        .param(&self.config.room_channel)
                        .trailing(line);
                }
            }
            _ => {}
        }
    }

    fn encoded_len(&self, event: &Event) -> usize {
        match event {
            Event::Raw(bytes) => bytes.len(),
            Event::Message(m) => {
                let lines = 1 + m.body.len() / 400 + m.body.matches('\n').count();
                m.body.len() + lines * (120 + m.tags.len())
            }
            Event::Notice { text } => text.len() + (1 + text.matches('\n').count()) * 120,
            // What the hub renders at drain: charged at a line or so.
            _ => 128,
        }
    }

    fn history_entry_len(&self, m: &StoredMessage) -> usize {
        let lines = 1 + m.body.len() / 400 + m.body.matches('\n').count();
        m.body.len() + lines * 160
    }

    fn roster_entry_len(&self, user: &Name) -> usize {
        user.as_str().len() + 1
    }
}
