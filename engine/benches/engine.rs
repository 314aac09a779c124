//! Micro-benchmarks: the frame codec in bytes/s, and the hub routing one
//! room message to N sessions (encode once, one `Arc` clone per recipient)
//! including the writers' drains. Run with `cargo bench -p confab-engine`.

use confab_engine::Outgoing;
use std::hint::black_box;
use std::time::{Duration, Instant};

use confab_engine::effect::{ReplayLoaded, StoredMessage};
use confab_engine::frame::{Frame, Target, Text, PROTOCOL_VERSION};
use confab_engine::{
    decode, Config, ConnId, Effect, EffectResult, Hub, MessageId, Name, Output, Protocol, Ref,
    Source,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// A stream of typical traffic: mostly 100-byte room messages, some DMs, acks, pings.
fn typical_stream() -> Vec<u8> {
    let body = "x".repeat(100);
    let alice = Name::new("alice").unwrap();
    let mut out = Vec::new();
    for i in 0..1000u64 {
        let f = match i % 10 {
            0 => Frame::Ack {
                reference: Ref(i as u32),
                id: MessageId(i),
                timestamp_ms: 1_700_000_000_000,
            },
            1 => Frame::Ping { token: i },
            2 => Frame::Message {
                id: MessageId(i),
                timestamp_ms: 1_700_000_000_000,
                sender: alice,
                target: Target::User(Name::new("bob").unwrap()),
                body: Text::new(&body).unwrap(),
            },
            _ => Frame::Message {
                id: MessageId(i),
                timestamp_ms: 1_700_000_000_000,
                sender: alice,
                target: Target::Room,
                body: Text::new(&body).unwrap(),
            },
        };
        f.encode(&mut out);
    }
    out
}

fn codec(c: &mut Criterion) {
    let stream = typical_stream();
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("decode_typical_stream", |b| {
        b.iter(|| {
            let mut rest = &stream[..];
            let mut n = 0;
            while let Ok(Some((f, used))) = decode(rest, 65536) {
                black_box(&f);
                rest = &rest[used..];
                n += 1;
            }
            assert_eq!(n, 1000);
        })
    });
    let frames: Vec<Vec<u8>> = {
        let mut rest = &stream[..];
        let mut v = Vec::new();
        while let Ok(Some((_, used))) = decode(rest, 65536) {
            v.push(rest[..used].to_vec());
            rest = &rest[used..];
        }
        v
    };
    g.bench_function("encode_typical_stream", |b| {
        let decoded: Vec<Frame<'_>> = frames
            .iter()
            .map(|f| decode(f, 65536).unwrap().unwrap().0)
            .collect();
        let mut out = Vec::with_capacity(stream.len());
        b.iter(|| {
            out.clear();
            for f in &decoded {
                f.encode(&mut out);
            }
            black_box(&out);
        })
    });
    g.finish();
}

/// A hub with `n` logged-in sessions that skip the roster.
fn hub_with(n: usize) -> (Hub, Vec<ConnId>, Instant) {
    let config = Config {
        max_clients: 100_000,
        max_per_source: 100_000,
        send_queue_bytes: 64 << 20,
        ..Config::default()
    };
    let mut hub = Hub::new(config, [], MessageId(0));
    let now = Instant::now();
    let mut conns = Vec::new();
    for i in 0..n {
        let c = hub.connect(now, Source(i as u128), Protocol::CONFAB);
        let user = Name::new(&format!("u{i}")).unwrap();
        let mut bytes = Frame::Hello {
            version: PROTOCOL_VERSION,
            client: Text::new("bench").unwrap(),
        }
        .to_bytes();
        Frame::Login {
            reference: Ref(1),
            user,
            password: Text::new("pw").unwrap(),
            resume_after: MessageId(0),
            roster: false,
        }
        .encode(&mut bytes);
        hub.handle_bytes(now, c, &bytes);
        while let Some(o) = hub.poll_output() {
            match o {
                Output::Effect(Effect::Authenticate { conn, user, .. }) => hub.handle_result(
                    now,
                    EffectResult::Authenticated {
                        conn,
                        result: Ok(user),
                    },
                ),
                Output::Effect(Effect::Replay { conn, .. }) => hub.handle_result(
                    now,
                    EffectResult::Replayed {
                        conn,
                        result: Ok(ReplayLoaded::default()),
                    },
                ),
                _ => {}
            }
        }
        conns.push(c);
    }
    let mut sink = Vec::new();
    for &c in &conns {
        while hub.drain(c, &mut sink, 1 << 20).bytes > 0 {}
        sink.clear();
    }
    while hub.poll_output().is_some() {}
    (hub, conns, now)
}

fn routing(c: &mut Criterion) {
    let mut g = c.benchmark_group("route_room_message");
    g.measurement_time(Duration::from_secs(3));
    for n in [100usize, 1000, 10_000] {
        let (mut hub, conns, now) = hub_with(n);
        let sender = conns[0];
        let sender_name = hub.user(sender).unwrap();
        let body = "x".repeat(100);
        let mut id = 0;
        let mut sink: Vec<Outgoing> = Vec::with_capacity(64);
        g.throughput(Throughput::Elements(n as u64 - 1));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                id += 1;
                // What the server's writer does for one committed message:
                // the sender's ACK, then the routing.
                let m = StoredMessage {
                    id: confab_engine::MessageId(id),
                    timestamp_ms: id,
                    sender: sender_name,
                    target: Target::Room,
                    body: body.clone(),
                    kind: confab_engine::MessageKind::Message,
                    tags: confab_engine::ClientTags::default(),
                };
                hub.handle_result(
                    now,
                    EffectResult::Stored {
                        conn: sender,
                        reference: Ref(1),
                        result: Ok(m.committed()),
                    },
                );
                hub.handle_committed(now, m, Some(sender));
                // Each woken writer drains its queue, as the server's writers do.
                while let Some(o) = hub.poll_output() {
                    if let Output::Wake(c) = o {
                        hub.drain(c, &mut sink, 1 << 20);
                        sink.clear();
                    }
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, codec, routing);
criterion_main!(benches);
