//! The network thread: one blocking [`Connection`] driven on its own
//! thread, commands in over one channel, [`NetEvent`]s out over another
//! (house rule 10).
//!
//! The thread makes no decisions: it connects and logs in when told to,
//! turns each [`Command`] into a request and echoes it with its reference
//! ([`NetEvent::Requested`]) before any answer can arrive, forwards every
//! session event, pings every [`PING_EVERY`] to measure the round trip,
//! and reports a lost connection. When and how to reconnect is the
//! update's business (`update.rs`), which sees the model's bookmark.
//!
//! [`NetPort`] is the tui-realm side: a sync port that drains the event
//! channel with `try_recv`.

use std::fmt;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use confab::session::code_name;
use confab::tls::Trust;
use confab::{
    Connection, ConnectionError, Event, Login2Options, LoginOptions, Outbox, Security, ServerHello,
};
use confab_engine::frame::{ErrorCode, Resume};
use confab_engine::{MessageId, Name, Ref, Target, Token};
use tuirealm::event::Event as UiEvent;
use tuirealm::listener::{Poll, PortResult};

/// How long connecting and each login step may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one read waits before the thread looks at its commands again.
const READ_SLICE: Duration = Duration::from_millis(20);
/// How often a logged-in connection pings the server for the round trip.
pub(crate) const PING_EVERY: Duration = Duration::from_secs(5);

/// What the UI asks the network thread to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    /// Drop any connection, connect, register if asked, log in.
    Connect(Login),
    /// Log out politely and close.
    Logout,
    /// Send a message.
    Send {
        /// Where to.
        target: Target,
        /// The text.
        body: String,
    },
    /// Create a group.
    GroupCreate(Name),
    /// Join a group.
    GroupJoin(Name),
    /// Leave a group.
    GroupLeave(Name),
    /// List every group.
    GroupList,
    /// A server operator's MODERATE.
    Moderate {
        /// What to do.
        action: confab_engine::frame::ModAction,
        /// To whom.
        user: Name,
        /// A ban's or mute's length in seconds; 0: until lifted.
        seconds: u32,
        /// Why.
        reason: String,
    },
    /// A server operator's DELETE of a message.
    Delete {
        /// The message.
        id: MessageId,
        /// Why.
        reason: String,
    },
    /// A server operator's ANNOUNCE.
    Announce(String),
    /// A group owner's or moderator's GROUP_MODERATE.
    GroupModerate {
        /// The group.
        group: Name,
        /// What to do.
        action: confab_engine::frame::GroupAction,
        /// To whom.
        user: Name,
        /// A mute's length in seconds; 0: until lifted.
        seconds: u32,
    },
    /// Tell the user's other sessions that a conversation is read up to `id`.
    MarkRead {
        /// The conversation.
        target: Target,
        /// Read up to here.
        id: MessageId,
    },
    /// Fetch stored messages of a conversation with ids below `before`
    /// (0: the newest).
    History {
        /// The conversation.
        target: Target,
        /// Only ids below this.
        before: MessageId,
        /// At most this many.
        limit: u16,
    },
    /// Log out if logged in, then end the thread.
    Quit,
}

/// Where to connect and who to be.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Login {
    /// Server host.
    pub(crate) host: String,
    /// Server port.
    pub(crate) port: u16,
    /// Account.
    pub(crate) user: Name,
    /// Password.
    pub(crate) password: String,
    /// Register the account first.
    pub(crate) register: bool,
    /// LOGIN's `resume_after`: the model's bookmark.
    pub(crate) resume_after: MessageId,
    /// Log in as this device (`--device`): later reconnects of this run
    /// use its token instead of the password.
    pub(crate) device: Option<Name>,
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &"…")
            .field("register", &self.register)
            .field("resume_after", &self.resume_after)
            .field("device", &self.device)
            .finish()
    }
}

/// What the network thread reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NetEvent {
    /// Logged in (after registering, if that was asked).
    LoggedIn {
        /// The account as registered.
        user: Name,
        /// `host:port`.
        addr: String,
        /// Whether the connection is encrypted.
        tls: bool,
        /// Something to tell about the connection (a certificate trusted on
        /// first use and pinned).
        notice: Option<String>,
        /// The server's hello.
        server: Option<ServerHello>,
    },
    /// Connecting, registering or logging in failed; no connection is left.
    LoginFailed(LoginProblem),
    /// A request went out under this reference (sent before its answer).
    Requested {
        /// Its reference.
        reference: Ref,
        /// What it was.
        command: Command,
    },
    /// A command could not be sent (not logged in, body too long, ...).
    NotSent {
        /// The command.
        command: Command,
        /// Why, in words.
        reason: String,
    },
    /// Something the server said.
    Session(Event),
    /// A measured round trip.
    Rtt(Duration),
    /// The connection is gone; why, in words.
    Lost(String),
    /// Logged out as asked; the connection is closed.
    LoggedOut,
}

/// Why a login attempt failed, in the terms the login screen shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LoginProblem {
    /// Wrong user name or password.
    WrongPassword,
    /// REGISTER: the name is registered already.
    NameTaken,
    /// REGISTER: the server does not take registrations.
    RegistrationClosed,
    /// Too many failed logins; the server accepts one again at `until_ms`
    /// (ms since the Unix epoch).
    LockedOut {
        /// When to retry, wall clock.
        until_ms: u64,
    },
    /// No TCP connection could be made.
    Unreachable {
        /// `host:port`.
        addr: String,
        /// Why, in words.
        reason: String,
    },
    /// The server stopped answering.
    Timeout,
    /// The server is shutting down.
    ShuttingDown {
        /// Its reason.
        reason: String,
        /// When to come back.
        retry_after_ms: u32,
    },
    /// The server is busy; retry after the delay.
    Busy {
        /// When to retry.
        retry_after_ms: u32,
    },
    /// The server's certificate is not the one pinned for it.
    CertificateChanged {
        /// `host:port`.
        addr: String,
        /// The fingerprint of the certificate shown now.
        fingerprint: String,
        /// The file that pins the old one.
        known_servers: String,
    },
    /// The server's certificate is refused (expired, for another name,
    /// signed by nobody trusted).
    CertificateInvalid {
        /// `host:port`.
        addr: String,
        /// Why, in words.
        reason: String,
    },
    /// Anything else, in words.
    Other(String),
}

impl LoginProblem {
    /// Whether trying again later may succeed without the user changing
    /// anything (the reconnect loop keeps trying these).
    pub(crate) fn is_transient(&self) -> bool {
        matches!(
            self,
            LoginProblem::LockedOut { .. }
                | LoginProblem::Unreachable { .. }
                | LoginProblem::Timeout
                | LoginProblem::ShuttingDown { .. }
                | LoginProblem::Busy { .. }
                | LoginProblem::Other(_)
        )
    }
}

/// Maps a connection error to what the login screen says.
pub(crate) fn problem_of(e: &ConnectionError, now_ms: u64) -> LoginProblem {
    match e {
        ConnectionError::CertificateChanged {
            addr,
            fingerprint,
            known_servers,
        } => LoginProblem::CertificateChanged {
            addr: addr.clone(),
            fingerprint: fingerprint.clone(),
            known_servers: known_servers.display().to_string(),
        },
        ConnectionError::CertificateInvalid { addr, reason } => LoginProblem::CertificateInvalid {
            addr: addr.clone(),
            reason: reason.clone(),
        },
        ConnectionError::Connect { addr, reason } | ConnectionError::Io { addr, reason } => {
            LoginProblem::Unreachable {
                addr: addr.clone(),
                reason: reason.clone(),
            }
        }
        ConnectionError::Timeout { .. } => LoginProblem::Timeout,
        ConnectionError::Shutdown {
            retry_after_ms,
            reason,
        } => LoginProblem::ShuttingDown {
            reason: reason.clone(),
            retry_after_ms: *retry_after_ms,
        },
        ConnectionError::Refused(err) | ConnectionError::ClosedWithError(err) => match err.code {
            ErrorCode::BadCredentials => LoginProblem::WrongPassword,
            ErrorCode::NameTaken => LoginProblem::NameTaken,
            ErrorCode::RegistrationClosed => LoginProblem::RegistrationClosed,
            ErrorCode::LockedOut => LoginProblem::LockedOut {
                until_ms: now_ms + u64::from(err.retry_after_ms),
            },
            ErrorCode::Busy | ErrorCode::RateLimited => LoginProblem::Busy {
                retry_after_ms: err.retry_after_ms,
            },
            _ => LoginProblem::Other(format!("{}: {}", code_name(err.code), err.text)),
        },
        other => LoginProblem::Other(other.to_string()),
    }
}

/// The UI's handle on the network thread.
pub(crate) struct Network {
    commands: Sender<Command>,
    thread: Option<JoinHandle<()>>,
}

impl Network {
    /// Starts the thread, which connects in the clear or with TLS as
    /// `security` says; returns the handle and the port for tui-realm.
    pub(crate) fn start(security: Security) -> (Network, NetPort) {
        let (commands, command_rx) = mpsc::channel();
        let (event_tx, events) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("confab-network".into())
            .spawn(move || Worker::new(event_tx, security).run(command_rx))
            .expect("a thread can be spawned at startup");
        (
            Network {
                commands,
                thread: Some(thread),
            },
            NetPort { events },
        )
    }

    /// Hands a command to the thread (a no-op once it has ended).
    pub(crate) fn send(&self, command: Command) {
        let _ = self.commands.send(command);
    }

    /// Asks the thread to log out and end, and waits for it for at most
    /// `patience`: a connect to an unreachable host may hold it longer,
    /// and the process is exiting anyway.
    pub(crate) fn shut_down(mut self, patience: Duration) {
        self.send(Command::Quit);
        let deadline = Instant::now() + patience;
        if let Some(t) = self.thread.take() {
            while !t.is_finished() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

/// The tui-realm port: drains the event channel without blocking.
pub(crate) struct NetPort {
    events: Receiver<NetEvent>,
}

impl Poll<NetEvent> for NetPort {
    fn poll(&mut self) -> PortResult<Option<UiEvent<NetEvent>>> {
        Ok(self.events.try_recv().ok().map(UiEvent::User))
    }
}

/// The thread's state.
struct Worker {
    events: Sender<NetEvent>,
    security: Security,
    conn: Option<Connection>,
    next_ping: Instant,
    /// The outstanding PING's token and when it went out.
    ping: Option<(u64, Instant)>,
    token: u64,
    /// The device token of this run's device login, to reconnect with
    /// instead of the password: (host, port, user, token).
    device: Option<(String, u16, Name, Token)>,
    /// The unacknowledged sends of the lost connection, for the next one.
    outbox: Option<Outbox>,
    /// Resent sends already reported to the UI as requested.
    announced: Vec<Ref>,
}

impl Worker {
    fn new(events: Sender<NetEvent>, security: Security) -> Worker {
        Worker {
            events,
            security,
            conn: None,
            next_ping: Instant::now(),
            ping: None,
            token: 0,
            device: None,
            outbox: None,
            announced: Vec::new(),
        }
    }

    fn emit(&self, e: NetEvent) {
        // The UI has gone away: nothing left to tell.
        let _ = self.events.send(e);
    }

    fn run(mut self, commands: Receiver<Command>) {
        loop {
            // Commands first, so typing never waits behind a busy socket.
            loop {
                let c = if self.conn.is_some() {
                    match commands.try_recv() {
                        Ok(c) => c,
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => return self.quit(),
                    }
                } else {
                    match commands.recv_timeout(Duration::from_secs(3600)) {
                        Ok(c) => c,
                        Err(RecvTimeoutError::Timeout) => continue,
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                };
                if c == Command::Quit {
                    return self.quit();
                }
                self.command(c);
            }
            self.read();
            self.maybe_ping();
        }
    }

    fn command(&mut self, c: Command) {
        if let Command::Connect(login) = c {
            return self.connect(&login);
        }
        let Some(conn) = self.conn.as_mut() else {
            self.emit(NetEvent::NotSent {
                command: c,
                reason: "not connected".into(),
            });
            return;
        };
        if c == Command::Logout {
            let _ = conn.logout(Duration::from_secs(2));
            self.conn = None;
            self.device = None;
            self.emit(NetEvent::LoggedOut);
            return;
        }
        if let Command::MarkRead { target, id } = c {
            // No answer; a refusal comes back as an ERROR event.
            if conn.session_mut().mark_read(target, id).is_ok() {
                self.flush();
            }
            return;
        }
        let s = conn.session_mut();
        let r = match &c {
            Command::Send { target, body } => s.send(*target, body),
            Command::GroupCreate(g) => s.group_create(*g),
            Command::GroupJoin(g) => s.group_join(*g),
            Command::GroupLeave(g) => s.group_leave(*g),
            Command::GroupList => s.group_list(),
            Command::Moderate {
                action,
                user,
                seconds,
                reason,
            } => s.moderate(*action, *user, *seconds, reason),
            Command::Delete { id, reason } => s.delete(*id, reason),
            Command::Announce(text) => s.announce(text),
            Command::GroupModerate {
                group,
                action,
                user,
                seconds,
            } => s.group_moderate(*group, *action, *user, *seconds, ""),
            Command::History {
                target,
                before,
                limit,
            } => s.history(*target, *before, *limit),
            Command::Connect(_) | Command::Logout | Command::Quit | Command::MarkRead { .. } => {
                unreachable!("handled above")
            }
        };
        match r {
            Ok(reference) => {
                self.emit(NetEvent::Requested {
                    reference,
                    command: c,
                });
                self.flush();
            }
            Err(e) => self.emit(NetEvent::NotSent {
                command: c,
                reason: e.to_string(),
            }),
        }
    }

    /// Drops any connection (keeping its unacknowledged sends), connects
    /// and logs in: by this run's device token if it has one for the
    /// account, else as `login` says.
    fn connect(&mut self, login: &Login) {
        if let Some(mut old) = self.conn.take() {
            self.outbox = Some(old.take_outbox());
        }
        let token = self.device.as_ref().and_then(|(h, p, u, t)| {
            (*h == login.host && *p == login.port && u.key() == login.user.key()).then_some(*t)
        });
        match open(login, &self.security, token) {
            Ok((mut conn, user, issued)) => {
                if let Some(t) = issued {
                    self.device = Some((login.host.clone(), login.port, login.user, t));
                }
                if conn.session().device().is_some() {
                    if let Some(o) = self.outbox.take() {
                        let _ = conn.adopt_outbox(o);
                    }
                }
                self.announced.clear();
                let server = conn.session().server().cloned();
                let addr = conn.addr().to_owned();
                let tls = conn.tls().is_some();
                let notice = conn.tls().and_then(|info| match &info.trust {
                    Trust::FirstUse(pinned) => {
                        Some(crate::first_use_notice(&addr, &info.fingerprint, pinned))
                    }
                    _ => None,
                });
                self.conn = Some(conn);
                self.ping = None;
                self.next_ping = Instant::now();
                self.emit(NetEvent::LoggedIn {
                    user,
                    addr,
                    tls,
                    notice,
                    server,
                });
            }
            Err(e) => {
                if matches!(
                    e,
                    ConnectionError::Refused(_) | ConnectionError::ClosedWithError(_)
                ) {
                    // A refused token is not tried again.
                    self.device = None;
                }
                self.emit(NetEvent::LoginFailed(problem_of(&e, now_ms())))
            }
        }
    }

    fn flush(&mut self) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        if let Err(e) = conn.flush() {
            self.lost(&e);
        }
    }

    fn read(&mut self) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        match conn.next_event(READ_SLICE) {
            Ok(Some(Event::Pong { token })) => {
                if let Some((t, sent)) = self.ping {
                    if t == token {
                        self.ping = None;
                        self.emit(NetEvent::Rtt(sent.elapsed()));
                    }
                }
            }
            Ok(Some(e)) => self.emit(NetEvent::Session(e)),
            Ok(None) => {}
            Err(e) => self.lost(&e),
        }
        self.announce_resends();
    }

    /// Sends taken over from a lost connection go out again once caught
    /// up, under new references: tell the UI, so that their ACKs show
    /// them (once: the UI keeps each id once).
    fn announce_resends(&mut self) {
        let Some(conn) = self.conn.as_ref() else {
            return;
        };
        let mut fresh = Vec::new();
        for u in conn.session().outbox().unacked() {
            if let Some(r) = u.reference() {
                if !self.announced.contains(&r) {
                    fresh.push((r, u.target, u.body.clone()));
                }
            }
        }
        for (reference, target, body) in fresh {
            self.announced.push(reference);
            self.emit(NetEvent::Requested {
                reference,
                command: Command::Send { target, body },
            });
        }
    }

    fn maybe_ping(&mut self) {
        let now = Instant::now();
        if self.conn.is_none() || now < self.next_ping {
            return;
        }
        self.next_ping = now + PING_EVERY;
        self.token = self.token.wrapping_add(1);
        let token = self.token;
        if let Some(conn) = self.conn.as_mut() {
            if conn.session_mut().ping(token).is_ok() {
                self.ping = Some((token, now));
                self.flush();
            }
        }
    }

    fn lost(&mut self, e: &ConnectionError) {
        if let Some(mut old) = self.conn.take() {
            self.outbox = Some(old.take_outbox());
        }
        self.ping = None;
        self.emit(NetEvent::Lost(e.to_string()));
    }

    fn quit(mut self) {
        if let Some(conn) = self.conn.as_mut() {
            let _ = conn.logout(Duration::from_secs(1));
        }
    }
}

/// Connects, registers if asked, logs in with the roster: by `token` if
/// this run has one for the account, as `l.device` by password if asked
/// (with a new token, returned), else by password without a device.
fn open(
    l: &Login,
    security: &Security,
    token: Option<Token>,
) -> Result<(Connection, Name, Option<Token>), ConnectionError> {
    let mut c = Connection::connect_with(&l.host, l.port, CONNECT_TIMEOUT, security)?;
    let v2 = |resume_after: MessageId| Login2Options {
        resume: match resume_after {
            MessageId(0) => Resume::Device,
            after => Resume::After(after),
        },
        roster: true,
    };
    if let Some(t) = token {
        let d = c.login_token(l.user, &t, v2(l.resume_after), CONNECT_TIMEOUT)?;
        return Ok((c, d.user, None));
    }
    if l.register {
        c.register(l.user, &l.password, CONNECT_TIMEOUT)?;
    }
    let options = LoginOptions {
        resume_after: l.resume_after,
        roster: true,
    };
    if let Some(device) = l.device {
        let d = c.login_device(
            l.user,
            &l.password,
            device,
            true,
            v2(l.resume_after),
            CONNECT_TIMEOUT,
        )?;
        return Ok((c, d.user, d.token));
    }
    let user = c.login(l.user, &l.password, options, CONNECT_TIMEOUT)?;
    Ok((c, user, None))
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
