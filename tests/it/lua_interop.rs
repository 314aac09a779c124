//! The Lua client (`client/lua/`, written from docs/PROTOCOL.md alone)
//! against the real server, talking with the Rust `confab` client.
//!
//! These tests need `lua5.4` with LuaSocket (`scripts/install-lua.sh`);
//! without them they fail, saying so, rather than skip.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
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
        let script = lua_dir().join("confab-chat.lua");
        let port = server.port().to_string();
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
        let mut child = lua(&all)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("lua5.4 starts");
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

#[test]
fn lua_codec_matches_every_example_in_the_spec() {
    let script = lua_dir().join("test/codec_test.lua");
    let out = lua(&[script.to_str().expect("a UTF-8 path")])
        .output()
        .expect("lua5.4 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "codec_test.lua failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.ends_with(" passed, 0 failed"), "{stdout}");
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
