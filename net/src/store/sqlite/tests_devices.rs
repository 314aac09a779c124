//! The SQLite store's protocol version 2 tables: devices, exactly-once
//! send records, bookmarks and read markers.

use super::*;
use confab_engine::device::ClientId;
use confab_engine::effect::{Committed, SendKey};
use tempfile::TempDir;

fn n(s: &str) -> Name {
    Name::new(s).expect("valid test name")
}

fn open(dir: &TempDir) -> SqliteStore {
    SqliteStore::open(dir.path(), &SqliteOptions::default()).expect("opens")
}

/// A store with accounts alice and Bob, and a device "laptop" of alice's.
fn fresh() -> (TempDir, SqliteStore, DeviceId) {
    let dir = TempDir::new().expect("temp dir");
    let mut store = open(&dir);
    for user in ["alice", "Bob"] {
        assert!(store
            .create_account(&n(user), "$argon2id$x")
            .expect("creates"));
    }
    let d = store
        .create_device(&n("alice"), &n("Laptop"), Some([9; 32]), 1_000)
        .expect("creates a device");
    (dir, store, d.record.id)
}

fn once(device: DeviceId, client: u64, body: &str) -> Write {
    let m = NewMessage {
        sender: n("alice"),
        target: Target::Room,
        body: body.to_owned(),
        kind: confab_engine::MessageKind::Message,
        tags: confab_engine::ClientTags::default(),
    };
    Write::MessageOnce(
        m,
        SendKey {
            device,
            client_id: ClientId(client),
        },
    )
}

/// The commit of each write: a new message's, or the original's for a duplicate.
fn outcomes(written: Vec<Written>) -> Vec<(&'static str, Committed)> {
    written
        .into_iter()
        .map(|w| match w {
            Written::Message(Ok(m)) => ("new", m.committed()),
            Written::Duplicate(c) => ("dup", c),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

fn count(store: &SqliteStore, sql: &str) -> i64 {
    store.conn.query_row(sql, [], |r| r.get(0)).expect("counts")
}

#[test]
fn a_repeated_send_is_stored_once_within_a_batch_and_across_batches_and_reopens() {
    let (dir, mut store, laptop) = fresh();
    let first = outcomes(
        store
            .commit(
                &[
                    once(laptop, 1, "a"),
                    once(laptop, 2, "b"),
                    once(laptop, 1, "a"),
                ],
                50,
            )
            .expect("commits"),
    );
    let c1 = Committed {
        id: MessageId(1),
        timestamp_ms: 50,
    };
    let c2 = Committed {
        id: MessageId(2),
        timestamp_ms: 50,
    };
    assert_eq!(first, [("new", c1), ("new", c2), ("dup", c1)]);
    let again = outcomes(store.commit(&[once(laptop, 2, "b")], 60).expect("commits"));
    assert_eq!(again, [("dup", c2)]);
    drop(store);
    let mut store = open(&dir);
    let reopened = outcomes(
        store
            .commit(&[once(laptop, 1, "a"), once(laptop, 3, "c")], 70)
            .expect("commits"),
    );
    let c3 = Committed {
        id: MessageId(3),
        timestamp_ms: 70,
    };
    assert_eq!(reopened, [("dup", c1), ("new", c3)]);
    assert_eq!(count(&store, "SELECT count(*) FROM messages"), 3);
}

#[test]
fn client_ids_at_and_above_two_to_the_63_are_told_apart() {
    let (_dir, mut store, laptop) = fresh();
    let (high, higher) = (1u64 << 63, u64::MAX);
    let written = outcomes(
        store
            .commit(&[once(laptop, high, "a"), once(laptop, higher, "b")], 50)
            .expect("commits"),
    );
    assert_eq!(
        written.iter().map(|w| w.0).collect::<Vec<_>>(),
        ["new", "new"]
    );
    let again = outcomes(
        store
            .commit(&[once(laptop, higher, "b")], 60)
            .expect("commits"),
    );
    assert_eq!(again, [("dup", written[1].1)]);
    assert_eq!(count(&store, "SELECT count(*) FROM messages"), 2);
}

#[test]
fn a_bookmark_is_only_raised_and_a_missing_device_is_no_error() {
    let (_dir, mut store, laptop) = fresh();
    let mark = |device, upto| Write::Bookmark {
        device,
        upto: MessageId(upto),
    };
    let written = store
        .commit(
            &[mark(laptop, 7), mark(laptop, 3), mark(DeviceId(999), 5)],
            1,
        )
        .expect("commits");
    assert_eq!(
        written,
        [Written::Bookmark, Written::Bookmark, Written::Bookmark]
    );
    let d = store
        .device_by_name(&n("ALICE"), &n("laptop"))
        .expect("reads")
        .expect("exists");
    assert_eq!(d.bookmark, MessageId(7));
    assert_eq!(d.user, n("alice"));
    assert_eq!(d.record.name, n("Laptop"));
}

#[test]
fn a_read_marker_keeps_the_max_and_the_least_recently_set_go_beyond_max() {
    let (_dir, mut store, _) = fresh();
    let marker = |target, id| Write::ReadMarker {
        user: n("alice"),
        target,
        id: MessageId(id),
        max: 2,
    };
    let g = Target::Group(n("Devs"));
    let u = Target::User(n("Bob"));
    let written = store
        .commit(&[marker(Target::Room, 10), marker(Target::Room, 4)], 1)
        .expect("commits");
    assert_eq!(
        written,
        [
            Written::ReadMarker(MessageId(10)),
            Written::ReadMarker(MessageId(10))
        ]
    );
    store
        .commit(&[marker(g, 5), marker(u, 6)], 1)
        .expect("commits");
    // The room was set least recently: it goes.
    let got = store.read_markers(&n("alice"), 10).expect("reads");
    assert_eq!(got, [(g, MessageId(5)), (u, MessageId(6))]);
    // Setting the group again (lower) keeps its id and makes it the newest.
    store.commit(&[marker(g, 1)], 1).expect("commits");
    let got = store.read_markers(&n("alice"), 1).expect("reads");
    assert_eq!(got, [(g, MessageId(5))]);
    assert!(store.read_markers(&n("bob"), 10).expect("reads").is_empty());
}

#[test]
fn revoking_a_device_deletes_its_sends_and_deleting_an_account_its_devices() {
    let (_dir, mut store, laptop) = fresh();
    store.commit(&[once(laptop, 1, "a")], 5).expect("commits");
    assert_eq!(count(&store, "SELECT count(*) FROM sends"), 1);
    let gone = store
        .revoke_device(&n("Alice"), &n("LAPTOP"))
        .expect("revokes");
    assert_eq!(gone, Some(laptop));
    assert_eq!(count(&store, "SELECT count(*) FROM sends"), 0);
    assert_eq!(
        store
            .revoke_device(&n("alice"), &n("laptop"))
            .expect("runs"),
        None
    );
    // A send from the revoked device still commits, with no record.
    let written = outcomes(store.commit(&[once(laptop, 1, "a")], 6).expect("commits"));
    assert_eq!(written[0].0, "new");
    let phone = store
        .create_device(&n("alice"), &n("phone"), None, 7)
        .expect("creates");
    assert!(phone.record.id > laptop, "ids are never reused");
    store
        .commit(
            &[Write::ReadMarker {
                user: n("alice"),
                target: Target::Room,
                id: MessageId(1),
                max: 4,
            }],
            8,
        )
        .expect("commits");
    assert!(store.delete_account(&n("alice")).expect("deletes"));
    assert_eq!(count(&store, "SELECT count(*) FROM devices"), 0);
    assert_eq!(count(&store, "SELECT count(*) FROM read_markers"), 0);
}

#[test]
fn prune_sends_forgets_by_age_and_beyond_the_newest_per_device() {
    let (_dir, mut store, laptop) = fresh();
    let phone = store
        .create_device(&n("alice"), &n("phone"), None, 1)
        .expect("creates")
        .record
        .id;
    store
        .commit(&[once(laptop, 1, "old")], 100)
        .expect("commits");
    let newer: Vec<Write> = (2..=5).map(|c| once(laptop, c, "new")).collect();
    store.commit(&newer, 200).expect("commits");
    store.commit(&[once(phone, 1, "p")], 200).expect("commits");
    // Older than 150: laptop's first; beyond 2 per device: laptop's 2 and 3.
    assert_eq!(store.prune_sends(150, 2).expect("prunes"), 3);
    let left: Vec<(i64, i64)> = store
        .conn
        .prepare("SELECT device, client_id FROM sends ORDER BY device, client_id")
        .expect("prepares")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("queries")
        .collect::<Result<_, _>>()
        .expect("reads");
    let (l, p) = (db(laptop), db(phone));
    assert_eq!(left, [(l, 4), (l, 5), (p, 1)]);
    assert_eq!(store.prune_sends(0, 10).expect("prunes"), 0);
    // A pruned key is a new send again.
    let again = outcomes(
        store
            .commit(&[once(laptop, 1, "old")], 300)
            .expect("commits"),
    );
    assert_eq!(again[0].0, "new");
}

fn db(d: DeviceId) -> i64 {
    i64::try_from(d.0).expect("small id")
}

#[test]
fn the_database_holds_the_blake3_hash_of_a_token_and_never_the_token() {
    let (dir, mut store, _) = fresh();
    let token: [u8; 32] = std::array::from_fn(|i| 0xa0 ^ u8::try_from(i).expect("small"));
    let hash: [u8; 32] = blake3::hash(&token).into();
    let d = store
        .create_device(&n("Bob"), &n("ci"), Some(hash), 5)
        .expect("creates");
    drop(store);
    let conn = Connection::open(dir.path().join(FILE_NAME)).expect("opens");
    let stored: Vec<u8> = conn
        .query_row(
            "SELECT token_hash FROM devices WHERE id = ?1",
            [db(d.record.id)],
            |r| r.get(0),
        )
        .expect("reads");
    assert_eq!(stored, hash);
    assert_ne!(stored, token);
    drop(conn);
    let mut store = open(&dir);
    let found = store.device_by_token(&hash).expect("reads").expect("found");
    assert_eq!((found.user, found.record.name), (n("Bob"), n("ci")));
    drop(store);
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).expect("lists") {
        bytes.extend(std::fs::read(entry.expect("entry").path()).expect("reads"));
    }
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(has(&hash), "the hash is stored");
    assert!(!has(&token), "the token is not");
}
