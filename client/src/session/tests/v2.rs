//! Protocol version 2 on the client session: devices and tokens, the
//! bookmark, exactly-once sends across a reconnect, DELIVERED, read
//! markers and the device list, against a real hub where it matters.

use std::time::{Duration, Instant};

use confab_engine::frame::{ErrorCode, Resume};
use confab_engine::{ClientId, Token};

use super::pair::Pair;
use super::*;

fn laptop() -> Name {
    n("laptop")
}

/// Logs client `i` in as alice's `device` by password, asking for a token.
fn device_login(p: &mut Pair, i: usize, device: &str) -> Token {
    p.session(i)
        .login_device(n("alice"), "pw", n(device), true, Login2Options::default())
        .unwrap();
    p.step();
    let seen = p.events(i);
    let token = seen.iter().find_map(|e| match e {
        Event::TokenIssued { token, .. } => Some(*token),
        _ => None,
    });
    assert_eq!(p.session(i).phase(), Phase::Messaging, "{seen:?}");
    token.expect("a token was asked for")
}

fn bob(p: &mut Pair) -> usize {
    let b = p.connect();
    p.session(b)
        .login(n("bob"), "pw", LoginOptions::default())
        .unwrap();
    p.step();
    let _ = p.events(b);
    b
}

fn messages(seen: &[Event]) -> Vec<(MessageId, String)> {
    seen.iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some((m.id, m.body.clone())),
            _ => None,
        })
        .collect()
}

fn acks(seen: &[Event]) -> Vec<MessageId> {
    seen.iter()
        .filter_map(|e| match e {
            Event::Ack { id, .. } => Some(*id),
            _ => None,
        })
        .collect()
}

#[test]
fn a_token_logs_the_device_in_again_and_resumes_at_its_bookmark() {
    let mut p = Pair::with_accounts(&["alice", "bob"]);
    let a = p.connect();
    let token = device_login(&mut p, a, "laptop");
    assert_eq!(p.session(a).device(), Some(laptop()));
    assert_eq!(p.session(a).issued_token(), Some(token));
    let b = bob(&mut p);
    for body in ["one", "two"] {
        p.session(b).send(Target::Room, body).unwrap();
        p.step();
    }
    assert_eq!(messages(&p.events(a)).len(), 2);
    p.session(a).deliver_now();
    p.step();
    p.drop_connection(a);
    p.session(b).send(Target::Room, "three").unwrap();
    p.step();

    let a2 = p.connect();
    p.session(a2)
        .login_token(n("alice"), &token, Login2Options::default())
        .unwrap();
    p.step();
    let seen = p.events(a2);
    assert_eq!(p.session(a2).device(), Some(laptop()));
    assert_eq!(p.session(a2).bookmark(), MessageId(2));
    assert_eq!(p.session(a2).issued_token(), None);
    assert_eq!(messages(&seen), vec![(MessageId(3), "three".into())]);
}

#[test]
fn a_send_resent_after_a_reconnect_is_stored_once_and_answered_with_its_original_id() {
    let mut p = Pair::with_accounts(&["alice", "bob"]);
    let a = p.connect();
    let token = device_login(&mut p, a, "laptop");
    let b = bob(&mut p);
    p.session(a).send(Target::Room, "exactly once").unwrap();
    // The connection is lost before the ACK reaches the application: the
    // next session takes the send over, unacknowledged.
    let outbox = p.session(a).take_outbox();
    assert_eq!(outbox.len(), 1);
    p.step();
    let first = acks(&p.events(a));
    assert_eq!(first.len(), 1);
    p.drop_connection(a);

    let a2 = p.connect();
    p.session(a2).adopt_outbox(outbox);
    p.session(a2)
        .login_token(n("alice"), &token, Login2Options::default())
        .unwrap();
    p.step();
    let seen = p.events(a2);
    assert_eq!(acks(&seen), first, "{seen:?}");
    assert!(p.session(a2).outbox().is_empty());
    let stored: Vec<String> = p.store.messages().into_iter().map(|m| m.body).collect();
    assert_eq!(stored, vec!["exactly once".to_string()]);
    assert_eq!(messages(&p.events(b)).len(), 1);
}

#[test]
fn sends_of_a_device_carry_increasing_client_ids_and_wait_in_the_outbox() {
    let mut s = device_session();
    s.adopt_outbox(Outbox::starting_at(41));
    s.send(Target::Room, "a").unwrap();
    s.send(Target::Room, "b").unwrap();
    let ids: Vec<ClientId> = s.outbox().unacked().map(|u| u.client_id).collect();
    assert_eq!(ids, vec![ClientId(41), ClientId(42)]);
    let frames = sent(&mut s);
    assert_eq!(frames.len(), 2);
    assert!(frames.iter().all(|f| f.starts_with("Send2")), "{frames:?}");
}

#[test]
fn a_message_whose_id_was_seen_already_is_not_delivered_twice() {
    let mut s = logged_in(false);
    let m = |id: u64| Frame::Message {
        id: MessageId(id),
        timestamp_ms: 1,
        sender: n("bob"),
        target: Target::Room,
        body: Text::new("hi").unwrap(),
    };
    s.handle_input(&bytes(&[m(5), m(5), m(4), m(6)])).unwrap();
    let ids: Vec<MessageId> = messages(&events(&mut s)).into_iter().map(|m| m.0).collect();
    assert_eq!(ids, vec![MessageId(5), MessageId(6)]);

    // Across a reconnect: the new session knows what the old one showed.
    let mut next = greeted();
    next.adopt_outbox(s.take_outbox());
    let _ = next.login(n("alice"), "pw", LoginOptions::default());
    next.handle_input(&bytes(&[m(6), m(7)])).unwrap();
    let ids: Vec<MessageId> = messages(&events(&mut next))
        .into_iter()
        .map(|m| m.0)
        .collect();
    assert_eq!(ids, vec![MessageId(7)]);
}

/// A device session past LOGIN_OK2 (no roster), before CAUGHT_UP.
fn device_session() -> Session {
    let mut s = greeted();
    let r = s
        .login_device(
            n("alice"),
            "pw",
            laptop(),
            false,
            Login2Options {
                resume: Resume::Device,
                roster: false,
            },
        )
        .unwrap();
    s.handle_input(&bytes(&[Frame::LoginOk2 {
        reference: r,
        user: n("alice"),
        device: Some(laptop()),
        token: None,
        bookmark: MessageId(0),
    }]))
    .unwrap();
    let _ = sent(&mut s);
    s
}

fn message(id: u64) -> Vec<u8> {
    bytes(&[Frame::Message {
        id: MessageId(id),
        timestamp_ms: 1,
        sender: n("bob"),
        target: Target::Room,
        body: Text::new("hi").unwrap(),
    }])
}

fn delivered(id: u64) -> String {
    format!("{:?}", Frame::Delivered { id: MessageId(id) })
}

#[test]
fn delivered_goes_out_once_after_caught_up_then_after_a_quiet_second_or_a_hundred_messages() {
    let mut s = device_session();
    s.handle_input(&message(2)).unwrap();
    assert_eq!(sent(&mut s), Vec::<String>::new(), "not before CAUGHT_UP");
    s.handle_input(&bytes(&[Frame::CaughtUp {
        last_id: MessageId(3),
    }]))
    .unwrap();
    assert_eq!(sent(&mut s), vec![delivered(3)]);

    let t0 = Instant::now();
    s.handle_input(&message(4)).unwrap();
    s.tick(t0);
    s.tick(t0 + Duration::from_millis(999));
    assert_eq!(sent(&mut s), Vec::<String>::new());
    assert_eq!(s.next_tick(), Some(t0 + DELIVERED_DELAY));
    s.tick(t0 + DELIVERED_DELAY);
    assert_eq!(sent(&mut s), vec![delivered(4)]);
    assert_eq!(s.next_tick(), None);

    for id in 5..5 + u64::from(DELIVERED_EVERY) {
        s.handle_input(&message(id)).unwrap();
    }
    assert_eq!(
        sent(&mut s),
        vec![delivered(4 + u64::from(DELIVERED_EVERY))]
    );
}

#[test]
fn a_session_without_a_device_never_sends_delivered() {
    let mut s = logged_in(false);
    s.handle_input(&bytes(&[Frame::CaughtUp {
        last_id: MessageId(3),
    }]))
    .unwrap();
    s.deliver_now();
    assert_eq!(sent(&mut s), Vec::<String>::new());
}

#[test]
fn a_read_marker_set_on_one_device_reaches_the_users_other_device() {
    let mut p = Pair::with_accounts(&["alice", "bob"]);
    let (laptop, phone) = (p.connect(), p.connect());
    device_login(&mut p, laptop, "laptop");
    device_login(&mut p, phone, "phone");
    let b = bob(&mut p);
    p.session(b).send(Target::Room, "read me").unwrap();
    p.step();
    let _ = (p.events(laptop), p.events(phone));

    p.session(laptop)
        .mark_read(Target::Room, MessageId(1))
        .unwrap();
    p.step();
    let want = Event::ReadMarker {
        target: Target::Room,
        id: MessageId(1),
    };
    assert_eq!(p.events(phone), vec![want.clone()]);
    assert_eq!(p.events(laptop), Vec::<Event>::new());

    // A later login hears the marker right after LOGIN_OK2.
    let tablet = p.connect();
    p.session(tablet)
        .login_device(
            n("alice"),
            "pw",
            n("tablet"),
            false,
            Login2Options::default(),
        )
        .unwrap();
    p.step();
    let seen = p.events(tablet);
    assert!(
        matches!(seen.as_slice(), [Event::ServerHello(_), Event::LoginOk { .. }, m, ..] if *m == want),
        "{seen:?}"
    );
}

#[test]
fn a_full_outbox_refuses_another_send_instead_of_forgetting_one() {
    let mut s = device_session();
    for i in 0..MAX_UNACKED {
        s.send(Target::Room, &format!("m{i}")).unwrap();
    }
    assert_eq!(s.send(Target::Room, "one more"), Err(ApiMisuse::OutboxFull));
    assert_eq!(s.outbox().len(), MAX_UNACKED);
}

#[test]
fn revoking_a_device_closes_its_session_and_its_token_no_longer_logs_in() {
    let mut p = Pair::with_accounts(&["alice"]);
    let (laptop, phone) = (p.connect(), p.connect());
    device_login(&mut p, laptop, "laptop");
    let token = device_login(&mut p, phone, "phone");

    let r = p.session(laptop).device_list().unwrap();
    p.step();
    let seen = p.events(laptop);
    let Some(Event::DeviceList { reference, devices }) = seen.first() else {
        panic!("{seen:?}");
    };
    assert_eq!(*reference, r);
    let names: Vec<(&str, bool)> = devices
        .iter()
        .map(|d| (d.name.as_str(), d.current))
        .collect();
    assert_eq!(names, vec![("laptop", true), ("phone", false)]);

    p.session(laptop).device_revoke(n("phone")).unwrap();
    p.step();
    let seen = p.events(laptop);
    assert!(
        matches!(
            seen.as_slice(),
            [Event::Ok {
                request: Some(Request::DeviceRevoke { .. }),
                ..
            }]
        ),
        "{seen:?}"
    );
    let seen = p.events(phone);
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::Error(e) if e.code == ErrorCode::DeviceRevoked)),
        "{seen:?}"
    );
    assert_eq!(p.session(phone).phase(), Phase::Closed);

    let again = p.connect();
    p.session(again)
        .login_token(n("alice"), &token, Login2Options::default())
        .unwrap();
    p.step();
    let seen = p.events(again);
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::Error(e) if e.code == ErrorCode::BadCredentials)),
        "{seen:?}"
    );
}

#[test]
fn the_new_error_codes_have_their_protocol_names() {
    assert_eq!(code_name(ErrorCode::NoDevice), "NO_DEVICE");
    assert_eq!(code_name(ErrorCode::TooManyDevices), "TOO_MANY_DEVICES");
    assert_eq!(code_name(ErrorCode::NoSuchDevice), "NO_SUCH_DEVICE");
    assert_eq!(code_name(ErrorCode::DeviceRevoked), "DEVICE_REVOKED");
}
