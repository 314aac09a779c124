//! Runs `confab-server status`, `kick`, `ban`, `unban`, `mute`, `unmute`,
//! `audit` and `user op`/`deop`: what must outlive a restart goes to the
//! database first (with its audit line), then the running server, if
//! there is one, is told through its control socket. With `--store
//! postgres://...` the database is PostgreSQL ([`Moderation`] on either
//! store): a cluster's nodes read it at their next start (the control
//! socket reaches only the node on this data dir, if one runs).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use confab_engine::{MessageId, Name, Target};

use crate::admin::utc;
use crate::cli::ops::OpsCommand;
use crate::control;
use crate::store::sqlite::{SanctionKind, SqliteStore, StoredAddressBan, StoredSanction};
use crate::store::{Moderation, Store};
use crate::Error;

/// Who the command line acts as, in the audit log.
const ACTOR: &str = "operator";

/// Runs one command on the server whose data dir is `data_dir`.
pub fn run(data_dir: &Path, store: &mut dyn Moderation, command: OpsCommand) -> Result<(), Error> {
    match command {
        OpsCommand::Status => match ask(data_dir, &["status"])? {
            Some(lines) => lines.iter().for_each(|l| println!("{l}")),
            None => return Err(not_running(data_dir)),
        },
        OpsCommand::Kick { name, reason } => {
            let name = canonical(store, &name)?;
            let Some(lines) = ask(data_dir, &["kick", name.as_str(), &reason.reason])? else {
                return Err(not_running(data_dir));
            };
            store.audit(ACTOR, "kick", name.as_str(), &reason.reason)?;
            println!("kicked {name}: {}", sessions(&lines));
        }
        OpsCommand::Ban {
            name,
            length,
            reason,
        } => sanction(
            data_dir,
            store,
            SanctionKind::Ban,
            name,
            length.length,
            reason.reason,
        )?,
        OpsCommand::Mute {
            name,
            length,
            reason,
        } => sanction(
            data_dir,
            store,
            SanctionKind::Mute,
            name,
            length.length,
            reason.reason,
        )?,
        OpsCommand::Unban { name } => lift(data_dir, store, SanctionKind::Ban, &name)?,
        OpsCommand::Unmute { name } => lift(data_dir, store, SanctionKind::Mute, &name)?,
        OpsCommand::Delete { id, reason } => delete(data_dir, store, id, &reason.reason)?,
        OpsCommand::Announce { text } => {
            let text = text.trim();
            if text.is_empty() {
                return Err(Error::User("an announcement needs a text".to_owned()));
            }
            let Some(lines) = ask(data_dir, &["announce", text])? else {
                return Err(not_running(data_dir));
            };
            store.audit(ACTOR, "announce", "", text)?;
            println!("announced to {}", sessions(&lines));
        }
        OpsCommand::BanAddress {
            net,
            length,
            reason,
        } => {
            let (text, _) = crate::source::parse_net(&net).map_err(Error::User)?;
            let until_ms = length
                .length
                .map(|d| now_ms().saturating_add(d.as_millis() as u64));
            let ban = StoredAddressBan {
                net: text.clone(),
                until_ms,
                reason: reason.reason.clone(),
            };
            store.ban_address(&ban, ACTOR)?;
            let until = until_ms.map_or(String::new(), |ms| ms.to_string());
            let how_long =
                until_ms.map_or("for good".to_owned(), |ms| format!("until {}", utc(ms)));
            match ask(data_dir, &["ban-address", &text, &until, &reason.reason])? {
                Some(lines) => println!("banned {text} {how_long}; closed {}", sessions(&lines)),
                None => println!(
                    "banned {text} {how_long} (no server is running; it applies from its start)"
                ),
            }
        }
        OpsCommand::UnbanAddress { net } => {
            let (text, _) = crate::source::parse_net(&net).map_err(Error::User)?;
            let had = store.lift_address(&text, ACTOR)?;
            ask(data_dir, &["unban-address", &text])?;
            if !had {
                return Err(Error::User(format!("{text} is not banned")));
            }
            println!("lifted the ban of {text}");
        }
        OpsCommand::Group {
            action,
            group,
            name,
            length,
            reason,
        } => group_action(
            data_dir,
            store,
            action,
            group,
            name,
            length.length,
            reason.reason,
        )?,
        OpsCommand::Unlock { name, address } => {
            let (what, fields) = match (name, address) {
                (Some(n), _) => (n.to_string(), vec!["user".to_owned(), n.to_string()]),
                (None, Some(ip)) => (ip.to_string(), vec!["address".to_owned(), ip.to_string()]),
                (None, None) => ("everyone".to_owned(), Vec::new()),
            };
            let mut request = vec!["unlock"];
            request.extend(fields.iter().map(String::as_str));
            let Some(lines) = ask(data_dir, &request)? else {
                return Err(not_running(data_dir));
            };
            store.audit(ACTOR, "unlock", &what, "")?;
            let n = lines
                .iter()
                .find_map(|l| l.strip_prefix("entries "))
                .unwrap_or("0");
            println!("unlocked {what}: {n} lockout entries cleared");
        }
        OpsCommand::Audit { limit } => {
            for e in store.audit_log(limit)? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    utc(e.at_ms),
                    e.actor,
                    e.action,
                    e.target,
                    e.reason
                );
            }
        }
    }
    Ok(())
}

/// `confab-server user op NAME` / `deop NAME`.
pub fn set_operator(
    data_dir: &Path,
    store: &mut SqliteStore,
    name: &Name,
    operator: bool,
) -> Result<(), Error> {
    let name = existing(store, name)?;
    store.set_operator(&name, operator)?;
    let action = if operator { "op" } else { "deop" };
    store.audit(ACTOR, action, name.as_str(), "")?;
    ask(data_dir, &[action, name.as_str()])?;
    if operator {
        println!("{name} is a server operator");
    } else {
        println!("{name} is no longer a server operator");
    }
    Ok(())
}

/// After `user del`: the running server closes the account's sessions.
pub fn deleted(data_dir: &Path, name: &Name) -> Result<(), Error> {
    if let Some(lines) = ask(data_dir, &["kick", name.as_str(), "account deleted"])? {
        let closed = sessions(&lines);
        if closed != "0 sessions" {
            println!("closed {closed} of {name} on the running server");
        }
    }
    Ok(())
}

/// `confab-server delete ID`: tombstoned in the database (with its audit
/// line), then the running server's clients are told.
fn delete(data_dir: &Path, store: &mut dyn Moderation, id: u64, reason: &str) -> Result<(), Error> {
    let actor = Name::new(ACTOR).map_err(|e| Error::User(format!("{ACTOR}: {e}")))?;
    let Some(m) = store.delete_message(MessageId(id), &actor, reason, now_ms())? else {
        return Err(Error::User(format!("there is no message {id}")));
    };
    let target = match m.target {
        Target::Room => "room".to_owned(),
        Target::Group(g) => format!("group:{g}"),
        Target::User(u) => format!("user:{u}"),
    };
    let id_text = id.to_string();
    let fields = ["deleted", &id_text, ACTOR, m.sender.as_str(), &target];
    match ask(data_dir, &fields)? {
        Some(lines) => println!("deleted message {id}; told {}", sessions(&lines)),
        None => println!("deleted message {id}"),
    }
    Ok(())
}

/// After `user passwd` or `user revoke`: the running server closes the
/// revoked devices' sessions at once (DEVICE_REVOKED).
pub fn revoked(data_dir: &Path, devices: &[confab_engine::DeviceId]) -> Result<(), Error> {
    if devices.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = devices.iter().map(|d| d.0.to_string()).collect();
    let mut fields = vec!["revoked"];
    fields.extend(ids.iter().map(String::as_str));
    if let Some(lines) = ask(data_dir, &fields)? {
        let closed = sessions(&lines);
        if closed != "0 sessions" {
            println!("closed {closed} of those devices on the running server");
        }
    }
    Ok(())
}

/// `confab-server group ACTION GROUP USER`: committed as the server's
/// writer would (with its audit line), then the running server applies it.
fn group_action(
    data_dir: &Path,
    store: &mut dyn Moderation,
    action: confab_engine::frame::GroupAction,
    group: Name,
    name: Name,
    length: Option<std::time::Duration>,
    reason: String,
) -> Result<(), Error> {
    use crate::store::{Write, Written};
    use confab_engine::effect::GroupOp;
    let by = Name::new(ACTOR).map_err(|e| Error::User(format!("{ACTOR}: {e}")))?;
    let seconds = length.map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
    let name = canonical(store, &name)?;
    let op = GroupOp::Moderate {
        group,
        user: name,
        action,
        seconds,
        reason: reason.clone(),
        by,
    };
    match store.commit(&[Write::Group(op)], now_ms())?.first() {
        Some(Written::Group(Ok(()))) => {}
        Some(Written::Group(Err(e))) => return Err(Error::User(e.to_string())),
        other => return Err(Error::User(format!("storage answered {other:?}"))),
    }
    let secs = seconds.to_string();
    let fields = [
        "group",
        action.as_str(),
        group.as_str(),
        name.as_str(),
        &secs,
        &reason,
    ];
    match ask(data_dir, &fields)? {
        Some(_) => println!("{} {name} in #{group}", action.as_str()),
        None => println!(
            "{} {name} in #{group} (no server is running; it applies from its start)",
            action.as_str()
        ),
    }
    Ok(())
}

fn sanction(
    data_dir: &Path,
    store: &mut dyn Moderation,
    kind: SanctionKind,
    name: Name,
    length: Option<std::time::Duration>,
    reason: String,
) -> Result<(), Error> {
    let name = canonical(store, &name)?;
    let until_ms = length.map(|d| now_ms().saturating_add(d.as_millis() as u64));
    store.sanction(
        &StoredSanction {
            kind,
            name,
            until_ms,
            reason: reason.clone(),
        },
        ACTOR,
    )?;
    let (verb, request) = match kind {
        SanctionKind::Ban => ("banned", "ban"),
        SanctionKind::Mute => ("muted", "mute"),
    };
    let until = until_ms.map_or(String::new(), |ms| ms.to_string());
    let how_long = until_ms.map_or("until lifted".to_owned(), |ms| format!("until {}", utc(ms)));
    match ask(data_dir, &[request, name.as_str(), &until, &reason])? {
        Some(lines) if kind == SanctionKind::Ban => {
            println!("{verb} {name} {how_long}; closed {}", sessions(&lines))
        }
        Some(_) => println!("{verb} {name} {how_long}"),
        None => {
            println!("{verb} {name} {how_long} (no server is running; it applies from its start)")
        }
    }
    Ok(())
}

fn lift(
    data_dir: &Path,
    store: &mut dyn Moderation,
    kind: SanctionKind,
    name: &Name,
) -> Result<(), Error> {
    let had = store.lift(kind, name, ACTOR)?;
    let (noun, request) = match kind {
        SanctionKind::Ban => ("ban", "unban"),
        SanctionKind::Mute => ("mute", "unmute"),
    };
    ask(data_dir, &[request, name.as_str()])?;
    if had {
        println!("lifted the {noun} of {name}");
        Ok(())
    } else {
        Err(Error::User(format!("{name} has no {noun}")))
    }
}

/// The request's answer from the running server, `None` if none runs.
fn ask(data_dir: &Path, fields: &[&str]) -> Result<Option<Vec<String>>, Error> {
    control::request(data_dir, fields).map_err(|e| {
        Error::User(format!(
            "the running server's control socket in {}: {e}",
            data_dir.display()
        ))
    })
}

fn not_running(data_dir: &Path) -> Error {
    Error::User(format!(
        "no server is running on the data dir {} (no control socket answers)",
        data_dir.display()
    ))
}

/// "N sessions" from a `sessions N` answer.
fn sessions(lines: &[String]) -> String {
    let n = lines
        .iter()
        .find_map(|l| l.strip_prefix("sessions "))
        .unwrap_or("0");
    format!("{n} sessions")
}

/// The registered spelling of an account, or the name as given if there
/// is none (a ban may come before the account).
fn canonical(store: &mut dyn Moderation, name: &Name) -> Result<Name, Error> {
    Ok(store.account(name)?.map_or(*name, |a| a.name))
}

fn existing(store: &mut SqliteStore, name: &Name) -> Result<Name, Error> {
    match store.account(name)? {
        Some(a) => Ok(a.name),
        None => Err(Error::User(format!("there is no user {name}"))),
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
