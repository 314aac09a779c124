//! The PostgreSQL store against the behaviour the other stores have,
//! on a database of its own in the PostgreSQL `CONFAB_TEST_PG` names
//! (scripts/services.sh). Without it these tests say so and pass, except
//! under CI (`CI=true`), where a missing service is a failure.

use super::*;
use confab_engine::device::ClientId;
use confab_engine::effect::{GroupOp, NewMessage, SendKey};
use confab_engine::frame::ErrorCode;
use postgres::NoTls;

/// A fresh database, dropped when the test ends.
pub(crate) struct TestDb {
    admin: String,
    name: String,
    pub(crate) url: String,
}

impl TestDb {
    /// `None` (with a note) when no PostgreSQL is configured outside CI.
    pub(crate) fn create() -> Option<TestDb> {
        let Ok(admin) = std::env::var("CONFAB_TEST_PG") else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CONFAB_TEST_PG is not set under CI: run the tests through scripts/test.sh"
            );
            eprintln!("CONFAB_TEST_PG is not set: skipping a PostgreSQL test");
            return None;
        };
        let name = format!("t{:016x}", rand_u64());
        let mut client = postgres::Client::connect(&admin, NoTls).expect("the test PostgreSQL");
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create a database");
        let url = match admin.rfind('/') {
            Some(i) => format!("{}/{name}", &admin[..i]),
            None => panic!("CONFAB_TEST_PG is a URL ending in /DATABASE"),
        };
        Some(TestDb { admin, name, url })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).expect("random");
    u64::from_le_bytes(b)
}

fn n(s: &str) -> Name {
    Name::new(s).expect("valid test name")
}

fn send(sender: &str, target: Target, body: &str) -> Write {
    Write::Message(NewMessage {
        sender: n(sender),
        target,
        body: body.into(),
        kind: confab_engine::MessageKind::Message,
        tags: confab_engine::ClientTags::default(),
    })
}

fn fresh() -> Option<(TestDb, PgStore)> {
    let db = TestDb::create()?;
    let mut store = PgStore::open(&db.url).expect("open");
    for u in ["Alice", "bob", "carol"] {
        assert!(store.create_account(&n(u), "hash").expect("account"));
    }
    Some((db, store))
}

fn stored(w: &Written) -> &StoredMessage {
    match w {
        Written::Message(Ok(m)) => m,
        other => panic!("not stored: {other:?}"),
    }
}

#[test]
fn ids_strictly_increase_across_batches_stores_and_reopen() {
    let Some((db, mut a)) = fresh() else { return };
    let mut b = PgStore::open(&db.url)
        .expect("a second connection")
        .for_node(7);
    let first = a
        .commit(
            &[
                send("alice", Target::Room, "1"),
                send("bob", Target::Room, "2"),
            ],
            10,
        )
        .expect("commit");
    let second = b
        .commit(&[send("bob", Target::Room, "3")], 11)
        .expect("commit");
    let ids: Vec<u64> = first
        .iter()
        .chain(&second)
        .map(|w| stored(w).id.0)
        .collect();
    assert_eq!(ids, [1, 2, 3]);
    drop(a);
    let mut again = PgStore::open(&db.url).expect("reopen").for_node(7);
    assert_eq!(again.load().expect("load").last_id, MessageId(3));
    let (last, fetched) = again.committed_from(MessageId(2), 10).expect("fetch");
    assert_eq!(last, MessageId(3));
    assert_eq!(
        fetched
            .iter()
            .map(|(m, mine)| (m.body.as_str(), *mine))
            .collect::<Vec<_>>(),
        [("2", false), ("3", true)]
    );
}

#[test]
fn refusals_store_nothing_and_names_are_spelled_as_registered() {
    let Some((_db, mut s)) = fresh() else { return };
    let out = s
        .commit(
            &[
                send("bob", Target::User(n("nobody")), "x"),
                send("bob", Target::Group(n("ghosts")), "x"),
                send("bob", Target::User(n("ALICE")), "hi"),
            ],
            5,
        )
        .expect("commit");
    assert!(matches!(&out[0], Written::Message(Err(r)) if r.code() == ErrorCode::NoSuchUser));
    assert!(matches!(&out[1], Written::Message(Err(r)) if r.code() == ErrorCode::NoSuchGroup));
    let m = stored(&out[2]);
    assert_eq!((m.id, m.target), (MessageId(1), Target::User(n("Alice"))));
    let create = |g: &str, u: &str| {
        Write::Group(GroupOp::Create {
            group: n(g),
            user: n(u),
        })
    };
    let join = |g: &str, u: &str| {
        Write::Group(GroupOp::Join {
            group: n(g),
            user: n(u),
        })
    };
    let out = s
        .commit(
            &[
                create("Devs", "bob"),
                create("devs", "carol"),
                join("devs", "bob"),
                join("devs", "carol"),
            ],
            6,
        )
        .expect("commit");
    let codes: Vec<Option<ErrorCode>> = out
        .iter()
        .map(|w| match w {
            Written::Group(r) => r.as_ref().err().map(|e| e.code()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        codes,
        [
            None,
            Some(ErrorCode::GroupExists),
            Some(ErrorCode::AlreadyMember),
            None
        ]
    );
    let loaded = s.load().expect("load");
    assert_eq!(loaded.groups, vec![(n("Devs"), vec![n("bob"), n("carol")])]);
}

#[test]
fn history_and_replay_hold_exactly_the_conversations_messages() {
    let Some((_db, mut s)) = fresh() else { return };
    s.commit(
        &[Write::Group(GroupOp::Create {
            group: n("g"),
            user: n("bob"),
        })],
        1,
    )
    .expect("group");
    let batch: Vec<Write> = (0..6)
        .map(|i| match i % 3 {
            0 => send("alice", Target::Room, &format!("r{i}")),
            1 => send("alice", Target::User(n("bob")), &format!("d{i}")),
            _ => send("bob", Target::Group(n("g")), &format!("g{i}")),
        })
        .collect();
    s.commit(&batch, 2).expect("commit");
    let page = s
        .history(&n("bob"), &Target::User(n("alice")), MessageId(0), 1)
        .expect("page");
    assert_eq!((page.messages[0].body.as_str(), page.more), ("d4", true));
    let older = s
        .history(&n("bob"), &Target::User(n("alice")), page.messages[0].id, 5)
        .expect("page");
    assert_eq!((older.messages[0].body.as_str(), older.more), ("d1", false));
    let scope = ReplayScope::Since {
        after: MessageId(0),
        groups: vec![],
    };
    let carol = s
        .replay(&n("carol"), &scope, MessageId(100), 10)
        .expect("replay");
    let bodies: Vec<&str> = carol.messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["r0", "r3"]);
    let scope = ReplayScope::Since {
        after: MessageId(1),
        groups: vec![n("G")],
    };
    let bob = s
        .replay(&n("bob"), &scope, MessageId(100), 2)
        .expect("replay");
    let bodies: Vec<&str> = bob.messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["d4", "g5"]);
    assert_eq!(bob.skipped.len(), 3, "{:?}", bob.skipped);
    assert!(bob
        .skipped
        .contains(&(Target::User(n("alice")), MessageId(2), MessageId(2), 1)));
}

#[test]
fn history_windows_read_forwards_backwards_around_and_by_commit_time() {
    use confab_engine::window::{Bound, Range, Window};
    let Some((_db, mut s)) = fresh() else { return };
    // Six room messages, committed at 1000, 2000, ... 6000 ms.
    let mut ids = Vec::new();
    for i in 0..6u64 {
        let out = s
            .commit(
                &[send("alice", Target::Room, &format!("m{i}"))],
                1000 * (i + 1),
            )
            .expect("commit");
        ids.push(stored(&out[0]).id);
    }
    let bodies = |h: &HistoryLoaded| -> Vec<String> {
        h.messages
            .iter()
            .map(|m| m.body.as_str().to_owned())
            .collect()
    };
    let room = Target::Room;
    let all = Range {
        after: None,
        before: None,
    };
    let newest = s
        .history_window(&n("bob"), &room, &Window::Newest(all), 2)
        .expect("newest");
    assert_eq!(
        (bodies(&newest), newest.more),
        (vec!["m5".into(), "m4".into()], true)
    );
    let after = Range {
        after: Some(Bound::Id(ids[1])),
        before: None,
    };
    let oldest = s
        .history_window(&n("bob"), &room, &Window::Oldest(after), 2)
        .expect("oldest");
    assert_eq!(bodies(&oldest), ["m2", "m3"]);
    // Between two times, exclusive: after 2000 ms and before 5000 ms.
    let between = Range {
        after: Some(Bound::Time(2000)),
        before: Some(Bound::Time(5000)),
    };
    let got = s
        .history_window(&n("bob"), &room, &Window::Oldest(between), 10)
        .expect("between");
    assert_eq!(
        (bodies(&got), got.more),
        (vec!["m2".into(), "m3".into()], false)
    );
    // A time after every commit holds nothing after it.
    let late = Range {
        after: Some(Bound::Time(9000)),
        before: None,
    };
    let got = s
        .history_window(&n("bob"), &room, &Window::Oldest(late), 10)
        .expect("late");
    assert!(got.messages.is_empty());
    let around = s
        .history_window(&n("bob"), &room, &Window::Around(Bound::Id(ids[3])), 3)
        .expect("around");
    let mut got = bodies(&around);
    got.sort();
    assert_eq!(got, ["m2", "m3", "m4"]);
}

#[test]
fn a_send_key_is_committed_once_and_answered_with_the_original() {
    let Some((_db, mut s)) = fresh() else { return };
    let device = s
        .create_device(&n("bob"), &n("phone"), Some([7; 32]), 1)
        .expect("device");
    assert_eq!(device.user, n("bob"));
    assert_eq!(s.device_by_token(&[7; 32]).expect("by token"), Some(device));
    let key = SendKey {
        device: device.record.id,
        client_id: ClientId(u64::MAX),
    };
    let once = |body: &str| {
        Write::MessageOnce(
            NewMessage {
                sender: n("bob"),
                target: Target::Room,
                body: body.into(),
                kind: confab_engine::MessageKind::Message,
                tags: confab_engine::ClientTags::default(),
            },
            key,
        )
    };
    let first = s.commit(&[once("a")], 5).expect("commit");
    let again = s
        .commit(&[once("a"), send("bob", Target::Room, "b")], 6)
        .expect("commit");
    let original = stored(&first[0]).committed();
    assert_eq!(again[0], Written::Duplicate(original));
    assert_eq!(stored(&again[1]).id, MessageId(2));
    assert_eq!(
        s.revoke_device(&n("BOB"), &n("Phone")).expect("revoke"),
        Some(device.record.id)
    );
    assert_eq!(s.devices(&n("bob")).expect("devices"), vec![]);
}
