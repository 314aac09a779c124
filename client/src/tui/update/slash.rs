//! The input line's `/commands`: groups, DMs, moderation (server-wide and
//! in a group), deleting and announcing, logging out, quitting, help.

use confab::address::parse_target;
use confab_engine::{MessageId, Name, Target};

use super::conversations::{open, send};
use super::menu::action;
use crate::tui::model::{Dialog, Model};
use crate::tui::network::Command;
use crate::tui::Action;

/// `/command args`; false when a message could not be sent.
pub(super) fn slash(m: &mut Model, rest: &str, line: &str, out: &mut Vec<Command>) -> bool {
    let (cmd, args) = rest.split_once(' ').unwrap_or((rest, ""));
    let args = args.trim();
    let group = |m: &mut Model, args: &str| -> Option<Name> {
        let name = args.trim_start_matches('#');
        match Name::new(name) {
            Ok(n) => Some(n),
            Err(e) => {
                m.complain(format!("/{cmd}: not a group name: {e}."));
                None
            }
        }
    };
    match cmd {
        "join" | "j" => {
            if let Some(g) = group(m, args) {
                out.push(Command::GroupJoin(g));
            }
        }
        "create" => {
            if let Some(g) = group(m, args) {
                out.push(Command::GroupCreate(g));
            }
        }
        "leave" | "part" => {
            let args = match (args, m.current().target) {
                ("", Target::Group(g)) => g.to_string(),
                (a, _) => a.to_owned(),
            };
            if let Some(g) = group(m, &args) {
                out.push(Command::GroupLeave(g));
            }
        }
        "msg" | "query" | "q" | "m" => {
            let (to, text) = args.split_once(' ').unwrap_or((args, ""));
            let target = if to.starts_with(['@', '#']) || to.eq_ignore_ascii_case("all") {
                parse_target(to).map_err(|e| e.to_string())
            } else {
                Name::new(to).map(Target::User).map_err(|e| e.to_string())
            };
            match target {
                Ok(t) if text.trim().is_empty() => open(m, &t, out),
                Ok(t) => return send(m, t, text.to_owned(), out),
                Err(e) => m.complain(format!("/{cmd}: {e}")),
            }
        }
        "kick" | "ban" | "unban" | "mute" | "unmute" => moderate(m, cmd, args, out),
        "delete" => {
            let (id, reason) = args.split_once(' ').unwrap_or((args, ""));
            match id.trim_start_matches('#').parse::<u64>() {
                Ok(id) if id > 0 => out.push(Command::Delete {
                    id: MessageId(id),
                    reason: reason.trim().to_owned(),
                }),
                _ => m.complain(
                    "/delete ID [why]: the message id is a number (as `confab history` prints it).",
                ),
            }
        }
        "remove" | "gmute" | "gunmute" | "appoint" | "dismiss" => group_moderate(m, cmd, args, out),
        "announce" => match args.trim() {
            "" => m.complain("/announce TEXT: the notice to send to everyone."),
            text => out.push(Command::Announce(text.to_owned())),
        },
        "quit" | "exit" => m.quit = true,
        "logout" => action(m, Action::Account, out),
        "help" => m.dialog = Some(Dialog::Help),
        _ => {
            m.complain(format!(
                "Unknown command {:?}: F1 lists the commands; start with // to send a line beginning with /.",
                line.split(' ').next().unwrap_or(line)
            ));
        }
    }
    true
}

/// `/kick USER [reason]`, `/ban USER [7d] [reason]`, `/mute USER [30m]
/// [reason]`, `/unban USER`, `/unmute USER` (server operators; the server
/// refuses anyone else with NOT_OPERATOR).
fn moderate(m: &mut Model, cmd: &str, args: &str, out: &mut Vec<Command>) {
    use confab_engine::frame::ModAction;
    let action = match cmd {
        "kick" => ModAction::Kick,
        "ban" => ModAction::Ban,
        "unban" => ModAction::Unban,
        "mute" => ModAction::Mute,
        _ => ModAction::Unmute,
    };
    let (who, rest) = args.split_once(' ').unwrap_or((args, ""));
    let user = match Name::new(who.trim_start_matches('@')) {
        Ok(u) => u,
        Err(e) => return m.complain(format!("/{cmd} USER ...: not a user name: {e}.")),
    };
    let rest = rest.trim();
    let (seconds, reason) = match (action, rest.split_once(' ').unwrap_or((rest, ""))) {
        (ModAction::Ban | ModAction::Mute, (first, tail)) => match length(first) {
            Some(secs) => (secs, tail.trim()),
            None => (0, rest),
        },
        _ => (0, rest),
    };
    out.push(Command::Moderate {
        action,
        user,
        seconds,
        reason: reason.to_owned(),
    });
}

/// `90s`, `30m`, `12h`, `7d` as seconds.
fn length(s: &str) -> Option<u32> {
    let unit = match s.chars().last()? {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    let n: u32 = s[..s.len() - 1].parse().ok()?;
    n.checked_mul(unit).filter(|&secs| secs > 0)
}

/// `/remove USER`, `/gmute USER [30m]`, `/gunmute USER`, `/appoint USER`,
/// `/dismiss USER` in the group shown (its owner or moderators; the
/// server refuses anyone else with NOT_GROUP_MODERATOR).
fn group_moderate(m: &mut Model, cmd: &str, args: &str, out: &mut Vec<Command>) {
    use confab_engine::frame::GroupAction;
    let Target::Group(group) = m.current().target else {
        return m.complain(format!(
            "/{cmd} USER acts in the group shown: open one first."
        ));
    };
    let action = match cmd {
        "remove" => GroupAction::Remove,
        "gmute" => GroupAction::Mute,
        "gunmute" => GroupAction::Unmute,
        "appoint" => GroupAction::Appoint,
        _ => GroupAction::Dismiss,
    };
    let (who, rest) = args.trim().split_once(' ').unwrap_or((args.trim(), ""));
    let user = match Name::new(who.trim_start_matches('@')) {
        Ok(u) => u,
        Err(e) => return m.complain(format!("/{cmd} USER: not a user name: {e}.")),
    };
    let seconds = match action {
        GroupAction::Mute => length(rest.trim()).unwrap_or(0),
        _ => 0,
    };
    out.push(Command::GroupModerate {
        group,
        action,
        user,
        seconds,
    });
}
