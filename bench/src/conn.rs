//! One client connection: connecting (optionally from a chosen loopback
//! source address), a read buffer that decodes frames in place with the
//! engine's codec, a write buffer, and the REGISTER + LOGIN handshake.
//!
//! Nothing here allocates per message: frames are decoded borrowing the
//! read buffer and encoded into a reused write buffer.
//!
//! TLS plugs in at [`Connector`] and [`Stream`]: the connector holds the
//! rustls client configuration (TLS 1.3, ring, trusting `--tls-ca` or, with
//! `--insecure-skip-tls-verify`, any certificate) and the server name; the
//! stream is futures-rustls over `Async<TcpStream>`. Everything above only
//! sees `AsyncRead + AsyncWrite`.

use std::fmt;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_io::{Async, Timer};
use confab_engine::codec::frame_len;
use confab_engine::frame::{ErrorCode, Text, PROTOCOL_VERSION};
use confab_engine::{decode, DecodeError, Frame, MessageId, Name, Ref};

pub(crate) use crate::body::{encode_send, Stamp, FOREIGN_SENDER};
use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_lite::{future, AsyncWriteExt};

/// A bench failure, with what was being done.
#[derive(Debug)]
pub(crate) struct Error(pub(crate) String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error(e.to_string())
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Error {
        Error(format!("bad frame from the server: {e}"))
    }
}

pub(crate) type Result<T> = std::result::Result<T, Error>;

/// Shorthand for an [`Error`].
pub(crate) fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error(msg.into()))
}

/// How connections are made.
#[derive(Clone, Debug)]
pub(crate) enum Connector {
    /// Plain TCP.
    Tcp,
    /// TLS over TCP: the configuration and the name the certificate must carry.
    Tls(
        Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    ),
    /// A WebSocket (`ws.rs`) over TCP or TLS (`--transport ws`).
    Ws(Box<Connector>),
}

impl Connector {
    /// Connects to `remote`, from `local` (port chosen by the kernel) if given.
    pub(crate) async fn connect(
        &self,
        remote: SocketAddr,
        local: Option<IpAddr>,
    ) -> Result<Stream> {
        match self {
            Connector::Ws(inner) => {
                let tls = matches!(**inner, Connector::Tls(..));
                let stream = inner.connect_base(remote, local).await?;
                let ws = crate::ws::upgrade(stream, remote, tls).await?;
                Ok(Stream::Ws(Box::new(ws)))
            }
            base => base.connect_base(remote, local).await,
        }
    }

    /// TCP or TLS, without a WebSocket.
    async fn connect_base(&self, remote: SocketAddr, local: Option<IpAddr>) -> Result<Stream> {
        match self {
            Connector::Ws(_) => err("a WebSocket over a WebSocket"),
            Connector::Tcp => Ok(Stream::Tcp(connect_tcp(remote, local).await?)),
            Connector::Tls(config, name) => {
                let tcp = connect_tcp(remote, local).await?;
                let tls = futures_rustls::TlsConnector::from(config.clone())
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| Error(format!("TLS handshake with {remote} failed: {e}")))?;
                Ok(Stream::Tls(Box::new(tls)))
            }
        }
    }

    /// A TLS connector for `host`, trusting the PEM certificates in `ca`,
    /// or (`insecure`) any certificate at all.
    pub(crate) fn tls(host: &str, ca: Option<&Path>, insecure: bool) -> Result<Connector> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, ServerName};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| Error(e.to_string()))?;
        let config = match (ca, insecure) {
            (Some(ca), false) => {
                let certs = CertificateDer::pem_file_iter(ca)
                    .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                    .map_err(|e| Error(format!("--tls-ca {}: {e:?}", ca.display())))?;
                let mut roots = rustls::RootCertStore::empty();
                if roots.add_parsable_certificates(certs).0 == 0 {
                    return err(format!("--tls-ca {}: no certificate", ca.display()));
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            (None, true) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth(),
            _ => return err("--tls needs either --tls-ca FILE or --insecure-skip-tls-verify"),
        };
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| Error(format!("{host} is not a valid TLS server name")))?;
        Ok(Connector::Tls(Arc::new(config), name))
    }
}

/// `--insecure-skip-tls-verify`: any certificate is accepted (the
/// handshake signature is still checked, so the crypto work is the real
/// one). For load tests against a throwaway server only.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Only loopback targets: the bench must never send load elsewhere.
pub(crate) fn check_loopback(addr: &SocketAddr) -> Result<()> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        err(format!(
            "{addr} is not a loopback address: confab-bench only targets 127.0.0.0/8 or ::1"
        ))
    }
}

async fn connect_tcp(remote: SocketAddr, local: Option<IpAddr>) -> io::Result<Async<TcpStream>> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(remote),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )?;
    if let Some(ip) = local {
        socket.bind(&SocketAddr::new(ip, 0).into())?;
    }
    match socket.connect(&remote.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    let stream = Async::new(TcpStream::from(socket))?;
    stream.writable().await?;
    if let Some(e) = stream.get_ref().take_error()? {
        return Err(e);
    }
    // Frames are written whole: no need to wait for more.
    stream.get_ref().set_nodelay(true)?;
    Ok(stream)
}

/// A connected byte stream.
#[derive(Debug)]
pub(crate) enum Stream {
    /// Plain TCP.
    Tcp(Async<TcpStream>),
    /// TLS over TCP.
    Tls(Box<futures_rustls::client::TlsStream<Async<TcpStream>>>),
    /// A WebSocket over either.
    Ws(Box<crate::ws::WsStream>),
}

impl Stream {
    /// Ready once the stream may have bytes to read. For TCP this waits for
    /// the reactor's event without a `read` that would only say "would
    /// block"; a stream with its own buffering (TLS) must say `Ready`.
    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Tcp(s) => s.poll_readable(cx),
            // Decrypted bytes (or a message's payload) may wait in
            // rustls (or tungstenite): the read is the wait.
            Stream::Tls(_) | Stream::Ws(_) => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
            Stream::Ws(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
            Stream::Ws(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
            Stream::Ws(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_close(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_close(cx),
            Stream::Ws(s) => Pin::new(&mut **s).poll_close(cx),
        }
    }
}

/// Frames received: a buffer the socket is read into and frames are
/// decoded from in place. It grows only when a frame does not fit.
pub(crate) struct Reader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    max_frame: u32,
    /// The last read did not fill the buffer: the socket is most likely
    /// drained, so wait for readiness before reading again (saves a `read`
    /// syscall per wake-up, which matters when each wake brings one frame).
    drained: bool,
    /// IRC: the buffer holds `\r\n`-terminated lines, not frames (no
    /// frame header to size the buffer by).
    lines: bool,
}

impl Reader {
    /// A reader with `size` bytes of buffer.
    pub(crate) fn new(size: usize) -> Reader {
        Reader {
            buf: vec![0; size.max(64)],
            start: 0,
            end: 0,
            max_frame: 64 * 1024,
            drained: false,
            lines: false,
        }
    }

    /// A reader of IRC lines, with `size` bytes of buffer (a line longer
    /// than that is an error).
    pub(crate) fn lines(size: usize) -> Reader {
        Reader {
            lines: true,
            ..Reader::new(size)
        }
    }

    /// The next whole line in the buffer, without its line end.
    pub(crate) fn next_line(&mut self) -> Option<&[u8]> {
        let have = &self.buf[self.start..self.end];
        let n = have.iter().position(|&b| b == b'\n')?;
        let line = &self.buf[self.start..self.start + n];
        self.start += n + 1;
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }

    /// The largest frame accepted, as the server announced.
    pub(crate) fn set_max_frame(&mut self, max: u32) {
        self.max_frame = max;
    }

    /// Reads once from `stream` (cancel-safe: nothing is lost if the
    /// future is dropped). `Ready(Ok(0))` means the peer closed.
    pub(crate) fn poll_fill(
        &mut self,
        cx: &mut Context<'_>,
        stream: &mut Stream,
    ) -> Poll<io::Result<usize>> {
        if let Err(e) = self.make_room() {
            return Poll::Ready(Err(e));
        }
        if self.drained {
            match stream.poll_readable(cx) {
                Poll::Ready(Ok(())) => self.drained = false,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        let end = self.end;
        let room = self.buf.len() - end;
        match Pin::new(stream).poll_read(cx, &mut self.buf[end..]) {
            Poll::Ready(Ok(n)) => {
                self.end += n;
                self.drained = n > 0 && n < room;
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    /// Reads once; `Ok(0)` means the peer closed.
    pub(crate) async fn fill(&mut self, stream: &mut Stream) -> io::Result<usize> {
        future::poll_fn(|cx| self.poll_fill(cx, stream)).await
    }

    /// Reads once from a plain (non-blocking) socket; `Ok(0)` means the
    /// peer closed.
    pub(crate) fn fill_from(&mut self, r: &mut impl Read) -> io::Result<usize> {
        self.make_room()?;
        let n = r.read(&mut self.buf[self.end..])?;
        self.end += n;
        Ok(n)
    }

    /// Makes room after the buffered bytes: moves them to the front when
    /// the tail is short, grows the buffer for a frame that does not fit.
    fn make_room(&mut self) -> io::Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.buf.len() - self.end < self.buf.len() / 4 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let need = if self.lines {
            None
        } else {
            frame_len(&self.buf[self.start..self.end])
        };
        if let Some(need) = need {
            if self.start + need > self.buf.len() {
                if self.start > 0 {
                    self.buf.copy_within(self.start..self.end, 0);
                    self.end -= self.start;
                    self.start = 0;
                }
                if need > self.buf.len() {
                    // Bounded: decode refuses frames over max_frame first.
                    let cap = need.min(self.max_frame as usize + confab_engine::codec::HEADER_LEN);
                    self.buf.resize(cap.max(self.buf.len()), 0);
                }
            }
        }
        if self.end == self.buf.len() {
            // A frame longer than allowed: let decode report it.
            return Err(io::Error::other(
                "frame (or line) larger than the buffer allows",
            ));
        }
        Ok(())
    }

    /// The next whole frame in the buffer, if any. Frames of a type this
    /// version does not know are skipped, as every client must.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Frame<'_>>> {
        loop {
            match decode(&self.buf[self.start..self.end], self.max_frame) {
                Ok(Some((frame, used))) => {
                    self.start += used;
                    return Ok(Some(frame));
                }
                Ok(None) => return Ok(None),
                Err(DecodeError::UnknownType { frame_len, .. }) => self.start += frame_len,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Bytes to send, written as far as the socket takes them.
#[derive(Default)]
pub(crate) struct Out {
    pub(crate) buf: Vec<u8>,
    pos: usize,
}

impl Out {
    /// Whether everything was written.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// Writes once (cancel-safe); clears the buffer when all is written.
    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        stream: &mut Stream,
    ) -> Poll<io::Result<()>> {
        match Pin::new(stream).poll_write(cx, &self.buf[self.pos..]) {
            Poll::Ready(Ok(0)) => Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            Poll::Ready(Ok(n)) => {
                self.pos += n;
                if self.pos == self.buf.len() {
                    self.buf.clear();
                    self.pos = 0;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A logged-in connection, ready for the scenario.
pub(crate) struct Client {
    pub(crate) stream: Stream,
    pub(crate) reader: Reader,
    /// It speaks IRC (`irc.rs`), not confab.
    pub(crate) irc: bool,
}

/// How a client logs in.
#[derive(Clone, Debug)]
pub(crate) struct Login {
    pub(crate) connector: Connector,
    pub(crate) addr: SocketAddr,
    pub(crate) source: Option<IpAddr>,
    pub(crate) password: &'static str,
    /// Initial read buffer size.
    pub(crate) read_buf: usize,
    /// Whether to REGISTER first (a name taken already is fine: a rerun).
    pub(crate) register: bool,
    /// Log in with LOGIN2 as the device `bench` (protocol version 2), so
    /// that the client may SEND2.
    pub(crate) device: bool,
    /// Speak IRC instead (NICK, USER, JOIN #bench; see `irc.rs`).
    pub(crate) irc: bool,
}

/// BUSY answers retried before giving up.
const MAX_BUSY_RETRIES: u32 = 50;

/// Connects, says HELLO, registers (unless told not to) and logs in with
/// `roster: false`; returns once LOGIN_OK is in. Bounded by the caller's
/// timeout.
pub(crate) async fn login(how: &Login, name: Name) -> Result<Client> {
    if how.irc {
        return crate::irc::login(how, name).await;
    }
    let mut stream = how.connector.connect(how.addr, how.source).await?;
    let mut reader = Reader::new(how.read_buf);
    let mut out = Vec::with_capacity(256);
    let password = Text::new(how.password).map_err(|_| Error("the password is too long".into()))?;
    Frame::Hello {
        version: PROTOCOL_VERSION,
        client: Text::new("confab-bench").unwrap_or_default(),
    }
    .encode(&mut out);
    let mut step = if how.register { 1 } else { 2 };
    let mut retries = 0;
    loop {
        let request = if step == 1 {
            Frame::Register {
                reference: Ref(1),
                user: name,
                password,
            }
        } else if how.device {
            Frame::Login2 {
                reference: Ref(2),
                user: name,
                credential: confab_engine::frame::Credential::Password(password),
                device: Name::new("bench").ok(),
                issue_token: false,
                resume: confab_engine::frame::Resume::After(MessageId(0)),
                roster: false,
            }
        } else {
            Frame::Login {
                reference: Ref(2),
                user: name,
                password,
                resume_after: MessageId(0),
                roster: false,
            }
        };
        request.encode(&mut out);
        stream.write_all(&out).await?;
        out.clear();
        // The answer to this request.
        let answer = loop {
            let mut found = None;
            while let Some(frame) = reader.next_frame()? {
                match frame {
                    Frame::ServerHello { info, .. } => reader.set_max_frame(info.max_frame),
                    Frame::Ok { reference: Ref(1) } if step == 1 => found = Some(Ok(())),
                    Frame::LoginOk {
                        reference: Ref(2), ..
                    }
                    | Frame::LoginOk2 {
                        reference: Ref(2), ..
                    } if step == 2 => found = Some(Ok(())),
                    Frame::Error {
                        code,
                        reference,
                        retry_after_ms,
                        text,
                    } if code.is_fatal() || reference == Ref(step) => {
                        found = Some(Err((code, retry_after_ms, text.as_str().to_owned())));
                    }
                    _ => {}
                }
                if found.is_some() {
                    break;
                }
            }
            if let Some(f) = found {
                break f;
            }
            if reader.fill(&mut stream).await? == 0 {
                return err("the server closed the connection during login");
            }
        };
        match answer {
            Ok(()) if step == 1 => step = 2,
            Ok(()) => break,
            Err((ErrorCode::NameTaken, ..)) if step == 1 => step = 2,
            Err((ErrorCode::Busy, wait, _)) if retries < MAX_BUSY_RETRIES => {
                retries += 1;
                Timer::after(Duration::from_millis(u64::from(wait.clamp(10, 2000)))).await;
            }
            Err((code, _, text)) => {
                let what = if step == 1 { "REGISTER" } else { "LOGIN" };
                return err(format!("{what} {name} failed: {code:?}: {text}"));
            }
        }
    }
    Ok(Client {
        stream,
        reader,
        irc: false,
    })
}
