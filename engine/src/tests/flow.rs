//! Flow control: slow readers, what a drain hands over, MISSED reports.

use crate::shared::Outgoing;

use super::util::{name, Got, World};
use crate::frame::*;
use crate::id::{MessageId, Ref};
use crate::{decode, Config};

fn world(users: &[&str]) -> World {
    World::with_accounts(Config::default(), users)
}

#[test]
fn a_slow_reader_loses_only_room_messages_and_is_told_exactly_which() {
    let config = Config {
        send_queue_bytes: 2000,
        msg_rate: 1000,
        msg_burst: 1000,
        ..Config::default()
    };
    let mut w = World::with_accounts(config, &["alice", "slow", "fast"]);
    let a = w.login("alice", false);
    let s = w.login("slow", false);
    let fast = w.login("fast", false);
    w.peers[s].reading = false;
    for i in 0..100 {
        w.say(a, Target::Room, &format!("message number {i:03}"));
    }
    assert_eq!(
        w.messages(fast).len(),
        100,
        "a slow reader never slows others"
    );
    w.say(a, Target::User(name("slow")), "direct");
    w.peers[s].reading = true;
    w.run();
    let got: Vec<MessageId> = w.messages(s).iter().map(|m| m.0).collect();
    let missed: Vec<_> = w.peers[s]
        .got
        .iter()
        .filter_map(|g| match g {
            Got::Missed {
                target,
                first,
                last,
                count,
            } => Some((*target, *first, *last, *count)),
            _ => None,
        })
        .collect();
    assert_eq!(missed.len(), 1);
    let (target, first, last, count) = missed[0];
    assert_eq!(target, Target::Room);
    assert!(got.contains(&MessageId(101)), "the DM was not dropped");
    let room: Vec<MessageId> = got
        .iter()
        .copied()
        .filter(|id| *id <= MessageId(100))
        .collect();
    assert_eq!(
        room.len() as u32 + count,
        100,
        "every room message is either delivered or reported"
    );
    // The room log keeps the newest: what a slow reader lost is the oldest.
    assert_eq!(
        (first, last),
        (MessageId(1), MessageId(u64::from(count))),
        "what was dropped is a contiguous, reported range"
    );
    assert_eq!(room.first(), Some(&MessageId(u64::from(count) + 1)));
    assert!(!w.peers[s].closed);
}

#[test]
fn a_drain_says_when_it_emptied_the_queue_and_the_next_frame_then_wakes() {
    let mut w = world(&["alice", "bob"]);
    let a = w.login("alice", false);
    let b = w.login("bob", false);
    w.peers[b].reading = false;
    let conn = w.peers[b].conn;
    for i in 0..3 {
        w.say(a, Target::User(name("bob")), &format!("m{i}"));
    }
    let mut frames = Vec::new();
    // A limit of one byte takes one frame at a time.
    let first = w.hub.drain(conn, &mut frames, 1);
    assert!(first.bytes > 0 && !first.empty, "{first:?}");
    let rest = w.hub.drain(conn, &mut frames, 64 * 1024);
    assert!(rest.bytes > 0 && rest.empty, "{rest:?}");
    assert_eq!(frames.len(), 3);
    while w.hub.poll_output().is_some() {}
    // Parked after that drain, the writer is woken by the next frame.
    w.hub.handle_bytes(
        w.now,
        w.peers[a].conn,
        &Frame::Send {
            reference: Ref(99),
            target: Target::User(name("bob")),
            body: Text::new("m3").unwrap(),
        }
        .to_bytes(),
    );
    let mut woke = false;
    while let Some(out) = w.hub.poll_output() {
        match out {
            crate::Output::Wake(c) if c == conn => woke = true,
            crate::Output::Effect(e) => {
                for input in w.store.run(e) {
                    w.hub.handle_input(w.now, input);
                }
            }
            _ => {}
        }
    }
    assert!(woke);
}

#[test]
fn a_drain_reports_dropped_room_messages_before_the_newer_ones_it_kept_and_is_then_empty() {
    let mut w = World::with_accounts(
        Config {
            send_queue_bytes: 16 * 1024,
            ..Config::default()
        },
        &["alice", "bob"],
    );
    let a = w.login("alice", false);
    let b = w.login("bob", false);
    w.peers[b].reading = false;
    let conn = w.peers[b].conn;
    let body = "x".repeat(3000);
    for _ in 0..20 {
        w.say(a, Target::Room, &body);
    }
    let mut frames = Vec::new();
    let all = w.hub.drain(conn, &mut frames, 1 << 20);
    assert!(all.empty, "{all:?}");
    let kinds: Vec<u8> = frames.iter().map(|f| f[4]).collect();
    assert_eq!(kinds.first(), Some(&kind::MISSED), "{kinds:?}");
    assert!(kinds.len() > 2, "it kept some: {kinds:?}");
    assert!(kinds[1..].iter().all(|k| *k == kind::MESSAGE));
}

/// What a session received, in order: message ids, and MISSED ranges.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Seen {
    Message(MessageId),
    Missed {
        first: MessageId,
        last: MessageId,
        count: u32,
    },
}

#[test]
fn a_missed_report_comes_before_any_message_newer_than_what_it_reports() {
    let mut w = World::with_accounts(
        Config {
            send_queue_bytes: 8 * 1024,
            msg_rate: 1000,
            msg_burst: 1000,
            ..Config::default()
        },
        &["alice", "bob", "slow"],
    );
    let a = w.login("alice", false);
    let b = w.login("bob", false);
    let slow = w.login("slow", false);
    w.peers[slow].reading = false;
    let conn = w.peers[slow].conn;
    let mut bytes = Vec::new();
    let mut frames: Vec<Outgoing> = Vec::new();
    for i in 0..300 {
        // Room messages, with now and then a DM (which evicts room messages).
        if i % 7 == 3 {
            w.say(b, Target::User(name("slow")), &format!("dm {i:0500}"));
        } else {
            w.say(a, Target::Room, &format!("room {i:0500}"));
        }
        // A reader that takes a little now and then, never catching up.
        if i % 5 == 0 {
            w.hub.drain(conn, &mut frames, 1500);
        }
    }
    while w.hub.drain(conn, &mut frames, 1 << 20).bytes > 0 {}
    for f in &frames {
        bytes.extend_from_slice(f);
    }
    let mut seen = Vec::new();
    let mut off = 0;
    while let Some((f, n)) = decode(&bytes[off..], u32::MAX).unwrap() {
        off += n;
        match f {
            Frame::Message { id, .. } => seen.push(Seen::Message(id)),
            Frame::Missed {
                first, last, count, ..
            } => seen.push(Seen::Missed { first, last, count }),
            _ => {}
        }
    }
    let reports = seen
        .iter()
        .filter(|s| matches!(s, Seen::Missed { .. }))
        .count();
    assert!(reports >= 1, "the scenario drops messages: {seen:?}");
    let mut newest = MessageId(0);
    let mut delivered = 0u32;
    let mut reported = 0u32;
    for s in &seen {
        match *s {
            Seen::Message(id) => {
                assert!(id > newest, "ids in order");
                newest = id;
                delivered += 1;
            }
            Seen::Missed { first, last, count } => {
                assert!(
                    newest < first,
                    "MISSED {first}..{last} arrived after message {newest}: {seen:?}"
                );
                reported += count;
            }
        }
    }
    assert_eq!(
        delivered + reported,
        300,
        "every message delivered or reported"
    );
}

#[test]
fn a_fatal_error_is_the_last_frame_even_with_messages_queued() {
    let mut w = world(&["alice", "bob"]);
    let a = w.login("alice", false);
    let b = w.login("bob", false);
    w.peers[b].reading = false;
    for i in 0..5 {
        w.say(a, Target::Room, &format!("m{i}"));
    }
    // Garbage from bob while his messages wait to be written.
    w.send_bytes(b, &[0, 0, 0, 3, kind::PING, 1, 2]);
    w.peers[b].reading = true;
    w.run();
    assert_eq!(w.messages(b).len(), 5, "what was queued is still written");
    assert!(
        matches!(
            w.peers[b].got.last(),
            Some(Got::Error {
                code: ErrorCode::MalformedFrame,
                ..
            })
        ),
        "{:?}",
        w.peers[b].got
    );
    assert!(w.peers[b].closed);
}
