//! The hub driven by arbitrary input: several connections each fed arbitrary
//! bytes (with valid HELLO/LOGIN frames mixed in so deep states are reached),
//! clock jumps, disconnects, shutdown, and the engine's in-memory store
//! answering effects, sometimes late (a LOGIN op registers its account
//! first, so that it succeeds). Nothing may panic, and every queue stays within its bound.
#![no_main]
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use confab_engine::store::Store;
use confab_engine::testing::MemoryStore;
use confab_engine::frame::{Frame, Presence, Target, Text, PROTOCOL_VERSION};
use confab_engine::effect::StoredMessage;
use confab_engine::{Config, ConnId, Effect, Hub, MessageId, Name, Output, Protocol, Ref, Source};

const _: Option<Name> = None;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    Connect(u8),
    Bytes(u8, Vec<u8>),
    Hello(u8),
    Login(u8, Name, bool, u16),
    Send(u8, Target, String),
    Advance(u16),
    Drain(u8),
    Complete(u8),
    /// Another node's presence of a user.
    Presence(Name, bool),
    /// A message another node committed, routed here.
    Elsewhere(u8, Name, Target, String),
    Disconnect(u8),
    Shutdown,
}

fuzz_target!(|ops: Vec<Op>| {
    let config = Config {
        send_queue_bytes: 4096,
        max_clients: 6,
        max_per_source: 4,
        ..Config::default()
    };
    let limit = config.send_queue_bytes;
    let mut hub = Hub::new(config, [], MessageId(0));
    let mut now = Instant::now();
    let mut conns: Vec<ConnId> = Vec::new();
    let mut pending: Vec<Effect> = Vec::new();
    let mut store = MemoryStore::default();
    let pick = |conns: &[ConnId], i: u8| conns.get(i as usize % conns.len().max(1)).copied();
    for op in ops.into_iter().take(256) {
        match op {
            Op::Connect(s) => conns.push(hub.connect(now, Source(s as u128 % 3), Protocol::CONFAB)),
            Op::Bytes(i, b) => {
                if let Some(c) = pick(&conns, i) {
                    let n = hub.handle_bytes(now, c, &b);
                    assert!(n <= b.len());
                }
            }
            Op::Hello(i) => {
                if let Some(c) = pick(&conns, i) {
                    let f = Frame::Hello { version: PROTOCOL_VERSION, client: Text::new("fuzz").unwrap() };
                    let _ = hub.handle_bytes(now, c, &f.to_bytes());
                }
            }
            Op::Login(i, user, roster, resume) => {
                if let Some(c) = pick(&conns, i) {
                    let _ = store.create_account(&user, "pw");
                    let f = Frame::Login {
                        reference: Ref(1),
                        user,
                        password: Text::new("pw").unwrap(),
                        resume_after: MessageId(resume as u64),
                        roster,
                    };
                    let _ = hub.handle_bytes(now, c, &f.to_bytes());
                }
            }
            Op::Send(i, target, body) => {
                if let (Some(c), Ok(body)) = (pick(&conns, i), Text::new(&body)) {
                    let f = Frame::Send { reference: Ref(2), target, body };
                    let _ = hub.handle_bytes(now, c, &f.to_bytes());
                }
            }
            Op::Advance(ms) => {
                now += Duration::from_millis(ms as u64 * 50);
                for &c in &conns {
                    if hub.poll_timeout(c).is_some_and(|t| t <= now) {
                        hub.handle_timeout(now, c);
                    }
                }
            }
            Op::Drain(i) => {
                if let Some(c) = pick(&conns, i) {
                    let mut out = Vec::new();
                    let d = hub.drain(c, &mut out, 1 << 16);
                    for f in &out {
                        assert!(matches!(confab_engine::decode(f, u32::MAX), Ok(Some(_))), "the hub writes whole, valid frames");
                    }
                    if d.close {
                        hub.disconnect(now, c);
                    }
                }
            }
            Op::Complete(n) => {
                for e in pending.drain(..(n as usize).min(pending.len())) {
                    for input in store.run(e) {
                        hub.handle_input(now, input);
                    }
                }
            }
            Op::Presence(user, online) => {
                let presence = if online { Presence::Online } else { Presence::Offline };
                hub.handle_presence(now, user, presence);
            }
            Op::Elsewhere(gap, sender, target, body) => {
                let id = MessageId(hub.last_id().0 + 1 + gap as u64);
                let message = StoredMessage {
                    id,
                    timestamp_ms: id.0,
                    sender,
                    target,
                    body,
                    kind: confab_engine::MessageKind::Message,
                    tags: confab_engine::ClientTags::default(),
                };
                hub.handle_committed(now, message, None);
            }
            Op::Disconnect(i) => {
                if let Some(c) = pick(&conns, i) {
                    hub.disconnect(now, c);
                }
            }
            Op::Shutdown => hub.shutdown(now, Duration::from_secs(1), "fuzz"),
        }
        while let Some(out) = hub.poll_output() {
            if let Output::Effect(e) = out {
                pending.push(e);
            }
        }
        // Every queue stays within its byte bound; only the final error of a
        // session closed for overflowing may stand alone beyond it.
        for &c in &conns {
            if let Some(q) = hub.queued_bytes(c) {
                assert!(q <= limit + 1024, "queue of {q} bytes over its bound of {limit}");
            }
        }
    }
});
