//! The room log as sessions see it: one push per room message, read by
//! every session at drain time, merged in id order with its own queue.

use super::util::{name, Got, World};
use crate::frame::*;
use crate::id::{MessageId, Ref};
use crate::Config;

fn busy(config: Config) -> Config {
    Config {
        msg_rate: 1000,
        msg_burst: 1000,
        ..config
    }
}

#[test]
fn a_room_message_queues_nothing_per_recipient_yet_reaches_each_at_its_drain() {
    let mut w = World::with_accounts(Config::default(), &["alice", "bob", "carol"]);
    let a = w.login("alice", false);
    let b = w.login("bob", false);
    let c = w.login("carol", false);
    w.peers[b].reading = false;
    w.peers[c].reading = false;
    w.say(a, Target::Room, "hello");
    for p in [b, c] {
        assert_eq!(w.hub.queued_bytes(w.peers[p].conn), Some(0));
    }
    w.peers[b].reading = true;
    w.peers[c].reading = true;
    w.run();
    for p in [b, c] {
        let got = w.messages(p);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].2, "hello");
    }
    assert!(w.messages(a).is_empty(), "the sender's copy is its ACK");
}

#[test]
fn room_and_direct_messages_reach_a_slow_reader_in_id_order() {
    let mut w = World::with_accounts(busy(Config::default()), &["alice", "bob"]);
    let a = w.login("alice", false);
    let b = w.login("bob", false);
    w.peers[b].reading = false;
    for i in 0..20 {
        let target = if i % 3 == 0 {
            Target::User(name("bob"))
        } else {
            Target::Room
        };
        w.say(a, target, &format!("m{i}"));
    }
    w.peers[b].reading = true;
    w.run();
    let ids: Vec<MessageId> = w.messages(b).iter().map(|m| m.0).collect();
    assert_eq!(ids.len(), 20);
    assert!(ids.windows(2).all(|p| p[0] < p[1]), "{ids:?}");
}

#[test]
fn a_reader_behind_even_the_ids_the_room_log_keeps_is_closed_as_a_slow_consumer() {
    let config = busy(Config {
        send_queue_bytes: 2000,
        room_log_ids: 8,
        ..Config::default()
    });
    let mut w = World::with_accounts(config, &["alice", "slow", "fast"]);
    let a = w.login("alice", false);
    let s = w.login("slow", false);
    let fast = w.login("fast", false);
    w.peers[s].reading = false;
    for i in 0..50 {
        w.say(a, Target::Room, &format!("message number {i:03}"));
    }
    assert_eq!(w.messages(fast).len(), 50, "others are not slowed");
    w.peers[s].reading = true;
    w.run();
    assert!(w.peers[s].closed);
    assert_eq!(w.errors(s), [ErrorCode::SlowConsumer]);
    assert!(
        w.messages(s).is_empty(),
        "the error comes instead of a partial backlog"
    );
}

#[test]
fn a_closing_session_flushes_the_room_messages_committed_before_it_closed_and_no_later() {
    let mut w = World::with_accounts(busy(Config::default()), &["alice", "bob"]);
    let a = w.login("alice", false);
    let b = w.login("bob", false);
    w.peers[b].reading = false;
    for i in 0..3 {
        w.say(a, Target::Room, &format!("before {i}"));
    }
    w.send(b, &Frame::Logout { reference: Ref(7) });
    w.say(a, Target::Room, "after");
    w.peers[b].reading = true;
    w.run();
    let bodies: Vec<String> = w.messages(b).into_iter().map(|m| m.2).collect();
    assert_eq!(bodies, ["before 0", "before 1", "before 2"]);
    assert!(w.peers[b].closed);
}

#[test]
fn a_session_that_logs_in_gets_only_the_room_messages_committed_since() {
    let mut w = World::with_accounts(Config::default(), &["alice", "bob"]);
    let a = w.login("alice", false);
    w.say(a, Target::Room, "before bob");
    let b = w.login("bob", false);
    w.say(a, Target::Room, "after bob");
    let bodies: Vec<String> = w.messages(b).into_iter().map(|m| m.2).collect();
    assert_eq!(bodies, ["after bob"]);
    assert!(w.peers[b].got.iter().any(|g| matches!(g, Got::CaughtUp(_))));
}

#[test]
fn a_room_message_out_of_id_order_is_still_delivered_once() {
    use crate::effect::StoredMessage;
    let mut w = World::with_accounts(Config::default(), &["alice", "bob"]);
    w.login("alice", false);
    let b = w.login("bob", false);
    for id in [50, 40] {
        let message = StoredMessage {
            id: MessageId(id),
            timestamp_ms: id,
            sender: name("alice"),
            target: Target::Room,
            body: format!("from another node {id}"),
            kind: crate::MessageKind::Message,
            tags: crate::ClientTags::default(),
        };
        w.hub.handle_committed(w.now, message, None);
    }
    w.run();
    let ids: Vec<MessageId> = w.messages(b).iter().map(|m| m.0).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&MessageId(40)) && ids.contains(&MessageId(50)));
}
