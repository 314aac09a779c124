//! Moderation that PostgreSQL keeps for every node of a cluster (issue
//! 21): group roles and mutes, and address bans. What one node stores,
//! a node that starts afterwards enforces (live propagation to nodes
//! already running is the bus's, not tested here).

use confab_engine::frame::ErrorCode;

use crate::harness::{password, Server};
use crate::nodes::{Cluster, Services};
use crate::raw::Raw;

/// The node at `i`, killed and started again on its data dir and options.
fn restart(cluster: &mut Cluster, i: usize) -> &Server {
    let node = cluster.nodes.remove(i).restart();
    cluster.nodes.insert(i, node);
    &cluster.nodes[i]
}

#[test]
fn a_moderator_appointed_on_one_node_removes_and_mutes_on_another_and_it_survives_a_restart() {
    let Some(services) = Services::shared("a cluster moderation test") else {
        return;
    };
    let mut cluster = Cluster::start(services, 2, &[]);
    let store = cluster.store.clone();
    let a = &cluster.nodes[0];
    a.client("olga").run(&["group", "create", "dev"]).ok();
    for user in ["mo", "bob", "eve"] {
        a.client(user).run(&["group", "join", "dev"]).ok();
    }
    a.client("olga")
        .run(&["group", "appoint", "dev", "mo"])
        .ok();

    // Node B starts after the appointment: it reads the roles from
    // PostgreSQL.
    let b = restart(&mut cluster, 1);
    let refused = b.client("bob").run(&["group", "remove", "dev", "eve"]);
    assert!(
        refused.stderr.contains("NOT_GROUP_MODERATOR"),
        "{refused:?}"
    );
    let run = b
        .client("mo")
        .run(&["group", "remove", "dev", "eve", "--reason", "off topic"]);
    assert!(run.ok().contains(r#""action":"group-remove""#), "{run:?}");
    b.client("mo")
        .run(&[
            "group", "mute", "dev", "bob", "--for", "1h", "--reason", "calm",
        ])
        .ok();
    let muted = b.client("bob").run(&["send", "--to", "#dev", "loud"]);
    assert!(
        muted.stderr.contains("MUTED") && muted.stderr.contains("#dev"),
        "{muted:?}"
    );
    let gone = b.client("eve").run(&["send", "--to", "#dev", "hello?"]);
    assert!(gone.stderr.contains("NOT_A_MEMBER"), "{gone:?}");

    // Node A, restarted, holds what B stored.
    let a = restart(&mut cluster, 0);
    let muted = a.client("bob").run(&["send", "--to", "#dev", "still loud"]);
    assert!(muted.stderr.contains("MUTED"), "after a restart: {muted:?}");
    let gone = a.client("eve").run(&["send", "--to", "#dev", "hello?"]);
    assert!(gone.stderr.contains("NOT_A_MEMBER"), "{gone:?}");
    a.client("mo").run(&["group", "unmute", "dev", "bob"]).ok();
    a.client("bob").send("#dev", "thanks");

    let audit = a.server_command(&["--store", &store, "audit"]);
    for line in [
        "\tolga\tgroup-appoint\t#dev mo\t",
        "\tmo\tgroup-remove\t#dev eve\toff topic",
        "\tmo\tgroup-mute\t#dev bob\tcalm",
        "\tmo\tgroup-unmute\t#dev bob\t",
    ] {
        assert!(audit.ok().contains(line), "{line:?} in {audit:?}");
    }
    assert_eq!(
        audit.ok().matches("group-remove").count(),
        1,
        "one audit line a removal: {audit:?}"
    );
}

#[test]
#[cfg(target_os = "linux")]
fn an_address_ban_stored_in_postgres_turns_away_its_block_on_a_node_started_afterwards() {
    use std::net::Ipv4Addr;

    use crate::abuse::connect_from;

    let Some(services) = Services::shared("a cluster address ban test") else {
        return;
    };
    let mut cluster = Cluster::start(services, 1, &[]);
    for user in ["carol", "alice"] {
        cluster.nodes[0].register(user, &password(user));
    }
    let op = cluster.nodes[0].server_command(&["--store", &cluster.store, "user", "op", "carol"]);
    assert_eq!(op.code, Some(0), "{op:?}");
    // Operators are read at a node's start.
    let a = restart(&mut cluster, 0);
    let block = "127.0.0.2/31";
    let inside = Ipv4Addr::new(127, 0, 0, 3);
    let refused = a.client("alice").run(&["ban-address", block]);
    assert!(refused.stderr.contains("NOT_OPERATOR"), "{refused:?}");
    let run = a
        .client("carol")
        .run(&["ban-address", block, "--for", "1h", "--reason", "abuse"]);
    assert!(run.ok().contains(r#""action":"ban-address""#), "{run:?}");

    let later = cluster.node(&[]);
    let turned_away = |server: &Server| {
        let mut fresh = Raw::from_stream(connect_from(inside, server.port()));
        let g = fresh.next();
        assert_eq!(g.error.map(|e| e.0), Some(ErrorCode::Banned), "{}", g.debug);
        assert!(g.debug.contains("abuse"), "{}", g.debug);
        fresh.expect_closed();
    };
    turned_away(&later);
    let mut outside = Raw::connect(&later);
    outside.login("alice", &password("alice"));

    // The command line lifts it in PostgreSQL (and tells the node on its
    // data dir): a node started next lets the block in.
    let lifted = later.server_command(&["--store", &cluster.store, "unban-address", block]);
    assert!(
        lifted.ok().contains("lifted the ban of 127.0.0.2/31"),
        "{lifted:?}"
    );
    let next = cluster.node(&[]);
    let mut back = Raw::from_stream(connect_from(inside, next.port()));
    back.login("alice", &password("alice"));
    cluster.nodes.extend([later, next]);
}

#[test]
fn a_ban_without_store_on_a_postgres_nodes_data_dir_lands_in_postgres() {
    let Some(services) = Services::shared("the command line store test") else {
        return;
    };
    let mut cluster = Cluster::start(services, 1, &[]);
    cluster.nodes[0].register("mallory", &password("mallory"));
    // Offline, as well as with the node running: the command follows the
    // store the node recorded in its data dir, not the dir's SQLite.
    cluster.nodes[0].kill();
    let a = &cluster.nodes[0];
    let ban = a.server_command(&["ban", "mallory", "--reason", "spam"]);
    assert_eq!(ban.code, Some(0), "{ban:?}");
    let audit = a.server_command(&["--store", &cluster.store, "audit"]);
    assert!(
        audit.ok().contains("\toperator\tban\tmallory\tspam"),
        "the ban is in PostgreSQL: {audit:?}"
    );
    let later = cluster.node(&[]);
    let refused = later.client("mallory").run(&["send", "--to", "all", "hi"]);
    assert!(refused.stderr.contains("BANNED"), "{refused:?}");
    cluster.nodes.push(later);
}

#[test]
fn a_command_without_store_on_a_node_whose_url_has_a_password_is_refused_naming_the_store() {
    let Some(services) = Services::shared("the command line store test") else {
        return;
    };
    let cluster = Cluster::start(services, 0, &[]);
    // The test database trusts every connection: the password is only
    // carried.
    let with_password = cluster.store.replacen("confab@", "confab:s3cret@", 1);
    assert_ne!(
        with_password, cluster.store,
        "the URL names the user confab"
    );
    let mut node =
        Server::start_with(&["--store", &with_password, "--bus", &cluster.services().bus]);
    let record = std::fs::read_to_string(node.data_dir().join("store")).expect("the record");
    assert!(!record.contains("s3cret"), "{record}");
    node.kill();
    let ban = node.server_command(&["ban", "mallory"]);
    assert_ne!(ban.code, Some(0), "{ban:?}");
    assert!(
        ban.stderr.contains("pass --store") && ban.stderr.contains("runs on PostgreSQL"),
        "{ban:?}"
    );
    assert!(!ban.stderr.contains("s3cret"), "{ban:?}");
}
