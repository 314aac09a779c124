//! Graceful shutdown under load: SIGTERM with a hundred clients connected
//! and messages in flight.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use confab::{Connection, ConnectionError, Event, LoginOptions};
use confab_engine::{MessageId, Name, Target};

use crate::harness::{password, Server, WAIT};

const CLIENTS: usize = 100;
const SENDERS: usize = 4;
const SHUTDOWN_TIMEOUT_SECS: u64 = 3;

fn name(s: &str) -> Name {
    Name::new(s).expect("a valid test name")
}

fn log_in(port: u16, user: &str) -> Connection {
    let mut c = Connection::connect_timeout("127.0.0.1", port, WAIT)
        .unwrap_or_else(|e| panic!("{user} cannot connect: {e}"));
    let options = LoginOptions {
        resume_after: MessageId(0),
        roster: false,
    };
    c.login(name(user), &password(user), options, WAIT)
        .unwrap_or_else(|e| panic!("{user} cannot log in: {e}"));
    c
}

/// Reads until the SHUTDOWN notice; panics on anything that ends otherwise.
#[track_caller]
fn expect_shutdown(c: &mut Connection, who: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.next_event(left) {
            Ok(Some(Event::Shutdown { .. })) => return,
            Ok(Some(_)) => {}
            Ok(None) => panic!("{who}: no SHUTDOWN within {WAIT:?}"),
            Err(e) => panic!("{who}: closed without SHUTDOWN: {e}"),
        }
    }
}

#[test]
fn sigterm_tells_a_hundred_clients_exits_0_in_time_and_keeps_every_acknowledged_message() {
    let timeout = SHUTDOWN_TIMEOUT_SECS.to_string();
    let mut server = Server::start_with(&[
        "--shutdown-timeout",
        &timeout,
        "--msg-rate",
        "10000",
        "--msg-burst",
        "10000",
    ]);
    let port = server.port();
    let users: Vec<String> = (0..10).map(|i| format!("user{i}")).collect();
    for u in &users {
        server.register(u, &password(u));
    }

    // Listeners (several sessions per account), and senders on threads of
    // their own that send until the server goes away.
    let mut idle: Vec<(String, Connection)> = (0..CLIENTS - SENDERS)
        .map(|i| {
            let user = &users[i % users.len()];
            (format!("client {i} ({user})"), log_in(port, user))
        })
        .collect();
    let acked = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..SENDERS)
        .map(|k| {
            let user = users[k].clone();
            let acked = acked.clone();
            thread::spawn(move || {
                let mut c = log_in(port, &user);
                let mut mine = Vec::new();
                loop {
                    let body = format!("{user} sender {k} message {}", mine.len());
                    match c.send(Target::Room, &body, WAIT) {
                        Ok(ack) => {
                            mine.push((ack.id, body));
                            acked.fetch_add(1, Ordering::Relaxed);
                        }
                        // The server stopped (or the session knows it did).
                        Err(ConnectionError::Shutdown { .. } | ConnectionError::Misuse(_)) => break,
                        Err(e) => panic!("sender {k}: {e}"),
                    }
                }
                expect_shutdown(&mut c, &format!("sender {k}"));
                mine
            })
        })
        .collect();

    // Messages in flight, then SIGTERM.
    let deadline = Instant::now() + WAIT;
    while acked.load(Ordering::Relaxed) < 200 {
        assert!(Instant::now() < deadline, "the senders did not get going");
        thread::sleep(Duration::from_millis(1));
    }
    let terminated = Instant::now();
    server.terminate();

    // Every client is told.
    for (who, c) in &mut idle {
        expect_shutdown(c, who);
    }
    drop(idle);
    let mut sent: Vec<(MessageId, String)> = Vec::new();
    for s in senders {
        sent.extend(s.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
    }

    // The process exits 0, within the shutdown timeout (and a margin for
    // committing and stopping the threads).
    let status = server.wait_exit();
    let took = terminated.elapsed();
    assert!(status.success(), "{status}; log:\n{}", server.log());
    assert!(
        took < Duration::from_secs(SHUTDOWN_TIMEOUT_SECS + 2),
        "the shutdown took {took:?}"
    );
    println!(
        "shutdown of {CLIENTS} clients with {} messages acknowledged took {took:?}",
        sent.len()
    );

    // Every acknowledged message is there after a restart.
    let server = server.restart();
    let mut c = log_in(server.port(), &users[0]);
    let mut stored: HashMap<MessageId, String> = HashMap::new();
    let mut before = MessageId(0);
    loop {
        let page = c
            .history(Target::Room, before, 0, WAIT)
            .expect("a history page");
        let Some(oldest) = page.messages.first() else {
            break;
        };
        before = oldest.id;
        for m in page.messages {
            assert!(stored.insert(m.id, m.body).is_none(), "an id twice");
        }
        if !page.more {
            break;
        }
    }
    for (id, body) in &sent {
        assert_eq!(stored.get(id), Some(body), "acknowledged message {id} lost");
    }
}
