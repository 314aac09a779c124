//! Protocol version 2 through the hub: versions side by side, devices and
//! tokens, exactly-once SEND2, device bookmarks, read markers, revocation.

use super::util::{name, Got, World};
use crate::device::{ClientId, Token};
use crate::frame::{Credential, ErrorCode, Frame, Resume, Target, Text};
use crate::id::{MessageId, Ref};
use crate::testing::{answer, MemoryStore};
use crate::{Config, Effect, EffectResult, Input, Protocol, Source};

fn t(s: &str) -> Text<'_> {
    Text::new(s).expect("short")
}

impl World {
    /// Logs peer `p` in with the password, as `device`, asking for a token.
    fn login_device(&mut self, p: usize, user: &str, device: &str, resume: Resume) {
        let reference = self.reference();
        self.send(
            p,
            &Frame::Login2 {
                reference,
                user: name(user),
                credential: Credential::Password(t("pw")),
                device: Some(name(device)),
                issue_token: true,
                resume,
                roster: false,
            },
        );
    }

    /// Logs peer `p` in by token, resuming at the device's bookmark.
    fn login_token(&mut self, p: usize, user: &str, token: &Token) {
        let reference = self.reference();
        self.send(
            p,
            &Frame::Login2 {
                reference,
                user: name(user),
                credential: Credential::Token(&token.0),
                device: None,
                issue_token: false,
                resume: Resume::Device,
                roster: false,
            },
        );
    }

    fn send2(&mut self, p: usize, client_id: u64, body: &str) -> Ref {
        let reference = self.reference();
        self.send(
            p,
            &Frame::Send2 {
                reference,
                client_id: ClientId(client_id),
                target: Target::Room,
                body: t(body),
            },
        );
        reference
    }

    /// The token peer `p` was issued.
    fn token(&self, p: usize) -> Token {
        self.peers[p]
            .got
            .iter()
            .find_map(|g| match g {
                Got::LoginOk2 { token, .. } => *token,
                _ => None,
            })
            .expect("a token was issued")
    }

    fn acks(&self, p: usize) -> Vec<(Ref, MessageId)> {
        self.peers[p]
            .got
            .iter()
            .filter_map(|g| match g {
                Got::Ack { reference, id } => Some((*reference, *id)),
                _ => None,
            })
            .collect()
    }

    fn markers(&self, p: usize) -> Vec<(Target, MessageId)> {
        let got = &self.peers[p].got;
        let marker = |g: &Got| match g {
            Got::ReadMarker { target, id } => Some((*target, *id)),
            _ => None,
        };
        got.iter().filter_map(marker).collect()
    }
}

fn world() -> World {
    World::with_accounts(Config::default(), &["ann", "bob"])
}

#[test]
fn a_version_1_session_is_answered_as_a_version_1_server_would() {
    let mut w = world();
    let conn = w.hub.connect(w.now, Source(9), Protocol::CONFAB);
    let hello = Frame::Hello {
        version: 1,
        client: t("old"),
    };
    w.hub.handle_bytes(w.now, conn, &hello.to_bytes());
    let mut out = Vec::new();
    w.hub.drain(conn, &mut out, 1 << 16);
    let (frame, _) = crate::decode(&out[0], u32::MAX).unwrap().unwrap();
    assert!(matches!(frame, Frame::ServerHello { version: 1, .. }));
    let login2 = Frame::Login2 {
        reference: Ref(1),
        user: name("ann"),
        credential: Credential::Password(t("pw")),
        device: None,
        issue_token: false,
        resume: Resume::After(MessageId(0)),
        roster: false,
    };
    w.hub.handle_bytes(w.now, conn, &login2.to_bytes());
    out.clear();
    w.hub.drain(conn, &mut out, 1 << 16);
    let (frame, _) = crate::decode(&out[0], u32::MAX).unwrap().unwrap();
    let Frame::Error { code, .. } = frame else {
        panic!("expected an error, got {frame:?}")
    };
    assert_eq!(code, ErrorCode::UnknownFrameType);
    assert_eq!(w.hub.phase(conn), Some(crate::Phase::Auth));
}

#[test]
fn a_version_3_hello_is_refused() {
    let mut w = world();
    let p = w.connect();
    w.send(
        p,
        &Frame::Hello {
            version: 3,
            client: t("new"),
        },
    );
    // The world said HELLO 2 already, so this one is out of place; a
    // fresh connection saying 3 gets UNSUPPORTED_VERSION.
    let conn = w.hub.connect(w.now, Source(77), Protocol::CONFAB);
    let hello = Frame::Hello {
        version: 3,
        client: t("new"),
    };
    w.hub.handle_bytes(w.now, conn, &hello.to_bytes());
    let mut out = Vec::new();
    w.hub.drain(conn, &mut out, 1 << 16);
    let (frame, _) = crate::decode(&out[0], u32::MAX).unwrap().unwrap();
    assert!(matches!(
        frame,
        Frame::Error {
            code: ErrorCode::UnsupportedVersion,
            ..
        }
    ));
}

#[test]
fn a_device_gets_a_token_once_and_logs_in_with_it_later() {
    let mut w = world();
    let p = w.connect();
    w.login_device(p, "ann", "laptop", Resume::After(MessageId(0)));
    let token = w.token(p);
    assert!(matches!(
        &w.peers[p].got[1],
        Got::LoginOk2 { device: Some(d), bookmark: MessageId(0), .. } if d == "laptop"
    ));
    w.disconnect(p);
    let q = w.connect();
    w.login_token(q, "ANN", &token);
    let ok = w.peers[q].got.iter().find_map(|g| match g {
        Got::LoginOk2 { device, token, .. } => Some((device.clone(), *token)),
        _ => None,
    });
    assert_eq!(
        ok,
        Some((Some("laptop".to_owned()), None)),
        "no new token shown"
    );
    assert_eq!(w.hub.user(w.peers[q].conn), Some(name("ann")));
}

#[test]
fn a_wrong_token_is_bad_credentials_and_counts_toward_lockout() {
    let mut w = world();
    let mut codes = Vec::new();
    for i in 0..3 {
        let p = w.connect_from(Source(5));
        w.login_token(p, "ann", &Token([i; 32]));
        codes.extend(w.errors(p));
    }
    assert_eq!(
        codes,
        [
            ErrorCode::BadCredentials,
            ErrorCode::BadCredentials,
            ErrorCode::LockedOut
        ],
        "guessing tokens backs off like guessing passwords"
    );
    let p = w.connect();
    w.send(
        p,
        &Frame::Login2 {
            reference: Ref(1),
            user: name("ann"),
            credential: Credential::Token(&[1, 2, 3]),
            device: None,
            issue_token: false,
            resume: Resume::After(MessageId(0)),
            roster: false,
        },
    );
    assert!(!w.errors(p).is_empty(), "a short token is refused");
}

#[test]
fn a_send2_repeated_after_a_reconnect_is_stored_once_and_acked_with_the_original_id() {
    let mut w = world();
    let bob = w.login("bob", false);
    let p = w.connect();
    w.login_device(p, "ann", "laptop", Resume::After(MessageId(0)));
    let token = w.token(p);
    w.send2(p, 1, "once");
    let first = w.acks(p)[0].1;
    w.disconnect(p);
    let q = w.connect();
    w.login_token(q, "ann", &token);
    let r = w.send2(q, 1, "once");
    assert_eq!(
        w.acks(q),
        vec![(r, first)],
        "the retry gets the original id"
    );
    assert_eq!(w.store.messages().len(), 1, "stored once");
    let to_bob: Vec<_> = w.messages(bob).into_iter().map(|m| m.2).collect();
    assert_eq!(to_bob, vec!["once".to_owned()], "delivered once");
    w.send2(q, 2, "twice");
    assert_eq!(
        w.store.messages().len(),
        2,
        "a new client id is a new message"
    );
}

#[test]
fn send2_and_delivered_need_a_device() {
    let mut w = world();
    let p = w.login("ann", false);
    w.send2(p, 1, "hi");
    w.send(p, &Frame::Delivered { id: MessageId(1) });
    assert_eq!(w.errors(p), vec![ErrorCode::NoDevice, ErrorCode::NoDevice]);
    assert!(w.store.messages().is_empty());
}

#[test]
fn a_device_resumes_at_its_bookmark_with_exactly_what_it_missed() {
    let mut w = world();
    let bob = w.login("bob", false);
    let p = w.connect();
    w.login_device(p, "ann", "laptop", Resume::After(MessageId(0)));
    let token = w.token(p);
    w.say(bob, Target::Room, "seen");
    let seen = w.messages(p)[0].0;
    w.send(p, &Frame::Delivered { id: seen });
    let reference = w.reference();
    w.send(p, &Frame::Logout { reference });
    assert!(w.peers[p].got.contains(&Got::Ok(reference)));
    for body in ["missed 1", "missed 2"] {
        w.say(bob, Target::Room, body);
    }
    w.say(bob, Target::User(name("ann")), "missed dm");
    let q = w.connect();
    w.login_token(q, "ann", &token);
    let bodies: Vec<String> = w.messages(q).into_iter().map(|m| m.2).collect();
    assert_eq!(bodies, ["missed 1", "missed 2", "missed dm"]);
    assert!(w.peers[q].got.iter().any(|g| matches!(
        g,
        Got::LoginOk2 { bookmark, .. } if *bookmark == seen
    )));
}

#[test]
fn a_device_logout_is_answered_only_once_its_bookmark_is_stored() {
    let mut w = world();
    let bob = w.login("bob", false);
    let p = w.connect();
    w.login_device(p, "ann", "laptop", Resume::After(MessageId(0)));
    w.say(bob, Target::Room, "hi");
    w.hold_effects = true;
    w.send(p, &Frame::Delivered { id: MessageId(1) });
    let reference = w.reference();
    w.send(p, &Frame::Logout { reference });
    assert!(!w.peers[p].got.contains(&Got::Ok(reference)));
    let writes = w
        .held
        .iter()
        .filter(|e| matches!(e, Effect::SaveBookmark { .. }))
        .count();
    assert_eq!(writes, 2, "the acknowledgement, then the logout's write");
    w.hold_effects = false;
    w.release();
    assert!(w.peers[p].got.contains(&Got::Ok(reference)));
    assert!(w.peers[p].closed);
}

#[test]
fn many_acknowledgements_make_one_bookmark_write_at_a_time() {
    let mut w = world();
    let bob = w.login("bob", false);
    let p = w.connect();
    w.login_device(p, "ann", "laptop", Resume::After(MessageId(0)));
    for i in 0..10 {
        w.say(bob, Target::Room, &format!("m{i}"));
    }
    w.hold_effects = true;
    for id in 1..=10 {
        w.send(p, &Frame::Delivered { id: MessageId(id) });
    }
    let writes: Vec<MessageId> = w
        .held
        .iter()
        .filter_map(|e| match e {
            Effect::SaveBookmark { upto, .. } => Some(*upto),
            _ => None,
        })
        .collect();
    assert_eq!(writes, vec![MessageId(1)], "one write in flight");
    w.hold_effects = false;
    w.release();
    w.hold_effects = true;
    w.run();
    w.hold_effects = false;
    // The write that follows the first carries the newest acknowledgement.
    let next: Vec<MessageId> = w
        .held
        .iter()
        .filter_map(|e| match e {
            Effect::SaveBookmark { upto, .. } => Some(*upto),
            _ => None,
        })
        .collect();
    assert!(next.is_empty() || next == vec![MessageId(10)], "{next:?}");
    w.release();
    w.disconnect(p);
    assert_eq!(
        w.hub.devices.len(),
        0,
        "a device without sessions is forgotten"
    );
}

#[test]
fn an_acknowledgement_beyond_the_newest_message_counts_as_the_newest() {
    let mut w = world();
    let bob = w.login("bob", false);
    let p = w.connect();
    w.login_device(p, "ann", "laptop", Resume::After(MessageId(0)));
    let token = w.token(p);
    w.say(bob, Target::Room, "one");
    w.send(
        p,
        &Frame::Delivered {
            id: MessageId(u64::MAX),
        },
    );
    w.disconnect(p);
    w.say(bob, Target::Room, "two");
    let q = w.connect();
    w.login_token(q, "ann", &token);
    let bodies: Vec<String> = w.messages(q).into_iter().map(|m| m.2).collect();
    assert_eq!(
        bodies,
        ["two"],
        "a client cannot skip what was not yet sent"
    );
}

#[test]
fn a_read_marker_reaches_the_users_other_sessions_and_the_next_login() {
    let mut w = world();
    let bob = w.login("bob", false);
    let a1 = w.connect();
    w.login_device(a1, "ann", "laptop", Resume::After(MessageId(0)));
    let a2 = w.connect();
    w.login_device(a2, "ann", "phone", Resume::After(MessageId(0)));
    w.say(bob, Target::User(name("ann")), "hi");
    let conversation = Target::User(name("bob"));
    w.send(
        a1,
        &Frame::MarkRead {
            target: conversation,
            id: MessageId(1),
        },
    );
    assert_eq!(w.markers(a2), vec![(conversation, MessageId(1))]);
    assert!(w.markers(a1).is_empty(), "the setter is not told");
    w.send(
        a1,
        &Frame::MarkRead {
            target: conversation,
            id: MessageId(0),
        },
    );
    assert_eq!(
        w.markers(a2).last(),
        Some(&(conversation, MessageId(1))),
        "a marker never goes down"
    );
    let a3 = w.connect();
    w.login_device(a3, "ann", "desk", Resume::After(MessageId(0)));
    assert_eq!(w.markers(a3), vec![(conversation, MessageId(1))]);
    w.send(
        a1,
        &Frame::MarkRead {
            target: Target::Group(name("nope")),
            id: MessageId(1),
        },
    );
    assert_eq!(w.errors(a1), vec![ErrorCode::NoSuchGroup]);
}

#[test]
fn revoking_a_device_closes_its_sessions_and_its_token_stops_working() {
    let mut w = world();
    let laptop = w.connect();
    w.login_device(laptop, "ann", "laptop", Resume::After(MessageId(0)));
    let token = w.token(laptop);
    let phone = w.connect();
    w.login_device(phone, "ann", "phone", Resume::After(MessageId(0)));
    let reference = w.reference();
    w.send(phone, &Frame::DeviceListRequest { reference });
    let listed = w.peers[phone].got.iter().find_map(|g| match g {
        Got::Devices(d) => Some(d.clone()),
        _ => None,
    });
    assert_eq!(
        listed,
        Some(vec![
            ("laptop".to_owned(), false),
            ("phone".to_owned(), true)
        ])
    );
    let reference = w.reference();
    w.send(
        phone,
        &Frame::DeviceRevoke {
            reference,
            device: name("laptop"),
        },
    );
    assert!(w.peers[phone].got.contains(&Got::Ok(reference)));
    assert_eq!(w.errors(laptop), vec![ErrorCode::DeviceRevoked]);
    assert!(w.peers[laptop].closed);
    let again = w.connect();
    w.login_token(again, "ann", &token);
    assert_eq!(w.errors(again), vec![ErrorCode::BadCredentials]);
    let reference = w.reference();
    w.send(
        phone,
        &Frame::DeviceRevoke {
            reference,
            device: name("laptop"),
        },
    );
    assert_eq!(w.errors(phone), vec![ErrorCode::NoSuchDevice]);
}

#[test]
fn a_user_may_have_only_so_many_devices() {
    let config = Config {
        devices_per_user: 2,
        ..Config::default()
    };
    let mut w = World::with_accounts(config, &["ann"]);
    for d in ["a", "b", "c"] {
        let p = w.connect();
        w.login_device(p, "ann", d, Resume::After(MessageId(0)));
    }
    assert_eq!(w.errors(2), vec![ErrorCode::TooManyDevices]);
    let p = w.connect();
    w.login_device(p, "ann", "A", Resume::After(MessageId(0)));
    assert!(
        w.errors(p).is_empty(),
        "an existing device (any case) logs in"
    );
}

#[test]
fn an_idle_token_expires() {
    let mut w = world();
    let p = w.connect();
    w.login_device(p, "ann", "laptop", Resume::After(MessageId(0)));
    let token = w.token(p);
    let conn = w.peers[p].conn;
    let login = |idle_ms: u64| Effect::Login2 {
        conn,
        user: name("ann"),
        secret: crate::effect::Secret::Token(token),
        device: None,
        token_idle: std::time::Duration::from_millis(idle_ms),
        max_devices: 32,
        max_read_markers: 8,
    };
    let at = MemoryStore::COMMIT_MS + 10;
    let refused = |answer: &[Input]| {
        matches!(
            answer,
            [Input::Result(EffectResult::LoggedIn2 { result: Err(e), .. })]
                if e.code() == ErrorCode::BadCredentials
        )
    };
    let fresh = answer(&mut w.store, login(10), at);
    assert!(!refused(&fresh), "used within its idle time: {fresh:?}");
    let late = answer(&mut w.store, login(10), at + 11);
    assert!(refused(&late), "idle past its time: {late:?}");
    let again = answer(&mut w.store, login(u64::MAX), at + 12);
    assert!(refused(&again), "an expired token stays refused: {again:?}");
}

#[test]
fn a_device_that_never_acknowledges_resumes_from_its_first_login() {
    let mut w = world();
    let bob = w.login("bob", false);
    w.say(bob, Target::Room, "before the device");
    let p = w.connect();
    w.login_device(p, "ann", "bot", Resume::After(MessageId(0)));
    let token = w.token(p);
    w.disconnect(p);
    w.say(bob, Target::Room, "while it was away");
    let q = w.connect();
    w.login_token(q, "ann", &token);
    let bodies: Vec<String> = w.messages(q).into_iter().map(|m| m.2).collect();
    assert_eq!(bodies, ["while it was away"]);
}
