//! The confab binary protocol as a front end of the hub.
//!
//! [`Confab`] is the [`Codec`] of [`Protocol::CONFAB`](crate::Protocol):
//! it reads frames into [`Request`]s and writes [`Event`]s as frames, byte
//! for byte as docs/PROTOCOL.md describes. The frame codec itself
//! ([`super::codec`]) knows nothing of requests or events; this is the only
//! place that maps between them.

use crate::effect::StoredMessage;
use crate::error::ProtocolError;
use crate::event::Event;
use crate::name::Name;
use crate::protocol::{Codec, Decoded};
use crate::request::{GroupRequest, Request};
use crate::wire::codec::{decode, DecodeError};
use crate::wire::frame::{Frame, HistoryEntry, Text};

/// The confab binary codec (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct Confab;

impl Codec for Confab {
    fn decode<'a>(&self, input: &'a [u8], max_len: u32) -> Decoded<'a> {
        match decode(input, max_len) {
            Ok(None) => Decoded::Incomplete,
            Ok(Some((frame, len))) => {
                let name = frame.name();
                match request(frame) {
                    Some(r) => Decoded::Request(r, len),
                    None => Decoded::NotARequest(len, name),
                }
            }
            Err(DecodeError::UnknownType { kind, frame_len }) => {
                Decoded::Skipped(frame_len, ProtocolError::UnknownFrameType { kind })
            }
            Err(e) => Decoded::Fatal(e.into()),
        }
    }

    fn encode(&self, event: &Event, out: &mut Vec<u8>) {
        if !is_raw(event) {
            with_frame(event, |f| f.encode(out));
        }
    }

    fn encoded_len(&self, event: &Event) -> usize {
        if is_raw(event) {
            return 0;
        }
        with_frame(event, |f| f.encoded_len())
    }

    fn history_entry_len(&self, m: &StoredMessage) -> usize {
        entry(m).encoded_len()
    }

    fn roster_entry_len(&self, user: &Name) -> usize {
        // A name is its one-byte length, then its bytes.
        1 + user.as_str().len()
    }

    /// DELETED and NOTICE are version 2's: a version 1 session is not
    /// told (it sees a deleted message's empty body in history and resume).
    fn tells(&self, event: &Event, version: u16) -> bool {
        version >= 2 || !matches!(event, Event::Deleted { .. } | Event::Notice { .. })
    }
}

/// The request a client's frame makes; `None` for a server's frame.
fn request(frame: Frame<'_>) -> Option<Request<'_>> {
    let group = |reference, op, group| Request::Group {
        reference,
        op,
        group,
    };
    Some(match frame {
        Frame::Ping { token } => Request::Ping { token },
        Frame::Pong { token } => Request::Pong { token },
        Frame::Hello { version, .. } => Request::Hello { version },
        Frame::Register {
            reference,
            user,
            password,
        } => Request::Register {
            reference,
            user,
            password: password.as_str(),
        },
        Frame::Login {
            reference,
            user,
            password,
            resume_after,
            roster,
        } => Request::Login {
            reference,
            user,
            password: password.as_str(),
            resume_after,
            roster,
        },
        Frame::Logout { reference } => Request::Logout { reference },
        Frame::RosterAck { version } => Request::RosterAck { version },
        Frame::GroupCreate {
            reference,
            group: g,
        } => group(reference, GroupRequest::Create, g),
        Frame::GroupJoin {
            reference,
            group: g,
        } => group(reference, GroupRequest::Join, g),
        Frame::GroupLeave {
            reference,
            group: g,
        } => group(reference, GroupRequest::Leave, g),
        Frame::GroupListRequest { reference } => Request::GroupList { reference },
        Frame::Send {
            reference,
            target,
            body,
        } => Request::Send {
            reference,
            target,
            body: body.as_str(),
            kind: crate::MessageKind::Message,
            tags: crate::ClientTags::default(),
        },
        Frame::HistoryRequest {
            reference,
            target,
            before,
            limit,
        } => Request::History {
            reference,
            target,
            window: crate::window::Window::before(before),
            limit,
        },
        other => return request_v2(other),
    })
}

/// The request a version 2 frame makes; `None` for a server's frame.
fn request_v2(frame: Frame<'_>) -> Option<Request<'_>> {
    Some(match frame {
        Frame::Login2 {
            reference,
            user,
            credential,
            device,
            issue_token,
            resume,
            roster,
        } => Request::Login2 {
            reference,
            user,
            credential,
            device,
            issue_token,
            resume,
            roster,
        },
        Frame::Send2 {
            reference,
            client_id,
            target,
            body,
        } => Request::Send2 {
            reference,
            client_id,
            target,
            body: body.as_str(),
        },
        Frame::Delivered { id } => Request::Delivered { id },
        Frame::MarkRead { target, id } => Request::MarkRead { target, id },
        Frame::DeviceListRequest { reference } => Request::Devices { reference },
        Frame::DeviceRevoke { reference, device } => Request::RevokeDevice { reference, device },
        other => return request_moderation(other),
    })
}

/// The request of a moderation frame (version 2); `None` for any other.
fn request_moderation(frame: Frame<'_>) -> Option<Request<'_>> {
    Some(match frame {
        Frame::Moderate {
            reference,
            action,
            user,
            seconds,
            reason,
        } => Request::Moderate {
            reference,
            ask: crate::request::ModerationAsk {
                action,
                user,
                seconds,
                reason: reason.as_str(),
            },
        },
        Frame::Delete {
            reference,
            id,
            reason,
        } => Request::Delete {
            reference,
            id,
            reason: reason.as_str(),
        },
        Frame::GroupModerate {
            reference,
            group,
            action,
            user,
            seconds,
            reason,
        } => Request::GroupModerate {
            reference,
            group,
            ask: crate::request::GroupAsk {
                action,
                user,
                seconds,
                reason: reason.as_str(),
            },
        },
        Frame::BanAddress {
            reference,
            lift,
            block,
            seconds,
            reason,
        } => Request::BanAddress {
            reference,
            ask: crate::request::AddressAsk {
                lift,
                block: block.as_str(),
                seconds,
                reason: reason.as_str(),
            },
        },
        Frame::Announce { reference, text } => Request::Announce {
            reference,
            text: text.as_str(),
        },
        _ => return None,
    })
}

/// A gateway's own lines and answers to a gateway's own requests (IRC's
/// CHATHISTORY TARGETS), which never go to a confab session (written as
/// nothing if one did).
fn is_raw(event: &Event) -> bool {
    matches!(event, Event::Raw(_) | Event::HistoryTargets { .. })
}

fn entry(m: &StoredMessage) -> HistoryEntry<'_> {
    HistoryEntry {
        id: m.id,
        timestamp_ms: m.timestamp_ms,
        sender: m.sender,
        body: Text::truncated(&m.body),
    }
}

/// Runs `f` on the frame that carries `event`. Texts the server writes
/// (error texts, reasons) are cut to what a frame carries; bodies and
/// names are within the limits by construction.
fn with_frame<R>(event: &Event, f: impl FnOnce(&Frame<'_>) -> R) -> R {
    if let Some(frame) = fixed_frame(event) {
        return f(&frame);
    }
    match event {
        Event::ServerHello {
            version,
            server,
            info,
        } => f(&Frame::ServerHello {
            version: *version,
            server: Text::truncated(server),
            info: *info,
        }),
        Event::RosterSnapshot {
            version,
            last,
            users,
        } => f(&Frame::RosterSnapshot {
            version: *version,
            last: *last,
            users: users.clone(),
        }),
        Event::Message(m) => f(&Frame::Message {
            id: m.id,
            timestamp_ms: m.timestamp_ms,
            sender: m.sender,
            target: m.target,
            body: Text::truncated(&m.body),
        }),
        Event::DeviceList { reference, devices } => f(&Frame::DeviceList {
            reference: *reference,
            devices: devices.clone(),
        }),
        Event::GroupList { reference, groups } => f(&Frame::GroupList {
            reference: *reference,
            groups: groups.clone(),
        }),
        Event::HistoryPage {
            reference,
            target,
            more,
            entries,
        } => f(&Frame::HistoryPage {
            reference: *reference,
            target: *target,
            more: *more,
            entries: entries.iter().map(entry).collect(),
        }),
        Event::Error { reference, error } => {
            let text = error.to_string();
            f(&Frame::Error {
                code: error.code(),
                reference: *reference,
                retry_after_ms: error.retry_after_ms(),
                text: Text::truncated(&text),
            })
        }
        Event::Notice { text } => f(&Frame::Notice {
            text: Text::truncated(text),
        }),
        Event::Shutdown {
            retry_after,
            reason,
        } => f(&Frame::Shutdown {
            retry_after_ms: retry_after.as_millis().min(u128::from(u32::MAX)) as u32,
            reason: Text::truncated(reason),
        }),
        _ => unreachable!("fixed_frame takes every other event"),
    }
}

/// The frame of an event whose fields are all fixed-size values.
fn fixed_frame(event: &Event) -> Option<Frame<'static>> {
    Some(match *event {
        Event::Ping { token } => Frame::Ping { token },
        Event::Pong { token } => Frame::Pong { token },
        Event::Ok { reference } => Frame::Ok { reference },
        Event::LoginOk { reference, user } => Frame::LoginOk { reference, user },
        Event::RosterDelta {
            version,
            presence,
            user,
            ..
        } => Frame::RosterDelta {
            version,
            presence,
            user,
        },
        Event::Ack {
            reference,
            id,
            timestamp_ms,
        } => Frame::Ack {
            reference,
            id,
            timestamp_ms,
        },
        Event::GroupEvent {
            change,
            group,
            user,
            ..
        } => Frame::GroupEvent {
            change,
            group,
            user,
        },
        Event::CaughtUp { last_id } => Frame::CaughtUp { last_id },
        Event::LoginOk2 {
            reference,
            user,
            device,
            token,
            bookmark,
        } => Frame::LoginOk2 {
            reference,
            user,
            device,
            token,
            bookmark,
        },
        Event::ReadMarker { target, id } => Frame::ReadMarker { target, id },
        Event::Deleted { id, by } => Frame::Deleted { id, by },
        Event::Missed {
            target,
            first,
            last,
            count,
        } => Frame::Missed {
            target,
            first,
            last,
            count,
        },
        _ => return None,
    })
}
