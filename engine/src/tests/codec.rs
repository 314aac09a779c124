//! Codec properties: encode and decode are inverses for every frame type,
//! arbitrary bytes never panic the parser, a stream split anywhere parses
//! to the same frames, and each kind of malformation has its own error.

use proptest::prelude::*;

use crate::codec::{decode, DecodeError};
use crate::frame::*;
use crate::id::{MessageId, Ref, RosterVersion};
use crate::name::Name;

fn name() -> impl Strategy<Value = Name> {
    "[a-zA-Z0-9][a-zA-Z0-9_.-]{0,31}"
        .prop_map(|s| Name::new(&s).expect("regex matches the name rules"))
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        Just(Target::Room),
        name().prop_map(Target::Group),
        name().prop_map(Target::User),
    ]
}

/// Everything a frame of any type needs; [`build`] picks what its type uses.
#[derive(Debug, Clone)]
struct Parts {
    kind: usize,
    a: u64,
    b: u64,
    r: u32,
    small: u16,
    flag: bool,
    n1: Name,
    n2: Name,
    names: Vec<Name>,
    target: Target,
    text: String,
    short: String,
    texts: Vec<String>,
    code: u16,
}

const KINDS: usize = 27;

fn parts() -> impl Strategy<Value = Parts> {
    (
        (
            0..KINDS,
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
            any::<u16>(),
            any::<bool>(),
        ),
        (
            name(),
            name(),
            prop::collection::vec(name(), 0..20),
            target(),
        ),
        (
            "\\PC{0,200}",
            "\\PC{0,60}",
            prop::collection::vec("\\PC{0,40}", 0..10),
            any::<u16>(),
        ),
    )
        .prop_map(
            |(
                (kind, a, b, r, small, flag),
                (n1, n2, names, target),
                (text, short, texts, code),
            )| Parts {
                kind,
                a,
                b,
                r,
                small,
                flag,
                n1,
                n2,
                names,
                target,
                text,
                short,
                texts,
                code,
            },
        )
}

/// A frame of the kind `p.kind` selects, from `p`'s values: a client's
/// frame for kinds 0 to 12, else a server's.
fn build(p: &Parts) -> Frame<'_> {
    let text = Text::new(&p.text).expect("short enough");
    let short = Text::new(&p.short).expect("short enough");
    match p.kind {
        0 => Frame::Ping { token: p.a },
        1 => Frame::Pong { token: p.a },
        2 => Frame::Hello {
            version: p.small,
            client: short,
        },
        3 => Frame::Register {
            reference: Ref(p.r),
            user: p.n1,
            password: short,
        },
        4 => Frame::Login {
            reference: Ref(p.r),
            user: p.n1,
            password: short,
            resume_after: MessageId(p.a),
            roster: p.flag,
        },
        5 => Frame::Logout {
            reference: Ref(p.r),
        },
        6 => Frame::RosterAck {
            version: RosterVersion(p.a),
        },
        7 => Frame::GroupCreate {
            reference: Ref(p.r),
            group: p.n1,
        },
        8 => Frame::GroupJoin {
            reference: Ref(p.r),
            group: p.n1,
        },
        9 => Frame::GroupLeave {
            reference: Ref(p.r),
            group: p.n1,
        },
        10 => Frame::GroupListRequest {
            reference: Ref(p.r),
        },
        11 => Frame::Send {
            reference: Ref(p.r),
            target: p.target,
            body: text,
        },
        12 => Frame::HistoryRequest {
            reference: Ref(p.r),
            target: p.target,
            before: MessageId(p.a),
            limit: p.small,
        },
        _ => build_server(p),
    }
}

/// A server's frame (kinds 13 and up) from `p`'s values.
fn build_server(p: &Parts) -> Frame<'_> {
    let text = Text::new(&p.text).expect("short enough");
    let short = Text::new(&p.short).expect("short enough");
    match p.kind {
        13 => Frame::ServerHello {
            version: p.small,
            server: short,
            info: ServerInfo {
                registration_open: p.flag,
                max_frame: p.r,
                max_frame_pre_auth: p.r / 2,
                max_body: p.small,
                msg_rate: p.small / 3,
                msg_burst: p.small / 5,
                groups_per_user: p.small / 7,
                history_page_max: p.small / 11,
                idle_timeout_ms: p.r / 3,
            },
        },
        14 => Frame::Ok {
            reference: Ref(p.r),
        },
        15 => Frame::LoginOk {
            reference: Ref(p.r),
            user: p.n1,
        },
        16 => Frame::RosterSnapshot {
            version: RosterVersion(p.a),
            last: p.flag,
            users: p.names.clone(),
        },
        17 => Frame::RosterDelta {
            version: RosterVersion(p.a),
            presence: if p.flag {
                Presence::Online
            } else {
                Presence::Offline
            },
            user: p.n1,
        },
        18 => Frame::Ack {
            reference: Ref(p.r),
            id: MessageId(p.a),
            timestamp_ms: p.b,
        },
        19 => Frame::Message {
            id: MessageId(p.a),
            timestamp_ms: p.b,
            sender: p.n1,
            target: p.target,
            body: text,
        },
        20 => Frame::GroupEvent {
            change: if p.flag {
                GroupChange::Joined
            } else {
                GroupChange::Left
            },
            group: p.n1,
            user: p.n2,
        },
        _ => build_server_lists(p),
    }
}

/// A server's frame of kind 21 and up: lists, reports, errors.
fn build_server_lists(p: &Parts) -> Frame<'_> {
    let text = Text::new(&p.text).expect("short enough");
    match p.kind {
        21 => Frame::GroupList {
            reference: Ref(p.r),
            groups: p
                .names
                .iter()
                .enumerate()
                .map(|(i, n)| GroupInfo {
                    name: *n,
                    members: i as u32 * 7,
                    is_member: i % 2 == 0,
                })
                .collect(),
        },
        22 => Frame::HistoryPage {
            reference: Ref(p.r),
            target: p.target,
            more: p.flag,
            entries: p
                .texts
                .iter()
                .enumerate()
                .map(|(i, t)| HistoryEntry {
                    id: MessageId(p.a.wrapping_add(i as u64)),
                    timestamp_ms: p.b,
                    sender: p.n2,
                    body: Text::new(t).expect("short"),
                })
                .collect(),
        },
        23 => Frame::CaughtUp {
            last_id: MessageId(p.a),
        },
        24 => Frame::Missed {
            target: p.target,
            first: MessageId(p.a),
            last: MessageId(p.b),
            count: p.r,
        },
        25 => Frame::Error {
            code: ErrorCode::from_u16(p.code),
            reference: Ref(p.r),
            retry_after_ms: p.r / 2,
            text,
        },
        _ => Frame::Shutdown {
            retry_after_ms: p.r,
            reason: text,
        },
    }
}

/// Feeds `stream` to a reader in the given chunks, as a socket would.
fn read_in_chunks<'a>(stream: &'a [u8], cuts: &[usize]) -> Vec<Frame<'a>> {
    let mut frames = Vec::new();
    let mut start = 0; // first byte not yet consumed
    let mut avail = 0; // bytes "arrived" so far
    for &cut in cuts.iter().chain(std::iter::once(&stream.len())) {
        avail = avail.max(cut.min(stream.len()));
        while let Some((f, n)) = decode(&stream[start..avail], u32::MAX).expect("valid stream") {
            frames.push(f);
            start += n;
        }
    }
    assert_eq!(start, stream.len(), "everything consumed");
    frames
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decode_is_the_exact_inverse_of_encode_for_every_frame_type(p in parts()) {
        let f = build(&p);
        let bytes = f.to_bytes();
        let (g, used) = decode(&bytes, u32::MAX).expect("valid").expect("complete");
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(&g, &f);
        prop_assert_eq!(g.to_bytes(), bytes.clone());
        // The shared encoding is the same bytes, whatever the scratch
        // buffer held from the frame before.
        prop_assert_eq!(&*f.to_shared(), &bytes[..]);
        // Queue budgets count frames without encoding them.
        prop_assert_eq!(f.encoded_len(), bytes.len());
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_parser(bytes in prop::collection::vec(any::<u8>(), 0..512), max in 0u32..2048) {
        let mut rest = &bytes[..];
        loop {
            match decode(rest, max) {
                Ok(Some((_, n))) => { prop_assert!(n > 0 && n <= rest.len()); rest = &rest[n..]; }
                Ok(None) => break,
                Err(DecodeError::UnknownType { frame_len, .. }) => {
                    prop_assert!(frame_len <= rest.len());
                    rest = &rest[frame_len..];
                }
                Err(_) => break,
            }
        }
    }

    #[test]
    fn a_stream_split_anywhere_parses_to_the_same_frames(ps in prop::collection::vec(parts(), 1..6), seed in any::<u64>()) {
        let frames: Vec<Frame<'_>> = ps.iter().map(build).collect();
        let mut stream = Vec::new();
        for f in &frames { f.encode(&mut stream); }
        // Every single split point, and one random multi-way split.
        for cut in 0..=stream.len() {
            prop_assert_eq!(&read_in_chunks(&stream, &[cut]), &frames);
        }
        let mut cuts: Vec<usize> = (0..8).map(|i| (seed.rotate_left(i * 8) as usize) % (stream.len() + 1)).collect();
        cuts.sort_unstable();
        prop_assert_eq!(&read_in_chunks(&stream, &cuts), &frames);
    }
}

#[track_caller]
fn check_err(bytes: &[u8], max: u32, want: DecodeError) {
    assert_eq!(decode(bytes, max), Err(want));
}

#[test]
fn an_oversized_length_is_refused_from_the_header_alone() {
    check_err(
        &[0, 0, 4, 1],
        1024,
        DecodeError::TooLarge {
            len: 1025,
            max: 1024,
        },
    );
    check_err(
        &[0xff, 0xff, 0xff, 0xff],
        65536,
        DecodeError::TooLarge {
            len: u32::MAX,
            max: 65536,
        },
    );
}

#[test]
fn fewer_than_a_whole_frame_means_need_more_bytes() {
    let bytes = Frame::Ping { token: 1 }.to_bytes();
    for k in 0..bytes.len() {
        assert_eq!(decode(&bytes[..k], 1024), Ok(None), "prefix of {k} bytes");
    }
}

#[test]
fn each_malformation_gets_its_own_error() {
    check_err(&[0, 0, 0, 0], 1024, DecodeError::Empty);
    // PING with 7 of its 8 token bytes.
    check_err(
        &[0, 0, 0, 8, 1, 0, 0, 0, 0, 0, 0, 0],
        1024,
        DecodeError::Truncated { frame: "PING" },
    );
    // PING with one byte too many.
    check_err(
        &[0, 0, 0, 10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 9],
        1024,
        DecodeError::TrailingBytes {
            frame: "PING",
            extra: 1,
        },
    );
    // GROUP_JOIN with the name " x".
    check_err(
        &[0, 0, 0, 8, 0x16, 0, 0, 0, 1, 2, b' ', b'x'],
        1024,
        DecodeError::InvalidName {
            frame: "GROUP_JOIN",
            error: crate::NameError::BadCharacter,
        },
    );
    // HELLO whose client name is not UTF-8.
    check_err(
        &[0, 0, 0, 5, 0x10, 0, 1, 1, 0xff],
        1024,
        DecodeError::InvalidUtf8 { frame: "HELLO" },
    );
    // SEND to target kind 9.
    check_err(
        &[0, 0, 0, 10, 0x19, 0, 0, 0, 1, 9, 0, 0, 1, b'x'],
        1024,
        DecodeError::InvalidValue {
            frame: "SEND",
            field: "target kind",
            value: 9,
        },
    );
    // An unknown type can be skipped: its length is known.
    check_err(
        &[0, 0, 0, 2, 0x7f, 0],
        1024,
        DecodeError::UnknownType {
            kind: 0x7f,
            frame_len: 6,
        },
    );
}

#[test]
fn a_list_count_larger_than_the_frame_is_refused_without_allocating() {
    // ROSTER_SNAPSHOT claiming 65535 names in a 12-byte body.
    let mut b = vec![0, 0, 0, 12, 0x43];
    b.extend_from_slice(&7u64.to_be_bytes());
    b.push(1);
    b.extend_from_slice(&[0xff, 0xff]);
    b[3] = (b.len() - 4) as u8;
    check_err(
        &b,
        1024,
        DecodeError::Truncated {
            frame: "ROSTER_SNAPSHOT",
        },
    );
}
