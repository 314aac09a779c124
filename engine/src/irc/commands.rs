//! What each IRC command does: registration (CAP, NICK, USER, PASS,
//! AUTHENTICATE) before login, then the commands of a logged-in client,
//! each as [`Act`]s for the hub. Nothing here blocks or allocates beyond
//! the line's own answer; every refusal is the standard numeric, or a
//! FAIL where IRC has none.

use crate::name::Name;
use crate::request::Request;

use super::codec::source;
use super::line::{Line, Out};
use super::queries::{list, members, mode, topic, who, whois};
use super::replies::{labeled, motd, names, numeric, reply, welcome, Directory};
use super::session::{base64_decode, sasl_plain, Caps, IrcSession, Login, Sasl};
use super::session::{CAPS, SASL_MAX};
use super::{Act, IrcConfig, LoginAsk};

/// The most bytes of a QUIT reason shown to others (ISUPPORT has no
/// QUITLEN; 300 is what most servers allow).
const QUIT_REASON_MAX: usize = 300;
/// The default device of a login that names none.
pub const DEFAULT_DEVICE: &str = "irc";

/// Acts on one client line.
pub fn command<'a>(
    s: &mut IrcSession,
    line: &Line<'a>,
    dir: &dyn Directory,
    config: &IrcConfig,
    acts: &mut Vec<Act<'a>>,
) {
    let cmd = line.command.to_ascii_uppercase();
    match cmd.as_str() {
        "CAP" => cap(s, line, config, dir.registration_open(), acts),
        "NICK" => nick(s, line, config, acts),
        "USER" | "PING" if line.params.len() < if cmd == "USER" { 4 } else { 1 } => {
            let mut out = Vec::new();
            numeric(&mut out, config, "461", &s.me())
                .param(&cmd)
                .trailing("Not enough parameters");
            acts.push(Act::Reply(out));
        }
        "USER" if line.param(3).is_empty() => {
            let mut out = Vec::new();
            numeric(&mut out, config, "461", &s.me())
                .param("USER")
                .trailing("The real name may not be empty");
            acts.push(Act::Reply(out));
        }
        "USER" => {
            if !s.welcomed && !s.user_given {
                s.realname = line.param(3).to_owned();
            }
            user(s, config, acts)
        }
        "PASS" => s.pass = Some(line.param(0).to_owned()),
        "AUTHENTICATE" => authenticate(s, line, config, acts),
        "REGISTER" => super::register::register(s, line, config, acts),
        "PING" => acts.push(Act::Synced(pong(s, line, config))),
        "PONG" => {
            if let Ok(token) = line.param(line.params.len().saturating_sub(1)).parse() {
                acts.push(Act::Request(Request::Pong { token }, None));
            }
            // A labeled command without an answer is answered with an ACK.
            if line.tag("label").is_some() {
                reply(acts, labeled(Vec::new(), line.tag("label"), s, config));
            }
        }
        "QUIT" => {
            // Cut to QUIT_REASON_MAX bytes (at a character), so the relayed
            // line stays within 512 whatever the nick.
            let reason = line.param(0);
            let mut end = reason.len().min(QUIT_REASON_MAX);
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            let reason = &reason[..end];
            s.quit = (!reason.is_empty()).then(|| format!("Quit: {reason}").into());
            let mut out = Vec::new();
            Out::new(&mut out)
                .command(&config.server, "ERROR")
                .trailing("Closing link (quit)");
            acts.push(Act::Close(out));
        }
        _ if s.welcomed => registered(s, &cmd, line, dir, config, acts),
        _ => {
            let mut out = Vec::new();
            numeric(&mut out, config, "451", &s.me()).trailing("You have not registered");
            acts.push(Act::Reply(out));
        }
    }
}

/// The PONG to a PING (sent through the hub's barrier).
fn pong(s: &IrcSession, line: &Line<'_>, config: &IrcConfig) -> Vec<u8> {
    let mut out = Vec::new();
    Out::new(&mut out)
        .command(&config.server, "PONG")
        .param(&config.server)
        .trailing(line.param(0));
    labeled(out, line.tag("label"), s, config)
}

/// CAP LS, LIST, REQ and END; `draft/account-registration` is offered
/// only while `registering` (registration is open).
fn cap(
    s: &mut IrcSession,
    line: &Line<'_>,
    config: &IrcConfig,
    registering: bool,
    acts: &mut Vec<Act<'_>>,
) {
    let me = s.me();
    let mut out = Vec::new();
    let o = Out::new(&mut out).command(&config.server, "CAP").param(&me);
    match line.param(0).to_ascii_uppercase().as_str() {
        "LS" => {
            s.negotiating |= !s.welcomed;
            let v302 = line.param(1).parse::<u32>().is_ok_and(|v| v >= 302);
            let list: Vec<String> = CAPS
                .iter()
                .filter(|(_, b)| registering || *b != Caps::ACCOUNT_REGISTRATION)
                .map(|(n, _)| match *n {
                    "sasl" if v302 => "sasl=PLAIN".to_owned(),
                    "draft/account-registration" if v302 => {
                        format!("{n}={}", super::register::CAP_VALUE)
                    }
                    n => n.to_owned(),
                })
                .collect();
            o.param("LS").trailing(&list.join(" "));
        }
        "LIST" => o.param("LIST").trailing(&s.caps.names()),
        "REQ" => {
            s.negotiating |= !s.welcomed;
            let asked = line.param(1);
            match requested(s.caps, asked) {
                Some(caps) => {
                    s.caps = caps;
                    o.param("ACK").trailing(asked);
                    acts.push(Act::Tags(caps.tags()));
                }
                None => o.param("NAK").trailing(asked),
            }
        }
        "END" => {
            s.negotiating = false;
            // Registration ends an unfinished SASL exchange: aborted
            // (906), and registration goes on without it.
            if matches!(s.sasl, Sasl::Reading(_)) {
                s.sasl = Sasl::Idle;
                let mut out = Vec::new();
                numeric(&mut out, config, "906", &me).trailing("SASL authentication aborted");
                reply(acts, out);
            }
            return finish_registration(s, config, acts);
        }
        _ => {
            let mut out = Vec::new();
            numeric(&mut out, config, "410", &me)
                .param(line.param(0))
                .trailing("Invalid CAP command");
            return reply(acts, out);
        }
    }
    reply(acts, out);
}

/// The caps after a `CAP REQ` of `asked` (`-cap` removes), or `None` if
/// one is not offered (the request is then refused whole).
fn requested(mut caps: Caps, asked: &str) -> Option<Caps> {
    for name in asked.split(' ').filter(|n| !n.is_empty()) {
        let (remove, name) = match name.strip_prefix('-') {
            Some(n) => (true, n),
            None => (false, name),
        };
        let bit = Caps::bit(name)?;
        if remove {
            caps.0 &= !bit;
        } else {
            caps.0 |= bit;
        }
    }
    Some(caps)
}

/// NICK: before login, the account to be; after it, only the account's own.
fn nick(s: &mut IrcSession, line: &Line<'_>, config: &IrcConfig, acts: &mut Vec<Act<'_>>) {
    let me = s.me();
    let asked = line.param(0);
    let mut out = Vec::new();
    if asked.is_empty() {
        numeric(&mut out, config, "431", &me).trailing("No nickname given");
        return reply(acts, out);
    }
    let Ok(name) = Name::new(asked) else {
        numeric(&mut out, config, "432", &me)
            .param(asked)
            .trailing("Erroneous nickname");
        return reply(acts, out);
    };
    if let Some(account) = s.account().filter(|_| s.welcomed) {
        if account.as_str() != name.as_str() {
            numeric(&mut out, config, "447", &me)
                .trailing("Cannot change nickname: the nick is the account name");
        }
        return reply(acts, out);
    }
    s.nick = Some(name);
    finish_registration(s, config, acts);
}

/// USER: once, before registration ends.
fn user(s: &mut IrcSession, config: &IrcConfig, acts: &mut Vec<Act<'_>>) {
    if s.welcomed || s.user_given {
        let mut out = Vec::new();
        numeric(&mut out, config, "462", &s.me()).trailing("You may not reregister");
        return reply(acts, out);
    }
    s.user_given = true;
    finish_registration(s, config, acts);
}

/// AUTHENTICATE: SASL PLAIN, the response in 400-byte chunks.
fn authenticate(s: &mut IrcSession, line: &Line<'_>, config: &IrcConfig, acts: &mut Vec<Act<'_>>) {
    let me = s.me();
    let arg = line.param(0);
    let mut out = Vec::new();
    // Once registered without SASL, no SASL: the nick is the account, and
    // a session does not change accounts (462, which irctest reads as
    // "SASL after registration" not supported).
    if s.welcomed && !s.by_sasl {
        numeric(&mut out, config, "462", &me).trailing("You may not reregister");
        return reply(acts, out);
    }
    if s.account().is_some() || s.login == Login::Pending && s.sasl == Sasl::Idle {
        numeric(&mut out, config, "907", &me).trailing("You have already authenticated");
        return reply(acts, out);
    }
    if arg == "*" {
        s.sasl = Sasl::Idle;
        numeric(&mut out, config, "906", &me).trailing("SASL authentication aborted");
        return reply(acts, out);
    }
    match std::mem::take(&mut s.sasl) {
        Sasl::Idle if arg.eq_ignore_ascii_case("PLAIN") => {
            s.sasl = Sasl::Reading(String::new());
            Out::new(&mut out).bare("AUTHENTICATE").param("+").end();
        }
        Sasl::Idle => {
            numeric(&mut out, config, "908", &me)
                .param("PLAIN")
                .trailing("are available SASL mechanisms");
            numeric(&mut out, config, "904", &me).trailing("SASL authentication failed");
        }
        Sasl::Reading(mut so_far) => {
            if arg != "+" {
                so_far.push_str(arg);
            }
            if arg.len() > 400 {
                numeric(&mut out, config, "905", &me).trailing("SASL message too long");
            } else if so_far.len() > SASL_MAX {
                numeric(&mut out, config, "904", &me)
                    .trailing("SASL authentication failed: the response is too long");
            } else if arg.len() == 400 {
                s.sasl = Sasl::Reading(so_far);
            } else {
                return sasl_response(s, &so_far, config, acts);
            }
        }
        Sasl::Checking => {
            s.sasl = Sasl::Checking;
            numeric(&mut out, config, "907", &me).trailing("SASL authentication in progress");
        }
    }
    reply(acts, out);
}

/// The whole PLAIN response: a login, or 904.
fn sasl_response(s: &mut IrcSession, response: &str, config: &IrcConfig, acts: &mut Vec<Act<'_>>) {
    let parsed = base64_decode(response).and_then(|raw| sasl_plain(&raw));
    let Some((user, device, password)) = parsed else {
        let mut out = Vec::new();
        numeric(&mut out, config, "904", &s.me())
            .trailing("SASL authentication failed: not a PLAIN response");
        return reply(acts, out);
    };
    if password.len() > crate::password::Password::MAX_LEN {
        // No account has one: say why rather than hash it.
        let mut out = Vec::new();
        numeric(&mut out, config, "904", &s.me()).trailing(&format!(
            "SASL authentication failed: passwords are at most {} bytes",
            crate::password::Password::MAX_LEN
        ));
        return reply(acts, out);
    }
    s.sasl = Sasl::Checking;
    s.login = Login::Pending;
    acts.push(login_act(s, user, device, password, true));
}

fn login_act<'a>(
    s: &IrcSession,
    user: Name,
    device: Option<Name>,
    password: String,
    sasl: bool,
) -> Act<'a> {
    let device = device.unwrap_or_else(|| Name::new(DEFAULT_DEVICE).unwrap_or(user));
    Act::Login(LoginAsk {
        user,
        password,
        device,
        replay: !s.caps.has(Caps::CHATHISTORY),
        sasl,
    })
}

/// Once NICK and USER are in and CAP is over: log in by PASS (or as a
/// guest) if SASL did not, and welcome a logged-in client.
fn finish_registration(s: &mut IrcSession, config: &IrcConfig, acts: &mut Vec<Act<'_>>) {
    if !s.registration_done() || s.welcomed {
        return;
    }
    match s.login {
        Login::Done(user) => return welcome_now(s, user, config, acts),
        Login::Pending => return,
        Login::None => {}
    }
    let Some(nick) = s.nick else { return };
    let pass = s.pass.take();
    match pass {
        Some(p) => {
            let (user, device, password) = match p.split_once(':') {
                Some((u, pw)) => {
                    let (u, d) = u
                        .split_once('@')
                        .map_or((u, None), |(u, d)| (u, Name::new(d).ok()));
                    (Name::new(u).unwrap_or(nick), d, pw.to_owned())
                }
                None => (nick, None, p),
            };
            s.login = Login::Pending;
            acts.push(login_act(s, user, device, password, false));
        }
        None if config.guests => {
            s.login = Login::Pending;
            acts.push(Act::Register {
                user: nick,
                password: format!("guest-{}", nick.as_str().to_ascii_lowercase()),
                command: false,
            });
        }
        None => {
            let mut out = Vec::new();
            numeric(&mut out, config, "464", &s.me())
                .trailing("Log in with SASL PLAIN, or PASS account:password");
            Out::new(&mut out)
                .command(&config.server, "ERROR")
                .trailing("Authentication required");
            acts.push(Act::Close(out));
        }
    }
}

/// The welcome, then what was drained while registration went on.
pub fn welcome_now(s: &mut IrcSession, user: Name, config: &IrcConfig, acts: &mut Vec<Act<'_>>) {
    let mut out = Vec::new();
    if s.nick.is_some_and(|n| n.as_str() != user.as_str()) {
        Out::new(&mut out)
            .command(&source(&s.nick.unwrap_or(user)), "NICK")
            .param(user.as_str())
            .end();
    }
    s.nick = Some(user);
    s.welcomed = true;
    welcome(&mut out, config, user.as_str());
    out.append(&mut s.held);
    acts.push(Act::Reply(out));
}

/// The commands of a registered client.
fn registered<'a>(
    s: &mut IrcSession,
    cmd: &str,
    line: &Line<'a>,
    dir: &dyn Directory,
    config: &IrcConfig,
    acts: &mut Vec<Act<'a>>,
) {
    let Some(me) = s.account() else { return };
    let label = line.tag("label");
    let mut out = Vec::new();
    match cmd {
        "PRIVMSG" | "NOTICE" => return super::sends::privmsg(s, cmd, line, config, acts),
        "TAGMSG" => return super::sends::tagmsg(s, line, config, acts),
        "JOIN" => return super::channels::join(s, line, dir, config, acts),
        "PART" => return super::channels::part(s, line, dir, config, acts),
        "CHATHISTORY" => return super::history::chathistory(s, line, config, acts),
        "NAMES" => {
            let channel = line.param(0);
            let members = members(dir, config, channel).unwrap_or_default();
            let full = s.caps.has(Caps::USERHOST_IN_NAMES);
            names(
                &mut out,
                (config, dir),
                (me.as_str(), full),
                channel,
                &members,
            );
        }
        "WHO" => who(&mut out, dir, config, &me, line.param(0)),
        "WHOIS" => whois(
            &mut out,
            dir,
            config,
            (&me, &s.realname),
            line.param(line.params.len().saturating_sub(1)),
        ),
        "TOPIC" => topic(&mut out, config, &me, line),
        "LIST" => list(&mut out, dir, config, &me),
        "MOTD" => motd(&mut out, config, me.as_str()),
        "AWAY" => {
            let (code, text) = match line.param(0) {
                "" => ("305", "You are no longer marked as being away"),
                _ => ("306", "You have been marked as being away"),
            };
            numeric(&mut out, config, code, me.as_str()).trailing(text);
        }
        "MODE" => mode(&mut out, config, &me, line),
        "INVITE" => super::invite::invite(&mut out, acts, (dir, config), &me, line),
        "USERHOST" | "ISON" | "KICK" | "OPER" | "KILL" => {
            numeric(&mut out, config, "421", me.as_str())
                .param(cmd)
                .trailing("Not supported by this gateway");
        }
        _ => {
            numeric(&mut out, config, "421", me.as_str())
                .param(line.command)
                .trailing("Unknown command");
        }
    }
    acts.push(Act::Reply(labeled(out, label, s, config)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::MessageId;
    use crate::irc::line::{parse, Parsed};

    #[test]
    fn cap_end_during_sasl_aborts_it_with_906_and_registers() {
        let config = IrcConfig {
            guests: true,
            ..IrcConfig::default()
        };
        let dir = Nobody;
        let mut s = IrcSession::default();
        let (mut replies, mut registers) = (Vec::new(), false);
        for text in [
            "CAP REQ :sasl",
            "AUTHENTICATE PLAIN",
            "NICK reg",
            "USER r 0 * :R",
            "CAP END",
        ] {
            let raw = format!("{text}\r\n");
            let Ok(Parsed::Line(line, _)) = parse(raw.as_bytes()) else {
                panic!("not a line: {text}")
            };
            let mut acts = Vec::new();
            command(&mut s, &line, &dir, &config, &mut acts);
            for a in acts {
                match a {
                    Act::Reply(b) => replies.push(String::from_utf8_lossy(&b).into_owned()),
                    Act::Register { .. } => registers = true,
                    _ => {}
                }
            }
        }
        assert_eq!(s.sasl, Sasl::Idle);
        assert!(
            replies
                .iter()
                .any(|r| r == ":confab 906 reg :SASL authentication aborted\r\n"),
            "{replies:?}"
        );
        assert!(registers, "{replies:?}");
    }

    /// A directory of nobody.
    struct Nobody;

    impl Directory for Nobody {
        fn online(&self) -> Vec<Name> {
            Vec::new()
        }
        fn members(&self, _: &Name) -> Option<Vec<Name>> {
            None
        }
        fn groups_of(&self, _: &Name) -> Vec<Name> {
            Vec::new()
        }
        fn groups(&self) -> Vec<(Name, usize)> {
            Vec::new()
        }
        fn last_id(&self) -> MessageId {
            MessageId(0)
        }
        fn moderates(&self, _: &Name, _: &Name) -> bool {
            false
        }
    }
}
