//! Conversations as the user moves among them: opening one (fetching its
//! newest history the first time), paging up into older history, stepping
//! to the next or previous one, and sending to one.

use confab_engine::{MessageId, Target};

use crate::tui::conversation::Older;
use crate::tui::model::{Link, Model};
use crate::tui::network::Command;

/// How many messages one history request asks for.
pub(crate) const HISTORY_PAGE: u16 = 100;

/// How a conversation is named on screen: `all`, `#group`, `@user`.
pub(crate) fn label(t: &Target) -> String {
    confab::address::format_target(t)
}

/// Shows `target`'s conversation, fetching its newest history the first time.
pub(super) fn open(m: &mut Model, target: &Target, out: &mut Vec<Command>) {
    m.open(target);
    fetch_if_unknown(m, target, out);
}

/// Asks for `target`'s newest history page unless it was asked for already.
pub(super) fn fetch_if_unknown(m: &mut Model, target: &Target, out: &mut Vec<Command>) {
    if m.link != Link::Online {
        return;
    }
    let c = m.conversation_mut(target);
    if c.older == Older::Unknown && !c.fetching {
        c.fetching = true;
        out.push(Command::History {
            target: *target,
            before: MessageId(0),
            limit: HISTORY_PAGE,
        });
    }
}

/// Scrolls up a page; at the top, asks for the page before the oldest message.
pub(super) fn page_up(m: &mut Model, out: &mut Vec<Command>) {
    let page = usize::from(m.pane().height.saturating_sub(1)).max(1);
    let at_top = m.scroll_up(page);
    let online = m.link == Link::Online;
    let c = m.current();
    if at_top && online && !c.fetching && c.older != Older::Complete {
        let (target, before) = (c.target, c.oldest().unwrap_or(MessageId(0)));
        m.conversation_mut(&target).fetching = true;
        out.push(Command::History {
            target,
            before,
            limit: HISTORY_PAGE,
        });
    }
}

/// Shows the next (or previous) conversation in list order, wrapping.
pub(super) fn step_conversation(m: &mut Model, forward: bool, out: &mut Vec<Command>) {
    let rows = m.all_rows();
    let Some(i) = rows.iter().position(|r| r.current) else {
        return;
    };
    let n = rows.len();
    let j = if forward {
        (i + 1) % n
    } else {
        (i + n - 1) % n
    };
    let target = rows[j].target;
    open(m, &target, out);
}

/// Sends `body`, or says why not and returns false.
pub(super) fn send(m: &mut Model, target: Target, body: String, out: &mut Vec<Command>) -> bool {
    let max = m.account.as_ref().map_or(4096, |a| a.max_body);
    if body.len() > max {
        m.complain(format!(
            "Too long to send: {} bytes, the server takes {max}. It is back in the input line.",
            body.len()
        ));
        return false;
    }
    if m.link != Link::Online {
        m.complain("Not connected: the message was not sent. It is back in the input line.");
        return false;
    }
    // Whatever was scrolled, one's own message is worth seeing.
    let c = m.conversation_mut(&target);
    c.scroll = 0;
    out.push(Command::Send { target, body });
    true
}
