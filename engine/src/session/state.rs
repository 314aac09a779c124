//! A session's states, the data valid in each, and the one table of which
//! request each state accepts.
//!
//! AwaitHello → Auth → RosterSync → Messaging → Closed (RosterSync is
//! skipped by a session that does not take the roster stream). Each state
//! holds exactly its data: the logged-in user exists only once a login
//! succeeded, a pending login only before. [`State::accepts`] is the table
//! "Frames accepted per state" of docs/PROTOCOL.md; the hub consults it
//! before acting on any request, so a request out of place gets
//! `WRONG_STATE` and nothing else happens. Transitions build the next
//! state from the current one's data (`Auth::logged_in`,
//! `LoggedIn::synced`).

use std::time::Instant;

use crate::device::DeviceId;
use crate::id::{MessageId, Ref, RosterVersion};
use crate::name::Name;
use crate::request::Request;
use crate::wire::frame::{ErrorCode, Resume};

/// The state of a session, with the data valid in it.
#[derive(Debug)]
pub(crate) enum State {
    /// Connected; the first request must be HELLO.
    AwaitHello(AwaitHello),
    /// HELLO done: REGISTER or LOGIN.
    Auth(Auth),
    /// Logged in, the roster snapshot sent, waiting for its ROSTER_ACK.
    RosterSync(LoggedIn),
    /// Logged in and synced.
    Messaging(LoggedIn),
    /// Closing: whatever is queued is flushed, then the shell closes.
    Closed(Closed),
}

/// Before HELLO.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AwaitHello {
    /// Login must succeed by then.
    pub(crate) deadline: Instant,
}

impl AwaitHello {
    /// HELLO was accepted.
    pub(crate) fn hello(self) -> Auth {
        Auth {
            deadline: self.deadline,
            pending: None,
        }
    }
}

/// After HELLO, not logged in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Auth {
    /// Login must succeed by then.
    pub(crate) deadline: Instant,
    /// A REGISTER or LOGIN waiting for the shell's answer.
    pub(crate) pending: Option<PendingAuth>,
}

impl Auth {
    /// The login succeeded: the state the session goes on in.
    pub(crate) fn logged_in(
        user: Name,
        device: Option<DeviceId>,
        version: RosterVersion,
        roster: bool,
    ) -> State {
        let l = LoggedIn {
            user,
            device,
            roster: RosterCursor {
                sent: version,
                acked: RosterVersion(0),
                needs_snapshot: false,
                synced_at: version,
            },
        };
        if roster {
            State::RosterSync(l)
        } else {
            State::Messaging(l)
        }
    }
}

/// A REGISTER or LOGIN being checked.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PendingAuth {
    Register {
        reference: Ref,
    },
    Login {
        reference: Ref,
        /// The name as typed: failures are counted against it.
        user: Name,
        resume_after: MessageId,
        roster: bool,
    },
    /// A LOGIN2: answered with LOGIN_OK2, and may resume at the device's
    /// bookmark.
    Login2 {
        reference: Ref,
        user: Name,
        resume: Resume,
        roster: bool,
    },
}

/// Logged in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoggedIn {
    pub(crate) user: Name,
    /// The device it logged in as (LOGIN2), if any.
    pub(crate) device: Option<DeviceId>,
    pub(crate) roster: RosterCursor,
}

impl LoggedIn {
    /// RosterSync's snapshot was acknowledged.
    pub(crate) fn synced(self) -> State {
        State::Messaging(self)
    }
}

/// Where a session stands in the roster stream.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RosterCursor {
    /// Newest version queued for the session.
    pub(crate) sent: RosterVersion,
    /// Newest version the client acknowledged.
    pub(crate) acked: RosterVersion,
    /// Queued deltas had to be dropped: send a snapshot when there is room.
    pub(crate) needs_snapshot: bool,
    /// The version of the last snapshot sent: acking it ends RosterSync.
    pub(crate) synced_at: RosterVersion,
}

/// Closing.
#[derive(Debug)]
pub(crate) struct Closed {
    pub(crate) reason: CloseReason,
    /// Room messages from this id on were committed after it closed: its
    /// writer flushes the room log only up to here.
    pub(crate) room_below: MessageId,
}

/// Why a session closed, for the shell's log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The client logged out.
    Logout,
    /// The server is shutting down.
    Shutdown,
    /// A fatal protocol error was sent to the client.
    Error(ErrorCode, String),
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::Logout => f.write_str("logged out"),
            CloseReason::Shutdown => f.write_str("server shutdown"),
            CloseReason::Error(code, text) => write!(f, "error {}: {text}", code.to_u16()),
        }
    }
}

/// The state names of docs/PROTOCOL.md, for errors and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Connected, no HELLO yet.
    AwaitHello,
    /// HELLO done, not logged in (or a login is being checked).
    Auth,
    /// Logged in, waiting for the snapshot's ROSTER_ACK.
    RosterSync,
    /// Logged in and synced.
    Messaging,
    /// Closing.
    Closed,
}

impl Phase {
    /// The state's name in docs/PROTOCOL.md.
    pub fn name(self) -> &'static str {
        match self {
            Phase::AwaitHello => "AwaitHello",
            Phase::Auth => "Auth",
            Phase::RosterSync => "RosterSync",
            Phase::Messaging => "Messaging",
            Phase::Closed => "Closed",
        }
    }
}

impl State {
    /// Whether the state takes `request` from the client: the table
    /// "Frames accepted per state" of docs/PROTOCOL.md, and the only place
    /// it is written down.
    pub(crate) fn accepts(&self, request: &Request<'_>) -> bool {
        use Request as R;
        match (self, request) {
            (State::Closed(_), _) => false,
            (_, R::Ping { .. } | R::Pong { .. }) => true,
            (State::AwaitHello(_), R::Hello { .. }) => true,
            (State::Auth(_), R::Register { .. } | R::Login { .. } | R::Login2 { .. }) => true,
            (
                State::RosterSync(_) | State::Messaging(_),
                R::Logout { .. } | R::RosterAck { .. } | R::Delivered { .. },
            ) => true,
            (
                State::Messaging(_),
                R::Group { .. }
                | R::GroupList { .. }
                | R::Send { .. }
                | R::Send2 { .. }
                | R::History { .. }
                | R::HistoryTargets { .. }
                | R::MarkRead { .. }
                | R::Devices { .. }
                | R::RevokeDevice { .. }
                | R::Moderate { .. }
                | R::Delete { .. }
                | R::Announce { .. }
                | R::GroupModerate { .. }
                | R::BanAddress { .. },
            ) => true,
            _ => false,
        }
    }

    /// The state's phase.
    pub(crate) fn phase(&self) -> Phase {
        match self {
            State::AwaitHello(_) => Phase::AwaitHello,
            State::Auth(_) => Phase::Auth,
            State::RosterSync(_) => Phase::RosterSync,
            State::Messaging(_) => Phase::Messaging,
            State::Closed(_) => Phase::Closed,
        }
    }

    /// Before login: the small frame limit and the pre-auth budget apply.
    pub(crate) fn before_login(&self) -> bool {
        matches!(self, State::AwaitHello(_) | State::Auth(_))
    }

    /// The login deadline, while there is one.
    pub(crate) fn auth_deadline(&self) -> Option<Instant> {
        match self {
            State::AwaitHello(a) => Some(a.deadline),
            State::Auth(a) => Some(a.deadline),
            _ => None,
        }
    }

    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        matches!(self, State::Closed(_))
    }

    /// The logged-in state, if any.
    #[inline]
    pub(crate) fn logged_in(&self) -> Option<&LoggedIn> {
        match self {
            State::RosterSync(l) | State::Messaging(l) => Some(l),
            _ => None,
        }
    }

    pub(crate) fn logged_in_mut(&mut self) -> Option<&mut LoggedIn> {
        match self {
            State::RosterSync(l) | State::Messaging(l) => Some(l),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::Target;

    #[test]
    fn the_state_table_admits_chat_requests_only_after_sync() {
        let now = Instant::now();
        let hello = State::AwaitHello(AwaitHello { deadline: now });
        let auth = State::Auth(Auth {
            deadline: now,
            pending: None,
        });
        let user = Name::new("ann").expect("valid");
        let sync = Auth::logged_in(user, None, RosterVersion(1), true);
        let messaging = Auth::logged_in(user, None, RosterVersion(1), false);
        let closed = State::Closed(Closed {
            reason: CloseReason::Logout,
            room_below: MessageId(1),
        });
        let login = Request::Login {
            reference: Ref(1),
            user,
            password: "pw",
            resume_after: MessageId(0),
            roster: true,
        };
        let send = Request::Send {
            reference: Ref(2),
            target: Target::Room,
            body: "hi",
            kind: crate::MessageKind::Message,
            tags: crate::ClientTags::default(),
        };
        let ack = Request::RosterAck {
            version: RosterVersion(1),
        };
        assert!(hello.accepts(&Request::Hello { version: 1 }));
        assert!(!hello.accepts(&login));
        assert!(auth.accepts(&login));
        assert!(!auth.accepts(&send));
        assert!(!sync.accepts(&send));
        assert!(sync.accepts(&ack));
        assert!(messaging.accepts(&send));
        assert!(!messaging.accepts(&Request::Hello { version: 1 }));
        assert!(!closed.accepts(&Request::Ping { token: 1 }));
        assert_eq!(
            [&hello, &auth, &sync, &messaging, &closed].map(State::phase),
            [
                Phase::AwaitHello,
                Phase::Auth,
                Phase::RosterSync,
                Phase::Messaging,
                Phase::Closed
            ]
        );
    }
}
