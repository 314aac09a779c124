//! JOIN and PART: the room is a channel always joined, a group is a
//! channel joined (or made) by JOIN and left by PART; a labeled JOIN of
//! several channels is answered as one (`labels::gathered`).

use crate::name::Name;
use crate::request::{GroupRequest, Request};
use crate::wire::frame::Target;

use super::line::Line;
use super::queries::target;
use super::replies::{fail, joined, labeled, numeric, Directory};
use super::session::{Caps, Gather, IrcSession, PENDING_MAX};
use super::{Act, IrcConfig, Pending};

/// JOIN: the room is always joined; a group is joined, or made.
pub fn join<'a>(
    s: &mut IrcSession,
    line: &Line<'a>,
    dir: &dyn Directory,
    config: &IrcConfig,
    acts: &mut Vec<Act<'a>>,
) {
    let Some(me) = s.account() else { return };
    let label = line.tag("label");
    // A labeled JOIN is answered as one (`labels::gathered`), or refused
    // whole if it cannot be gathered: a label never gets two answers.
    if let Some(refused) = ungatherable(s, label, config) {
        return acts.push(Act::Reply(refused));
    }
    let (mut all, mut asked) = (Vec::new(), 0);
    for channel in line.param(0).split(',').filter(|c| !c.is_empty()) {
        let mut out = Vec::new();
        match target(config, channel) {
            Some(Target::Room) => {
                let full = s.caps.has(Caps::USERHOST_IN_NAMES);
                joined(
                    &mut out,
                    (config, dir),
                    (&me, full),
                    &config.room_channel,
                    &dir.online(),
                )
            }
            Some(Target::Group(g)) => {
                let members = dir.members(&g);
                if members.as_ref().is_some_and(|m| {
                    m.iter()
                        .any(|n| n.as_str().eq_ignore_ascii_case(me.as_str()))
                }) {
                    continue;
                }
                let op = if members.is_some() {
                    GroupRequest::Join
                } else {
                    GroupRequest::Create
                };
                let pending = Pending::Join {
                    channel: channel.to_owned(),
                    group: g,
                    label: label.map(str::to_owned),
                };
                if ask_group(s, pending, (op, g), ("JOIN", config), &mut out, acts) {
                    asked += 1;
                }
            }
            _ => {
                numeric(&mut out, config, "403", me.as_str())
                    .param(channel)
                    .trailing("No such channel");
            }
        }
        all.append(&mut out);
    }
    join_answer(s, (label, asked), all, config, acts);
}

/// The labeled FAIL for a labeled JOIN that could not be gathered (too
/// many in flight, or its label already gathering), if it is one.
fn ungatherable(s: &IrcSession, label: Option<&str>, config: &IrcConfig) -> Option<Vec<u8>> {
    let l = label.filter(|_| s.caps.has(Caps::LABELED))?;
    if s.gathers.len() < PENDING_MAX && s.gathers.iter().all(|g| g.label != l) {
        return None;
    }
    let mut out = Vec::new();
    fail(
        &mut out,
        s,
        config,
        "JOIN",
        "BUSY",
        "Too many labeled JOINs in flight",
    );
    Some(labeled(out, Some(l), s, config))
}

/// A JOIN's lines so far: labeled now if it asked the hub nothing, else
/// gathered for its answers (`replies::gathered`).
fn join_answer(
    s: &mut IrcSession,
    (label, asked): (Option<&str>, usize),
    all: Vec<u8>,
    config: &IrcConfig,
    acts: &mut Vec<Act<'_>>,
) {
    let label = label.filter(|_| s.caps.has(Caps::LABELED));
    match label {
        // Room for it: `join` refused it otherwise.
        Some(l) if asked > 0 => s.gathers.push(Gather {
            label: l.to_owned(),
            left: asked,
            lines: all,
        }),
        _ if !all.is_empty() || label.is_some() => {
            acts.push(Act::Reply(labeled(all, label, s, config)))
        }
        _ => {}
    }
}

/// PART: leaves a group; the room cannot be left.
pub fn part<'a>(
    s: &mut IrcSession,
    line: &Line<'a>,
    dir: &dyn Directory,
    config: &IrcConfig,
    acts: &mut Vec<Act<'a>>,
) {
    let Some(me) = s.account() else { return };
    let label = line.tag("label");
    for channel in line.param(0).split(',').filter(|c| !c.is_empty()) {
        let mut out = Vec::new();
        match target(config, channel) {
            Some(Target::Group(g)) if dir.members(&g).is_some() => {
                let pending = Pending::Part {
                    channel: channel.to_owned(),
                    reason: Some(line.param(1))
                        .filter(|r| !r.is_empty())
                        .map(str::to_owned),
                    label: label.map(str::to_owned),
                };
                let op = (GroupRequest::Leave, g);
                ask_group(s, pending, op, ("PART", config), &mut out, acts);
            }
            Some(Target::Room) => {
                numeric(&mut out, config, "482", me.as_str())
                    .param(channel)
                    .trailing("The room cannot be left");
            }
            _ => {
                numeric(&mut out, config, "403", me.as_str())
                    .param(channel)
                    .trailing("No such channel");
            }
        }
        if !out.is_empty() {
            acts.push(Act::Reply(labeled(out, label, s, config)));
        }
    }
}

/// Asks the hub for `op` on a group, remembered as `pending` for its
/// answer; false (BUSY in `out`) if too many requests are in flight.
fn ask_group(
    s: &mut IrcSession,
    pending: Pending,
    (op, group): (GroupRequest, Name),
    (command, config): (&str, &IrcConfig),
    out: &mut Vec<u8>,
    acts: &mut Vec<Act<'_>>,
) -> bool {
    let Some(reference) = s.remember(pending) else {
        fail(
            out,
            s,
            config,
            command,
            "BUSY",
            "Too many requests in flight",
        );
        return false;
    };
    acts.push(Act::Request(
        Request::Group {
            reference,
            op,
            group,
        },
        None,
    ));
    true
}
