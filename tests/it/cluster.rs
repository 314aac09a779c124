//! Several nodes on one PostgreSQL and one Redis (docs/SCALING.md): they
//! are one chat system, a device moves between them without losing or
//! doubling anything, and they ride out a killed node, a bus outage and a
//! database outage. Each test's cluster has its own database (and so its
//! own bus channel); see `nodes`.

use std::collections::HashSet;

use confab::{Connection, ConnectionError, LoginOptions};
use confab_engine::frame::ErrorCode;
use confab_engine::{ClientId, MessageId, Target};
use serde_json::Value;

use crate::device::{name, Device, In};
use crate::harness::{password, Listener, Server, WAIT};
use crate::nodes::{Cluster, Services};

/// The ids of the messages a listener received, in the order received.
fn message_ids(l: &Listener) -> Vec<u64> {
    l.seen()
        .iter()
        .filter(|v| v["event"] == "message")
        .filter_map(|v| v["id"].as_u64())
        .collect()
}

#[track_caller]
fn assert_strictly_increasing(ids: &[u64], who: &str) {
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "{who} got ids out of order or twice: {ids:?}"
    );
}

fn is(event: &'static str, user: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["event"] == event && v["user"] == user
}

#[test]
fn users_on_three_nodes_share_the_room_groups_direct_messages_presence_and_history() {
    let Some(services) = Services::shared("a cluster test") else {
        return;
    };
    let cluster = Cluster::start(services, 3, &[]);
    let [a, b, c] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];
    let mut bob_l = b.client("bob").listen();
    let mut carol_l = c.client("carol").listen();
    bob_l.wait_for("carol online (on another node)", is("online", "carol"));
    let (alice, bob, carol) = (a.client("alice"), b.client("bob"), c.client("carol"));

    let room = alice.send("all", "hello from a");
    for l in [&mut bob_l, &mut carol_l] {
        let m = l.wait_message("hello from a");
        assert_eq!(m["id"].as_u64(), Some(room));
    }

    bob.run(&["group", "create", "devs"]).ok();
    carol.run(&["group", "join", "devs"]).ok();
    bob_l.wait_for("carol joined devs", |v| {
        v["event"] == "joined" && v["group"] == "devs" && v["user"] == "carol"
    });
    alice.run(&["group", "join", "devs"]).ok();
    alice.send("#devs", "for devs");
    bob_l.wait_message("for devs");
    carol_l.wait_message("for devs");

    alice.send("@carol", "just for carol");
    carol_l.wait_message("just for carol");
    alice.send("all", "barrier");
    bob_l.wait_message("barrier");
    bob_l.assert_no_message("just for carol");

    // Every node pages the same history.
    let pages: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| {
            n.client("alice")
                .run(&["history", "--to", "all"])
                .ok()
                .to_owned()
        })
        .collect();
    assert!(
        pages[0].contains("hello from a") && pages[0].contains("barrier"),
        "{}",
        pages[0]
    );
    assert!(
        pages.iter().all(|p| *p == pages[0]),
        "histories differ: {pages:?}"
    );

    carol_l.kill();
    bob_l.wait_for("carol offline", is("offline", "carol"));
    assert_strictly_increasing(&message_ids(&bob_l), "bob");
}

/// A device logged in by password on `server`: its token.
pub(crate) fn new_device(server: &Server, user: &str, device: &str) -> confab_engine::Token {
    server.register(user, &password(user));
    let mut d = Device::connect(server.port()).expect("the node accepts");
    match d.login_password(user, &password(user), device) {
        In::LoginOk2 { token: Some(t), .. } => t,
        other => panic!("LOGIN2 answered {other:?}"),
    }
}

/// Logs a device in by token on `server`; its connection and replay.
fn resume(
    server: &Server,
    user: &str,
    token: &confab_engine::Token,
) -> (Device, Vec<In>, MessageId) {
    let mut d = Device::connect(server.port()).expect("the node accepts");
    match d.login_token(user, token) {
        Ok(In::LoginOk2 { .. }) => {}
        other => panic!("the token login answered {other:?}"),
    }
    let (replayed, caught_up) = d.replay(&mut Vec::new()).expect("the replay");
    (d, replayed, caught_up)
}

fn bodies(messages: &[In]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|m| match m {
            In::Message { body, .. } => Some(body.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_device_resumes_on_another_node_with_exactly_what_it_missed() {
    let Some(services) = Services::shared("a cluster test") else {
        return;
    };
    let cluster = Cluster::start(services, 3, &[]);
    let [a, b, c] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];
    let token = new_device(a, "dora", "laptop");
    let (mut d, _, _) = resume(a, "dora", &token);
    let seen = c.client("sam").send("all", "seen on a");
    loop {
        match d.recv(WAIT).expect("the message reaches node a") {
            In::Message { id, .. } if id.0 == seen => break,
            _ => {}
        }
    }
    d.write(&confab_engine::Frame::Delivered {
        id: MessageId(seen),
    })
    .expect("the node reads");
    let r = d.reference();
    d.write(&confab_engine::Frame::Logout { reference: r })
        .expect("the node reads");
    while !matches!(d.recv(WAIT), Ok(In::Ok(got)) if got == r) {}
    let missed: Vec<String> = (0..5).map(|i| format!("missed {i}")).collect();
    for body in &missed {
        c.client("sam").send("all", body);
    }
    let (_, replayed, _) = resume(b, "dora", &token);
    assert_eq!(bodies(&replayed), missed, "the replay on node b");
}

/// A SEND2 writer that moves to another node when its node dies.
pub(crate) struct Writer {
    pub(crate) token: confab_engine::Token,
    /// Sent but not acknowledged: resent (same client id) after a move.
    pub(crate) unacked: Vec<(u64, String)>,
    pub(crate) next_cid: u64,
    pub(crate) acked: Vec<(MessageId, String)>,
}

impl Writer {
    /// Sends on `port` until the node dies or `count` were acknowledged.
    pub(crate) fn run(&mut self, port: u16, user: &str, count: usize) {
        let Some(mut d) = Device::connect(port) else {
            return;
        };
        if !matches!(d.login_token(user, &self.token), Ok(In::LoginOk2 { .. })) {
            return;
        }
        if d.replay(&mut Vec::new()).is_err() {
            return;
        }
        let goal = self.acked.len().saturating_add(count);
        while self.acked.len() < goal {
            if self.unacked.is_empty() {
                self.next_cid += 1;
                self.unacked
                    .push((self.next_cid, format!("{user} {}", self.next_cid)));
            }
            let (cid, body) = self.unacked[0].clone();
            let r = d.reference();
            if d.send2(r, ClientId(cid), Target::Room, &body).is_err() {
                return;
            }
            let ack = loop {
                match d.recv(WAIT) {
                    Ok(In::Ack { reference, id, .. }) if reference == r => break Some(id),
                    Ok(In::Error { code, .. }) => panic!("a SEND2 was refused: {code:?}"),
                    Ok(_) => {}
                    Err(_) => break None,
                }
            };
            let Some(id) = ack else { return };
            self.unacked.remove(0);
            self.acked.push((id, body));
        }
    }
}

/// Every room message in `node`'s history, checked for doubles, by id.
pub(crate) fn room_history(node: &Server) -> Vec<(MessageId, String)> {
    node.register("auditor", &password("auditor"));
    let mut d = Device::connect(node.port()).expect("the node accepts");
    let _ = d.login_password("auditor", &password("auditor"), "audit");
    let all = d.history(Target::Room);
    let bodies: HashSet<&str> = all.iter().map(|(_, b)| b.as_str()).collect();
    assert_eq!(bodies.len(), all.len(), "a message is stored twice");
    all
}

#[test]
fn a_node_killed_while_its_users_send_loses_nothing_acknowledged_and_doubles_nothing() {
    let Some(services) = Services::shared("a cluster test") else {
        return;
    };
    let mut cluster = Cluster::start(services, 3, &[]);
    let token = new_device(&cluster.nodes[0], "walt", "box");
    let mut listener = cluster.nodes[2].client("lis").listen();
    let mut w = Writer {
        token,
        unacked: Vec::new(),
        next_cid: 0,
        acked: Vec::new(),
    };
    let port = cluster.nodes[0].port();
    let sender = std::thread::spawn(move || {
        w.run(port, "walt", usize::MAX);
        w
    });
    // Kill node a while walt sends to it.
    while message_ids(&listener).len() < 30 {
        listener.wait_for("a message", |v| v["event"] == "message");
    }
    cluster.nodes[0].kill();
    let mut w = sender.join().expect("the writer");
    // Walt reconnects to node b; what got no ACK is sent again, once.
    w.run(cluster.nodes[1].port(), "walt", 20);
    let last = w
        .acked
        .last()
        .map(|(_, b)| b.clone())
        .expect("acknowledged");
    listener.wait_message(&last);
    let history = room_history(&cluster.nodes[1]);
    for (id, body) in &w.acked {
        assert!(
            history.contains(&(*id, body.clone())),
            "acknowledged {id} {body:?} lost"
        );
    }
    let ids = message_ids(&listener);
    assert_strictly_increasing(&ids, "the listener on node c");
    let stored: Vec<u64> = history.iter().map(|(id, _)| id.0).collect();
    assert_eq!(
        ids, stored,
        "the listener saw exactly what was stored, in order"
    );
}

pub(crate) fn logged_in(port: u16, user: &str) -> Connection {
    let mut c = Connection::connect_timeout("127.0.0.1", port, WAIT).expect("connects");
    let options = LoginOptions {
        resume_after: MessageId(0),
        roster: false,
    };
    c.login(name(user), &password(user), options, WAIT)
        .expect("logs in");
    c
}

#[test]
fn with_the_bus_down_nodes_keep_acknowledging_and_deliver_through_postgres() {
    let Some(services) = Services::own("the bus outage test") else {
        return;
    };
    let cluster = Cluster::start(services, 2, &[]);
    let [a, b] = [&cluster.nodes[0], &cluster.nodes[1]];
    let mut bob_l = b.client("bob").listen();
    a.register("alice", &password("alice"));
    let mut alice = logged_in(a.port(), "alice");
    alice.send(Target::Room, "before", WAIT).expect("acked");
    bob_l.wait_message("before");
    cluster.services().service("bus-stop");
    for i in 0..5 {
        alice
            .send(Target::Room, &format!("during {i}"), WAIT)
            .expect("acknowledged with the bus down");
    }
    // Filled from PostgreSQL, in order, with no gaps.
    bob_l.wait_message("during 4");
    cluster.services().service("bus-start");
    a.wait_log("the bus back", |l| l.contains("the bus is back"));
    alice.send(Target::Room, "after", WAIT).expect("acked");
    bob_l.wait_message("after");
    let ids = message_ids(&bob_l);
    assert_eq!(ids.len(), 7, "{ids:?}");
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "a gap or a double: {ids:?}"
    );
}

#[test]
fn with_postgres_down_sends_are_refused_and_nothing_unstored_is_acknowledged() {
    let Some(services) = Services::own("the database outage test") else {
        return;
    };
    let cluster = Cluster::start(services, 2, &[]);
    let [a, b] = [&cluster.nodes[0], &cluster.nodes[1]];
    let mut bob_l = b.client("bob").listen();
    a.register("alice", &password("alice"));
    let mut alice = logged_in(a.port(), "alice");
    alice.send(Target::Room, "before", WAIT).expect("acked");
    cluster.services().service("pg-stop");
    match alice.send(Target::Room, "while down", WAIT) {
        Err(ConnectionError::Refused(e)) => assert!(
            matches!(e.code, ErrorCode::StorageError | ErrorCode::Busy),
            "{e:?}"
        ),
        other => panic!("a send with PostgreSQL down answered {other:?}"),
    }
    cluster.services().service("pg-start");
    alice
        .send(Target::Room, "after", WAIT)
        .expect("acked once PostgreSQL is back");
    bob_l.wait_message("after");
    bob_l.assert_no_message("while down");
    let history = room_history(b);
    let bodies: Vec<&str> = history.iter().map(|(_, b)| b.as_str()).collect();
    assert_eq!(bodies, ["before", "after"]);
}

#[test]
fn migrate_moves_a_single_nodes_data_ids_and_devices_into_postgres() {
    let Some(services) = Services::shared("the migration test") else {
        return;
    };
    let mut single = Server::start();
    let token = new_device(&single, "dora", "laptop");
    let alice = single.client("alice");
    let first = alice.send("all", "from the single node");
    let direct = alice.send("@dora", "a direct one");
    alice.run(&["group", "create", "old"]).ok();
    // Roles, a group mute and an address ban go along.
    for user in ["bob", "carol"] {
        single.client(user).run(&["group", "join", "old"]).ok();
    }
    alice.run(&["group", "appoint", "old", "bob"]).ok();
    alice.run(&["group", "mute", "old", "carol"]).ok();
    single
        .server_command(&["ban-address", "10.0.0.0/8", "--reason", "old abuse"])
        .ok();
    // A deleted message stays a tombstone: its body does not come back
    // and its deleter is still named.
    let regret = alice.send("all", "a regrettable one");
    let deleted = single.server_command(&["delete", &regret.to_string(), "--reason", "oops"]);
    assert!(deleted.ok().contains("deleted message"), "{deleted:?}");
    single.client("mallory").send("all", "spam");
    single
        .server_command(&["ban", "mallory", "--reason", "spam"])
        .ok();
    let before = room_history(&single);
    // Dora's device catches up: its bookmark moves past every message.
    // And marks the direct conversation read (a read marker goes along).
    let (mut d, replayed, _) = resume(&single, "dora", &token);
    let read = confab_engine::frame::Frame::MarkRead {
        target: Target::User(name("alice")),
        id: MessageId(direct),
    };
    // Her phone is told once the server took the mark; the stop below
    // then writes it before exiting.
    let mut phone = Device::connect(single.port()).expect("the node accepts");
    phone.login_password("dora", &password("dora"), "phone");
    phone.replay(&mut Vec::new()).expect("the phone's replay");
    d.write(&read).expect("written");
    loop {
        match phone.recv(WAIT).expect("the phone is told of the mark") {
            In::ReadMarker { id, .. } if id == MessageId(direct) => break,
            _ => {}
        }
    }
    drop((d, phone));
    assert!(bodies(&replayed).contains(&"a direct one".to_owned()));
    single.terminate();
    single.wait_exit();
    let mut cluster = Cluster::start(services, 0, &[]);
    let from = format!("sqlite:{}", single.data_dir().display());
    let run = single.server_command(&["migrate", "--from", &from, "--to", &cluster.store]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("6 accounts"), "{run:?}");
    let again = single.server_command(&["migrate", "--from", &from, "--to", &cluster.store]);
    assert_ne!(
        again.code,
        Some(0),
        "a second migration into the same database: {again:?}"
    );
    assert!(again.stderr.contains("already holds data"), "{again:?}");

    let node = cluster.node(&[]);
    cluster.nodes.push(node);
    let node = &cluster.nodes[0];
    // The device's token still works, and its bookmark too: it is
    // replayed only what came after the move.
    let next = node.client("alice").send("@dora", "on the cluster");
    let mut d = Device::connect(node.port()).expect("the node accepts");
    match d.login_token("dora", &token) {
        Ok(In::LoginOk2 { .. }) => {}
        other => panic!("the token login answered {other:?}"),
    }
    let mut other = Vec::new();
    let (replayed, _) = d.replay(&mut other).expect("the replay");
    assert_eq!(bodies(&replayed), ["on the cluster"]);
    assert!(
        other.iter().any(
            |m| matches!(m, In::ReadMarker { target: Target::User(u), id }
            if u.as_str() == "alice" && *id == MessageId(direct))
        ),
        "the read marker moved: {other:?}"
    );
    // Keyed as the PostgreSQL store keys it, so a new mark replaces it.
    assert_eq!(
        cluster.query("SELECT user_key, conv FROM markers").trim(),
        "dora|d:alice:dora"
    );
    drop(d);
    assert!(
        next > first + 1,
        "ids go on after the migrated ones: {next}"
    );
    let after = room_history(node);
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "the room's history with its ids"
    );
    // The body stays empty, and the deleter is still named.
    let mut late = node
        .client("erin")
        .listen_with(&["--resume-after", &(regret - 1).to_string()]);
    late.wait_for("the tombstone", |v| v["id"] == regret && v["body"] == "");
    let told = late.wait_for("the deletion", |v| {
        v["event"] == "deleted" && v["id"] == regret
    });
    assert_eq!(told["by"], "operator", "the deletion moved: {told}");
    drop(late);
    let banned = node.client("mallory").run(&["send", "--to", "all", "more"]);
    assert!(
        banned.stderr.contains("BANNED"),
        "the ban moved: {banned:?}"
    );
    let audit = node.server_command(&["--store", &cluster.store, "audit"]);
    for line in [
        format!("\toperator\tdelete\t{regret}\toops"),
        "\toperator\tban\tmallory\tspam".to_owned(),
    ] {
        assert!(
            audit.ok().contains(&line),
            "the audit log moved: {line:?} in {audit:?}"
        );
    }
    let groups = node.client("alice").run(&["group", "list"]);
    assert!(groups.ok().contains("old"), "{groups:?}");
    let muted = node.client("carol").run(&["send", "--to", "#old", "hi"]);
    assert!(muted.stderr.contains("MUTED"), "the mute moved: {muted:?}");
    node.client("bob")
        .run(&["group", "unmute", "old", "carol"])
        .ok();
    node.client("carol")
        .send("#old", "unmuted by the moderator");
    let lifted = node.server_command(&["--store", &cluster.store, "unban-address", "10.0.0.0/8"]);
    assert!(
        lifted.ok().contains("lifted the ban of 10.0.0.0/8"),
        "the address ban moved: {lifted:?}"
    );
}

#[test]
fn the_users_of_a_killed_node_go_offline_everywhere_when_its_lease_ends() {
    let Some(services) = Services::shared("a cluster test") else {
        return;
    };
    let mut cluster = Cluster::start(services, 2, &[]);
    let mut bob_l = cluster.nodes[0].client("bob").listen();
    let _carol_l = cluster.nodes[1].client("carol").listen();
    bob_l.wait_for("carol online on the other node", is("online", "carol"));
    cluster.nodes[1].kill();
    // No goodbye from a SIGKILLed node: its heartbeats stop, its lease ends.
    bob_l.wait_for("carol offline after the lease", is("offline", "carol"));
}
