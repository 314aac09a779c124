//! Durability: what the server stored survives a restart on the same data
//! dir (accounts, messages, offline DMs, groups), resuming and paging work
//! across it, the lockout lets go in time, and `confab-server user ...`
//! manages the accounts of a server with closed registration.

use std::thread;
use std::time::{Duration, Instant};

use confab::{Connection, ConnectionError, LoginOptions, ServerError};
use confab_engine::frame::ErrorCode;
use confab_engine::{MessageId, Name};
use serde_json::{json, Value};

use crate::harness::{password, Listener, Run, Server, WAIT};

fn name(s: &str) -> Name {
    Name::new(s).expect("a valid test name")
}

/// The `message` lines of a listener or a command, as (id, from, to, body).
fn messages(lines: &[Value]) -> Vec<(u64, String, String, String)> {
    lines
        .iter()
        .filter(|v| v["event"] == "message")
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            (v["id"].as_u64().unwrap_or(0), s("from"), s("to"), s("body"))
        })
        .collect()
}

/// The lines a listener got before its `caught_up` (the replay).
fn before_caught_up(l: &Listener) -> &[Value] {
    let at = l
        .seen()
        .iter()
        .position(|v| v["event"] == "caught_up")
        .expect("caught up");
    &l.seen()[..at]
}

#[track_caller]
fn refused(run: &Run, code: &str) {
    assert_eq!(run.code, Some(2), "expected {code}: {run:?}");
    assert!(run.stderr.contains(code), "expected {code}: {run:?}");
}

/// One login attempt through the library: the connection on success, the
/// refusal otherwise.
fn try_login(server: &Server, user: &str, pw: &str) -> Result<Connection, ServerError> {
    let mut c = server.connect();
    let options = LoginOptions {
        resume_after: MessageId(0),
        roster: false,
    };
    match c.login(name(user), pw, options, WAIT) {
        Ok(_) => Ok(c),
        Err(ConnectionError::Refused(e)) => Err(e),
        Err(e) => panic!("logging in {user}: {e}\nserver log:\n{}", server.log()),
    }
}

/// A login attempt that waits out LOCKED_OUT (every failed login from this
/// address delays the next ones) and returns the first other answer.
#[track_caller]
fn login_outcome(server: &Server, user: &str, pw: &str) -> Result<Connection, ServerError> {
    let deadline = Instant::now() + WAIT;
    loop {
        match try_login(server, user, pw) {
            Err(e) if e.code == ErrorCode::LockedOut => {
                assert!(
                    Instant::now() < deadline,
                    "{user} still locked out after {WAIT:?}: {e}"
                );
                // Polling the lockout's end; the server says how long.
                let wait = u64::from(e.retry_after_ms).clamp(10, 200);
                thread::sleep(Duration::from_millis(wait));
            }
            other => return other,
        }
    }
}

#[test]
fn an_account_survives_a_restart_and_a_wrong_password_is_still_refused() {
    let server = Server::start();
    let before = server.client("alice").send("all", "before the restart");

    let server = server.restart();
    let alice = server.client("alice").without_register();
    let after = alice.send("all", "after the restart");
    assert!(
        after > before,
        "ids go on increasing: {before} then {after}"
    );
    let run = alice
        .with_password("not-the-password")
        .run(&["send", "--to", "all", "never stored"]);
    refused(&run, "BAD_CREDENTIALS");

    // The name is still taken, in any case.
    let mut c = server.connect();
    match c.register(name("ALICE"), "another-password", WAIT) {
        Err(ConnectionError::Refused(e)) => assert_eq!(e.code, ErrorCode::NameTaken, "{e}"),
        other => panic!("registering ALICE after the restart: {other:?}"),
    }
    let history = server
        .client("alice")
        .without_register()
        .run(&["history", "--to", "all"]);
    let bodies: Vec<String> = messages(&history.json_lines())
        .into_iter()
        .map(|m| m.3)
        .collect();
    assert_eq!(bodies, ["before the restart", "after the restart"]);
}

#[test]
fn repeated_wrong_passwords_lock_an_account_out_until_the_lockout_ends() {
    let server = Server::start_with(&["--lockout-after", "3", "--lockout-secs", "1"]);
    server.register("alice", &password("alice"));

    // Three failures; the second already delays the third (answered
    // LOCKED_OUT while it lasts, without counting).
    let mut failures = 0;
    let mut delayed = 0;
    let deadline = Instant::now() + WAIT;
    let locked_at = loop {
        match try_login(&server, "alice", "guess") {
            Err(e) if e.code == ErrorCode::BadCredentials => {
                failures += 1;
                if failures == 3 {
                    assert!(e.retry_after_ms > 0, "the third failure locks: {e:?}");
                    break Instant::now();
                }
            }
            Err(e) if e.code == ErrorCode::LockedOut => {
                assert!(e.retry_after_ms > 0, "{e:?}");
                delayed += 1;
                thread::sleep(Duration::from_millis(u64::from(e.retry_after_ms).min(200)));
            }
            other => panic!("a wrong password: {:?}", other.map(|_| "LOGIN_OK")),
        }
        assert!(
            Instant::now() < deadline,
            "no third failure within {WAIT:?}"
        );
    };
    assert!(delayed > 0, "the second failure delayed the next attempt");

    // Locked: even the right password is refused, with a time to come back.
    let e = try_login(&server, "alice", &password("alice"))
        .expect_err("the right password is refused while locked out");
    assert_eq!(e.code, ErrorCode::LockedOut, "{e}");
    assert!(
        (1..=1000).contains(&e.retry_after_ms),
        "retry after {} ms, the lockout is 1 s",
        e.retry_after_ms
    );

    // Released: the right password works again once the lockout is over.
    let mut c = login_outcome(&server, "alice", &password("alice"))
        .unwrap_or_else(|e| panic!("after the lockout: {e}"));
    assert!(
        locked_at.elapsed() >= Duration::from_millis(900),
        "the lockout ended early: after {:?}",
        locked_at.elapsed()
    );
    c.send(confab_engine::Target::Room, "back in", WAIT)
        .expect("a released account can chat");
}

#[test]
fn direct_messages_to_an_offline_user_are_delivered_in_order_at_the_next_login() {
    let server = Server::start();
    server.register("bob", &password("bob"));
    let alice = server.client("alice");
    let mut sent = Vec::new();
    let run = alice.run_with_stdin(&["send", "--to", "@bob", "-"], Some("dm 1\ndm 2\ndm 3"));
    sent.extend(run.ok().lines().map(|l| l.parse::<u64>().expect("an id")));
    alice.send("all", "a room message is not offline delivery");

    let server = server.restart();
    let alice = server.client("alice").without_register();
    let run = alice.run_with_stdin(&["send", "--to", "@bob", "-"], Some("dm 4\ndm 5"));
    sent.extend(run.ok().lines().map(|l| l.parse::<u64>().expect("an id")));
    assert_eq!(sent.len(), 5);

    let bob = server.client("bob").without_register();
    let mut l = bob.listen_with(&["--no-roster"]);
    l.wait_for("caught_up", |v| v["event"] == "caught_up");
    let expected: Vec<(u64, String, String, String)> = sent
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let body = format!("dm {}", i + 1);
            (*id, "alice".into(), "@bob".into(), body)
        })
        .collect();
    assert_eq!(messages(before_caught_up(&l)), expected);
    l.kill();

    // Delivered once: the next login has nothing waiting.
    let mut again = bob.listen_with(&["--no-roster"]);
    again.wait_for("caught_up", |v| v["event"] == "caught_up");
    alice.send("@bob", "barrier");
    again.wait_message("barrier");
    assert_eq!(
        messages(again.seen())
            .into_iter()
            .map(|m| m.3)
            .collect::<Vec<_>>(),
        ["barrier"],
        "the offline DMs came again"
    );
}

#[test]
fn a_client_resuming_after_its_last_id_gets_exactly_what_it_missed_across_a_restart() {
    let server = Server::start();
    for user in ["alice", "bob", "carol"] {
        server.register(user, &password(user));
    }
    let (alice, bob, carol) = (
        server.client("alice"),
        server.client("bob"),
        server.client("carol"),
    );
    alice.run(&["group", "create", "dev"]).ok();
    bob.run(&["group", "join", "dev"]).ok();
    carol.run(&["group", "create", "ops"]).ok();

    let mut l = bob.listen_with(&["--no-roster"]);
    l.wait_for("caught_up", |v| v["event"] == "caught_up");
    alice.send("all", "seen 1");
    let last = alice.send("#dev", "seen 2");
    l.wait_message("seen 2");
    l.kill();

    // While bob is away: what he may see, and what he may not.
    let mut expected = Vec::new();
    let mut away = |who: &crate::harness::Client<'_>, to: &str, body: &str, his: bool| {
        let id = who.send(to, body);
        if his {
            expected.push((id, body.to_owned()));
        }
    };
    away(&alice, "all", "away room 1", true);
    away(&alice, "#dev", "away dev 1", true);
    away(&carol, "@bob", "away dm 1", true);
    away(&alice, "@carol", "not his dm", false);
    away(&carol, "#ops", "not his group", false);

    let server = server.restart();
    let (alice, bob, carol) = (
        server.client("alice").without_register(),
        server.client("bob").without_register(),
        server.client("carol").without_register(),
    );
    for (who, to, body, his) in [
        (&bob, "all", "his own, from another session", true),
        (&carol, "#ops", "not his group 2", false),
        (&alice, "#dev", "away dev 2", true),
        (&bob, "@alice", "his own dm", true),
        (&carol, "@bob", "away dm 2", true),
        (&alice, "all", "away room 2", true),
    ] {
        let id = who.send(to, body);
        if his {
            expected.push((id, body.to_owned()));
        }
    }
    let newest = alice.send("@carol", "not his dm 2");

    let mut l = bob.listen_with(&["--no-roster", "--resume-after", &last.to_string()]);
    let caught_up = l.wait_for("caught_up", |v| v["event"] == "caught_up");
    assert_eq!(caught_up["last_id"], newest);
    let replayed: Vec<(u64, String)> = messages(before_caught_up(&l))
        .into_iter()
        .map(|m| (m.0, m.3))
        .collect();
    assert_eq!(replayed, expected, "exactly the missed ones, in id order");

    // Live ones follow, and nothing comes twice.
    let live = alice.send("all", "live");
    l.wait_message("live");
    let mut ids: Vec<u64> = messages(l.seen()).into_iter().map(|m| m.0).collect();
    assert_eq!(ids.last(), Some(&live));
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "a message came twice: {:?}", l.seen());
}

#[test]
fn history_pages_through_many_messages_across_a_restart_without_gaps_or_repeats() {
    const N: usize = 300;
    const PAGE: usize = 37;
    let fast = ["--msg-rate", "10000", "--msg-burst", "10000"];
    let server = Server::start_with(&fast);
    let body = |i: usize| format!("message {i:03}");
    let send = |server: &Server, range: std::ops::Range<usize>| -> Vec<u64> {
        let lines: Vec<String> = range.map(body).collect();
        let run = server
            .client("alice")
            .run_with_stdin(&["send", "--to", "all", "-"], Some(&lines.join("\n")));
        run.ok()
            .lines()
            .map(|l| l.parse().expect("an id per line"))
            .collect()
    };
    let mut ids = send(&server, 0..N / 2);
    let server = server.restart();
    ids.extend(send(&server, N / 2..N));
    assert_eq!(ids.len(), N);

    let reader = server.client("bob");
    let mut got: Vec<(u64, String)> = Vec::new();
    let mut before: Option<u64> = None;
    let mut pages = 0;
    loop {
        let limit = PAGE.to_string();
        let mut args = vec!["history", "--to", "all", "--limit", &limit];
        let b = before.map(|b| b.to_string());
        if let Some(b) = &b {
            args.extend(["--before", b]);
        }
        let lines = reader.run(&args).json_lines();
        pages += 1;
        let page: Vec<(u64, String)> = messages(&lines).into_iter().map(|m| (m.0, m.3)).collect();
        let end = lines.last().expect("a history_end line");
        assert_eq!(end["event"], "history_end", "{lines:?}");
        assert!(page.len() <= PAGE, "a page of {} > {PAGE}", page.len());
        assert!(page.windows(2).all(|w| w[0].0 < w[1].0), "{page:?}");
        if let (Some(b), Some(newest)) = (before, page.last()) {
            assert!(newest.0 < b, "page reaches {} >= before {b}", newest.0);
        }
        // Older pages go in front.
        got.splice(0..0, page);
        if end["more"] != json!(true) {
            break;
        }
        before = Some(end["next_before"].as_u64().expect("next_before"));
        assert!(pages <= N, "paging does not end");
    }
    let expected: Vec<(u64, String)> = ids.into_iter().zip((0..N).map(body)).collect();
    assert_eq!(got.len(), N, "pages: {pages}");
    assert_eq!(got, expected);
    assert_eq!(pages, N.div_ceil(PAGE));
}

#[test]
fn groups_and_their_members_survive_a_restart() {
    let server = Server::start();
    for user in ["alice", "bob", "carol"] {
        server.register(user, &password(user));
    }
    let (alice, bob, carol) = (
        server.client("alice"),
        server.client("bob"),
        server.client("carol"),
    );
    alice.run(&["group", "create", "dev"]).ok();
    alice.run(&["group", "create", "ops"]).ok();
    bob.run(&["group", "join", "dev"]).ok();
    carol.run(&["group", "join", "dev"]).ok();
    carol.run(&["group", "leave", "dev"]).ok();
    let first = alice.send("#dev", "before the restart");

    let server = server.restart();
    let (alice, bob, carol) = (
        server.client("alice").without_register(),
        server.client("bob").without_register(),
        server.client("carol").without_register(),
    );
    let groups = carol.run(&["group", "list"]).json_lines();
    assert_eq!(
        groups,
        [
            json!({"event": "group", "name": "dev", "members": 2, "member": false}),
            json!({"event": "group", "name": "ops", "members": 1, "member": false}),
        ]
    );
    let groups = bob.run(&["group", "list"]).json_lines();
    assert_eq!(groups[0]["member"], true, "{groups:?}");

    // Members still get the group's messages; a former member cannot send.
    let mut alice_l = alice.listen_with(&["--no-roster"]);
    alice_l.wait_for("caught_up", |v| v["event"] == "caught_up");
    let second = bob.send("#dev", "after the restart");
    assert_eq!(alice_l.wait_message("after the restart")["id"], second);
    refused(
        &carol.run(&["send", "--to", "#dev", "let me in"]),
        "NOT_A_MEMBER",
    );
    refused(&bob.run(&["group", "join", "dev"]), "ALREADY_MEMBER");
    refused(&bob.run(&["group", "create", "OPS"]), "GROUP_EXISTS");

    let history = messages(&bob.run(&["history", "--to", "#dev"]).json_lines());
    let got: Vec<(u64, &str)> = history.iter().map(|m| (m.0, m.3.as_str())).collect();
    assert_eq!(
        got,
        [(first, "before the restart"), (second, "after the restart")]
    );
}

#[test]
fn the_operator_adds_changes_lists_and_deletes_accounts_with_confab_server_user() {
    let server = Server::start_with(&["--registration", "closed", "--lockout-secs", "1"]);
    let user = |args: &[&str], pw: Option<&str>| {
        let run = server.user_command(args, pw);
        assert_eq!(run.code, Some(0), "confab-server user {args:?}: {run:?}");
        run.stdout
    };
    // Registration is closed to clients...
    let mut c = server.connect();
    match c.register(name("alice"), "pw-1", WAIT) {
        Err(ConnectionError::Refused(e)) => assert_eq!(e.code, ErrorCode::RegistrationClosed),
        other => panic!("REGISTER on a closed server: {other:?}"),
    }
    // ... so the operator adds the accounts (password from CONFAB_PASSWORD).
    assert_eq!(user(&["add", "alice"], Some("pw-1")), "added user alice\n");
    assert_eq!(user(&["add", "Bob"], Some("bob-pw")), "added user Bob\n");
    let taken = server.user_command(&["add", "ALICE"], Some("x"));
    assert_ne!(taken.code, Some(0), "{taken:?}");
    assert!(taken.stderr.contains("taken"), "{taken:?}");
    let missing = server.user_command(&["add", "carol"], None);
    assert_ne!(missing.code, Some(0), "no password given: {missing:?}");
    assert_eq!(user(&["list"], None), "alice\nBob\n");

    let mut alice = login_outcome(&server, "alice", "pw-1").expect("an added account logs in");
    alice
        .send(confab_engine::Target::Room, "hello from alice", WAIT)
        .expect("and chats");
    drop(alice);

    // passwd: the old password stops working, the new one works.
    assert_eq!(
        user(&["passwd", "ALICE"], Some("pw-2")),
        "changed the password of alice\nrevoked 0 devices of alice\n"
    );
    assert_eq!(user(&["devices", "alice"], None), "");
    let no_device = server.user_command(&["revoke", "alice", "laptop"], None);
    assert_ne!(no_device.code, Some(0), "no such device: {no_device:?}");
    assert!(no_device.stderr.contains("no device laptop"), "{no_device:?}");
    let no_user = server.user_command(&["revoke", "nobody", "laptop"], None);
    assert_ne!(no_user.code, Some(0), "no such user: {no_user:?}");
    let old = login_outcome(&server, "alice", "pw-1").err();
    assert_eq!(old.map(|e| e.code), Some(ErrorCode::BadCredentials));
    login_outcome(&server, "alice", "pw-2").expect("the new password works");

    // del: the account is gone, and its name is free again.
    assert_eq!(user(&["del", "bob"], None), "deleted user Bob\n");
    let gone = login_outcome(&server, "bob", "bob-pw").err();
    assert_eq!(gone.map(|e| e.code), Some(ErrorCode::BadCredentials));
    assert_eq!(user(&["list"], None), "alice\n");
    let again = server.user_command(&["del", "bob"], None);
    assert_ne!(again.code, Some(0), "{again:?}");
    assert_eq!(user(&["add", "bob"], Some("new-bob")), "added user bob\n");

    // All of it is on disk: a restarted server agrees.
    let server = server.restart();
    login_outcome(&server, "alice", "pw-2").expect("alice after the restart");
    login_outcome(&server, "bob", "new-bob").expect("the new bob after the restart");
    let listed = server.user_command(&["list"], None);
    assert_eq!(listed.stdout, "alice\nbob\n", "{listed:?}");
}
