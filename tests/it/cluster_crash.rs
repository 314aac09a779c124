//! The crash test (see `crash`) pointed at a three-node cluster: round
//! after round, writers send through one node, which is killed with
//! SIGKILL at a random moment and started again; the next round's
//! writers pick another. A plain writer's acknowledged messages and a
//! device's SEND2s (resent, same client id, on whichever node it reaches
//! next) must each be in history exactly once, with ids in commit order.
//!
//! The seed is printed; `CONFAB_TEST_SEED=N` replays it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use confab::{Connection, ConnectionError, LoginOptions};
use confab_engine::{MessageId, Target};

use crate::cluster::{new_device, room_history, Writer};
use crate::device::name;
use crate::harness::{password, Rng, WAIT};
use crate::nodes::{Cluster, Services};

const ROUNDS: u64 = 20;
const MAX_ACKED_BEFORE_KILL: u64 = 80;
const NODES: usize = 3;
const RATES: &[&str] = &[
    "--msg-rate",
    "60000",
    "--msg-burst",
    "60000",
    "--byte-rate",
    "100000000",
    "--byte-burst",
    "100000000",
];

/// Sends room messages on `port` until the node dies.
fn plain_writer(port: u16, round: u64, count: &AtomicUsize) -> Vec<(MessageId, String)> {
    let Ok(mut c) = Connection::connect_timeout("127.0.0.1", port, WAIT) else {
        return Vec::new();
    };
    let options = LoginOptions {
        resume_after: MessageId(0),
        roster: false,
    };
    if c.login(name("plain"), &password("plain"), options, WAIT)
        .is_err()
    {
        return Vec::new();
    }
    let mut acked = Vec::new();
    for i in 0.. {
        let body = format!("round {round} plain {i}");
        match c.send(Target::Room, &body, WAIT) {
            Ok(ack) => {
                acked.push((ack.id, body));
                count.fetch_add(1, Ordering::Relaxed);
            }
            Err(ConnectionError::Refused(e)) => panic!("a send was refused: {e}"),
            Err(_) => break,
        }
    }
    acked
}

#[test]
fn every_acknowledged_message_survives_killing_random_nodes_of_a_cluster() {
    let Some(services) = Services::shared("the cluster crash test") else {
        return;
    };
    let mut rng = Rng::from_env_or_clock("cluster crash test");
    let started = Instant::now();
    let mut cluster = Cluster::start(services, NODES, RATES);
    cluster.nodes[0].register("plain", &password("plain"));
    let token = new_device(&cluster.nodes[0], "dev", "box");
    let mut device = Some(Writer {
        token,
        unacked: Vec::new(),
        next_cid: 0,
        acked: Vec::new(),
    });
    let mut acked: Vec<(MessageId, String)> = Vec::new();
    for round in 0..ROUNDS {
        let victim = rng.below(NODES as u64) as usize;
        let port = cluster.nodes[victim].port();
        let count = Arc::new(AtomicUsize::new(0));
        let plain = {
            let count = count.clone();
            thread::spawn(move || plain_writer(port, round, &count))
        };
        let dev = {
            let mut d = device.take().expect("the device is back");
            thread::spawn(move || {
                d.run(port, "dev", usize::MAX);
                d
            })
        };
        let kill_after = rng.below(MAX_ACKED_BEFORE_KILL) as usize;
        let deadline = Instant::now() + WAIT;
        while count.load(Ordering::Relaxed) < kill_after {
            assert!(Instant::now() < deadline, "round {round}: too few acks");
            thread::sleep(Duration::from_micros(500));
        }
        cluster.nodes[victim].kill();
        acked.extend(plain.join().expect("the plain writer"));
        device = Some(dev.join().expect("the device writer"));
        let node = cluster.node(RATES);
        cluster.nodes[victim] = node;
    }
    // The device sends what never got an ACK once more, elsewhere.
    let mut d = device.take().expect("the device");
    let resend = d.unacked.len();
    let survivor = cluster.nodes[rng.below(NODES as u64) as usize].port();
    d.run(survivor, "dev", resend);
    acked.extend(d.acked.iter().cloned());
    println!(
        "{ROUNDS} rounds in {:?}: {} messages acknowledged, {} SEND2s by the device",
        started.elapsed(),
        acked.len(),
        d.next_cid
    );
    assert!(!acked.is_empty());

    for node in &cluster.nodes {
        let history = room_history(node);
        let by_id: HashMap<MessageId, &str> =
            history.iter().map(|(id, b)| (*id, b.as_str())).collect();
        assert_eq!(by_id.len(), history.len(), "an id twice in history");
        for (id, body) in &acked {
            assert_eq!(
                by_id.get(id).copied(),
                Some(body.as_str()),
                "acknowledged {id} lost or changed"
            );
        }
        let from_device = history
            .iter()
            .filter(|(_, b)| b.starts_with("dev "))
            .count();
        assert_eq!(
            from_device as u64, d.next_cid,
            "each SEND2 stored exactly once"
        );
    }
}
