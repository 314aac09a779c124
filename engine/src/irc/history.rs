//! CHATHISTORY: a client's subcommand and references read as a
//! [`Window`] of the conversation, asked of the hub as a history request
//! (TARGETS: two times, asked as a request of its own).

use crate::id::MessageId;
use crate::request::Request;
use crate::window::{Bound, Range, Window};

use super::line::Line;
use super::queries::target;
use super::replies::{fail, fail_with, reply};
use super::session::IrcSession;
use super::{Act, IrcConfig, Pending};

/// CHATHISTORY LATEST, BEFORE, AFTER, AROUND and BETWEEN, by msgid or
/// timestamp (see [`history_window`]); TARGETS in `chathistory_targets`
/// (answered by [`super::targets::targets`]).
pub fn chathistory<'a>(
    s: &mut IrcSession,
    line: &Line<'a>,
    config: &IrcConfig,
    acts: &mut Vec<Act<'a>>,
) {
    let sub = line.param(0).to_ascii_uppercase();
    let to = line.param(1);
    let mut out = Vec::new();
    if sub == "TARGETS" {
        return chathistory_targets(s, line, config, acts);
    }
    let known = ["LATEST", "BEFORE", "AFTER", "AROUND", "BETWEEN"];
    if !known.contains(&sub.as_str()) {
        let text = "Unknown CHATHISTORY subcommand";
        let what = ["UNKNOWN_COMMAND", &sub];
        fail_with(&mut out, s, config, "CHATHISTORY", &what, text);
        return reply(acts, out);
    }
    let Some(t) = target(config, to) else {
        let what = ["INVALID_TARGET", &sub, to];
        fail_with(&mut out, s, config, "CHATHISTORY", &what, "No such target");
        return reply(acts, out);
    };
    let Some((window, limit)) = history_window(&sub, line) else {
        let text = "A reference is msgid=ID or timestamp=TIME (or * for LATEST), a limit a number";
        let what = ["INVALID_PARAMS", &sub];
        fail_with(&mut out, s, config, "CHATHISTORY", &what, text);
        return reply(acts, out);
    };
    let pending = Pending::History {
        sub,
        target: to.to_owned(),
        label: line.tag("label").map(str::to_owned),
    };
    let Some(r) = s.remember(pending) else {
        let text = "Too many requests in flight";
        fail(&mut out, s, config, "CHATHISTORY", "BUSY", text);
        return reply(acts, out);
    };
    acts.push(Act::Request(
        Request::History {
            reference: r,
            target: t,
            window,
            limit,
        },
        None,
    ));
}

/// `CHATHISTORY TARGETS <timestamp> <timestamp> <limit>`: the
/// conversations whose latest message falls strictly between the two
/// times (in either order; `*` for no bound), asked of the hub.
fn chathistory_targets<'a>(
    s: &mut IrcSession,
    line: &Line<'a>,
    config: &IrcConfig,
    acts: &mut Vec<Act<'a>>,
) {
    let mut out = Vec::new();
    let Some((between, limit)) = targets_window(line) else {
        let text = "TARGETS takes timestamp=TIME (or *) twice, then a limit";
        let what = ["INVALID_PARAMS", "TARGETS"];
        fail_with(&mut out, s, config, "CHATHISTORY", &what, text);
        return reply(acts, out);
    };
    let pending = Pending::History {
        sub: "TARGETS".to_owned(),
        target: "*".to_owned(),
        label: line.tag("label").map(str::to_owned),
    };
    let Some(r) = s.remember(pending) else {
        let text = "Too many requests in flight";
        fail(&mut out, s, config, "CHATHISTORY", "BUSY", text);
        return reply(acts, out);
    };
    let request = Request::HistoryTargets {
        reference: r,
        between,
        limit,
    };
    acts.push(Act::Request(request, None));
}

/// The exclusive bounds (ms, the earlier first) and the limit of a
/// TARGETS; `None` if a parameter is not one.
fn targets_window(line: &Line<'_>) -> Option<((u64, u64), u16)> {
    let time = |r: &str, none: u64| match r {
        "*" => Some(none),
        r => super::line::parse_server_time(r.strip_prefix("timestamp=")?),
    };
    let a = time(line.param(1), 0)?;
    let b = time(line.param(2), u64::MAX)?;
    let limit = line.param(3).parse::<u16>().ok()?.clamp(1, HISTORY_MAX);
    Some(((a.min(b), a.max(b)), limit))
}

/// The window and limit of `CHATHISTORY sub target ...`: LATEST is the
/// newest (after its reference, unless `*`), BEFORE the newest before,
/// AFTER the oldest after, AROUND half before and the rest from its
/// reference on, BETWEEN the messages between its two references, taken
/// from the first one's end. `None` if a parameter is not one.
pub fn history_window(sub: &str, line: &Line<'_>) -> Option<(Window, u16)> {
    let (window, limit) = match sub {
        "LATEST" => {
            let after = match line.param(2) {
                "*" => None,
                r => Some(reference(r)?),
            };
            (
                Window::Newest(Range {
                    after,
                    before: None,
                }),
                line.param(3),
            )
        }
        "BEFORE" => {
            let before = Some(reference(line.param(2))?);
            (
                Window::Newest(Range {
                    after: None,
                    before,
                }),
                line.param(3),
            )
        }
        "AFTER" => {
            let after = Some(reference(line.param(2))?);
            (
                Window::Oldest(Range {
                    after,
                    before: None,
                }),
                line.param(3),
            )
        }
        "AROUND" => (Window::Around(reference(line.param(2))?), line.param(3)),
        "BETWEEN" => {
            let (a, b) = (reference(line.param(2))?, reference(line.param(3))?);
            let window = match (a, b) {
                (Bound::Id(x), Bound::Id(y)) if x > y => backwards(a, b),
                (Bound::Time(x), Bound::Time(y)) if x > y => backwards(a, b),
                _ => Window::Oldest(Range {
                    after: Some(a),
                    before: Some(b),
                }),
            };
            (window, line.param(4))
        }
        _ => return None,
    };
    let limit = limit.parse::<u16>().ok()?.clamp(1, HISTORY_MAX);
    Some((window, limit))
}

/// BETWEEN from a later reference back to an earlier one.
fn backwards(later: Bound, earlier: Bound) -> Window {
    Window::Newest(Range {
        after: Some(earlier),
        before: Some(later),
    })
}

/// Most messages a CHATHISTORY returns (ISUPPORT `CHATHISTORY`).
pub const HISTORY_MAX: u16 = 100;

/// The point a `msgid=` or `timestamp=` reference names (a split line's
/// `id.n` is its message's id).
fn reference(r: &str) -> Option<Bound> {
    if let Some(id) = r.strip_prefix("msgid=") {
        return id
            .split('.')
            .next()?
            .parse()
            .ok()
            .map(|n| Bound::Id(MessageId(n)));
    }
    let time = r.strip_prefix("timestamp=")?;
    super::line::parse_server_time(time).map(Bound::Time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::irc::line::{parse, Parsed};

    fn window_of(text: &str) -> Option<(Window, u16)> {
        let raw = format!("{text}\r\n");
        let Ok(Parsed::Line(line, _)) = parse(raw.as_bytes()) else {
            panic!("not a line: {text}")
        };
        history_window(&line.param(0).to_ascii_uppercase(), &line)
    }

    #[test]
    fn chathistory_subcommands_read_as_windows_with_exclusive_bounds() {
        let id = |n| Some(Bound::Id(MessageId(n)));
        let newest = |after, before| Window::Newest(Range { after, before });
        let oldest = |after, before| Window::Oldest(Range { after, before });
        assert_eq!(
            window_of("CHATHISTORY LATEST #c * 10"),
            Some((newest(None, None), 10))
        );
        assert_eq!(
            window_of("CHATHISTORY LATEST #c msgid=7.2 500"),
            Some((newest(id(7), None), HISTORY_MAX))
        );
        assert_eq!(
            window_of("CHATHISTORY BEFORE #c timestamp=1970-01-01T00:00:01.500Z 3"),
            Some((newest(None, Some(Bound::Time(1500))), 3))
        );
        assert_eq!(
            window_of("CHATHISTORY AFTER #c msgid=4 3"),
            Some((oldest(id(4), None), 3))
        );
        assert_eq!(
            window_of("CHATHISTORY BETWEEN #c msgid=9 msgid=2 3"),
            Some((newest(id(2), id(9)), 3))
        );
        assert_eq!(
            window_of("CHATHISTORY BETWEEN #c msgid=2 msgid=9 3"),
            Some((oldest(id(2), id(9)), 3))
        );
        assert_eq!(
            window_of("CHATHISTORY AROUND #c msgid=5 3"),
            Some((Window::Around(Bound::Id(MessageId(5))), 3))
        );
        assert_eq!(window_of("CHATHISTORY BEFORE #c * 3"), None);
        assert_eq!(window_of("CHATHISTORY AFTER #c msgid=x 3"), None);
        assert_eq!(window_of("CHATHISTORY AFTER #c msgid=4 many"), None);
    }
}
