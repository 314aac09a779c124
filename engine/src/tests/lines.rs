//! A toy line protocol, the hub's second front end in these tests: one
//! request or event per line of text. It counts its encodings, so a test
//! can tell that a broadcast is encoded once for all its sessions.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::effect::StoredMessage;
use crate::error::ProtocolError;
use crate::event::Event;
use crate::id::{MessageId, Ref};
use crate::name::Name;
use crate::protocol::{Codec, Decoded};
use crate::request::Request;
use crate::wire::frame::Target;

/// The codec (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Lines {
    /// MESSAGE events encoded.
    pub(crate) messages_encoded: AtomicUsize,
}

impl Codec for Lines {
    /// `HELLO`, `LOGIN <ref> <user> <password>`, `SAY <ref> <body>`, `PING <n>`.
    fn decode<'a>(&self, input: &'a [u8], max_len: u32) -> Decoded<'a> {
        let Some(end) = input.iter().position(|b| *b == b'\n') else {
            return if input.len() > max_len as usize {
                Decoded::Fatal(ProtocolError::Storage("line too long".into()))
            } else {
                Decoded::Incomplete
            };
        };
        let Ok(line) = std::str::from_utf8(&input[..end]) else {
            return Decoded::Fatal(ProtocolError::Storage("not UTF-8".into()));
        };
        let mut words = line.splitn(4, ' ');
        let verb = words.next().unwrap_or_default();
        let mut next = || words.next().unwrap_or_default();
        let reference = |s: &str| Ref(s.parse().unwrap_or(0));
        let request = match verb {
            "HELLO" => Request::Hello { version: 1 },
            "PING" => Request::Ping {
                token: next().parse().unwrap_or(0),
            },
            "LOGIN" => {
                let r = reference(next());
                let Ok(user) = Name::new(next()) else {
                    return Decoded::Skipped(end + 1, ProtocolError::Storage("bad name".into()));
                };
                Request::Login {
                    reference: r,
                    user,
                    password: next(),
                    resume_after: MessageId(0),
                    roster: false,
                }
            }
            "SAY" => {
                let r = reference(next());
                let rest = line.splitn(3, ' ').nth(2).unwrap_or_default();
                Request::Send {
                    reference: r,
                    target: Target::Room,
                    body: rest,
                    kind: crate::MessageKind::Message,
                    tags: crate::ClientTags::default(),
                }
            }
            _ => return Decoded::NotARequest(end + 1, "UNKNOWN"),
        };
        Decoded::Request(request, end + 1)
    }

    fn encode(&self, event: &Event, out: &mut Vec<u8>) {
        if let Event::Message(_) = event {
            self.messages_encoded.fetch_add(1, Ordering::Relaxed);
        }
        out.extend_from_slice(line(event).as_bytes());
    }

    fn encoded_len(&self, event: &Event) -> usize {
        line(event).len()
    }

    fn history_entry_len(&self, m: &StoredMessage) -> usize {
        self.encoded_len(&Event::Message(m.clone()))
    }

    fn roster_entry_len(&self, user: &Name) -> usize {
        user.as_str().len() + 1
    }
}

/// An event as one line of text.
fn line(event: &Event) -> String {
    let text = match event {
        Event::Message(m) => format!("MESSAGE {} {} {}", m.id, m.sender, m.body),
        Event::Ack { reference, id, .. } => format!("ACK {reference} {id}"),
        Event::LoginOk { user, .. } => format!("WELCOME {user}"),
        Event::ServerHello { server, .. } => format!("HELLO {server}"),
        Event::CaughtUp { last_id } => format!("CAUGHT_UP {last_id}"),
        Event::Pong { token } => format!("PONG {token}"),
        Event::Error { error, .. } => format!("ERROR {}", error.code().to_u16()),
        other => format!("EVENT {other:?}"),
    };
    text + "\n"
}
