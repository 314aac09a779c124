//! One client connection's protocol state, sans I/O.
//!
//! A [`Session`] turns the server's bytes into typed [`Event`]s and the
//! application's requests into bytes for the server. It does no I/O and
//! reads no clock: a driver ([`crate::connection`], a terminal UI's network
//! task, a load generator) owns the socket and runs this loop:
//!
//! 1. call a request method ([`Session::login`], [`Session::send`], ...),
//!    which queues a frame and returns the request's reference;
//! 2. write out what [`Session::poll_transmit`] hands over;
//! 3. feed whatever the socket reads to [`Session::handle_input`] (or
//!    [`Session::handle_eof`] when it closes);
//! 4. drain [`Session::poll_event`] until it returns `None`, then go back
//!    to 2: handling input may queue frames of its own.
//!
//! The session answers PING with PONG and acknowledges the roster
//! (ROSTER_ACK) by itself; both show up only in `poll_transmit`. It keeps
//! the roster model ([`Session::roster`]) and the newest message id seen
//! ([`Session::last_id`], for LOGIN's `resume_after` after a reconnect).
//!
//! Every request carries a reference, numbered from 1 upwards. An answer
//! (OK, ACK, ERROR, GROUP_LIST, HISTORY_PAGE, LOGIN_OK) echoes it, and the
//! events that carry one also say which [`Request`] it answered, so a caller
//! may match answers by reference or simply look at the request.
//!
//! Errors: [`Error`] means the server sent something this client cannot
//! accept; it is sticky (every later `handle_input` returns it again) and the
//! driver should close the connection. [`ApiMisuse`] means the caller asked
//! for something the session's state does not allow; nothing is sent.

use std::collections::{HashMap, VecDeque};

use confab_engine::codec::DecodeError;
use confab_engine::frame::{Frame, Text, PROTOCOL_VERSION};
use confab_engine::{decode, MessageId, Name, Password, Ref, RosterVersion, Target};

use crate::roster::Roster;

mod outbox;
mod types;
mod v2;

pub use outbox::{Outbox, Unacked, MAX_UNACKED};
pub use types::{
    code_name, ApiMisuse, Error, Event, HistoryPage, LoginOptions, Message, Request, ServerError,
    ServerHello,
};
pub use v2::{Login2Options, DELIVERED_DELAY, DELIVERED_EVERY};

/// The largest frame this client accepts from a server. Servers chunk their
/// lists below their own `max_frame` (64 KiB by default); this bounds the
/// memory a misbehaving server can make the client reserve.
pub const MAX_INBOUND_FRAME: u32 = 16 * 1024 * 1024;

/// The longest password this client sends: the protocol's limit
/// ([`Password::MAX_LEN`], docs/PROTOCOL.md, all a `short` carries), so
/// that the client refuses what every server refuses. A login with a
/// longer password could not match a registered one anyway.
pub const MAX_PASSWORD_LEN: usize = Password::MAX_LEN;

/// The client side of one connection (see the module docs).
#[derive(Debug)]
pub struct Session {
    state: State,
    inbuf: Vec<u8>,
    transmit: Vec<u8>,
    events: VecDeque<Event>,
    next_ref: Ref,
    pending: HashMap<Ref, Request>,
    roster: Roster,
    /// The newest roster version acknowledged to the server.
    roster_acked: RosterVersion,
    server: Option<ServerHello>,
    last_id: MessageId,
    error: Option<Error>,
    /// Devices, DELIVERED (version 2).
    v2: v2::DeviceState,
    /// The SEND2s without an ACK yet.
    outbox: Outbox,
}

/// Where the session stands, as far as this client can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Not logged in: REGISTER and LOGIN are allowed (HELLO is already queued).
    Auth,
    /// Logged in with the roster requested; its snapshot has not completed
    /// yet, so the server still refuses chat requests.
    RosterSync,
    /// Logged in: every request is allowed.
    Messaging,
    /// Logged out, shut down, closed by a fatal error or by the peer.
    Closed,
}

#[derive(Debug)]
enum State {
    Auth,
    RosterSync(LoggedIn),
    Messaging(LoggedIn),
    Closed,
}

#[derive(Debug, Clone, Copy)]
struct LoggedIn {
    user: Name,
}

impl Session {
    /// A new session; HELLO (with `client` as the client's name) is queued.
    pub fn new(client: &str) -> Session {
        let mut s = Session {
            state: State::Auth,
            inbuf: Vec::new(),
            transmit: Vec::new(),
            events: VecDeque::new(),
            next_ref: Ref(1),
            pending: HashMap::new(),
            roster: Roster::default(),
            roster_acked: RosterVersion(0),
            server: None,
            last_id: MessageId(0),
            error: None,
            v2: v2::DeviceState::default(),
            outbox: Outbox::random(),
        };
        let mut end = client.len().min(255);
        while !client.is_char_boundary(end) {
            end -= 1;
        }
        s.queue(&Frame::Hello {
            version: PROTOCOL_VERSION,
            client: Text::truncated(&client[..end]),
        });
        s
    }

    // ---- getters ----

    /// Where the session stands.
    pub fn phase(&self) -> Phase {
        match self.state {
            State::Auth => Phase::Auth,
            State::RosterSync(_) => Phase::RosterSync,
            State::Messaging(_) => Phase::Messaging,
            State::Closed => Phase::Closed,
        }
    }

    /// The logged-in user, as registered.
    pub fn user(&self) -> Option<Name> {
        match &self.state {
            State::RosterSync(l) | State::Messaging(l) => Some(l.user),
            _ => None,
        }
    }

    /// The server's hello, once it arrived.
    pub fn server(&self) -> Option<&ServerHello> {
        self.server.as_ref()
    }

    /// Who is online (empty unless the login asked for the roster).
    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// The newest message id this session has received (in a MESSAGE, or
    /// covered by CAUGHT_UP): pass it as `resume_after` when logging in
    /// again. Messages arrive in id order, so nothing older is missing
    /// (except what MISSED reported). ACK ids do not count: an ACK may
    /// overtake messages still on their way.
    pub fn last_id(&self) -> MessageId {
        self.last_id
    }

    /// The request a reference stands for, while it waits for its answer.
    pub fn pending(&self, reference: Ref) -> Option<&Request> {
        self.pending.get(&reference)
    }

    /// The sticky error, if the server sent something unacceptable.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    // ---- requests ----

    /// Creates an account. Answered by [`Event::Ok`] or [`Event::Error`].
    pub fn register(&mut self, user: Name, password: &str) -> Result<Ref, ApiMisuse> {
        self.check_auth()?;
        let password = password_text(password)?;
        let reference = self.request(Request::Register { user });
        self.queue(&Frame::Register {
            reference,
            user,
            password,
        });
        Ok(reference)
    }

    /// Logs in. Answered by [`Event::LoginOk`] (then, with the roster,
    /// [`Event::RosterSnapshot`]; then any replay and [`Event::CaughtUp`]) or
    /// by [`Event::Error`].
    pub fn login(
        &mut self,
        user: Name,
        password: &str,
        options: LoginOptions,
    ) -> Result<Ref, ApiMisuse> {
        self.check_auth()?;
        let password = password_text(password)?;
        let reference = self.request(Request::Login {
            user,
            roster: options.roster,
        });
        self.queue(&Frame::Login {
            reference,
            user,
            password,
            resume_after: options.resume_after,
            roster: options.roster,
        });
        Ok(reference)
    }

    /// Asks the server for a PONG with the same token ([`Event::Pong`]), to
    /// measure the round trip. Allowed in every state but Closed; not rate
    /// limited by the server.
    pub fn ping(&mut self, token: u64) -> Result<(), ApiMisuse> {
        if let State::Closed = self.state {
            return Err(ApiMisuse::Closed);
        }
        self.queue(&Frame::Ping { token });
        Ok(())
    }

    /// Ends the session. Answered by [`Event::Ok`], then the server closes.
    pub fn logout(&mut self) -> Result<Ref, ApiMisuse> {
        match self.state {
            State::RosterSync(_) | State::Messaging(_) => {}
            State::Auth => return Err(ApiMisuse::NotLoggedIn),
            State::Closed => return Err(ApiMisuse::Closed),
        }
        // The bookmark is stored before LOGOUT's OK: make it complete.
        self.deliver_now();
        let reference = self.request(Request::Logout);
        self.queue(&Frame::Logout { reference });
        Ok(reference)
    }

    /// Sends a message. Answered by [`Event::Ack`] or [`Event::Error`].
    pub fn send(&mut self, target: Target, body: &str) -> Result<Ref, ApiMisuse> {
        self.check_messaging()?;
        let body = Text::new(body).map_err(|e| ApiMisuse::BodyTooLong {
            len: e.0,
            max: Text::MAX_LEN,
        })?;
        if self.v2.device.is_some() {
            return self.send2(target, body);
        }
        let reference = self.request(Request::Send { target });
        self.queue(&Frame::Send {
            reference,
            target,
            body,
        });
        Ok(reference)
    }

    /// Creates a group, with this user as its first member.
    pub fn group_create(&mut self, group: Name) -> Result<Ref, ApiMisuse> {
        self.check_messaging()?;
        let reference = self.request(Request::GroupCreate { group });
        self.queue(&Frame::GroupCreate { reference, group });
        Ok(reference)
    }

    /// Joins a group.
    pub fn group_join(&mut self, group: Name) -> Result<Ref, ApiMisuse> {
        self.check_messaging()?;
        let reference = self.request(Request::GroupJoin { group });
        self.queue(&Frame::GroupJoin { reference, group });
        Ok(reference)
    }

    /// Leaves a group.
    pub fn group_leave(&mut self, group: Name) -> Result<Ref, ApiMisuse> {
        self.check_messaging()?;
        let reference = self.request(Request::GroupLeave { group });
        self.queue(&Frame::GroupLeave { reference, group });
        Ok(reference)
    }

    /// Lists the groups. Answered by [`Event::GroupList`].
    pub fn group_list(&mut self) -> Result<Ref, ApiMisuse> {
        self.check_messaging()?;
        let reference = self.request(Request::GroupList);
        self.queue(&Frame::GroupListRequest { reference });
        Ok(reference)
    }

    /// Reads stored messages of a conversation with ids below `before` (0:
    /// from the newest), at most `limit`. Answered by [`Event::HistoryPage`].
    pub fn history(
        &mut self,
        target: Target,
        before: MessageId,
        limit: u16,
    ) -> Result<Ref, ApiMisuse> {
        self.check_messaging()?;
        let reference = self.request(Request::History { target });
        self.queue(&Frame::HistoryRequest {
            reference,
            target,
            before,
            limit,
        });
        Ok(reference)
    }

    // ---- input and output ----

    /// Bytes read from the server. Decodes every complete frame, queues the
    /// resulting events and any automatic answers (PONG, ROSTER_ACK), and
    /// keeps an incomplete frame for the next call.
    pub fn handle_input(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        self.inbuf.extend_from_slice(bytes);
        let buf = std::mem::take(&mut self.inbuf);
        let mut off = 0;
        let result = loop {
            match decode(&buf[off..], MAX_INBOUND_FRAME) {
                Ok(None) => break Ok(()),
                Ok(Some((frame, n))) => {
                    off += n;
                    if let Err(e) = self.handle_frame(frame) {
                        break Err(e);
                    }
                }
                // A newer server's frame type: its length is known, skip it.
                Err(DecodeError::UnknownType { frame_len, .. }) => off += frame_len,
                Err(e) => break Err(Error::Decode(e)),
            }
        };
        self.inbuf = buf;
        self.inbuf.drain(..off);
        if let Err(e) = result {
            self.state = State::Closed;
            self.error = Some(e.clone());
            return Err(e);
        }
        self.ack_roster();
        self.after_input();
        Ok(())
    }

    /// The server closed the connection: the session is over.
    pub fn handle_eof(&mut self) {
        self.state = State::Closed;
        self.pending.clear();
    }

    /// Appends the bytes to send to `out`; returns how many. Call after every
    /// request and every [`Session::handle_input`].
    #[must_use = "the bytes must be written to the server"]
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let n = self.transmit.len();
        out.append(&mut self.transmit);
        n
    }

    /// Whether bytes wait in [`Session::poll_transmit`].
    pub fn wants_transmit(&self) -> bool {
        !self.transmit.is_empty()
    }

    /// The next event, oldest first.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ---- internals ----

    fn check_auth(&self) -> Result<(), ApiMisuse> {
        match self.state {
            State::Auth => {}
            State::RosterSync(_) | State::Messaging(_) => return Err(ApiMisuse::AlreadyLoggedIn),
            State::Closed => return Err(ApiMisuse::Closed),
        }
        let auth_pending = self.pending.values().any(|r| {
            matches!(
                r,
                Request::Register { .. } | Request::Login { .. } | Request::Login2 { .. }
            )
        });
        if auth_pending {
            return Err(ApiMisuse::AuthPending);
        }
        Ok(())
    }

    fn check_messaging(&self) -> Result<(), ApiMisuse> {
        match self.state {
            State::Messaging(_) => Ok(()),
            State::RosterSync(_) => Err(ApiMisuse::RosterSyncing),
            State::Auth => Err(ApiMisuse::NotLoggedIn),
            State::Closed => Err(ApiMisuse::Closed),
        }
    }

    fn request(&mut self, request: Request) -> Ref {
        let reference = self.next_ref;
        // Zero means "no reference"; skip it when the counter wraps.
        self.next_ref = Ref(self.next_ref.0.checked_add(1).unwrap_or(1));
        self.pending.insert(reference, request);
        reference
    }

    fn queue(&mut self, frame: &Frame<'_>) {
        frame.encode(&mut self.transmit);
    }

    fn push(&mut self, event: Event) {
        self.events.push_back(event);
    }

    fn seen(&mut self, id: MessageId) {
        self.last_id = self.last_id.max(id);
    }

    /// Acknowledges the roster once per batch of input, after a completed
    /// snapshot or any deltas: one ack covers every version up to it.
    fn ack_roster(&mut self) {
        let logged_in = matches!(self.state, State::RosterSync(_) | State::Messaging(_));
        if logged_in && self.roster.is_synced() && self.roster.version() > self.roster_acked {
            self.roster_acked = self.roster.version();
            let version = self.roster_acked;
            self.queue(&Frame::RosterAck { version });
        }
        if let State::RosterSync(l) = self.state {
            if self.roster.is_synced() {
                self.state = State::Messaging(l);
            }
        }
    }

    fn handle_frame(&mut self, frame: Frame<'_>) -> Result<(), Error> {
        let Some(frame) = self.handle_v2_frame(frame) else {
            return Ok(());
        };
        match frame {
            Frame::Ping { token } => self.queue(&Frame::Pong { token }),
            Frame::Pong { token } => self.push(Event::Pong { token }),
            Frame::ServerHello {
                version,
                server,
                info,
            } => {
                if version != PROTOCOL_VERSION {
                    return Err(Error::UnsupportedVersion(version));
                }
                let hello = ServerHello {
                    server: server.as_str().to_owned(),
                    info,
                };
                self.server = Some(hello.clone());
                self.push(Event::ServerHello(hello));
            }
            Frame::Ok { reference } => {
                let request = self.pending.remove(&reference);
                if let Some(Request::Logout) = request {
                    self.state = State::Closed;
                }
                self.push(Event::Ok { reference, request });
            }
            Frame::LoginOk { reference, user } => {
                let roster = match self.pending.remove(&reference) {
                    Some(Request::Login { roster, .. }) => roster,
                    // A LOGIN_OK we did not ask for: trust the server's word
                    // that we are logged in, without a roster.
                    _ => false,
                };
                let l = LoggedIn { user };
                self.state = if roster {
                    State::RosterSync(l)
                } else {
                    State::Messaging(l)
                };
                self.push(Event::LoginOk { reference, user });
            }
            Frame::RosterSnapshot {
                version,
                last,
                users,
            } => {
                if let Some(users) = self.roster.apply_chunk(version, last, users) {
                    self.push(Event::RosterSnapshot { version, users });
                }
            }
            Frame::RosterDelta {
                version,
                presence,
                user,
            } => {
                if self.roster.apply_delta(version, presence, user) {
                    self.push(Event::RosterDelta {
                        version,
                        presence,
                        user,
                    });
                }
            }
            Frame::Ack {
                reference,
                id,
                timestamp_ms,
            } => {
                // An ACK is a control frame and may overtake messages still
                // queued for this session: it must not move the resume point.
                let target = match self.pending.remove(&reference) {
                    Some(Request::Send { target }) => Some(target),
                    _ => None,
                };
                self.outbox.settle(reference);
                self.push(Event::Ack {
                    reference,
                    id,
                    timestamp_ms,
                    target,
                });
            }
            Frame::Message {
                id,
                timestamp_ms,
                sender,
                target,
                body,
            } => {
                // Ids are unique and increase: one seen already (a replay
                // after a reconnect) is not shown again.
                if !self.message_is_new(id) {
                    return Ok(());
                }
                self.seen(id);
                self.push(Event::Message(Message {
                    id,
                    timestamp_ms,
                    sender,
                    target,
                    body: body.as_str().to_owned(),
                }));
            }
            Frame::GroupEvent {
                change,
                group,
                user,
            } => self.push(Event::GroupEvent {
                change,
                group,
                user,
            }),
            Frame::GroupList { reference, groups } => {
                self.pending.remove(&reference);
                self.push(Event::GroupList { reference, groups });
            }
            Frame::HistoryPage {
                reference,
                target,
                more,
                entries,
            } => {
                self.pending.remove(&reference);
                let me = self.user();
                let mut messages: Vec<Message> = entries
                    .iter()
                    .map(|e| Message {
                        id: e.id,
                        timestamp_ms: e.timestamp_ms,
                        sender: e.sender,
                        target: recipient(target, e.sender, me),
                        body: e.body.as_str().to_owned(),
                    })
                    .collect();
                messages.sort_by_key(|m| m.id);
                self.push(Event::HistoryPage(HistoryPage {
                    reference,
                    target,
                    more,
                    messages,
                }));
            }
            Frame::CaughtUp { last_id } => {
                self.seen(last_id);
                self.caught_up();
                self.push(Event::CaughtUp { last_id });
            }
            Frame::Missed {
                target,
                first,
                last,
                count,
            } => self.push(Event::Missed {
                target,
                first,
                last,
                count,
            }),
            Frame::Error {
                code,
                reference,
                retry_after_ms,
                text,
            } => {
                let request = if reference == Ref(0) {
                    None
                } else {
                    self.pending.remove(&reference)
                };
                self.outbox.settle(reference);
                if code.is_fatal() {
                    self.state = State::Closed;
                }
                self.push(Event::Error(ServerError {
                    code,
                    reference,
                    retry_after_ms,
                    text: text.as_str().to_owned(),
                    request,
                }));
            }
            Frame::Shutdown {
                retry_after_ms,
                reason,
            } => {
                self.state = State::Closed;
                self.push(Event::Shutdown {
                    retry_after_ms,
                    reason: reason.as_str().to_owned(),
                });
            }
            other => {
                return Err(Error::UnexpectedFrame { got: other.name() });
            }
        }
        Ok(())
    }
}

/// The actual recipient of a history entry: for a direct conversation with
/// `partner`, the partner if this user sent it, else this user.
fn recipient(conversation: Target, sender: Name, me: Option<Name>) -> Target {
    match (conversation, me) {
        (Target::User(_), Some(me)) if sender.key() != me.key() => Target::User(me),
        (t, _) => t,
    }
}

fn password_text(password: &str) -> Result<Text<'_>, ApiMisuse> {
    if Password::new(password).is_none() {
        return Err(ApiMisuse::BadPassword);
    }
    Text::new(password).map_err(|_| ApiMisuse::BadPassword)
}

#[cfg(test)]
mod tests;
