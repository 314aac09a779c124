//! The headless commands' device side: `confab login --device`, how the
//! other commands log in without a password (a stored token, or
//! `CONFAB_TOKEN`), `confab devices`, and `confab send`'s resends across
//! reconnects.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use confab::json::device_json;
use confab::token_file::{self, StoredToken};
use confab::{Connection, ConnectionError, Login2Options};
use confab_engine::frame::{ErrorCode, Resume};
use confab_engine::{Name, Target, Token};
use serde_json::json;

use crate::{
    connect, parse_name, parse_secs, print_line, Account, Failure, EXIT_FAILURE, EXIT_REFUSED,
    EXIT_USAGE,
};

/// How often `confab send` connects again to get a message acknowledged.
const SEND_ATTEMPTS: u32 = 5;

#[derive(Args, Debug)]
pub(crate) struct LoginArgs {
    #[command(flatten)]
    account: Account,
    /// The device to log in as (created at its first login); its new token
    /// is stored in the config dir for the other commands.
    #[arg(long, env = "CONFAB_DEVICE", value_parser = parse_name)]
    device: Name,
    /// Also print the token (64 hex digits), e.g. for CONFAB_TOKEN.
    #[arg(long)]
    print_token: bool,
    /// Seconds to wait for each answer.
    #[arg(long, env = "CONFAB_TIMEOUT", value_parser = parse_secs, default_value = "10")]
    timeout: Duration,
}

#[derive(Args, Debug)]
pub(crate) struct DevicesArgs {
    #[command(flatten)]
    account: Account,
    /// Seconds to wait for the answer.
    #[arg(long, env = "CONFAB_TIMEOUT", value_parser = parse_secs, default_value = "10")]
    timeout: Duration,
    /// `revoke` to revoke the device NAME (default: list the devices).
    #[arg(value_parser = ["revoke"])]
    action: Option<String>,
    /// The device to revoke.
    #[arg(value_parser = parse_name)]
    name: Option<Name>,
}

/// How a command proves who it is.
pub(crate) enum Credential {
    /// `--password` / `CONFAB_PASSWORD`.
    Password(String),
    /// A device token, and where it came from (for messages).
    Token {
        /// The token.
        token: Token,
        /// `CONFAB_TOKEN`, or the file.
        source: String,
    },
}

/// The password if one was given, else `CONFAB_TOKEN`, else the token file
/// for this server and user.
pub(crate) fn credential(account: &Account) -> Result<Credential, Failure> {
    if let Some(p) = &account.password {
        return Ok(Credential::Password(p.clone()));
    }
    if let Some(hex) = std::env::var_os("CONFAB_TOKEN").filter(|v| !v.is_empty()) {
        let token = hex.to_str().and_then(Token::from_hex).ok_or(Failure {
            code: EXIT_USAGE,
            message: "CONFAB_TOKEN is not a device token (64 hex digits)".into(),
        })?;
        return Ok(Credential::Token {
            token,
            source: "CONFAB_TOKEN".into(),
        });
    }
    let path = path_of(account)?;
    match token_file::load(&path) {
        Ok(Some(t)) => Ok(Credential::Token {
            token: t.token,
            source: path.display().to_string(),
        }),
        Ok(None) => Err(Failure {
            code: EXIT_USAGE,
            message: format!(
                "no password (--password or CONFAB_PASSWORD) and no device token for {} on \
                 {}:{} (log in once with `confab login --device NAME`)",
                account.user, account.host, account.port
            ),
        }),
        Err(e) => Err(Failure {
            code: EXIT_FAILURE,
            message: format!("cannot read the token file {}: {e}", path.display()),
        }),
    }
}

fn path_of(account: &Account) -> Result<PathBuf, Failure> {
    let dir = token_file::tokens_dir().ok_or(Failure {
        code: EXIT_FAILURE,
        message: "no config dir for the token (set CONFAB_CONFIG_DIR or HOME)".into(),
    })?;
    Ok(token_file::token_path(
        &dir,
        &account.host,
        account.port,
        &account.user,
    ))
}

/// Logs in by token; a refused token says what to do about it.
pub(crate) fn login_token(
    c: &mut Connection,
    account: &Account,
    token: &Token,
    source: &str,
    options: Login2Options,
    timeout: Duration,
) -> Result<Name, Failure> {
    match c.login_token(account.user, token, options, timeout) {
        Ok(l) => Ok(l.user),
        Err(ConnectionError::Refused(e) | ConnectionError::ClosedWithError(e))
            if matches!(e.code, ErrorCode::BadCredentials | ErrorCode::DeviceRevoked) =>
        {
            Err(token_refused(source, &e.to_string()))
        }
        Err(e) => Err(Failure::from_connection("login", e)),
    }
}

fn token_refused(source: &str, why: &str) -> Failure {
    Failure {
        code: EXIT_REFUSED,
        message: format!(
            "the device token from {source} was refused ({why}): it is wrong, revoked or \
             expired; log in again with `confab login --device NAME`"
        ),
    }
}

/// `confab login --device NAME`.
pub(crate) fn login(a: LoginArgs) -> Result<(), Failure> {
    let Some(password) = a.account.password.clone() else {
        return Err(Failure {
            code: EXIT_USAGE,
            message: "confab login needs the password (--password or CONFAB_PASSWORD)".into(),
        });
    };
    let path = path_of(&a.account)?;
    let mut c = connect(&a.account, a.timeout)?;
    if a.account.register {
        match c.register(a.account.user, &password, a.timeout) {
            // Already registered: the login below tells whether it is ours.
            Ok(()) | Err(ConnectionError::Refused(_)) => {}
            Err(e) => return Err(Failure::from_connection("registration", e)),
        }
    }
    let options = Login2Options {
        resume: Resume::Device,
        roster: false,
    };
    let l = c
        .login_device(
            a.account.user,
            &password,
            a.device,
            true,
            options,
            a.timeout,
        )
        .map_err(|e| Failure::from_connection("login", e))?;
    let token = l.token.ok_or(Failure {
        code: EXIT_FAILURE,
        message: "the server issued no token".into(),
    })?;
    let stored = StoredToken {
        user: l.user,
        device: a.device,
        token,
    };
    token_file::save(&path, &stored).map_err(|e| Failure {
        code: EXIT_FAILURE,
        message: format!("cannot store the token in {}: {e}", path.display()),
    })?;
    let mut line = json!({
        "event": "token_stored",
        "user": l.user.as_str(),
        "device": a.device.as_str(),
        "path": path.display().to_string(),
    });
    if a.print_token {
        line["token"] = token.to_hex().into();
    }
    print_line(&line)?;
    let _ = c.logout(a.timeout);
    Ok(())
}

/// `confab devices [revoke NAME]`.
pub(crate) fn devices(a: DevicesArgs) -> Result<(), Failure> {
    let revoke = match (a.action.as_deref(), a.name) {
        (None, None) => None,
        (Some("revoke"), Some(name)) => Some(name),
        _ => {
            return Err(Failure {
                code: EXIT_USAGE,
                message: "usage: confab devices [revoke NAME]".into(),
            })
        }
    };
    let mut c = crate::open(&a.account, no_roster(), a.timeout)?.0;
    match revoke {
        Some(name) => {
            c.device_revoke(name, a.timeout)
                .map_err(|e| Failure::from_connection("device revoke", e))?;
            print_line(&json!({ "event": "revoked", "device": name.as_str() }))?;
        }
        None => {
            let devices = c
                .device_list(a.timeout)
                .map_err(|e| Failure::from_connection("device list", e))?;
            for d in &devices {
                print_line(&device_json(d))?;
            }
        }
    }
    let _ = c.logout(a.timeout);
    Ok(())
}

fn no_roster() -> confab::LoginOptions {
    confab::LoginOptions {
        resume_after: confab_engine::MessageId(0),
        roster: false,
    }
}

/// `confab send` with a device: SEND2, and after a lost connection the
/// unacknowledged message goes out again (same client id) on a new one,
/// at most [`SEND_ATTEMPTS`] times within a few timeouts.
pub(crate) struct Sender<'a> {
    account: &'a Account,
    token: Token,
    source: String,
    timeout: Duration,
    conn: Option<Connection>,
}

impl<'a> Sender<'a> {
    pub(crate) fn new(
        account: &'a Account,
        token: Token,
        source: String,
        timeout: Duration,
    ) -> Self {
        Sender {
            account,
            token,
            source,
            timeout,
            conn: None,
        }
    }

    fn open(&self) -> Result<Connection, Failure> {
        let mut c = connect(self.account, self.timeout)?;
        let options = Login2Options {
            resume: Resume::Device,
            roster: false,
        };
        login_token(
            &mut c,
            self.account,
            &self.token,
            &self.source,
            options,
            self.timeout,
        )?;
        Ok(c)
    }

    /// Sends one message; returns its id once the server acknowledged it.
    pub(crate) fn send(&mut self, to: Target, text: &str) -> Result<confab::Ack, Failure> {
        let mut c = match self.conn.take() {
            Some(c) => c,
            None => self.open_retrying()?,
        };
        let cause = match c.send(to, text, self.timeout) {
            Ok(ack) => {
                self.conn = Some(c);
                return Ok(ack);
            }
            Err(e @ ConnectionError::Refused(_)) => {
                return Err(Failure::from_connection("send", e))
            }
            Err(e) => e.to_string(),
        };
        self.resend(c, cause)
    }

    /// Opens a connection, trying again (as [`Sender::resend`] does) while
    /// the server is unreachable or busy; a refused login or a certificate
    /// problem is final.
    fn open_retrying(&self) -> Result<Connection, Failure> {
        let give_up = Instant::now() + self.timeout * SEND_ATTEMPTS;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.open() {
                Ok(c) => return Ok(c),
                Err(f) if f.code != EXIT_FAILURE => return Err(f),
                Err(f) if attempt >= SEND_ATTEMPTS || Instant::now() >= give_up => {
                    return Err(Failure {
                        code: f.code,
                        message: format!("{} (after {attempt} attempts)", f.message),
                    })
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200) * attempt),
            }
        }
    }

    fn resend(&mut self, mut old: Connection, mut cause: String) -> Result<confab::Ack, Failure> {
        let give_up = Instant::now() + self.timeout * SEND_ATTEMPTS;
        let mut outbox = old.take_outbox();
        drop(old);
        for attempt in 1..=SEND_ATTEMPTS {
            if Instant::now() >= give_up {
                break;
            }
            // A short pause that grows: the server may be restarting.
            std::thread::sleep(Duration::from_millis(200) * attempt);
            let mut c = match self.open() {
                Ok(c) => c,
                Err(f) if f.code != EXIT_FAILURE => return Err(f),
                Err(f) => {
                    cause = f.message;
                    continue;
                }
            };
            let settled = c
                .adopt_outbox(outbox.clone())
                .and_then(|()| c.settle_outbox(self.timeout));
            match settled {
                Ok(acks) => {
                    self.conn = Some(c);
                    return acks.last().copied().ok_or(Failure {
                        code: EXIT_FAILURE,
                        message: "the resent message got no ACK".into(),
                    });
                }
                Err(e @ ConnectionError::Refused(_)) => {
                    return Err(Failure::from_connection("send", e))
                }
                Err(e) => {
                    cause = e.to_string();
                    outbox = c.take_outbox();
                }
            }
        }
        Err(Failure {
            code: EXIT_FAILURE,
            message: format!(
                "the message was not acknowledged after {SEND_ATTEMPTS} attempts; the last \
                 problem: {cause}"
            ),
        })
    }

    /// Logs out politely, if connected.
    pub(crate) fn finish(mut self) {
        if let Some(c) = self.conn.as_mut() {
            let _ = c.logout(self.timeout);
        }
    }
}
