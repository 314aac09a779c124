//! The Lua client (`client/lua/`, written from docs/PROTOCOL.md alone)
//! against the real server, talking with the Rust `confab` client.
//!
//! These tests need `lua5.4` with LuaSocket (`scripts/install-lua.sh`);
//! without them they fail, saying so, rather than skip.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use serde_json::Value;

use crate::harness::{password, Listener, Server, WAIT};

/// `client/lua/`.
fn lua_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../client/lua")
}

/// `lua5.4 ARGS`, after checking that lua5.4 and LuaSocket are there.
fn lua(args: &[&str]) -> Command {
    let probe = Command::new("lua5.4")
        .args(["-e", "require('socket')"])
        .stdin(Stdio::null())
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "lua5.4 is installed but LuaSocket is not ({}): run scripts/install-lua.sh",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!("lua5.4 is required by the Lua interop tests and is not runnable ({e}): run scripts/install-lua.sh"),
    }
    let mut c = Command::new("lua5.4");
    c.args(args).stdin(Stdio::null());
    c
}

/// One line of `confab-chat.lua`: its kind and its `key=value` fields.
type Line = BTreeMap<String, String>;

/// Parses `kind k=v ... body=free text` (the free-text field runs to the
/// end of the line and is escaped).
fn parse_line(line: &str) -> Line {
    let mut out = Line::new();
    let (kind, mut rest) = line.split_once(' ').unwrap_or((line, ""));
    out.insert("kind".into(), kind.into());
    while let Some((key, after)) = rest.split_once('=') {
        if matches!(key, "body" | "text" | "reason") {
            out.insert(key.into(), unescape(after));
            break;
        }
        let (value, next) = after.split_once(' ').unwrap_or((after, ""));
        out.insert(key.into(), value.into());
        rest = next;
    }
    out
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// A running `confab-chat.lua` (killed when dropped).
struct LuaChat {
    child: Child,
    lines: Receiver<String>,
    stderr: Receiver<String>,
    seen: Vec<Line>,
}

impl LuaChat {
    fn start(server: &Server, user: &str, args: &[&str]) -> LuaChat {
        LuaChat::start_on(server.port(), user, args)
    }

    /// Like [`LuaChat::start`], connecting to `port` (a relay in front of
    /// the server).
    fn start_on(port: u16, user: &str, args: &[&str]) -> LuaChat {
        LuaChat::start_fed(port, user, args, None)
    }

    /// Like [`LuaChat::start_on`], with `input` on its standard input
    /// (for `--stdin`; closed after it).
    fn start_fed(port: u16, user: &str, args: &[&str], input: Option<&str>) -> LuaChat {
        let script = lua_dir().join("confab-chat.lua");
        let port = port.to_string();
        let pw = password(user);
        let mut all = vec![
            script.to_str().expect("a UTF-8 path"),
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--user",
            user,
            "--password",
            &pw,
        ];
        all.extend_from_slice(args);
        let mut cmd = lua(&all);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        if input.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().expect("lua5.4 starts");
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin
                .write_all(input.as_bytes())
                .expect("the Lua client reads its stdin");
        }
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (etx, stderr) = mpsc::channel();
        thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr_pipe.read_to_string(&mut s);
            let _ = etx.send(s);
        });
        LuaChat {
            child,
            lines,
            stderr,
            seen: Vec::new(),
        }
    }

    /// Waits (bounded) for a line of this kind matching `pred`.
    #[track_caller]
    fn wait_for(&mut self, what: &str, pred: impl Fn(&Line) -> bool) -> Line {
        let deadline = Instant::now() + WAIT;
        if let Some(l) = self.seen.iter().find(|l| pred(l)) {
            return l.clone();
        }
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(raw) => {
                    let l = parse_line(&raw);
                    self.seen.push(l.clone());
                    if pred(&l) {
                        return l;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("lua: no {what} within {WAIT:?}; {}", self.report())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.child.wait();
                    let err = self.stderr.recv_timeout(WAIT).unwrap_or_default();
                    panic!(
                        "lua: exited before {what}; {}\nstderr: {err}",
                        self.report()
                    )
                }
            }
        }
    }

    /// Waits (bounded) for the process to exit; returns its code and stderr.
    #[track_caller]
    fn wait_exit(&mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + WAIT;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(raw) => self.seen.push(parse_line(&raw)),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("lua: did not exit within {WAIT:?}; {}", self.report())
                }
            }
        }
        let status = self.child.wait().expect("lua5.4 can be waited for");
        let stderr = self
            .stderr
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_default();
        (status.code(), stderr)
    }

    /// The `message` lines received, as (from, to, body).
    fn messages(&self) -> Vec<(String, String, String)> {
        self.seen
            .iter()
            .filter(|l| l["kind"] == "message")
            .map(|l| (l["from"].clone(), l["to"].clone(), l["body"].clone()))
            .collect()
    }

    fn report(&self) -> String {
        let lines: Vec<String> = self.seen.iter().map(|l| format!("{l:?}")).collect();
        format!("received:\n  {}", lines.join("\n  "))
    }
}

impl Drop for LuaChat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kind(k: &'static str) -> impl Fn(&Line) -> bool {
    move |l| l["kind"] == k
}

fn triple(from: &str, to: &str, body: &str) -> (String, String, String) {
    (from.into(), to.into(), body.into())
}

/// The (from, to, body) of every message a Rust listener received.
fn rust_messages(l: &Listener) -> Vec<(String, String, String)> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    l.seen()
        .iter()
        .filter(|v| v["event"] == "message")
        .map(|v| (s(&v["from"]), s(&v["to"]), s(&v["body"])))
        .collect()
}

/// Runs one of the Lua client's own test scripts; it must pass them all.
fn lua_test_script(file: &str) {
    let script = lua_dir().join("test").join(file);
    let out = lua(&[script.to_str().expect("a UTF-8 path")])
        .output()
        .expect("lua5.4 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{file} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.ends_with(" passed, 0 failed"), "{stdout}");
}

#[test]
fn lua_codec_matches_every_example_in_the_spec() {
    lua_test_script("codec_test.lua");
}

#[test]
fn lua_v2_flows_pass_against_the_mock_server_written_from_the_spec() {
    lua_test_script("v2_flow_test.lua");
}

#[test]
fn lua_and_rust_clients_exchange_room_group_and_direct_messages() {
    let server = Server::start();
    let mut alice = server.client("alice").listen();
    let mut carol = server.client("carol").listen();
    server.client("alice").run(&["group", "create", "dev"]).ok();
    server.client("carol").run(&["group", "create", "ops"]).ok();

    // The Lua client registers, joins dev, sends one message of each kind,
    // then waits for three messages.
    let mut luna = LuaChat::start(
        &server,
        "luna",
        &[
            "--register",
            "--join",
            "dev",
            "--send",
            "all",
            "lua to room",
            "--send",
            "#dev",
            "lua to dev",
            "--send",
            "@alice",
            "lua to alice",
            "--listen",
            "15",
            "--count",
            "3",
        ],
    );
    let roster = luna.wait_for("its roster", kind("roster"));
    assert_eq!(roster["users"], "alice,carol,luna");
    luna.wait_for("ready", kind("ready"));
    alice.wait_for("luna joined dev", |v| {
        v["event"] == "joined" && v["group"] == "dev" && v["user"] == "luna"
    });
    alice.wait_for("luna online", |v| {
        v["event"] == "online" && v["user"] == "luna"
    });

    // Lua -> Rust: ids and targets as the Lua client's ACKs said.
    for (to, body) in [
        ("all", "lua to room"),
        ("#dev", "lua to dev"),
        ("@alice", "lua to alice"),
    ] {
        let ack = luna.wait_for(&format!("the ACK for {to}"), move |l| {
            l["kind"] == "ack" && l["to"] == to
        });
        let m = alice.wait_message(body);
        assert_eq!(
            (m["from"].as_str(), m["to"].as_str()),
            (Some("luna"), Some(to))
        );
        assert_eq!(m["id"].to_string(), ack["id"], "{body}");
        assert_eq!(m["ts"].to_string(), ack["ts"], "{body}");
    }
    carol.wait_message("lua to room");

    // Rust -> Lua. Before each message meant for luna goes one of the same
    // priority class that is not: if luna wrongly got it, it would be
    // among her three messages.
    server.client("carol").send("#ops", "ops only");
    server.client("alice").send("@carol", "for carol only");
    let room = server.client("alice").send("all", "alice to room");
    let dev = server.client("alice").send("#dev", "alice to dev");
    let dm = server.client("alice").send("@luna", "alice to luna");
    for (id, to, body) in [
        (room, "all", "alice to room"),
        (dev, "#dev", "alice to dev"),
        (dm, "@luna", "alice to luna"),
    ] {
        let m = luna.wait_for(body, move |l| l["kind"] == "message" && l["body"] == body);
        assert_eq!(
            (m["id"].as_str(), m["from"].as_str(), m["to"].as_str()),
            (id.to_string().as_str(), "alice", to)
        );
    }
    let (code, stderr) = luna.wait_exit();
    assert_eq!(
        code,
        Some(0),
        "confab-chat.lua failed: {stderr}\n{}",
        luna.report()
    );
    assert!(
        luna.seen.last().is_some_and(|l| l["kind"] == "bye"),
        "{}",
        luna.report()
    );
    let mut got = luna.messages();
    got.sort();
    let mut want = vec![
        triple("alice", "all", "alice to room"),
        triple("alice", "#dev", "alice to dev"),
        triple("alice", "@luna", "alice to luna"),
    ];
    want.sort();
    assert_eq!(
        got,
        want,
        "exactly these, and not its own; {}",
        luna.report()
    );
    assert!(
        !luna.seen.iter().any(|l| l["kind"] == "error"),
        "{}",
        luna.report()
    );

    // carol saw luna's room message but not the group message or the DM:
    // barriers of the same classes, sent after them, reached her.
    carol.wait_message("alice to room");
    carol.wait_message("for carol only");
    let carol_got = rust_messages(&carol);
    assert!(carol_got.contains(&triple("luna", "all", "lua to room")));
    for body in [
        "lua to dev",
        "lua to alice",
        "alice to dev",
        "alice to luna",
    ] {
        carol.assert_no_message(body);
    }
    // alice got luna's three, once each, and luna went offline after LOGOUT.
    alice.wait_for("luna offline", |v| {
        v["event"] == "offline" && v["user"] == "luna"
    });
    for body in ["lua to room", "lua to dev", "lua to alice"] {
        assert_eq!(
            rust_messages(&alice).iter().filter(|m| m.2 == body).count(),
            1,
            "{body}"
        );
    }
}

#[test]
fn lua_resumes_from_its_bookmark_and_gets_exactly_what_it_missed() {
    let server = Server::start();
    let alice = server.client("alice");
    alice.run(&["group", "create", "dev"]).ok();

    // luna joins dev, gets one message live, logs out with its bookmark.
    let mut first = LuaChat::start(
        &server,
        "luna",
        &[
            "--register",
            "--join",
            "dev",
            "--listen",
            "15",
            "--count",
            "1",
        ],
    );
    first.wait_for("ready", kind("ready"));
    alice.send("#dev", "seen live");
    let (code, stderr) = first.wait_exit();
    assert_eq!(code, Some(0), "{stderr}\n{}", first.report());
    let bye = first.wait_for("bye", kind("bye"));
    let bookmark = bye["resume_after"].clone();

    // While she is away: one message of each kind for her, one not for her.
    alice.send("all", "away room");
    alice.send("#dev", "away dev");
    alice.send("@luna", "away dm");
    server.client("carol").send("@alice", "not for luna");

    let mut again = LuaChat::start(
        &server,
        "luna",
        &[
            "--no-roster",
            "--resume-after",
            &bookmark,
            "--listen",
            "15",
            "--count",
            "3",
        ],
    );
    again.wait_for("caught_up", kind("caught_up"));
    let (code, stderr) = again.wait_exit();
    assert_eq!(code, Some(0), "{stderr}\n{}", again.report());
    let mut got = again.messages();
    got.sort();
    let mut want = vec![
        triple("alice", "all", "away room"),
        triple("alice", "#dev", "away dev"),
        triple("alice", "@luna", "away dm"),
    ];
    want.sort();
    assert_eq!(got, want, "{}", again.report());
    // Nothing of the replay came after CAUGHT_UP: it was all missed before.
    let caught_up = again.seen.iter().position(|l| l["kind"] == "caught_up");
    let last_message = again.seen.iter().rposition(|l| l["kind"] == "message");
    assert!(last_message < caught_up, "{}", again.report());
}

/// A TCP relay in front of the server that, when armed, cuts the
/// connection it is relaying (both ways) in place of forwarding the
/// server's next ACK frame: the SEND2 was stored, and its ACK never reaches
/// the client. Stops (and cuts everything) when dropped.
struct AckCutter {
    port: u16,
    armed: Arc<AtomicBool>,
    cuts: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl AckCutter {
    fn start(server_port: u16) -> AckCutter {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port for the relay");
        let port = listener.local_addr().expect("the relay's address").port();
        let armed = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let streams = Arc::new(Mutex::new(Vec::new()));
        let acceptor = {
            let (armed, cuts, stop, streams) =
                (armed.clone(), cuts.clone(), stop.clone(), streams.clone());
            thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let Ok(upstream) = TcpStream::connect(("127.0.0.1", server_port)) else {
                        let _ = client.shutdown(Shutdown::Both);
                        continue;
                    };
                    let (Ok(c2), Ok(u2), Ok(c3), Ok(u3)) = (
                        client.try_clone(),
                        upstream.try_clone(),
                        client.try_clone(),
                        upstream.try_clone(),
                    ) else {
                        continue;
                    };
                    streams
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .extend([c3, u3]);
                    // Client to server: the bytes as they come.
                    thread::spawn(move || {
                        let (mut from, mut to) = (c2, u2);
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Write);
                    });
                    // Server to client: frame by frame.
                    let (armed, cuts) = (armed.clone(), cuts.clone());
                    thread::spawn(move || relay_frames(upstream, client, &armed, &cuts));
                }
            })
        };
        AckCutter {
            port,
            armed,
            cuts,
            stop,
            streams,
            acceptor: Some(acceptor),
        }
    }

    /// Cut at the next ACK (once).
    fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    /// How many connections it has cut.
    fn cuts(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }
}

/// Copies frames (u32 length, then that many bytes) from the server to the
/// client, cutting both instead of copying an ACK (0x45) when armed.
fn relay_frames(mut from: TcpStream, mut to: TcpStream, armed: &AtomicBool, cuts: &AtomicUsize) {
    loop {
        let mut len = [0u8; 4];
        if from.read_exact(&mut len).is_err() {
            break;
        }
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        if from.read_exact(&mut body).is_err() {
            break;
        }
        if body.first() == Some(&0x45) && armed.swap(false, Ordering::SeqCst) {
            cuts.fetch_add(1, Ordering::SeqCst);
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
            return;
        }
        if to
            .write_all(&len)
            .and_then(|()| to.write_all(&body))
            .is_err()
        {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

impl Drop for AckCutter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the acceptor up, which then sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        for s in self
            .streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// The messages of a `confab history` page, as (id, body).
fn history(server: &Server, user: &str, to: &str) -> Vec<(u64, String)> {
    server
        .client(user)
        .run(&["history", "--to", to])
        .json_lines()
        .iter()
        .filter(|v| v["event"] == "message")
        .map(|v| {
            (
                v["id"].as_u64().unwrap_or_default(),
                v["body"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn lua_device_resends_unacked_sends_exactly_once_and_resumes_at_its_bookmark() {
    let server = Server::start();
    let relay = AckCutter::start(server.port());
    server.client("alice").run(&["group", "create", "dev"]).ok();
    let mut alice = server.client("alice").listen();
    let dir = tempfile::Builder::new()
        .prefix("confab-lua-state-")
        .tempdir()
        .expect("a temporary dir");
    let state = dir.path().join("luna.state");
    let state = state.to_str().expect("a UTF-8 path");

    // 1. luna logs in as device "phone" (a token is issued) through the
    // relay, which cuts the connection instead of passing the first ACK on:
    // the message is stored, the client does not know it. It reconnects by
    // its token and resends, with the same client_id.
    relay.arm();
    let mut first = LuaChat::start_on(
        relay.port,
        "luna",
        &[
            "--register",
            "--device",
            "phone",
            "--state",
            state,
            "--reconnect",
            "--no-roster",
            "--join",
            "dev",
            "--send",
            "all",
            "one",
            "--send",
            "#dev",
            "two",
        ],
    );
    let token = first.wait_for("its token", kind("token"));
    assert_eq!(token["device"], "phone", "{}", first.report());
    let token = token["token"].clone();
    assert!(
        token.len() == 64
            && token
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "64 lowercase hex digits: {token}"
    );
    first.wait_for("the cut", kind("disconnected"));
    let again = first.wait_for("the reconnect", kind("reconnected"));
    assert_eq!(
        (again["device"].as_str(), again["resent"].as_str()),
        ("phone", "1"),
        "{}",
        first.report()
    );
    let (code, stderr) = first.wait_exit();
    assert_eq!(code, Some(0), "{stderr}\n{}", first.report());
    assert_eq!(relay.cuts(), 1);
    let acks: Vec<Line> = first
        .seen
        .iter()
        .filter(|l| l["kind"] == "ack")
        .cloned()
        .collect();
    assert_eq!(acks.len(), 2, "one ACK each; {}", first.report());
    let one = acks
        .iter()
        .find(|l| l["to"] == "all")
        .expect("the ACK of one");
    let two = acks
        .iter()
        .find(|l| l["to"] == "#dev")
        .expect("the ACK of two");
    assert_eq!((one["resent"].as_str(), two["resent"].as_str()), ("1", "0"));
    assert_ne!(one["client_id"], two["client_id"]);

    // 2. Again, and this run dies without the ACK (no --reconnect): the next
    // run from the same state file resends it, with the same client_id.
    relay.arm();
    let mut second = LuaChat::start_on(
        relay.port,
        "luna",
        &["--state", state, "--no-roster", "--send", "@alice", "three"],
    );
    let (code, stderr) = second.wait_exit();
    assert_eq!(
        code,
        Some(2),
        "the connection was cut: {stderr}\n{}",
        second.report()
    );
    assert_eq!(relay.cuts(), 2);
    assert!(
        !second.seen.iter().any(|l| l["kind"] == "ack"),
        "{}",
        second.report()
    );
    let mut third = LuaChat::start_on(relay.port, "luna", &["--state", state, "--no-roster"]);
    let resend = third.wait_for("the resend", kind("resend"));
    assert_eq!(resend["to"], "@alice");
    let three = third.wait_for("the ACK", kind("ack"));
    assert_eq!(
        (
            three["client_id"].as_str(),
            three["resent"].as_str(),
            three["to"].as_str()
        ),
        (resend["client_id"].as_str(), "1", "@alice"),
        "{}",
        third.report()
    );
    let (code, stderr) = third.wait_exit();
    assert_eq!(code, Some(0), "{stderr}\n{}", third.report());
    // Its own messages, replayed at its logins, were not shown as new.
    assert_eq!(third.messages(), vec![], "{}", third.report());

    // Each message was stored once, with the id its (resent) ACK said, and
    // delivered once: a second copy would have come before the barrier.
    for (to, body, ack) in [
        ("all", "one", one),
        ("#dev", "two", two),
        ("@luna", "three", &three),
    ] {
        let m = alice.wait_message(body);
        assert_eq!(m["id"].to_string(), ack["id"], "{body}");
        let stored = history(&server, "alice", to);
        let copies: Vec<_> = stored.iter().filter(|(_, b)| b == body).collect();
        assert_eq!(copies.len(), 1, "{body} in the history of {to}: {stored:?}");
        assert_eq!(copies[0].0.to_string(), ack["id"], "{body}");
    }
    server.client("carol").send("@alice", "barrier");
    alice.wait_message("barrier");
    for body in ["one", "two", "three"] {
        let n = rust_messages(&alice).iter().filter(|m| m.2 == body).count();
        assert_eq!(n, 1, "{body} delivered {n} times");
    }

    // 3. While luna is away: one message of each kind for her, one not.
    server.client("alice").send("all", "away room");
    server.client("alice").send("#dev", "away dev");
    server.client("alice").send("@luna", "away dm");
    server.client("carol").send("@alice", "not for luna");

    // 4. By the token alone (no state file), resuming at the device's
    // bookmark: exactly what it missed.
    let mut back = LuaChat::start(
        &server,
        "luna",
        &[
            "--token",
            &token,
            "--no-roster",
            "--listen",
            "15",
            "--count",
            "3",
        ],
    );
    let login = back.wait_for("login", kind("login"));
    assert_eq!(login["device"], "phone", "{}", back.report());
    back.wait_for("caught_up", kind("caught_up"));
    let (code, stderr) = back.wait_exit();
    assert_eq!(code, Some(0), "{stderr}\n{}", back.report());
    let mut got = back.messages();
    got.sort();
    let mut want = vec![
        triple("alice", "all", "away room"),
        triple("alice", "#dev", "away dev"),
        triple("alice", "@luna", "away dm"),
    ];
    want.sort();
    assert_eq!(got, want, "{}", back.report());
    let caught_up = back.seen.iter().position(|l| l["kind"] == "caught_up");
    let last_message = back.seen.iter().rposition(|l| l["kind"] == "message");
    assert!(last_message < caught_up, "{}", back.report());
    assert!(
        !back.seen.iter().any(|l| l["kind"] == "error"),
        "{}",
        back.report()
    );
}

#[test]
fn a_lua_operator_kicks_bans_deletes_and_announces_on_the_real_server() {
    let server = Server::start();
    server.register("luna", &password("luna"));
    server.user_command(&["op", "luna"], None).ok();
    let mut bob = server.client("bob").listen();
    let mut dave = server.client("dave").listen();
    let spam = server.client("dave").send("all", "spam spam");
    bob.wait_message("spam spam");

    let input = format!(
        "/kick bob take a break\n/delete {spam} spam\n/announce hello from lua\n/ban dave 3600 go away\n"
    );
    let mut luna = LuaChat::start_fed(
        server.port(),
        "luna",
        &["--protocol", "2", "--stdin", "--listen", "1"],
        Some(&input),
    );
    let (code, stderr) = bob.wait_exit();
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("KICKED") && stderr.contains("take a break"),
        "{stderr}"
    );
    let told = dave.wait_for("the deletion", |v| {
        v["event"] == "deleted" && v["id"] == spam
    });
    assert_eq!(told["by"], "luna", "{told}");
    dave.wait_for("the notice", |v| {
        v["event"] == "notice" && v["text"] == "hello from lua"
    });
    let (code, stderr) = dave.wait_exit();
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("BANNED") && stderr.contains("go away"),
        "{stderr}"
    );
    let oks = (0..4)
        .map(|i| luna.wait_for(&format!("OK {i}"), kind("ok")))
        .count();
    assert_eq!(oks, 4, "{}", luna.report());
    let (code, _) = luna.wait_exit();
    assert_eq!(code, Some(0), "{}", luna.report());

    let refused = server.client("dave").run(&["send", "--to", "all", "back"]);
    assert!(refused.stderr.contains("BANNED"), "{refused:?}");
    let audit = server.server_command(&["audit"]);
    for line in [
        "\tluna\tkick\tbob\ttake a break",
        "\tluna\tban\tdave\tgo away",
    ] {
        assert!(audit.ok().contains(line), "{line:?} in {audit:?}");
    }
}
