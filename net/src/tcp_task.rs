//! A TCP connection's task, plain or TLS: what it owns, and what it owes
//! when it ends (see [`Connection`]).
//!
//! Each connection's task is held in memory as long as the connection
//! lives, so its size is paid per connection (docs/PERFORMANCE.md). Hence:
//! - Plain and TLS connections are different tasks: an async state machine
//!   is as large as its largest await, and a plain connection must not carry
//!   room for rustls's state (~3.7 KiB).
//! - These are functions returning `async move` blocks, not `async fn`s: an
//!   `async fn` moves its arguments into locals, and the state machine keeps
//!   both copies.

use std::future::Future;
use std::net::TcpStream;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use async_channel::Sender;
use async_io::{Async, Timer};
use confab_engine::ConnId;
use futures_lite::future;
use futures_rustls::TlsAcceptor;

use crate::conn::{self, End};
use crate::guard::{Disconnect, Done};
use crate::measures::{self, NET};
use crate::shared::{Shared, WakeFlags};

/// What a TLS connection starts with.
#[derive(Clone)]
pub(crate) struct Tls {
    pub(crate) acceptor: TlsAcceptor,
    /// The most the handshake may take.
    pub(crate) timeout: Duration,
}

/// What a connection's task owns. When the task ends it disconnects the
/// session from the hub, then tells the accept loop ([`Connection::ended`]);
/// dropped without that (cancelled at the shutdown deadline), it does both
/// as it goes. The guards are made here, not kept beside it in the task,
/// where they would hold second copies of `shared`, `conn` and `done`, and
/// the end across the whole connection, in every connection's task.
pub(crate) struct Connection {
    pub(crate) shared: Arc<Shared>,
    pub(crate) stream: Async<TcpStream>,
    pub(crate) conn: ConnId,
    /// Its writer's wake flag is `woken.of(conn)`.
    pub(crate) woken: Arc<WakeFlags>,
    /// Told `id` when the task ends.
    pub(crate) done: Sender<u64>,
    /// Its slot among the accept loop's tasks (`TaskSlab`).
    pub(crate) id: u32,
    /// [`Connection::ended`] did the disconnect.
    pub(crate) ended: bool,
}

impl Connection {
    /// The connection ended so: disconnects from the hub (the log line says
    /// how), then tells the accept loop.
    fn ended(&mut self, end: End) {
        self.ended = true;
        self.close(Some(end));
    }

    /// `end`: how it ended; `None`: dropped at the shutdown deadline.
    fn close(&self, end: Option<End>) {
        // Declared first, dropped last: the accept loop hears of the end
        // after the hub has.
        let _done = Done {
            done: &self.done,
            id: u64::from(self.id),
        };
        drop(Disconnect {
            shared: &self.shared,
            conn: self.conn,
            end,
        });
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if !self.ended {
            self.close(None);
        }
    }
}

/// A plain TCP connection's task: [`conn::serve`].
#[allow(clippy::manual_async_fn)]
pub(crate) fn plain_connection(mut c: Connection) -> impl Future<Output = ()> + Send {
    async move {
        // `conn::serve`'s body, inline: see there.
        let end = conn::Serve::new(&c.shared, &c.stream, c.conn, c.woken.of(c.conn)).await;
        if let End::Closed = end {
            // Boxed: the linger's state (a timer of its own among it) would
            // otherwise be the largest of the task's, paid by every idle
            // connection; it is allocated once, at the close.
            Box::pin(conn::Transport::finish(&c.stream)).await;
        }
        c.ended(end);
    }
}

/// A TLS connection's task: the handshake, then [`conn::serve`].
#[allow(clippy::manual_async_fn)]
pub(crate) fn tls_connection(mut c: Connection, tls: Tls) -> impl Future<Output = ()> + Send {
    async move {
        let end = serve_tls(&c.shared, &c.stream, tls, c.conn, c.woken.of(c.conn)).await;
        c.ended(end);
    }
}

/// The TLS handshake, then [`conn::serve`] over the encrypted stream.
async fn serve_tls(
    shared: &Shared,
    stream: &Async<TcpStream>,
    tls: Tls,
    conn: ConnId,
    woken: &AtomicBool,
) -> End {
    // A client that does not speak TLS (or says nothing) fails here, and is
    // closed: at once on garbage, after the auth timeout on silence.
    let handshake = future::or(async { Some(tls.acceptor.accept(stream).await) }, async {
        Timer::after(tls.timeout).await;
        None
    });
    match handshake.await {
        Some(Ok(mut stream)) => {
            measures::count(&NET.tls_ok);
            // Room for a whole drain's records, so that one drain is one
            // write to rustls and (usually) one vectored write to the socket.
            stream
                .get_mut()
                .1
                .set_buffer_limit(Some(conn::WRITE_BATCH + conn::TLS_SLACK));
            conn::serve(shared, &conn::TlsConn::new(stream), conn, woken).await
        }
        Some(Err(e)) => {
            measures::count(&NET.tls_failed);
            End::Handshake(e)
        }
        None => {
            measures::count(&NET.tls_timeout);
            End::HandshakeTimeout
        }
    }
}

#[cfg(test)]
mod task_size {
    use std::mem::size_of;

    use super::*;

    /// The size of what `f` returns, without calling it.
    fn output_size<A, R>(_: impl FnOnce(A) -> R) -> usize {
        size_of::<R>()
    }

    /// Every idle connection holds its task for as long as it lives, so a
    /// byte here is a byte per connection (docs/PERFORMANCE.md, "Fourth
    /// step"). 576 bytes before the reader and the writer became one
    /// hand-written future, 376 after, 344 once the guards moved into
    /// `Connection`, 288 with `Serve` awaited here directly and the reader's
    /// state in one byte, 264 without the end kept in `Connection`, 216 with
    /// the reader's timer boxed while far and the close's linger boxed (an
    /// unoptimised build; a release build is no larger).
    #[test]
    fn an_idle_plain_connection_s_task_stays_under_230_bytes() {
        let task = output_size(plain_connection);
        assert!(task <= 230, "the plain connection's task is {task} bytes");
    }
}
