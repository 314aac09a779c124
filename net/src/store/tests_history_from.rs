//! A name deleted and registered again is a new person: one check run
//! against SQLite and the memory store here, and against PostgreSQL in
//! `postgres::tests`. Direct conversations are keyed by the parties'
//! names, so without the account's `history_from` the new account would
//! read, be replayed and be listed the old one's direct messages.

use confab_engine::effect::{NewMessage, ReplayScope};
use confab_engine::frame::Target;
use confab_engine::window::{Bound, Range, Window};
use confab_engine::{MessageId, Name};

use crate::store::{Store, Write, Written};

fn n(s: &str) -> Name {
    Name::new(s).expect("valid test name")
}

/// Commits one message at `ms`; its id.
pub(crate) fn say(
    store: &mut dyn Store,
    ms: u64,
    sender: &str,
    target: Target,
    body: &str,
) -> MessageId {
    let m = NewMessage {
        sender: n(sender),
        target,
        body: body.to_owned(),
        kind: confab_engine::MessageKind::Message,
        tags: confab_engine::ClientTags::default(),
    };
    match &store.commit(&[Write::Message(m)], ms).expect("commits")[..] {
        [Written::Message(Ok(c))] => c.id,
        other => panic!("not committed: {other:?}"),
    }
}

/// The bodies `user` reads in `window` of their DMs with `with`, sorted.
pub(crate) fn dm_bodies(
    store: &mut dyn Store,
    user: &str,
    with: &str,
    window: &Window,
) -> Vec<String> {
    let page = store
        .history_window(&n(user), &Target::User(n(with)), window, 50)
        .expect("reads");
    let mut bodies: Vec<String> = page.messages.into_iter().map(|m| m.body).collect();
    bodies.sort();
    bodies
}

fn replayed(store: &mut dyn Store, user: &str, scope: &ReplayScope) -> Vec<String> {
    let got = store
        .replay(&n(user), scope, MessageId(u64::MAX >> 1), 100)
        .expect("replays");
    got.messages.into_iter().map(|m| m.body).collect()
}

pub(crate) fn a_name_registered_again_reads_none_of_the_old_accounts_direct_messages(
    store: &mut dyn Store,
) {
    for u in ["alice", "bob"] {
        assert!(store.create_account(&n(u), "hash").expect("account"));
    }
    say(
        store,
        1_000,
        "bob",
        Target::User(n("alice")),
        "old to alice",
    );
    let old = say(store, 2_000, "alice", Target::User(n("bob")), "old to bob");
    say(store, 3_000, "alice", Target::Room, "room before");
    assert!(store.delete_account(&n("bob")).expect("deletes"));
    // Through the batched path the server's registrations take.
    let again = store
        .create_accounts(&[(n("Bob"), "hash2".to_owned())])
        .expect("again");
    assert_eq!(again, [true]);

    let all = Window::Newest(Range::default());
    let oldest = Window::Oldest(Range::default());
    let around = Window::Around(Bound::Id(old));
    for window in [&all, &oldest, &around] {
        assert!(
            dm_bodies(store, "bob", "alice", window).is_empty(),
            "{window:?}"
        );
    }
    let since = ReplayScope::Since {
        after: MessageId(0),
        groups: Vec::new(),
    };
    // The room is anyone's to read: it is replayed, the DMs are not.
    assert_eq!(replayed(store, "bob", &since), ["room before"]);
    assert!(replayed(store, "bob", &ReplayScope::OfflineDirect).is_empty());
    let listed = store
        .history_targets(&n("bob"), &[], (0, u64::MAX), 10)
        .expect("lists");
    assert_eq!(listed.len(), 1, "only the room: {listed:?}");
    assert_eq!(listed[0].target, Target::Room);
    // Alice was a party to that conversation: she still reads it.
    assert_eq!(
        dm_bodies(store, "alice", "bob", &all),
        ["old to alice", "old to bob"]
    );

    say(store, 4_000, "alice", Target::User(n("bob")), "new to bob");
    assert_eq!(dm_bodies(store, "bob", "alice", &all), ["new to bob"]);
    assert_eq!(dm_bodies(store, "bob", "alice", &oldest), ["new to bob"]);
    assert_eq!(
        replayed(store, "bob", &ReplayScope::OfflineDirect),
        ["new to bob"]
    );
    assert_eq!(
        replayed(store, "bob", &since),
        ["room before", "new to bob"]
    );
    let listed = store
        .history_targets(&n("bob"), &[], (0, u64::MAX), 10)
        .expect("lists");
    let targets: Vec<&Target> = listed.iter().map(|l| &l.target).collect();
    assert_eq!(targets, [&Target::Room, &Target::User(n("alice"))]);
}

#[test]
fn sqlite_gives_a_name_registered_again_none_of_the_old_direct_messages() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let options = crate::store::sqlite::SqliteOptions::default();
    let mut store = crate::store::sqlite::SqliteStore::open(dir.path(), &options).expect("opens");
    a_name_registered_again_reads_none_of_the_old_accounts_direct_messages(&mut store);
}

#[test]
fn the_memory_store_gives_a_name_registered_again_none_of_the_old_direct_messages() {
    let mut store = confab_engine::testing::MemoryStore::default();
    a_name_registered_again_reads_none_of_the_old_accounts_direct_messages(&mut store);
}
