//! One connection: a reader and a writer racing in one task.
//!
//! The two halves are independent: the reader feeds whatever arrives to the
//! hub and never waits for the writer, so a client that stops reading is
//! still read from (and eventually closed as a slow consumer by the engine),
//! and nobody else slows down.
//!
//! - **Reader.** Waits until the socket is readable, then reads into a
//!   32 KiB buffer of the thread's own (not in the task, so an idle
//!   connection holds no buffer) and calls `handle_bytes` once for the whole
//!   read. What the hub does not consume (an incomplete frame, or frames held
//!   back by the rate limit or the per-turn budget) is kept in a per-connection
//!   vector that is freed when it empties. `read_ready` is obeyed: `At(t)`
//!   stops reading until `t` (TCP back-pressure does the rest), `Never` stops
//!   for good. The hub's deadline (`poll_timeout`) is waited for with a
//!   timer only once it is near; until then the sweep (`crate::sweep`) keeps
//!   watch.
//! - **Writer.** Drains up to [`WRITE_BATCH`] bytes of frames under the lock,
//!   writes them outside it, copied into one buffer per write, and parks when the queue is
//!   empty until the hub wakes it. It ends the connection after writing the
//!   last frames of a closed session.
//!
//! Both run over a [`Transport`]: plain `Async<TcpStream>` (as above, the
//! fast path), [`TlsConn`], a rustls stream after its handshake, or
//! `web::ws::WsConn`, a WebSocket over either.
//!
//! **TLS.** rustls keeps one state for both directions, so the reader and
//! the writer share the stream through a per-connection `Mutex`, taken only
//! inside a single `poll_*` call and never across an `.await`. Both halves
//! live in this one task and are polled in turn, so the lock is never
//! contended: it costs one atomic operation per poll. (`futures_lite::io::split`
//! would do the same with an extra `Arc` per connection; a lock of our own
//! also lets the reader borrow the socket for the linger.) The reader reads
//! and feeds the hub inside one poll (`poll_fn`), into the thread's 32 KiB
//! buffer, so here too no buffer lives in the task; rustls keeps
//! its own record buffer (4 KiB while idle). The writer hands a whole drain
//! to rustls in one `write_vectored` (its buffer limit is raised to a
//! drain), which seals it into records of up to 16 KiB and writes them with
//! one vectored socket write, then flushes before parking.
//!
//! **Task size.** A connection's task stays in memory as long as the
//! connection, so every byte of its state machine is paid per connection
//! (19,000 idle ones are the bar, docs/PERFORMANCE.md). So: the reader and
//! the writer are plain structs polled in turn by one hand-written future
//! ([`serve::Serve`]), each holding what it needs once (two `async` blocks
//! raced by `future::or` kept copies of their arguments and closures' captures);
//! reading and writing are `poll_*` methods of the [`Transport`] (no nested
//! futures); the reader's [`Timer`] is boxed and exists only while a
//! deadline is near (or for the close-flush bound), and the close's linger is
//! boxed too; and the functions around it return `async move` blocks instead of
//! being `async fn`s, since an `async fn` moves its arguments into locals
//! and its state machine keeps both copies.

mod serve;

pub(crate) use serve::Serve;

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::io::{self, IoSlice, Read};
use std::net::{Shutdown, TcpStream};
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{ready, Context, Poll, Waker};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use confab_engine::{ConnId, ReadReady};
use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_lite::{future, AsyncWriteExt};
use futures_rustls::server::TlsStream;

use crate::linger;
use crate::shared::Shared;

/// Bytes read from the socket at once.
pub(crate) const READ_BUF: usize = 32 * 1024;
/// Bytes of frames written per drain.
pub(crate) const WRITE_BATCH: usize = 256 * 1024;
/// Room for TLS record overhead on top of a drain in rustls's buffer.
pub(crate) const TLS_SLACK: usize = 32 * 1024;
/// How long a closed session's last frames may take to go out.
const CLOSE_FLUSH: Duration = Duration::from_secs(5);
/// A timer never fires sooner than this after a timeout was handled, so
/// a deadline the hub failed to move cannot spin.
const MIN_REARM: Duration = Duration::from_millis(5);

/// Why a connection ended (besides the session's own close reason).
#[derive(Debug)]
pub(crate) enum End {
    /// The peer closed its side.
    PeerClosed,
    /// Reading or writing failed.
    Io(io::Error),
    /// The session closed and its last frames were written.
    Closed,
    /// The session closed but its last frames could not be written in time.
    FlushTimeout,
    /// The TLS handshake failed (not a TLS client, say).
    Handshake(io::Error),
    /// No TLS handshake within the auth timeout.
    HandshakeTimeout,
    /// The WebSocket was refused or broken (`web/ws.rs`): why, with the close code.
    WebSocket(String),
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::PeerClosed => f.write_str("peer closed"),
            End::Io(e) => write!(f, "I/O error: {e}"),
            End::Closed => f.write_str("closed"),
            End::FlushTimeout => f.write_str("the last frames could not be sent in time"),
            End::Handshake(e) => write!(f, "TLS handshake failed: {e}"),
            End::HandshakeTimeout => f.write_str("no TLS handshake within the auth timeout"),
            End::WebSocket(why) => write!(f, "WebSocket: {why}"),
        }
    }
}

/// What the reader and the writer need from a byte stream.
///
/// Reading and writing are `poll_*` methods rather than `async fn`s: the
/// reader and the writer poll them from small `poll_fn`s, so an idle
/// connection's task holds no nested read or write futures, only the
/// connection's own variables (every byte of it is paid per connection).
pub(crate) trait Transport: Sync {
    /// Once bytes may have arrived, reads once and feeds the hub as
    /// [`read_and_feed`] does; `Pending`, with `cx` registered, until then.
    fn poll_read_and_feed(
        &self,
        cx: &mut Context<'_>,
        shared: &Shared,
        conn: ConnId,
        leftover: &mut Vec<u8>,
    ) -> Poll<Result<Fed, End>>;

    /// Reads what is there without waiting, then feeds the hub its timeout
    /// (see [`read_and_feed`] with `timeout`).
    fn read_now_and_feed(
        &self,
        shared: &Shared,
        conn: ConnId,
        leftover: &mut Vec<u8>,
    ) -> Result<Option<Fed>, End>;

    /// One vectored write.
    fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>>;

    /// Writes out whatever the stream buffered.
    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// After the session's last frames: closes our side and lingers.
    fn finish(&self) -> impl Future<Output = ()> + Send;
}

/// Plain TCP: readiness from the reactor, reads and vectored writes on the
/// socket itself.
impl Transport for Async<TcpStream> {
    fn poll_read_and_feed(
        &self,
        cx: &mut Context<'_>,
        shared: &Shared,
        conn: ConnId,
        leftover: &mut Vec<u8>,
    ) -> Poll<Result<Fed, End>> {
        loop {
            // `poll_readable`, not `readable()`: the latter keeps a slab of
            // wakers per socket (96 bytes once used, for the connection's
            // life); only this task waits to read, so the socket's one
            // waker slot is enough.
            if let Err(e) = ready!(self.poll_readable(cx)) {
                return Poll::Ready(Err(End::Io(e)));
            }
            let mut reader = self.get_ref();
            match read_and_feed(|buf| reader.read(buf), shared, conn, leftover, false) {
                // A spurious wake-up: the next poll registers `cx` again.
                Ok(None) => continue,
                Ok(Some(fed)) => return Poll::Ready(Ok(fed)),
                Err(end) => return Poll::Ready(Err(end)),
            }
        }
    }

    fn read_now_and_feed(
        &self,
        shared: &Shared,
        conn: ConnId,
        leftover: &mut Vec<u8>,
    ) -> Result<Option<Fed>, End> {
        let mut reader = self.get_ref();
        read_and_feed(|buf| reader.read(buf), shared, conn, leftover, true)
    }

    fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut writer = self;
        Pin::new(&mut writer).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(&self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The socket buffers nothing of its own.
        Poll::Ready(Ok(()))
    }

    async fn finish(&self) {
        if self.get_ref().shutdown(Shutdown::Write).is_ok() {
            linger::linger(self).await;
        }
    }
}

/// A TLS connection after its handshake, shared by the reader and the
/// writer through a lock taken only within one poll (see the module docs).
pub(crate) struct TlsConn<'a> {
    tls: Mutex<TlsStream<&'a Async<TcpStream>>>,
    tcp: &'a Async<TcpStream>,
}

impl<'a> TlsConn<'a> {
    pub(crate) fn new(tls: TlsStream<&'a Async<TcpStream>>) -> TlsConn<'a> {
        let tcp: &'a Async<TcpStream> = tls.get_ref().0;
        TlsConn {
            tls: Mutex::new(tls),
            tcp,
        }
    }

    fn lock(&self) -> MutexGuard<'_, TlsStream<&'a Async<TcpStream>>> {
        self.tls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One read, with `cx` registered for more if nothing was there
    /// (`WouldBlock`); a peer gone without close_notify has simply closed.
    fn read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> io::Result<usize> {
        match Pin::new(&mut *self.lock()).poll_read(cx, buf) {
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Transport for TlsConn<'_> {
    fn poll_read_and_feed(
        &self,
        cx: &mut Context<'_>,
        shared: &Shared,
        conn: ConnId,
        leftover: &mut Vec<u8>,
    ) -> Poll<Result<Fed, End>> {
        // rustls may hold decrypted bytes the socket no longer signals, so
        // the read itself is the wait: it registers the task when there is
        // nothing. Reading and feeding happen in one poll, into the
        // thread's buffer.
        match read_and_feed(|buf| self.read(cx, buf), shared, conn, leftover, false) {
            Ok(None) => Poll::Pending,
            Ok(Some(fed)) => Poll::Ready(Ok(fed)),
            Err(end) => Poll::Ready(Err(end)),
        }
    }

    fn read_now_and_feed(
        &self,
        shared: &Shared,
        conn: ConnId,
        leftover: &mut Vec<u8>,
    ) -> Result<Option<Fed>, End> {
        // Nothing waits on this read: the loop's next wait registers the task.
        let mut cx = Context::from_waker(Waker::noop());
        read_and_feed(|buf| self.read(&mut cx, buf), shared, conn, leftover, true)
    }

    fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.lock()).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.lock()).poll_flush(cx)
    }

    async fn finish(&self) {
        // close_notify, then the TCP half-close; bounded like the linger.
        let mut writer = self;
        let closed = future::or(
            async { AsyncWriteExt::close(&mut writer).await.is_ok() },
            async {
                Timer::after(linger::LINGER).await;
                false
            },
        )
        .await;
        if closed {
            linger::linger(self.tcp).await;
        }
    }
}

impl AsyncWrite for &TlsConn<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.lock()).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.lock()).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.lock()).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.lock()).poll_close(cx)
    }
}

/// Serves `conn` on `stream` until it ends. (A plain TCP connection's task
/// awaits [`Serve`] itself, `tcp_task.rs`: this wrapper's copies of its
/// arguments would be 32 more bytes in every such task.)
// Not an `async fn`: see "Task size" in the module docs.
#[allow(clippy::manual_async_fn)]
pub(crate) fn serve<'a>(
    shared: &'a Shared,
    stream: &'a impl Transport,
    conn: ConnId,
    woken: &'a AtomicBool,
) -> impl Future<Output = End> + Send + 'a {
    async move {
        // The reader and the writer end before the close's linger starts,
        // so the task holds room for one or the other, not both.
        let end = serve::Serve::new(shared, stream, conn, woken).await;
        if let End::Closed = end {
            stream.finish().await;
        }
        end
    }
}

/// What the hub said after being fed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fed {
    ready: ReadReady,
    deadline: Option<Instant>,
    /// The leftover holds a whole frame the hub did not take (budget).
    backlog: bool,
}

/// Reads once and feeds the hub (after its timeout, if `timeout`). The
/// buffer is the thread's ([`THREAD_BUF`]), never in the task. Without a
/// timeout, `Ok(None)` means nothing was there after all. With one, nothing
/// is read while the leftover already holds a buffer's worth, which bounds
/// it however long the rate limit keeps the hub from taking it.
fn read_and_feed(
    read: impl FnOnce(&mut [u8]) -> io::Result<usize>,
    shared: &Shared,
    conn: ConnId,
    leftover: &mut Vec<u8>,
    timeout: bool,
) -> Result<Option<Fed>, End> {
    THREAD_BUF.with_borrow_mut(|buf| {
        let n = if timeout && leftover.len() >= READ_BUF {
            0
        } else {
            match read(&mut buf[..]) {
                Ok(0) => return Err(End::PeerClosed),
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    if !timeout {
                        return Ok(None);
                    }
                    0
                }
                Err(e) => return Err(End::Io(e)),
            }
        };
        Ok(Some(feed(shared, conn, leftover, &buf[..n], timeout)))
    })
}

thread_local! {
    /// What [`read_and_feed`] reads into: one per thread, zeroed once (a
    /// fresh 32 KiB array per read cost a `memset` per message). Only
    /// borrowed for the read and the feed, which never read again.
    static THREAD_BUF: RefCell<Box<[u8; READ_BUF]>> = RefCell::new(Box::new([0; READ_BUF]));
}

/// One lock hold: optionally the timeout, then the bytes (`leftover` first,
/// then `fresh`), then what the hub says about reading and timing.
pub(crate) fn feed(
    shared: &Shared,
    conn: ConnId,
    leftover: &mut Vec<u8>,
    fresh: &[u8],
    timeout: bool,
) -> Fed {
    let direct = leftover.is_empty();
    if !direct {
        leftover.extend_from_slice(fresh);
    }
    let (used, ready, deadline, backlog) = shared.with_core(|core, now| {
        let hub = &mut core.hub;
        if timeout {
            hub.handle_timeout(now, conn);
        }
        let input: &[u8] = if direct { fresh } else { leftover };
        let used = if !input.is_empty() && hub.read_ready(now, conn) == ReadReady::Now {
            hub.handle_bytes(now, conn, input)
        } else {
            0
        };
        let backlog = hub.holds_request(conn, &input[used..]);
        (
            used,
            hub.read_ready(now, conn),
            hub.poll_timeout(conn),
            backlog,
        )
    });
    if direct {
        leftover.extend_from_slice(&fresh[used..]);
    } else {
        leftover.drain(..used);
    }
    if leftover.is_empty() {
        // Free what a burst grew: an idle connection holds no buffer.
        *leftover = Vec::new();
    }
    Fed {
        ready,
        deadline,
        backlog,
    }
}

/// [`feed`] for `len` bytes of the transport's own framing with nothing
/// for the hub (a WebSocket ping): paid for all the same
/// (`Hub::handle_transport_bytes`).
pub(crate) fn feed_transport(shared: &Shared, conn: ConnId, leftover: &[u8], len: usize) -> Fed {
    shared.with_core(|core, now| {
        let hub = &mut core.hub;
        hub.handle_transport_bytes(now, conn, len);
        Fed {
            ready: hub.read_ready(now, conn),
            deadline: hub.poll_timeout(conn),
            backlog: hub.holds_request(conn, leftover),
        }
    })
}

/// Bytes copied into one write (see `serve::Writer::poll_write`).
pub(crate) const WRITE_CHUNK: usize = 64 * 1024;
