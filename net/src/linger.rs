//! After our half-close: reading and dropping what the peer still sends,
//! for a bounded time and number of bytes, so that the kernel does not
//! answer it with a reset that could destroy the last frames we wrote
//! (an ERROR, a SHUTDOWN) before the peer reads them. Used by closing
//! connections and by refused ones (`refuse.rs`).

use std::io::{self, Read};
use std::net::TcpStream;
use std::time::Duration;

use async_io::{Async, Timer};
use futures_lite::future;

/// After our close, how long (and how much) the peer's unread bytes are
/// drained so that the kernel does not answer them with a reset that could
/// destroy our last frames.
pub(crate) const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 1024 * 1024;

/// After our half-close: drain what the peer still sends for a moment
/// (see [`LINGER`]).
pub(crate) async fn linger(stream: &Async<TcpStream>) {
    linger_up_to(stream, LINGER_BYTES).await;
}

/// [`linger`], reading and dropping at most `max_bytes`.
pub(crate) async fn linger_up_to(stream: &Async<TcpStream>, max_bytes: usize) {
    let drain = async {
        let mut total = 0;
        while total < max_bytes {
            if future::poll_fn(|cx| stream.poll_readable(cx))
                .await
                .is_err()
            {
                return;
            }
            match discard(stream.get_ref()) {
                Ok(Some(0)) | Err(_) => return,
                Ok(Some(n)) => total += n,
                Ok(None) => {}
            }
        }
    };
    future::or(drain, async {
        Timer::after(LINGER).await;
    })
    .await;
}

/// Reads and drops what is there; `Ok(None)` if nothing was.
fn discard(stream: &TcpStream) -> io::Result<Option<usize>> {
    let mut buf = [0u8; 4096];
    let mut reader = stream;
    match reader.read(&mut buf) {
        Ok(n) => Ok(Some(n)),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}
