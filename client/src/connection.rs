//! A blocking driver: one [`Session`] over one `TcpStream`, in the clear or
//! in TLS 1.3 ([`Security`], see [`crate::tls`]).
//!
//! [`connect`] opens the socket (and, with TLS, completes the handshake
//! within the same timeout) and says HELLO. The request helpers
//! ([`Connection::login`], [`Connection::send`], ...) queue a request, then
//! read until its answer arrives or the timeout passes, and return the
//! answer (a refusal is [`ConnectionError::Refused`]). Everything else that
//! arrives meanwhile is kept, in order, for [`Connection::next_event`]: a
//! helper never swallows a message, a roster change or a shutdown notice.
//!
//! PONG and ROSTER_ACK go out by themselves whenever the connection reads.
//! A connection is used from one thread. A terminal UI runs it on a network
//! thread that alternates `next_event` with a short timeout and the commands
//! from a channel, and forwards events through another channel (house rule
//! 10); a load generator runs one per thread, or drives [`Session`] itself.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_engine::frame::GroupInfo;
use confab_engine::{MessageId, Name, Ref, Target};

pub use crate::io_error::describe;
use crate::session::{
    ApiMisuse, Error, Event, HistoryPage, LoginOptions, Phase, ServerError, ServerHello, Session,
};
use crate::tls::{TlsConfig, TlsInfo};

mod device;
mod handshake;

use handshake::{handshake, looks_like_tls};

pub use device::DeviceLogin;

/// The timeout [`connect`] uses, and a sensible one for requests.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The name this client announces in HELLO.
pub const CLIENT_NAME: &str = concat!("confab/", env!("CARGO_PKG_VERSION"));

/// Why a connection or a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The TCP connection could not be made.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// `host:port` as given.
        addr: String,
        /// Why, in words (`connection refused`).
        reason: String,
    },
    /// The server's certificate is not the one pinned for it (trust on
    /// first use): someone may be intercepting the connection.
    #[error(
        "the certificate of {addr} has changed ({fingerprint}): someone may be intercepting \
         the connection; if this is expected, remove its line from {}",
        known_servers.display()
    )]
    CertificateChanged {
        /// `host:port`.
        addr: String,
        /// The fingerprint of the certificate shown now.
        fingerprint: String,
        /// The file that pins the old one.
        known_servers: std::path::PathBuf,
    },
    /// The server's certificate is refused (expired, for another name,
    /// signed by nobody trusted).
    #[error("the certificate of {addr} is not trusted: {reason}")]
    CertificateInvalid {
        /// `host:port`.
        addr: String,
        /// Why, in words.
        reason: String,
    },
    /// The TLS handshake failed for another reason (the server does not
    /// speak TLS, or speaks only TLS to a plaintext client).
    #[error("TLS with {addr} failed: {reason}")]
    Tls {
        /// `host:port`.
        addr: String,
        /// Why, in words.
        reason: String,
    },
    /// Reading or writing failed.
    #[error("connection to {addr} failed: {reason}")]
    Io {
        /// `host:port`.
        addr: String,
        /// Why, in words.
        reason: String,
    },
    /// The server closed the connection.
    #[error("the server closed the connection")]
    Closed,
    /// The server closed the connection after a fatal error.
    #[error("the server closed the connection: {0}")]
    ClosedWithError(ServerError),
    /// The server is shutting down.
    #[error("the server is shutting down: {reason} (come back in {retry_after_ms} ms)")]
    Shutdown {
        /// When to come back, in ms.
        retry_after_ms: u32,
        /// Why.
        reason: String,
    },
    /// No answer in time.
    #[error("no {waiting_for} from the server within {after:?}")]
    Timeout {
        /// What was awaited.
        waiting_for: &'static str,
        /// How long.
        after: Duration,
    },
    /// The server refused the request.
    #[error("{0}")]
    Refused(ServerError),
    /// The server sent something this client cannot accept.
    #[error(transparent)]
    Protocol(#[from] Error),
    /// The request is not allowed in the session's state.
    #[error(transparent)]
    Misuse(#[from] ApiMisuse),
}

/// A stored message's id and time, as acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack {
    /// The message's id.
    pub id: MessageId,
    /// Its commit time, in ms since the Unix epoch.
    pub timestamp_ms: u64,
}

/// Whether to speak TLS.
#[derive(Clone, Debug, Default)]
pub enum Security {
    /// Plain TCP.
    #[default]
    Plain,
    /// TLS 1.3, checking the certificate as the configuration says.
    Tls(Arc<TlsConfig>),
}

/// The byte stream under the session.
#[derive(Debug)]
enum Transport {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Transport {
    fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls(s) => s.get_ref(),
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            Transport::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            Transport::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(s) => s.flush(),
            Transport::Tls(s) => s.flush(),
        }
    }
}

/// A session over a blocking TCP stream (see the module docs).
#[derive(Debug)]
pub struct Connection {
    stream: Transport,
    tls: Option<TlsInfo>,
    /// Nothing was read yet (to recognise a TLS server's first bytes).
    fresh: bool,
    addr: String,
    session: Session,
    backlog: VecDeque<Event>,
    buf: Vec<u8>,
    out: Vec<u8>,
    eof: bool,
    /// The shutdown notice or fatal error that ended the session, if any.
    ending: Option<ConnectionError>,
}

/// Connects to `host:port` with [`DEFAULT_TIMEOUT`] and sends HELLO.
pub fn connect(host: &str, port: u16) -> Result<Connection, ConnectionError> {
    Connection::connect_timeout(host, port, DEFAULT_TIMEOUT)
}

impl Connection {
    /// Connects to `host:port`, trying each address it resolves to for at
    /// most `timeout`, and sends HELLO.
    pub fn connect_timeout(
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<Connection, ConnectionError> {
        Connection::connect_with(host, port, timeout, &Security::Plain)
    }

    /// Connects to `host:port` in the clear or with TLS; connecting and the
    /// TLS handshake together take at most about `timeout`.
    pub fn connect_with(
        host: &str,
        port: u16,
        timeout: Duration,
        security: &Security,
    ) -> Result<Connection, ConnectionError> {
        let start = Instant::now();
        let addr = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let fail = |e: io::Error| ConnectionError::Connect {
            addr: addr.clone(),
            reason: describe(&e),
        };
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address found");
        let mut stream = None;
        for a in (host, port).to_socket_addrs().map_err(fail)? {
            match TcpStream::connect_timeout(&a, timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let stream = stream.ok_or_else(|| fail(last))?;
        let setup = stream
            .set_nodelay(true)
            .and_then(|()| stream.set_write_timeout(Some(timeout)));
        setup.map_err(fail)?;
        let (stream, tls) = match security {
            Security::Plain => (Transport::Plain(stream), None),
            Security::Tls(config) => {
                let rest = timeout.saturating_sub(start.elapsed());
                let (s, info) = handshake(stream, host, &addr, config, rest)?;
                (Transport::Tls(Box::new(s)), info)
            }
        };
        let mut c = Connection {
            stream,
            tls,
            fresh: true,
            addr,
            session: Session::new(CLIENT_NAME),
            backlog: VecDeque::new(),
            buf: vec![0; 64 * 1024],
            out: Vec::new(),
            eof: false,
            ending: None,
        };
        c.flush()?;
        Ok(c)
    }

    /// `host:port` as connected to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The server's certificate and how it was trusted; `None` in the clear.
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.tls.as_ref()
    }

    /// The protocol session (roster, phase, last id, ...).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The session, to make a request without waiting for its answer; call
    /// [`Connection::flush`] after.
    pub fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    /// Writes whatever the session has queued.
    pub fn flush(&mut self) -> Result<(), ConnectionError> {
        if self.session.poll_transmit(&mut self.out) == 0 && self.out.is_empty() {
            return Ok(());
        }
        let r = self
            .stream
            .write_all(&self.out)
            .and_then(|()| self.stream.flush());
        self.out.clear();
        r.map_err(|e| self.io_error(&e))
    }

    /// Waits for SERVER_HELLO and returns it.
    pub fn server_hello(&mut self, timeout: Duration) -> Result<ServerHello, ConnectionError> {
        self.wait_until("SERVER_HELLO", timeout, |s| s.server().is_some())?;
        self.session
            .server()
            .cloned()
            .ok_or(ConnectionError::Closed)
    }

    /// Registers an account.
    pub fn register(
        &mut self,
        user: Name,
        password: &str,
        timeout: Duration,
    ) -> Result<(), ConnectionError> {
        let r = self.session.register(user, password)?;
        self.answer(r, "answer to REGISTER", timeout).map(|_| ())
    }

    /// Logs in; with `options.roster`, also waits for the roster snapshot.
    /// Returns the account name as registered. The LOGIN_OK is consumed; the
    /// snapshot and anything after it stay for [`Connection::next_event`].
    pub fn login(
        &mut self,
        user: Name,
        password: &str,
        options: LoginOptions,
        timeout: Duration,
    ) -> Result<Name, ConnectionError> {
        let start = Instant::now();
        let r = self.session.login(user, password, options)?;
        let user = match self.answer(r, "answer to LOGIN", timeout)? {
            Event::LoginOk { user, .. } => user,
            _ => return Err(ConnectionError::Closed),
        };
        let rest = timeout.saturating_sub(start.elapsed());
        self.wait_until("roster snapshot", rest, |s| s.phase() != Phase::RosterSync)?;
        Ok(user)
    }

    /// Logs out and waits for the server's OK.
    pub fn logout(&mut self, timeout: Duration) -> Result<(), ConnectionError> {
        let r = self.session.logout()?;
        self.answer(r, "answer to LOGOUT", timeout).map(|_| ())
    }

    /// Sends a message and waits until it is stored.
    pub fn send(
        &mut self,
        target: Target,
        body: &str,
        timeout: Duration,
    ) -> Result<Ack, ConnectionError> {
        let r = self.session.send(target, body)?;
        match self.answer(r, "ACK", timeout)? {
            Event::Ack {
                id, timestamp_ms, ..
            } => Ok(Ack { id, timestamp_ms }),
            _ => Err(ConnectionError::Closed),
        }
    }

    /// Creates a group.
    pub fn group_create(&mut self, group: Name, timeout: Duration) -> Result<(), ConnectionError> {
        let r = self.session.group_create(group)?;
        self.answer(r, "answer to GROUP_CREATE", timeout)
            .map(|_| ())
    }

    /// Joins a group.
    pub fn group_join(&mut self, group: Name, timeout: Duration) -> Result<(), ConnectionError> {
        let r = self.session.group_join(group)?;
        self.answer(r, "answer to GROUP_JOIN", timeout).map(|_| ())
    }

    /// Leaves a group.
    pub fn group_leave(&mut self, group: Name, timeout: Duration) -> Result<(), ConnectionError> {
        let r = self.session.group_leave(group)?;
        self.answer(r, "answer to GROUP_LEAVE", timeout).map(|_| ())
    }

    /// Lists the groups.
    pub fn group_list(&mut self, timeout: Duration) -> Result<Vec<GroupInfo>, ConnectionError> {
        let r = self.session.group_list()?;
        match self.answer(r, "GROUP_LIST", timeout)? {
            Event::GroupList { groups, .. } => Ok(groups),
            _ => Err(ConnectionError::Closed),
        }
    }

    /// Reads a page of a conversation's history (oldest entry first).
    pub fn history(
        &mut self,
        target: Target,
        before: MessageId,
        limit: u16,
        timeout: Duration,
    ) -> Result<HistoryPage, ConnectionError> {
        let r = self.session.history(target, before, limit)?;
        match self.answer(r, "HISTORY_PAGE", timeout)? {
            Event::HistoryPage(page) => Ok(page),
            _ => Err(ConnectionError::Closed),
        }
    }

    /// The next event, waiting at most `timeout` for one (`Ok(None)` when
    /// none came). Once the server has closed the connection and every
    /// event before that was returned, this returns the reason as an error.
    pub fn next_event(&mut self, timeout: Duration) -> Result<Option<Event>, ConnectionError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.backlog.pop_front() {
                return Ok(Some(e));
            }
            if !self.read_some(deadline)? {
                return Ok(None);
            }
        }
    }

    /// Waits for the answer to request `reference`; a refusal is an error.
    fn answer(
        &mut self,
        reference: Ref,
        waiting_for: &'static str,
        timeout: Duration,
    ) -> Result<Event, ConnectionError> {
        self.flush()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.backlog.iter().position(|e| answers(e, reference)) {
                return match self.backlog.remove(i) {
                    Some(Event::Error(e)) => Err(ConnectionError::Refused(e)),
                    Some(e) => Ok(e),
                    None => Err(ConnectionError::Closed),
                };
            }
            if self.session.phase() == Phase::Closed {
                return Err(self.closed_error());
            }
            if !self.read_some(deadline)? {
                return Err(ConnectionError::Timeout {
                    waiting_for,
                    after: timeout,
                });
            }
        }
    }

    fn wait_until(
        &mut self,
        waiting_for: &'static str,
        timeout: Duration,
        done: impl Fn(&Session) -> bool,
    ) -> Result<(), ConnectionError> {
        self.flush()?;
        let deadline = Instant::now() + timeout;
        while !done(&self.session) {
            if self.session.phase() == Phase::Closed {
                return Err(self.closed_error());
            }
            if !self.read_some(deadline)? {
                return Err(ConnectionError::Timeout {
                    waiting_for,
                    after: timeout,
                });
            }
        }
        Ok(())
    }

    /// Reads once, waiting until `deadline` at most. `Ok(false)`: nothing
    /// came in time; `Ok(true)`: something happened (bytes or end of stream).
    fn read_some(&mut self, deadline: Instant) -> Result<bool, ConnectionError> {
        if self.eof {
            return Err(self.closed_error());
        }
        let now = Instant::now();
        // A DELIVERED that has waited long enough goes out with the reads.
        self.session.tick(now);
        if self.session.wants_transmit() {
            let _ = self.flush();
        }
        if now >= deadline {
            return Ok(false);
        }
        let until = self
            .session
            .next_tick()
            .map_or(deadline, |t| t.min(deadline));
        let wait = until
            .saturating_duration_since(now)
            .max(Duration::from_millis(1));
        if let Err(e) = self.stream.tcp().set_read_timeout(Some(wait)) {
            return Err(self.io_error(&e));
        }
        match self.stream.read(&mut self.buf) {
            // A TLS peer that closes without close_notify has closed all the same.
            Ok(0) => {
                self.eof = true;
                self.session.handle_eof();
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                self.eof = true;
                self.session.handle_eof();
                Ok(true)
            }
            Ok(n) if std::mem::take(&mut self.fresh) && looks_like_tls(&self.buf[..n]) => {
                self.eof = true;
                self.session.handle_eof();
                Err(ConnectionError::Tls {
                    addr: self.addr.clone(),
                    reason: "the server speaks TLS: connect with --tls".into(),
                })
            }
            Ok(n) => {
                let r = self.session.handle_input(&self.buf[..n]);
                self.collect();
                r?;
                // A PONG or ROSTER_ACK may be due; a failed write shows up
                // on the next read, after the events already received.
                let _ = self.flush();
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                // Woken early for a DELIVERED: the caller's time is not up.
                Ok(Instant::now() < deadline)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(true),
            Err(e) => {
                // A reset after the server's last frames: what was read is
                // kept; the session is over.
                self.eof = true;
                self.session.handle_eof();
                if self.ending.is_some() {
                    Ok(true)
                } else {
                    Err(self.io_error(&e))
                }
            }
        }
    }

    /// Moves the session's events to the backlog, noting how it ends.
    fn collect(&mut self) {
        while let Some(e) = self.session.poll_event() {
            match &e {
                Event::Shutdown {
                    retry_after_ms,
                    reason,
                } => {
                    self.ending = Some(ConnectionError::Shutdown {
                        retry_after_ms: *retry_after_ms,
                        reason: reason.clone(),
                    })
                }
                Event::Error(err) if err.is_fatal() => {
                    self.ending = Some(ConnectionError::ClosedWithError(err.clone()))
                }
                _ => {}
            }
            self.backlog.push_back(e);
        }
    }

    fn closed_error(&self) -> ConnectionError {
        match &self.ending {
            Some(ConnectionError::Shutdown {
                retry_after_ms,
                reason,
            }) => ConnectionError::Shutdown {
                retry_after_ms: *retry_after_ms,
                reason: reason.clone(),
            },
            Some(ConnectionError::ClosedWithError(e)) => {
                ConnectionError::ClosedWithError(e.clone())
            }
            _ => match self.session.error() {
                Some(e) => ConnectionError::Protocol(e.clone()),
                None => ConnectionError::Closed,
            },
        }
    }

    fn io_error(&self, e: &io::Error) -> ConnectionError {
        ConnectionError::Io {
            addr: self.addr.clone(),
            reason: describe(e),
        }
    }
}

/// Whether `e` answers the request with this reference.
fn answers(e: &Event, reference: Ref) -> bool {
    match e {
        Event::Ok { reference: r, .. }
        | Event::LoginOk { reference: r, .. }
        | Event::Ack { reference: r, .. }
        | Event::GroupList { reference: r, .. }
        | Event::DeviceList { reference: r, .. } => *r == reference,
        Event::HistoryPage(p) => p.reference == reference,
        Event::Error(err) => err.reference == reference,
        _ => false,
    }
}
