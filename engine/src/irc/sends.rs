//! PRIVMSG, NOTICE and TAGMSG of a registered client: a SEND of its kind
//! with its client-only tags, or (TAGMSG) a live relay, never stored.

use crate::message_kind::{ClientTags, MessageKind};
use crate::request::Request;
use crate::wire::frame::Target;

use super::line::Line;
use super::queries::target;
use super::replies::{fail, numeric, reply};
use super::session::IrcSession;
use super::{Act, IrcConfig, Pending};

/// PRIVMSG and NOTICE: a SEND, answered when it is stored.
pub fn privmsg<'a>(
    s: &mut IrcSession,
    cmd: &str,
    line: &Line<'a>,
    config: &IrcConfig,
    acts: &mut Vec<Act<'a>>,
) {
    let me = s.me();
    let kind = match cmd {
        "NOTICE" => MessageKind::Notice,
        _ => MessageKind::Message,
    };
    // A NOTICE is never answered with an error (RFC 2812 3.3.2).
    let reply = |acts: &mut Vec<Act<'a>>, out: Vec<u8>| {
        if kind == MessageKind::Message {
            reply(acts, out)
        }
    };
    let (to, body) = (line.param(0), line.param(1));
    let mut out = Vec::new();
    let Some((t, tags)) = addressed(line, true, config, &me, &mut out) else {
        return reply(acts, out);
    };
    // A PRIVMSG whose text would not fit a relayed line (512 with the
    // sender's source prefix) is refused, so no reader gets it cut or
    // split; clients split their own long messages knowing their prefix.
    if kind == MessageKind::Message && body.len() > relayed_room(s, to) {
        numeric(&mut out, config, "417", &me).trailing("Input line was too long");
        return reply(acts, out);
    }
    let pending = Pending::Send {
        target: to.to_owned(),
        body: body.to_owned(),
        kind,
        tags: tags.clone(),
        label: line.tag("label").map(str::to_owned),
    };
    let Some(reference) = s.remember(pending) else {
        fail(
            &mut out,
            s,
            config,
            "PRIVMSG",
            "BUSY",
            "Too many messages in flight",
        );
        return reply(acts, out);
    };
    acts.push(Act::Request(
        Request::Send {
            reference,
            target: t,
            body,
            kind,
            tags,
        },
        None,
    ));
}

/// TAGMSG: client-only tags, relayed live to the target's readers with
/// `message-tags` and never stored (see `hub::irc_relay`).
pub fn tagmsg(s: &mut IrcSession, line: &Line<'_>, config: &IrcConfig, acts: &mut Vec<Act<'_>>) {
    let (me, to) = (s.me(), line.param(0));
    let mut out = Vec::new();
    let Some((target, tags)) = addressed(line, false, config, &me, &mut out) else {
        return reply(acts, out);
    };
    acts.push(Act::Relay {
        target,
        to: to.to_owned(),
        tags,
        label: line.tag("label").map(str::to_owned),
    });
}

/// The target and client-only tags of a PRIVMSG, NOTICE or TAGMSG (a text
/// too when `text`), or `None` with the numeric that refuses the line in
/// `out`: 411 without a target, 412 without a text, 403/401 for a target
/// IRC cannot name, 417 for client tags over their limit.
fn addressed(
    line: &Line<'_>,
    text: bool,
    config: &IrcConfig,
    me: &str,
    out: &mut Vec<u8>,
) -> Option<(Target, ClientTags)> {
    let to = line.param(0);
    if to.is_empty() {
        numeric(out, config, "411", me).trailing("No recipient given");
        return None;
    }
    if text && (line.params.len() < 2 || line.param(1).is_empty()) {
        numeric(out, config, "412", me).trailing("No text to send");
        return None;
    }
    let Some(t) = target(config, to) else {
        let code = if to.starts_with('#') { "403" } else { "401" };
        numeric(out, config, code, me)
            .param(to)
            .trailing("No such nick/channel");
        return None;
    };
    let Some(tags) = ClientTags::from_raw(line.tags) else {
        numeric(out, config, "417", me).trailing("Client tags are over 4094 bytes");
        return None;
    };
    Some((t, tags))
}

/// The text a relayed `PRIVMSG to :text` line of this sender has room for:
/// 512 less CR LF, the source, the command, the target and separators.
fn relayed_room(s: &IrcSession, to: &str) -> usize {
    let source = s.account().map_or(0, |me| super::codec::source(&me).len());
    super::line::MAX_BODY_LEN.saturating_sub(2 + 1 + source + " PRIVMSG ".len() + to.len() + 2)
}
