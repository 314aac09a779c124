use confab_engine::frame::ErrorCode;

use super::*;
use confab_engine::testing::MemoryStore;

fn name(s: &str) -> Name {
    Name::new(s).expect("test names are valid")
}

fn conn() -> ConnId {
    let mut hub = confab_engine::Hub::new(confab_engine::Config::default(), [], MessageId(0));
    hub.connect(
        std::time::Instant::now(),
        confab_engine::Source(1),
        confab_engine::Protocol::CONFAB,
    )
}

fn message(to: Target, body: &str) -> WriteJob {
    WriteJob::Message {
        conn: conn(),
        reference: Ref(7),
        message: NewMessage {
            sender: name("ann"),
            target: to,
            body: body.into(),
            kind: confab_engine::MessageKind::Message,
            tags: confab_engine::ClientTags::default(),
        },
        once: None,
    }
}

#[test]
fn a_batch_commits_in_order_and_answers_each_write() {
    let mut store = MemoryStore::default();
    store.create_account(&name("bob"), "h").expect("creates");
    let jobs = vec![
        message(Target::Room, "one"),
        message(Target::User(name("nobody")), "lost"),
        WriteJob::Offline {
            user: name("bob"),
            seen_upto: MessageId(0),
        },
        message(Target::User(name("BOB")), "two"),
    ];
    let results = run_jobs(&mut store, jobs.into_iter());
    // Each stored message is its sender's ACK, then its routing; a
    // refused one is the refusal alone.
    type Got = (&'static str, Result<MessageId, ErrorCode>, Option<Target>);
    let got: Vec<Got> = results
        .into_iter()
        .map(|i| match i {
            Input::Result(EffectResult::Stored { result, .. }) => {
                ("ack", result.map(|c| c.id).map_err(|(_, r)| r.code()), None)
            }
            Input::Committed { message, origin } => {
                assert!(origin.is_some(), "routed from its sender");
                ("route", Ok(message.id), Some(message.target))
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        [
            ("ack", Ok(MessageId(1)), None),
            ("route", Ok(MessageId(1)), Some(Target::Room)),
            ("ack", Err(ErrorCode::NoSuchUser), None),
            ("ack", Ok(MessageId(2)), None),
            ("route", Ok(MessageId(2)), Some(Target::User(name("bob")))),
        ]
    );
}

#[test]
fn a_full_queue_refuses_messages_but_not_offline_marks() {
    let (q, rx) = super::super::queue::Queue::new(1);
    assert!(q.push_refusable(message(Target::Room, "a")).is_ok());
    assert!(q.push_refusable(message(Target::Room, "b")).is_err());
    let offline = WriteJob::Offline {
        user: name("ann"),
        seen_upto: MessageId(1),
    };
    assert!(q.push(offline).is_ok());
    assert_eq!(rx.len(), 2);
    rx.taken(1);
    assert!(q.push_refusable(message(Target::Room, "c")).is_ok());
}

#[test]
fn a_repeated_send2_is_acked_with_the_original_id_and_not_routed_again() {
    let mut store = MemoryStore::default();
    let key = SendKey {
        device: DeviceId(1),
        client_id: confab_engine::ClientId(5),
    };
    let send2 = || match message(Target::Room, "once") {
        WriteJob::Message {
            conn,
            reference,
            message,
            ..
        } => WriteJob::Message {
            conn,
            reference,
            message,
            once: Some(key),
        },
        other => other,
    };
    let results = run_jobs(&mut store, vec![send2(), send2()].into_iter());
    let kinds: Vec<(&str, MessageId)> = results
        .iter()
        .map(|i| match i {
            Input::Result(EffectResult::Stored { result: Ok(c), .. }) => ("ack", c.id),
            Input::Committed { message, .. } => ("route", message.id),
            Input::Result(EffectResult::StoredBefore { committed, .. }) => {
                ("ack again", committed.id)
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("ack", MessageId(1)),
            ("route", MessageId(1)),
            ("ack again", MessageId(1))
        ]
    );
    assert_eq!(store.messages().len(), 1);
}

#[test]
fn bookmarks_and_read_markers_are_answered_in_order_with_the_batch() {
    let mut store = MemoryStore::default();
    let c = conn();
    let jobs = vec![
        message(Target::Room, "one"),
        WriteJob::Bookmark {
            device: DeviceId(3),
            upto: MessageId(1),
            logout: Some((c, Ref(9))),
        },
        WriteJob::ReadMarker {
            conn: c,
            user: name("ann"),
            target: Target::Room,
            id: MessageId(1),
            max: 4,
        },
    ];
    let results = run_jobs(&mut store, jobs.into_iter());
    assert!(
        matches!(
            results.as_slice(),
            [
                Input::Result(EffectResult::Stored { .. }),
                Input::Committed { .. },
                Input::Result(EffectResult::BookmarkSaved {
                    saved: true,
                    logout: Some((_, Ref(9))),
                    ..
                }),
                Input::Result(EffectResult::ReadMarkerSaved {
                    result: Ok(MessageId(1)),
                    ..
                }),
            ]
        ),
        "{results:?}"
    );
}
