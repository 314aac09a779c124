//! `update`: one [`Msg`] in, the model changed, network commands out. All
//! of the client's decisions are here: what a key does on each screen,
//! what a server event means for the model, when to fetch history, when
//! and how to reconnect. One module per thing handled:
//!
//! - [`server`]: what the server and the network thread report;
//! - [`reconnect`]: the timer, and what a lost link or a failed reconnect
//!   means;
//! - [`login`]: the login screen's keys;
//! - [`main_screen`]: the main screen's keys;
//! - [`slash`]: the input line's `/commands`;
//! - [`menu`]: the function keys, the F9 menu and the dialogs;
//! - [`conversations`]: opening, paging and stepping through conversations,
//!   and sending to one.

mod conversations;
mod login;
mod main_screen;
mod menu;
mod reconnect;
mod server;
mod slash;

use super::clock::Now;
use super::model::{Link, Model, Screen};
use super::network::Command;
use super::Msg;
use login::login_key;
use main_screen::main_key;
use menu::{action, dialog_key};
use reconnect::tick;
use server::net;

pub(crate) use conversations::label;
pub(crate) use menu::{LOGIN_MENU, MAIN_MENU};
// The tests check the page size and the waits.
#[cfg(test)]
pub(crate) use conversations::HISTORY_PAGE;
#[cfg(test)]
pub(crate) use reconnect::backoff;

/// Applies `msg` to the model; returns the commands for the network.
pub(crate) fn update(m: &mut Model, msg: Msg, now: Now) -> Vec<Command> {
    m.now = Some(now);
    let mut out = Vec::new();
    match msg {
        Msg::Tick => tick(m, now, &mut out),
        Msg::Resize(w, h) => m.size = (w, h),
        Msg::Net(e) => net(m, e, now, &mut out),
        Msg::Action(a) => action(m, a, &mut out),
        key => {
            if m.dialog.is_some() {
                dialog_key(m, key, &mut out);
            } else if m.screen == Screen::Login {
                login_key(m, key, &mut out);
            } else {
                main_key(m, key, &mut out);
            }
        }
    }
    mark_read(m, &mut out);
    out
}

/// The conversation on screen is read up to its newest message: tell the
/// user's other sessions (once per new message there).
fn mark_read(m: &mut Model, out: &mut Vec<Command>) {
    if m.link != Link::Online || m.screen != Screen::Main {
        return;
    }
    if let Some((target, id)) = m.mark_current_read() {
        out.push(Command::MarkRead { target, id });
    }
}
