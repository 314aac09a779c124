//! CHATHISTORY TARGETS' reading, one check run against SQLite here and
//! against PostgreSQL in `postgres::tests`: both stores must list the
//! same conversations, as the engine's memory store does.

use confab_engine::effect::{GroupOp, Latest, NewMessage};
use confab_engine::frame::Target;
use confab_engine::Name;

use crate::store::{Store, Write, Written};

fn n(s: &str) -> Name {
    Name::new(s).expect("valid test name")
}

fn say(store: &mut dyn Store, ms: u64, sender: &str, target: Target) {
    let m = NewMessage {
        sender: n(sender),
        target,
        body: format!("at {ms}"),
        kind: confab_engine::MessageKind::Message,
        tags: confab_engine::ClientTags::default(),
    };
    let out = store.commit(&[Write::Message(m)], ms).expect("commits");
    assert!(matches!(out[..], [Written::Message(Ok(_))]), "{out:?}");
}

fn listed(got: &[Latest]) -> Vec<(String, u64)> {
    got.iter()
        .map(|l| {
            let t = match &l.target {
                Target::Room => "room".to_owned(),
                Target::Group(g) => format!("#{g}"),
                Target::User(u) => u.to_string(),
            };
            (t, l.timestamp_ms)
        })
        .collect()
}

/// Alice reads the room, #team (she is in it, not in #other), and her
/// DMs with Bob and Carol (named by the other party whoever wrote last);
/// not Bob and Carol's DM. Each conversation counts by its latest
/// message: bounds are exclusive, the earliest come first.
pub(crate) fn lists_conversations_by_latest_message(store: &mut dyn Store) {
    for u in ["Alice", "bob", "carol"] {
        assert!(store.create_account(&n(u), "hash").expect("account"));
    }
    let create = |group: &str, user: &str| {
        Write::Group(GroupOp::Create {
            group: n(group),
            user: n(user),
        })
    };
    store
        .commit(&[create("team", "Alice"), create("other", "bob")], 500)
        .expect("groups");
    say(store, 1_000, "bob", Target::Room);
    say(store, 2_000, "alice", Target::User(n("bob")));
    say(store, 3_000, "Alice", Target::Group(n("team")));
    say(store, 3_500, "bob", Target::Group(n("other")));
    say(store, 4_000, "carol", Target::User(n("alice")));
    say(store, 5_000, "bob", Target::User(n("carol")));
    let alice = n("Alice");
    let groups = [n("team")];
    let all = store
        .history_targets(&alice, &groups, (0, u64::MAX), 100)
        .expect("lists");
    let expected = [
        ("room", 1_000),
        ("bob", 2_000),
        ("#team", 3_000),
        ("carol", 4_000),
    ];
    let expected: Vec<(String, u64)> = expected
        .iter()
        .map(|(t, ms)| (t.to_string(), *ms))
        .collect();
    assert_eq!(listed(&all), expected);
    let inner = store
        .history_targets(&alice, &groups, (1_000, 4_000), 100)
        .expect("lists");
    assert_eq!(listed(&inner), expected[1..3]);
    let two = store
        .history_targets(&alice, &groups, (0, u64::MAX), 2)
        .expect("lists");
    assert_eq!(listed(&two), expected[..2]);
    // Bob answers: that DM's latest message is now after 4500.
    say(store, 6_000, "bob", Target::User(n("Alice")));
    let before = store
        .history_targets(&alice, &groups, (0, 4_500), 100)
        .expect("lists");
    let names: Vec<String> = listed(&before).into_iter().map(|(t, _)| t).collect();
    assert_eq!(names, ["room", "#team", "carol"]);
}

#[test]
fn sqlite_lists_conversations_by_latest_message() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let options = crate::store::sqlite::SqliteOptions::default();
    let mut store = crate::store::sqlite::SqliteStore::open(dir.path(), &options).expect("opens");
    lists_conversations_by_latest_message(&mut store);
}
