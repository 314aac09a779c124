//! Sanctions and the login guard across the nodes of a cluster
//! (docs/SCALING.md, "Which limits are global"): a ban, a mute or an
//! operator made on one node takes effect on the others at once, through
//! the bus; failed logins and registrations spread over the nodes count
//! against one budget, as on a single node.

use std::time::{Duration, Instant};

use confab::{ConnectionError, LoginOptions, ServerError};
use confab_engine::frame::{ErrorCode, ModAction, Text};
use confab_engine::{Frame, Name, Ref};

use crate::harness::{password, Server, WAIT};
use crate::nodes::{Cluster, Services};
use crate::raw::Raw;

/// Logs `user` in on `node` with `secret`; the refusal, if any.
fn login_with(node: &Server, user: &str, secret: &str) -> Option<ServerError> {
    let mut c = node.connect();
    let name = Name::new(user).expect("valid");
    match c.login(name, secret, LoginOptions::default(), WAIT) {
        Ok(_) => None,
        Err(ConnectionError::Refused(e)) => Some(e),
        Err(e) => panic!("logging in {user}: {e}"),
    }
}

/// Polls `check` until it holds, for at most [`WAIT`]: what it waits for
/// travels on the bus, whose delivery has no event a test can wait on.
#[track_caller]
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// MODERATE from a raw session; its answer (OK, or the error's code).
fn moderate(
    raw: &mut Raw,
    r: u32,
    action: ModAction,
    user: &str,
    seconds: u32,
) -> Option<ErrorCode> {
    raw.frame(&Frame::Moderate {
        reference: Ref(r),
        action,
        user: Name::new(user).expect("valid"),
        seconds,
        reason: Text::new("cluster rules").expect("short"),
    });
    let g = raw.next();
    match g.error {
        Some((code, _)) => Some(code),
        None => {
            assert_eq!(g.name, "OK", "{}", g.debug);
            None
        }
    }
}

/// A status line's value on `node` (`lockouts` → `pairs=1 ...`).
fn status(node: &Server, key: &str) -> String {
    let run = node.server_command(&["status"]);
    let prefix = format!("{key} ");
    run.ok()
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
        .unwrap_or_else(|| panic!("no {key} in {run:?}"))
}

/// `n` nodes whose bus subscriptions are up, so no note published from
/// here on is missed (pub/sub keeps nothing for a late subscriber).
fn cluster(services: Services, n: usize, extra: &[&str]) -> Cluster {
    let cluster = Cluster::start(services, n, extra);
    for node in &cluster.nodes {
        node.wait_log("the node's bus subscription", |l| {
            l.contains("subscribed to the bus")
        });
    }
    cluster
}

/// Makes `user` a server operator through node `a`'s command line
/// (stored in PostgreSQL, applied by the node on that data dir, and told
/// to the others).
fn op(cluster: &Cluster, a: &Server, user: &str) {
    let run = a.user_command_with(&["--store", &cluster.store], &["op", user]);
    assert!(run.ok().contains("on every running node"), "{run:?}");
}

#[test]
fn a_ban_on_one_node_closes_the_users_session_on_another_which_then_refuses_their_login() {
    let Some(services) = Services::shared("a cluster test") else {
        return;
    };
    let cluster = cluster(services, 3, &[]);
    let [a, b, c] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];
    for user in ["carol", "bob"] {
        a.register(user, &password(user));
    }
    // An operator made on a, live: on c, carol may moderate once c has it.
    let mut carol_c = Raw::connect(c);
    carol_c.login("carol", &password("carol"));
    assert_eq!(
        moderate(&mut carol_c, 1, ModAction::Unmute, "bob", 0),
        Some(ErrorCode::NotOperator)
    );
    op(&cluster, a, "carol");
    let mut r = 1;
    eventually("carol is an operator on c", || {
        r += 1;
        moderate(&mut carol_c, r, ModAction::Unmute, "bob", 0).is_none()
    });

    let mut bob_b = Raw::connect(b);
    bob_b.login("bob", &password("bob"));
    let mut carol_a = Raw::connect(a);
    carol_a.login("carol", &password("carol"));
    assert_eq!(moderate(&mut carol_a, 9, ModAction::Ban, "bob", 3600), None);
    let g = bob_b.next();
    assert_eq!(g.error.map(|e| e.0), Some(ErrorCode::Banned), "{}", g.debug);
    assert!(g.debug.contains("cluster rules"), "{}", g.debug);
    bob_b.expect_closed();
    let e = login_with(b, "bob", &password("bob")).expect("b refuses bob");
    assert_eq!(e.code, ErrorCode::Banned, "{e:?}");
    assert!(e.retry_after_ms > 3_500_000, "{e:?}");

    // Lifted on c: b lets bob in again.
    assert_eq!(moderate(&mut carol_c, 20, ModAction::Unban, "bob", 0), None);
    eventually("b lets bob in after the unban on c", || {
        login_with(b, "bob", &password("bob")).is_none()
    });
}

#[test]
fn a_mute_from_one_nodes_control_socket_silences_the_user_on_another() {
    let Some(services) = Services::shared("a cluster test") else {
        return;
    };
    let cluster = cluster(services, 2, &[]);
    let [a, b] = [&cluster.nodes[0], &cluster.nodes[1]];
    a.register("bob", &password("bob"));
    let run = a.server_command(&["mute", "bob", "--for", "1h", "--reason", "shh"]);
    assert!(run.ok().contains("muted bob"), "{run:?}");
    let mut i = 0;
    eventually("bob is muted on b", || {
        i += 1;
        let sent = b
            .client("bob")
            .run(&["send", "--to", "all", &format!("probe {i}")]);
        sent.stderr.contains("MUTED")
    });
    let run = a.server_command(&["unmute", "bob"]);
    run.ok();
    eventually("bob may speak on b again", || {
        let sent = b.client("bob").run(&["send", "--to", "all", "free"]);
        sent.code == Some(0)
    });
}

#[test]
fn failed_logins_spread_over_nodes_lock_the_address_out_on_every_node_at_one_nodes_threshold() {
    let Some(services) = Services::shared("a cluster test") else {
        return;
    };
    // Three failures from one address lock it out; the second waits 1 s.
    let cluster = cluster(services, 3, &["--lockout-after", "3"]);
    let nodes = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];
    for user in ["u1", "u2", "u3", "alice"] {
        nodes[0].register(user, &password(user));
    }
    let pairs = |n: &Server| status(n, "lockouts");
    // One guess per account, each on another node: only the address's
    // own ladder, which every node must count together, can stop it.
    let e = login_with(nodes[0], "u1", "wrong").expect("refused");
    assert_eq!((e.code, e.retry_after_ms), (ErrorCode::BadCredentials, 0));
    for n in &nodes[1..] {
        eventually("the failure on a is counted", || {
            pairs(n).starts_with("pairs=1 ")
        });
    }
    let e = login_with(nodes[1], "u2", "wrong").expect("refused");
    assert_eq!(
        (e.code, e.retry_after_ms),
        (ErrorCode::BadCredentials, 1000),
        "b counts a's failure: this is the address's second"
    );
    eventually("the failure on b is counted on c", || {
        pairs(nodes[2]).starts_with("pairs=2 ")
    });
    let e = login_with(nodes[2], "u3", "wrong").expect("refused");
    assert_eq!(e.code, ErrorCode::LockedOut, "c makes it wait: {e:?}");
    assert!(e.retry_after_ms <= 1000, "{e:?}");
    // The wait the server named, then the third failure locks the address.
    std::thread::sleep(Duration::from_millis(u64::from(e.retry_after_ms) + 50));
    let e = login_with(nodes[2], "u3", "wrong").expect("refused");
    assert_eq!(e.code, ErrorCode::BadCredentials, "{e:?}");
    assert!(e.retry_after_ms >= 299_000, "locked out: {e:?}");
    for n in &nodes[..2] {
        eventually("the failure on c is counted", || {
            pairs(n).starts_with("pairs=3 ")
        });
    }
    for n in nodes {
        let e = login_with(n, "alice", &password("alice")).expect("the address is locked out");
        assert_eq!(e.code, ErrorCode::LockedOut, "{e:?}");
    }
    // An operator's unlock on a lifts it on every node.
    let run = nodes[0].server_command(&["unlock", "--address", "127.0.0.1"]);
    assert!(run.ok().contains("unlocked 127.0.0.1"), "{run:?}");
    for n in nodes {
        eventually("the unlock reaches every node", || {
            pairs(n).starts_with("pairs=0 ")
        });
        assert!(login_with(n, "alice", &password("alice")).is_none());
    }
}

#[test]
fn registrations_spread_over_nodes_are_held_to_one_servers_rate() {
    let Some(services) = Services::shared("a cluster test") else {
        return;
    };
    let extra = [
        "--register-server-burst",
        "2",
        "--register-server-every",
        "3600",
    ];
    let cluster = cluster(services, 3, &extra);
    let [a, b, c] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];
    let register = |n: &Server, user: &str| {
        let mut conn = n.connect();
        let name = Name::new(user).expect("valid");
        conn.register(name, &password(user), WAIT)
    };
    register(a, "first").expect("the cluster's first registration");
    for n in [b, c] {
        eventually("the registration on a is charged", || {
            status(n, "registrations_charged") == "1"
        });
    }
    register(b, "second").expect("the cluster's second registration");
    eventually("the registration on b is charged on c", || {
        status(c, "registrations_charged") == "2"
    });
    // The cluster's budget of two is spent: c refuses a third.
    match register(c, "third") {
        Err(ConnectionError::Refused(e)) => assert_eq!(e.code, ErrorCode::RateLimited, "{e:?}"),
        Ok(()) => panic!("c created a third account: the rate is per node"),
        Err(e) => panic!("registering on c: {e}"),
    }
}

#[test]
fn a_ban_and_a_new_group_taken_while_the_bus_is_down_reach_the_other_nodes_when_it_is_back() {
    let Some(services) = Services::own("the sanction-through-an-outage test") else {
        return;
    };
    let cluster = cluster(services, 2, &[]);
    let [a, b] = [&cluster.nodes[0], &cluster.nodes[1]];
    a.register("bob", &password("bob"));
    let mut bob_b = Raw::connect(b);
    bob_b.login("bob", &password("bob"));
    let mut carol_b = b.client("carol").listen();
    cluster.services().service("bus-stop");
    a.client("carol").run(&["group", "create", "ops"]).ok();
    let run = a.server_command(&[
        "--store",
        &cluster.store,
        "ban",
        "bob",
        "--for",
        "1h",
        "--reason",
        "while the bus was down",
    ]);
    assert!(run.ok().contains("banned bob"), "{run:?}");
    a.wait_log("the bus outage, seen by a's publisher", |l| {
        l.contains("cannot reach the bus") || l.contains("publishing on the bus failed")
    });
    cluster.services().service("bus-start");
    // Held by a's publisher until b listens again, then sent: b closes
    // bob's session there without a restart.
    let g = bob_b.next();
    assert_eq!(g.error.map(|e| e.0), Some(ErrorCode::Banned), "{}", g.debug);
    assert!(g.debug.contains("while the bus was down"), "{}", g.debug);
    bob_b.expect_closed();
    a.wait_log("the held notes sent", |l| {
        l.contains("held through the bus outage are published")
    });
    // b learnt the group carol made on a meanwhile: her session there
    // gets what is sent to it.
    a.client("carol").send("#ops", "for ops");
    carol_b.wait_message("for ops");
}
