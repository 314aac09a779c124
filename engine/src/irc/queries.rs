//! The query commands of a registered client (WHO, WHOIS, TOPIC, LIST,
//! MODE), answered from the hub's state at once, and how a channel or a
//! nick names a conversation.

use crate::name::Name;
use crate::wire::frame::Target;

use super::line::Line;
use super::replies::{numeric, Directory};
use super::IrcConfig;

/// The target a channel or nick names, if it is one.
pub fn target(config: &IrcConfig, name: &str) -> Option<Target> {
    if name.eq_ignore_ascii_case(&config.room_channel) {
        return Some(Target::Room);
    }
    match name.strip_prefix('#') {
        Some(g) => Name::new(g).ok().map(Target::Group),
        None => Name::new(name).ok().map(Target::User),
    }
}

/// The users a channel lists: the room's online users, a group's members.
pub fn members(dir: &dyn Directory, config: &IrcConfig, channel: &str) -> Option<Vec<Name>> {
    match target(config, channel)? {
        Target::Room => Some(dir.online()),
        Target::Group(g) => dir.members(&g),
        Target::User(_) => None,
    }
}

/// WHO: 352 for each user of a channel (or the one nick), then 315.
pub fn who(out: &mut Vec<u8>, dir: &dyn Directory, config: &IrcConfig, me: &Name, mask: &str) {
    let users = members(dir, config, mask).unwrap_or_else(|| {
        Name::new(mask)
            .ok()
            .filter(|n| dir.online().contains(n))
            .into_iter()
            .collect()
    });
    for u in &users {
        numeric(out, config, "352", me.as_str())
            .param(if mask.starts_with('#') { mask } else { "*" })
            .param(u.as_str())
            .param("confab")
            .param(&config.server)
            .param(u.as_str())
            .param("H")
            .trailing(&format!("0 {u}"));
    }
    numeric(out, config, "315", me.as_str())
        .param(mask)
        .trailing("End of WHO list");
}

/// WHOIS of an online user (311, 330, 318), or 401. The real name is
/// the asker's own USER one for itself, the account name for others (the
/// hub keeps no real names).
pub fn whois(
    out: &mut Vec<u8>,
    dir: &dyn Directory,
    config: &IrcConfig,
    (me, realname): (&Name, &str),
    nick: &str,
) {
    match Name::new(nick).ok().filter(|n| dir.online().contains(n)) {
        Some(u) => {
            let real = match u.key() == me.key() && !realname.is_empty() {
                true => realname,
                false => u.as_str(),
            };
            numeric(out, config, "311", me.as_str())
                .param(u.as_str())
                .param(u.as_str())
                .param("confab")
                .param("*")
                .trailing(real);
            numeric(out, config, "330", me.as_str())
                .param(u.as_str())
                .param(u.as_str())
                .trailing("is logged in as");
        }
        None => numeric(out, config, "401", me.as_str())
            .param(nick)
            .trailing("No such nick"),
    }
    numeric(out, config, "318", me.as_str())
        .param(nick)
        .trailing("End of /WHOIS list");
}

/// TOPIC: none is set (331); setting one is refused (482).
pub fn topic(out: &mut Vec<u8>, config: &IrcConfig, me: &Name, line: &Line<'_>) {
    let channel = line.param(0);
    if line.params.len() > 1 {
        numeric(out, config, "482", me.as_str())
            .param(channel)
            .trailing("Topics are read-only here");
    } else {
        numeric(out, config, "331", me.as_str())
            .param(channel)
            .trailing("No topic is set");
    }
}

/// LIST: the room and every group with its member count.
pub fn list(out: &mut Vec<u8>, dir: &dyn Directory, config: &IrcConfig, me: &Name) {
    numeric(out, config, "321", me.as_str())
        .param("Channel")
        .trailing("Users  Name");
    let online = dir.online().len().to_string();
    numeric(out, config, "322", me.as_str())
        .param(&config.room_channel)
        .param(&online)
        .trailing("The room");
    for (g, n) in dir.groups() {
        numeric(out, config, "322", me.as_str())
            .param(&format!("#{g}"))
            .param(&n.to_string())
            .trailing("");
    }
    numeric(out, config, "323", me.as_str()).trailing("End of /LIST");
}

/// MODE: channels are `+n`, users `+i`; nothing can be changed.
pub fn mode(out: &mut Vec<u8>, config: &IrcConfig, me: &Name, line: &Line<'_>) {
    let t = line.param(0);
    if t.starts_with('#') {
        numeric(out, config, "324", me.as_str())
            .param(t)
            .param("+n")
            .end();
    } else {
        numeric(out, config, "221", me.as_str()).param("+i").end();
    }
}
