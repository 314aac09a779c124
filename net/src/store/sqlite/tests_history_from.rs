//! Migration to accounts' `history_from` on a database that already holds
//! a name deleted and registered again: the new account's floor is the
//! newest direct message naming it from before it was made, so it does
//! not read the old account's direct messages after the upgrade either.

use super::*;
use tempfile::TempDir;

fn n(s: &str) -> Name {
    Name::new(s).expect("valid test name")
}

fn open(dir: &TempDir) -> SqliteStore {
    SqliteStore::open(dir.path(), &SqliteOptions::default()).expect("opens")
}

fn dm(store: &mut SqliteStore, ms: u64, from: &str, to: &str, body: &str) -> MessageId {
    crate::store::tests_history_from::say(store, ms, from, Target::User(n(to)), body)
}

fn dm_bodies(store: &mut SqliteStore, user: &str, with: &str) -> Vec<String> {
    let all = confab_engine::window::Window::Newest(confab_engine::window::Range::default());
    crate::store::tests_history_from::dm_bodies(store, user, with, &all)
}

#[test]
fn an_upgraded_database_gives_a_name_registered_again_none_of_the_old_direct_messages() {
    let dir = TempDir::new().expect("temp dir");
    let mut store = open(&dir);
    for u in ["alice", "bob", "carol"] {
        assert!(store.create_account(&n(u), "h").expect("account"));
    }
    dm(&mut store, 1_000, "bob", "alice", "old to alice");
    dm(&mut store, 2_000, "alice", "bob", "old to bob");
    // Some indexed, some not: the migration reads both.
    store.catch_up(CatchUp::All).expect("indexes");
    let newest_old = dm(&mut store, 2_500, "carol", "bob", "to the old bob");
    assert!(store.delete_account(&n("bob")).expect("deletes"));
    assert!(store.create_account(&n("bob"), "h2").expect("again"));
    dm(&mut store, 3_000, "alice", "bob", "new to bob");
    drop(store);
    // As this database was before the migration: no column, the version
    // before it, and creation times on the messages' clock (the test's).
    {
        let conn = Connection::open(dir.path().join(FILE_NAME)).expect("opens");
        conn.execute_batch(
            "ALTER TABLE accounts DROP COLUMN history_from;
             UPDATE accounts SET created_ms = 0;
             UPDATE accounts SET created_ms = 2600 WHERE name_key = 'bob';",
        )
        .expect("as before");
        conn.pragma_update(None, "user_version", SCHEMA_VERSION - 1)
            .expect("version");
    }
    let mut store = open(&dir);
    let floors: Vec<(String, i64)> = store
        .conn
        .prepare("SELECT name_key, history_from FROM accounts ORDER BY name_key")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .expect("floors");
    let expected = [
        ("alice".to_owned(), 0),
        ("bob".to_owned(), sat_i64(newest_old.0)),
        ("carol".to_owned(), 0),
    ];
    assert_eq!(floors, expected);
    assert_eq!(dm_bodies(&mut store, "bob", "alice"), ["new to bob"]);
    assert!(dm_bodies(&mut store, "bob", "carol").is_empty());
    // Alice and carol were never deleted: they keep all of theirs.
    assert_eq!(
        dm_bodies(&mut store, "alice", "bob"),
        ["new to bob", "old to alice", "old to bob"]
    );
    assert_eq!(dm_bodies(&mut store, "carol", "bob"), ["to the old bob"]);
}
