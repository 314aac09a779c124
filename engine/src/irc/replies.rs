//! Replies to one IRC session: numerics, the welcome, channel names, and
//! the hub's answers (login, acknowledgements, errors, history pages)
//! rendered with the session's nick and labels when they drain.

use crate::effect::StoredMessage;
use crate::error::ProtocolError;
use crate::event::Event;
use crate::frame::ErrorCode;
use crate::id::MessageId;
use crate::message_kind::MessageKind;
use crate::name::Name;
use crate::wire::frame::Target;

use super::codec::{message_lines, source};
pub use super::labels::{gathered, labeled};
use super::line::{server_time, Out};
use super::session::{Caps, IrcSession, Login};
use super::{IrcConfig, Pending, TagSet};

/// What the gateway asks of the hub's state to answer a client.
pub trait Directory {
    /// Users online, sorted.
    fn online(&self) -> Vec<Name>;
    /// Members of a group, sorted, if it exists.
    fn members(&self, group: &Name) -> Option<Vec<Name>>;
    /// The groups `user` is in.
    fn groups_of(&self, user: &Name) -> Vec<Name>;
    /// Every group and its member count.
    fn groups(&self) -> Vec<(Name, usize)>;
    /// The newest committed id.
    fn last_id(&self) -> MessageId;
    /// Whether accounts may be registered (REGISTER).
    fn registration_open(&self) -> bool {
        false
    }
    /// Whether `user` owns or moderates `group` (its `@` in NAMES).
    fn moderates(&self, group: &Name, user: &Name) -> bool;
}

/// Queues `out` as a reply, unless it is empty.
pub fn reply(acts: &mut Vec<super::Act<'_>>, out: Vec<u8>) {
    if !out.is_empty() {
        acts.push(super::Act::Reply(out));
    }
}

/// Writes a numeric `code` to `me`: `:server code me` and what follows.
pub fn numeric<'a>(out: &'a mut Vec<u8>, config: &IrcConfig, code: &str, me: &str) -> Out<'a> {
    Out::new(out).command(&config.server, code).param(me)
}

/// The RPL_ISUPPORT tokens.
const ISUPPORT: &str = "CASEMAPPING=ascii CHANTYPES=# NICKLEN=32 CHANNELLEN=33 PREFIX=(o)@ \
                        NETWORK=confab CHATHISTORY=100 MSGREFTYPES=msgid,timestamp UTF8ONLY";

/// 001 to 005 and the MOTD, then the room's JOIN is the snapshot's.
pub fn welcome(out: &mut Vec<u8>, config: &IrcConfig, me: &str) {
    let server = &config.server;
    numeric(out, config, "001", me).trailing(&format!("Welcome to confab, {me}"));
    numeric(out, config, "002", me).trailing(&format!("Your host is {server}"));
    numeric(out, config, "003", me).trailing("This server speaks IRC as a confab gateway");
    numeric(out, config, "004", me)
        .param(server)
        .param("confab")
        .param("i")
        .param("n")
        .end();
    numeric(out, config, "005", me)
        .param(ISUPPORT)
        .trailing("are supported by this server");
    motd(out, config, me);
}

/// The MOTD, or 422 if there is none.
pub fn motd(out: &mut Vec<u8>, config: &IrcConfig, me: &str) {
    if config.motd.is_empty() {
        numeric(out, config, "422", me).trailing("MOTD File is missing");
        return;
    }
    numeric(out, config, "375", me).trailing(&format!("- {} Message of the day -", config.server));
    for l in &config.motd {
        numeric(out, config, "372", me).trailing(&format!("- {l}"));
    }
    numeric(out, config, "376", me).trailing("End of /MOTD command");
}

/// 353 lines of `names` (as many per line as fit) and 366; a group's
/// owner and moderators are its operators (`@`); the room has none.
pub fn names(
    out: &mut Vec<u8>,
    (config, dir): (&IrcConfig, &dyn Directory),
    (me, full): (&str, bool),
    channel: &str,
    names: &[Name],
) {
    let group = match channel.eq_ignore_ascii_case(&config.room_channel) {
        true => None,
        false => channel.strip_prefix('#').and_then(|g| Name::new(g).ok()),
    };
    let mut line = String::new();
    for name in names {
        let mut n = match group.is_some_and(|g| dir.moderates(&g, name)) {
            true => "@".to_owned(),
            false => String::new(),
        };
        n.push_str(&if full { source(name) } else { name.to_string() });
        if line.len() + n.len() > 400 {
            numeric(out, config, "353", me)
                .param("=")
                .param(channel)
                .trailing(&line);
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&n);
    }
    if !line.is_empty() {
        numeric(out, config, "353", me)
            .param("=")
            .param(channel)
            .trailing(&line);
    }
    numeric(out, config, "366", me)
        .param(channel)
        .trailing("End of /NAMES list");
}

/// The JOIN of `me` to `channel`, then its names.
pub fn joined(
    out: &mut Vec<u8>,
    (config, dir): (&IrcConfig, &dyn Directory),
    (me, full): (&Name, bool),
    channel: &str,
    members: &[Name],
) {
    Out::new(out)
        .command(&source(me), "JOIN")
        .param(channel)
        .end();
    names(out, (config, dir), (me.as_str(), full), channel, members);
}

/// A refusal to a session with message-tags as FAIL, else as a NOTICE.
pub fn fail(
    out: &mut Vec<u8>,
    s: &IrcSession,
    config: &IrcConfig,
    command: &str,
    code: &str,
    text: &str,
) {
    if s.caps.tags() == TagSet::All {
        Out::new(out)
            .command(&config.server, "FAIL")
            .param(command)
            .param(code)
            .trailing(text);
    } else {
        let me = s.me();
        Out::new(out)
            .command(&config.server, "NOTICE")
            .param(&me)
            .trailing(text);
    }
}

/// A refusal with more parameters than a code (`FAIL CHATHISTORY
/// INVALID_TARGET LATEST #x :text`): `what` is the code and its context.
pub fn fail_with(
    out: &mut Vec<u8>,
    s: &IrcSession,
    config: &IrcConfig,
    command: &str,
    what: &[&str],
    text: &str,
) {
    if s.caps.tags() != TagSet::All {
        return fail(
            out,
            s,
            config,
            command,
            what.first().copied().unwrap_or("*"),
            text,
        );
    }
    let mut o = Out::new(out).command(&config.server, "FAIL").param(command);
    for w in what.iter().filter(|w| !w.is_empty() && !w.contains(' ')) {
        o = o.param(w);
    }
    o.trailing(text);
}

/// What rendering a drained event leaves the hub to do.
#[derive(Debug, Default)]
pub struct Rendered {
    /// The lines.
    pub bytes: Vec<u8>,
    /// The roster snapshot is all read at this version: acknowledge it.
    pub roster_ack: Option<crate::id::RosterVersion>,
    /// A JOIN raced another client's creation of the group: join it now
    /// (the reference is already remembered).
    pub rejoin: Option<(crate::id::Ref, Name)>,
    /// The login failed and IRC has no retry without SASL: close.
    pub close: bool,
}

/// Renders an event meant for this session only; `None` for a broadcast,
/// whose shared encoding stands.
pub fn render(
    s: &mut IrcSession,
    event: &Event,
    dir: &dyn Directory,
    config: &IrcConfig,
) -> Option<Rendered> {
    let mut r = Rendered::default();
    match event {
        Event::ServerHello { .. } | Event::CaughtUp { .. } | Event::Pong { .. } => {}
        Event::ReadMarker { .. } | Event::DeviceList { .. } | Event::GroupList { .. } => {}
        Event::LoginOk2 {
            reference, user, ..
        }
        | Event::LoginOk { reference, user } => logged_in(s, *reference, *user, config, &mut r),
        Event::RosterSnapshot {
            version,
            last,
            users,
        } => {
            s.names.extend(users.iter().copied());
            if *last {
                r.roster_ack = Some(*version);
                room_and_groups(s, dir, config, &mut r.bytes);
            }
        }
        Event::Ok { reference } => ok(s, *reference, dir, config, &mut r),
        Event::Ack {
            reference,
            id,
            timestamp_ms,
        } => acked(s, *reference, *id, *timestamp_ms, config, &mut r.bytes),
        Event::Error { reference, error } => refused(s, *reference, error, config, &mut r),
        Event::HistoryPage {
            reference,
            target,
            entries,
            ..
        } => page(s, *reference, target, entries, config, &mut r.bytes),
        Event::HistoryTargets { reference, targets } => {
            let to = |t: &Target| channel_of(config, t);
            super::targets::targets(s, *reference, targets, to, config, &mut r.bytes);
        }
        Event::Missed {
            target,
            first,
            last,
            count,
        } => {
            let text = format!(
                "{count} messages to {} were not delivered (ids {} to {}); they are in history",
                channel_of(config, target),
                first.get(),
                last.get()
            );
            Out::new(&mut r.bytes)
                .command(&config.server, "NOTICE")
                .param(&s.me())
                .trailing(&text);
        }
        _ => return None,
    }
    Some(r)
}

fn channel_of(config: &IrcConfig, target: &Target) -> String {
    match target {
        Target::Room => config.room_channel.clone(),
        Target::Group(g) => format!("#{g}"),
        Target::User(u) => u.to_string(),
    }
}

/// LOGIN_OK: SASL's 900 and 903, and the nick becomes the account's.
fn logged_in(
    s: &mut IrcSession,
    reference: crate::id::Ref,
    user: Name,
    config: &IrcConfig,
    r: &mut Rendered,
) {
    let sasl = matches!(s.answered(reference), Some(Pending::Login { sasl: true }));
    let me = s.me();
    if sasl {
        numeric(&mut r.bytes, config, "900", &me)
            .param(&source(&user))
            .param(user.as_str())
            .trailing(&format!("You are now logged in as {user}"));
        numeric(&mut r.bytes, config, "903", &me).trailing("SASL authentication successful");
        s.sasl = super::session::Sasl::Idle;
        s.by_sasl = true;
    }
    if s.nick.is_some_and(|n| n.as_str() != user.as_str()) && s.welcomed {
        Out::new(&mut r.bytes)
            .command(&source(&s.nick.unwrap_or(user)), "NICK")
            .param(user.as_str())
            .end();
    }
    s.login = Login::Done(user);
}

/// After the snapshot's last chunk: JOIN of the room with its names, and
/// of each of the user's groups.
fn room_and_groups(s: &mut IrcSession, dir: &dyn Directory, config: &IrcConfig, out: &mut Vec<u8>) {
    let Some(me) = s.account() else { return };
    let mut room = std::mem::take(&mut s.names);
    room.sort();
    room.dedup();
    let full = s.caps.has(Caps::USERHOST_IN_NAMES);
    if config.room_presence {
        joined(out, (config, dir), (&me, full), &config.room_channel, &room);
    }
    for g in dir.groups_of(&me) {
        let members = dir.members(&g).unwrap_or_default();
        joined(out, (config, dir), (&me, full), &format!("#{g}"), &members);
    }
}

/// An OK: a guest's account made, a JOIN or a PART done.
fn ok(
    s: &mut IrcSession,
    reference: crate::id::Ref,
    dir: &dyn Directory,
    config: &IrcConfig,
    r: &mut Rendered,
) {
    let Some(me) = s.account() else {
        return;
    };
    let mut lines = Vec::new();
    let label = match s.answered(reference) {
        Some(Pending::Join {
            channel,
            group,
            label,
        }) => {
            let members = dir.members(&group).unwrap_or_default();
            let full = s.caps.has(Caps::USERHOST_IN_NAMES);
            joined(&mut lines, (config, dir), (&me, full), &channel, &members);
            r.bytes = gathered(s, label, lines, config);
            return;
        }
        Some(Pending::Part {
            channel,
            label,
            reason,
        }) => {
            let o = Out::new(&mut lines)
                .command(&source(&me), "PART")
                .param(&channel);
            match reason {
                Some(r) => o.trailing(&r),
                None => o.end(),
            }
            label
        }
        _ => None,
    };
    r.bytes = labeled(lines, label.as_deref(), s, config);
}

/// An ACK: with echo-message, the message as the others read it.
fn acked(
    s: &mut IrcSession,
    reference: crate::id::Ref,
    id: MessageId,
    timestamp_ms: u64,
    config: &IrcConfig,
    out: &mut Vec<u8>,
) {
    let Some(Pending::Send {
        target,
        body,
        kind,
        tags,
        label,
    }) = s.answered(reference)
    else {
        return;
    };
    let Some(me) = s.account() else { return };
    let mut lines = Vec::new();
    let m = StoredMessage {
        id,
        timestamp_ms,
        sender: me,
        target: Target::Room,
        body,
        kind,
        tags,
    };
    if s.caps.has(Caps::ECHO) {
        message_lines(&mut lines, s.caps.tags(), &m, &target, &[]);
    }
    out.extend(labeled(lines, label.as_deref(), s, config));
    // A message to oneself is also delivered to oneself (routing skips
    // the sending session, whose copy is this ACK).
    if target.eq_ignore_ascii_case(me.as_str()) {
        message_lines(out, s.caps.tags(), &m, &target, &[]);
    }
}

/// An ERROR: as the numeric or FAIL its request calls for.
fn refused(
    s: &mut IrcSession,
    reference: crate::id::Ref,
    error: &ProtocolError,
    config: &IrcConfig,
    r: &mut Rendered,
) {
    let me = s.me();
    let text = error.to_string();
    let out = &mut r.bytes;
    match s.answered(reference) {
        Some(Pending::Login { sasl: true }) => {
            s.sasl = super::session::Sasl::Idle;
            s.login = Login::None;
            numeric(out, config, "904", &me)
                .trailing(&format!("SASL authentication failed: {text}"));
        }
        Some(Pending::Register {
            user,
            command: true,
            ..
        }) => super::register::refused(s, &user, error, config, out),
        Some(Pending::Login { sasl: false } | Pending::Register { .. }) => {
            s.login = Login::None;
            let code = if error.code() == ErrorCode::NameTaken {
                "433"
            } else {
                "464"
            };
            numeric(out, config, code, &me).trailing(&text);
            Out::new(out)
                .command(&config.server, "ERROR")
                .trailing(&text);
            r.close = true;
        }
        Some(Pending::Send {
            target,
            label,
            kind,
            ..
        }) => {
            // A NOTICE is never answered with an error (RFC 2812 3.3.2).
            let lines = match kind {
                MessageKind::Notice => Vec::new(),
                MessageKind::Message => send_refused(s, "PRIVMSG", &target, error, config),
            };
            out.extend(labeled(lines, label.as_deref(), s, config));
        }
        Some(Pending::Join {
            channel,
            group,
            label,
        }) if error.code() == ErrorCode::GroupExists => {
            let again = Pending::Join {
                channel,
                group,
                label,
            };
            r.rejoin = s.remember(again).map(|reference| (reference, group));
        }
        Some(Pending::Join { channel, label, .. }) => {
            let lines = join_refused(s, &channel, error, config);
            out.extend(gathered(s, label, lines, config));
        }
        Some(Pending::Part { channel, label, .. }) => {
            let mut lines = Vec::new();
            numeric(&mut lines, config, "442", &me)
                .param(&channel)
                .trailing(&text);
            out.extend(labeled(lines, label.as_deref(), s, config));
        }
        Some(Pending::History { sub, target, label }) => {
            out.extend(history_refused(s, (&sub, &target), label, error, config));
        }
        None if error.is_fatal() => Out::new(out)
            .command(&config.server, "ERROR")
            .trailing(&text),
        None => fail(out, s, config, "*", &code_name(error), &text),
    }
}

/// A refused CHATHISTORY: INVALID_TARGET or MESSAGE_ERROR.
fn history_refused(
    s: &IrcSession,
    (sub, target): (&str, &str),
    label: Option<String>,
    error: &ProtocolError,
    config: &IrcConfig,
) -> Vec<u8> {
    let code = match error.code() {
        ErrorCode::NotAMember | ErrorCode::NoSuchGroup | ErrorCode::NoSuchUser => "INVALID_TARGET",
        _ => "MESSAGE_ERROR",
    };
    let mut lines = Vec::new();
    fail_with(
        &mut lines,
        s,
        config,
        "CHATHISTORY",
        &[code, sub, target],
        &error.to_string(),
    );
    labeled(lines, label.as_deref(), s, config)
}

/// A refused PRIVMSG or TAGMSG (`command`): 401 or 404 where IRC has
/// them, else a FAIL.
pub fn send_refused(
    s: &IrcSession,
    command: &str,
    target: &str,
    error: &ProtocolError,
    config: &IrcConfig,
) -> Vec<u8> {
    let (me, mut lines) = (s.me(), Vec::new());
    match error.code() {
        ErrorCode::NoSuchUser => numeric(&mut lines, config, "401", &me)
            .param(target)
            .trailing("No such nick"),
        ErrorCode::NotAMember | ErrorCode::NoSuchGroup => numeric(&mut lines, config, "404", &me)
            .param(target)
            .trailing("Cannot send to channel"),
        _ => fail(
            &mut lines,
            s,
            config,
            command,
            &code_name(error),
            &error.to_string(),
        ),
    }
    lines
}

/// A refused JOIN: 471 or 405 where IRC has them, else a FAIL.
fn join_refused(
    s: &IrcSession,
    channel: &str,
    error: &ProtocolError,
    config: &IrcConfig,
) -> Vec<u8> {
    let (me, text, mut lines) = (s.me(), error.to_string(), Vec::new());
    match error.code() {
        ErrorCode::GroupFull => numeric(&mut lines, config, "471", &me)
            .param(channel)
            .trailing(&text),
        ErrorCode::TooManyGroups => numeric(&mut lines, config, "405", &me)
            .param(channel)
            .trailing(&text),
        _ => fail(&mut lines, s, config, "JOIN", &code_name(error), &text),
    }
    lines
}

/// An error's code as a FAIL code: its confab name, upper case.
fn code_name(error: &ProtocolError) -> String {
    let mut name = String::new();
    for (i, c) in format!("{:?}", error.code()).chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name.split('(').next().unwrap_or("ERROR").to_owned()
}

/// A history page as a `chathistory` batch, oldest first.
fn page(
    s: &mut IrcSession,
    reference: crate::id::Ref,
    _target: &Target,
    entries: &[StoredMessage],
    config: &IrcConfig,
    out: &mut Vec<u8>,
) {
    let Some(Pending::History { target, label, .. }) = s.answered(reference) else {
        return;
    };
    let mut lines = Vec::new();
    let batch = s.caps.has(Caps::BATCH);
    let id = format!("H{}", reference.0);
    if batch {
        Out::new(&mut lines)
            .command(&config.server, "BATCH")
            .param(&format!("+{id}"))
            .param("chathistory")
            .param(&target)
            .end();
    }
    let tag = [("batch", id.as_str())];
    let extra: &[(&str, &str)] = if batch { &tag } else { &[] };
    // Oldest first, however the window was taken.
    let mut sorted: Vec<&StoredMessage> = entries.iter().collect();
    sorted.sort_by_key(|m| m.id);
    for m in sorted {
        let to = match &m.target {
            Target::User(u) => u.to_string(),
            other => channel_of(config, other),
        };
        message_lines(&mut lines, s.caps.tags(), m, &to, extra);
    }
    if batch {
        Out::new(&mut lines)
            .command(&config.server, "BATCH")
            .param(&format!("-{id}"))
            .end();
    }
    out.extend(labeled(lines, label.as_deref(), s, config));
}

/// `ms` as server-time, for replies that carry one.
pub fn time_tag(ms: u64) -> String {
    server_time(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_labeled_batch_leaves_the_lines_of_an_inner_batch_in_it() {
        let s = IrcSession {
            caps: Caps(Caps::LABELED | Caps::BATCH),
            ..IrcSession::default()
        };
        let config = IrcConfig::default();
        let inner = b":confab BATCH +H1 chathistory #c\r\n\
                      @batch=H1;time=T :a!a@confab PRIVMSG #c :hi\r\n\
                      :confab BATCH -H1\r\n"
            .to_vec();
        let out = String::from_utf8(labeled(inner, Some("x"), &s, &config)).unwrap_or_default();
        assert_eq!(
            out,
            "@label=x :confab BATCH +L0 labeled-response\r\n\
             @batch=L0 :confab BATCH +H1 chathistory #c\r\n\
             @batch=H1;time=T :a!a@confab PRIVMSG #c :hi\r\n\
             @batch=L0 :confab BATCH -H1\r\n\
             :confab BATCH -L0\r\n"
        );
        let ack = labeled(Vec::new(), Some("y"), &s, &config);
        assert_eq!(ack, b"@label=y :confab ACK\r\n");
    }
}
