//! The harness: a real `confab-server` per test, real `confab` clients, and
//! waits that are always bounded.
//!
//! - [`Server::start`] runs the server on `127.0.0.1:0` with its own temp
//!   data dir, reads its log until the `listening on ADDR` line, and kills it
//!   when dropped. [`Server::restart`] runs a new one on the same data dir
//!   (after a SIGKILL, [`Server::kill`], if it still runs).
//!   [`Server::start_tls`] serves TLS with a self-signed certificate
//!   ([`Server::certificate`]); [`Client::with_env`] gives a client
//!   `CONFAB_TLS`, `CONFAB_CA` or `CONFAB_CONFIG_DIR`.
//! - [`Server::client`] names a user; [`Client::run`] runs one `confab`
//!   command to completion (killed after [`WAIT`]); [`Client::listen`]
//!   starts `confab listen` in the background.
//! - [`Listener::wait_for`] collects JSON lines until one matches, for at
//!   most [`WAIT`]. Tests never sleep: to show that something did *not*
//!   arrive, they send a later "barrier" message of the same priority
//!   class and check, once the barrier is there, that the other one is not.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use confab::{Connection, ConnectionError};
use confab_engine::frame::ErrorCode;
use confab_engine::Name;
use serde_json::Value;
use tempfile::TempDir;

/// The longest any single wait in a test may take.
pub(crate) const WAIT: Duration = Duration::from_secs(15);

/// Server options every test server gets: cheap password hashing (the
/// tests register many accounts; see [`FAST_SYNC`] for the exception) and
/// relaxed fsync.
const FAST: &[&str] = &[
    "--hash-memory-kib",
    "64",
    "--hash-passes",
    "1",
    "--sync",
    "normal",
];

/// [`FAST`] without the cheap hashing.
const FAST_SYNC: &[&str] = &["--sync", "normal"];

/// The path of a binary of this workspace, next to the test executable.
pub(crate) fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable knows its path");
    let mut dir = exe
        .parent()
        .expect("the test executable is in a directory")
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// `confab`, with a clean environment.
pub(crate) fn confab() -> Command {
    command("confab")
}

/// A command for one of our binaries, without any `CONFAB_*` variable of
/// the environment the tests run in.
fn command(name: &str) -> Command {
    let mut c = Command::new(bin(name));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CONFAB_") {
            c.env_remove(k);
        }
    }
    c.stdin(Stdio::null());
    c
}

/// A seeded random generator (splitmix64), for tests that pick random
/// moments or bytes: the same seed gives the same sequence everywhere.
pub(crate) struct Rng(u64);

impl Rng {
    /// The generator for `CONFAB_TEST_SEED` if set, else for the clock;
    /// prints the seed (shown when the test fails).
    pub(crate) fn from_env_or_clock(what: &str) -> Rng {
        let seed = match std::env::var("CONFAB_TEST_SEED") {
            Ok(s) => s.parse().expect("CONFAB_TEST_SEED is a number"),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64),
        };
        println!("{what}: seed {seed} (replay with CONFAB_TEST_SEED={seed})");
        Rng(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The password the tests use for `user` unless they say otherwise.
pub(crate) fn password(user: &str) -> String {
    format!("{}-secret", user.to_ascii_lowercase())
}

/// A running server (see the module docs).
pub(crate) struct Server {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
    /// Shared with the servers restarted on it.
    dir: Arc<TempDir>,
    args: Vec<String>,
    /// Cheap password hashing ([`FAST`]) unless started with
    /// [`Server::start_with_default_hashing`].
    fast: bool,
}

impl Server {
    /// A server with the default options.
    pub(crate) fn start() -> Server {
        Server::start_with(&[])
    }

    /// A server with extra command-line options.
    pub(crate) fn start_with(args: &[&str]) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("confab-e2e-")
            .tempdir()
            .expect("a temporary data dir");
        let args = args.iter().map(|a| (*a).to_owned()).collect();
        Server::start_in(Arc::new(dir), args, "127.0.0.1:0", true)
    }

    /// A server hashing passwords at the default (real) cost, with extra
    /// options: for what the cost itself does (memory, queueing).
    pub(crate) fn start_with_default_hashing(args: &[&str]) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("confab-e2e-")
            .tempdir()
            .expect("a temporary data dir");
        let args = args.iter().map(|a| (*a).to_owned()).collect();
        Server::start_in(Arc::new(dir), args, "127.0.0.1:0", false)
    }

    /// The server process's resident memory now, in KiB (Linux's
    /// `/proc/PID/status`).
    pub(crate) fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server's /proc status is readable");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("/proc status has VmRSS in kB")
    }

    /// A server serving TLS with a self-signed certificate in its data dir.
    pub(crate) fn start_tls(args: &[&str]) -> Server {
        let mut all = vec!["--tls-self-signed"];
        all.extend_from_slice(args);
        Server::start_with(&all)
    }

    /// The self-signed certificate of a [`Server::start_tls`] server.
    pub(crate) fn certificate(&self) -> PathBuf {
        self.data_dir().join("tls-cert.pem")
    }

    /// Like [`Server::restart`], on the same port (for what clients pin
    /// by `host:port`).
    pub(crate) fn restart_same_port(mut self) -> Server {
        self.kill();
        let listen = self.addr.to_string();
        Server::start_in(
            self.dir.clone(),
            std::mem::take(&mut self.args),
            &listen,
            self.fast,
        )
    }

    /// Kills this server (SIGKILL, if it still runs) and starts a new one on
    /// the same data dir with the same options (on another port).
    pub(crate) fn restart(mut self) -> Server {
        self.kill();
        Server::start_in(
            self.dir.clone(),
            std::mem::take(&mut self.args),
            "127.0.0.1:0",
            self.fast,
        )
    }

    fn start_in(dir: Arc<TempDir>, args: Vec<String>, listen: &str, fast: bool) -> Server {
        let fast_args = if fast { FAST } else { FAST_SYNC };
        // Every test client comes from loopback: one address, unless a
        // test limits it itself; and the tests register many accounts.
        let mut per_source = Vec::new();
        for (option, value) in [
            ("--max-per-source", "10000"),
            ("--max-pre-auth-per-source", "10000"),
            ("--auth-queue-per-source", "256"),
            ("--register-source-burst", "65535"),
            ("--register-server-burst", "65535"),
        ] {
            if !args.iter().any(|a| a == option) {
                per_source.extend([option, value]);
            }
        }
        let mut child = command("confab-server")
            .args(["--listen", listen, "--data-dir"])
            .arg(dir.path())
            .args(fast_args)
            .args(per_source)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("confab-server starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let reader = {
            let log = log.clone();
            thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(addr) = listening_addr(&line) {
                        let _ = tx.send(addr);
                    }
                    log.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(line);
                }
            })
        };
        let addr = match rx.recv_timeout(WAIT) {
            Ok(addr) => addr,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = reader.join();
                let log = log
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .join("\n");
                panic!("confab-server did not log `listening on ADDR` ({e:?}); its log:\n{log}");
            }
        };
        Server {
            child,
            addr,
            log,
            reader: Some(reader),
            dir,
            args,
            fast,
        }
    }

    /// The web port's address, from the log line `web listening on ADDR`
    /// (a server started with `--web-listen 127.0.0.1:0`).
    pub(crate) fn web_addr(&self) -> SocketAddr {
        let line = self.wait_log("web listening on", |l| l.contains("web listening on "));
        let rest = &line[line.find("web listening on ").unwrap_or(0) + "web listening on ".len()..];
        rest.split_whitespace()
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
    }

    /// The data dir.
    pub(crate) fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// SIGKILL, as in a crash, and waits for the process to be gone.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Runs `confab-server user ARGS` on this server's data dir (with cheap
    /// hashing), with `password` as `CONFAB_PASSWORD` if given.
    pub(crate) fn user_command(&self, args: &[&str], password: Option<&str>) -> Run {
        let mut cmd = command("confab-server");
        cmd.arg("--data-dir")
            .arg(self.data_dir())
            .args(FAST)
            .arg("user")
            .args(args);
        if let Some(p) = password {
            cmd.env("CONFAB_PASSWORD", p);
        }
        run_to_end(cmd, &format!("confab-server user {}", args.join(" ")))
    }

    /// Runs `confab-server OPTIONS user ARGS` on this server's data dir
    /// (with cheap hashing): a cluster node's, with its `--store`.
    pub(crate) fn user_command_with(&self, options: &[&str], args: &[&str]) -> Run {
        let mut cmd = command("confab-server");
        cmd.arg("--data-dir")
            .arg(self.data_dir())
            .args(FAST)
            .args(options)
            .arg("user")
            .args(args);
        run_to_end(cmd, &format!("confab-server user {}", args.join(" ")))
    }

    /// Runs `confab-server ARGS` on this server's data dir (with cheap
    /// hashing): the moderation and control commands.
    pub(crate) fn server_command(&self, args: &[&str]) -> Run {
        let mut cmd = command("confab-server");
        cmd.arg("--data-dir")
            .arg(self.data_dir())
            .args(FAST)
            .args(args);
        run_to_end(cmd, &format!("confab-server {}", args.join(" ")))
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The server's log so far.
    pub(crate) fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .join("\n")
    }

    /// Waits (bounded) for a log line matching `pred`, for what the server
    /// does not tell any client (a connection it has let go of).
    #[track_caller]
    pub(crate) fn wait_log(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let found = self
                .log
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .find(|l| pred(l))
                .cloned();
            if let Some(line) = found {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} in the server log within {WAIT:?}:\n{}",
                self.log()
            );
            // The log has no notification to wait on; poll it.
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// A user of this server, registered on first use with [`password`].
    pub(crate) fn client(&self, user: &str) -> Client<'_> {
        Client {
            server: self,
            user: user.to_owned(),
            password: password(user),
            register: true,
            env: Vec::new(),
        }
    }

    /// Registers `user` through the client library (NAME_TAKEN is fine).
    pub(crate) fn register(&self, user: &str, password: &str) {
        let mut c = self.connect();
        let name = Name::new(user).expect("a valid test user name");
        match c.register(name, password, WAIT) {
            Ok(()) => {}
            Err(ConnectionError::Refused(e)) if e.code == ErrorCode::NameTaken => {}
            Err(e) => panic!("registering {user}: {e}"),
        }
    }

    /// A library connection to the server.
    pub(crate) fn connect(&self) -> Connection {
        Connection::connect_timeout("127.0.0.1", self.port(), WAIT)
            .unwrap_or_else(|e| panic!("{e}\nserver log:\n{}", self.log()))
    }

    /// Sends the server SIGTERM (a graceful shutdown).
    pub(crate) fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill(1) runs");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Sends the server SIGHUP (reload its config file).
    pub(crate) fn hangup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("kill(1) runs");
        assert!(status.success(), "kill -HUP failed");
    }

    /// Waits (bounded) for the server to exit by itself.
    pub(crate) fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait works") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit within {WAIT:?}; log:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// `ADDR` from a log line containing `listening on ADDR`.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    if line.contains("web listening on ") {
        return None;
    }
    let rest = &line[line.find("listening on ")? + "listening on ".len()..];
    rest.split_whitespace().next()?.parse().ok()
}

/// A user, for running `confab` commands as them.
pub(crate) struct Client<'s> {
    server: &'s Server,
    user: String,
    password: String,
    register: bool,
    /// Extra environment for its commands.
    env: Vec<(String, String)>,
}

/// A finished `confab` command.
#[derive(Debug)]
pub(crate) struct Run {
    /// The exit code (`None`: killed by a signal).
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// Stdout's lines parsed as JSON.
    pub(crate) fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
    }

    /// Asserts a zero exit and returns stdout.
    #[track_caller]
    pub(crate) fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "confab failed: {self:?}");
        &self.stdout
    }
}

impl Client<'_> {
    /// The same user with another password.
    pub(crate) fn with_password(self, password: &str) -> Self {
        Client {
            password: password.to_owned(),
            ..self
        }
    }

    /// The same user with `key=value` in the environment of its commands.
    pub(crate) fn with_env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        let value = value.as_ref().to_string_lossy().into_owned();
        self.env.push((key.to_owned(), value));
        self
    }

    /// The same user, not registering first.
    pub(crate) fn without_register(self) -> Self {
        Client {
            register: false,
            ..self
        }
    }

    /// `confab` with this user's account in the environment (which also
    /// checks that every account option reads `CONFAB_<NAME>`).
    fn command(&self) -> Command {
        let mut c = command("confab");
        c.env("CONFAB_HOST", "127.0.0.1")
            .env("CONFAB_PORT", self.server.port().to_string())
            .env("CONFAB_USER", &self.user);
        // An empty password is none: the command logs in by its token.
        if !self.password.is_empty() {
            c.env("CONFAB_PASSWORD", &self.password);
        }
        if self.register {
            c.env("CONFAB_REGISTER", "1");
        }
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Runs `confab ARGS` to completion (killed after [`WAIT`]).
    pub(crate) fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, None)
    }

    /// Runs `confab ARGS` with `input` on its standard input.
    pub(crate) fn run_with_stdin(&self, args: &[&str], input: Option<&str>) -> Run {
        let mut cmd = self.command();
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        if input.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().expect("confab starts");
        if let Some(input) = input {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin is piped");
            stdin
                .write_all(input.as_bytes())
                .expect("confab reads its stdin");
        }
        finish(child, &format!("confab {}", args.join(" ")))
    }

    /// `confab send --to TO TEXT`, which must succeed; returns the id.
    #[track_caller]
    pub(crate) fn send(&self, to: &str, text: &str) -> u64 {
        let run = self.run(&["send", "--to", to, text]);
        let out = run.ok();
        out.trim()
            .parse()
            .unwrap_or_else(|_| panic!("`confab send` printed {out:?}, not an id"))
    }

    /// Starts `confab listen ARGS` and waits until it has caught up.
    pub(crate) fn listen(&self) -> Listener {
        let mut l = self.listen_with(&[]);
        l.wait_for("caught_up", |v| v["event"] == "caught_up");
        l
    }

    /// Starts `confab listen ARGS` without waiting for anything.
    pub(crate) fn listen_with(&self, args: &[&str]) -> Listener {
        let mut child = self
            .command()
            .arg("listen")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("confab listen starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = read_all(child.stderr.take().expect("stderr is piped"));
        let (tx, lines) = mpsc::channel();
        let reader = thread::spawn(move || read_json_lines(stdout, tx));
        Listener {
            who: self.user.clone(),
            child,
            lines,
            reader: Some(reader),
            stderr,
            seen: Vec::new(),
            taken: Vec::new(),
        }
    }
}

/// Runs `cmd` to completion with its output captured (killed after [`WAIT`]).
fn run_to_end(mut cmd: Command, what: &str) -> Run {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("`{what}` starts: {e}"));
    finish(child, what)
}

/// Waits (bounded) for a child with piped output to finish.
fn finish(mut child: Child, what: &str) -> Run {
    let out = read_all(child.stdout.take().expect("stdout is piped"));
    let err = read_all(child.stderr.take().expect("stderr is piped"));
    let deadline = Instant::now() + WAIT;
    let stdout = out.recv_timeout(WAIT);
    let stderr = err.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    let (Ok(stdout), Ok(stderr)) = (stdout, stderr) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("`{what}` did not finish within {WAIT:?}");
    };
    let status = child.wait().expect("the child can be waited for");
    Run {
        code: status.code(),
        stdout,
        stderr,
    }
}

fn read_all(mut r: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        let _ = tx.send(s);
    });
    rx
}

fn read_json_lines(stdout: ChildStdout, tx: mpsc::Sender<Value>) {
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let v = serde_json::from_str(&line)
            .unwrap_or_else(|e| Value::String(format!("NOT JSON ({e}): {line}")));
        if tx.send(v).is_err() {
            break;
        }
    }
}

/// A `confab listen` running in the background (killed when dropped).
pub(crate) struct Listener {
    who: String,
    child: Child,
    lines: Receiver<Value>,
    reader: Option<JoinHandle<()>>,
    stderr: Receiver<String>,
    seen: Vec<Value>,
    /// Which lines of `seen` a wait has returned.
    taken: Vec<bool>,
}

impl Listener {
    fn push(&mut self, v: Value) {
        self.seen.push(v);
        self.taken.push(false);
    }

    /// Waits for a line matching `pred` that no earlier wait returned, in
    /// whatever order lines arrive, and returns it. Panics, showing everything received, after [`WAIT`].
    #[track_caller]
    pub(crate) fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let found = (0..self.seen.len()).find(|&i| !self.taken[i] && pred(&self.seen[i]));
            if let Some(i) = found {
                self.taken[i] = true;
                return self.seen[i].clone();
            }
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(v) => self.push(v),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("{}: no {what} within {WAIT:?}; {}", self.who, self.report())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.child.wait();
                    panic!("{}: exited before {what}; {}", self.who, self.report())
                }
            }
        }
    }

    /// Waits for the message with this body.
    #[track_caller]
    pub(crate) fn wait_message(&mut self, body: &str) -> Value {
        self.wait_for(&format!("message {body:?}"), |v| {
            v["event"] == "message" && v["body"] == body
        })
    }

    /// Asserts that no line received so far matches `pred`.
    #[track_caller]
    pub(crate) fn assert_not_seen(&self, what: &str, pred: impl Fn(&Value) -> bool) {
        if let Some(v) = self.seen.iter().find(|v| pred(v)) {
            panic!("{} got {what}: {v}; {}", self.who, self.report());
        }
    }

    /// Asserts that no message with this body was received so far.
    #[track_caller]
    pub(crate) fn assert_no_message(&self, body: &str) {
        self.assert_not_seen(&format!("message {body:?}"), |v| {
            v["event"] == "message" && v["body"] == body
        });
    }

    /// Every line received so far.
    pub(crate) fn seen(&self) -> &[Value] {
        &self.seen
    }

    /// Kills the process (SIGKILL: no logout, the socket just closes).
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits (bounded) for the process to exit by itself, collecting its
    /// remaining lines; returns its exit code and standard error.
    #[track_caller]
    pub(crate) fn wait_exit(&mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + WAIT;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(v) => self.push(v),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "{}: did not exit within {WAIT:?}; {}",
                        self.who,
                        self.report()
                    )
                }
            }
        }
        let status = self.child.wait().expect("confab listen can be waited for");
        let stderr = self
            .stderr
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_default();
        (status.code(), stderr)
    }

    fn report(&self) -> String {
        let lines: Vec<String> = self.seen.iter().map(Value::to_string).collect();
        format!("received:\n  {}", lines.join("\n  "))
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}
