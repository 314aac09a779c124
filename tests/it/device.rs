//! A protocol version 2 device client on a plain socket, written against
//! docs/PROTOCOL.md's "Version 2" with the engine's frame codec: log in by
//! password (issuing a token) or by token, SEND2 with client ids, resend
//! what has no ACK, DELIVERED, read markers, devices. The end-to-end tests
//! of devices and exactly-once sends drive it, cutting its connection
//! wherever they like.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use confab_engine::frame::{Credential, ErrorCode, Frame, Resume, Target, Text};
use confab_engine::{decode, ClientId, MessageId, Name, Ref, Token};

use crate::harness::WAIT;

/// A frame from the server, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum In {
    LoginOk2 {
        reference: Ref,
        device: Option<String>,
        token: Option<Token>,
        bookmark: MessageId,
    },
    Ack {
        reference: Ref,
        id: MessageId,
        ts: u64,
    },
    Message {
        id: MessageId,
        sender: String,
        target: Target,
        body: String,
    },
    CaughtUp(MessageId),
    Error {
        code: ErrorCode,
        reference: Ref,
    },
    Ok(Ref),
    ReadMarker {
        target: Target,
        id: MessageId,
    },
    Devices(Vec<(String, bool)>),
    History {
        reference: Ref,
        more: bool,
        entries: Vec<(MessageId, String)>,
    },
    Other(&'static str),
}

fn owned(f: &Frame<'_>) -> In {
    match f {
        Frame::LoginOk2 {
            reference,
            device,
            token,
            bookmark,
            ..
        } => In::LoginOk2 {
            reference: *reference,
            device: device.map(|d| d.to_string()),
            token: *token,
            bookmark: *bookmark,
        },
        Frame::Ack {
            reference,
            id,
            timestamp_ms,
        } => In::Ack {
            reference: *reference,
            id: *id,
            ts: *timestamp_ms,
        },
        Frame::Message {
            id,
            sender,
            target,
            body,
            ..
        } => In::Message {
            id: *id,
            sender: sender.to_string(),
            target: *target,
            body: body.as_str().to_owned(),
        },
        Frame::CaughtUp { last_id } => In::CaughtUp(*last_id),
        Frame::Error {
            code, reference, ..
        } => In::Error {
            code: *code,
            reference: *reference,
        },
        Frame::Ok { reference } => In::Ok(*reference),
        Frame::ReadMarker { target, id } => In::ReadMarker {
            target: *target,
            id: *id,
        },
        Frame::DeviceList { devices, .. } => In::Devices(
            devices
                .iter()
                .map(|d| (d.name.to_string(), d.current))
                .collect(),
        ),
        Frame::HistoryPage {
            reference,
            more,
            entries,
            ..
        } => In::History {
            reference: *reference,
            more: *more,
            entries: entries
                .iter()
                .map(|e| (e.id, e.body.as_str().to_owned()))
                .collect(),
        },
        other => In::Other(other.name()),
    }
}

pub(crate) fn name(s: &str) -> Name {
    Name::new(s).expect("a valid test name")
}

fn text(s: &str) -> Text<'_> {
    Text::new(s).expect("a short text")
}

/// One connection speaking version 2.
pub(crate) struct Device {
    stream: TcpStream,
    buf: Vec<u8>,
    next_ref: u32,
}

/// Why a read ended without a frame.
#[derive(Debug)]
pub(crate) enum Closed {
    /// The server closed (or reset) the connection.
    Eof,
    /// Nothing arrived within the wait.
    Timeout,
}

impl Device {
    /// Connects and says HELLO 2; `None` if the server is not there.
    pub(crate) fn connect(port: u16) -> Option<Device> {
        let stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
        let _ = stream.set_nodelay(true);
        let mut d = Device {
            stream,
            buf: Vec::new(),
            next_ref: 1,
        };
        let hello = Frame::Hello {
            version: 2,
            client: text("e2e-device"),
        };
        d.write(&hello).ok()?;
        match d.recv(WAIT) {
            Ok(In::Other("SERVER_HELLO")) => Some(d),
            _ => None,
        }
    }

    pub(crate) fn reference(&mut self) -> Ref {
        self.next_ref += 1;
        Ref(self.next_ref)
    }

    pub(crate) fn write(&mut self, f: &Frame<'_>) -> io::Result<()> {
        self.stream.write_all(&f.to_bytes())
    }

    /// Writes raw bytes (part of a frame, to cut it).
    pub(crate) fn write_bytes(&mut self, b: &[u8]) -> io::Result<()> {
        self.stream.write_all(b)
    }

    /// Cuts the connection at once, whatever is in flight.
    pub(crate) fn cut(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// The next frame that is not a PING (answered), within `wait`.
    pub(crate) fn recv(&mut self, wait: Duration) -> Result<In, Closed> {
        let deadline = Instant::now() + wait;
        loop {
            if let Ok(Some((f, used))) = decode(&self.buf, u32::MAX) {
                let ping = match f {
                    Frame::Ping { token } => Some(token),
                    _ => None,
                };
                let got = owned(&f);
                self.buf.drain(..used);
                match ping {
                    Some(token) => {
                        let _ = self.write(&Frame::Pong { token });
                        continue;
                    }
                    None => return Ok(got),
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Closed::Timeout);
            }
            let _ = self.stream.set_read_timeout(Some(left));
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(Closed::Eof),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => return Err(Closed::Eof),
            }
        }
    }

    /// LOGIN2 by password as `device`, asking for a token; the answer.
    pub(crate) fn login_password(&mut self, user: &str, password: &str, device: &str) -> In {
        let reference = self.reference();
        let login = Frame::Login2 {
            reference,
            user: name(user),
            credential: Credential::Password(text(password)),
            device: Some(name(device)),
            issue_token: true,
            resume: Resume::After(MessageId(0)),
            roster: false,
        };
        self.write(&login).expect("the server reads");
        self.recv(WAIT).expect("an answer to LOGIN2")
    }

    /// LOGIN2 by token, resuming at the device's bookmark; the answer.
    pub(crate) fn login_token(&mut self, user: &str, token: &Token) -> Result<In, Closed> {
        let reference = self.reference();
        let login = Frame::Login2 {
            reference,
            user: name(user),
            credential: Credential::Token(&token.0),
            device: None,
            issue_token: false,
            resume: Resume::Device,
            roster: false,
        };
        self.write(&login).map_err(|_| Closed::Eof)?;
        self.recv(WAIT)
    }

    /// The replay after a login: its MESSAGEs, up to CAUGHT_UP (whose id
    /// it returns); other frames (read markers) are kept in `other`.
    pub(crate) fn replay(&mut self, other: &mut Vec<In>) -> Result<(Vec<In>, MessageId), Closed> {
        let mut messages = Vec::new();
        loop {
            match self.recv(WAIT)? {
                m @ In::Message { .. } => messages.push(m),
                In::CaughtUp(id) => return Ok((messages, id)),
                o => other.push(o),
            }
        }
    }

    pub(crate) fn send2(
        &mut self,
        reference: Ref,
        id: ClientId,
        target: Target,
        body: &str,
    ) -> io::Result<()> {
        self.write(&Frame::Send2 {
            reference,
            client_id: id,
            target,
            body: text(body),
        })
    }

    /// Every message of a conversation, oldest first, paged from history.
    pub(crate) fn history(&mut self, target: Target) -> Vec<(MessageId, String)> {
        let mut all = Vec::new();
        let mut before = MessageId(0);
        loop {
            let reference = self.reference();
            let request = Frame::HistoryRequest {
                reference,
                target,
                before,
                limit: 0,
            };
            self.write(&request).expect("the server reads");
            let (more, entries) = loop {
                match self.recv(WAIT).expect("a history page") {
                    In::History {
                        reference: r,
                        more,
                        entries,
                    } if r == reference => break (more, entries),
                    In::Error { code, .. } => panic!("history refused: {code:?}"),
                    _ => {}
                }
            };
            before = entries.last().map_or(before, |e| e.0);
            all.extend(entries);
            if !more {
                all.reverse();
                return all;
            }
        }
    }
}

/// What a sender keeps: the SEND2s it has no ACK for, by client id (to
/// resend after a reconnect), the ACKs it got, and the ACKs the test made
/// it "lose" (read, then forgotten, as if the connection had dropped just
/// before they arrived), which the retry must repeat exactly.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    pub(crate) unacked: BTreeMap<u64, String>,
    /// Client id → (message id, ts) of its ACK.
    pub(crate) acked: BTreeMap<u64, (MessageId, u64)>,
    /// Client id → the ACK that was lost.
    pub(crate) lost: BTreeMap<u64, (MessageId, u64)>,
    /// Retries answered with the lost ACK.
    pub(crate) repeated: u64,
}

impl Outbox {
    /// An ACK for client id `cid`; panics if it is a retry's and names
    /// another message than the lost one did.
    pub(crate) fn acked(&mut self, cid: u64, id: MessageId, ts: u64) {
        self.unacked.remove(&cid);
        if let Some(first) = self.lost.remove(&cid) {
            assert_eq!(
                first,
                (id, ts),
                "client id {cid}: a retry is answered with the original ACK"
            );
            self.repeated += 1;
        }
        let before = self.acked.insert(cid, (id, ts));
        assert!(before.is_none(), "client id {cid} acknowledged twice");
    }

    /// The ACK for `cid` arrived and is forgotten: the send stays unacked.
    pub(crate) fn lose(&mut self, cid: u64, id: MessageId, ts: u64) {
        self.lost.insert(cid, (id, ts));
    }
}
