//! `confab kick|ban|unban|mute|unmute USER`: a server operator's
//! moderation, as MODERATE requests (see PROTOCOL.md, "Moderation").

use std::time::Duration;

use clap::Args;
use confab_engine::frame::ModAction;
use confab_engine::Name;
use serde_json::json;

use crate::{parse_name, parse_secs, print_line, Account, Failure};

/// What `kick`, `ban`, `unban`, `mute` and `unmute` take.
#[derive(Args, Debug)]
pub(crate) struct ModerateArgs {
    #[command(flatten)]
    account: Account,
    /// Seconds to wait for the answer.
    #[arg(long, env = "CONFAB_TIMEOUT", value_parser = parse_secs, default_value = "10")]
    timeout: Duration,
    /// The account to act on.
    #[arg(value_parser = parse_name)]
    target: Name,
    /// How long a ban or mute lasts: 90s, 30m, 12h, 7d (default: until lifted).
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_length)]
    length: Option<u32>,
    /// Why: shown to the user and kept in the server's audit log.
    #[arg(long, default_value = "")]
    reason: String,
}

/// Runs one moderation as the account's user; prints `{"event":"done",...}`.
pub(crate) fn moderate(action: ModAction, a: ModerateArgs) -> Result<(), Failure> {
    let mut c = crate::open(&a.account, quiet(), a.timeout)?.0;
    let seconds = a.length.unwrap_or(0);
    c.moderate(action, a.target, seconds, &a.reason, a.timeout)
        .map_err(|e| Failure::from_connection(action.as_str(), e))?;
    print_line(&json!({
        "event": "done",
        "action": action.as_str(),
        "user": a.target.as_str(),
        "seconds": seconds,
    }))?;
    let _ = c.logout(a.timeout);
    Ok(())
}

/// What `delete` takes.
#[derive(Args, Debug)]
pub(crate) struct DeleteArgs {
    #[command(flatten)]
    account: Account,
    /// Seconds to wait for the answer.
    #[arg(long, env = "CONFAB_TIMEOUT", value_parser = parse_secs, default_value = "10")]
    timeout: Duration,
    /// The message's id (as `history` and `listen` print it).
    id: u64,
    /// Why: kept in the server's audit log.
    #[arg(long, default_value = "")]
    reason: String,
}

/// Deletes a message as the account's user; prints `{"event":"done",...}`.
pub(crate) fn delete(a: DeleteArgs) -> Result<(), Failure> {
    let mut c = crate::open(&a.account, quiet(), a.timeout)?.0;
    c.delete(confab_engine::MessageId(a.id), &a.reason, a.timeout)
        .map_err(|e| Failure::from_connection("delete", e))?;
    print_line(&json!({ "event": "done", "action": "delete", "id": a.id }))?;
    let _ = c.logout(a.timeout);
    Ok(())
}

/// What `announce` takes.
#[derive(Args, Debug)]
pub(crate) struct AnnounceArgs {
    #[command(flatten)]
    account: Account,
    /// Seconds to wait for the answer.
    #[arg(long, env = "CONFAB_TIMEOUT", value_parser = parse_secs, default_value = "10")]
    timeout: Duration,
    /// The notice.
    text: String,
}

/// Announces as the account's user; prints `{"event":"done",...}`.
pub(crate) fn announce(a: AnnounceArgs) -> Result<(), Failure> {
    let mut c = crate::open(&a.account, quiet(), a.timeout)?.0;
    c.announce(&a.text, a.timeout)
        .map_err(|e| Failure::from_connection("announce", e))?;
    print_line(&json!({ "event": "done", "action": "announce" }))?;
    let _ = c.logout(a.timeout);
    Ok(())
}

/// What `ban-address` and `unban-address` take.
#[derive(Args, Debug)]
pub(crate) struct AddressArgs {
    #[command(flatten)]
    account: Account,
    /// Seconds to wait for the answer.
    #[arg(long, env = "CONFAB_TIMEOUT", value_parser = parse_secs, default_value = "10")]
    timeout: Duration,
    /// The block: one address (192.0.2.7) or CIDR (10.0.0.0/8, 2001:db8::/32);
    /// the server parses it.
    block: String,
    /// How long a ban lasts: 90s, 30m, 12h, 7d (default: until lifted).
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_length)]
    length: Option<u32>,
    /// Why: shown to the turned-away connections and kept in the audit log.
    #[arg(long, default_value = "")]
    reason: String,
}

/// Runs one BAN_ADDRESS as the account's user; prints a `done` line.
pub(crate) fn ban_address(lift: bool, a: AddressArgs) -> Result<(), Failure> {
    let action = if lift { "unban-address" } else { "ban-address" };
    let mut c = crate::open(&a.account, quiet(), a.timeout)?.0;
    let seconds = a.length.unwrap_or(0);
    c.ban_address(&a.block, lift, seconds, &a.reason, a.timeout)
        .map_err(|e| Failure::from_connection(action, e))?;
    print_line(&json!({
        "event": "done",
        "action": action,
        "block": a.block,
        "seconds": seconds,
    }))?;
    let _ = c.logout(a.timeout);
    Ok(())
}

/// What `group remove|mute|unmute|appoint|dismiss` take.
#[derive(Args, Debug)]
pub(crate) struct GroupModArgs {
    #[command(flatten)]
    account: Account,
    /// Seconds to wait for the answer.
    #[arg(long, env = "CONFAB_TIMEOUT", value_parser = parse_secs, default_value = "10")]
    timeout: Duration,
    /// The group.
    #[arg(value_parser = parse_name)]
    group: Name,
    /// The member to act on.
    #[arg(value_parser = parse_name)]
    target: Name,
    /// How long a mute lasts: 90s, 30m, 12h, 7d (default: until lifted).
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_length)]
    length: Option<u32>,
    /// Why: kept in the server's audit log.
    #[arg(long, default_value = "")]
    reason: String,
}

/// Runs one GROUP_MODERATE as the account's user; prints a `done` line.
pub(crate) fn group_moderate(
    action: confab_engine::frame::GroupAction,
    a: GroupModArgs,
) -> Result<(), Failure> {
    let mut c = crate::open(&a.account, quiet(), a.timeout)?.0;
    let seconds = a.length.unwrap_or(0);
    c.group_moderate(a.group, action, a.target, seconds, &a.reason, a.timeout)
        .map_err(|e| Failure::from_connection(action.as_str(), e))?;
    print_line(&json!({
        "event": "done",
        "action": action.as_str(),
        "group": a.group.as_str(),
        "user": a.target.as_str(),
        "seconds": seconds,
    }))?;
    let _ = c.logout(a.timeout);
    Ok(())
}

fn quiet() -> confab::LoginOptions {
    confab::LoginOptions {
        resume_after: confab_engine::MessageId(0),
        roster: false,
    }
}

/// `90s`, `30m`, `12h`, `7d` (or plain seconds) as seconds.
fn parse_length(s: &str) -> Result<u32, String> {
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u32 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 90s, 30m, 12h or 7d"))?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?}: the unit is s, m, h or d")),
    };
    match n.checked_mul(unit) {
        Some(0) => Err("a duration is at least 1s".to_owned()),
        Some(secs) => Ok(secs),
        None => Err(format!("{s:?} is too long")),
    }
}
