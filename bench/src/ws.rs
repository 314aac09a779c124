//! `--transport ws`: the bench's clients over the server's WebSocket
//! (`--web-listen`, path `/ws`, subprotocol `confab.v2`), as a browser
//! would connect. The WebSocket is turned back into a byte stream here
//! (binary payloads in order), so the driver, its frames and its
//! accounting are exactly those of TCP: only the transport differs.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use async_tungstenite::tungstenite::{Bytes, Message};
use async_tungstenite::WebSocketStream;
use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_util::{Sink, Stream as _};

use crate::conn::{Error, Result, Stream};

/// A WebSocket client as a byte stream.
#[derive(Debug)]
pub(crate) struct WsStream {
    ws: WebSocketStream<Stream>,
    /// The payload being read, and how much of it is.
    pending: Bytes,
    pos: usize,
    /// A message was queued but not yet all written to the socket.
    unflushed: bool,
}

/// Upgrades `stream` (TCP or TLS to `remote`) to the server's WebSocket.
pub(crate) async fn upgrade(stream: Stream, remote: SocketAddr, tls: bool) -> Result<WsStream> {
    let scheme = if tls { "wss" } else { "ws" };
    let mut request = format!("{scheme}://{remote}/ws")
        .into_client_request()
        .map_err(|e| Error(format!("bad WebSocket URL: {e}")))?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", http_value("confab.v2"));
    // Each write goes out at once: the driver never flushes.
    let config = WebSocketConfig::default().write_buffer_size(0);
    let (ws, _) = async_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .map_err(|e| Error(format!("WebSocket upgrade at {remote} failed: {e}")))?;
    Ok(WsStream {
        ws,
        pending: Bytes::new(),
        pos: 0,
        unflushed: false,
    })
}

fn http_value(s: &'static str) -> async_tungstenite::tungstenite::http::HeaderValue {
    async_tungstenite::tungstenite::http::HeaderValue::from_static(s)
}

fn to_io(e: async_tungstenite::tungstenite::Error) -> io::Error {
    match e {
        async_tungstenite::tungstenite::Error::Io(e) => e,
        e => io::Error::other(e),
    }
}

impl WsStream {
    /// Pushes out what an earlier write left in tungstenite's buffer.
    fn poll_unflushed(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.unflushed {
            ready!(Pin::new(&mut self.ws).poll_flush(cx)).map_err(to_io)?;
            self.unflushed = false;
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for WsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        // The driver reads far more often than it writes: a blocked write
        // makes progress here too (its waker is registered by the flush).
        if let Poll::Ready(Err(e)) = me.poll_unflushed(cx) {
            return Poll::Ready(Err(e));
        }
        loop {
            if me.pos < me.pending.len() {
                let n = buf.len().min(me.pending.len() - me.pos);
                buf[..n].copy_from_slice(&me.pending[me.pos..me.pos + n]);
                me.pos += n;
                return Poll::Ready(Ok(n));
            }
            match ready!(Pin::new(&mut me.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(b))) => {
                    me.pending = b;
                    me.pos = 0;
                }
                Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(0)),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Poll::Ready(Err(to_io(e))),
            }
        }
    }
}

impl AsyncWrite for WsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        ready!(me.poll_unflushed(cx))?;
        ready!(Pin::new(&mut me.ws).poll_ready(cx)).map_err(to_io)?;
        Pin::new(&mut me.ws)
            .start_send(Message::binary(buf.to_vec()))
            .map_err(to_io)?;
        me.unflushed = Pin::new(&mut me.ws).poll_flush(cx).is_pending();
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        let r = ready!(Pin::new(&mut me.ws).poll_flush(cx)).map_err(to_io);
        me.unflushed = false;
        Poll::Ready(r)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().ws)
            .poll_close(cx)
            .map_err(to_io)
    }
}
