//! Reconnecting: a lost link waits (doubling from [`BACKOFF_FIRST`], or as
//! long as the server said), then the tick logs in again from the resume
//! bookmark; a reconnect refused for good returns to the login screen.

use std::time::Duration;

use crate::tui::clock::Now;
use crate::tui::login_form::Problem;
use crate::tui::model::{Link, Model};
use crate::tui::network::{Command, Login, LoginProblem};

/// The first reconnect waits this long; each failure doubles it.
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
/// The longest wait between reconnect attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// The shortest wait after a SHUTDOWN, whatever it says.
pub(super) const SHUTDOWN_MIN: Duration = Duration::from_secs(1);

/// How long to wait before reconnect attempt `attempt + 1`.
pub(crate) fn backoff(attempt: u32) -> Duration {
    BACKOFF_FIRST
        .saturating_mul(1 << attempt.min(16))
        .min(BACKOFF_MAX)
}

/// The timer: when the wait is over, log in again from the bookmark.
pub(super) fn tick(m: &mut Model, now: Now, out: &mut Vec<Command>) {
    let Link::Waiting {
        retry_at, attempt, ..
    } = m.link
    else {
        return;
    };
    if now.mono < retry_at {
        return;
    }
    let Some(a) = &m.account else {
        m.link = Link::Offline;
        return;
    };
    out.push(Command::Connect(Login {
        host: a.host.clone(),
        port: a.port,
        user: a.user,
        password: a.password.clone(),
        register: false,
        resume_after: m.bookmark,
        device: m.device,
    }));
    m.link = Link::Reconnecting {
        attempt: attempt + 1,
    };
}

/// A login failed: while reconnecting, wait and retry if it may pass;
/// otherwise back to the login form, saying why.
pub(super) fn login_failed(m: &mut Model, p: LoginProblem, now: Now) {
    match m.link {
        Link::Reconnecting { attempt } if p.is_transient() => {
            let delay = match &p {
                LoginProblem::LockedOut { until_ms } => {
                    Duration::from_millis(until_ms.saturating_sub(now.wall_ms))
                }
                LoginProblem::ShuttingDown { retry_after_ms, .. }
                | LoginProblem::Busy { retry_after_ms } => {
                    Duration::from_millis(u64::from(*retry_after_ms)).max(SHUTDOWN_MIN)
                }
                _ => backoff(attempt),
            };
            let reason = m.describe(&Problem::Login(p));
            m.complain(format!("Reconnecting failed: {reason}"));
            m.link = Link::Waiting {
                retry_at: now.mono + delay,
                attempt,
            };
        }
        Link::Reconnecting { .. } => {
            // The account no longer logs in as it did (a changed password,
            // a changed certificate): the user has to decide.
            m.forget_chat();
            m.login.problem = Some(Problem::Login(p));
        }
        _ => {
            m.link = Link::Offline;
            m.login.busy = false;
            m.login.problem = Some(Problem::Login(p));
        }
    }
}

/// The connection is gone: say what may be lost and schedule a reconnect
/// (unless logging out, or a SHUTDOWN already said when).
pub(super) fn lost(m: &mut Model, reason: String, now: Now) {
    let unsent = m
        .requests
        .values()
        .filter(|c| matches!(c, Command::Send { .. }))
        .count();
    m.requests.clear();
    m.rtt = None;
    for c in m.conversations.values_mut() {
        c.fetching = false;
    }
    match m.link {
        // A SHUTDOWN already said when to come back, and why.
        Link::Waiting { .. } if unsent == 0 => return,
        Link::Waiting { .. } => {}
        Link::LoggingOut => {
            m.forget_chat();
            m.say("Logged out.");
            return;
        }
        _ => {
            m.link = Link::Waiting {
                retry_at: now.mono + backoff(0),
                attempt: 0,
            };
        }
    }
    if unsent > 0 && m.device.is_some() {
        m.complain(format!(
            "Connection lost: {unsent} message(s) go out again, once, after reconnecting."
        ));
    } else if unsent > 0 {
        m.complain(format!(
            "Connection lost: {unsent} message(s) may not have been sent."
        ));
    } else {
        m.complain(format!("Connection lost: {reason}. Reconnecting…"));
    }
}
