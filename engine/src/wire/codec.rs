//! The byte encoding of [`Frame`]s (docs/PROTOCOL.md, "Framing").
//!
//! A frame is a 4-byte big-endian length, then that many bytes: one type
//! byte and the fields. The header is parsed in nom's streaming mode, where
//! running out of bytes means "need more"; the length is checked against the
//! limit *before* any of the body is looked at; then the body is parsed in
//! complete mode from exactly `length` bytes, where running out means the
//! frame is malformed. [`Frame::encode`] is the exact inverse of [`decode`].

use std::cell::RefCell;
use std::sync::Arc;

use nom::bytes::complete::take;
use nom::number::complete::{be_u16, be_u32, be_u64, be_u8};
use nom::Parser;

use crate::device::{ClientId, Token};
use crate::frame::{
    kind, kind_name, Credential, DeviceInfo, ErrorCode, Frame, GroupAction, GroupChange, GroupInfo,
    HistoryEntry, ModAction, Presence, Resume, ServerInfo, Target, Text,
};
use crate::id::{MessageId, Ref, RosterVersion};
use crate::name::{Name, NameError};

/// Bytes in the length prefix.
pub const HEADER_LEN: usize = 4;

/// Why a frame could not be decoded. Every variant but [`DecodeError::UnknownType`]
/// leaves the stream without a trustworthy frame boundary, so the session
/// answers with an error frame and closes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The length field is larger than the limit in force.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The announced length.
        len: u32,
        /// The limit.
        max: u32,
    },
    /// The length field is zero: there is no type byte.
    #[error("frame of length 0 has no type byte")]
    Empty,
    /// The type byte is not one this version knows. The frame, whose length
    /// is known, can be skipped.
    #[error("unknown frame type 0x{kind:02x}")]
    UnknownType {
        /// The type byte.
        kind: u8,
        /// Bytes to skip, header included.
        frame_len: usize,
    },
    /// The fields need more bytes than the length gave.
    #[error("{frame} frame is truncated")]
    Truncated {
        /// The frame's name.
        frame: &'static str,
    },
    /// Bytes were left after the last field.
    #[error("{frame} frame has {extra} bytes after its last field")]
    TrailingBytes {
        /// The frame's name.
        frame: &'static str,
        /// How many.
        extra: usize,
    },
    /// A text field is not UTF-8.
    #[error("{frame} frame has a text field that is not UTF-8")]
    InvalidUtf8 {
        /// The frame's name.
        frame: &'static str,
    },
    /// A name field breaks the name rules.
    #[error("{frame} frame has an invalid name: {error}")]
    InvalidName {
        /// The frame's name.
        frame: &'static str,
        /// What is wrong with it.
        error: NameError,
    },
    /// A byte that selects between alternatives (target kind, flag, presence) is out of range.
    #[error("{frame} frame has {value} where {field} allows fewer values")]
    InvalidValue {
        /// The frame's name.
        frame: &'static str,
        /// Which field.
        field: &'static str,
        /// What it held.
        value: u8,
    },
}

impl DecodeError {
    /// The error code the server answers this decode error with.
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::TooLarge { .. } => ErrorCode::FrameTooLarge,
            DecodeError::UnknownType { .. } => ErrorCode::UnknownFrameType,
            _ => ErrorCode::MalformedFrame,
        }
    }
}

/// A field-level failure inside a frame body, before the frame's name is attached.
#[derive(Debug)]
enum FieldError {
    Truncated,
    Utf8,
    Name(NameError),
    Value { field: &'static str, value: u8 },
}

impl<I> nom::error::ParseError<I> for FieldError {
    fn from_error_kind(_: I, _: nom::error::ErrorKind) -> FieldError {
        FieldError::Truncated
    }
    fn append(_: I, _: nom::error::ErrorKind, other: FieldError) -> FieldError {
        other
    }
}

type FieldResult<'a, T> = nom::IResult<&'a [u8], T, FieldError>;

fn fail<T>(e: FieldError) -> Result<T, nom::Err<FieldError>> {
    Err(nom::Err::Failure(e))
}

/// Decodes one frame from the front of `input`.
///
/// Returns `Ok(None)` when `input` holds only part of a frame (nothing is
/// consumed; call again with more bytes), or the frame and the number of
/// bytes it took. `max_frame` is checked against the length field before the
/// body is read, so an oversized frame is refused from its first 4 bytes.
pub fn decode(input: &[u8], max_frame: u32) -> Result<Option<(Frame<'_>, usize)>, DecodeError> {
    let len = match header(input) {
        Ok((_, len)) => len,
        Err(_) => return Ok(None),
    };
    if len > max_frame {
        return Err(DecodeError::TooLarge {
            len,
            max: max_frame,
        });
    }
    if len == 0 {
        return Err(DecodeError::Empty);
    }
    let total = HEADER_LEN + len as usize;
    if input.len() < total {
        return Ok(None);
    }
    let body = &input[HEADER_LEN..total];
    let k = body[0];
    let name = kind_name(k);
    let (rest, frame) = match fields(k, &body[1..]) {
        Ok(v) => v,
        Err(nom::Err::Incomplete(_)) => return Err(DecodeError::Truncated { frame: name }),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => {
            return Err(match e {
                FieldError::Truncated => DecodeError::Truncated { frame: name },
                FieldError::Utf8 => DecodeError::InvalidUtf8 { frame: name },
                FieldError::Name(error) => DecodeError::InvalidName { frame: name, error },
                FieldError::Value { field, value } => DecodeError::InvalidValue {
                    frame: name,
                    field,
                    value,
                },
            })
        }
    };
    let frame = match frame {
        Some(f) => f,
        None => {
            return Err(DecodeError::UnknownType {
                kind: k,
                frame_len: total,
            })
        }
    };
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes {
            frame: name,
            extra: rest.len(),
        });
    }
    Ok(Some((frame, total)))
}

/// The length field, in streaming mode: fewer than 4 bytes is `Incomplete`.
fn header(input: &[u8]) -> nom::IResult<&[u8], u32> {
    nom::number::streaming::be_u32(input)
}

/// How many bytes the frame at the front of `input` will take in total, once
/// its header is there; lets a reader size its buffer.
pub fn frame_len(input: &[u8]) -> Option<usize> {
    header(input).ok().map(|(_, len)| HEADER_LEN + len as usize)
}

fn ref_id(i: &[u8]) -> FieldResult<'_, Ref> {
    be_u32.map(Ref).parse(i)
}

fn message_id(i: &[u8]) -> FieldResult<'_, MessageId> {
    be_u64.map(MessageId).parse(i)
}

fn roster_version(i: &[u8]) -> FieldResult<'_, RosterVersion> {
    be_u64.map(RosterVersion).parse(i)
}

fn text(i: &[u8]) -> FieldResult<'_, Text<'_>> {
    let (i, len) = be_u16(i)?;
    let (i, b) = take(len as usize).parse(i)?;
    match std::str::from_utf8(b) {
        // Cannot fail: the length came from a u16.
        Ok(s) => Ok((
            i,
            Text::new(s).map_err(|_| nom::Err::Failure(FieldError::Truncated))?,
        )),
        Err(_) => fail(FieldError::Utf8),
    }
}

/// A text carried with a one-byte length (client names, passwords).
fn short_text(i: &[u8]) -> FieldResult<'_, Text<'_>> {
    let (i, len) = be_u8(i)?;
    let (i, b) = take(len as usize).parse(i)?;
    match std::str::from_utf8(b) {
        Ok(s) => Ok((
            i,
            Text::new(s).map_err(|_| nom::Err::Failure(FieldError::Truncated))?,
        )),
        Err(_) => fail(FieldError::Utf8),
    }
}

/// Bytes carried with a one-byte length (a token).
fn short_bytes(i: &[u8]) -> FieldResult<'_, &[u8]> {
    let (i, len) = be_u8(i)?;
    take(len as usize).parse(i)
}

/// A name, or (a zero length byte) none.
fn opt_name(i: &[u8]) -> FieldResult<'_, Option<Name>> {
    if i.first() == Some(&0) {
        return Ok((&i[1..], None));
    }
    name(i).map(|(i, n)| (i, Some(n)))
}

/// A field combination the frame forbids (docs/PROTOCOL.md says which).
fn forbid<T>(field: &'static str, value: u8) -> Result<T, nom::Err<FieldError>> {
    fail(FieldError::Value { field, value })
}

fn name(i: &[u8]) -> FieldResult<'_, Name> {
    let (i, len) = be_u8(i)?;
    let (i, b) = take(len as usize).parse(i)?;
    match Name::from_bytes(b) {
        Ok(n) => Ok((i, n)),
        Err(e) => fail(FieldError::Name(e)),
    }
}

fn flag<'a>(field: &'static str) -> impl Fn(&'a [u8]) -> FieldResult<'a, bool> {
    move |i| {
        let (i, v) = be_u8(i)?;
        match v {
            0 => Ok((i, false)),
            1 => Ok((i, true)),
            value => fail(FieldError::Value { field, value }),
        }
    }
}

fn target(i: &[u8]) -> FieldResult<'_, Target> {
    let (i, k) = be_u8(i)?;
    match k {
        Target::ROOM => {
            let (i, len) = be_u8(i)?;
            if len != 0 {
                return fail(FieldError::Value {
                    field: "room target name length",
                    value: len,
                });
            }
            Ok((i, Target::Room))
        }
        Target::GROUP => name(i).map(|(i, n)| (i, Target::Group(n))),
        Target::USER => name(i).map(|(i, n)| (i, Target::User(n))),
        value => fail(FieldError::Value {
            field: "target kind",
            value,
        }),
    }
}

fn server_info(i: &[u8]) -> FieldResult<'_, ServerInfo> {
    let (i, registration_open) = flag("registration flag")(i)?;
    let (i, max_frame) = be_u32(i)?;
    let (i, max_frame_pre_auth) = be_u32(i)?;
    let (i, max_body) = be_u16(i)?;
    let (i, msg_rate) = be_u16(i)?;
    let (i, msg_burst) = be_u16(i)?;
    let (i, groups_per_user) = be_u16(i)?;
    let (i, history_page_max) = be_u16(i)?;
    let (i, idle_timeout_ms) = be_u32(i)?;
    Ok((
        i,
        ServerInfo {
            registration_open,
            max_frame,
            max_frame_pre_auth,
            max_body,
            msg_rate,
            msg_burst,
            groups_per_user,
            history_page_max,
            idle_timeout_ms,
        },
    ))
}

fn counted<'a, T>(
    i: &'a [u8],
    mut item: impl FnMut(&'a [u8]) -> FieldResult<'a, T>,
) -> FieldResult<'a, Vec<T>> {
    let (mut i, n) = be_u16(i)?;
    // Each item takes at least one byte, so a count larger than what is left
    // is a lie: refuse it before reserving memory for it.
    if n as usize > i.len() {
        return fail(FieldError::Truncated);
    }
    let mut v = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let (rest, x) = item(i)?;
        v.push(x);
        i = rest;
    }
    Ok((i, v))
}

/// The fields of a frame of type `k`; `None` for an unknown type.
fn fields(k: u8, i: &[u8]) -> FieldResult<'_, Option<Frame<'_>>> {
    let (i, f) = match k {
        kind::PING => {
            let (i, token) = be_u64(i)?;
            (i, Frame::Ping { token })
        }
        kind::PONG => {
            let (i, token) = be_u64(i)?;
            (i, Frame::Pong { token })
        }
        kind::HELLO => {
            let (i, version) = be_u16(i)?;
            let (i, client) = short_text(i)?;
            (i, Frame::Hello { version, client })
        }
        kind::REGISTER => {
            let (i, reference) = ref_id(i)?;
            let (i, user) = name(i)?;
            let (i, password) = short_text(i)?;
            (
                i,
                Frame::Register {
                    reference,
                    user,
                    password,
                },
            )
        }
        kind::LOGIN => {
            let (i, reference) = ref_id(i)?;
            let (i, user) = name(i)?;
            let (i, password) = short_text(i)?;
            let (i, resume_after) = message_id(i)?;
            let (i, roster) = flag("roster flag")(i)?;
            (
                i,
                Frame::Login {
                    reference,
                    user,
                    password,
                    resume_after,
                    roster,
                },
            )
        }
        kind::LOGOUT => {
            let (i, reference) = ref_id(i)?;
            (i, Frame::Logout { reference })
        }
        kind::ROSTER_ACK => {
            let (i, version) = roster_version(i)?;
            (i, Frame::RosterAck { version })
        }
        kind::GROUP_CREATE | kind::GROUP_JOIN | kind::GROUP_LEAVE => {
            let (i, reference) = ref_id(i)?;
            let (i, group) = name(i)?;
            let f = match k {
                kind::GROUP_CREATE => Frame::GroupCreate { reference, group },
                kind::GROUP_JOIN => Frame::GroupJoin { reference, group },
                _ => Frame::GroupLeave { reference, group },
            };
            (i, f)
        }
        kind::GROUP_LIST_REQUEST => {
            let (i, reference) = ref_id(i)?;
            (i, Frame::GroupListRequest { reference })
        }
        kind::SEND => {
            let (i, reference) = ref_id(i)?;
            let (i, target) = target(i)?;
            let (i, body) = text(i)?;
            (
                i,
                Frame::Send {
                    reference,
                    target,
                    body,
                },
            )
        }
        kind::HISTORY_REQUEST => {
            let (i, reference) = ref_id(i)?;
            let (i, target) = target(i)?;
            let (i, before) = message_id(i)?;
            let (i, limit) = be_u16(i)?;
            (
                i,
                Frame::HistoryRequest {
                    reference,
                    target,
                    before,
                    limit,
                },
            )
        }
        kind::SERVER_HELLO => {
            let (i, version) = be_u16(i)?;
            let (i, server) = short_text(i)?;
            let (i, info) = server_info(i)?;
            (
                i,
                Frame::ServerHello {
                    version,
                    server,
                    info,
                },
            )
        }
        kind::OK => {
            let (i, reference) = ref_id(i)?;
            (i, Frame::Ok { reference })
        }
        kind::LOGIN_OK => {
            let (i, reference) = ref_id(i)?;
            let (i, user) = name(i)?;
            (i, Frame::LoginOk { reference, user })
        }
        kind::ROSTER_SNAPSHOT => {
            let (i, version) = roster_version(i)?;
            let (i, last) = flag("last flag")(i)?;
            let (i, users) = counted(i, name)?;
            (
                i,
                Frame::RosterSnapshot {
                    version,
                    last,
                    users,
                },
            )
        }
        kind::ROSTER_DELTA => {
            let (i, version) = roster_version(i)?;
            let (i, p) = be_u8(i)?;
            let presence = match p {
                0 => Presence::Offline,
                1 => Presence::Online,
                value => {
                    return fail(FieldError::Value {
                        field: "presence",
                        value,
                    })
                }
            };
            let (i, user) = name(i)?;
            (
                i,
                Frame::RosterDelta {
                    version,
                    presence,
                    user,
                },
            )
        }
        kind::ACK => {
            let (i, reference) = ref_id(i)?;
            let (i, id) = message_id(i)?;
            let (i, timestamp_ms) = be_u64(i)?;
            (
                i,
                Frame::Ack {
                    reference,
                    id,
                    timestamp_ms,
                },
            )
        }
        kind::MESSAGE => {
            let (i, id) = message_id(i)?;
            let (i, timestamp_ms) = be_u64(i)?;
            let (i, sender) = name(i)?;
            let (i, target) = target(i)?;
            let (i, body) = text(i)?;
            (
                i,
                Frame::Message {
                    id,
                    timestamp_ms,
                    sender,
                    target,
                    body,
                },
            )
        }
        kind::GROUP_EVENT => {
            let (i, c) = be_u8(i)?;
            let change = match c {
                0 => GroupChange::Left,
                1 => GroupChange::Joined,
                value => {
                    return fail(FieldError::Value {
                        field: "group change",
                        value,
                    })
                }
            };
            let (i, group) = name(i)?;
            let (i, user) = name(i)?;
            (
                i,
                Frame::GroupEvent {
                    change,
                    group,
                    user,
                },
            )
        }
        kind::GROUP_LIST => {
            let (i, reference) = ref_id(i)?;
            let (i, groups) = counted(i, |i| {
                let (i, name) = name(i)?;
                let (i, members) = be_u32(i)?;
                let (i, is_member) = flag("member flag")(i)?;
                Ok((
                    i,
                    GroupInfo {
                        name,
                        members,
                        is_member,
                    },
                ))
            })?;
            (i, Frame::GroupList { reference, groups })
        }
        kind::HISTORY_PAGE => {
            let (i, reference) = ref_id(i)?;
            let (i, target) = target(i)?;
            let (i, more) = flag("more flag")(i)?;
            let (i, entries) = counted(i, |i| {
                let (i, id) = message_id(i)?;
                let (i, timestamp_ms) = be_u64(i)?;
                let (i, sender) = name(i)?;
                let (i, body) = text(i)?;
                Ok((
                    i,
                    HistoryEntry {
                        id,
                        timestamp_ms,
                        sender,
                        body,
                    },
                ))
            })?;
            (
                i,
                Frame::HistoryPage {
                    reference,
                    target,
                    more,
                    entries,
                },
            )
        }
        kind::CAUGHT_UP => {
            let (i, last_id) = message_id(i)?;
            (i, Frame::CaughtUp { last_id })
        }
        kind::MISSED => {
            let (i, target) = target(i)?;
            let (i, first) = message_id(i)?;
            let (i, last) = message_id(i)?;
            let (i, count) = be_u32(i)?;
            (
                i,
                Frame::Missed {
                    target,
                    first,
                    last,
                    count,
                },
            )
        }
        kind::ERROR => {
            let (i, code) = be_u16(i)?;
            let (i, reference) = ref_id(i)?;
            let (i, retry_after_ms) = be_u32(i)?;
            let (i, text) = text(i)?;
            (
                i,
                Frame::Error {
                    code: ErrorCode::from_u16(code),
                    reference,
                    retry_after_ms,
                    text,
                },
            )
        }
        kind::SHUTDOWN => {
            let (i, retry_after_ms) = be_u32(i)?;
            let (i, reason) = text(i)?;
            (
                i,
                Frame::Shutdown {
                    retry_after_ms,
                    reason,
                },
            )
        }
        _ => return fields_v2(k, i),
    };
    Ok((i, Some(f)))
}

/// The fields of the frames protocol version 2 added.
fn fields_v2(k: u8, i: &[u8]) -> FieldResult<'_, Option<Frame<'_>>> {
    let (i, f) = match k {
        kind::LOGIN2 => login2(i)?,
        kind::SEND2 => {
            let (i, reference) = ref_id(i)?;
            let (i, client_id) = be_u64(i)?;
            if client_id == 0 {
                return forbid("client_id (must not be 0)", 0);
            }
            let (i, target) = target(i)?;
            let (i, body) = text(i)?;
            let client_id = ClientId(client_id);
            (
                i,
                Frame::Send2 {
                    reference,
                    client_id,
                    target,
                    body,
                },
            )
        }
        kind::DELIVERED => {
            let (i, id) = message_id(i)?;
            (i, Frame::Delivered { id })
        }
        kind::MARK_READ | kind::READ_MARKER => {
            let (i, target) = target(i)?;
            let (i, id) = message_id(i)?;
            let f = match k {
                kind::MARK_READ => Frame::MarkRead { target, id },
                _ => Frame::ReadMarker { target, id },
            };
            (i, f)
        }
        kind::DEVICE_LIST_REQUEST => {
            let (i, reference) = ref_id(i)?;
            (i, Frame::DeviceListRequest { reference })
        }
        kind::DEVICE_REVOKE => {
            let (i, reference) = ref_id(i)?;
            let (i, device) = name(i)?;
            (i, Frame::DeviceRevoke { reference, device })
        }
        kind::MODERATE => {
            let (i, reference) = ref_id(i)?;
            let (i, byte) = be_u8(i)?;
            let Some(action) = ModAction::from_u8(byte) else {
                return fail(FieldError::Value {
                    field: "action",
                    value: byte,
                });
            };
            let (i, user) = name(i)?;
            let (i, seconds) = be_u32(i)?;
            let (i, reason) = text(i)?;
            (
                i,
                Frame::Moderate {
                    reference,
                    action,
                    user,
                    seconds,
                    reason,
                },
            )
        }
        kind::BAN_ADDRESS => {
            let (i, reference) = ref_id(i)?;
            let (i, byte) = be_u8(i)?;
            let lift = match byte {
                0 => false,
                1 => true,
                _ => {
                    return fail(FieldError::Value {
                        field: "action",
                        value: byte,
                    })
                }
            };
            let (i, block) = text(i)?;
            let (i, seconds) = be_u32(i)?;
            let (i, reason) = text(i)?;
            (
                i,
                Frame::BanAddress {
                    reference,
                    lift,
                    block,
                    seconds,
                    reason,
                },
            )
        }
        kind::LOGIN_OK2 => {
            let (i, reference) = ref_id(i)?;
            let (i, user) = name(i)?;
            let (i, device) = opt_name(i)?;
            let (i, token) = short_bytes(i)?;
            let token = match token.len() {
                0 => None,
                _ => match Token::from_slice(token) {
                    Some(t) => Some(t),
                    None => return forbid("token length (0 or 32)", token.len() as u8),
                },
            };
            let (i, bookmark) = message_id(i)?;
            (
                i,
                Frame::LoginOk2 {
                    reference,
                    user,
                    device,
                    token,
                    bookmark,
                },
            )
        }
        kind::DEVICE_LIST => {
            let (i, reference) = ref_id(i)?;
            let (i, devices) = counted(i, |i| {
                let (i, name) = name(i)?;
                let (i, created_ms) = be_u64(i)?;
                let (i, last_seen_ms) = be_u64(i)?;
                let (i, current) = flag("current flag")(i)?;
                Ok((
                    i,
                    DeviceInfo {
                        name,
                        created_ms,
                        last_seen_ms,
                        current,
                    },
                ))
            })?;
            (i, Frame::DeviceList { reference, devices })
        }
        kind::DELETE => {
            let (i, reference) = ref_id(i)?;
            let (i, id) = message_id(i)?;
            let (i, reason) = text(i)?;
            (
                i,
                Frame::Delete {
                    reference,
                    id,
                    reason,
                },
            )
        }
        kind::GROUP_MODERATE => {
            let (i, reference) = ref_id(i)?;
            let (i, group) = name(i)?;
            let (i, byte) = be_u8(i)?;
            let Some(action) = GroupAction::from_u8(byte) else {
                return fail(FieldError::Value {
                    field: "action",
                    value: byte,
                });
            };
            let (i, user) = name(i)?;
            let (i, seconds) = be_u32(i)?;
            let (i, reason) = text(i)?;
            (
                i,
                Frame::GroupModerate {
                    reference,
                    group,
                    action,
                    user,
                    seconds,
                    reason,
                },
            )
        }
        kind::ANNOUNCE => {
            let (i, reference) = ref_id(i)?;
            let (i, text) = text(i)?;
            (i, Frame::Announce { reference, text })
        }
        kind::DELETED => {
            let (i, id) = message_id(i)?;
            let (i, by) = name(i)?;
            (i, Frame::Deleted { id, by })
        }
        kind::NOTICE => {
            let (i, text) = text(i)?;
            (i, Frame::Notice { text })
        }
        _ => return Ok((i, None)),
    };
    Ok((i, Some(f)))
}

/// LOGIN2's fields, and the combinations docs/PROTOCOL.md forbids: a token
/// names its device (no device, no new token); a new token needs a device;
/// resuming at the device's bookmark needs a device and no id.
fn login2(i: &[u8]) -> FieldResult<'_, Frame<'_>> {
    let (i, reference) = ref_id(i)?;
    let (i, user) = name(i)?;
    let (i, kind) = be_u8(i)?;
    let (i, secret) = short_bytes(i)?;
    let credential = match kind {
        Credential::PASSWORD => match std::str::from_utf8(secret) {
            Ok(p) => Credential::Password(Text::truncated(p)),
            Err(_) => return fail(FieldError::Utf8),
        },
        Credential::TOKEN => Credential::Token(secret),
        value => return forbid("credential kind", value),
    };
    let (i, device) = opt_name(i)?;
    let (i, issue_token) = flag("issue_token flag")(i)?;
    let (i, resume_kind) = be_u8(i)?;
    let (i, resume_after) = message_id(i)?;
    let (i, roster) = flag("roster flag")(i)?;
    let token = matches!(credential, Credential::Token(_));
    if token && device.is_some() {
        return forbid("device (a token names its device)", 1);
    }
    if issue_token && (token || device.is_none()) {
        return forbid("issue_token (needs a password and a device)", 1);
    }
    let resume = match resume_kind {
        0 => Resume::After(resume_after),
        1 if resume_after.get() != 0 => return forbid("resume_after (must be 0 with resume 1)", 1),
        1 if !token && device.is_none() => return forbid("resume (1 needs a device)", 1),
        1 => Resume::Device,
        value => return forbid("resume", value),
    };
    Ok((
        i,
        Frame::Login2 {
            reference,
            user,
            credential,
            device,
            issue_token,
            resume,
            roster,
        },
    ))
}

/// Where a [`Writer`] puts bytes: a buffer, or a count of them, so that
/// [`Frame::encoded_len`] is the same code as [`Frame::encode`] and cannot
/// disagree with it.
trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Counts the bytes it is given.
struct Count(usize);

impl Sink for Count {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

/// Encodes field by field into a caller-owned sink.
struct Writer<'o, S: Sink>(&'o mut S);

impl<S: Sink> Writer<'_, S> {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.put(&[v]);
        self
    }
    fn u16(&mut self, v: u16) -> &mut Self {
        self.0.put(&v.to_be_bytes());
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.put(&v.to_be_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.put(&v.to_be_bytes());
        self
    }
    fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(v as u8)
    }
    fn text(&mut self, t: Text<'_>) -> &mut Self {
        // `Text` is at most u16::MAX bytes by construction.
        self.u16(t.as_str().len() as u16);
        self.0.put(t.as_str().as_bytes());
        self
    }
    /// One-byte length: longer texts are cut at a character boundary, which
    /// the parser's inverse property relies on never happening for valid
    /// frames (client names and passwords are limited to 255 bytes by the spec).
    fn short_text(&mut self, t: Text<'_>) -> &mut Self {
        let s = t.as_str();
        let mut end = s.len().min(255);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.u8(end as u8);
        self.0.put(&s.as_bytes()[..end]);
        self
    }
    fn short_bytes(&mut self, b: &[u8]) -> &mut Self {
        let b = &b[..b.len().min(255)];
        self.u8(b.len() as u8);
        self.0.put(b);
        self
    }
    fn opt_name(&mut self, n: &Option<Name>) -> &mut Self {
        match n {
            Some(n) => self.name(n),
            None => self.u8(0),
        }
    }
    fn name(&mut self, n: &Name) -> &mut Self {
        self.u8(n.as_str().len() as u8);
        self.0.put(n.as_str().as_bytes());
        self
    }
    fn target(&mut self, t: &Target) -> &mut Self {
        match t {
            Target::Room => self.u8(Target::ROOM).u8(0),
            Target::Group(n) => self.u8(Target::GROUP).name(n),
            Target::User(n) => self.u8(Target::USER).name(n),
        }
    }
    fn count(&mut self, n: usize) -> &mut Self {
        debug_assert!(
            n <= u16::MAX as usize,
            "lists are chunked below 65536 entries"
        );
        self.u16(n as u16)
    }
}

impl Frame<'_> {
    /// Appends the frame, length prefix included, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; HEADER_LEN]);
        self.fields(&mut Writer(out));
        let len = (out.len() - start - HEADER_LEN) as u32;
        out[start..start + HEADER_LEN].copy_from_slice(&len.to_be_bytes());
    }

    /// The bytes [`Frame::encode`] appends, length prefix included,
    /// counted without encoding.
    pub fn encoded_len(&self) -> usize {
        let mut count = Count(HEADER_LEN);
        self.fields(&mut Writer(&mut count));
        count.0
    }

    /// The type byte and the fields.
    fn fields<S: Sink>(&self, w: &mut Writer<'_, S>) {
        w.u8(self.kind());
        match self {
            Frame::Ping { token } | Frame::Pong { token } => {
                w.u64(*token);
            }
            Frame::Hello { version, client } => {
                w.u16(*version).short_text(*client);
            }
            Frame::Register {
                reference,
                user,
                password,
            } => {
                w.u32(reference.0).name(user).short_text(*password);
            }
            Frame::Login {
                reference,
                user,
                password,
                resume_after,
                roster,
            } => {
                w.u32(reference.0)
                    .name(user)
                    .short_text(*password)
                    .u64(resume_after.0)
                    .bool(*roster);
            }
            Frame::Logout { reference }
            | Frame::GroupListRequest { reference }
            | Frame::Ok { reference } => {
                w.u32(reference.0);
            }
            Frame::RosterAck { version } => {
                w.u64(version.0);
            }
            Frame::GroupCreate { reference, group }
            | Frame::GroupJoin { reference, group }
            | Frame::GroupLeave { reference, group } => {
                w.u32(reference.0).name(group);
            }
            Frame::Send {
                reference,
                target,
                body,
            } => {
                w.u32(reference.0).target(target).text(*body);
            }
            Frame::HistoryRequest {
                reference,
                target,
                before,
                limit,
            } => {
                w.u32(reference.0).target(target).u64(before.0).u16(*limit);
            }
            Frame::ServerHello {
                version,
                server,
                info,
            } => {
                w.u16(*version)
                    .short_text(*server)
                    .bool(info.registration_open)
                    .u32(info.max_frame)
                    .u32(info.max_frame_pre_auth)
                    .u16(info.max_body)
                    .u16(info.msg_rate)
                    .u16(info.msg_burst)
                    .u16(info.groups_per_user)
                    .u16(info.history_page_max)
                    .u32(info.idle_timeout_ms);
            }
            Frame::LoginOk { reference, user } => {
                w.u32(reference.0).name(user);
            }
            Frame::RosterSnapshot {
                version,
                last,
                users,
            } => {
                w.u64(version.0).bool(*last).count(users.len());
                for u in users {
                    w.name(u);
                }
            }
            Frame::RosterDelta {
                version,
                presence,
                user,
            } => {
                w.u64(version.0).u8(*presence as u8).name(user);
            }
            Frame::Ack {
                reference,
                id,
                timestamp_ms,
            } => {
                w.u32(reference.0).u64(id.0).u64(*timestamp_ms);
            }
            Frame::Message {
                id,
                timestamp_ms,
                sender,
                target,
                body,
            } => {
                w.u64(id.0)
                    .u64(*timestamp_ms)
                    .name(sender)
                    .target(target)
                    .text(*body);
            }
            Frame::GroupEvent {
                change,
                group,
                user,
            } => {
                w.u8(*change as u8).name(group).name(user);
            }
            Frame::GroupList { reference, groups } => {
                w.u32(reference.0).count(groups.len());
                for g in groups {
                    w.name(&g.name).u32(g.members).bool(g.is_member);
                }
            }
            Frame::HistoryPage {
                reference,
                target,
                more,
                entries,
            } => {
                w.u32(reference.0)
                    .target(target)
                    .bool(*more)
                    .count(entries.len());
                for e in entries {
                    e.write(w);
                }
            }
            Frame::CaughtUp { last_id } => {
                w.u64(last_id.0);
            }
            Frame::Missed {
                target,
                first,
                last,
                count,
            } => {
                w.target(target).u64(first.0).u64(last.0).u32(*count);
            }
            Frame::Error {
                code,
                reference,
                retry_after_ms,
                text,
            } => {
                w.u16(code.to_u16())
                    .u32(reference.0)
                    .u32(*retry_after_ms)
                    .text(*text);
            }
            Frame::Shutdown {
                retry_after_ms,
                reason,
            } => {
                w.u32(*retry_after_ms).text(*reason);
            }
            v2 => v2.fields_v2(w),
        }
    }

    /// The fields of the frames protocol version 2 added.
    fn fields_v2<S: Sink>(&self, w: &mut Writer<'_, S>) {
        match self {
            Frame::Login2 {
                reference,
                user,
                credential,
                device,
                issue_token,
                resume,
                roster,
            } => {
                w.u32(reference.0).name(user);
                match credential {
                    Credential::Password(p) => {
                        w.u8(Credential::PASSWORD).short_text(*p);
                    }
                    Credential::Token(t) => {
                        w.u8(Credential::TOKEN).short_bytes(t);
                    }
                }
                let (resume_kind, after) = match resume {
                    Resume::After(id) => (0, *id),
                    Resume::Device => (1, MessageId(0)),
                };
                w.opt_name(device)
                    .bool(*issue_token)
                    .u8(resume_kind)
                    .u64(after.0)
                    .bool(*roster);
            }
            Frame::Send2 {
                reference,
                client_id,
                target,
                body,
            } => {
                w.u32(reference.0)
                    .u64(client_id.0)
                    .target(target)
                    .text(*body);
            }
            Frame::Delivered { id } => {
                w.u64(id.0);
            }
            Frame::MarkRead { target, id } | Frame::ReadMarker { target, id } => {
                w.target(target).u64(id.0);
            }
            Frame::DeviceListRequest { reference } => {
                w.u32(reference.0);
            }
            Frame::DeviceRevoke { reference, device } => {
                w.u32(reference.0).name(device);
            }
            Frame::Moderate {
                reference,
                action,
                user,
                seconds,
                reason,
            } => {
                w.u32(reference.0)
                    .u8(action.to_u8())
                    .name(user)
                    .u32(*seconds)
                    .text(*reason);
            }
            Frame::LoginOk2 {
                reference,
                user,
                device,
                token,
                bookmark,
            } => {
                w.u32(reference.0).name(user).opt_name(device);
                match token {
                    Some(t) => w.short_bytes(&t.0),
                    None => w.u8(0),
                };
                w.u64(bookmark.0);
            }
            Frame::DeviceList { reference, devices } => {
                w.u32(reference.0).count(devices.len());
                for d in devices {
                    w.name(&d.name)
                        .u64(d.created_ms)
                        .u64(d.last_seen_ms)
                        .bool(d.current);
                }
            }
            Frame::Delete {
                reference,
                id,
                reason,
            } => {
                w.u32(reference.0).u64(id.0).text(*reason);
            }
            Frame::Announce { reference, text } => {
                w.u32(reference.0).text(*text);
            }
            Frame::GroupModerate {
                reference,
                group,
                action,
                user,
                seconds,
                reason,
            } => {
                w.u32(reference.0)
                    .name(group)
                    .u8(action.to_u8())
                    .name(user)
                    .u32(*seconds)
                    .text(*reason);
            }
            Frame::BanAddress {
                reference,
                lift,
                block,
                seconds,
                reason,
            } => {
                w.u32(reference.0)
                    .u8(u8::from(*lift))
                    .text(*block)
                    .u32(*seconds)
                    .text(*reason);
            }
            Frame::Deleted { id, by } => {
                w.u64(id.0).name(by);
            }
            Frame::Notice { text } => {
                w.text(*text);
            }
            _ => unreachable!("Frame::fields writes every version 1 frame"),
        }
    }

    /// The encoded frame in a fresh buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }

    /// The encoded frame in a shared buffer of exactly its length, as the
    /// hub queues frames. Encoded into a per-thread scratch vector first,
    /// so a frame costs one allocation (encoding into a fresh vector grew
    /// it several times, then `Arc::from` copied it once more).
    pub fn to_shared(&self) -> Arc<[u8]> {
        thread_local! {
            static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        }
        SCRATCH.with_borrow_mut(|scratch| {
            scratch.clear();
            self.encode(scratch);
            let shared = Arc::from(&scratch[..]);
            // A large frame (a history page) does not pin its buffer.
            if scratch.capacity() > SCRATCH_KEEP {
                *scratch = Vec::new();
            }
            shared
        })
    }
}

/// Scratch capacity [`Frame::to_shared`] keeps between frames.
const SCRATCH_KEEP: usize = 16 * 1024;

impl HistoryEntry<'_> {
    fn write<S: Sink>(&self, w: &mut Writer<'_, S>) {
        w.u64(self.id.0)
            .u64(self.timestamp_ms)
            .name(&self.sender)
            .text(self.body);
    }

    /// The bytes this entry adds to a HISTORY_PAGE frame.
    pub fn encoded_len(&self) -> usize {
        let mut count = Count(0);
        self.write(&mut Writer(&mut count));
        count.0
    }
}
