//! The crash test: clients send messages and register accounts while the
//! server is killed with SIGKILL at a random moment, round after round on
//! the same data dir. After every restart the database must open, and at
//! the end every acknowledged message must be in history exactly once with
//! its body, and every registration answered OK must be an account. A
//! version 2 device sends too, resending after each kill what got no
//! ACK: each of its messages must be stored exactly once, and the
//! bookmark a LOGOUT confirmed must survive every kill.
//!
//! The moment of each kill is drawn from a seeded generator: the seed is
//! printed (shown when the test fails) and `CONFAB_TEST_SEED=N` replays it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use confab::{Connection, ConnectionError, LoginOptions};
use confab_engine::{MessageId, Name, Target};

use confab_engine::frame::Frame;
use confab_engine::{ClientId, Token};

use crate::device::{Device, In, Outbox};
use crate::harness::{password, Rng, Server, WAIT};

/// Kill/restart rounds.
const ROUNDS: u64 = 40;
/// The most acknowledged items (messages and accounts) before a kill.
const MAX_ITEMS_BEFORE_KILL: u64 = 150;
/// The two senders; each also sends direct messages to the other.
const WRITERS: [&str; 2] = ["writer0", "writer1"];

fn name(s: &str) -> Name {
    Name::new(s).expect("a valid test name")
}

/// An acknowledged message.
#[derive(Debug, Clone)]
struct Acked {
    id: MessageId,
    dm: bool,
    body: String,
}

fn logged_in(port: u16, user: &str) -> Option<Connection> {
    let mut c = Connection::connect_timeout("127.0.0.1", port, WAIT).ok()?;
    let options = LoginOptions {
        resume_after: MessageId(0),
        roster: false,
    };
    match c.login(name(user), &password(user), options, WAIT) {
        Ok(_) => Some(c),
        Err(ConnectionError::Refused(e)) => panic!("{user} cannot log in: {e}"),
        // Killed before or during the login.
        Err(_) => None,
    }
}

/// Sends until the server dies; returns what was acknowledged.
fn writer(port: u16, round: u64, who: usize, count: &AtomicUsize) -> Vec<Acked> {
    let (me, peer) = (WRITERS[who], WRITERS[1 - who]);
    let Some(mut c) = logged_in(port, me) else {
        return Vec::new();
    };
    let mut acked = Vec::new();
    for i in 0.. {
        let dm = i % 3 == 2;
        let target = if dm {
            Target::User(name(peer))
        } else {
            Target::Room
        };
        let body = format!("round {round} {me} {i}");
        match c.send(target, &body, WAIT) {
            Ok(ack) => {
                acked.push(Acked {
                    id: ack.id,
                    dm,
                    body,
                });
                count.fetch_add(1, Ordering::Relaxed);
            }
            Err(ConnectionError::Refused(e)) => panic!("{me}: a send was refused: {e}"),
            Err(_) => break,
        }
    }
    acked
}

/// The device writer's state, kept across the server's lives: its token,
/// the SEND2s it has no ACK for (resent after every restart: none may be
/// stored twice) and the bookmark a LOGOUT confirmed (none may be lost).
struct DeviceWriter {
    token: Token,
    out: Outbox,
    next_cid: u64,
    durable_bookmark: MessageId,
    /// SEND2s sent again after a kill (their first try got no ACK).
    resent: u64,
}

const DEVICE_USER: &str = "device0";

impl DeviceWriter {
    /// Logs in by token; checks the bookmark and the replay against what
    /// was confirmed. `None` if the server died meanwhile.
    fn resume(&self, port: u16) -> Option<(Device, MessageId)> {
        let mut d = Device::connect(port)?;
        match d.login_token(DEVICE_USER, &self.token).ok()? {
            In::LoginOk2 { bookmark, .. } => assert!(
                bookmark >= self.durable_bookmark,
                "the bookmark {bookmark} went back below the stored {}",
                self.durable_bookmark
            ),
            other => panic!("the device's token login answered {other:?}"),
        }
        let mut other = Vec::new();
        let (replayed, caught_up) = d.replay(&mut other).ok()?;
        for m in &replayed {
            if let In::Message { id, .. } = m {
                assert!(
                    *id > self.durable_bookmark,
                    "{id} replayed below the bookmark"
                );
            }
        }
        Some((d, caught_up))
    }

    /// One life of the server: store the bookmark (a LOGOUT confirms
    /// it), then resend what has no ACK and send until the server dies.
    fn round(&mut self, port: u16, round: u64, count: &AtomicUsize) -> Vec<Acked> {
        let Some((mut d, caught_up)) = self.resume(port) else {
            return Vec::new();
        };
        let r = d.reference();
        let logged_out = d.write(&Frame::Delivered { id: caught_up }).is_ok()
            && d.write(&Frame::Logout { reference: r }).is_ok()
            && loop {
                match d.recv(WAIT) {
                    Ok(In::Ok(got)) if got == r => break true,
                    Ok(_) => {}
                    Err(_) => break false,
                }
            };
        if logged_out {
            self.durable_bookmark = self.durable_bookmark.max(caught_up);
        }
        let Some((mut d, _)) = self.resume(port) else {
            return Vec::new();
        };
        let mut acked = Vec::new();
        let carried = self.next_cid;
        for i in 0.. {
            if i % 4 == 0 || self.out.unacked.is_empty() {
                self.next_cid += 1;
                let body = format!("round {round} {DEVICE_USER} {}", self.next_cid);
                self.out.unacked.insert(self.next_cid, body);
            }
            let Some((&cid, body)) = self.out.unacked.iter().next() else {
                continue;
            };
            let body = body.clone();
            self.resent += u64::from(cid <= carried);
            let r = d.reference();
            if d.send2(r, ClientId(cid), Target::Room, &body).is_err() {
                break;
            }
            let ack = loop {
                match d.recv(WAIT) {
                    Ok(In::Ack { reference, id, ts }) if reference == r => break Some((id, ts)),
                    Ok(In::Error { code, .. }) => panic!("a SEND2 was refused: {code:?}"),
                    Ok(_) => {}
                    Err(_) => break None,
                }
            };
            let Some((id, ts)) = ack else { break };
            self.out.acked(cid, id, ts);
            acked.push(Acked {
                id,
                dm: false,
                body,
            });
            count.fetch_add(1, Ordering::Relaxed);
        }
        acked
    }
}

/// Registers accounts until the server dies; returns those answered OK.
fn registrar(port: u16, round: u64, count: &AtomicUsize) -> Vec<String> {
    let Ok(mut c) = Connection::connect_timeout("127.0.0.1", port, WAIT) else {
        return Vec::new();
    };
    let mut ok = Vec::new();
    for i in 0.. {
        let user = format!("r{round}n{i}");
        match c.register(name(&user), &password(&user), WAIT) {
            Ok(()) => {
                ok.push(user);
                count.fetch_add(1, Ordering::Relaxed);
            }
            Err(ConnectionError::Refused(e)) => panic!("registering {user}: {e}"),
            Err(_) => break,
        }
    }
    ok
}

/// Every message of a conversation, paged from the newest, as (id, body).
fn whole_history(c: &mut Connection, target: Target) -> Vec<(MessageId, String)> {
    let mut all = Vec::new();
    let mut before = MessageId(0);
    loop {
        let page = c.history(target, before, 0, WAIT).expect("a history page");
        let Some(oldest) = page.messages.first() else {
            break;
        };
        before = oldest.id;
        all.extend(page.messages.iter().rev().map(|m| (m.id, m.body.clone())));
        if !page.more {
            break;
        }
    }
    all
}

#[test]
fn every_acknowledged_message_and_account_survives_sigkill_at_random_moments() {
    let mut rng = Rng::from_env_or_clock("crash test");
    let started = Instant::now();
    let mut server = Server::start_with(&[
        "--msg-rate",
        "60000",
        "--msg-burst",
        "60000",
        "--byte-rate",
        "100000000",
        "--byte-burst",
        "100000000",
    ]);
    for w in WRITERS {
        server.register(w, &password(w));
    }
    server.register(DEVICE_USER, &password(DEVICE_USER));
    let mut first = Device::connect(server.port()).expect("the server accepts");
    let token = match first.login_password(DEVICE_USER, &password(DEVICE_USER), "box") {
        In::LoginOk2 { token: Some(t), .. } => t,
        other => panic!("LOGIN2 answered {other:?}"),
    };
    first.cut();
    let mut device = Some(DeviceWriter {
        token,
        out: Outbox::default(),
        next_cid: 0,
        durable_bookmark: MessageId(0),
        resent: 0,
    });

    let mut acked: Vec<Acked> = Vec::new();
    let mut accounts: Vec<String> = Vec::new();
    for round in 0..ROUNDS {
        let port = server.port();
        let count = Arc::new(AtomicUsize::new(0));
        let writers: Vec<_> = (0..WRITERS.len())
            .map(|who| {
                let count = count.clone();
                thread::spawn(move || writer(port, round, who, &count))
            })
            .collect();
        let reg = {
            let count = count.clone();
            thread::spawn(move || registrar(port, round, &count))
        };
        let dev = {
            let count = count.clone();
            let mut d = device.take().expect("the device writer is back");
            thread::spawn(move || {
                let acked = d.round(port, round, &count);
                (d, acked)
            })
        };

        // The random moment: after this many acknowledged items.
        let kill_after = rng.below(MAX_ITEMS_BEFORE_KILL) as usize;
        let deadline = Instant::now() + WAIT;
        while count.load(Ordering::Relaxed) < kill_after {
            assert!(
                Instant::now() < deadline,
                "round {round}: only {} items in {WAIT:?}",
                count.load(Ordering::Relaxed)
            );
            thread::sleep(Duration::from_micros(200));
        }
        server.kill();

        for w in writers {
            acked.extend(w.join().expect("a writer thread"));
        }
        accounts.extend(reg.join().expect("the registrar thread"));
        let (d, device_acked) = dev.join().expect("the device writer thread");
        acked.extend(device_acked);
        device = Some(d);
        // Starting again opens the database (with an integrity check).
        server = server.restart();
    }
    println!(
        "{ROUNDS} rounds in {:?}: {} messages and {} accounts acknowledged",
        started.elapsed(),
        acked.len(),
        accounts.len()
    );
    assert!(!acked.is_empty() && !accounts.is_empty());

    // The device resends what never got an ACK: each is stored once.
    let mut d = device.take().expect("the device writer");
    let (mut c2, _) = d.resume(server.port()).expect("the device resumes");
    let pending: Vec<(u64, String)> = d.out.unacked.iter().map(|(c, b)| (*c, b.clone())).collect();
    d.resent += pending.len() as u64;
    for (cid, body) in pending {
        let r = c2.reference();
        c2.send2(r, ClientId(cid), Target::Room, &body)
            .expect("the server reads");
        let (id, ts) = loop {
            match c2.recv(WAIT) {
                Ok(In::Ack { reference, id, ts }) if reference == r => break (id, ts),
                Ok(_) => {}
                Err(e) => panic!("no ACK for a resend: {e:?}"),
            }
        };
        d.out.acked(cid, id, ts);
        acked.push(Acked {
            id,
            dm: false,
            body,
        });
    }
    let sent = d.next_cid as usize;
    println!(
        "the device sent {sent} messages, {} sent again after a kill, bookmark {}",
        d.resent, d.durable_bookmark
    );

    // Every acknowledged message is in history once, with its body.
    let mut c = logged_in(server.port(), WRITERS[0]).expect("writer0 logs in");
    let room = whole_history(&mut c, Target::Room);
    let dms = whole_history(&mut c, Target::User(name(WRITERS[1])));
    for (what, stored, dm) in [("room", &room, false), ("DM", &dms, true)] {
        let mut by_id: HashMap<MessageId, &str> = HashMap::new();
        let mut bodies = HashSet::new();
        for (id, body) in stored {
            assert!(
                by_id.insert(*id, body).is_none(),
                "{what} id {id} twice in history"
            );
            assert!(
                bodies.insert(body.as_str()),
                "{what} message {body:?} stored twice"
            );
        }
        for a in acked.iter().filter(|a| a.dm == dm) {
            assert_eq!(
                by_id.get(&a.id).copied(),
                Some(a.body.as_str()),
                "acknowledged {what} message {} ({:?}) lost or changed",
                a.id,
                a.body
            );
        }
    }
    let ids: HashSet<MessageId> = acked.iter().map(|a| a.id).collect();
    assert_eq!(ids.len(), acked.len(), "an id was given twice");
    let from_device = room.iter().filter(|(_, b)| b.contains(DEVICE_USER)).count();
    assert_eq!(
        from_device, sent,
        "each of the device's sends stored exactly once"
    );

    // Every account answered OK exists once, and can log in.
    let listed = server.user_command(&["list"], None);
    assert_eq!(listed.code, Some(0), "{listed:?}");
    let mut names: HashMap<&str, usize> = HashMap::new();
    for line in listed.stdout.lines() {
        *names.entry(line).or_default() += 1;
    }
    for user in &accounts {
        assert_eq!(
            names.get(user.as_str()),
            Some(&1),
            "account {user} was answered OK but is listed {:?} times",
            names.get(user.as_str())
        );
    }
    for _ in 0..3 {
        let user = &accounts[rng.below(accounts.len() as u64) as usize];
        logged_in(server.port(), user).unwrap_or_else(|| panic!("{user} cannot log in"));
    }
}
