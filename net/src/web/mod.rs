//! The web port (`--web-listen`): the browser client's static files and
//! its WebSocket at `/ws`, on one port, over TLS when the server has a
//! certificate.
//!
//! A connection reads one request head (at most [`http::MAX_HEAD`] bytes,
//! within the auth timeout) and either gets a file or a refusal and is
//! closed, or, for a WebSocket upgrade that passes the origin rule
//! (`origin.rs`) and offers a confab subprotocol (or an IRC one, when the
//! server serves IRC: see `ws::Framing`), becomes a session: it is
//! admitted and connected to the hub exactly as a TCP connection is, and
//! served by `conn.rs` over the WebSocket adapter (`ws.rs`), so every limit
//! of the engine holds unchanged. Until then it is not a session; at most
//! `max_clients` such connections exist at once, `max_per_source` from one
//! address.

pub mod http;
pub mod origin;
pub mod ws;

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_channel::Sender;
use async_io::{Async, Timer};
use async_tungstenite::tungstenite::protocol::Role;
use async_tungstenite::WebSocketStream;
use confab_engine::{Config, Source};
use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use futures_rustls::TlsAcceptor;
use log::{debug, info};

use crate::conn::{self, End};
use crate::guard::{Disconnect, Done};
use crate::linger;
use crate::refuse::describe;
use crate::shared::Shared;
use crate::source::source_of;
use http::{Route, Status};
pub use origin::OriginPolicy;

/// The web port's settings.
#[derive(Clone, Debug)]
pub struct WebOptions {
    /// Where to listen; port 0 picks one (logged as "web listening on ADDR").
    pub listen: SocketAddr,
    /// Origins allowed to open the WebSocket besides the server's own.
    pub allowed_origins: Vec<String>,
}

/// What every web connection's task shares.
pub(crate) struct Web {
    origins: OriginPolicy,
    tls: Option<TlsAcceptor>,
    /// The certificate a reload replaces: each handshake takes the one in
    /// force when it starts (as the confab and IRC ports do).
    slot: Option<Arc<crate::tls::TlsSlot>>,
    /// For the TLS handshake and the request head together.
    timeout: Duration,
    max_frame: u32,
    /// The protocol IRC sessions start in, if the server serves IRC: then
    /// `text.ircv3.net` and `binary.ircv3.net` open an IRC session.
    irc: Option<confab_engine::Protocol>,
    pending: Pending,
    /// Closed when the server shuts down: a connection still waiting for
    /// its request (a browser's spare connection, say) ends at once
    /// instead of holding the shutdown for its timeout.
    stopping: async_channel::Receiver<()>,
}

impl Web {
    /// `f`, or `None` at `deadline` or when the server shuts down.
    async fn before<T>(&self, deadline: Instant, f: impl Future<Output = T>) -> Option<T> {
        future::or(within(deadline, f), async {
            let _ = self.stopping.recv().await;
            None
        })
        .await
    }

    pub(crate) fn new(
        options: &WebOptions,
        tls: Option<Arc<rustls::ServerConfig>>,
        slot: Option<Arc<crate::tls::TlsSlot>>,
        engine: &Config,
        irc: Option<confab_engine::Protocol>,
        stopping: async_channel::Receiver<()>,
    ) -> Web {
        Web {
            origins: OriginPolicy {
                allowed: options
                    .allowed_origins
                    .iter()
                    .map(|o| origin::normalize(o))
                    .collect(),
                tls: tls.is_some(),
            },
            tls: tls.map(TlsAcceptor::from),
            slot,
            timeout: engine.auth_timeout,
            max_frame: engine.max_frame,
            irc,
            pending: Pending {
                counts: Mutex::new((0, HashMap::new())),
                max: engine.max_clients as usize,
                per_source: engine.max_per_source,
            },
            stopping,
        }
    }
}

/// Web connections that are not sessions yet, counted in all and by source.
struct Pending {
    counts: Mutex<(usize, HashMap<Source, u32>)>,
    max: usize,
    per_source: u32,
}

/// One place in [`Pending`], given back when dropped.
struct Permit<'a> {
    pending: &'a Pending,
    source: Source,
}

impl Pending {
    fn enter(&self, source: Source) -> Option<Permit<'_>> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let (total, by_source) = &mut *counts;
        let mine = by_source.entry(source).or_insert(0);
        if *total >= self.max || *mine >= self.per_source {
            if *mine == 0 {
                by_source.remove(&source);
            }
            return None;
        }
        *mine += 1;
        *total += 1;
        Some(Permit {
            pending: self,
            source,
        })
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut counts = self
            .pending
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (total, by_source) = &mut *counts;
        *total = total.saturating_sub(1);
        if let Some(n) = by_source.get_mut(&self.source) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                by_source.remove(&self.source);
            }
        }
    }
}

/// What a web connection's task owns.
pub(crate) struct WebConn {
    pub(crate) shared: Arc<Shared>,
    pub(crate) stream: Async<TcpStream>,
    pub(crate) peer: SocketAddr,
    /// Told `id` when the task ends.
    pub(crate) done: Sender<u64>,
    pub(crate) id: u64,
}

/// A web connection's task: TLS if configured, one request, then a file,
/// a refusal or a WebSocket session.
#[allow(clippy::manual_async_fn)]
pub(crate) fn connection(c: WebConn, web: Arc<Web>) -> impl Future<Output = ()> + Send {
    async move {
        let _done = Done {
            done: &c.done,
            id: c.id,
        };
        let Some(permit) = web.pending.enter(source_of(c.peer.ip())) else {
            debug!("web: too many requests at once, closed peer={}", c.peer);
            return;
        };
        let deadline = Instant::now() + web.timeout;
        let reloaded = web.slot.as_ref().map(|s| TlsAcceptor::from(s.get()));
        match reloaded.as_ref().or(web.tls.as_ref()) {
            None => serve_http(&c, &web, &c.stream, deadline, permit).await,
            Some(acceptor) => {
                let handshake = web.before(deadline, acceptor.accept(&c.stream));
                match handshake.await {
                    // Boxed: a plain session's task holds no room for rustls.
                    Some(Ok(tls)) => Box::pin(serve_http(&c, &web, tls, deadline, permit)).await,
                    Some(Err(e)) => debug!("web: TLS handshake failed peer={}: {e}", c.peer),
                    None => debug!("web: no TLS handshake in time peer={}", c.peer),
                }
            }
        }
    }
}

/// `f`, or `None` at `deadline`.
async fn within<T>(deadline: Instant, f: impl Future<Output = T>) -> Option<T> {
    future::or(async { Some(f.await) }, async {
        Timer::at(deadline).await;
        None
    })
    .await
}

/// Why no request head came.
enum NoHead {
    /// The peer closed, failed or said nothing in time: nothing to answer.
    Gone,
    /// Not a request we can use: answered with this status.
    Bad(http::HeadError),
}

/// Reads until a whole request head (bounded by [`http::MAX_HEAD`] and
/// `deadline`); returns it and the bytes read after it.
async fn read_head<S: AsyncRead + Unpin>(
    web: &Web,
    stream: &mut S,
    deadline: Instant,
) -> Result<(http::Head, Vec<u8>), NoHead> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = match web.before(deadline, stream.read(&mut chunk)).await {
            Some(Ok(0)) | Some(Err(_)) | None => return Err(NoHead::Gone),
            Some(Ok(n)) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        match http::parse_head(&buf) {
            Ok(Some((head, used))) => return Ok((head, buf.split_off(used))),
            Ok(None) => {}
            Err(e) => return Err(NoHead::Bad(e)),
        }
    }
}

/// One request: the head, then the route's answer.
async fn serve_http<S>(c: &WebConn, web: &Web, mut stream: S, deadline: Instant, permit: Permit<'_>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (head, rest) = match read_head(web, &mut stream, deadline).await {
        Ok(got) => got,
        Err(NoHead::Gone) => return,
        Err(NoHead::Bad(e)) => {
            debug!("web: bad request peer={}: {e}", c.peer);
            let answer = http::refusal(e.status(), &e.to_string());
            return answer_and_close(c, stream, &answer, &[], deadline).await;
        }
    };
    match http::route(&head, &web.origins) {
        Route::File {
            body,
            content_type,
            head: head_only,
        } => {
            let answer = http::response_head(Status::Ok, content_type, body.len(), "");
            let body: &[u8] = if head_only { &[] } else { &body };
            answer_and_close(c, stream, &answer, body, deadline).await
        }
        Route::Refuse(status, why) => {
            if status == Status::Forbidden {
                info!("web: refused a WebSocket peer={}: {why}", c.peer);
            }
            answer_and_close(c, stream, &http::refusal(status, &why), &[], deadline).await
        }
        Route::Upgrade { protocol, accept } => {
            // Not kept for the session's life.
            drop(head);
            upgrade(c, web, stream, rest, (protocol, accept), permit).await
        }
    }
}

/// Writes `head` and `body` (until `deadline` and a linger at most), then
/// closes and lingers so the answer is not lost to a reset.
async fn answer_and_close<S>(
    c: &WebConn,
    mut stream: S,
    head: &[u8],
    body: &[u8],
    deadline: Instant,
) where
    S: AsyncWrite + Unpin,
{
    let written = within(deadline + linger::LINGER, async {
        stream.write_all(head).await?;
        stream.write_all(body).await?;
        stream.close().await
    });
    // Closing an `Async<TcpStream>` only flushes: the FIN is ours to send.
    if let Some(Ok(())) = written.await {
        if c.stream.get_ref().shutdown(Shutdown::Write).is_ok() {
            linger::linger(&c.stream).await;
        }
    }
}

/// The upgrade: admitted by the hub as any connection (or 503), the 101,
/// then the session over the WebSocket until it ends.
async fn upgrade<S>(
    c: &WebConn,
    web: &Web,
    mut stream: S,
    rest: Vec<u8>,
    (protocol, accept): (&'static str, String),
    permit: Permit<'_>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let framing = ws::Framing::of(protocol);
    let hub_protocol = match (framing, web.irc) {
        (ws::Framing::Stream, _) => confab_engine::Protocol::CONFAB,
        (ws::Framing::IrcLines { .. }, Some(irc)) => irc,
        (ws::Framing::IrcLines { .. }, None) => {
            let why = "this server does not serve IRC (--irc-listen is off)";
            let answer = http::refusal(Status::BadRequest, why);
            let deadline = Instant::now() + web.timeout;
            return answer_and_close(c, stream, &answer, &[], deadline).await;
        }
    };
    let source = source_of(c.peer.ip());
    let admitted = c.shared.with_core(|core, now| {
        core.hub
            .admit(now, source)
            .map(|()| core.connect(now, c.peer, source, hub_protocol))
    });
    let (conn, woken) = match admitted {
        Ok(admitted) => admitted,
        Err(refused) => {
            let answer = http::refusal(Status::Unavailable, describe(refused.reason));
            let deadline = Instant::now() + web.timeout;
            return answer_and_close(c, stream, &answer, &[], deadline).await;
        }
    };
    // A session now: the hub's limits count it.
    drop(permit);
    info!(
        "connection opened peer={} conn={conn} websocket={protocol}",
        c.peer
    );
    let mut guard = Disconnect {
        shared: &c.shared,
        conn,
        end: None,
    };
    let switched = http::switching(protocol, &accept);
    if let Err(e) = write_all_flush(&mut stream, &switched).await {
        guard.end = Some(End::Io(e));
        return;
    }
    let config = ws::config(web.max_frame);
    let ws = WebSocketStream::from_partially_read(stream, rest, Role::Server, Some(config)).await;
    let ws = ws::WsConn::new(ws, &c.stream, web.max_frame, framing);
    let end = conn::serve(&c.shared, &ws, conn, woken.of(conn)).await;
    if ws.refused() {
        conn::Transport::finish(&ws).await;
    }
    guard.end = Some(end);
}

async fn write_all_flush<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}
