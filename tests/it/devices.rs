//! Protocol version 2 end to end: exactly-once sends through cut
//! connections, a device resuming by token at its bookmark across a
//! restart and a SIGKILL, revocation, and secrets kept out of the log.

use std::collections::{BTreeMap, HashSet};

use confab_engine::frame::{ErrorCode, Frame, Target};
use confab_engine::{ClientId, MessageId, Ref, Token};

use crate::device::{name, Device, In, Outbox};
use crate::harness::{password, Rng, Server, WAIT};

/// Messages the exactly-once test sends.
const SENDS: u64 = 240;
/// Connections it may use at most (each ends in a cut or a logout).
const MAX_ROUNDS: u64 = 400;

/// A device of `user` (registered with its test password) and its token.
fn paired(server: &Server, user: &str, device: &str) -> (Device, Token) {
    server.register(user, &password(user));
    log_in(server, user, device)
}

/// `user` logs in by password as `device`, with a new token.
fn log_in(server: &Server, user: &str, device: &str) -> (Device, Token) {
    let mut d = Device::connect(server.port()).expect("the server accepts");
    match d.login_password(user, &password(user), device) {
        In::LoginOk2 {
            token: Some(token),
            device: Some(got),
            ..
        } if got == device => {
            let mut other = Vec::new();
            d.replay(&mut other)
                .map_err(|e| format!("{e:?}"))
                .expect("a replay");
            (d, token)
        }
        other => panic!("LOGIN2 answered {other:?}"),
    }
}

/// Logs in by token and reads the replay: its messages.
fn resume(port: u16, user: &str, token: &Token) -> Option<(Device, Vec<In>)> {
    let mut d = Device::connect(port)?;
    match d.login_token(user, token).ok()? {
        In::LoginOk2 { .. } => {}
        other => panic!("a token login answered {other:?}"),
    }
    let mut other = Vec::new();
    let (messages, _) = d.replay(&mut other).ok()?;
    Some((d, messages))
}

/// One connection of the exactly-once sender: resend what has no ACK,
/// send a few new ones, then end the connection one of four ways.
fn sender_round(d: &mut Device, out: &mut Outbox, next: &mut u64, rng: &mut Rng) -> bool {
    for _ in 0..=rng.below(12) {
        if *next <= SENDS {
            out.unacked.insert(*next, format!("m{next}"));
            *next += 1;
        }
    }
    let mut refs = BTreeMap::new();
    let pending: Vec<(u64, String)> = out.unacked.iter().map(|(c, b)| (*c, b.clone())).collect();
    // A third of the connections are cut inside one of their frames.
    let cut_at = (rng.below(3) == 0).then(|| rng.below(pending.len() as u64) as usize);
    for (i, (cid, body)) in pending.iter().enumerate() {
        let r = d.reference();
        refs.insert(r, *cid);
        let frame = Frame::Send2 {
            reference: r,
            client_id: ClientId(*cid),
            target: Target::Room,
            body: confab_engine::frame::Text::new(body).expect("short"),
        };
        let bytes = frame.to_bytes();
        let cut_here = cut_at == Some(i);
        let upto = if cut_here {
            1 + rng.below(bytes.len() as u64 - 1) as usize
        } else {
            bytes.len()
        };
        if d.write_bytes(&bytes[..upto]).is_err() || cut_here {
            return false;
        }
    }
    // 0: cut before any ACK; 1: read some, lose one, cut; 2: read all.
    let mode = rng.below(3);
    if mode == 0 {
        return false;
    }
    let keep = rng.below(refs.len() as u64 + 1);
    let mut read = 0;
    while !refs.is_empty() {
        match d.recv(WAIT) {
            Ok(In::Ack { reference, id, ts }) => {
                let Some(cid) = refs.remove(&reference) else {
                    continue;
                };
                if mode == 1 && read == keep {
                    out.lose(cid, id, ts);
                    return false;
                }
                out.acked(cid, id, ts);
                read += 1;
            }
            Ok(In::Error { code, .. }) => panic!("a SEND2 was refused: {code:?}"),
            Ok(_) => {}
            Err(e) => panic!("the server went quiet: {e:?}"),
        }
    }
    true
}

#[test]
fn a_sender_cut_between_send_and_ack_stores_every_message_exactly_once() {
    // Sends come in bursts of retries: the rate limit is not under test.
    let server = Server::start_with(&["--msg-rate", "10000", "--msg-burst", "10000"]);
    let mut rng = Rng::from_env_or_clock("exactly once");
    let (first, token) = paired(&server, "ann", "laptop");
    first.cut();
    let mut out = Outbox::default();
    let mut next = 1;
    let mut rounds = 0;
    while next <= SENDS || !out.unacked.is_empty() {
        rounds += 1;
        assert!(rounds <= MAX_ROUNDS, "not done in {MAX_ROUNDS} connections");
        let (mut d, _) = resume(server.port(), "ann", &token).expect("a token login");
        let clean = sender_round(&mut d, &mut out, &mut next, &mut rng);
        if clean && rng.below(2) == 0 {
            let r = d.reference();
            let _ = d.write(&Frame::Logout { reference: r });
        }
        d.cut();
    }
    let (mut d, _) = resume(server.port(), "ann", &token).expect("a token login");
    let history = d.history(Target::Room);
    let bodies: Vec<&str> = history.iter().map(|(_, b)| b.as_str()).collect();
    let unique: HashSet<&str> = bodies.iter().copied().collect();
    assert_eq!(unique.len(), bodies.len(), "a message stored twice");
    assert_eq!(history.len() as u64, SENDS, "every message stored");
    for (id, body) in &history {
        let cid: u64 = body[1..].parse().expect("bodies are m<client id>");
        assert_eq!(out.acked.get(&cid).map(|a| a.0), Some(*id), "{body}'s ACK");
    }
    assert!(
        out.repeated > 0,
        "no retry of a stored send was tested in {rounds} connections"
    );
    println!(
        "{SENDS} sent in {rounds} connections, {} retries of stored sends answered with their ACK",
        out.repeated
    );
}

/// Bob's side of the resume test: a group they share, and messages.
struct Bob {
    d: Device,
    /// Client ids are unique per device, across its connections.
    next_cid: u64,
}

impl Bob {
    fn say(&mut self, target: Target, body: &str) -> MessageId {
        let r = self.d.reference();
        self.next_cid += 1;
        let cid = ClientId(self.next_cid);
        self.d
            .send2(r, cid, target, body)
            .expect("the server reads");
        loop {
            match self.d.recv(WAIT) {
                Ok(In::Ack { reference, id, .. }) if reference == r => return id,
                Ok(In::Error { code, .. }) => panic!("bob's send refused: {code:?}"),
                Ok(_) => {}
                Err(e) => panic!("bob: {e:?}"),
            }
        }
    }

    fn missed_three(&mut self, tag: &str) -> Vec<String> {
        let bodies = [
            (Target::Room, format!("room {tag}")),
            (Target::Group(name("dev")), format!("group {tag}")),
            (Target::User(name("ann")), format!("dm {tag}")),
        ];
        for (target, body) in &bodies {
            self.say(*target, body);
        }
        bodies.into_iter().map(|(_, b)| b).collect()
    }
}

fn group_op(d: &mut Device, f: &Frame<'_>, r: Ref) {
    d.write(f).expect("the server reads");
    loop {
        match d.recv(WAIT) {
            Ok(In::Ok(got)) if got == r => return,
            Ok(In::Error { code, .. }) => panic!("group request refused: {code:?}"),
            Ok(_) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
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

/// Acknowledges everything up to `id`, logs out, and waits for the OK,
/// which comes once the bookmark is stored.
fn deliver_and_log_out(mut d: Device, id: MessageId) {
    d.write(&Frame::Delivered { id }).expect("the server reads");
    let r = d.reference();
    d.write(&Frame::Logout { reference: r })
        .expect("the server reads");
    loop {
        match d.recv(WAIT) {
            Ok(In::Ok(got)) if got == r => return,
            Ok(_) => {}
            Err(e) => panic!("no OK to LOGOUT: {e:?}"),
        }
    }
}

fn newest(messages: &[In]) -> MessageId {
    messages
        .iter()
        .filter_map(|m| match m {
            In::Message { id, .. } => Some(*id),
            _ => None,
        })
        .max()
        .unwrap_or(MessageId(0))
}

fn bob_with_group(server: &Server) -> Bob {
    let (mut bob, _) = paired(server, "bob", "bobdev");
    let r = bob.reference();
    group_op(
        &mut bob,
        &Frame::GroupCreate {
            reference: r,
            group: name("dev"),
        },
        r,
    );
    Bob {
        d: bob,
        next_cid: 0,
    }
}

#[test]
fn a_device_resumes_by_token_with_exactly_what_it_missed_across_restart_and_sigkill() {
    let mut server = Server::start();
    let mut bob = bob_with_group(&server);
    let (mut ann, token) = paired(&server, "ann", "laptop");
    let r = ann.reference();
    group_op(
        &mut ann,
        &Frame::GroupJoin {
            reference: r,
            group: name("dev"),
        },
        r,
    );
    let seen = bob.say(Target::Room, "seen live");
    match ann.recv(WAIT) {
        Ok(In::Message { id, .. }) => assert_eq!(id, seen),
        other => panic!("ann did not get the live message: {other:?}"),
    }
    deliver_and_log_out(ann, seen);

    // Missed while away, then a clean restart.
    let missed = bob.missed_three("one");
    server.terminate();
    server.wait_exit();
    server = server.restart();
    let (ann, got) = resume(server.port(), "ann", &token).expect("ann resumes");
    assert_eq!(
        bodies(&got),
        missed,
        "exactly the missed ones, after a restart"
    );
    let mut bob = Bob {
        d: log_in(&server, "bob", "bobdev").0,
        next_cid: bob.next_cid,
    };
    let mut ann = ann;
    let live = bob.say(Target::Room, "live again");
    match ann.recv(WAIT) {
        Ok(In::Message { id, body, .. }) => assert_eq!((id, body.as_str()), (live, "live again")),
        other => panic!("ann did not get live messages after the replay: {other:?}"),
    }
    deliver_and_log_out(ann, live.max(newest(&got)));

    // Missed while away, then SIGKILL.
    let missed = bob.missed_three("two");
    server = server.restart();
    let (ann, got) = resume(server.port(), "ann", &token).expect("ann resumes");
    assert_eq!(
        bodies(&got),
        missed,
        "exactly the missed ones, after a SIGKILL"
    );

    // The phone revokes the laptop: its session closes, its token is dead.
    let mut phone = Device::connect(server.port()).expect("connect");
    assert!(matches!(
        phone.login_password("ann", &password("ann"), "phone"),
        In::LoginOk2 { .. }
    ));
    let mut other = Vec::new();
    phone
        .replay(&mut other)
        .map_err(|e| format!("{e:?}"))
        .expect("replay");
    let r = phone.reference();
    phone
        .write(&Frame::DeviceRevoke {
            reference: r,
            device: name("laptop"),
        })
        .expect("the server reads");
    let mut ann = ann;
    let closed = loop {
        match ann.recv(WAIT) {
            Ok(In::Error { code, .. }) => break code,
            Ok(_) => {}
            Err(e) => panic!("the laptop was not told: {e:?}"),
        }
    };
    assert_eq!(closed, ErrorCode::DeviceRevoked);
    assert!(matches!(ann.recv(WAIT), Err(crate::device::Closed::Eof)));
    let mut again = Device::connect(server.port()).expect("connect");
    match again.login_token("ann", &token) {
        Ok(In::Error { code, .. }) => assert_eq!(code, ErrorCode::BadCredentials),
        other => panic!("a revoked token logged in: {other:?}"),
    }
}

#[test]
fn no_password_or_token_reaches_the_log_even_at_debug_level() {
    let server = Server::start_with(&["--log-level", "debug"]);
    let (d, token) = paired(&server, "ann", "laptop");
    d.cut();
    let (d, _) = resume(server.port(), "ann", &token).expect("a token login");
    d.cut();
    let mut wrong = Device::connect(server.port()).expect("connect");
    let _ = wrong.login_token("ann", &Token([0x5a; 32]));
    let mut bad = Device::connect(server.port()).expect("connect");
    let _ = bad.login_password("ann", "not-the-password", "laptop");
    // The password's refusal is logged after the token's.
    server.wait_log("the refused password", |l| {
        l.contains("login2 refused") && l.contains("wrong user name or password")
    });
    let log = server.log();
    assert!(
        log.contains("unknown, revoked or expired device token"),
        "{log}"
    );
    let secrets = [
        password("ann"),
        "not-the-password".to_owned(),
        token.to_hex(),
        format!("{:?}", token.0),
        Token([0x5a; 32]).to_hex(),
    ];
    for s in &secrets {
        assert!(!log.contains(s.as_str()), "the log holds a secret:\n{log}");
    }
}

#[test]
fn a_bot_pairs_once_then_sends_and_lists_by_its_stored_token_until_revoked() {
    let server = Server::start();
    let config = tempfile::tempdir().expect("a temporary config dir");
    let pair = server
        .client("bot")
        .with_env("CONFAB_CONFIG_DIR", config.path());
    let paired = pair.run(&["login", "--device", "ci"]);
    paired.ok();
    let files: Vec<_> = walk(config.path());
    assert_eq!(files.len(), 1, "one token file: {files:?}");
    let mode = std::fs::metadata(&files[0])
        .expect("the file")
        .permissions();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.mode() & 0o777, 0o600, "only its owner reads the token");
    let stored = std::fs::read_to_string(&files[0]).expect("readable");
    let hex = stored
        .lines()
        .find_map(|l| l.strip_prefix("token="))
        .expect("the file holds the token");
    assert!(
        !paired.stdout.contains(hex),
        "the token is not printed unasked"
    );

    let bot = server
        .client("bot")
        .with_password("")
        .without_register()
        .with_env("CONFAB_CONFIG_DIR", config.path());
    let id = bot.send("all", "deployed");
    assert!(id > 0);
    let listed = bot.run(&["devices"]);
    assert!(listed.ok().contains("\"ci\""), "{listed:?}");
    bot.run(&["devices", "revoke", "ci"]).ok();
    let refused = bot.run(&["send", "--to", "all", "again"]);
    assert_eq!(refused.code, Some(2), "{refused:?}");
    assert!(refused.stderr.contains("login --device"), "{refused:?}");
}

/// The files under `dir`, recursively.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("a readable dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Reads `d` until an ERROR arrives; its code.
fn closed_with(d: &mut Device) -> ErrorCode {
    loop {
        match d.recv(WAIT) {
            Ok(In::Error { code, .. }) => return code,
            Ok(_) => {}
            Err(e) => panic!("the device was not told: {e:?}"),
        }
    }
}

#[test]
fn a_password_change_or_revoke_on_the_command_line_closes_the_devices_sessions_at_once() {
    let server = Server::start();
    let (mut laptop, _) = paired(&server, "ann", "laptop");
    let (mut phone, _) = log_in(&server, "ann", "phone");

    let run = server.user_command(&["revoke", "ann", "LAPTOP"], None);
    assert!(
        run.ok().contains("closed 1 sessions of those devices"),
        "{run:?}"
    );
    assert_eq!(closed_with(&mut laptop), ErrorCode::DeviceRevoked);

    let run = server.user_command(&["passwd", "ann"], Some("a new password"));
    assert!(run.ok().contains("revoked 1 devices of ann"), "{run:?}");
    assert!(
        run.ok().contains("closed 1 sessions of those devices"),
        "{run:?}"
    );
    assert_eq!(closed_with(&mut phone), ErrorCode::DeviceRevoked);
}
