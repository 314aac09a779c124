//! The PostgreSQL store against the behaviour the other stores have,
//! on a database of its own in the PostgreSQL `CONFAB_TEST_PG` names
//! (scripts/services.sh). Without it these tests say so and pass, except
//! under CI (`CI=true`), where a missing service is a failure.

use super::*;
use crate::store::sqlite::StoredAddressBan;
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
fn postgres_lists_conversations_by_latest_message() {
    let Some(db) = TestDb::create() else { return };
    let mut store = PgStore::open(&db.url).expect("open");
    crate::store::tests_targets::lists_conversations_by_latest_message(&mut store);
}

#[test]
fn postgres_gives_a_name_registered_again_none_of_the_old_direct_messages() {
    let Some(db) = TestDb::create() else { return };
    let mut store = PgStore::open(&db.url).expect("open");
    crate::store::tests_history_from::a_name_registered_again_reads_none_of_the_old_accounts_direct_messages(&mut store);
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

fn moderate(group: &str, user: &str, action: confab_engine::frame::GroupAction) -> Write {
    Write::Group(GroupOp::Moderate {
        group: n(group),
        user: n(user),
        action,
        seconds: 0,
        reason: "why".into(),
        by: n("bob"),
    })
}

fn group_codes(out: &[Written]) -> Vec<Option<ErrorCode>> {
    out.iter()
        .map(|w| match w {
            Written::Group(r) => r.as_ref().err().map(|e| e.code()),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn group_roles_and_mutes_are_stored_forgotten_on_leave_and_loaded() {
    use confab_engine::frame::GroupAction::{Appoint, Dismiss, Mute, Remove, Unmute};
    let Some((db, mut s)) = fresh() else { return };
    let join = |u: &str| {
        Write::Group(GroupOp::Join {
            group: n("devs"),
            user: n(u),
        })
    };
    let out = s
        .commit(
            &[
                Write::Group(GroupOp::Create {
                    group: n("Devs"),
                    user: n("bob"),
                }),
                join("carol"),
                join("alice"),
                moderate("devs", "carol", Appoint),
                moderate("devs", "alice", Mute),
                moderate("ghosts", "alice", Mute),
            ],
            1_000,
        )
        .expect("commit");
    assert_eq!(
        group_codes(&out),
        [None, None, None, None, None, Some(ErrorCode::NoSuchGroup)]
    );
    let loaded = PgStore::open(&db.url)
        .expect("reopen")
        .load()
        .expect("load");
    assert_eq!(
        loaded.roles,
        vec![(n("Devs"), n("bob"), true), (n("Devs"), n("carol"), false)]
    );
    // Spelled as the op named them (the hub names them as registered).
    assert_eq!(
        loaded.group_mutes,
        vec![(n("devs"), n("alice"), None, "why".to_owned())]
    );
    // A removal takes the member out with their mute; the moderator who
    // leaves loses the role; removing a non-member is refused.
    let out = s
        .commit(
            &[
                moderate("devs", "alice", Remove),
                moderate("devs", "alice", Remove),
                Write::Group(GroupOp::Leave {
                    group: n("devs"),
                    user: n("carol"),
                }),
            ],
            2_000,
        )
        .expect("commit");
    assert_eq!(group_codes(&out), [None, Some(ErrorCode::NotAMember), None]);
    let loaded = s.load().expect("load");
    assert_eq!(loaded.groups, vec![(n("Devs"), vec![n("bob")])]);
    assert_eq!(loaded.roles, vec![(n("Devs"), n("bob"), true)]);
    assert_eq!(loaded.group_mutes, vec![]);
    // A timed mute loads with the seconds it has left; unmute and dismiss
    // take effect; a deleted account loses every role.
    s.commit(&[join("carol")], 3_000).expect("join");
    let timed = Write::Group(GroupOp::Moderate {
        group: n("devs"),
        user: n("carol"),
        action: Mute,
        seconds: 3_600,
        reason: "calm".into(),
        by: n("bob"),
    });
    let now = super::now_ms();
    s.commit(&[timed, moderate("devs", "carol", Appoint)], now)
        .expect("mute");
    let left = s.load().expect("load").group_mutes[0].2;
    assert!(
        left.is_some_and(|l| (3_590..=3_600).contains(&l)),
        "{left:?}"
    );
    s.commit(
        &[
            moderate("devs", "carol", Unmute),
            moderate("devs", "carol", Dismiss),
        ],
        now,
    )
    .expect("lift");
    let loaded = s.load().expect("load");
    assert_eq!((loaded.roles.len(), loaded.group_mutes.len()), (1, 0));
    assert!(s.delete_account(&n("bob")).expect("delete"));
    assert_eq!(s.load().expect("load").roles, vec![]);
    let audit = s.audit_log(100).expect("audit");
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "group-appoint",
            "group-mute",
            "group-remove",
            "group-mute",
            "group-appoint",
            "group-unmute",
            "group-dismiss"
        ]
    );
    assert_eq!(audit[2].target, "#devs alice");
}

#[test]
fn address_bans_are_stored_replaced_lifted_and_end_on_time() {
    use confab_engine::effect::AddressBanRecord;
    let Some((_db, mut s)) = fresh() else { return };
    let record = |block: &str, lift: bool, seconds: u32| AddressBanRecord {
        actor: n("carol"),
        block: block.into(),
        lift,
        seconds,
        reason: "abuse".into(),
    };
    s.record_address_ban(&record("10.0.0.0/8", false, 0), 1_000)
        .expect("ban");
    s.record_address_ban(&record("10.0.0.0/8", false, 60), 1_000)
        .expect("the same block again");
    s.record_address_ban(&record("2001:db8::/32", false, 0), 1_000)
        .expect("ban");
    let bans = s.address_bans(2_000).expect("bans");
    assert_eq!(
        bans,
        vec![
            StoredAddressBan {
                net: "10.0.0.0/8".into(),
                until_ms: Some(61_000),
                reason: "abuse".into()
            },
            StoredAddressBan {
                net: "2001:db8::/32".into(),
                until_ms: None,
                reason: "abuse".into()
            },
        ]
    );
    assert_eq!(s.address_bans(61_000).expect("bans").len(), 1, "ended");
    s.record_address_ban(&record("2001:db8::/32", true, 0), 3_000)
        .expect("lift");
    assert!(!s.lift_address("2001:db8::/32", "operator").expect("lift"));
    assert_eq!(s.address_bans(3_000).expect("bans").len(), 1);
    let audit = s.audit_log(10).expect("audit");
    let lines: Vec<(&str, &str, &str)> = audit
        .iter()
        .map(|e| (e.actor.as_str(), e.action.as_str(), e.target.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            ("carol", "ban-address", "10.0.0.0/8"),
            ("carol", "ban-address", "10.0.0.0/8"),
            ("carol", "ban-address", "2001:db8::/32"),
            ("carol", "unban-address", "2001:db8::/32"),
            ("operator", "unban-address", "2001:db8::/32"),
        ]
    );
}

#[test]
fn a_database_of_a_newer_schema_is_refused_and_reopening_keeps_the_version() {
    let Some((db, _s)) = fresh() else { return };
    let mut c = postgres::Client::connect(&db.url, NoTls).expect("connect");
    let version = |c: &mut postgres::Client| -> i32 {
        c.query_one("SELECT version FROM schema_version", &[])
            .expect("version")
            .get(0)
    };
    assert_eq!(version(&mut c), schema::STEPS.len() as i32);
    drop(PgStore::open(&db.url).expect("reopen"));
    assert_eq!(version(&mut c), schema::STEPS.len() as i32);
    c.execute("UPDATE schema_version SET version = version + 1", &[])
        .expect("bump");
    match PgStore::open(&db.url) {
        Err(StoreError::Open { reason, .. }) => assert!(reason.contains("newer"), "{reason}"),
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("a newer schema was opened"),
    }
}

#[test]
fn a_sanction_of_a_kind_this_build_does_not_know_is_a_storage_error_not_a_ban() {
    let Some((db, mut s)) = fresh() else { return };
    let mut c = postgres::Client::connect(&db.url, NoTls).expect("connect");
    c.execute(
        "INSERT INTO sanctions (kind, name_key, name, until_ms, reason, by_whom, at_ms)
         VALUES ('shadowban', 'bob', 'bob', NULL, '', 'op', 0)",
        &[],
    )
    .expect("a raw row");
    match s.sanctions(0) {
        Err(e) => assert!(e.to_string().contains("shadowban"), "{e}"),
        Ok(read) => panic!("read as {read:?}"),
    }
}
