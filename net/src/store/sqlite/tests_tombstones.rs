//! The SQLite store's deleted messages (migration 5 -> 6): a tombstone
//! keeps everything but the body, history and replay name its deleter,
//! and it outlives reopening the database.

use super::*;
use confab_engine::effect::ReplayScope;
use tempfile::TempDir;

fn n(s: &str) -> Name {
    Name::new(s).expect("valid test name")
}

fn open(dir: &TempDir) -> SqliteStore {
    SqliteStore::open(dir.path(), &SqliteOptions::default()).expect("opens")
}

fn say(store: &mut SqliteStore, body: &str) -> MessageId {
    let m = NewMessage {
        sender: n("bob"),
        target: Target::Room,
        body: body.to_owned(),
        kind: confab_engine::MessageKind::Message,
        tags: confab_engine::ClientTags::default(),
    };
    match store.commit(&[Write::Message(m)], 5_000).expect("commits")[0].clone() {
        Written::Message(Ok(m)) => m.id,
        other => panic!("not stored: {other:?}"),
    }
}

#[test]
fn a_deleted_message_keeps_a_tombstone_that_history_and_replay_name_and_a_reopen_keeps() {
    let dir = TempDir::new().expect("temp dir");
    let mut store = open(&dir);
    store
        .create_account(&n("bob"), "$argon2id$x")
        .expect("creates");
    let first = say(&mut store, "first");
    let spam = say(&mut store, "spam");
    let last = say(&mut store, "last");

    let gone = store
        .delete_message(spam, &n("carol"), "spam", 9_000)
        .expect("deletes")
        .expect("the message exists");
    assert_eq!(
        (gone.id, gone.body.as_str(), gone.sender),
        (spam, "", n("bob"))
    );
    let again = store
        .delete_message(spam, &n("dave"), "twice", 9_500)
        .expect("deletes")
        .expect("a tombstone is still a message");
    assert_eq!(again.body, "");
    assert_eq!(
        store
            .delete_message(MessageId(99), &n("carol"), "", 9_000)
            .expect("looks"),
        None
    );

    drop(store);
    let mut store = open(&dir);
    let page = store
        .history(&n("bob"), &Target::Room, MessageId(0), 10)
        .expect("loads");
    let bodies: Vec<&str> = page.messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["last", "", "first"]);
    assert_eq!(
        page.deleted,
        vec![(spam, n("carol"))],
        "the first deleter is kept"
    );

    let scope = ReplayScope::Since {
        after: first,
        groups: Vec::new(),
    };
    let replay = store.replay(&n("bob"), &scope, last, 100).expect("loads");
    let ids: Vec<MessageId> = replay.messages.iter().map(|m| m.id).collect();
    assert_eq!(ids, [spam, last]);
    assert_eq!(replay.deleted, vec![(spam, n("carol"))]);

    let audit = store.audit_log(10).expect("reads");
    let lines: Vec<(&str, &str, &str)> = audit
        .iter()
        .map(|e| (e.actor.as_str(), e.action.as_str(), e.reason.as_str()))
        .collect();
    assert_eq!(
        lines,
        [("carol", "delete", "spam")],
        "a repeat writes no second line"
    );
}
