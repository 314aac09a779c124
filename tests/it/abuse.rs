//! Abuse: floods, slowloris, a client that never reads, garbage, connection
//! and login storms. In each, three well-behaved users ([`Good`]) exchange
//! room messages and direct messages during the attack, and each of them
//! must receive every message meant for them exactly once, in id order,
//! with no error and nothing reported missed.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::net::{Ipv4Addr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use confab::{Connection, ConnectionError, Event, LoginOptions};
use confab_engine::frame::{ErrorCode, Frame, Text, PROTOCOL_VERSION};
use confab_engine::{MessageId, Name, Ref, Target};

use crate::harness::{password, Rng, Server, WAIT};
use crate::raw::Raw;

fn name(s: &str) -> Name {
    Name::new(s).expect("a valid test name")
}

const GOOD: [&str; 3] = ["good0", "good1", "good2"];
const BARRIER_USER: &str = "good-barrier";
const BARRIER: &str = "barrier: everything before me has arrived";

/// Logs `user` in (without the roster), retrying while the server is BUSY,
/// as a well-behaved client does.
fn log_in(port: u16, user: &str) -> Connection {
    let mut c = Connection::connect_timeout("127.0.0.1", port, WAIT)
        .unwrap_or_else(|e| panic!("{user} cannot connect: {e}"));
    let options = LoginOptions {
        resume_after: MessageId(0),
        roster: false,
    };
    let deadline = Instant::now() + WAIT;
    loop {
        match c.login(name(user), &password(user), options, WAIT) {
            Ok(_) => return c,
            Err(ConnectionError::Refused(e)) if e.code == ErrorCode::Busy => {
                assert!(
                    Instant::now() < deadline,
                    "{user}: still BUSY after {WAIT:?}"
                );
                // Polling the server's capacity, as it asks.
                thread::sleep(Duration::from_millis(
                    u64::from(e.retry_after_ms).clamp(1, 100),
                ));
            }
            Err(e) => panic!("{user} cannot log in: {e}"),
        }
    }
}

/// A message as one good user sent or received it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Msg {
    id: MessageId,
    body: String,
}

/// What one good user's thread saw.
#[derive(Debug)]
struct Seen {
    /// Messages from the good users, in arrival order.
    messages: Vec<Msg>,
    /// Errors and MISSED notices: there must be none.
    trouble: Vec<String>,
}

/// Three well-behaved users chatting while something else happens.
struct Good {
    go: Vec<Sender<()>>,
    sent: Receiver<(usize, Vec<(Msg, Target)>)>,
    threads: Vec<JoinHandle<Seen>>,
    barrier: Connection,
    n: usize,
}

impl Good {
    /// Registers the good users (before an attack that could make
    /// registering BUSY).
    fn register(server: &Server) {
        for user in GOOD.iter().chain([&BARRIER_USER]) {
            server.register(user, &password(user));
        }
    }

    /// Logs the good users in, each on a thread of its own, ready to send
    /// `n` room messages (of about `body_len` bytes) and `n` direct messages.
    fn log_in(server: &Server, n: usize, body_len: usize) -> Good {
        let port = server.port();
        let (ready_tx, ready) = mpsc::channel();
        let (sent_tx, sent) = mpsc::channel();
        let mut go = Vec::new();
        let mut threads = Vec::new();
        for me in 0..GOOD.len() {
            let (go_tx, go_rx) = mpsc::channel();
            go.push(go_tx);
            let (ready_tx, sent_tx) = (ready_tx.clone(), sent_tx.clone());
            threads.push(thread::spawn(move || {
                good_user(port, me, n, body_len, &ready_tx, &go_rx, &sent_tx)
            }));
        }
        let barrier = log_in(port, BARRIER_USER);
        for _ in 0..GOOD.len() {
            ready
                .recv_timeout(WAIT)
                .unwrap_or_else(|e| panic!("the good users did not log in: {e:?}"));
        }
        Good {
            go,
            sent,
            threads,
            barrier,
            n,
        }
    }

    /// Lets them chat; waits until each has received everything meant for
    /// them (a last room message is the barrier: messages arrive in id
    /// order), and checks that it came exactly once. Returns every room
    /// message they sent, and the barrier.
    #[track_caller]
    fn chat(mut self) -> (Vec<Msg>, Msg) {
        let started = Instant::now();
        for go in &self.go {
            go.send(()).expect("a good user waits for go");
        }
        let mut sent: BTreeMap<usize, Vec<(Msg, Target)>> = BTreeMap::new();
        for _ in 0..GOOD.len() {
            let (me, msgs) = self
                .sent
                .recv_timeout(WAIT)
                .unwrap_or_else(|e| panic!("the good users did not finish sending: {e:?}"));
            assert_eq!(msgs.len(), 2 * self.n);
            sent.insert(me, msgs);
        }
        let ack = self
            .barrier
            .send(Target::Room, BARRIER, WAIT)
            .expect("the barrier is stored");
        let barrier = Msg {
            id: ack.id,
            body: BARRIER.to_owned(),
        };
        let seen: Vec<Seen> = self
            .threads
            .drain(..)
            .map(|t| t.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect();

        for (me, seen) in seen.iter().enumerate() {
            let who = GOOD[me];
            assert!(seen.trouble.is_empty(), "{who}: {:?}", seen.trouble);
            let mut expected: Vec<Msg> = sent
                .iter()
                .filter(|(from, _)| **from != me)
                .flat_map(|(_, msgs)| msgs.iter())
                .filter(|(_, to)| match to {
                    Target::Room => true,
                    Target::User(u) => u.as_str() == who,
                    Target::Group(_) => false,
                })
                .map(|(m, _)| m.clone())
                .collect();
            expected.push(barrier.clone());
            expected.sort();
            let got = &seen.messages;
            assert!(
                got.windows(2).all(|w| w[0].id < w[1].id),
                "{who}: not in id order, or twice: {:?}",
                got.iter().map(|m| m.id).collect::<Vec<_>>()
            );
            if *got != expected {
                let got_ids: HashSet<MessageId> = got.iter().map(|m| m.id).collect();
                let want_ids: HashSet<MessageId> = expected.iter().map(|m| m.id).collect();
                panic!(
                    "{who}: missing {:?}, unexpected {:?}",
                    want_ids.difference(&got_ids).collect::<Vec<_>>(),
                    got_ids.difference(&want_ids).collect::<Vec<_>>()
                );
            }
        }
        println!("the good users chatted in {:?}", started.elapsed());
        let mut room: Vec<Msg> = sent
            .into_values()
            .flatten()
            .filter(|(_, to)| *to == Target::Room)
            .map(|(m, _)| m)
            .collect();
        room.sort();
        (room, barrier)
    }
}

/// One good user: logs in, waits for go, sends, then reads until the barrier.
fn good_user(
    port: u16,
    me: usize,
    n: usize,
    body_len: usize,
    ready: &Sender<usize>,
    go: &Receiver<()>,
    sent: &Sender<(usize, Vec<(Msg, Target)>)>,
) -> Seen {
    let who = GOOD[me];
    let mut c = log_in(port, who);
    ready.send(me).expect("the test waits");
    go.recv_timeout(WAIT).expect("go");
    let peer = name(GOOD[(me + 1) % GOOD.len()]);
    let mut mine = Vec::new();
    for i in 0..n {
        let mut room = format!("{who} room {i} ");
        while room.len() < body_len {
            room.push('x');
        }
        for (body, target) in [
            (room, Target::Room),
            (format!("{who} dm {i}"), Target::User(peer)),
        ] {
            let ack = c
                .send(target, &body, WAIT)
                .unwrap_or_else(|e| panic!("{who}: sending {i}: {e}"));
            mine.push((Msg { id: ack.id, body }, target));
        }
    }
    sent.send((me, mine)).expect("the test waits");

    let mut seen = Seen {
        messages: Vec::new(),
        trouble: Vec::new(),
    };
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.next_event(left) {
            Ok(Some(Event::Message(m))) => {
                let from = m.sender.as_str();
                if m.body == BARRIER && from == BARRIER_USER {
                    seen.messages.push(Msg {
                        id: m.id,
                        body: m.body,
                    });
                    return seen;
                }
                if GOOD.contains(&from) {
                    seen.messages.push(Msg {
                        id: m.id,
                        body: m.body,
                    });
                }
            }
            Ok(Some(e @ (Event::Error(_) | Event::Missed { .. }))) => {
                seen.trouble.push(format!("{e:?}"));
            }
            Ok(Some(_)) => {}
            Ok(None) => panic!("{who}: no barrier within {WAIT:?}; {seen:?}"),
            Err(e) => panic!("{who}: the connection failed: {e}; {seen:?}"),
        }
    }
}

/// A TCP connection to the server from another loopback address (the
/// server counts failed logins per address too, and the good users come
/// from 127.0.0.1). std cannot bind before connecting, so this calls the
/// C library's socket, bind and connect (Linux's sockaddr_in layout).
#[cfg(target_os = "linux")]
pub(crate) fn connect_from(local: Ipv4Addr, port: u16) -> TcpStream {
    use std::os::fd::FromRawFd;

    #[repr(C)]
    struct SockaddrIn {
        family: u16,
        port: [u8; 2],
        addr: [u8; 4],
        zero: [u8; 8],
    }
    extern "C" {
        fn socket(domain: i32, kind: i32, protocol: i32) -> i32;
        fn bind(fd: i32, addr: *const SockaddrIn, len: u32) -> i32;
        fn connect(fd: i32, addr: *const SockaddrIn, len: u32) -> i32;
        fn close(fd: i32) -> i32;
    }
    const AF_INET: u16 = 2;
    const SOCK_STREAM: i32 = 1;
    const SOCK_CLOEXEC: i32 = 0o2_000_000;
    let sockaddr = |ip: Ipv4Addr, port: u16| SockaddrIn {
        family: AF_INET,
        port: port.to_be_bytes(),
        addr: ip.octets(),
        zero: [0; 8],
    };
    let len = std::mem::size_of::<SockaddrIn>() as u32;
    let (from, to) = (sockaddr(local, 0), sockaddr(Ipv4Addr::LOCALHOST, port));
    // SAFETY: plain system calls on a descriptor we own, with pointers to
    // live, correctly laid out addresses; the descriptor goes to exactly
    // one owner (the TcpStream) or is closed.
    unsafe {
        let fd = socket(i32::from(AF_INET), SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket(): {}", std::io::Error::last_os_error());
        if bind(fd, &from, len) != 0 || connect(fd, &to, len) != 0 {
            let e = std::io::Error::last_os_error();
            close(fd);
            panic!("connecting from {local}: {e}");
        }
        TcpStream::from_raw_fd(fd)
    }
}

fn hello_bytes() -> Vec<u8> {
    Frame::Hello {
        version: PROTOCOL_VERSION,
        client: Text::new("abuse").expect("short"),
    }
    .to_bytes()
}

fn send_bytes(body: &str) -> Vec<u8> {
    Frame::Send {
        reference: Ref(1),
        target: Target::Room,
        body: Text::new(body).expect("short"),
    }
    .to_bytes()
}

fn error_code(g: &crate::raw::Got) -> Option<ErrorCode> {
    g.error.map(|(code, _)| code)
}

#[test]
fn a_flooder_is_rate_limited_then_disconnected_and_the_others_lose_nothing() {
    let server = Server::start_with(&["--flood-timeout", "3"]);
    Good::register(&server);
    server.register("flooder", &password("flooder"));
    let good = Good::log_in(&server, 15, 40);

    let mut raw = Raw::connect(&server);
    raw.login("flooder", &password("flooder"));
    let logged_in = Instant::now();
    let mut out = raw.clone_stream();
    out.set_write_timeout(Some(WAIT)).expect("a write timeout");
    // Full speed, never waiting for an answer, until the server hangs up
    // (in big writes, as a flooder does: see the next test for small ones).
    let writer = thread::spawn(move || {
        let frames = send_bytes("flood").repeat(4096);
        while out.write_all(&frames).is_ok() {}
    });
    let (got_tx, got) = mpsc::channel();
    let reader = thread::spawn(move || {
        while let Some(g) = raw.recv() {
            if got_tx.send(g).is_err() {
                break;
            }
        }
    });

    let mut frames = Vec::new();
    loop {
        let g = got.recv_timeout(WAIT).expect("RATE_LIMITED in time");
        let limited = error_code(&g) == Some(ErrorCode::RateLimited);
        frames.push(g);
        if limited {
            break;
        }
    }
    // The others chat while the flooder is held back.
    good.chat();
    frames.extend(got.iter());
    let flooded_at = Instant::now();
    reader.join().expect("the flooder's reader");
    writer.join().expect("the flooder's writer");

    let codes: Vec<ErrorCode> = frames.iter().filter_map(error_code).collect();
    assert_eq!(
        codes,
        [ErrorCode::RateLimited, ErrorCode::Flooding],
        "told once that it is limited, then disconnected: {frames:?}"
    );
    let limited = frames
        .iter()
        .find(|g| error_code(g) == Some(ErrorCode::RateLimited))
        .expect("seen");
    assert_eq!(limited.error, Some((ErrorCode::RateLimited, Ref(0))));
    assert!(
        !limited.debug.contains("retry_after_ms: 0,"),
        "RATE_LIMITED says when: {}",
        limited.debug
    );
    assert!(
        flooded_at - logged_in >= Duration::from_secs(3),
        "FLOODING came {:?} after the flood began, before the flood timeout",
        flooded_at - logged_in
    );
    // Slowed to the rate limit (20/s after a burst of 50), not dropped.
    let acks = frames.iter().filter(|g| g.name == "ACK").count() as f64;
    let secs = (flooded_at - logged_in).as_secs_f64();
    assert!(acks >= 50.0, "the burst was accepted: {acks} ACKs");
    assert!(
        acks <= 50.0 + 20.0 * secs + 5.0,
        "{acks} ACKs in {secs:.1} s: not rate limited"
    );
    assert!(
        frames
            .iter()
            .all(|g| matches!(g.name, "ACK" | "MESSAGE" | "ERROR" | "PING")),
        "{frames:?}"
    );
}

#[test]
fn a_flooder_that_never_stops_is_told_rate_limited_once_and_disconnected_on_time() {
    let server = Server::start_with(&["--flood-timeout", "2"]);
    server.register("flooder", &password("flooder"));
    let mut raw = Raw::connect(&server);
    raw.login("flooder", &password("flooder"));
    // The burst (50) and ten more: the server holds the ten back.
    raw.write(&send_bytes("flood").repeat(60))
        .expect("the server reads");
    loop {
        let g = raw.next();
        match (g.name, error_code(&g)) {
            ("ACK", _) => {}
            (_, Some(ErrorCode::RateLimited)) => break,
            _ => panic!("before RATE_LIMITED: {}", g.debug),
        }
    }
    let limited_at = Instant::now();
    // And it never stops: more is waiting before the server has worked
    // through the ten (half a second at 20 per second).
    let mut out = raw.clone_stream();
    out.set_write_timeout(Some(WAIT)).expect("a write timeout");
    let writer = thread::spawn(move || {
        let frames = send_bytes("flood").repeat(4096);
        while out.write_all(&frames).is_ok() {}
    });
    let mut codes = Vec::new();
    while let Some(g) = raw.recv() {
        if let Some(code) = error_code(&g) {
            codes.push((code, limited_at.elapsed()));
        }
    }
    writer.join().expect("the flooder's writer");
    // The session stayed over its limit from the first RATE_LIMITED on:
    // one notice, and FLOODING once the flood timeout has passed.
    let (last, after) = *codes.last().expect("an error");
    assert_eq!(
        codes.iter().map(|c| c.0).collect::<Vec<_>>(),
        [ErrorCode::Flooding],
        "after RATE_LIMITED (at 0): {codes:?}"
    );
    assert_eq!(last, ErrorCode::Flooding);
    assert!(
        after < Duration::from_millis(2400),
        "FLOODING after {after:?}"
    );
}

#[test]
fn two_hundred_slowloris_connections_are_timed_out_and_the_others_lose_nothing() {
    let server = Server::start_with(&["--frame-timeout", "1", "--auth-timeout", "2"]);
    Good::register(&server);
    let good = Good::log_in(&server, 15, 40);

    let login = Frame::Login {
        reference: Ref(1),
        user: name("loris"),
        password: Text::new("loris-secret").expect("short"),
        resume_after: MessageId(0),
        roster: false,
    }
    .to_bytes();
    let started = Instant::now();
    let lorises: Vec<(Raw, ErrorCode)> = (0..200)
        .map(|i| {
            let mut r = Raw::connect(&server);
            let expected = match i % 4 {
                // Half a length field.
                0 => {
                    r.write(&[0, 0]).expect("the server reads");
                    ErrorCode::FrameTimeout
                }
                // Half a HELLO.
                1 => {
                    r.write(&hello_bytes()[..6]).expect("the server reads");
                    ErrorCode::FrameTimeout
                }
                // HELLO, then half a LOGIN.
                2 => {
                    r.hello();
                    r.write(&login[..login.len() / 2])
                        .expect("the server reads");
                    ErrorCode::FrameTimeout
                }
                // HELLO, then nothing.
                _ => {
                    r.hello();
                    ErrorCode::AuthTimeout
                }
            };
            (r, expected)
        })
        .collect();
    good.chat();

    for (i, (mut r, code)) in lorises.into_iter().enumerate() {
        let g = r.next();
        assert_eq!(error_code(&g), Some(code), "slowloris {i}: {}", g.debug);
        r.expect_closed();
    }
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "the auth timeouts came early: {:?}",
        started.elapsed()
    );
    // Their slots are free again.
    let mut raw = Raw::connect(&server);
    raw.hello();
}

#[test]
fn a_client_that_never_reads_is_told_what_it_missed_and_slows_no_one() {
    let server = Server::start_with(&[
        "--send-queue-bytes",
        "262144",
        "--max-body",
        "8000",
        "--msg-rate",
        "10000",
        "--msg-burst",
        "10000",
        "--byte-rate",
        "1000000000",
        "--byte-burst",
        "1000000000",
    ]);
    Good::register(&server);
    server.register("sloth", &password("sloth"));
    // Logged in, then never read from while the room is busy.
    let mut sloth = log_in(server.port(), "sloth");
    let good = Good::log_in(&server, 300, 8_000);
    let started = Instant::now();
    let (room, barrier) = good.chat();
    let busy_for = started.elapsed();
    assert!(
        busy_for < Duration::from_secs(10),
        "the busy room took {busy_for:?}: slowed down by the sloth?"
    );

    // Now the sloth reads: what arrives, plus what MISSED reports, is every
    // room message, once; or the server gave up on it with SLOW_CONSUMER.
    // Reads until the barrier has come and the MISSED notices (sent once
    // the queue has room again, so possibly after it) cover every room
    // message that did not.
    let all: Vec<MessageId> = room.iter().map(|m| m.id).chain([barrier.id]).collect();
    let mut got: Vec<MessageId> = Vec::new();
    let mut missed: Vec<(MessageId, MessageId, u32)> = Vec::new();
    let mut slow_consumer = false;
    let deadline = Instant::now() + WAIT;
    loop {
        let reported: u32 = missed.iter().map(|m| m.2).sum();
        if got.contains(&barrier.id) && got.len() + reported as usize >= all.len() {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match sloth.next_event(left) {
            Ok(Some(Event::Message(m))) => got.push(m.id),
            Ok(Some(Event::Missed {
                target,
                first,
                last,
                count,
            })) => {
                assert_eq!(target, Target::Room);
                missed.push((first, last, count));
            }
            Ok(Some(Event::Error(e))) if e.code == ErrorCode::SlowConsumer => {
                slow_consumer = true;
            }
            Ok(Some(Event::ServerHello(_) | Event::CaughtUp { .. })) => {}
            Ok(Some(other)) => panic!("the sloth got {other:?}"),
            Ok(None) => panic!(
                "within {WAIT:?} the sloth got {} of {} room messages (barrier: {}) and \
                 MISSED for {reported}: {missed:?}",
                got.len(),
                all.len(),
                got.contains(&barrier.id)
            ),
            Err(ConnectionError::ClosedWithError(e)) if e.code == ErrorCode::SlowConsumer => {
                slow_consumer = true;
                break;
            }
            Err(e) => panic!("the sloth's connection: {e}"),
        }
    }
    println!(
        "the sloth got {} of {} room messages; missed {missed:?}; slow consumer: {slow_consumer}",
        got.len(),
        all.len()
    );
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "in id order, once each"
    );
    let sent: HashSet<MessageId> = all.iter().copied().collect();
    assert!(got.iter().all(|id| sent.contains(id)), "{got:?}");
    assert!(
        slow_consumer || !missed.is_empty(),
        "the sloth's queue never overflowed: make the room busier"
    );
    if slow_consumer {
        return;
    }
    // Every room message not received is reported, with the right counts.
    let received: HashSet<MessageId> = got.iter().copied().collect();
    let not_received: Vec<MessageId> = all
        .iter()
        .copied()
        .filter(|id| !received.contains(id))
        .collect();
    for &(first, last, count) in &missed {
        let inside = not_received
            .iter()
            .filter(|id| (first..=last).contains(*id))
            .count();
        assert_eq!(inside, count as usize, "MISSED {first}..={last}");
    }
    for id in &not_received {
        assert!(
            missed.iter().any(|(f, l, _)| (f..=l).contains(&id)),
            "{id} neither received nor reported missed"
        );
    }
    assert_eq!(
        missed.iter().map(|m| m.2 as usize).sum::<usize>(),
        not_received.len()
    );
    // And they are in history, as MISSED promises.
    let mut before = not_received.iter().max().map_or(MessageId(0), |m| m.next());
    let mut in_history = HashSet::new();
    while in_history.len() < not_received.len() {
        let page = sloth
            .history(Target::Room, before, 0, WAIT)
            .expect("a history page");
        let Some(oldest) = page.messages.first() else {
            break;
        };
        before = oldest.id;
        in_history.extend(
            page.messages
                .iter()
                .map(|m| m.id)
                .filter(|id| not_received.contains(id)),
        );
        if !page.more {
            break;
        }
    }
    assert_eq!(in_history.len(), not_received.len());
}

#[test]
fn garbage_and_oversized_frames_from_many_connections_cost_the_others_nothing() {
    let mut rng = Rng::from_env_or_clock("garbage");
    let server = Server::start();
    Good::register(&server);
    server.register("mallory", &password("mallory"));
    let good = Good::log_in(&server, 15, 40);

    let mut bad_utf8 = send_bytes("ab");
    let n = bad_utf8.len();
    bad_utf8[n - 2..].copy_from_slice(&[0xc3, 0x28]);
    let mut attackers: Vec<(Raw, Vec<ErrorCode>)> = Vec::new();
    for i in 0..64 {
        let mut r = Raw::connect(&server);
        let (bytes, codes): (Vec<u8>, Vec<ErrorCode>) = match i % 8 {
            0 => {
                // Random bytes, announcing a frame far over the limit.
                let len = 4 + rng.below(2000) as usize;
                let mut b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                b[0] = b[0].max(1);
                (b, vec![ErrorCode::FrameTooLarge])
            }
            1 => (
                b"GET / HTTP/1.1\r\nHost: confab\r\n\r\n".to_vec(),
                vec![ErrorCode::FrameTooLarge],
            ),
            2 => {
                // Over the pre-login limit, body and all.
                let mut b = 100_000u32.to_be_bytes().to_vec();
                b.extend(std::iter::repeat_n(0x19, 64 * 1024));
                (b, vec![ErrorCode::FrameTooLarge])
            }
            3 => (
                vec![0, 0, 0, 4, 0x10, 0xff, 0xff, 0xff],
                vec![ErrorCode::MalformedFrame],
            ),
            4 => (vec![0, 0, 0, 0], vec![ErrorCode::MalformedFrame]),
            5 => {
                r.login("mallory", &password("mallory"));
                (bad_utf8.clone(), vec![ErrorCode::MalformedFrame])
            }
            6 => {
                // Over the limit after login, body and all.
                r.login("mallory", &password("mallory"));
                let mut b = 70_000u32.to_be_bytes().to_vec();
                b.extend(std::iter::repeat_n(b'x', 100 * 1024));
                (b, vec![ErrorCode::FrameTooLarge])
            }
            _ => {
                // An unknown type is skipped; an empty frame is not.
                let mut b = hello_bytes();
                b.extend([0, 0, 0, 3, 0x7e, 1, 2, 0, 0, 0, 0]);
                (
                    b,
                    vec![ErrorCode::UnknownFrameType, ErrorCode::MalformedFrame],
                )
            }
        };
        // The server may refuse before it has read everything.
        let _ = r.write(&bytes);
        attackers.push((r, codes));
    }
    good.chat();

    for (i, (mut r, codes)) in attackers.into_iter().enumerate() {
        // A logged-in attacker may get the room's chat before its error.
        let got: Vec<Option<ErrorCode>> = std::iter::from_fn(|| r.recv())
            .filter(|g| !matches!(g.name, "SERVER_HELLO" | "PING" | "MESSAGE"))
            .map(|g| error_code(&g))
            .collect();
        let want: Vec<Option<ErrorCode>> = codes.into_iter().map(Some).collect();
        assert_eq!(got, want, "attacker {i}: its errors, then closed");
    }
}

#[test]
fn a_connection_storm_beyond_max_clients_is_turned_away_and_the_others_stay() {
    const MAX: usize = 24;
    let server = Server::start_with(&["--max-clients", &MAX.to_string()]);
    Good::register(&server);
    let good = Good::log_in(&server, 15, 40);

    let storm: Vec<Raw> = (0..100)
        .map(|_| {
            let mut r = Raw::connect(&server);
            let _ = r.write(&hello_bytes());
            r
        })
        .collect();
    good.chat();

    let (mut accepted, mut refused) = (0, 0);
    for mut r in storm {
        let g = r.next();
        match (g.name, error_code(&g)) {
            ("SERVER_HELLO", _) => accepted += 1,
            (_, Some(ErrorCode::TooManyConnections)) => {
                assert_eq!(g.error, Some((ErrorCode::TooManyConnections, Ref(0))));
                r.expect_closed();
                refused += 1;
            }
            _ => panic!("a storm connection got {}", g.debug),
        }
    }
    // Four good connections (three users and the barrier's) stayed.
    assert!(accepted <= MAX - 4, "{accepted} storm connections accepted");
    assert_eq!(accepted + refused, 100);
    println!("storm: {accepted} accepted, {refused} refused");

    // Once the storm is gone, there is room again.
    let deadline = Instant::now() + WAIT;
    loop {
        let mut r = Raw::connect(&server);
        let _ = r.write(&hello_bytes());
        match r.recv() {
            Some(g) if g.name == "SERVER_HELLO" => break,
            _ => assert!(Instant::now() < deadline, "no room after the storm"),
        }
        // The refused connections take a moment to be let go of.
        thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_login_flood_with_wrong_passwords_is_refused_while_good_users_log_in_and_chat() {
    // The account-wide lock (a distributed attack) is out of reach: the
    // flood's 40 addresses, five failures each at most within the test,
    // must not make it flaky.
    let server = Server::start_with(&[
        "--auth-threads",
        "1",
        "--auth-queue",
        "4",
        "--lockout-account-after",
        "1000",
    ]);
    Good::register(&server);
    server.register("target", &password("target"));
    let stop = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(AtomicUsize::new(0));
    let port = server.port();

    // Attackers from other loopback addresses, many connections each,
    // every connection with a login attempt in flight.
    let attackers: Vec<JoinHandle<Vec<ErrorCode>>> = (0..4u8)
        .map(|t| {
            let (stop, attempts) = (stop.clone(), attempts.clone());
            thread::spawn(move || {
                let mut codes = Vec::new();
                // A connection that tried more than its pre-auth budget
                // was closed (FLOODING) and its address barred for a
                // while: the attacker reconnects, as a real one would, and
                // gives up on an address the server turns away.
                let fresh = |i: u8| {
                    let ip = Ipv4Addr::new(127, 0, 1 + t, 2 + i);
                    let mut r = Raw::from_stream(connect_from(ip, port));
                    r.frame(&Frame::Hello {
                        version: PROTOCOL_VERSION,
                        client: Text::new("attacker").expect("short"),
                    });
                    let g = r.recv()?;
                    match error_code(&g) {
                        Some(ErrorCode::TooManyConnections) => None,
                        _ => Some(r),
                    }
                };
                let mut conns: Vec<Option<Raw>> = (0..10u8).map(fresh).collect();
                let mut attempt = 0u32;
                while !stop.load(Ordering::Relaxed) && conns.iter().any(Option::is_some) {
                    for (i, slot) in conns.iter_mut().enumerate() {
                        let Some(r) = slot else { continue };
                        attempt += 1;
                        // One real account, and names nobody has.
                        let user = if attempt % 2 == 1 {
                            format!("nobody{t}-{attempt}")
                        } else {
                            "target".to_owned()
                        };
                        let login = Frame::Login {
                            reference: Ref(attempt),
                            user: name(&user),
                            password: Text::new("guess").expect("short"),
                            resume_after: MessageId(0),
                            roster: false,
                        };
                        if r.write(&login.to_bytes()).is_err() {
                            *slot = fresh(i as u8);
                            match slot {
                                Some(r) => r.frame(&login),
                                None => continue,
                            }
                        }
                    }
                    for (i, slot) in conns.iter_mut().enumerate() {
                        let Some(r) = slot else { continue };
                        let g = loop {
                            match r.recv() {
                                Some(g) if g.name == "PING" => continue,
                                other => break other,
                            }
                        };
                        let Some(g) = g else {
                            *slot = fresh(i as u8);
                            continue;
                        };
                        codes.push(
                            error_code(&g)
                                .unwrap_or_else(|| panic!("a wrong password got {}", g.debug)),
                        );
                        attempts.fetch_add(1, Ordering::Relaxed);
                    }
                }
                codes
            })
        })
        .collect();

    // The good users log in during the flood, and chat.
    let deadline = Instant::now() + WAIT;
    while attempts.load(Ordering::Relaxed) < 100 {
        assert!(Instant::now() < deadline, "the flood did not start");
        thread::sleep(Duration::from_millis(1));
    }
    let good = Good::log_in(&server, 15, 40);
    good.chat();
    stop.store(true, Ordering::Relaxed);
    let codes: Vec<ErrorCode> = attackers
        .into_iter()
        .flat_map(|t| t.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
        .collect();
    let count = |c: ErrorCode| codes.iter().filter(|x| **x == c).count();
    println!(
        "login flood: {} attempts: {} BAD_CREDENTIALS, {} LOCKED_OUT, {} BUSY, {} FLOODING",
        codes.len(),
        count(ErrorCode::BadCredentials),
        count(ErrorCode::LockedOut),
        count(ErrorCode::Busy),
        count(ErrorCode::Flooding)
    );
    assert!(
        codes.iter().all(|c| matches!(
            c,
            ErrorCode::BadCredentials
                | ErrorCode::LockedOut
                | ErrorCode::Busy
                | ErrorCode::Flooding
        )),
        "{codes:?}"
    );
    assert!(
        count(ErrorCode::BadCredentials) > 0,
        "passwords were checked"
    );
    assert!(count(ErrorCode::LockedOut) > 0, "the lockout kicked in");
    // The attackers locked themselves out, not the owner of the attacked
    // account, who logs in from an address that never failed.
    drop(log_in(port, "target"));
}

/// Wrong passwords from one address lock that address out of the account;
/// the owner, at another address, logs in with the right password all the
/// while.
#[cfg(target_os = "linux")]
#[test]
fn an_attacker_locks_itself_out_and_the_owner_at_another_address_logs_in() {
    let server = Server::start_with(&["--lockout-after", "2"]);
    server.register("victim", &password("victim"));
    let mut attacker = Raw::from_stream(connect_from(Ipv4Addr::new(127, 0, 0, 2), server.port()));
    attacker.hello();
    let mut attempt = |reference: u32, password: &str| {
        attacker.frame(&Frame::Login {
            reference: Ref(reference),
            user: name("victim"),
            password: Text::new(password).expect("short"),
            resume_after: MessageId(0),
            roster: false,
        });
        let g = attacker.next();
        (g.error.map(|(code, _)| code), g.debug)
    };
    // The first failure is free; the second locks the address out...
    assert_eq!(attempt(1, "guess1").0, Some(ErrorCode::BadCredentials));
    let (code, debug) = attempt(2, "guess2");
    assert_eq!(code, Some(ErrorCode::BadCredentials), "{debug}");
    assert!(debug.contains("retry_after_ms: 300000"), "{debug}");
    // ... so that even the right password is refused from there.
    let (code, debug) = attempt(3, &password("victim"));
    assert_eq!(code, Some(ErrorCode::LockedOut), "{debug}");

    // The owner, from 127.0.0.1, is not held up.
    drop(log_in(server.port(), "victim"));
}

/// A storm of connections from one address at its limit, each refused and
/// held open by the attacker, on a full server: once some users leave, a
/// client from another address gets in and logs in, and the log holds no
/// line per refusal.
#[cfg(target_os = "linux")]
#[test]
fn a_refused_connection_storm_never_keeps_others_out() {
    let server = Server::start_with(&["--max-per-source", "5", "--max-clients", "10"]);
    server.register("legit", &password("legit"));
    let port = server.port();
    let storm_ip = Ipv4Addr::new(127, 0, 0, 2);
    // Full: five from the storm's address, five users from another.
    let held: Vec<Raw> = (0..5)
        .map(|_| {
            let mut r = Raw::from_stream(connect_from(storm_ip, port));
            r.hello();
            r
        })
        .collect();
    let users: Vec<Raw> = (0..5)
        .map(|_| {
            let mut r = Raw::from_stream(connect_from(Ipv4Addr::new(127, 0, 0, 3), port));
            r.hello();
            r
        })
        .collect();

    // The storm: a connection every 2 ms, each kept open (the last 500).
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    let storm = {
        let (stop, refused) = (stop.clone(), refused.clone());
        thread::spawn(move || {
            let mut open = std::collections::VecDeque::new();
            while !stop.load(Ordering::Relaxed) {
                let s = connect_from(storm_ip, port);
                let _ = (&s).write_all(&hello_bytes());
                open.push_back(s);
                if open.len() > 500 {
                    open.pop_front();
                }
                refused.fetch_add(1, Ordering::Relaxed);
                thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let deadline = Instant::now() + WAIT;
    while refused.load(Ordering::Relaxed) < 200 {
        assert!(Instant::now() < deadline, "the storm did not start");
        thread::sleep(Duration::from_millis(5));
    }

    // The users leave; once the server has let go of them, there is room.
    let addrs: Vec<String> = users
        .iter()
        .map(|r| {
            r.clone_stream()
                .local_addr()
                .expect("a local address")
                .to_string()
        })
        .collect();
    drop(users);
    for a in &addrs {
        server.wait_log("a user's close", |l| {
            l.contains("connection closed") && l.contains(&format!("peer={a} "))
        });
    }
    let mut c = Connection::connect_timeout("127.0.0.1", port, WAIT)
        .unwrap_or_else(|e| panic!("legit cannot connect during the storm: {e}"));
    let options = LoginOptions {
        resume_after: MessageId(0),
        roster: false,
    };
    c.login(name("legit"), &password("legit"), options, WAIT)
        .unwrap_or_else(|e| panic!("legit cannot log in during the storm: {e}"));
    stop.store(true, Ordering::Relaxed);
    storm
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e));
    drop(held);

    let n = refused.load(Ordering::Relaxed);
    let lines = server
        .log()
        .lines()
        .filter(|l| l.contains("127.0.0.2"))
        .count();
    println!("storm: {n} refused connections, {lines} log lines naming the storm's address");
    // Its five accepted connections' lines, and the first refusal.
    assert!(lines <= 11, "{lines} log lines for {n} refusals");
}

/// Registrations queued back to back from one address do not hold up a
/// login from another: the hashing thread takes the addresses in turn, so
/// the login waits for about one of the flood's hashes, not for all of
/// them. Counted in the server's log (one hashing thread: its lines are in
/// the order it hashed), not timed.
#[cfg(target_os = "linux")]
#[test]
fn registration_spam_from_one_address_does_not_queue_ahead_of_a_login_from_another() {
    let server = Server::start_with_default_hashing(&["--auth-threads", "1"]);
    server.register("legit", &password("legit"));
    let port = server.port();
    let mut flood: Vec<Raw> = (0..16)
        .map(|_| {
            let mut r = Raw::from_stream(connect_from(Ipv4Addr::new(127, 0, 0, 2), port));
            r.hello();
            r
        })
        .collect();
    for (i, r) in flood.iter_mut().enumerate() {
        r.frame(&Frame::Register {
            reference: Ref(1),
            user: name(&format!("flood{i}")),
            password: Text::new("flood-password").expect("short"),
        });
    }
    // Once the first is answered, the rest have long been queued.
    let first = flood[0].next();
    assert_eq!(first.name, "OK", "{}", first.debug);
    let flood_done = |log: &str| {
        log.lines()
            .filter(|l| l.contains("registered user=flood"))
            .count()
    };
    // Connected first, so that only the login itself is counted.
    let mut legit = Connection::connect_timeout("127.0.0.1", port, WAIT).expect("connects");
    let options = LoginOptions {
        resume_after: MessageId(0),
        roster: false,
    };
    let before = flood_done(&server.log());
    legit
        .login(name("legit"), &password("legit"), options, WAIT)
        .unwrap_or_else(|e| panic!("legit cannot log in: {e}"));
    // The auth thread logs the login as it answers it: wait for the line.
    server.wait_log("the legit login logged", |l| l.contains("login user=legit"));
    let log = server.log();
    let upto_login = log
        .split_once("login user=legit")
        .map(|(head, _)| head)
        .expect("the login is logged");
    let during = flood_done(upto_login) - before;
    println!(
        "registrations hashed while the login waited: {during} of {}",
        16 - before
    );
    // One being hashed, one more in turn, and slack for a slow machine;
    // a first-come queue made it wait for all of them.
    assert!(
        during <= 4,
        "the login waited for {during} of the flood's registrations"
    );
    for r in &mut flood[1..] {
        let g = r.next();
        assert_eq!(g.name, "OK", "{}", g.debug);
    }
}
