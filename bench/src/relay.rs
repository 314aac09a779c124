//! `confab-bench relay`: the minimal relay of issue 17, the floor that
//! confab's fan-out cost is compared against. One thread, one
//! level-triggered epoll loop (`polling`), non-blocking std sockets; it
//! speaks just enough of protocol v1 for the bench's clients to log in
//! and send (HELLO, REGISTER, LOGIN, PING, SEND), stores and checks
//! nothing. What a loop turn queues for a connection goes out in one
//! `write` at the end of the turn: one write per message per recipient
//! at everyday load (one message per turn), batched when saturated, as a
//! careful event loop does. What is left is the cost of the syscalls and
//! copies alone.
//!
//! (A first version wrote every frame at once, one `sendto` per delivery
//! even when saturated: 5.6 CPU-s per M deliveries, 20x confab, which
//! measured unbatched writes rather than a floor.)

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;
use confab_engine::frame::{ServerInfo, Text, PROTOCOL_VERSION};
use confab_engine::{decode, Frame, MessageId, Name, RosterVersion};
use polling::{Event, Events, PollMode, Poller};

use crate::conn::{Error, Result};

#[derive(Debug, Clone, Args)]
pub(crate) struct RelayArgs {
    /// Address to listen on (loopback).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub(crate) listen: SocketAddr,
}

/// The largest frame a client may send (and the relay announces).
const MAX_FRAME: u32 = 64 * 1024;

/// Bytes a connection may have waiting for the kernel before it is
/// dropped: a reader this far behind is not keeping up.
const MAX_PENDING: usize = 8 << 20;

/// The listener's key in the poller (polling reserves `usize::MAX`);
/// connections use their slot index.
const LISTENER: usize = usize::MAX - 1;

/// One client.
struct Conn {
    stream: TcpStream,
    /// Bytes read and not yet a whole frame.
    input: Vec<u8>,
    /// Bytes queued this turn, or that the kernel did not take yet.
    pending: Vec<u8>,
    /// In [`Relay::dirty`].
    dirty: bool,
    /// Watched for writability (the kernel did not take everything).
    watching: bool,
    /// The logged-in name, once LOGIN succeeded.
    user: Option<Name>,
}

/// The relay's state: the connections by slot, and the message counter.
pub(crate) struct Relay {
    poller: Poller,
    listener: TcpListener,
    conns: Vec<Option<Conn>>,
    /// Connections with bytes queued this turn, written at its end.
    dirty: Vec<usize>,
    next_id: u64,
    /// Scratch for the one encoding of a broadcast.
    frame: Vec<u8>,
    /// The read buffer, one for all (a fresh zeroed one per read would be
    /// a 64 KiB memset per read).
    buf: Vec<u8>,
}

fn ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn ctx(what: &str) -> impl Fn(io::Error) -> Error + '_ {
    move |e| Error(format!("relay: {what}: {e}"))
}

impl Relay {
    /// Binds `addr` and registers the listener.
    pub(crate) fn bind(addr: SocketAddr) -> Result<Relay> {
        let listener = TcpListener::bind(addr).map_err(ctx("cannot bind"))?;
        listener
            .set_nonblocking(true)
            .map_err(ctx("set_nonblocking"))?;
        let poller = Poller::new().map_err(ctx("cannot make a poller"))?;
        // SAFETY: the listener is deleted from the poller in Drop, before
        // it is closed.
        unsafe { poller.add_with_mode(&listener, Event::readable(LISTENER), PollMode::Level) }
            .map_err(ctx("cannot register the listener"))?;
        Ok(Relay {
            poller,
            listener,
            conns: Vec::new(),
            dirty: Vec::new(),
            next_id: 0,
            frame: Vec::new(),
            buf: vec![0; 64 * 1024],
        })
    }

    /// The address it listens on.
    pub(crate) fn local_addr(&self) -> Result<SocketAddr> {
        self.listener.local_addr().map_err(ctx("local_addr"))
    }

    /// Serves forever (until an error of the poller itself).
    pub(crate) fn serve(&mut self) -> Result<()> {
        let mut events = Events::new();
        loop {
            events.clear();
            self.poller
                .wait(&mut events, None)
                .map_err(ctx("epoll_wait"))?;
            for ev in events.iter() {
                if ev.key == LISTENER {
                    self.accept();
                    continue;
                }
                if ev.writable {
                    self.flush(ev.key);
                }
                if ev.readable {
                    self.read(ev.key);
                }
            }
            for key in std::mem::take(&mut self.dirty) {
                if let Some(c) = self.conns.get_mut(key).and_then(Option::as_mut) {
                    c.dirty = false;
                    self.flush(key);
                }
            }
        }
    }

    fn accept(&mut self) {
        loop {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    eprintln!("relay: accept: {e}");
                    return;
                }
            };
            if stream.set_nonblocking(true).is_err() || stream.set_nodelay(true).is_err() {
                continue;
            }
            let key = match self.conns.iter().position(Option::is_none) {
                Some(k) => k,
                None => {
                    self.conns.push(None);
                    self.conns.len() - 1
                }
            };
            // SAFETY: deleted from the poller in `close` (or Drop) before
            // the stream is dropped.
            let added = unsafe {
                self.poller
                    .add_with_mode(&stream, Event::readable(key), PollMode::Level)
            };
            if added.is_err() {
                continue;
            }
            self.conns[key] = Some(Conn {
                stream,
                input: Vec::new(),
                pending: Vec::new(),
                dirty: false,
                watching: false,
                user: None,
            });
        }
    }

    fn close(&mut self, key: usize) {
        if let Some(c) = self.conns.get_mut(key).and_then(Option::take) {
            let _ = self.poller.delete(&c.stream);
        }
    }

    /// Reads what is there and answers every whole frame.
    fn read(&mut self, key: usize) {
        let mut buf = std::mem::take(&mut self.buf);
        self.read_into(key, &mut buf);
        self.buf = buf;
    }

    fn read_into(&mut self, key: usize, buf: &mut [u8]) {
        loop {
            let Some(c) = self.conns.get_mut(key).and_then(Option::as_mut) else {
                return;
            };
            match c.stream.read(buf) {
                Ok(0) => return self.close(key),
                Ok(n) => {
                    c.input.extend_from_slice(&buf[..n]);
                    if self.handle_input(key).is_err() {
                        return self.close(key);
                    }
                    if n < buf.len() {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.close(key),
            }
        }
    }

    /// Answers the whole frames in `key`'s input; an error drops it.
    fn handle_input(&mut self, key: usize) -> std::result::Result<(), ()> {
        let Some(c) = self.conns.get_mut(key).and_then(Option::as_mut) else {
            return Err(());
        };
        let input = std::mem::take(&mut c.input);
        let mut at = 0;
        let mut reply = Vec::new();
        let result = loop {
            let (frame, used) = match decode(&input[at..], MAX_FRAME) {
                Ok(Some(f)) => f,
                Ok(None) => break Ok(()),
                Err(confab_engine::DecodeError::UnknownType { frame_len, .. }) => {
                    at += frame_len;
                    continue;
                }
                Err(_) => break Err(()),
            };
            at += used;
            match frame {
                Frame::Hello { .. } => Frame::ServerHello {
                    version: PROTOCOL_VERSION,
                    server: Text::new("confab-bench relay").unwrap_or_default(),
                    info: ServerInfo {
                        registration_open: true,
                        max_frame: MAX_FRAME,
                        max_frame_pre_auth: MAX_FRAME,
                        max_body: u16::MAX,
                        msg_rate: u16::MAX,
                        msg_burst: u16::MAX,
                        groups_per_user: 0,
                        history_page_max: 0,
                        idle_timeout_ms: 0,
                    },
                }
                .encode(&mut reply),
                Frame::Register { reference, .. } => Frame::Ok { reference }.encode(&mut reply),
                Frame::Login {
                    reference,
                    user,
                    roster,
                    ..
                } => {
                    Frame::LoginOk { reference, user }.encode(&mut reply);
                    if roster {
                        Frame::RosterSnapshot {
                            version: RosterVersion(0),
                            last: true,
                            users: Vec::new(),
                        }
                        .encode(&mut reply);
                    }
                    Frame::CaughtUp {
                        last_id: MessageId(self.next_id),
                    }
                    .encode(&mut reply);
                    if let Some(c) = self.conns.get_mut(key).and_then(Option::as_mut) {
                        c.user = Some(user);
                    }
                }
                Frame::Ping { token } => Frame::Pong { token }.encode(&mut reply),
                Frame::Send {
                    reference,
                    target,
                    body,
                } => {
                    let Some(sender) = self.conns.get(key).and_then(|c| c.as_ref()?.user) else {
                        break Err(());
                    };
                    self.next_id += 1;
                    let (id, timestamp_ms) = (MessageId(self.next_id), ms_now());
                    Frame::Ack {
                        reference,
                        id,
                        timestamp_ms,
                    }
                    .encode(&mut reply);
                    let mut frame = std::mem::take(&mut self.frame);
                    frame.clear();
                    Frame::Message {
                        id,
                        timestamp_ms,
                        sender,
                        target,
                        body,
                    }
                    .encode(&mut frame);
                    self.broadcast(key, &frame);
                    self.frame = frame;
                }
                _ => {}
            }
        };
        if let Some(c) = self.conns.get_mut(key).and_then(Option::as_mut) {
            c.input = input;
            c.input.drain(..at);
        }
        self.send(key, &reply);
        result
    }

    /// `frame` to every logged-in connection but `from`.
    fn broadcast(&mut self, from: usize, frame: &[u8]) {
        for key in 0..self.conns.len() {
            let logged_in = self
                .conns
                .get(key)
                .is_some_and(|c| c.as_ref().is_some_and(|c| c.user.is_some()));
            if key != from && logged_in {
                self.send(key, frame);
            }
        }
    }

    /// Queues `bytes` for the end of the turn; over [`MAX_PENDING`] the
    /// connection is dropped.
    fn send(&mut self, key: usize, bytes: &[u8]) {
        let Some(c) = self.conns.get_mut(key).and_then(Option::as_mut) else {
            return;
        };
        if bytes.is_empty() {
            return;
        }
        c.pending.extend_from_slice(bytes);
        if c.pending.len() > MAX_PENDING {
            return self.close(key);
        }
        if !c.dirty {
            c.dirty = true;
            self.dirty.push(key);
        }
    }

    /// Writes what is pending in one `write`; watches for room while some
    /// is left, and stops once all is out.
    fn flush(&mut self, key: usize) {
        let Some(c) = self.conns.get_mut(key).and_then(Option::as_mut) else {
            return;
        };
        if !c.pending.is_empty() {
            match c.stream.write(&c.pending) {
                Ok(n) => {
                    c.pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return self.close(key),
            }
        }
        let watch = !c.pending.is_empty();
        if watch == c.watching {
            return;
        }
        c.watching = watch;
        let interest = if watch {
            Event::all(key)
        } else {
            c.pending = Vec::new();
            Event::readable(key)
        };
        if self
            .poller
            .modify_with_mode(&c.stream, interest, PollMode::Level)
            .is_err()
        {
            self.close(key);
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        for key in 0..self.conns.len() {
            self.close(key);
        }
        let _ = self.poller.delete(&self.listener);
    }
}

/// `confab-bench relay`: prints `listening on ADDR` (as confab-server
/// does, so the suite finds it the same way) and serves until killed.
pub(crate) fn run(a: &RelayArgs) -> Result<()> {
    crate::conn::check_loopback(&a.listen)?;
    let mut relay = Relay::bind(a.listen)?;
    eprintln!("relay: listening on {}", relay.local_addr()?);
    relay.serve()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::conn::{encode_send, Reader, Stamp};
    use confab_engine::{Ref, Target};

    fn frames_until(
        s: &mut TcpStream,
        r: &mut Reader,
        mut stop: impl FnMut(&Frame<'_>) -> bool,
    ) -> Vec<u8> {
        let mut kinds = Vec::new();
        loop {
            while let Some(f) = r.next_frame().expect("valid frames") {
                let mut v = Vec::new();
                f.encode(&mut v);
                kinds.push(v[4]);
                if stop(&f) {
                    return kinds;
                }
            }
            assert!(r.fill_from(s).expect("read") > 0, "relay closed");
        }
    }

    fn client(addr: SocketAddr, name: &str) -> (TcpStream, Reader) {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut out = Vec::new();
        Frame::Hello {
            version: PROTOCOL_VERSION,
            client: Text::new("t").expect("text"),
        }
        .encode(&mut out);
        Frame::Login {
            reference: Ref(2),
            user: Name::new(name).expect("name"),
            password: Text::new("x").expect("text"),
            resume_after: MessageId(0),
            roster: false,
        }
        .encode(&mut out);
        s.write_all(&out).expect("write");
        let mut r = Reader::new(4096);
        frames_until(&mut s, &mut r, |f| matches!(f, Frame::CaughtUp { .. }));
        (s, r)
    }

    #[test]
    fn relays_a_send_to_the_others_and_acks_it_once() {
        let mut relay = Relay::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let addr = relay.local_addr().expect("addr");
        std::thread::spawn(move || relay.serve());
        let (mut a, mut ra) = client(addr, "a");
        let (mut b, mut rb) = client(addr, "b");
        let (mut c, mut rc) = client(addr, "c");
        let stamp = Stamp {
            sent_ns: 5,
            sender: 0,
            seq: 0,
        };
        let mut out = Vec::new();
        encode_send(&mut out, 1, None, &Target::Room, 40, stamp);
        // A PING after the SEND: its PONG proves nothing else came first.
        Frame::Ping { token: 9 }.encode(&mut out);
        a.write_all(&out).expect("write");
        let kinds = frames_until(&mut a, &mut ra, |f| matches!(f, Frame::Pong { token: 9 }));
        assert_eq!(kinds, [0x45, 0x02], "one ACK, then the PONG, no echo");
        for (s, r) in [(&mut b, &mut rb), (&mut c, &mut rc)] {
            let mut got = None;
            frames_until(s, r, |f| {
                if let Frame::Message { body, sender, .. } = f {
                    got = Some((Stamp::parse(body.as_str()), sender.as_str().to_owned()));
                }
                got.is_some()
            });
            assert_eq!(got, Some((Some(stamp), "a".to_owned())));
        }
    }
}
