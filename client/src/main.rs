//! `confab`: the command-line client (client/README.md documents the
//! commands, the JSON lines and the exit codes).

use std::io::{self, BufRead, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::builder::FalseyValueParser;
use clap::{ArgAction, Args, Parser, Subcommand};
use confab::address::{format_target, parse_target};
use confab::json::{event_json, group_json, message_json};
use confab::tls::{TlsConfig, Trust};
use confab::{Connection, ConnectionError, Event, Login2Options, LoginOptions, Security};
use confab_engine::frame::ModAction;
use confab_engine::frame::{ErrorCode, Resume};
use confab_engine::{MessageId, Name, Target};
use serde_json::{json, Value};

mod device_cli;
mod moderation_cli;
mod tui;

/// Success.
const EXIT_OK: u8 = 0;
/// Cannot connect, connection lost, protocol error, no answer in time.
const EXIT_FAILURE: u8 = 1;
/// The server refused a request (bad credentials, no such user, ...).
const EXIT_REFUSED: u8 = 2;
/// The server announced SHUTDOWN.
const EXIT_SHUTDOWN: u8 = 3;
/// The server's certificate is not the one pinned for it.
const EXIT_CERT_CHANGED: u8 = 4;
/// The server's certificate is refused (expired, wrong name, unknown CA).
const EXIT_CERT_INVALID: u8 = 5;
/// The command line is wrong.
const EXIT_USAGE: u8 = 64;

#[derive(Parser, Debug)]
#[command(
    name = "confab",
    version,
    about = "The confab chat client: without a command, the terminal UI (client/TUI.md)"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    tui: tui::Options,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Log in and print every event as one JSON object per line.
    Listen(ListenArgs),
    /// Send a message (or, with TEXT `-`, one per line of standard input)
    /// and print each stored message's id.
    Send(SendArgs),
    /// Create, join, leave or list groups.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Print a page of a conversation's stored messages as JSON lines,
    /// oldest first.
    History(HistoryArgs),
    /// Log in by password as a device and store its new token in the
    /// config dir: later commands without a password use it.
    Login(device_cli::LoginArgs),
    /// Print the account's devices as JSON lines, or `revoke NAME`.
    Devices(device_cli::DevicesArgs),
    /// (Server operators) close a user's sessions with a reason they see.
    Kick(moderation_cli::ModerateArgs),
    /// (Server operators) close a user's sessions and refuse their logins.
    Ban(moderation_cli::ModerateArgs),
    /// (Server operators) lift a ban.
    Unban(moderation_cli::ModerateArgs),
    /// (Server operators) refuse a user's messages.
    Mute(moderation_cli::ModerateArgs),
    /// (Server operators) lift a mute.
    Unmute(moderation_cli::ModerateArgs),
    /// (Server operators) delete a message by id: everyone who sees it is
    /// told to hide it; history keeps a tombstone.
    Delete(moderation_cli::DeleteArgs),
    /// (Server operators) send a server notice to everyone logged in.
    Announce(moderation_cli::AnnounceArgs),
    /// (Server operators) close the sessions from an address or CIDR block
    /// and turn its connections away.
    BanAddress(moderation_cli::AddressArgs),
    /// (Server operators) lift the ban of an address or CIDR block.
    UnbanAddress(moderation_cli::AddressArgs),
}

#[derive(Subcommand, Debug)]
enum GroupCommand {
    /// Create a group and become its first member.
    Create(GroupArgs),
    /// Join a group.
    Join(GroupArgs),
    /// Leave a group.
    Leave(GroupArgs),
    /// Print every group as one JSON object per line.
    List(GroupListArgs),
    /// (The group's owner or moderators, or server operators) take a member out.
    Remove(moderation_cli::GroupModArgs),
    /// (The group's owner or moderators, or server operators) refuse a member's messages to the group.
    Mute(moderation_cli::GroupModArgs),
    /// (The group's owner or moderators, or server operators) lift that.
    Unmute(moderation_cli::GroupModArgs),
    /// (The group's owner, or server operators) make a member a moderator.
    Appoint(moderation_cli::GroupModArgs),
    /// (The group's owner, or server operators) take that back.
    Dismiss(moderation_cli::GroupModArgs),
}

/// Where to connect and who to be.
#[derive(Args, Debug)]
struct Account {
    /// Server host.
    #[arg(long, env = "CONFAB_HOST", default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(long, env = "CONFAB_PORT", default_value_t = 7878)]
    port: u16,
    #[command(flatten)]
    tls: TlsArgs,
    /// Account name (1-32 of [A-Za-z0-9_.-], starting with a letter or digit).
    #[arg(long, env = "CONFAB_USER", value_parser = parse_name)]
    user: Name,
    /// Password (prefer the environment variable: arguments are visible to
    /// other users). Without one, the device token stored by `confab login
    /// --device` for this server and user is used, or CONFAB_TOKEN (hex).
    #[arg(long, env = "CONFAB_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Register the account first; a NAME_TAKEN answer is fine if the
    /// password then logs in.
    #[arg(long, env = "CONFAB_REGISTER", action = ArgAction::SetTrue,
          value_parser = FalseyValueParser::new())]
    register: bool,
}

/// Whether and how to use TLS (shared with the terminal UI).
#[derive(Args, Debug, Clone)]
pub(crate) struct TlsArgs {
    /// Connect with TLS 1.3. The certificate must chain to the system's
    /// roots, or else it is trusted on first use and pinned in
    /// known_servers in the config dir (CONFAB_CONFIG_DIR, else
    /// $XDG_CONFIG_HOME/confab or ~/.config/confab).
    #[arg(long, env = "CONFAB_TLS", action = ArgAction::SetTrue,
          value_parser = FalseyValueParser::new())]
    tls: bool,
    /// Trust only this CA certificate (PEM) for TLS; implies --tls.
    #[arg(long, env = "CONFAB_CA", value_name = "FILE")]
    ca: Option<std::path::PathBuf>,
}

impl TlsArgs {
    /// Plain TCP, or TLS as asked.
    pub(crate) fn security(&self) -> Result<Security, String> {
        if !self.tls && self.ca.is_none() {
            return Ok(Security::Plain);
        }
        let config = TlsConfig::from_options(self.ca.as_deref()).map_err(|e| e.to_string())?;
        Ok(Security::Tls(std::sync::Arc::new(config)))
    }
}

#[derive(Args, Debug)]
struct ListenArgs {
    #[command(flatten)]
    account: Account,
    /// Exit 0 after printing this many lines (every line counts, `logged_in` included).
    #[arg(long, env = "CONFAB_COUNT")]
    count: Option<u64>,
    /// Exit 0 after this many seconds (default: run until the server closes).
    #[arg(long, env = "CONFAB_TIMEOUT", value_parser = parse_secs)]
    timeout: Option<Duration>,
    /// The last message id already seen: the server replays newer ones first.
    #[arg(long, env = "CONFAB_RESUME_AFTER", default_value_t = MessageId(0))]
    resume_after: MessageId,
    /// Do not subscribe to presence (no roster, online or offline lines).
    #[arg(long, env = "CONFAB_NO_ROSTER", action = ArgAction::SetTrue,
          value_parser = FalseyValueParser::new())]
    no_roster: bool,
}

#[derive(Args, Debug)]
struct SendArgs {
    #[command(flatten)]
    account: Account,
    /// Where to: `all` (the room), `@user` or `#group`.
    #[arg(long, env = "CONFAB_TO", value_parser = parse_to)]
    to: Target,
    /// Seconds to wait for each answer.
    #[arg(long, env = "CONFAB_TIMEOUT", value_parser = parse_secs, default_value = "10")]
    timeout: Duration,
    /// The message; `-` sends each non-empty line of standard input.
    text: String,
}

#[derive(Args, Debug)]
struct GroupArgs {
    #[command(flatten)]
    account: Account,
    /// Seconds to wait for the answer.
    #[arg(long, env = "CONFAB_TIMEOUT", value_parser = parse_secs, default_value = "10")]
    timeout: Duration,
    /// The group's name.
    #[arg(value_parser = parse_name)]
    group: Name,
}

#[derive(Args, Debug)]
struct GroupListArgs {
    #[command(flatten)]
    account: Account,
    /// Seconds to wait for the answer.
    #[arg(long, env = "CONFAB_TIMEOUT", value_parser = parse_secs, default_value = "10")]
    timeout: Duration,
}

#[derive(Args, Debug)]
struct HistoryArgs {
    #[command(flatten)]
    account: Account,
    /// The conversation: `all`, `@user` (direct messages with them) or `#group`.
    #[arg(long, env = "CONFAB_TO", value_parser = parse_to)]
    to: Target,
    /// Only messages with an id below this (0: from the newest).
    #[arg(long, env = "CONFAB_BEFORE", default_value_t = MessageId(0))]
    before: MessageId,
    /// At most this many messages (the server caps it).
    #[arg(long, env = "CONFAB_LIMIT", default_value_t = 50)]
    limit: u16,
    /// Seconds to wait for the answer.
    #[arg(long, env = "CONFAB_TIMEOUT", value_parser = parse_secs, default_value = "10")]
    timeout: Duration,
}

fn parse_name(s: &str) -> Result<Name, String> {
    Name::new(s).map_err(|e| e.to_string())
}

fn parse_to(s: &str) -> Result<Target, String> {
    parse_target(s).map_err(|e| e.to_string())
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is not a duration in seconds"))
}

/// Why the command failed: an exit code and a message for standard error.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// A connection error, with `context` (what was being done) in front
    /// of a refusal.
    fn from_connection(context: &str, e: ConnectionError) -> Failure {
        let code = match &e {
            ConnectionError::Refused(_) => EXIT_REFUSED,
            ConnectionError::Shutdown { .. } => EXIT_SHUTDOWN,
            ConnectionError::CertificateChanged { .. } => EXIT_CERT_CHANGED,
            ConnectionError::CertificateInvalid { .. } => EXIT_CERT_INVALID,
            _ => EXIT_FAILURE,
        };
        let message = match &e {
            ConnectionError::Refused(_) => format!("{context} refused: {e}"),
            _ => e.to_string(),
        };
        Failure { code, message }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    let result = match cli.command {
        None => tui::run(cli.tui).map_err(|message| Failure {
            code: EXIT_FAILURE,
            message,
        }),
        Some(Command::Listen(a)) => listen(a),
        Some(Command::Send(a)) => send(a),
        Some(Command::Group(g)) => group(g),
        Some(Command::History(a)) => history(a),
        Some(Command::Login(a)) => device_cli::login(a),
        Some(Command::Devices(a)) => device_cli::devices(a),
        Some(Command::Kick(a)) => moderation_cli::moderate(ModAction::Kick, a),
        Some(Command::Ban(a)) => moderation_cli::moderate(ModAction::Ban, a),
        Some(Command::Unban(a)) => moderation_cli::moderate(ModAction::Unban, a),
        Some(Command::Mute(a)) => moderation_cli::moderate(ModAction::Mute, a),
        Some(Command::Unmute(a)) => moderation_cli::moderate(ModAction::Unmute, a),
        Some(Command::Delete(a)) => moderation_cli::delete(a),
        Some(Command::Announce(a)) => moderation_cli::announce(a),
        Some(Command::BanAddress(a)) => moderation_cli::ban_address(false, a),
        Some(Command::UnbanAddress(a)) => moderation_cli::ban_address(true, a),
    };
    match result {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(f) => {
            eprintln!("confab: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// Connects (telling about a certificate trusted on first use).
fn connect(account: &Account, timeout: Duration) -> Result<Connection, Failure> {
    let security = account.tls.security().map_err(|message| Failure {
        code: EXIT_USAGE,
        message,
    })?;
    let c = Connection::connect_with(&account.host, account.port, timeout, &security)
        .map_err(|e| Failure::from_connection("connect", e))?;
    if let Some(info) = c.tls() {
        if let Trust::FirstUse(pinned) = &info.trust {
            eprintln!(
                "confab: {}",
                first_use_notice(c.addr(), &info.fingerprint, pinned)
            );
        }
    }
    Ok(c)
}

/// Connects, registers if asked, logs in: by password, or else by the
/// device token (resuming at the device's bookmark unless told otherwise).
fn open(
    account: &Account,
    options: LoginOptions,
    timeout: Duration,
) -> Result<(Connection, Name), Failure> {
    let credential = device_cli::credential(account)?;
    let mut c = connect(account, timeout)?;
    let password = match credential {
        device_cli::Credential::Password(p) => p,
        device_cli::Credential::Token { token, source } => {
            let resume = match options.resume_after {
                MessageId(0) => Resume::Device,
                after => Resume::After(after),
            };
            let options = Login2Options {
                resume,
                roster: options.roster,
            };
            let user = device_cli::login_token(&mut c, account, &token, &source, options, timeout)?;
            return Ok((c, user));
        }
    };
    if account.register {
        match c.register(account.user, &password, timeout) {
            Ok(()) => {}
            // Already registered: the login below tells whether it is ours.
            Err(ConnectionError::Refused(e)) if e.code == ErrorCode::NameTaken => {}
            Err(e) => return Err(Failure::from_connection("registration", e)),
        }
    }
    let user = c
        .login(account.user, &password, options, timeout)
        .map_err(|e| Failure::from_connection("login", e))?;
    Ok((c, user))
}

/// What to say when a certificate is trusted on first use.
pub(crate) fn first_use_notice(
    addr: &str,
    fingerprint: &str,
    pinned: &Result<std::path::PathBuf, String>,
) -> String {
    match pinned {
        Ok(file) => format!(
            "trusting the certificate of {addr} on first use ({fingerprint}); pinned in {}",
            file.display()
        ),
        Err(why) => format!(
            "trusting the certificate of {addr} for this connection only ({fingerprint}); \
             it could not be pinned: {why}"
        ),
    }
}

/// Writes one JSON line and flushes it.
fn print_line(v: &Value) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    match writeln!(out, "{v}").and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        // The reader went away (`| head -1`): stop quietly.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(Failure {
            code: EXIT_OK,
            message: "standard output closed".into(),
        }),
        Err(e) => Err(Failure {
            code: EXIT_FAILURE,
            message: format!("cannot write to standard output: {e}"),
        }),
    }
}

fn listen(a: ListenArgs) -> Result<(), Failure> {
    let start = Instant::now();
    let deadline = a.timeout.map(|t| start + t);
    // Logging in has its own bound: a short --timeout limits the listening,
    // it does not make a slow login fail.
    let connect_timeout = confab::connection::DEFAULT_TIMEOUT;
    let options = LoginOptions {
        resume_after: a.resume_after,
        roster: !a.no_roster,
    };
    let (mut c, user) = open(&a.account, options, connect_timeout)?;
    let mut printed = 0u64;
    let mut print = |v: Value| -> Result<bool, Failure> {
        print_line(&v)?;
        printed += 1;
        Ok(a.count.is_some_and(|n| printed >= n))
    };
    if print(json!({ "event": "logged_in", "user": user.as_str() }))? {
        return end_listen(&mut c);
    }
    loop {
        let wait = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => Duration::from_secs(3600),
        };
        let event = match c.next_event(wait) {
            Ok(Some(e)) => e,
            Ok(None) if deadline.is_some_and(|d| Instant::now() >= d) => return end_listen(&mut c),
            Ok(None) => continue,
            Err(e) => return Err(Failure::from_connection("listen", e)),
        };
        if let Event::ServerHello(_) = event {
            continue;
        }
        let done = print(event_json(&event))?;
        if let Event::Shutdown {
            retry_after_ms,
            reason,
        } = &event
        {
            return Err(Failure {
                code: EXIT_SHUTDOWN,
                message: format!(
                    "the server is shutting down: {reason} (come back in {retry_after_ms} ms)"
                ),
            });
        }
        if done {
            return end_listen(&mut c);
        }
    }
}

/// A device's `listen` logs out at the end: LOGOUT stores the bookmark
/// (DELIVERED of everything printed), so the next `listen` starts after it.
fn end_listen(c: &mut Connection) -> Result<(), Failure> {
    if c.session().device().is_some() {
        let _ = c.logout(Duration::from_secs(2));
    }
    Ok(())
}

fn send(a: SendArgs) -> Result<(), Failure> {
    if let device_cli::Credential::Token { token, source } = device_cli::credential(&a.account)? {
        let mut sender = device_cli::Sender::new(&a.account, token, source, a.timeout);
        for_each_text(&a.text, |text| {
            let ack = sender.send(a.to, text)?;
            print_id(ack.id);
            Ok(())
        })?;
        sender.finish();
        return Ok(());
    }
    let options = LoginOptions {
        resume_after: MessageId(0),
        roster: false,
    };
    let (mut c, _) = open(&a.account, options, a.timeout)?;
    let one = |c: &mut Connection, text: &str| -> Result<(), Failure> {
        let ack = c
            .send(a.to, text, a.timeout)
            .map_err(|e| Failure::from_connection("send", e))?;
        print_id(ack.id);
        Ok(())
    };
    for_each_text(&a.text, |text| one(&mut c, text))?;
    // Polite, but the messages are stored whatever happens now.
    let _ = c.logout(a.timeout);
    Ok(())
}

fn print_id(id: MessageId) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{id}").and_then(|()| out.flush());
}

/// `text`, or with `-` each non-empty line of standard input.
fn for_each_text(
    text: &str,
    mut f: impl FnMut(&str) -> Result<(), Failure>,
) -> Result<(), Failure> {
    if text != "-" {
        return f(text);
    }
    for line in io::stdin().lock().lines() {
        let line = line.map_err(|e| Failure {
            code: EXIT_FAILURE,
            message: format!("cannot read standard input: {e}"),
        })?;
        let line = line.strip_suffix('\r').unwrap_or(&line);
        if !line.is_empty() {
            f(line)?;
        }
    }
    Ok(())
}

fn group(g: GroupCommand) -> Result<(), Failure> {
    use confab_engine::frame::GroupAction;
    let g = match g {
        GroupCommand::Remove(a) => return moderation_cli::group_moderate(GroupAction::Remove, a),
        GroupCommand::Mute(a) => return moderation_cli::group_moderate(GroupAction::Mute, a),
        GroupCommand::Unmute(a) => return moderation_cli::group_moderate(GroupAction::Unmute, a),
        GroupCommand::Appoint(a) => return moderation_cli::group_moderate(GroupAction::Appoint, a),
        GroupCommand::Dismiss(a) => return moderation_cli::group_moderate(GroupAction::Dismiss, a),
        g => g,
    };
    let options = LoginOptions {
        resume_after: MessageId(0),
        roster: false,
    };
    let (account, timeout) = match &g {
        GroupCommand::Create(a) | GroupCommand::Join(a) | GroupCommand::Leave(a) => {
            (&a.account, a.timeout)
        }
        GroupCommand::List(a) => (&a.account, a.timeout),
        _ => unreachable!("the moderation commands returned above"),
    };
    let (mut c, _) = open(account, options, timeout)?;
    match &g {
        GroupCommand::Create(a) => c
            .group_create(a.group, timeout)
            .map_err(|e| Failure::from_connection("group create", e))?,
        GroupCommand::Join(a) => c
            .group_join(a.group, timeout)
            .map_err(|e| Failure::from_connection("group join", e))?,
        GroupCommand::Leave(a) => c
            .group_leave(a.group, timeout)
            .map_err(|e| Failure::from_connection("group leave", e))?,
        GroupCommand::Remove(_)
        | GroupCommand::Mute(_)
        | GroupCommand::Unmute(_)
        | GroupCommand::Appoint(_)
        | GroupCommand::Dismiss(_) => unreachable!("the moderation commands returned above"),
        GroupCommand::List(_) => {
            let groups = c
                .group_list(timeout)
                .map_err(|e| Failure::from_connection("group list", e))?;
            for g in &groups {
                print_line(&group_json(g))?;
            }
        }
    }
    let _ = c.logout(timeout);
    Ok(())
}

fn history(a: HistoryArgs) -> Result<(), Failure> {
    let options = LoginOptions {
        resume_after: MessageId(0),
        roster: false,
    };
    let (mut c, _) = open(&a.account, options, a.timeout)?;
    let page = c
        .history(a.to, a.before, a.limit, a.timeout)
        .map_err(|e| Failure::from_connection("history", e))?;
    for m in &page.messages {
        print_line(&message_json(m))?;
    }
    let mut end = json!({
        "event": "history_end",
        "to": format_target(&page.target),
        "more": page.more,
    });
    if let Some(first) = page.messages.first() {
        end["next_before"] = Value::from(first.id.0);
    }
    print_line(&end)?;
    let _ = c.logout(a.timeout);
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn exit_codes_are_distinct() {
        let codes = [
            EXIT_OK,
            EXIT_FAILURE,
            EXIT_REFUSED,
            EXIT_SHUTDOWN,
            EXIT_CERT_CHANGED,
            EXIT_CERT_INVALID,
            EXIT_USAGE,
        ];
        for (i, a) in codes.iter().enumerate() {
            assert!(!codes[i + 1..].contains(a));
        }
    }
}
