//! Moderation and control of a running server: `confab-server kick`,
//! `ban`, `mute`, `status`, `user del` through the control socket, their
//! audit log, and bans that outlive a restart.

use std::os::unix::fs::PermissionsExt;

use confab::{ConnectionError, LoginOptions};
use confab_engine::frame::{ErrorCode, ModAction, Text};
use confab_engine::{Frame, Name, Ref};

use crate::harness::{password, Server, WAIT};
use crate::raw::Raw;

/// Logs `user` in with the library; the server's refusal, if any.
fn login_refusal(server: &Server, user: &str) -> Option<confab::ServerError> {
    let mut c = server.connect();
    let name = Name::new(user).expect("valid");
    match c.login(name, &password(user), LoginOptions::default(), WAIT) {
        Ok(_) => None,
        Err(ConnectionError::Refused(e)) => Some(e),
        Err(e) => panic!("logging in {user}: {e}"),
    }
}

#[test]
fn a_kick_closes_the_users_sessions_with_the_reason_they_see() {
    let server = Server::start();
    server.register("alice", &password("alice"));
    let mut raw = Raw::connect(&server);
    raw.login("alice", &password("alice"));

    let run = server.server_command(&["kick", "ALICE", "--reason", "spamming the room"]);
    assert!(run.ok().contains("kicked alice: 1 sessions"), "{run:?}");
    let g = raw.next();
    assert_eq!(g.error.map(|e| e.0), Some(ErrorCode::Kicked), "{}", g.debug);
    assert!(g.debug.contains("spamming the room"), "{}", g.debug);
    raw.expect_closed();

    // Alice may come back: a kick is not a ban.
    assert!(login_refusal(&server, "alice").is_none());

    let audit = server.server_command(&["audit"]);
    let line = audit.ok().lines().last().unwrap_or_default().to_owned();
    assert!(
        line.contains("\toperator\tkick\talice\tspamming the room"),
        "{audit:?}"
    );
}

#[test]
fn a_ban_closes_sessions_refuses_logins_with_the_time_left_and_survives_a_restart() {
    let server = Server::start();
    server.register("alice", &password("alice"));
    let mut raw = Raw::connect(&server);
    raw.login("alice", &password("alice"));

    let run = server.server_command(&["ban", "alice", "--for", "1h", "--reason", "spam"]);
    assert!(run.ok().contains("closed 1 sessions"), "{run:?}");
    raw.expect_error(ErrorCode::Banned);
    raw.expect_closed();

    let check = |server: &Server| {
        let e = login_refusal(server, "alice").expect("a banned login is refused");
        assert_eq!(e.code, ErrorCode::Banned, "{e:?}");
        assert!(e.text.contains("spam"), "{e:?}");
        assert!(
            (3_500_000..=3_600_000).contains(&e.retry_after_ms),
            "about an hour left: {e:?}"
        );
    };
    check(&server);
    let server = server.restart();
    check(&server);

    let run = server.server_command(&["unban", "alice"]);
    assert!(run.ok().contains("lifted the ban of alice"), "{run:?}");
    assert!(login_refusal(&server, "alice").is_none(), "unbanned");

    let audit = server.server_command(&["audit"]);
    let actions: Vec<&str> = audit
        .ok()
        .lines()
        .filter_map(|l| l.split('\t').nth(2))
        .collect();
    assert_eq!(actions, ["ban", "unban"], "{audit:?}");
}

#[test]
fn a_ban_given_while_no_server_runs_applies_from_its_start_and_for_good() {
    let mut server = Server::start();
    server.register("alice", &password("alice"));
    server.kill();
    let run = server.server_command(&["ban", "alice", "--reason", "gone for good"]);
    assert!(run.ok().contains("no server is running"), "{run:?}");
    let server = server.restart();
    let e = login_refusal(&server, "alice").expect("refused");
    assert_eq!((e.code, e.retry_after_ms), (ErrorCode::Banned, 0), "{e:?}");
    assert!(e.text.contains("for good: gone for good"), "{e:?}");
}

#[test]
fn a_muted_user_has_messages_refused_with_their_own_code_until_unmuted() {
    let server = Server::start();
    server.client("bob").send("all", "before");
    let run = server.server_command(&["mute", "bob", "--for", "10m", "--reason", "calm down"]);
    assert!(run.ok().contains("muted bob"), "{run:?}");
    let refused = server
        .client("bob")
        .run(&["send", "--to", "all", "shouting"]);
    assert_ne!(refused.code, Some(0), "{refused:?}");
    assert!(refused.stderr.contains("MUTED"), "{refused:?}");
    assert!(refused.stderr.contains("calm down"), "{refused:?}");

    // It survives a restart, and lifting it lets bob speak again.
    let server = server.restart();
    let refused = server.client("bob").run(&["send", "--to", "all", "again"]);
    assert!(refused.stderr.contains("MUTED"), "{refused:?}");
    server.server_command(&["unmute", "bob"]).ok();
    server.client("bob").send("all", "after");
}

#[test]
fn status_shows_connections_sessions_per_user_queues_and_bans() {
    let server = Server::start();
    server.register("alice", &password("alice"));
    let mut a1 = Raw::connect(&server);
    a1.login("alice", &password("alice"));
    let mut a2 = Raw::connect(&server);
    a2.login("alice", &password("alice"));
    let _idle = Raw::connect(&server);
    server.server_command(&["ban", "mallory"]).ok();

    let status = server.server_command(&["status"]);
    let out = status.ok();
    for line in [
        "connections 3",
        "connections_per_protocol confab=3",
        "logged_in 2",
        "sessions_per_user alice=2",
        "bans 1",
    ] {
        assert!(out.lines().any(|l| l == line), "no {line:?} in:\n{out}");
    }
    for key in [
        "uptime_seconds ",
        "storage_write_queue ",
        "auth_queue ",
        "lockouts ",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(key)),
            "no {key:?} in:\n{out}"
        );
    }
}

#[test]
fn deleting_a_user_on_a_running_server_closes_their_sessions_at_once() {
    let server = Server::start();
    server.register("alice", &password("alice"));
    let mut raw = Raw::connect(&server);
    raw.login("alice", &password("alice"));
    let run = server.user_command(&["del", "alice"], None);
    assert!(run.ok().contains("closed 1 sessions of alice"), "{run:?}");
    let g = raw.next();
    assert_eq!(g.error.map(|e| e.0), Some(ErrorCode::Kicked), "{}", g.debug);
    assert!(g.debug.contains("account deleted"), "{}", g.debug);
}

#[test]
fn the_control_socket_is_owner_only_and_commands_need_a_running_server_when_they_say_so() {
    let mut server = Server::start();
    let socket = server.data_dir().join("control.sock");
    let mode = std::fs::metadata(&socket)
        .expect("the control socket exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");

    server.terminate();
    assert!(server.wait_exit().success());
    assert!(!socket.exists(), "a clean shutdown removes the socket");
    for args in [&["status"][..], &["kick", "alice"][..]] {
        let run = server.server_command(args);
        assert_ne!(run.code, Some(0), "{run:?}");
        assert!(run.stderr.contains("no server is running"), "{run:?}");
    }
}

/// MODERATE from a raw v2 session.
fn moderate(
    raw: &mut Raw,
    reference: u32,
    action: ModAction,
    user: &str,
    seconds: u32,
    reason: &str,
) {
    raw.frame(&Frame::Moderate {
        reference: Ref(reference),
        action,
        user: Name::new(user).expect("valid"),
        seconds,
        reason: Text::new(reason).expect("short"),
    });
}

#[test]
fn an_operators_client_kicks_and_bans_and_a_non_operator_is_refused() {
    let server = Server::start();
    for user in ["carol", "alice", "bob"] {
        server.register(user, &password(user));
    }
    server.user_command(&["op", "carol"], None).ok();
    let mut carol = Raw::connect(&server);
    carol.login("carol", &password("carol"));
    let mut alice = Raw::connect(&server);
    alice.login("alice", &password("alice"));
    let mut bob = Raw::connect(&server);
    bob.login("bob", &password("bob"));

    // Not an operator: refused with its own code, and nothing happens.
    moderate(&mut alice, 5, ModAction::Kick, "bob", 0, "mine");
    assert_eq!(alice.expect_error(ErrorCode::NotOperator), Ref(5));

    moderate(&mut carol, 6, ModAction::Kick, "bob", 0, "be nice");
    let g = bob.next();
    assert_eq!(g.error.map(|e| e.0), Some(ErrorCode::Kicked), "{}", g.debug);
    assert!(g.debug.contains("be nice"), "{}", g.debug);
    bob.expect_closed();
    let ok = carol.next();
    assert_eq!(ok.name, "OK", "{}", ok.debug);

    moderate(&mut carol, 7, ModAction::Ban, "alice", 3600, "spam");
    alice.expect_error(ErrorCode::Banned);
    alice.expect_closed();
    assert_eq!(carol.next().name, "OK");

    // The ban was stored: it outlives a restart, and the audit log names carol.
    let server = server.restart();
    let e = login_refusal(&server, "alice").expect("refused");
    assert_eq!(e.code, ErrorCode::Banned, "{e:?}");
    assert!(e.retry_after_ms > 3_500_000, "{e:?}");
    let audit = server.server_command(&["audit"]);
    assert!(
        audit.ok().contains("\tcarol\tkick\tbob\tbe nice"),
        "{audit:?}"
    );
    assert!(
        audit.ok().contains("\tcarol\tban\talice\tspam"),
        "{audit:?}"
    );

    // An operator taken off on the running server is refused at once.
    let mut carol = Raw::connect(&server);
    carol.login("carol", &password("carol"));
    server.user_command(&["deop", "carol"], None).ok();
    moderate(&mut carol, 8, ModAction::Unban, "alice", 0, "");
    assert_eq!(carol.expect_error(ErrorCode::NotOperator), Ref(8));
}

#[test]
fn the_headless_client_moderates_for_an_operator_and_is_refused_for_anyone_else() {
    let server = Server::start();
    server.register("carol", &password("carol"));
    server.user_command(&["op", "carol"], None).ok();
    let mut bob = server.client("bob").listen();

    let refused = server.client("mallory").run(&["kick", "bob"]);
    assert_ne!(refused.code, Some(0), "{refused:?}");
    assert!(refused.stderr.contains("NOT_OPERATOR"), "{refused:?}");

    let run = server
        .client("carol")
        .run(&["mute", "bob", "--for", "1h", "--reason", "shh"]);
    assert!(run.ok().contains(r#""action":"mute""#), "{run:?}");
    let muted = server.client("bob").run(&["send", "--to", "all", "hello?"]);
    assert!(muted.stderr.contains("MUTED"), "{muted:?}");

    let run = server
        .client("carol")
        .run(&["kick", "bob", "--reason", "take a break"]);
    run.ok();
    let (code, stderr) = bob.wait_exit();
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("KICKED") && stderr.contains("take a break"),
        "{stderr}"
    );
}

/// Logs `user` in with `secret`; the server's refusal, if any.
fn login_with(server: &Server, user: &str, secret: &str) -> Option<confab::ServerError> {
    let mut c = server.connect();
    let name = Name::new(user).expect("valid");
    match c.login(name, secret, LoginOptions::default(), WAIT) {
        Ok(_) => None,
        Err(ConnectionError::Refused(e)) => Some(e),
        Err(e) => panic!("logging in {user}: {e}"),
    }
}

#[test]
fn unlock_clears_failed_logins_on_the_running_server_at_once() {
    let server = Server::start();
    server.register("alice", &password("alice"));
    for _ in 0..3 {
        let e = login_with(&server, "alice", "not her password").expect("refused");
        assert!(
            matches!(e.code, ErrorCode::BadCredentials | ErrorCode::LockedOut),
            "{e:?}"
        );
    }
    let e = login_refusal(&server, "alice").expect("the right password must wait now");
    assert_eq!(e.code, ErrorCode::LockedOut, "{e:?}");
    let status = server.server_command(&["status"]);
    assert!(
        !status
            .ok()
            .contains("lockouts pairs=0 accounts=0 addresses=0"),
        "{status:?}"
    );

    let run = server.server_command(&["unlock", "--address", "127.0.0.1"]);
    assert!(run.ok().contains("unlocked 127.0.0.1"), "{run:?}");
    assert!(
        login_refusal(&server, "alice").is_none(),
        "unlocked at once"
    );

    let run = server.server_command(&["unlock"]);
    assert!(run.ok().contains("unlocked everyone"), "{run:?}");
    let status = server.server_command(&["status"]);
    assert!(
        status
            .ok()
            .contains("lockouts pairs=0 accounts=0 addresses=0"),
        "{status:?}"
    );
    let audit = server.server_command(&["audit"]);
    assert!(
        audit.ok().contains("\toperator\tunlock\t127.0.0.1\t"),
        "{audit:?}"
    );
}

/// `retry_after_ms` of an ERROR's debug text.
fn retry_of(debug: &str) -> u64 {
    debug
        .split("retry_after_ms: ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no retry_after_ms in {debug}"))
}

#[test]
fn an_address_ban_closes_and_turns_away_its_block_with_the_time_left_across_a_restart() {
    let server = Server::start();
    server.register("alice", &password("alice"));
    let mut raw = Raw::connect(&server);
    raw.login("alice", &password("alice"));

    // Another block: nothing happens to 127.0.0.1.
    let run = server.server_command(&["ban-address", "10.1.2.3/8", "--reason", "elsewhere"]);
    assert!(
        run.ok()
            .contains("banned 10.0.0.0/8 for good; closed 0 sessions"),
        "{run:?}"
    );
    assert!(login_refusal(&server, "alice").is_none());

    let run = server.server_command(&[
        "ban-address",
        "127.0.0.0/8",
        "--for",
        "1h",
        "--reason",
        "abuse",
    ]);
    assert!(run.ok().contains("banned 127.0.0.0/8 until"), "{run:?}");
    assert!(run.ok().contains("closed 1 sessions"), "{run:?}");
    raw.expect_error(ErrorCode::Banned);
    raw.expect_closed();

    let turned_away = |server: &Server| {
        let mut fresh = Raw::connect(server);
        let g = fresh.next();
        assert_eq!(g.error.map(|e| e.0), Some(ErrorCode::Banned), "{}", g.debug);
        assert!(g.debug.contains("this address is banned"), "{}", g.debug);
        assert!(g.debug.contains("abuse"), "{}", g.debug);
        let left = retry_of(&g.debug);
        assert!(
            (3_500_000..=3_600_000).contains(&left),
            "about an hour: {}",
            g.debug
        );
        fresh.expect_closed();
    };
    turned_away(&server);
    let server = server.restart();
    turned_away(&server);
    let status = server.server_command(&["status"]);
    assert!(
        status.ok().lines().any(|l| l == "address_bans 2"),
        "{status:?}"
    );

    let run = server.server_command(&["unban-address", "127.0.0.1/8"]);
    assert!(
        run.ok().contains("lifted the ban of 127.0.0.0/8"),
        "{run:?}"
    );
    assert!(login_refusal(&server, "alice").is_none(), "lifted at once");

    let bad = server.server_command(&["ban-address", "localhost"]);
    assert_ne!(bad.code, Some(0), "{bad:?}");
    assert!(bad.stderr.contains("not an address or a block"), "{bad:?}");
    let audit = server.server_command(&["audit"]);
    for line in [
        "\toperator\tban-address\t127.0.0.0/8\tabuse",
        "\toperator\tunban-address\t127.0.0.0/8\t",
    ] {
        assert!(audit.ok().contains(line), "{line:?} in {audit:?}");
    }
}

#[test]
#[cfg(target_os = "linux")]
fn an_operators_client_bans_an_address_block_across_a_restart_and_lifts_it() {
    use std::net::Ipv4Addr;

    use crate::abuse::connect_from;

    let server = Server::start();
    for user in ["carol", "alice"] {
        server.register(user, &password(user));
    }
    server.user_command(&["op", "carol"], None).ok();
    // Clients of the harness come from 127.0.0.1; the block is beside it.
    let block = "127.0.0.2/31";
    let inside = Ipv4Addr::new(127, 0, 0, 3);
    let mut there = Raw::from_stream(connect_from(inside, server.port()));
    there.login("alice", &password("alice"));

    let refused = server.client("alice").run(&["ban-address", block]);
    assert_ne!(refused.code, Some(0), "{refused:?}");
    assert!(refused.stderr.contains("NOT_OPERATOR"), "{refused:?}");
    let bad = server.client("carol").run(&["ban-address", "localhost"]);
    assert_ne!(bad.code, Some(0), "{bad:?}");
    assert!(bad.stderr.contains("BAD_ADDRESS"), "{bad:?}");
    assert!(bad.stderr.contains("not an address or a block"), "{bad:?}");

    let run =
        server
            .client("carol")
            .run(&["ban-address", block, "--for", "1h", "--reason", "abuse"]);
    assert!(run.ok().contains(r#""action":"ban-address""#), "{run:?}");
    there.expect_error(ErrorCode::Banned);
    there.expect_closed();
    assert!(
        login_refusal(&server, "alice").is_none(),
        "127.0.0.1 is not in it"
    );

    let turned_away = |server: &Server| {
        let mut fresh = Raw::from_stream(connect_from(inside, server.port()));
        let g = fresh.next();
        assert_eq!(g.error.map(|e| e.0), Some(ErrorCode::Banned), "{}", g.debug);
        assert!(g.debug.contains("this address is banned"), "{}", g.debug);
        assert!(g.debug.contains("abuse"), "{}", g.debug);
        let left = retry_of(&g.debug);
        assert!((3_500_000..=3_600_000).contains(&left), "{}", g.debug);
        fresh.expect_closed();
    };
    turned_away(&server);
    let server = server.restart();
    turned_away(&server);

    let run = server
        .client("carol")
        .run(&["unban-address", "127.0.0.3/31"]);
    assert!(run.ok().contains(r#""action":"unban-address""#), "{run:?}");
    let mut back = Raw::from_stream(connect_from(inside, server.port()));
    back.login("alice", &password("alice"));
    let audit = server.server_command(&["audit"]);
    for line in [
        "\tcarol\tban-address\t127.0.0.2/31\tabuse",
        "\tcarol\tunban-address\t127.0.0.2/31\t",
    ] {
        assert!(audit.ok().contains(line), "{line:?} in {audit:?}");
    }
}
