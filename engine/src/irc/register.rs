//! `draft/account-registration`: `REGISTER <account> <email> <password>`
//! before the connection completes (confab logs every IRC session in to
//! an account, so there is no "after": a connected client is logged in
//! already). The account is the nick (no `custom-account-name`); email is
//! not asked for and ignored. The account is made by the hub's REGISTER,
//! under its limits, then logged in to with the password, as a guest is;
//! `REGISTER SUCCESS` answers (see `hub::irc`), a refusal is `FAIL REGISTER`.

use crate::password::Password;

use super::line::{Line, Out};
use super::session::{IrcSession, Login};
use super::{Act, IrcConfig};

/// The cap, and its value for `CAP LS 302`.
pub const CAP_VALUE: &str = "before-connect";

/// REGISTER (see the module docs).
pub fn register(s: &mut IrcSession, line: &Line<'_>, config: &IrcConfig, acts: &mut Vec<Act<'_>>) {
    let mut out = Vec::new();
    if line.params.len() < 3 {
        Out::new(&mut out)
            .command(&config.server, "461")
            .param(&s.me())
            .param("REGISTER")
            .trailing("Not enough parameters");
        return reply(acts, out);
    }
    let asked = line.param(0);
    // Without `custom-account-name` an account other than the nick is
    // refused as such, whether or not the session is logged in already.
    if s.nick.or(s.account()).is_some_and(|n| !names_it(asked, &n)) {
        let text = "The account name must be your nick";
        fail(&mut out, config, "ACCOUNT_NAME_MUST_BE_NICK", asked, text);
        return reply(acts, out);
    }
    if let Some(account) = s.account() {
        let text = format!("You are already logged in as {account}");
        fail(
            &mut out,
            config,
            "ALREADY_AUTHENTICATED",
            account.as_str(),
            &text,
        );
        return reply(acts, out);
    }
    if s.login == Login::Pending {
        fail(
            &mut out,
            config,
            "ALREADY_AUTHENTICATED",
            asked,
            "A login is under way",
        );
        return reply(acts, out);
    }
    let Some(nick) = s.nick else {
        fail(
            &mut out,
            config,
            "NEED_NICK",
            asked,
            "Send NICK first: the account is the nick",
        );
        return reply(acts, out);
    };
    let password = line.param(2);
    if Password::new(password).is_none() {
        let text = format!(
            "Passwords are {} to {} bytes",
            Password::MIN_LEN,
            Password::MAX_LEN
        );
        fail(
            &mut out,
            config,
            "UNACCEPTABLE_PASSWORD",
            nick.as_str(),
            &text,
        );
        return reply(acts, out);
    }
    s.login = Login::Pending;
    acts.push(Act::Register {
        user: nick,
        password: password.to_owned(),
        command: true,
    });
}

/// Queues `out` as a reply (it is never empty here).
fn reply(acts: &mut Vec<Act<'_>>, out: Vec<u8>) {
    acts.push(Act::Reply(out));
}

/// The hub refused the REGISTER of `user`: `FAIL REGISTER`, and the
/// client may log in or register again.
pub fn refused(
    s: &mut IrcSession,
    user: &crate::name::Name,
    error: &crate::error::ProtocolError,
    config: &IrcConfig,
    out: &mut Vec<u8>,
) {
    s.login = Login::None;
    let code = refusal_code(error.code());
    fail(out, config, code, user.as_str(), &error.to_string());
}

/// `FAIL REGISTER <code> <account> :text`.
pub fn fail(out: &mut Vec<u8>, config: &IrcConfig, code: &str, account: &str, text: &str) {
    Out::new(out)
        .command(&config.server, "FAIL")
        .param("REGISTER")
        .param(code)
        .param(account)
        .trailing(text);
}

/// `REGISTER SUCCESS <account> :text`.
pub fn success(config: &IrcConfig, account: &str) -> Vec<u8> {
    let mut out = Vec::new();
    Out::new(&mut out)
        .command(&config.server, "REGISTER")
        .param("SUCCESS")
        .param(account)
        .trailing("Account created");
    out
}

/// The `FAIL REGISTER` code of a refusal by the hub.
pub fn refusal_code(code: crate::frame::ErrorCode) -> &'static str {
    use crate::frame::ErrorCode;
    match code {
        ErrorCode::NameTaken => "ACCOUNT_EXISTS",
        ErrorCode::BadCredentials => "UNACCEPTABLE_PASSWORD",
        _ => "TEMPORARILY_UNAVAILABLE",
    }
}

/// Whether REGISTER's `asked` account names `nick`'s (`*` is the nick).
fn names_it(asked: &str, nick: &crate::name::Name) -> bool {
    asked == "*" || asked.eq_ignore_ascii_case(nick.as_str())
}
