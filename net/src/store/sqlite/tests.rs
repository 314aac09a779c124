use super::*;
use confab_engine::frame::ErrorCode;
use std::io::Write as _;
use tempfile::TempDir;

fn n(s: &str) -> Name {
    Name::new(s).unwrap()
}

fn open(dir: &TempDir) -> SqliteStore {
    SqliteStore::open(dir.path(), &SqliteOptions::default()).unwrap()
}

/// A store on a new temp dir with accounts alice, Bob and carol.
fn fresh() -> (TempDir, SqliteStore) {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    for user in ["alice", "Bob", "carol"] {
        assert!(store.create_account(&n(user), "$argon2id$x").unwrap());
    }
    (dir, store)
}

fn send(sender: &str, target: Target, body: &str) -> Write {
    Write::Message(NewMessage {
        sender: n(sender),
        target,
        body: body.to_owned(),
        kind: confab_engine::MessageKind::Message,
        tags: confab_engine::ClientTags::default(),
    })
}

fn room(sender: &str, body: &str) -> Write {
    send(sender, Target::Room, body)
}

fn dm(sender: &str, to: &str, body: &str) -> Write {
    send(sender, Target::User(n(to)), body)
}

fn to_group(sender: &str, group: &str, body: &str) -> Write {
    send(sender, Target::Group(n(group)), body)
}

fn group(op: GroupOp) -> Write {
    Write::Group(op)
}

fn create(g: &str, user: &str) -> Write {
    group(GroupOp::Create {
        group: n(g),
        user: n(user),
    })
}

/// Commits and returns the stored messages, failing on any refusal.
fn commit_ok(store: &mut SqliteStore, batch: &[Write], now_ms: u64) -> Vec<StoredMessage> {
    store
        .commit(batch, now_ms)
        .unwrap()
        .into_iter()
        .filter_map(|w| match w {
            Written::Message(r) => Some(r.unwrap()),
            Written::Group(r) => {
                r.unwrap();
                None
            }
            Written::Offline | Written::Bookmark | Written::ReadMarker(_) => None,
            Written::Duplicate(c) => panic!("unexpected duplicate {c:?}"),
        })
        .collect()
}

fn ids(messages: &[StoredMessage]) -> Vec<MessageId> {
    messages.iter().map(|m| m.id).collect()
}

fn bodies(messages: &[StoredMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.body.as_str()).collect()
}

fn pragma(store: &SqliteStore, name: &str) -> String {
    store
        .conn
        .pragma_query_value(None, name, |r| {
            r.get::<_, rusqlite::types::Value>(0)
                .map(|v| format!("{v:?}"))
        })
        .unwrap()
}

#[test]
fn the_store_is_send() {
    fn is_send<T: Send>() {}
    is_send::<SqliteStore>();
}

#[test]
fn a_fresh_dir_gets_a_wal_database_with_the_asked_sync_and_foreign_keys() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("not-yet");
    let store = SqliteStore::open(&data, &SqliteOptions::default()).unwrap();
    assert_eq!(store.path(), data.join("confab.db"));
    assert!(data.join("confab.db").is_file());
    assert_eq!(pragma(&store, "journal_mode"), r#"Text("wal")"#);
    assert_eq!(pragma(&store, "synchronous"), "Integer(2)");
    assert_eq!(pragma(&store, "foreign_keys"), "Integer(1)");
    assert_eq!(
        pragma(&store, "user_version"),
        format!("Integer({SCHEMA_VERSION})")
    );
    let normal = SqliteOptions {
        sync: Sync::Normal,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(&data, &normal).unwrap();
    assert_eq!(pragma(&store, "synchronous"), "Integer(1)");
}

#[test]
fn ids_strictly_increase_across_batches_and_reopen() {
    let (dir, mut store) = fresh();
    assert_eq!(store.load().unwrap().last_id, MessageId(0));
    let mut all = Vec::new();
    all.extend(ids(&commit_ok(&mut store, &[room("alice", "1")], 10)));
    all.extend(ids(&commit_ok(
        &mut store,
        &[
            room("alice", "2"),
            dm("Bob", "alice", "3"),
            room("carol", "4"),
        ],
        11,
    )));
    drop(store);
    let mut store = open(&dir);
    let last = store.load().unwrap().last_id;
    assert_eq!(Some(&last), all.last());
    all.extend(ids(&commit_ok(
        &mut store,
        &[room("alice", "5"), room("alice", "6")],
        12,
    )));
    assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");
    assert!(all[0] > MessageId(0));
    assert_eq!(store.load().unwrap().last_id, *all.last().unwrap());
}

#[test]
fn a_committed_message_carries_its_id_time_and_canonical_target() {
    let (_dir, mut store) = fresh();
    commit_ok(&mut store, &[create("Devs", "alice")], 1);
    let got = commit_ok(
        &mut store,
        &[dm("alice", "BOB", "hi"), to_group("alice", "devs", "hey")],
        1234,
    );
    assert_eq!(got[0].timestamp_ms, 1234);
    assert_eq!(got[0].sender, n("alice"));
    assert_eq!(
        got[0].target,
        Target::User(n("Bob")),
        "the spelling Bob registered"
    );
    assert_eq!(got[0].body, "hi");
    assert_eq!(
        got[1].target,
        Target::Group(n("Devs")),
        "the spelling the group was created with"
    );
    // History hands back the same.
    let page = store
        .history(&n("bob"), &Target::User(n("Alice")), MessageId(0), 10)
        .unwrap();
    assert_eq!(page.messages, vec![got[0].clone()]);
}

#[test]
fn dm_to_unknown_user_is_refused_and_not_stored() {
    let (_dir, mut store) = fresh();
    let out = store
        .commit(
            &[
                room("alice", "a"),
                dm("alice", "nobody", "b"),
                room("alice", "c"),
            ],
            5,
        )
        .unwrap();
    match &out[1] {
        Written::Message(Err(r)) => {
            assert_eq!(r.code(), ErrorCode::NoSuchUser);
            assert_eq!(r.to_string(), "no user nobody");
        }
        other => panic!("{other:?}"),
    }
    // The rest of the batch is committed, with consecutive ids.
    let (Written::Message(Ok(a)), Written::Message(Ok(c))) = (&out[0], &out[2]) else {
        panic!("{out:?}");
    };
    assert_eq!(c.id, a.id.next());
    let page = store
        .history(&n("alice"), &Target::User(n("nobody")), MessageId(0), 10)
        .unwrap();
    assert!(page.messages.is_empty());
    let page = store
        .history(&n("alice"), &Target::Room, MessageId(0), 10)
        .unwrap();
    assert_eq!(bodies(&page.messages), ["c", "a"]);
}

#[test]
fn a_message_to_an_unknown_group_is_refused_and_not_stored() {
    let (_dir, mut store) = fresh();
    let out = store
        .commit(&[to_group("alice", "ghosts", "boo")], 5)
        .unwrap();
    assert!(
        matches!(&out[0], Written::Message(Err(r)) if r.code() == ErrorCode::NoSuchGroup),
        "{out:?}"
    );
    assert_eq!(store.load().unwrap().last_id, MessageId(0));
}

#[test]
fn history_pages_without_gaps_or_repeats() {
    let (_dir, mut store) = fresh();
    let mut room_ids = Vec::new();
    for batch in 0..10 {
        let writes: Vec<Write> = (0..7)
            .flat_map(|i| {
                [
                    room("alice", &format!("r{batch}.{i}")),
                    dm("alice", "carol", "noise"),
                ]
            })
            .collect();
        let got = commit_ok(&mut store, &writes, batch);
        room_ids.extend(
            got.iter()
                .filter(|m| m.target == Target::Room)
                .map(|m| m.id),
        );
    }
    for limit in [1u16, 3, 7, 70, 100] {
        let mut seen = Vec::new();
        let mut before = MessageId(0);
        loop {
            let page = store
                .history(&n("Bob"), &Target::Room, before, limit)
                .unwrap();
            assert!(page.messages.len() <= usize::from(limit));
            seen.extend(ids(&page.messages));
            if !page.more {
                break;
            }
            before = page.messages.last().unwrap().id;
        }
        let mut want = room_ids.clone();
        want.reverse();
        assert_eq!(seen, want, "limit {limit}");
    }
    // A `before` beyond every id, or far in the future, means "newest".
    let page = store
        .history(&n("Bob"), &Target::Room, MessageId(u64::MAX), 2)
        .unwrap();
    assert_eq!(page.messages[0].id, *room_ids.last().unwrap());
    // An empty page of a non-empty conversation still says whether more exist.
    let page = store
        .history(&n("Bob"), &Target::Room, MessageId(0), 0)
        .unwrap();
    assert!(page.messages.is_empty() && page.more);
}

#[test]
fn history_of_a_dm_holds_both_directions_and_nothing_else() {
    let (_dir, mut store) = fresh();
    commit_ok(
        &mut store,
        &[
            dm("alice", "Bob", "1"),
            dm("Bob", "alice", "2"),
            dm("alice", "carol", "not yours"),
            dm("carol", "Bob", "not yours"),
            room("alice", "not a dm"),
            dm("alice", "bob", "3"),
        ],
        1,
    );
    for (user, other) in [("alice", "BOB"), ("bob", "Alice")] {
        let page = store
            .history(&n(user), &Target::User(n(other)), MessageId(0), 10)
            .unwrap();
        assert_eq!(bodies(&page.messages), ["3", "2", "1"]);
        assert!(!page.more);
    }
}

#[test]
fn group_history_holds_only_that_groups_messages() {
    let (_dir, mut store) = fresh();
    commit_ok(
        &mut store,
        &[create("devs", "alice"), create("ops", "Bob")],
        1,
    );
    commit_ok(
        &mut store,
        &[
            to_group("alice", "devs", "d1"),
            to_group("Bob", "ops", "o1"),
            to_group("alice", "DEVS", "d2"),
        ],
        2,
    );
    let page = store
        .history(&n("alice"), &Target::Group(n("Devs")), MessageId(0), 10)
        .unwrap();
    assert_eq!(bodies(&page.messages), ["d2", "d1"]);
}

#[test]
fn replay_since_returns_exactly_the_missed_messages_in_order() {
    let (_dir, mut store) = fresh();
    commit_ok(
        &mut store,
        &[
            create("devs", "alice"),
            create("ops", "Bob"),
            create("mine", "carol"),
        ],
        1,
    );
    let before = commit_ok(
        &mut store,
        &[room("Bob", "seen"), dm("Bob", "carol", "seen")],
        2,
    );
    let after = before.last().unwrap().id;
    let got = commit_ok(
        &mut store,
        &[
            room("Bob", "room 1"),
            dm("Bob", "carol", "to me"),
            dm("carol", "alice", "from me"),
            dm("alice", "Bob", "not mine"),
            to_group("alice", "devs", "not my group"),
            to_group("carol", "mine", "my group"),
            dm("carol", "carol", "to myself"),
            room("alice", "room 2"),
        ],
        3,
    );
    let upto = got.last().unwrap().id;
    commit_ok(
        &mut store,
        &[room("Bob", "too late"), dm("Bob", "carol", "too late")],
        4,
    );
    let scope = ReplayScope::Since {
        after,
        groups: vec![n("MINE"), n("ghost")],
    };
    let out = store.replay(&n("Carol"), &scope, upto, 100).unwrap();
    assert_eq!(
        bodies(&out.messages),
        [
            "room 1",
            "to me",
            "from me",
            "my group",
            "to myself",
            "room 2"
        ]
    );
    assert!(out.messages.windows(2).all(|w| w[0].id < w[1].id));
    assert!(out.skipped.is_empty());
    // Exactly max fits: nothing skipped.
    let out = store.replay(&n("carol"), &scope, upto, 6).unwrap();
    assert_eq!(out.messages.len(), 6);
    assert!(out.skipped.is_empty());
    // No groups given: the group's message is not included.
    let scope = ReplayScope::Since {
        after,
        groups: vec![],
    };
    let out = store.replay(&n("carol"), &scope, upto, 100).unwrap();
    assert_eq!(
        bodies(&out.messages),
        ["room 1", "to me", "from me", "to myself", "room 2"]
    );
}

#[test]
fn replay_since_over_max_keeps_the_newest_and_reports_the_rest_per_conversation() {
    let (_dir, mut store) = fresh();
    commit_ok(&mut store, &[create("Devs", "carol")], 1);
    let got = commit_ok(
        &mut store,
        &[
            room("Bob", "r1"),               // skipped
            dm("Bob", "carol", "b1"),        // skipped
            to_group("carol", "devs", "g1"), // skipped
            dm("carol", "Bob", "b2"),        // skipped
            room("Bob", "r2"),               // skipped
            dm("alice", "carol", "a1"),      // kept
            room("Bob", "r3"),               // kept
            dm("carol", "bob", "b3"),        // kept
        ],
        2,
    );
    let id = |i: usize| got[i].id;
    let scope = ReplayScope::Since {
        after: MessageId(0),
        groups: vec![n("devs")],
    };
    let out = store.replay(&n("carol"), &scope, id(7), 3).unwrap();
    assert_eq!(bodies(&out.messages), ["a1", "r3", "b3"]);
    assert_eq!(
        out.skipped,
        vec![
            (Target::Room, id(0), id(4), 2),
            (Target::User(n("Bob")), id(1), id(3), 2),
            (Target::Group(n("Devs")), id(2), id(2), 1),
        ]
    );
    // Nothing fits: all of it is skipped.
    let out = store.replay(&n("carol"), &scope, id(7), 0).unwrap();
    assert!(out.messages.is_empty());
    let total: u32 = out.skipped.iter().map(|s| s.3).sum();
    assert_eq!(total, 8);
    assert!(out
        .skipped
        .contains(&(Target::User(n("alice")), id(5), id(5), 1)));
}

#[test]
fn offline_direct_replay_of_a_user_without_direct_conversations_is_empty() {
    let (_dir, mut store) = fresh();
    let got = commit_ok(
        &mut store,
        &[room("alice", "room"), dm("alice", "Bob", "for bob")],
        1,
    );
    let out = store
        .replay(&n("carol"), &ReplayScope::OfflineDirect, got[1].id, 10)
        .unwrap();
    assert_eq!(out, ReplayLoaded::default());
    // Bob has one: the shortcut is only for those without.
    let out = store
        .replay(&n("bob"), &ReplayScope::OfflineDirect, got[1].id, 10)
        .unwrap();
    assert_eq!(bodies(&out.messages), ["for bob"]);
}

#[test]
fn offline_direct_replays_only_dms_after_the_mark() {
    let (_dir, mut store) = fresh();
    let early = commit_ok(&mut store, &[dm("alice", "carol", "seen online")], 1);
    // No mark yet: everything up to `upto`.
    let out = store
        .replay(&n("carol"), &ReplayScope::OfflineDirect, early[0].id, 10)
        .unwrap();
    assert_eq!(bodies(&out.messages), ["seen online"]);
    let out = store.commit(
        &[Write::Offline {
            user: n("CAROL"),
            seen_upto: early[0].id,
        }],
        2,
    );
    assert_eq!(out.unwrap(), vec![Written::Offline]);
    let got = commit_ok(
        &mut store,
        &[
            dm("alice", "carol", "while away 1"),
            room("alice", "room"),
            dm("carol", "alice", "from carol"),
            dm("alice", "Bob", "for bob"),
            dm("Bob", "carol", "while away 2"),
            dm("Bob", "carol", "after upto"),
        ],
        3,
    );
    let upto = got[4].id;
    let out = store
        .replay(&n("carol"), &ReplayScope::OfflineDirect, upto, 10)
        .unwrap();
    assert_eq!(bodies(&out.messages), ["while away 1", "while away 2"]);
    // Capped: the newest, and the rest per sender.
    let out = store
        .replay(&n("carol"), &ReplayScope::OfflineDirect, upto, 1)
        .unwrap();
    assert_eq!(bodies(&out.messages), ["while away 2"]);
    assert_eq!(
        out.skipped,
        vec![(Target::User(n("alice")), got[0].id, got[0].id, 1)]
    );
    // A stale mark never moves it back; an offline user without an account is ignored.
    commit_ok(
        &mut store,
        &[
            Write::Offline {
                user: n("carol"),
                seen_upto: got[0].id,
            },
            Write::Offline {
                user: n("nobody"),
                seen_upto: MessageId(1),
            },
        ],
        4,
    );
    let out = store
        .replay(&n("carol"), &ReplayScope::OfflineDirect, upto, 10)
        .unwrap();
    assert_eq!(bodies(&out.messages), ["while away 2"]);
}

#[test]
fn names_are_unique_ignoring_case() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    assert!(store.create_account(&n("Alice"), "h1").unwrap());
    assert!(!store.create_account(&n("alice"), "h2").unwrap());
    assert!(!store.create_account(&n("ALICE"), "h2").unwrap());
    assert!(store.create_account(&n("bob"), "h3").unwrap());
    assert!(store.create_account(&n("Zed"), "h4").unwrap());
    let account = store.account(&n("aLiCe")).unwrap().unwrap();
    assert_eq!(account.name, n("Alice"));
    assert_eq!(account.password_hash, "h1");
    assert_eq!(store.account(&n("nobody")).unwrap(), None);
    assert_eq!(
        store.accounts().unwrap(),
        vec![n("Alice"), n("bob"), n("Zed")]
    );
    // Another store sees the account at once: it was committed.
    let mut other = open(&dir);
    assert!(other.account(&n("alice")).unwrap().is_some());
}

#[test]
fn accounts_created_together_are_committed_together_and_a_taken_name_is_refused_even_within_the_batch(
) {
    let (dir, mut store) = fresh();
    let batch = [
        (n("Erin"), "h1".to_owned()),
        (n("alice"), "h2".to_owned()),
        (n("dave"), "h3".to_owned()),
        (n("ERIN"), "h4".to_owned()),
    ];
    assert_eq!(
        store.create_accounts(&batch).unwrap(),
        [true, false, true, false]
    );
    let mut other = open(&dir);
    assert_eq!(
        other.account(&n("erin")).unwrap().unwrap().password_hash,
        "h1"
    );
    assert!(other.account(&n("dave")).unwrap().is_some());
}

#[test]
fn passwords_change_and_deleted_accounts_leave_their_groups() {
    let (dir, mut store) = fresh();
    assert!(store.set_password(&n("ALICE"), "new").unwrap());
    assert_eq!(
        store.account(&n("alice")).unwrap().unwrap().password_hash,
        "new"
    );
    assert!(!store.set_password(&n("nobody"), "x").unwrap());
    commit_ok(
        &mut store,
        &[
            create("devs", "alice"),
            group(GroupOp::Join {
                group: n("devs"),
                user: n("bob"),
            }),
            Write::Offline {
                user: n("alice"),
                seen_upto: MessageId(1),
            },
            dm("alice", "Bob", "kept"),
        ],
        1,
    );
    assert!(store.delete_account(&n("Alice")).unwrap());
    assert!(!store.delete_account(&n("alice")).unwrap());
    assert_eq!(store.account(&n("alice")).unwrap(), None);
    drop(store);
    let mut store = open(&dir);
    assert_eq!(
        store.load().unwrap().groups,
        vec![(n("devs"), vec![n("Bob")])]
    );
    // Messages stay; the name can be registered again.
    let page = store
        .history(&n("bob"), &Target::User(n("alice")), MessageId(0), 10)
        .unwrap();
    assert_eq!(bodies(&page.messages), ["kept"]);
    assert!(store.create_account(&n("alice"), "again").unwrap());
}

#[test]
fn group_changes_are_refused_as_the_hub_would() {
    let (_dir, mut store) = fresh();
    let join = |g: &str, u: &str| {
        group(GroupOp::Join {
            group: n(g),
            user: n(u),
        })
    };
    let leave = |g: &str, u: &str| {
        group(GroupOp::Leave {
            group: n(g),
            user: n(u),
        })
    };
    let out = store
        .commit(
            &[
                create("Devs", "alice"),
                create("DEVS", "Bob"),
                join("devs", "bob"),
                join("devs", "BOB"),
                join("ghosts", "bob"),
                leave("ghosts", "bob"),
                leave("devs", "carol"),
                leave("devs", "bob"),
                create("x", "nobody"),
                join("devs", "nobody"),
            ],
            1,
        )
        .unwrap();
    let codes: Vec<Option<ErrorCode>> = out
        .iter()
        .map(|w| match w {
            Written::Group(r) => r.as_ref().err().map(|r| r.code()),
            other => panic!("{other:?}"),
        })
        .collect();
    use ErrorCode::*;
    assert_eq!(
        codes,
        [
            None,
            Some(GroupExists),
            None,
            Some(AlreadyMember),
            Some(NoSuchGroup),
            Some(NoSuchGroup),
            Some(NotAMember),
            None,
            Some(NoSuchUser),
            Some(NoSuchUser),
        ]
    );
    let Written::Group(Err(r)) = &out[1] else {
        unreachable!()
    };
    assert_eq!(r.to_string(), "group Devs already exists");
    assert_eq!(
        store.load().unwrap().groups,
        vec![(n("Devs"), vec![n("alice")])]
    );
}

#[test]
fn groups_and_members_survive_reopen() {
    let (dir, mut store) = fresh();
    commit_ok(
        &mut store,
        &[
            create("Zeta", "carol"),
            create("alpha", "Bob"),
            group(GroupOp::Join {
                group: n("ALPHA"),
                user: n("alice"),
            }),
            group(GroupOp::Join {
                group: n("zeta"),
                user: n("alice"),
            }),
            create("empty", "alice"),
            group(GroupOp::Leave {
                group: n("empty"),
                user: n("alice"),
            }),
        ],
        1,
    );
    let loaded = store.load().unwrap();
    drop(store);
    let mut store = open(&dir);
    assert_eq!(store.load().unwrap(), loaded);
    assert_eq!(
        loaded.groups,
        vec![
            (n("alpha"), vec![n("alice"), n("Bob")]),
            (n("empty"), vec![]),
            (n("Zeta"), vec![n("alice"), n("carol")]),
        ]
    );
}

#[test]
fn a_newer_schema_is_refused_with_a_clear_error() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    store
        .conn
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(store);
    match SqliteStore::open(dir.path(), &SqliteOptions::default()) {
        Err(
            e @ StoreError::TooNew {
                found, supported, ..
            },
        ) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
            let text = e.to_string();
            assert!(
                text.contains("newer than this confab") && text.contains("confab.db"),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[track_caller]
fn assert_open_error(dir: &Path, wanted: &str) {
    match SqliteStore::open(dir, &SqliteOptions::default()) {
        Err(e @ StoreError::Open { .. }) => {
            let text = e.to_string();
            assert!(text.contains(wanted), "{text}");
            assert!(text.contains("confab.db"), "{text}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_corrupt_file_is_refused_with_a_clear_error() {
    for garbage in [&b"this is not a database"[..], &[0x5a; 8192][..]] {
        let dir = TempDir::new().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), garbage).unwrap();
        assert_open_error(dir.path(), "not a SQLite database");
    }
}

#[test]
fn a_damaged_database_is_refused_with_a_clear_error() {
    let (dir, mut store) = fresh();
    let body = "x".repeat(1000);
    let batch: Vec<Write> = (0..200).map(|_| room("alice", &body)).collect();
    commit_ok(&mut store, &batch, 1);
    drop(store); // checkpoints the WAL into the file
    let path = dir.path().join(FILE_NAME);
    let mut bytes = std::fs::read(&path).unwrap();
    let page = 4096;
    assert!(bytes.len() > 20 * page);
    // Scribble over some pages in the middle (not the header).
    for b in &mut bytes[5 * page..15 * page] {
        *b = 0xa5;
    }
    std::fs::write(&path, bytes).unwrap();
    assert_open_error(dir.path(), "corrupt");
}

#[test]
fn a_foreign_sqlite_database_is_refused_with_a_clear_error() {
    let dir = TempDir::new().unwrap();
    let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
    conn.execute_batch("CREATE TABLE t (x)").unwrap();
    drop(conn);
    let bytes = std::fs::read(dir.path().join(FILE_NAME)).unwrap();
    assert_open_error(dir.path(), "not confab's");
    assert_eq!(
        std::fs::read(dir.path().join(FILE_NAME)).unwrap(),
        bytes,
        "left as it was"
    );
}

#[test]
fn a_read_only_file_is_refused_with_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new().unwrap();
    drop(open(&dir));
    let path = dir.path().join(FILE_NAME);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    // Root writes anyway: then there is nothing to refuse.
    if std::fs::OpenOptions::new().write(true).open(&path).is_ok() {
        eprintln!("skipped: this user can write read-only files (root?)");
        return;
    }
    assert_open_error(dir.path(), "read-only");
}

#[test]
fn a_read_only_data_dir_is_refused_with_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    for existing in [false, true] {
        let dir = TempDir::new().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        if existing {
            drop(SqliteStore::open(&data, &SqliteOptions::default()).unwrap());
        }
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o555)).unwrap();
        // Root writes anyway: then there is nothing to refuse.
        if std::fs::File::create(data.join("probe")).is_ok() {
            eprintln!("skipped: this user can write read-only directories (root?)");
        } else {
            assert_open_error(&data, "must be able to write");
        }
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[test]
fn a_data_dir_that_is_a_file_is_refused_with_a_clear_error() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("data");
    std::fs::File::create(&file)
        .unwrap()
        .write_all(b"x")
        .unwrap();
    assert_open_error(&file, "not a directory");
}

#[test]
fn retention_by_count_keeps_the_newest() {
    let (_dir, mut store) = fresh();
    let mut batch = Vec::new();
    for i in 0..10 {
        batch.push(room("alice", &format!("r{i}")));
        batch.push(dm("alice", "Bob", &format!("a{i}")));
        batch.push(dm("Bob", "alice", &format!("b{i}")));
    }
    batch.push(dm("carol", "Bob", "only one"));
    let got = commit_ok(&mut store, &batch, 1);
    let last = got.last().unwrap().id;
    let retention = Retention {
        max_count: Some(3),
        max_age_secs: None,
    };
    assert_eq!(store.apply_retention(&retention, 2).unwrap(), 7 + 17);
    let page = store
        .history(&n("carol"), &Target::Room, MessageId(0), 100)
        .unwrap();
    assert_eq!(bodies(&page.messages), ["r9", "r8", "r7"]);
    assert!(!page.more);
    let page = store
        .history(&n("alice"), &Target::User(n("bob")), MessageId(0), 100)
        .unwrap();
    assert_eq!(bodies(&page.messages), ["b9", "a9", "b8"]);
    let page = store
        .history(&n("carol"), &Target::User(n("bob")), MessageId(0), 100)
        .unwrap();
    assert_eq!(bodies(&page.messages), ["only one"]);
    assert_eq!(store.apply_retention(&retention, 3).unwrap(), 0);
    // Dropping everything keeps the id counter.
    let none = Retention {
        max_count: Some(0),
        max_age_secs: None,
    };
    assert_eq!(store.apply_retention(&none, 3).unwrap(), 7);
    assert_eq!(store.load().unwrap().last_id, last);
    let next = commit_ok(&mut store, &[room("alice", "next")], 4);
    assert_eq!(next[0].id, last.next());
}

#[test]
fn retention_by_age_drops_the_old_and_never_lowers_last_id() {
    let (dir, mut store) = fresh();
    commit_ok(
        &mut store,
        &[room("alice", "old"), dm("alice", "Bob", "old")],
        1_000,
    );
    let young = commit_ok(&mut store, &[room("alice", "young")], 50_000);
    let last = young[0].id;
    let retention = Retention {
        max_count: None,
        max_age_secs: Some(10),
    };
    assert_eq!(store.apply_retention(&retention, 55_000).unwrap(), 2);
    let page = store
        .history(&n("alice"), &Target::Room, MessageId(0), 10)
        .unwrap();
    assert_eq!(bodies(&page.messages), ["young"]);
    assert_eq!(
        store
            .apply_retention(&Retention::default(), 1 << 60)
            .unwrap(),
        0
    );
    assert_eq!(store.apply_retention(&retention, 1 << 60).unwrap(), 1);
    drop(store);
    let mut store = open(&dir);
    assert_eq!(store.load().unwrap().last_id, last);
    assert_eq!(
        commit_ok(&mut store, &[room("alice", "n")], 60_000)[0].id,
        last.next()
    );
}

#[test]
fn a_full_disk_fails_the_whole_batch_and_acknowledges_nothing() {
    let (_dir, mut store) = fresh();
    let before = commit_ok(&mut store, &[room("alice", "before")], 1);
    // Cap the file at its current size: the next pages it needs are "disk full".
    let pages: i64 = store
        .conn
        .pragma_query_value(None, "page_count", |r| r.get(0))
        .unwrap();
    store
        .conn
        .pragma_update(None, "max_page_count", pages)
        .unwrap();
    let body = "x".repeat(4000);
    // The batch starts a direct conversation, which is rolled back too.
    let batch: Vec<Write> = std::iter::once(dm("alice", "carol", "lost"))
        .chain((0..50).map(|_| room("alice", &body)))
        .collect();
    match store.commit(&batch, 2) {
        Err(e @ StoreError::Failed { .. }) => {
            assert!(e.to_string().contains("the disk is full"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    let page = store
        .history(&n("alice"), &Target::Room, MessageId(0), 100)
        .unwrap();
    assert_eq!(
        page.messages, before,
        "nothing of the failed batch is stored"
    );
    // With room again, commits go on with fresh ids.
    store
        .conn
        .pragma_update(None, "max_page_count", 1 << 30)
        .unwrap();
    let after = commit_ok(
        &mut store,
        &[room("alice", "after"), dm("alice", "carol", "kept")],
        3,
    );
    assert!(after[0].id > before[0].id);
    // The conversation is created anew, not remembered from the failed batch.
    let page = store
        .history(&n("carol"), &Target::User(n("alice")), MessageId(0), 10)
        .unwrap();
    assert_eq!(bodies(&page.messages), ["kept"]);
    let scope = ReplayScope::Since {
        after: before[0].id,
        groups: vec![],
    };
    let missed = store.replay(&n("carol"), &scope, after[1].id, 10).unwrap();
    assert_eq!(bodies(&missed.messages), ["after", "kept"]);
}

#[test]
fn a_dm_to_an_account_another_connection_deleted_is_refused() {
    let (dir, mut writer) = fresh();
    commit_ok(&mut writer, &[dm("alice", "carol", "one")], 1);
    let mut admin = open(&dir);
    assert!(admin.delete_account(&n("carol")).unwrap());
    let out = writer.commit(&[dm("alice", "carol", "two")], 2).unwrap();
    assert!(
        matches!(&out[0], Written::Message(Err(r)) if r.code() == ErrorCode::NoSuchUser),
        "{out:?}"
    );
    // And registered again, it is found again.
    assert!(admin.create_account(&n("Carol"), "h").unwrap());
    let out = commit_ok(&mut writer, &[dm("alice", "carol", "three")], 3);
    assert_eq!(out[0].target, Target::User(n("Carol")));
}

#[test]
fn stores_opened_at_once_on_a_fresh_dir_all_succeed() {
    for _ in 0..20 {
        let dir = TempDir::new().unwrap();
        let path = dir.path().to_owned();
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    SqliteStore::open(&path, &SqliteOptions::default()).map(|_| ())
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
    }
}

#[test]
fn a_writer_and_readers_work_at_once() {
    let (dir, mut writer) = fresh();
    let batches = 60u64;
    let readers: Vec<_> = (0..3)
        .map(|r| {
            let path = dir.path().to_owned();
            std::thread::spawn(move || {
                let mut store = SqliteStore::open(&path, &SqliteOptions::default()).unwrap();
                let mut last = 0;
                let mut reads = 0;
                while last < batches * 5 {
                    let page = store
                        .history(&n("carol"), &Target::Room, MessageId(0), 5)
                        .unwrap();
                    let newest = page.messages.first().map_or(0, |m| m.id.0);
                    assert!(
                        newest >= last,
                        "reader {r} went back from {last} to {newest}"
                    );
                    // A snapshot: every page is whole, newest first, contiguous.
                    assert!(page.messages.windows(2).all(|w| w[0].id == w[1].id.next()));
                    let scope = ReplayScope::Since {
                        after: MessageId(0),
                        groups: vec![],
                    };
                    let replay = store
                        .replay(&n("carol"), &scope, MessageId(newest), 1_000)
                        .unwrap();
                    assert_eq!(replay.messages.len() as u64, newest);
                    last = newest;
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for b in 0..batches {
        let batch: Vec<Write> = (0..5).map(|i| room("alice", &format!("{b}.{i}"))).collect();
        commit_ok(&mut writer, &batch, b);
        // Account changes from another store meanwhile.
        if b % 10 == 0 {
            let mut other = open(&dir);
            assert!(other.create_account(&n(&format!("user{b}")), "h").unwrap());
        }
    }
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
}

#[test]
fn history_and_replay_are_index_scans() {
    let (_dir, mut store) = fresh();
    // A group and a direct conversation, so the replay has one of each.
    commit_ok(&mut store, &[create("g", "alice")], 1);
    commit_ok(
        &mut store,
        &[to_group("alice", "g", "hi"), dm("alice", "bob", "hi")],
        2,
    );
    let plan = |sql: &str, params: &[&dyn ToSql]| -> String {
        let mut stmt = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let rows = stmt.query_map(params, |r| r.get::<_, String>(3)).unwrap();
        rows.collect::<Result<Vec<_>, _>>().unwrap().join("\n")
    };
    for newest in [true, false] {
        let history = plan(history_sql(newest), &[&1, &0, &10, &10]);
        assert!(
            history.contains("SEARCH c USING PRIMARY KEY (conv_id=? AND id>? AND id<?)"),
            "{history}"
        );
        assert_scans_no_table(&history);
    }
    let history = plan(history_sql(true), &[&1, &0, &10, &10]);
    assert!(
        history.contains("SEARCH messages USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"),
        "{history}"
    );
    assert_scans_no_table(&history);
    // An account with a floor (a name registered again): the replay's
    // condition on direct messages keeps the range scans.
    store
        .conn
        .execute(
            "UPDATE accounts SET history_from = 1 WHERE name_key = 'alice'",
            [],
        )
        .unwrap();
    let sources = Sources::new(
        &store.conn,
        &n("alice"),
        &ReplayScope::Since {
            after: MessageId(0),
            groups: vec![n("g")],
        },
        10,
    )
    .unwrap()
    .expect("the room is always a source");
    // The room, the group and the direct conversation.
    assert_eq!(sources.ranges.len(), 3, "{:?}", sources.ranges);
    assert!(sources.only.contains("kind <> 2"), "{}", sources.only);
    let mut params: Vec<&dyn ToSql> = sources.params.iter().map(|p| &**p as &dyn ToSql).collect();
    params.push(&5);
    let limit = format!("ORDER BY id DESC LIMIT ?{}", params.len());
    let replay = plan(&sources.union(&["id"], &limit), &params);
    let ranges = replay
        .matches("SEARCH c USING PRIMARY KEY (conv_id=? AND id>? AND id<?)")
        .count();
    assert_eq!(ranges, 3, "{replay}");
    assert_scans_no_table(&replay);
}

/// Scans (and sorts) only ever go over a part's result, at most its LIMIT
/// of rows, or the one row of `message_ids`.
fn assert_scans_no_table(plan: &str) {
    for line in plan.lines() {
        if let Some(scanned) = line.strip_prefix("SCAN ") {
            assert!(
                scanned.starts_with("(subquery-") || scanned == "message_ids",
                "{plan}"
            );
        }
    }
}

#[test]
fn replay_handles_users_in_very_many_groups() {
    let (_dir, mut store) = fresh();
    let names: Vec<String> = (0..MAX_CONV_BRANCHES + 5)
        .map(|i| format!("g{i}"))
        .collect();
    let creates: Vec<Write> = names.iter().map(|g| create(g, "alice")).collect();
    commit_ok(&mut store, &creates, 1);
    let msgs: Vec<Write> = names.iter().map(|g| to_group("alice", g, g)).collect();
    let got = commit_ok(&mut store, &msgs, 2);
    for count in [MAX_CONV_BRANCHES, MAX_CONV_BRANCHES + 5] {
        let scope = ReplayScope::Since {
            after: MessageId(0),
            groups: names[..count].iter().map(|g| n(g)).collect(),
        };
        let out = store
            .replay(&n("alice"), &scope, got.last().unwrap().id, 1000)
            .unwrap();
        assert_eq!(
            bodies(&out.messages),
            names[..count]
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
        );
        let out = store
            .replay(&n("alice"), &scope, got.last().unwrap().id, 2)
            .unwrap();
        assert_eq!(out.messages.len(), 2);
        assert_eq!(out.skipped.len(), count - 2);
    }
}

/// Messages not yet in the conversation index.
fn backlog(store: &SqliteStore) -> i64 {
    store
        .conn
        .query_row(
            &format!("SELECT count(*) FROM messages WHERE id > {INDEXED_UPTO}"),
            [],
            |r| r.get(0),
        )
        .unwrap()
}

/// Every read the store answers, for a fixed set of questions.
fn every_read(store: &mut SqliteStore, newest: MessageId) -> Vec<String> {
    let mut out = Vec::new();
    let targets = [
        Target::Room,
        Target::Group(n("devs")),
        Target::Group(n("ops")),
        Target::User(n("bob")),
        Target::User(n("carol")),
        Target::User(n("alice")),
    ];
    for user in ["alice", "bob", "carol"] {
        for target in &targets {
            for (before, limit) in [(0, 1000), (0, 3), (newest.0 / 2, 4), (newest.0, 2)] {
                let page = store
                    .history(&n(user), target, MessageId(before), limit)
                    .unwrap();
                out.push(format!(
                    "history {user} {target:?} {before} {limit}: {page:?}"
                ));
            }
        }
        for after in [0, newest.0 / 3, newest.0 - 1] {
            for max in [1000, 5, 1] {
                let scope = ReplayScope::Since {
                    after: MessageId(after),
                    groups: vec![n("devs"), n("ops")],
                };
                let got = store.replay(&n(user), &scope, newest, max).unwrap();
                out.push(format!("replay {user} {after} {max}: {got:?}"));
            }
        }
        let got = store
            .replay(&n(user), &ReplayScope::OfflineDirect, newest, 1000)
            .unwrap();
        out.push(format!("offline {user}: {got:?}"));
    }
    out
}

#[test]
fn reads_are_the_same_whether_messages_are_indexed_or_not() {
    let (_dir, mut store) = fresh();
    commit_ok(
        &mut store,
        &[create("devs", "alice"), create("ops", "Bob")],
        1,
    );
    let users = ["alice", "Bob", "carol"];
    let mut newest = MessageId(0);
    for i in 0..60u64 {
        let sender = users[(i % 3) as usize];
        let other = users[((i / 3) % 3) as usize];
        let write = match i % 5 {
            0 | 1 => room(sender, &format!("r{i}")),
            2 => to_group(
                "alice",
                if i % 2 == 0 { "devs" } else { "ops" },
                &format!("g{i}"),
            ),
            _ => dm(sender, other, &format!("d{i}")),
        };
        newest = commit_ok(&mut store, &[write], 10 + i)[0].id;
        if i == 20 {
            let out = store.commit(
                &[Write::Offline {
                    user: n("carol"),
                    seen_upto: newest,
                }],
                40,
            );
            assert_eq!(out.unwrap(), vec![Written::Offline]);
        }
    }
    assert_eq!(backlog(&store), 60);
    let unindexed = every_read(&mut store, newest);

    // Part of it: the oldest are indexed, the rest are not.
    let indexed = index_step(&store.conn, 25).unwrap();
    assert_eq!(indexed, 25);
    assert_eq!(backlog(&store), 35);
    assert_eq!(every_read(&mut store, newest), unindexed);

    store.backlog = 35;
    assert_eq!(store.catch_up(CatchUp::All).unwrap(), 35);
    assert_eq!(backlog(&store), 0);
    assert_eq!(every_read(&mut store, newest), unindexed);
}

#[test]
fn messages_are_indexed_in_spare_time_past_a_minimum_and_always_past_a_maximum() {
    let (dir, mut store) = fresh();
    let batch: Vec<Write> = (0..256).map(|i| room("alice", &i.to_string())).collect();
    let mut committed = 0;
    while committed + 256 <= BACKLOG_SPARE {
        commit_ok(&mut store, &batch, 1);
        committed += 256;
        let below_min = committed < BACKLOG_SPARE;
        assert_eq!(store.catch_up(CatchUp::Due).unwrap(), 0);
        if below_min {
            assert_eq!(store.catch_up(CatchUp::Spare).unwrap(), 0);
        }
    }
    // At the minimum a spare moment indexes one step.
    assert_eq!(
        store.catch_up(CatchUp::Spare).unwrap(),
        BACKLOG_SPARE.min(INDEX_STEP)
    );
    assert_eq!(
        backlog(&store) as u64,
        BACKLOG_SPARE.saturating_sub(INDEX_STEP)
    );
    while committed < BACKLOG_SPARE + BACKLOG_MAX {
        commit_ok(&mut store, &batch, 1);
        committed += 256;
    }
    assert_eq!(store.catch_up(CatchUp::Due).unwrap(), INDEX_STEP);
    // Reopening counts the backlog again.
    let left = backlog(&store) as u64;
    drop(store);
    let mut store = open(&dir);
    assert_eq!(store.backlog, left);
    assert_eq!(store.catch_up(CatchUp::All).unwrap(), left);
    assert_eq!(backlog(&store), 0);
    assert_eq!(store.catch_up(CatchUp::All).unwrap(), 0);
}

#[test]
fn ids_keep_increasing_across_indexing_a_reopen_and_retention() {
    let (dir, mut store) = fresh();
    let first = commit_ok(
        &mut store,
        &[room("alice", "1"), dm("alice", "Bob", "2")],
        1,
    );
    store.catch_up(CatchUp::All).unwrap();
    let second = commit_ok(&mut store, &[room("alice", "3")], 2);
    assert!(second[0].id > first[1].id);
    drop(store);
    let mut store = open(&dir);
    assert_eq!(store.backlog, 1);
    assert_eq!(store.load().unwrap().last_id, second[0].id);
    // Retention indexes first, then deletes everything (count 0 is not
    // allowed, so by age): ids still never go back.
    let retention = Retention {
        max_age_secs: Some(1),
        max_count: None,
    };
    assert_eq!(store.apply_retention(&retention, 1_000_000).unwrap(), 3);
    assert_eq!(backlog(&store), 0);
    assert_eq!(store.load().unwrap().last_id, second[0].id);
    drop(store);
    let mut store = open(&dir);
    let third = commit_ok(&mut store, &[room("alice", "4")], 2_000_000);
    assert!(third[0].id > second[0].id);
}

#[test]
fn a_version_1_database_is_migrated_keeping_its_messages_and_ids() {
    let dir = TempDir::new().unwrap();
    {
        let conn = database_at_version(&dir, 1);
        conn.execute_batch(
            "INSERT INTO accounts (name, name_key, password_hash, created_ms)
                 VALUES ('alice', 'alice', 'h', 0), ('Bob', 'bob', 'h', 0);
             INSERT INTO groups (name, name_key, created_ms) VALUES ('Devs', 'devs', 0);
             INSERT INTO messages (ts_ms, sender, sender_key, kind, target, target_key, conv, body) VALUES
                 (1, 'alice', 'alice', 0, NULL, NULL, 'room', 'r1'),
                 (2, 'Bob', 'bob', 2, 'alice', 'alice', 'dm:alice:bob', 'd2'),
                 (3, 'alice', 'alice', 1, 'Devs', 'devs', 'group:devs', 'g3'),
                 (4, 'alice', 'alice', 2, 'Bob', 'bob', 'dm:alice:bob', 'd4'),
                 (5, 'alice', 'alice', 0, NULL, NULL, 'room', 'r5');
             -- Retention had deleted the newest: its id must not come back.
             DELETE FROM messages WHERE id = 5;",
        )
        .unwrap();
    }
    let mut store = open(&dir);
    assert_eq!(
        pragma(&store, "user_version"),
        format!("Integer({SCHEMA_VERSION})")
    );
    assert_eq!(store.load().unwrap().last_id, MessageId(5));
    let room_page = store
        .history(&n("bob"), &Target::Room, MessageId(0), 10)
        .unwrap();
    assert_eq!(bodies(&room_page.messages), ["r1"]);
    let dms = store
        .history(&n("bob"), &Target::User(n("alice")), MessageId(0), 10)
        .unwrap();
    assert_eq!(bodies(&dms.messages), ["d4", "d2"]);
    let group = store
        .history(&n("alice"), &Target::Group(n("devs")), MessageId(0), 10)
        .unwrap();
    assert_eq!(bodies(&group.messages), ["g3"]);
    let scope = ReplayScope::Since {
        after: MessageId(0),
        groups: vec![],
    };
    let replay = store.replay(&n("bob"), &scope, MessageId(10), 100).unwrap();
    assert_eq!(bodies(&replay.messages), ["r1", "d2", "d4"]);
    let next = commit_ok(&mut store, &[dm("Bob", "alice", "d6")], 6);
    assert_eq!(next[0].id, MessageId(6));
    let dms = store
        .history(&n("alice"), &Target::User(n("bob")), MessageId(0), 10)
        .unwrap();
    assert_eq!(bodies(&dms.messages), ["d6", "d4", "d2"]);
}

#[test]
fn a_version_2_database_is_migrated_keeping_its_messages_journal_and_ids() {
    let dir = TempDir::new().unwrap();
    {
        let conn = database_at_version(&dir, 2);
        conn.execute_batch(
            "INSERT INTO accounts (name, name_key, password_hash, created_ms)
                 VALUES ('alice', 'alice', 'h', 0), ('Bob', 'bob', 'h', 0);
             INSERT INTO conversations (id, key) VALUES (2, 'dm:alice:bob');
             INSERT INTO dm_parties (user_key, conv_id) VALUES ('alice', 2), ('bob', 2);
             INSERT INTO messages (id, ts_ms, sender, sender_key, kind, target, target_key, conv_id, body) VALUES
                 (1, 1, 'alice', 'alice', 0, NULL, NULL, 1, 'r1'),
                 (2, 2, 'Bob', 'bob', 2, 'alice', 'alice', 2, 'd2');
             -- Not yet folded when the old server stopped.
             INSERT INTO journal (id, ts_ms, sender, sender_key, kind, target, target_key, conv_id, body) VALUES
                 (3, 3, 'alice', 'alice', 2, 'Bob', 'bob', 2, 'd3'),
                 (4, 4, 'alice', 'alice', 0, NULL, NULL, 1, 'r4'),
                 (5, 5, 'alice', 'alice', 0, NULL, NULL, 1, 'r5');
             -- Retention had deleted the newest: its id must not come back.
             DELETE FROM journal WHERE id = 5;",
        )
        .unwrap();
    }
    let mut store = open(&dir);
    assert_eq!(
        pragma(&store, "user_version"),
        format!("Integer({SCHEMA_VERSION})")
    );
    assert_eq!(store.load().unwrap().last_id, MessageId(5));
    assert_eq!(store.backlog, 0);
    let room_page = store
        .history(&n("bob"), &Target::Room, MessageId(0), 10)
        .unwrap();
    assert_eq!(bodies(&room_page.messages), ["r4", "r1"]);
    let dms = store
        .history(&n("bob"), &Target::User(n("alice")), MessageId(0), 10)
        .unwrap();
    assert_eq!(bodies(&dms.messages), ["d3", "d2"]);
    let scope = ReplayScope::Since {
        after: MessageId(1),
        groups: vec![],
    };
    let replay = store.replay(&n("bob"), &scope, MessageId(10), 100).unwrap();
    assert_eq!(bodies(&replay.messages), ["d2", "d3", "r4"]);
    let next = commit_ok(&mut store, &[dm("Bob", "alice", "d6")], 6);
    assert_eq!(next[0].id, MessageId(6));
    let tables: i64 = store
        .conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name IN ('journal', 'message_log')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0);
}

#[test]
fn a_batch_of_any_size_stores_each_message_once_with_its_own_columns() {
    let (_dir, mut store) = fresh();
    commit_ok(&mut store, &[create("devs", "alice")], 1);
    // 45 = 32 + 8 + 4 + 1 rows, with a refusal in the middle.
    let mut batch = Vec::new();
    for i in 0..46 {
        batch.push(match i % 4 {
            0 => room("alice", &format!("m{i}")),
            1 => dm("alice", "Bob", &format!("m{i}")),
            2 => to_group("alice", "devs", &format!("m{i}")),
            _ if i == 23 => dm("alice", "nobody", "refused"),
            _ => dm("Bob", "carol", &format!("m{i}")),
        });
    }
    let out = store.commit(&batch, 7).unwrap();
    let stored: Vec<StoredMessage> = out
        .iter()
        .filter_map(|w| match w {
            Written::Message(Ok(m)) => Some(m.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(stored.len(), 45);
    for pair in stored.windows(2) {
        assert_eq!(pair[1].id, pair[0].id.next());
    }
    // Each message reads back as it was answered, wherever it went.
    let last = stored.last().unwrap().id;
    let mut read = Vec::new();
    for user in ["alice", "Bob", "carol"] {
        let scope = ReplayScope::Since {
            after: MessageId(0),
            groups: vec![n("devs")],
        };
        read.extend(store.replay(&n(user), &scope, last, 1000).unwrap().messages);
    }
    read.sort_by_key(|m| m.id);
    read.dedup_by_key(|m| m.id);
    assert_eq!(read, stored);
}

/// A confab database in `dir` at schema `version`, as an older confab left it.
fn database_at_version(dir: &TempDir, version: usize) -> Connection {
    let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
    for migration in &MIGRATIONS[..version] {
        conn.execute_batch(migration).unwrap();
    }
    conn.pragma_update(None, "application_id", APPLICATION_ID)
        .unwrap();
    conn.pragma_update(None, "user_version", version as u32)
        .unwrap();
    conn
}

#[test]
fn history_ranges_read_forwards_backwards_around_and_by_commit_time() {
    use confab_engine::window::{Bound, Range, Window};
    let (_dir, mut store) = fresh();
    // Ten room messages, one batch each at 1000, 2000, ... ms, with a DM
    // between each (another conversation, so ids have gaps in the room's).
    let mut room_ids = Vec::new();
    for i in 0..10u64 {
        let got = commit_ok(
            &mut store,
            &[room("alice", &format!("m{i}")), dm("alice", "bob", "noise")],
            (i + 1) * 1000,
        );
        room_ids.push(got[0].id);
    }
    let bob = n("bob");
    let check = |store: &mut SqliteStore, window: Window, limit: u16, want: &[usize]| {
        let page = store
            .history_window(&bob, &Target::Room, &window, limit)
            .unwrap();
        let mut got = ids(&page.messages);
        got.sort();
        let want: Vec<MessageId> = want.iter().map(|&i| room_ids[i]).collect();
        assert_eq!(got, want, "{window:?} limit {limit}");
    };
    for indexed in [false, true] {
        if indexed {
            store.catch_up(CatchUp::All).unwrap();
        }
        let id = |i: usize| Some(Bound::Id(room_ids[i]));
        let at = |i: u64| Some(Bound::Time((i + 1) * 1000));
        let range = |after, before| Range { after, before };
        // AFTER msgid and timestamp: the oldest first.
        check(
            &mut store,
            Window::Oldest(range(id(3), None)),
            3,
            &[4, 5, 6],
        );
        check(
            &mut store,
            Window::Oldest(range(at(3), None)),
            20,
            &[4, 5, 6, 7, 8, 9],
        );
        // BEFORE by time: the newest below it.
        check(&mut store, Window::Newest(range(None, at(6))), 2, &[4, 5]);
        // LATEST after a point.
        check(
            &mut store,
            Window::Newest(range(id(4), None)),
            20,
            &[5, 6, 7, 8, 9],
        );
        // BETWEEN, both ways, with a limit.
        check(
            &mut store,
            Window::Oldest(range(id(0), id(9))),
            3,
            &[1, 2, 3],
        );
        check(
            &mut store,
            Window::Newest(range(at(0), at(9))),
            3,
            &[6, 7, 8],
        );
        // AROUND: the point itself, and half the rest before it.
        check(&mut store, Window::Around(Bound::Id(room_ids[7])), 1, &[7]);
        check(
            &mut store,
            Window::Around(Bound::Id(room_ids[7])),
            3,
            &[6, 7, 8],
        );
        check(&mut store, Window::Around(Bound::Time(8000)), 3, &[6, 7, 8]);
        // A time before everything, and after everything.
        check(
            &mut store,
            Window::Oldest(range(Some(Bound::Time(0)), None)),
            2,
            &[0, 1],
        );
        check(&mut store, Window::Oldest(range(at(20), None)), 5, &[]);
    }
}
