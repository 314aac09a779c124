//! The terminal UI in a real terminal: tmux (on a socket of its own, so a
//! user's tmux is never touched) runs two `confab` clients, 120×40, against
//! a real server; `send-keys` types, `capture-pane` reads the screen.
//!
//! Every wait polls the screen with a bound ([`WAIT`]); the tmux server is
//! killed when the test ends, however it ends.

use std::cell::OnceCell;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{bin, password, Server, WAIT};

/// The terminal's size.
const WIDTH: usize = 120;
const HEIGHT: usize = 40;
/// Columns of the conversation pane (the side bar is the last 26).
const PANE: usize = WIDTH - 26;

/// A tmux server of our own (see the module docs).
struct Tmux {
    socket: String,
    /// The socket's path, once the server runs (removed at the end).
    path: OnceCell<PathBuf>,
}

impl Tmux {
    /// Starts nothing yet: the first window starts the server. Fails the
    /// test, saying so, when tmux is missing.
    fn new() -> Tmux {
        let found = Command::new("tmux")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "tmux is not installed, and the terminal UI test needs it: \
             `apt-get install -y tmux` (scripts/install-deps.sh does this)"
        );
        static N: AtomicU32 = AtomicU32::new(0);
        Tmux {
            socket: format!(
                "confab-it-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ),
            path: OnceCell::new(),
        }
    }

    fn tmux(&self, args: &[&str]) -> Output {
        let mut c = Command::new("tmux");
        // Without the caller's configuration or CONFAB_* variables.
        c.args(["-L", &self.socket, "-f", "/dev/null"]).args(args);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("CONFAB_") {
                c.env_remove(k);
            }
        }
        let out = c.stdin(Stdio::null()).output().expect("tmux runs");
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Opens a window `name` running `confab ARGS`; it stays on screen if
    /// the client exits, so a crash can be read.
    fn spawn(&self, name: &str, args: &[&str]) {
        let confab = bin("confab");
        let confab = confab.to_str().expect("a UTF-8 path");
        let (w, h) = (WIDTH.to_string(), HEIGHT.to_string());
        let mut cmd = vec![
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            &w,
            "-y",
            &h,
            "--",
            confab,
        ];
        cmd.extend_from_slice(args);
        let target = pane(name);
        cmd.extend_from_slice(&[";", "set-option", "-t", &target, "remain-on-exit", "on"]);
        self.tmux(&cmd);
        if self.path.get().is_none() {
            let out = self.tmux(&["display-message", "-p", "#{socket_path}"]);
            let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            let _ = self.path.set(PathBuf::from(path));
        }
    }

    /// Types keys (tmux key names: `Enter`, `F3`, `Tab`, `C-p`).
    fn keys(&self, name: &str, keys: &[&str]) {
        let target = pane(name);
        let mut cmd = vec!["send-keys", "-t", &target];
        cmd.extend_from_slice(keys);
        self.tmux(&cmd);
    }

    /// Types text literally.
    fn text(&self, name: &str, text: &str) {
        self.tmux(&["send-keys", "-t", &pane(name), "-l", text]);
    }

    /// The screen, one string per line.
    fn screen(&self, name: &str) -> Screen {
        let out = self.tmux(&["capture-pane", "-p", "-t", &pane(name)]);
        Screen(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Polls the screen until `pred` holds, for at most [`WAIT`].
    #[track_caller]
    fn wait_for(&self, name: &str, what: &str, pred: impl Fn(&Screen) -> bool) -> Screen {
        let deadline = Instant::now() + WAIT;
        loop {
            let s = self.screen(name);
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: no {what} on screen within {WAIT:?}; the screen:\n{}",
                s.0
            );
            // The screen has no notification to wait on; poll it.
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The target naming session `name`'s pane exactly (a bare name may
/// resolve to something else).
fn pane(name: &str) -> String {
    format!("={name}:")
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(path) = self.path.get() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A captured screen.
struct Screen(String);

impl Screen {
    /// The conversation pane's text (the left columns, status and input
    /// lines excluded).
    fn conversation(&self) -> String {
        self.rows(1, HEIGHT - 2, 0, PANE)
    }

    /// The side bar's text (groups and people).
    fn sidebar(&self) -> String {
        self.rows(1, HEIGHT - 2, PANE, WIDTH)
    }

    /// The status bar.
    fn status(&self) -> String {
        self.rows(0, 1, 0, WIDTH)
    }

    fn rows(&self, from: usize, to: usize, left: usize, right: usize) -> String {
        self.0
            .lines()
            .skip(from)
            .take(to - from)
            .map(|l| {
                let s: String = l.chars().skip(left).take(right - left).collect();
                s.trim_end().to_owned() + "\n"
            })
            .collect()
    }

    fn has(&self, s: &str) -> bool {
        self.0.contains(s)
    }
}

/// Logs `user` in through the login screen, registering the account.
fn register_and_log_in(tmux: &Tmux, server: &Server, user: &str) {
    let port = server.port().to_string();
    tmux.spawn(
        user,
        &["--host", "127.0.0.1", "--port", &port, "--user", user],
    );
    tmux.wait_for(user, "login screen", |s| {
        s.has("Password") && s.has("Register a new account")
    });
    // The password field has the focus: the user name was given.
    tmux.text(user, &password(user));
    tmux.keys(user, &["F3"]);
    tmux.wait_for(user, "register ticked", |s| s.has("[x] Register"));
    tmux.keys(user, &["Enter"]);
    let me = format!("{user} (you)");
    tmux.wait_for(user, "main screen", |s| {
        s.status().contains("online") && s.sidebar().contains(&me)
    });
}

#[test]
fn two_terminal_clients_see_each_message_where_it_belongs() {
    let server = Server::start();
    let tmux = Tmux::new();
    register_and_log_in(&tmux, &server, "alice");
    register_and_log_in(&tmux, &server, "bob");
    tmux.wait_for("alice", "bob online", |s| s.sidebar().contains("bob"));

    // The group, made with the command line while both are logged in.
    let alice_cli = server.client("alice").without_register();
    let bob_cli = server.client("bob").without_register();
    alice_cli.run(&["group", "create", "dev"]).ok();
    bob_cli.run(&["group", "join", "dev"]).ok();
    for user in ["alice", "bob"] {
        tmux.wait_for(user, "#dev joined", |s| s.sidebar().contains("#dev"));
    }

    tmux.text("alice", "hello room");
    tmux.keys("alice", &["Enter"]);
    tmux.text("alice", "/msg bob psst, just for you");
    tmux.keys("alice", &["Enter"]);
    tmux.text("alice", "/msg #dev hi devs");
    tmux.keys("alice", &["Enter"]);

    // Bob is on the room: only the room message is in the pane; the group
    // and the DM are counted as unread in the side bar.
    let s = tmux.wait_for("bob", "the messages and unread counts", |s| {
        s.conversation().contains("<alice> hello room")
            && s.sidebar().contains("#dev (1)")
            && s.sidebar().contains("alice (1)")
    });
    let pane = s.conversation();
    assert!(pane.contains("all · the room"), "{}", s.0);
    assert!(
        !pane.contains("psst"),
        "the DM is not in the room:\n{}",
        s.0
    );
    assert!(
        !pane.contains("hi devs"),
        "the group message is not in the room:\n{}",
        s.0
    );

    // Alice's own room pane has her message, acknowledged, and nothing else.
    let s = tmux.wait_for("alice", "her room message", |s| {
        s.conversation().contains("<alice> hello room")
    });
    assert!(!s.conversation().contains("psst"), "{}", s.0);
    assert!(!s.conversation().contains("hi devs"), "{}", s.0);

    // Bob picks alice in the people list: the DM, and only it.
    tmux.keys("bob", &["Tab", "Tab", "Down", "Enter"]);
    let s = tmux.wait_for("bob", "the DM conversation", |s| {
        s.conversation().contains("@alice")
            && s.conversation().contains("<alice> psst, just for you")
    });
    assert!(!s.conversation().contains("hello room"), "{}", s.0);
    assert!(!s.conversation().contains("hi devs"), "{}", s.0);
    assert!(!s.sidebar().contains("alice (1)"), "read now:\n{}", s.0);
    assert!(s.sidebar().contains("#dev (1)"), "{}", s.0);

    // Then #dev from the groups list: the group message, and only it.
    tmux.keys("bob", &["Tab", "Down", "Enter"]);
    let s = tmux.wait_for("bob", "the group conversation", |s| {
        s.conversation().contains("#dev") && s.conversation().contains("<alice> hi devs")
    });
    assert!(!s.conversation().contains("hello room"), "{}", s.0);
    assert!(!s.conversation().contains("psst"), "{}", s.0);
    assert!(!s.sidebar().contains("#dev (1)"), "read now:\n{}", s.0);

    // Bob answers in the group; alice, on the room, gets an unread count.
    tmux.text("bob", "hi alice");
    tmux.keys("bob", &["Enter"]);
    tmux.wait_for("alice", "#dev unread", |s| s.sidebar().contains("#dev (1)"));

    // F10 quits cleanly.
    tmux.keys("alice", &["F10"]);
    tmux.wait_for("alice", "the client gone", |s| !s.has("confab │"));
}
