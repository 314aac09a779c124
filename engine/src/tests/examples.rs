//! Every worked example in docs/PROTOCOL.md decodes to the frame its prose
//! describes and re-encodes byte for byte.

use crate::device::{ClientId, Token};
use crate::frame::*;
use crate::id::{MessageId, Ref, RosterVersion};
use crate::name::Name;

fn n(s: &str) -> Name {
    Name::new(s).expect("test names are valid")
}

fn t(s: &str) -> Text<'_> {
    Text::new(s).expect("short")
}

/// The frame each example describes, by the name in its heading.
fn expected(name: &str) -> Option<Frame<'static>> {
    Some(match name {
        "HELLO" => Frame::Hello {
            version: 1,
            client: t("lua"),
        },
        "LOGIN" => Frame::Login {
            reference: Ref(1),
            user: n("alice"),
            password: t("pw"),
            resume_after: MessageId(0),
            roster: true,
        },
        "LOGIN_OK" => Frame::LoginOk {
            reference: Ref(1),
            user: n("Alice"),
        },
        "ROSTER_SNAPSHOT" => Frame::RosterSnapshot {
            version: RosterVersion(7),
            last: true,
            users: vec![n("alice"), n("bob")],
        },
        "ROSTER_DELTA" => Frame::RosterDelta {
            version: RosterVersion(8),
            presence: Presence::Offline,
            user: n("bob"),
        },
        "SEND" => Frame::Send {
            reference: Ref(2),
            target: Target::Group(n("dev")),
            body: t("hi"),
        },
        "ACK" => Frame::Ack {
            reference: Ref(2),
            id: MessageId(42),
            timestamp_ms: 1_700_000_000_000,
        },
        "MESSAGE" => Frame::Message {
            id: MessageId(42),
            timestamp_ms: 1_700_000_000_000,
            sender: n("alice"),
            target: Target::Room,
            body: t("hi"),
        },
        "ERROR" => Frame::Error {
            code: ErrorCode::NoSuchUser,
            reference: Ref(3),
            retry_after_ms: 0,
            text: t("no user carol"),
        },
        "ERROR RATE_LIMITED" => Frame::Error {
            code: ErrorCode::RateLimited,
            reference: Ref(5),
            retry_after_ms: 60_000,
            text: t("try again in 60 s"),
        },
        "ERROR SERVER_GROUPS_FULL" => Frame::Error {
            code: ErrorCode::ServerGroupsFull,
            reference: Ref(6),
            retry_after_ms: 0,
            text: t("no more groups"),
        },
        "PING" => Frame::Ping { token: 5 },
        "SHUTDOWN" => Frame::Shutdown {
            retry_after_ms: 5000,
            reason: t("bye"),
        },
        "HISTORY_REQUEST" => Frame::HistoryRequest {
            reference: Ref(4),
            target: Target::User(n("bob")),
            before: MessageId(0),
            limit: 50,
        },
        _ => return None,
    })
}

/// The frames of the version 2 examples.
fn expected_v2(name: &str) -> Option<Frame<'static>> {
    Some(match name {
        "HELLO v2" => Frame::Hello {
            version: 2,
            client: t("lua"),
        },
        "LOGIN2 by password" => Frame::Login2 {
            reference: Ref(1),
            user: n("alice"),
            credential: Credential::Password(t("pw")),
            device: Some(n("laptop")),
            issue_token: true,
            resume: Resume::After(MessageId(0)),
            roster: true,
        },
        "LOGIN2 by token" => Frame::Login2 {
            reference: Ref(1),
            user: n("alice"),
            credential: Credential::Token(&TOKEN.0),
            device: None,
            issue_token: false,
            resume: Resume::Device,
            roster: false,
        },
        "LOGIN_OK2" => Frame::LoginOk2 {
            reference: Ref(1),
            user: n("Alice"),
            device: Some(n("laptop")),
            token: Some(TOKEN),
            bookmark: MessageId(0),
        },
        "SEND2" => Frame::Send2 {
            reference: Ref(2),
            client_id: ClientId(7),
            target: Target::Room,
            body: t("hi"),
        },
        "DELIVERED" => Frame::Delivered { id: MessageId(42) },
        "MARK_READ" => Frame::MarkRead {
            target: Target::Group(n("dev")),
            id: MessageId(42),
        },
        "READ_MARKER" => Frame::ReadMarker {
            target: Target::User(n("bob")),
            id: MessageId(42),
        },
        "DEVICE_LIST_REQUEST" => Frame::DeviceListRequest { reference: Ref(3) },
        "DEVICE_LIST" => Frame::DeviceList {
            reference: Ref(3),
            devices: vec![DeviceInfo {
                name: n("laptop"),
                created_ms: 1_700_000_000_000,
                last_seen_ms: 1_700_000_000_000,
                current: true,
            }],
        },
        "DEVICE_REVOKE" => Frame::DeviceRevoke {
            reference: Ref(4),
            device: n("laptop"),
        },
        other => return expected_moderation(other),
    })
}

/// The examples of moderation's frames.
fn expected_moderation(name: &str) -> Option<Frame<'static>> {
    Some(match name {
        "MODERATE" => Frame::Moderate {
            reference: Ref(5),
            action: crate::frame::ModAction::Ban,
            user: n("bob"),
            seconds: 3600,
            reason: t("spam"),
        },
        "DELETE" => Frame::Delete {
            reference: Ref(6),
            id: MessageId(42),
            reason: t("spam"),
        },
        "GROUP_MODERATE" => Frame::GroupModerate {
            reference: Ref(8),
            group: n("dev"),
            action: crate::frame::GroupAction::Mute,
            user: n("bob"),
            seconds: 600,
            reason: t("spam"),
        },
        "BAN_ADDRESS" => Frame::BanAddress {
            reference: Ref(9),
            lift: false,
            block: t("10.0.0.0/8"),
            seconds: 3600,
            reason: t("spam"),
        },
        "ANNOUNCE" => Frame::Announce {
            reference: Ref(7),
            text: t("back soon"),
        },
        "DELETED" => Frame::Deleted {
            id: MessageId(42),
            by: n("alice"),
        },
        "NOTICE" => Frame::Notice {
            text: t("back soon"),
        },
        "ERROR DEVICE_REVOKED" => Frame::Error {
            code: ErrorCode::DeviceRevoked,
            reference: Ref(0),
            retry_after_ms: 0,
            text: t("device revoked"),
        },
        _ => return None,
    })
}

/// The token of the examples: 32 bytes of 0x11.
const TOKEN: Token = Token([0x11; 32]);

/// `(name, bytes)` for each "### Example: NAME" and the ```hex block after it.
fn examples(doc: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut name: Option<String> = None;
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        if let Some(n) = line.strip_prefix("### Example: ") {
            name = Some(n.trim().to_owned());
        } else if line.trim() == "```hex" {
            let mut bytes = Vec::new();
            for l in lines.by_ref() {
                if l.trim() == "```" {
                    break;
                }
                for h in l.split_whitespace() {
                    bytes.push(u8::from_str_radix(h, 16).expect("hex blocks hold hex bytes"));
                }
            }
            out.push((
                name.take().expect("a hex block follows an Example heading"),
                bytes,
            ));
        }
    }
    out
}

#[test]
fn every_hex_example_in_the_protocol_document_decodes_and_reencodes_exactly() {
    let doc = include_str!("../../../docs/PROTOCOL.md");
    let all = examples(doc);
    assert!(
        all.len() >= 6,
        "PROTOCOL.md must keep at least six worked examples, found {}",
        all.len()
    );
    for (name, bytes) in all {
        let want = expected(&name)
            .or_else(|| expected_v2(&name))
            .unwrap_or_else(|| panic!("example {name} has no expected frame in this test"));
        let (got, used) = crate::decode(&bytes, u32::MAX)
            .unwrap_or_else(|e| panic!("example {name}: {e}"))
            .unwrap_or_else(|| panic!("example {name} is incomplete"));
        assert_eq!(used, bytes.len(), "example {name} has extra bytes");
        assert_eq!(got, want, "example {name} decodes to something else");
        assert_eq!(
            want.to_bytes(),
            bytes,
            "example {name} does not re-encode byte for byte"
        );
    }
}
