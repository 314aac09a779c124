//! The hub driven by arbitrary input: several connections each fed arbitrary
//! bytes (with valid HELLO/LOGIN frames mixed in so deep states are reached),
//! clock jumps, disconnects, shutdown, and a store that answers effects,
//! sometimes late. Nothing may panic, and every queue stays within its bound.
#![no_main]
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use confab_engine::effect::{HistoryLoaded, ReplayLoaded, StoredMessage};
use confab_engine::frame::{Frame, Target, Text, PROTOCOL_VERSION};
use confab_engine::{Config, ConnId, Effect, EffectResult, Hub, Input, MessageId, Name, Output, Protocol, Ref, Source};

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
    /// A message another node committed, routed here.
    Elsewhere(Name, Target, String),
    Disconnect(u8),
    Shutdown,
}

/// The store's answer, and what it committed: a stored message is its
/// sender's ACK, then its routing, as from the server's writer.
fn answer(e: Effect, next_id: &mut u64) -> Vec<Input> {
    vec![match e {
        Effect::Authenticate { conn, user, password } => EffectResult::Authenticated {
            conn,
            result: if password.expose().len() % 3 == 0 {
                Err(confab_engine::ProtocolError::BadCredentials { retry: std::time::Duration::ZERO })
            } else {
                Ok(user)
            },
        },
        Effect::Register { conn, .. } => EffectResult::Registered { conn, result: Ok(()) },
        Effect::Store { conn, reference, message } => {
            *next_id += 1;
            let message = StoredMessage {
                id: MessageId(*next_id),
                timestamp_ms: *next_id,
                sender: message.sender,
                target: message.target,
                body: message.body,
            };
            let stored = EffectResult::Stored { conn, reference, result: Ok(message.committed()) };
            return vec![stored.into(), Input::Committed { message, origin: Some(conn) }];
        }
        Effect::StoreGroup { conn, reference, op } => {
            let stored = EffectResult::GroupStored { conn, reference, op: op.clone(), result: Ok(()) };
            return vec![stored.into(), Input::GroupCommitted { op, origin: Some(conn) }];
        }
        Effect::LoadHistory { conn, reference, target, .. } => EffectResult::History {
            conn,
            reference,
            target,
            result: Ok(HistoryLoaded::default()),
        },
        Effect::Replay { conn, .. } => EffectResult::Replayed { conn, result: Ok(ReplayLoaded::default()) },
        _ => return Vec::new(),
    }
    .into()]
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
    let mut next_id = 0;
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
                    for input in answer(e, &mut next_id) {
                        hub.handle_input(now, input);
                    }
                }
            }
            Op::Elsewhere(sender, target, body) => {
                next_id += 1;
                let message = StoredMessage { id: MessageId(next_id), timestamp_ms: next_id, sender, target, body };
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
