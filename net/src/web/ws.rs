//! A WebSocket as the byte stream `conn.rs` drives: the [`Transport`] of a
//! browser's connection, so the reader, the writer, the hub and every
//! limit are the same as over TCP and TLS.
//!
//! - **In.** The payloads of binary messages, in order, are the confab
//!   byte stream: a message may hold several frames or part of one, and
//!   each payload goes to the hub as one read would (`conn::feed`, no
//!   copy). Pings are answered by tungstenite; a ping, pong or empty
//!   message is told to the hub as that many bytes of framing
//!   (`conn::feed_transport`): it counts for the idle timeout and is paid
//!   for from the session's budgets like an exempt request, so a ping
//!   flood pauses reading (or, before login, closes the session) as a
//!   PING flood would. A text
//!   message is refused with close 1003, a message over
//!   [`max_message`] with 1009, a protocol violation (an unmasked frame,
//!   say) with 1002.
//! - **Out.** Each write `conn.rs` makes is whole frames (it copies up to
//!   64 KiB of frames, never a part of one, and this transport always
//!   takes a write whole), and becomes one binary message.
//! - **IRC** (subprotocols `text.ircv3.net`, `binary.ircv3.net`,
//!   [`Framing::IrcLines`]): each message, text or binary, is one IRC line
//!   without its CR LF (one sent is tolerated); the transport adds the
//!   CR LF the line parser ends lines by, and the hub reads it as an IRC
//!   connection's bytes. Out, each line of a write is one message without
//!   its CR LF, text or binary as the subprotocol says.
//! - **Sharing.** As for TLS, the reader and the writer share the stream
//!   through a lock taken only inside one poll, never contended (both
//!   halves are polled by the connection's one task).

use std::io;
use std::net::{Shutdown, TcpStream};
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{ready, Context, Poll, Waker};

use async_io::{Async, Timer};
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use async_tungstenite::tungstenite::{Bytes, Error as WsError, Message, Utf8Bytes};
use async_tungstenite::WebSocketStream;
use confab_engine::codec::HEADER_LEN;
use confab_engine::ConnId;
use futures_lite::future;
use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_util::{Sink, Stream};

use crate::conn::{self, End, Fed, Transport, READ_BUF};

use crate::linger;
use crate::shared::Shared;
/// The WebSocket implementation, for the fuzz target to drive with the
/// same types [`close_for`] takes.
pub use async_tungstenite::tungstenite;

/// What the messages of a WebSocket carry, by its subprotocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// confab frames, a byte stream cut anywhere, in binary messages.
    Stream,
    /// One IRC line per message, without CR LF; sent as text messages
    /// (`text.ircv3.net`) or binary ones (`binary.ircv3.net`).
    IrcLines {
        /// Send text messages.
        text: bool,
    },
}

impl Framing {
    /// The framing of a subprotocol the web port chose.
    pub fn of(subprotocol: &str) -> Framing {
        match subprotocol {
            "text.ircv3.net" => Framing::IrcLines { text: true },
            "binary.ircv3.net" => Framing::IrcLines { text: false },
            _ => Framing::Stream,
        }
    }
}

/// What a read of the WebSocket brought.
enum Data {
    /// A binary message's payload: confab bytes.
    Bytes(Bytes),
    /// One IRC line, its CR LF added.
    Line(Vec<u8>),
    /// A ping, pong or empty message of this many payload bytes: nothing
    /// for the hub but its cost.
    Framing(usize),
}

/// The least a message of framing is charged (a frame header's bytes).
const FRAMING_CHARGE: usize = 2;
/// Bytes tungstenite reads from the socket at once. Its buffer is kept
/// for the connection's life (an idle session holds it), so it is small:
/// a browser sends little, and the fan-out it receives is writes.
const WS_READ_BUF: usize = 4 * 1024;
/// The close reason a text message gets.
pub const TEXT_REFUSED: &str = "confab frames travel in binary messages; text is not accepted";

/// The largest message (and WebSocket frame) accepted, and sent: two of
/// the engine's largest frames, so a client may batch but never make the
/// server buffer more; at least one write of `conn.rs` (64 KiB of whole
/// frames, or one frame larger than that), since tungstenite holds
/// outgoing messages to the same limit.
pub fn max_message(max_frame: u32) -> usize {
    (2 * (max_frame as usize + HEADER_LEN)).max(conn::WRITE_CHUNK)
}

/// tungstenite's limits for a server with the engine's `max_frame`.
pub fn config(max_frame: u32) -> WebSocketConfig {
    let max = max_message(max_frame);
    WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUF)
        // Each write is whole frames: out at once, never held back.
        .write_buffer_size(0)
        // A write waits for the one before it, so at most two are queued.
        .max_write_buffer_size(2 * (max + 16))
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

/// The close a read error calls for; `None` when the peer is gone and
/// nothing can be said to it. Every other error has a code.
pub fn close_for(e: &WsError, max_frame: u32) -> Option<CloseFrame> {
    let (code, reason) = match e {
        WsError::ConnectionClosed | WsError::AlreadyClosed | WsError::Io(_) => return None,
        WsError::Capacity(_) => (
            CloseCode::Size,
            format!("message too big: at most {} bytes", max_message(max_frame)),
        ),
        WsError::Utf8(_) => (CloseCode::Invalid, "invalid UTF-8".to_owned()),
        e => (CloseCode::Protocol, short(&e.to_string())),
    };
    Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(reason),
    })
}

/// A close reason fits 123 bytes.
fn short(s: &str) -> String {
    let mut end = s.len().min(120);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// A session's WebSocket, shared by its reader and writer.
pub(crate) struct WsConn<'a, S> {
    ws: Mutex<Ws<S>>,
    tcp: &'a Async<TcpStream>,
    max_frame: u32,
    framing: Framing,
}

struct Ws<S> {
    stream: WebSocketStream<S>,
    /// The close to send when the connection ends ([`WsConn::finish`]).
    close: Option<CloseFrame>,
}

impl<'a, S> WsConn<'a, S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    pub(crate) fn new(
        stream: WebSocketStream<S>,
        tcp: &'a Async<TcpStream>,
        max_frame: u32,
        framing: Framing,
    ) -> Self {
        WsConn {
            ws: Mutex::new(Ws {
                stream,
                close: None,
            }),
            tcp,
            max_frame,
            framing,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Ws<S>> {
        self.ws.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a refusal (1003, 1009, 1002) waits to be sent: the reader
    /// ended the connection, and [`Transport::finish`] must still say why.
    pub(crate) fn refused(&self) -> bool {
        self.lock().close.is_some()
    }

    /// The next message; `Pending` (registered) until one.
    fn poll_data(&self, ws: &mut Ws<S>, cx: &mut Context<'_>) -> Poll<Result<Data, End>> {
        let framing = |len: usize| Poll::Ready(Ok(Data::Framing(len + FRAMING_CHARGE)));
        let message = ready!(Pin::new(&mut ws.stream).poll_next(cx));
        if self.framing != Framing::Stream {
            match message {
                Some(Ok(Message::Binary(b))) if !b.is_empty() => {
                    return Poll::Ready(Ok(Data::Line(irc_line(&b))))
                }
                Some(Ok(Message::Text(t))) if !t.is_empty() => {
                    return Poll::Ready(Ok(Data::Line(irc_line(t.as_bytes()))))
                }
                Some(Ok(Message::Text(_))) => return framing(0),
                _ => {}
            }
        }
        match message {
            Some(Ok(Message::Binary(b))) if !b.is_empty() => Poll::Ready(Ok(Data::Bytes(b))),
            Some(Ok(Message::Text(_))) => {
                ws.close = Some(CloseFrame {
                    code: CloseCode::Unsupported,
                    reason: Utf8Bytes::from_static(TEXT_REFUSED),
                });
                Poll::Ready(Err(End::WebSocket("a text message (close 1003)".into())))
            }
            // Answered by tungstenite; nothing to feed, but paid for.
            Some(Ok(Message::Ping(b) | Message::Pong(b))) => framing(b.len()),
            Some(Ok(Message::Binary(_) | Message::Frame(_))) => framing(0),
            // The peer's close: tungstenite answers it, and the stream ends.
            Some(Ok(Message::Close(_))) => framing(0),
            Some(Err(e)) => Poll::Ready(Err(self.fail(ws, e))),
            None => Poll::Ready(Err(End::PeerClosed)),
        }
    }

    /// What `data` gives the hub.
    fn feed(
        shared: &Shared,
        conn: ConnId,
        leftover: &mut Vec<u8>,
        data: Data,
        timeout: bool,
    ) -> Fed {
        match data {
            Data::Bytes(b) => conn::feed(shared, conn, leftover, &b, timeout),
            Data::Line(l) => conn::feed(shared, conn, leftover, &l, timeout),
            Data::Framing(len) => conn::feed_transport(shared, conn, leftover, len),
        }
    }

    fn fail(&self, ws: &mut Ws<S>, e: WsError) -> End {
        match close_for(&e, self.max_frame) {
            Some(frame) => {
                let end = End::WebSocket(format!("{e} (close {})", u16::from(frame.code)));
                ws.close = Some(frame);
                end
            }
            None => match e {
                WsError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => End::PeerClosed,
                WsError::Io(e) => End::Io(e),
                _ => End::PeerClosed,
            },
        }
    }

    /// Sends the close (a refusal, or 1000), then closes the stream under
    /// it (TLS close_notify, the TCP half-close).
    fn poll_close(&self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let mut ws = self.lock();
        if let Some(frame) = ws.close.take() {
            match Pin::new(&mut ws.stream).poll_ready(cx) {
                Poll::Pending => {
                    // Still to send at the next poll.
                    ws.close = Some(frame);
                    return Poll::Pending;
                }
                Poll::Ready(r) => r?,
            }
            Pin::new(&mut ws.stream).start_send(Message::Close(Some(frame)))?;
        }
        ready!(Pin::new(&mut ws.stream).poll_flush(cx))?;
        Pin::new(ws.stream.get_mut())
            .poll_close(cx)
            .map_err(WsError::Io)
    }
}

/// A message's IRC line with CR LF, whether or not the client sent one.
fn irc_line(payload: &[u8]) -> Vec<u8> {
    let line = payload.strip_suffix(b"\n").unwrap_or(payload);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut out = Vec::with_capacity(line.len() + 2);
    out.extend_from_slice(line);
    out.extend_from_slice(b"\r\n");
    out
}

/// The messages of one write of IRC lines: each line without its CR LF.
/// The engine writes UTF-8 only; anything else would be replaced (U+FFFD)
/// in a text message, as the IRCv3 transport asks.
fn irc_messages(payload: &[u8], text: bool) -> impl Iterator<Item = Message> + '_ {
    payload
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
        .map(move |l| match text {
            true => Message::Text(Utf8Bytes::from(String::from_utf8_lossy(l).into_owned())),
            false => Message::Binary(Bytes::copy_from_slice(l)),
        })
}

fn to_io(e: WsError) -> io::Error {
    match e {
        WsError::Io(e) => e,
        e => io::Error::other(e),
    }
}

impl<S> Transport for WsConn<'_, S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    fn poll_read_and_feed(
        &self,
        cx: &mut Context<'_>,
        shared: &Shared,
        conn: ConnId,
        leftover: &mut Vec<u8>,
    ) -> Poll<Result<Fed, End>> {
        let mut ws = self.lock();
        let data = ready!(self.poll_data(&mut ws, cx));
        drop(ws);
        Poll::Ready(data.map(|d| Self::feed(shared, conn, leftover, d, false)))
    }

    fn read_now_and_feed(
        &self,
        shared: &Shared,
        conn: ConnId,
        leftover: &mut Vec<u8>,
    ) -> Result<Option<Fed>, End> {
        // As over TCP: nothing is read while the leftover holds a buffer's
        // worth, which bounds it however long the rate limit holds it.
        if leftover.len() < READ_BUF {
            let mut cx = Context::from_waker(Waker::noop());
            let mut ws = self.lock();
            if let Poll::Ready(data) = self.poll_data(&mut ws, &mut cx) {
                drop(ws);
                return Ok(Some(Self::feed(shared, conn, leftover, data?, true)));
            }
        }
        Ok(Some(conn::feed(shared, conn, leftover, &[], true)))
    }

    fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut ws = self.lock();
        ready!(Pin::new(&mut ws.stream).poll_ready(cx)).map_err(to_io)?;
        let len = bufs.iter().map(|b| b.len()).sum();
        let mut payload = Vec::with_capacity(len);
        for b in bufs {
            payload.extend_from_slice(b);
        }
        match self.framing {
            Framing::Stream => Pin::new(&mut ws.stream)
                .start_send(Message::Binary(payload.into()))
                .map_err(to_io)?,
            // A write is whole lines (whole events of the hub), and
            // their framed size is at most the write's and a few bytes a
            // line, within the write buffer's bound.
            Framing::IrcLines { text } => {
                for m in irc_messages(&payload, text) {
                    Pin::new(&mut ws.stream).start_send(m).map_err(to_io)?;
                }
            }
        }
        Poll::Ready(Ok(len))
    }

    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.lock().stream)
            .poll_flush(cx)
            .map_err(to_io)
    }

    async fn finish(&self) {
        {
            let mut ws = self.lock();
            if ws.close.is_none() {
                ws.close = Some(CloseFrame {
                    code: CloseCode::Normal,
                    reason: Utf8Bytes::from_static("closed"),
                });
            }
        }
        let closed = future::or(
            async { future::poll_fn(|cx| self.poll_close(cx)).await.is_ok() },
            async {
                Timer::after(linger::LINGER).await;
                false
            },
        )
        .await;
        // Closing an `Async<TcpStream>` only flushes: the FIN is ours to send.
        if closed && self.tcp.get_ref().shutdown(Shutdown::Write).is_ok() {
            linger::linger(self.tcp).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_tungstenite::tungstenite::error::{CapacityError, ProtocolError};

    #[test]
    fn every_read_error_but_a_gone_peer_has_a_close_code() {
        let too_big = WsError::Capacity(CapacityError::MessageTooLong {
            size: 1 << 20,
            max_size: 10,
        });
        let code = |e: &WsError| close_for(e, 65536).map(|f| u16::from(f.code));
        assert_eq!(code(&too_big), Some(1009));
        let unmasked = WsError::Protocol(ProtocolError::UnmaskedFrameFromClient);
        assert_eq!(code(&unmasked), Some(1002));
        assert_eq!(code(&WsError::Io(io::ErrorKind::BrokenPipe.into())), None);
    }

    #[test]
    fn an_irc_message_is_one_line_with_its_cr_lf_and_a_write_is_one_message_a_line() {
        assert_eq!(irc_line(b"PING x"), b"PING x\r\n");
        assert_eq!(irc_line(b"PING x\r\n"), b"PING x\r\n");
        let out: Vec<Message> = irc_messages(b":s 001 a :hi\r\n:s PONG s :x\r\n", true).collect();
        assert_eq!(
            out,
            [
                Message::Text(":s 001 a :hi".into()),
                Message::Text(":s PONG s :x".into())
            ]
        );
        let bin: Vec<Message> = irc_messages(b"A\r\n", false).collect();
        assert_eq!(bin, [Message::Binary(Bytes::from_static(b"A"))]);
        assert_eq!(Framing::of("confab.v2"), Framing::Stream);
    }

    #[test]
    fn a_close_reason_fits_its_frame() {
        let long = "é".repeat(200);
        assert!(short(&long).len() <= 123);
        assert_eq!(max_message(65536), 2 * (65536 + HEADER_LEN));
        // A small frame limit still lets a whole 64 KiB write through.
        assert_eq!(max_message(1024), conn::WRITE_CHUNK);
    }
}
