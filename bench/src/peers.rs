//! The servers a suite run measures: confab-server, or one of issue 17's
//! peers, started the same way on a loopback port with a temp dir and
//! killed when the run ends: `relay` (`confab-bench relay`, this binary),
//! ngIRCd and InspIRCd (each from a generated config: loopback only, no
//! daemonizing, flood limits off or as high as the server allows, run as
//! `nobody` when the bench is root, since InspIRCd refuses root).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::conn::{err, Error, Result};
use crate::Protocol;

/// Who serves the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Peer {
    /// confab-server (`--server`).
    Confab,
    /// confab-server's IRC gateway (issue 19): `--irc-listen`, with guest
    /// accounts for the bench's NICK/USER clients.
    ConfabIrc,
    /// `confab-bench relay`: the minimal relay, the cost floor.
    Relay,
    /// ngIRCd (`ngircd` on the PATH).
    Ngircd,
    /// InspIRCd (`inspircd` on the PATH, or /usr/sbin/inspircd).
    Inspircd,
}

impl Peer {
    /// The name in the JSON lines.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Peer::Confab => "confab",
            Peer::ConfabIrc => "confab-irc",
            Peer::Relay => "relay",
            Peer::Ngircd => "ngircd",
            Peer::Inspircd => "inspircd",
        }
    }

    /// The protocol the bench speaks to it.
    pub(crate) fn protocol(self) -> Protocol {
        match self {
            Peer::Confab | Peer::Relay => Protocol::Confab,
            Peer::Ngircd | Peer::Inspircd | Peer::ConfabIrc => Protocol::Irc,
        }
    }

    /// Starts it; `confab_args` are confab-server's (the others need none).
    pub(crate) fn start(self, server: &Path, confab_args: &[String]) -> Result<ServerProcess> {
        match self {
            Peer::Confab => ServerProcess::start(server, confab_args),
            Peer::ConfabIrc => {
                let mut args = confab_args.to_vec();
                args.extend(IRC_ARGS.iter().map(|a| (*a).to_owned()));
                let mut s = ServerProcess::start(server, &args)?;
                s.addr = s.irc_addr()?;
                Ok(s)
            }
            Peer::Relay => {
                let me = std::env::current_exe()
                    .map_err(|e| Error(format!("cannot find confab-bench itself: {e}")))?;
                let mut cmd = Command::new(&me);
                cmd.args(["relay", "--listen", "127.0.0.1:0"]);
                ServerProcess::launch(cmd, temp_dir()?, None, "confab-bench relay")
            }
            Peer::Ngircd | Peer::Inspircd => {
                let dir = temp_dir()?;
                let port = free_port()?;
                let nobody = if unsafe { libc::geteuid() } == 0 {
                    Some(nobody()?)
                } else {
                    None
                };
                let config = dir.path().join("ircd.conf");
                let text = if self == Peer::Ngircd {
                    ngircd_config(port, dir.path())
                } else {
                    inspircd_config(port, dir.path())
                };
                std::fs::write(&config, text)
                    .map_err(|e| Error(format!("cannot write {}: {e}", config.display())))?;
                if let Some((uid, gid)) = nobody {
                    std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                        .map_err(|e| Error(format!("cannot give the temp dir to nobody: {e}")))?;
                }
                let mut cmd = if self == Peer::Ngircd {
                    let mut c = Command::new("ngircd");
                    c.arg("--nodaemon").arg("--config").arg(&config);
                    c
                } else {
                    let bin = if Path::new("/usr/sbin/inspircd").is_file() {
                        "/usr/sbin/inspircd"
                    } else {
                        "inspircd"
                    };
                    let mut c = Command::new(bin);
                    c.arg("--nofork")
                        .arg("--nopid")
                        .arg("--config")
                        .arg(&config);
                    c
                };
                cmd.current_dir(dir.path());
                if let Some((uid, gid)) = nobody {
                    cmd.uid(uid).gid(gid);
                }
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                ServerProcess::launch(cmd, dir, Some(addr), self.name())
            }
        }
    }
}

/// confab-server's options as an IRC peer.
const IRC_ARGS: &[&str] = &[
    "--irc-listen",
    "127.0.0.1:0",
    "--irc-guests",
    "--irc-quiet-room",
];

/// A fresh temp dir for one run.
fn temp_dir() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("confab-bench-")
        .tempdir()
        .map_err(|e| Error(format!("cannot make a temp dir: {e}")))
}

/// A loopback port free a moment ago (bound to :0 and let go), for the
/// servers that cannot be told to pick one themselves.
fn free_port() -> Result<u16> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error(format!("cannot find a free port: {e}")))
}

/// The uid and gid of `nobody`, from /etc/passwd.
fn nobody() -> Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd")
        .map_err(|e| Error(format!("cannot read /etc/passwd: {e}")))?;
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&"nobody"))
                .then(|| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))?
        })
        .ok_or_else(|| Error("no user nobody in /etc/passwd".into()))
}

/// Waits until `addr` accepts a connection (or the server exits, or
/// `limit` passes).
fn accepting(server: &mut ServerProcess, addr: SocketAddr, limit: Duration) -> Option<SocketAddr> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline && server.alive() {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Some(addr);
        }
        thread::sleep(Duration::from_millis(20));
    }
    None
}

/// ngIRCd 26: loopback, no penalties (`MaxPenaltyTime = 0`), no limit on
/// connections or joins, long nicks (the bench's are `b<run>-<i>`), no
/// DNS or ident lookups, pings rare enough not to matter.
fn ngircd_config(port: u16, dir: &Path) -> String {
    format!(
        "[Global]\n\
         Name = irc.bench.local\n\
         Info = confab-bench peer\n\
         AdminInfo1 = bench\n\
         AdminInfo2 = bench\n\
         AdminEMail = bench@localhost\n\
         Listen = 127.0.0.1\n\
         Ports = {port}\n\
         MotdPhrase = bench\n\
         PidFile = {dir}/ngircd.pid\n\
         [Limits]\n\
         MaxConnections = 0\n\
         MaxConnectionsIP = 0\n\
         MaxJoins = 0\n\
         MaxNickLength = 31\n\
         MaxPenaltyTime = 0\n\
         PingTimeout = 600\n\
         PongTimeout = 600\n\
         [Options]\n\
         DNS = no\n\
         Ident = no\n\
         PAM = no\n",
        dir = dir.display()
    )
}

/// InspIRCd 3: loopback, one connect class with the flood limits as high
/// as it takes them (no fake lag, huge command rate, send and receive
/// queues), long nicks, no DNS.
fn inspircd_config(port: u16, dir: &Path) -> String {
    format!(
        r#"<server name="irc.bench.local" description="confab-bench peer" network="bench">
<admin name="bench" nick="bench" email="bench@localhost">
<bind address="127.0.0.1" port="{port}" type="clients">
<connect name="bench" allow="127.0.0.1" timeout="60" pingfreq="600" hardsendq="1073741824" softsendq="1073741824" recvq="16777216" threshold="1000000" commandrate="1000000000" fakelag="off" localmax="100000" globalmax="100000" maxchans="100" limit="100000" useident="no" resolvehostnames="no">
<limits maxnick="30" maxchan="60" maxuser="30" maxline="4096">
<performance softlimit="100000" somaxconn="1024" clonesonconnect="no">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="{dir}/inspircd.log">
<options allowhalfop="no">
"#,
        dir = dir.display()
    )
}

/// A running server (confab-server or a peer), killed when dropped.
pub(crate) struct ServerProcess {
    child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) pid: u32,
    log: Arc<Mutex<VecDeque<String>>>,
    /// Every `counters:` line the server logged (see [`crate::counts`]).
    counters: Arc<Mutex<Vec<String>>>,
    /// The web port, from its `web listening on ADDR` line (`--web-listen`).
    web: Arc<Mutex<Option<SocketAddr>>>,
    /// Lines the server logged so far (a refusal that logs is a log flood).
    pub(crate) log_lines: Arc<AtomicU64>,
    pub(crate) dir: tempfile::TempDir,
}

impl ServerProcess {
    /// The address of the `irc listening on ADDR` line, waited for (at
    /// most 15 s: it follows `listening on` at once).
    fn irc_addr(&self) -> Result<SocketAddr> {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let found = self.log.lock().ok().and_then(|l| {
                l.iter().find_map(|line| {
                    let rest = &line[line.find("irc listening on ")? + 17..];
                    rest.split_whitespace().next()?.parse().ok()
                })
            });
            if let Some(addr) = found {
                return Ok(addr);
            }
            if std::time::Instant::now() > deadline {
                return Err(Error(
                    "confab-server did not log `irc listening on ADDR`".into(),
                ));
            }
            // The log reader has no notification to wait on; poll it.
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts `bin` on 127.0.0.1:0 with a fresh data dir and `args`; waits
    /// (at most 15 s) for its `listening on ADDR` line.
    pub(crate) fn start(bin: &Path, args: &[String]) -> Result<ServerProcess> {
        let dir = temp_dir()?;
        let mut cmd = Command::new(bin);
        cmd.arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(dir.path())
            .args(args);
        ServerProcess::launch(cmd, dir, None, &bin.display().to_string())
    }

    /// Starts `cmd` (its stderr kept as the log) with `dir` to be removed
    /// after it; waits (at most 15 s) until it accepts on `known`, or,
    /// without, for its `listening on ADDR` line.
    fn launch(
        mut cmd: Command,
        dir: tempfile::TempDir,
        known: Option<SocketAddr>,
        what: &str,
    ) -> Result<ServerProcess> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: prctl is async-signal-safe; it only sets a flag on the child.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| Error(format!("cannot start {what}: {e}")))?;
        let pid = child.id();
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let log_lines = Arc::new(AtomicU64::new(0));
        let counters = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let web = Arc::new(Mutex::new(None));
        if let Some(stderr) = child.stderr.take() {
            let web = web.clone();
            let log = log.clone();
            let counters = counters.clone();
            let lines = log_lines.clone();
            // Drains the log for the server's whole life, keeping the tail.
            thread::spawn(move || {
                let mut tx = Some(tx);
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    lines.fetch_add(1, Ordering::Relaxed);
                    if let Some(addr) = line
                        .split_once("web listening on ")
                        .and_then(|(_, a)| a.split_whitespace().next()?.parse().ok())
                    {
                        if let Ok(mut w) = web.lock() {
                            *w = Some(addr);
                        }
                    } else if let Some(addr) = listening_addr(&line) {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(addr);
                        }
                    }
                    if line.contains("counters: ") {
                        if let Ok(mut c) = counters.lock() {
                            c.push(line.clone());
                        }
                    }
                    if let Ok(mut l) = log.lock() {
                        if l.len() == 20 {
                            l.pop_front();
                        }
                        l.push_back(line);
                    }
                }
            });
        }
        let mut server = ServerProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            pid,
            log,
            counters,
            web,
            log_lines,
            dir,
        };
        let limit = Duration::from_secs(15);
        let found = match known {
            Some(addr) => accepting(&mut server, addr, limit),
            None => rx.recv_timeout(limit).ok(),
        };
        match found {
            Some(addr) => server.addr = addr,
            None => {
                return err(format!(
                    "{what} did not {} within 15 s; its log:\n{}",
                    known.map_or("log `listening on ADDR`".to_owned(), |a| format!(
                        "accept on {a}"
                    )),
                    server.log_tail()
                ))
            }
        }
        Ok(server)
    }

    /// The web port's address, once logged (waiting up to `limit`).
    pub(crate) fn web_addr(&self, limit: Duration) -> Result<SocketAddr> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(addr) = self.web.lock().ok().and_then(|w| *w) {
                return Ok(addr);
            }
            if std::time::Instant::now() >= deadline {
                return err(format!(
                    "no `web listening on ADDR` within {limit:?}; the log:\n{}",
                    self.log_tail()
                ));
            }
            // The line follows `listening on` at once; the log has no
            // notification to wait on.
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// The last lines of the server's log.
    /// The `counters:` lines logged so far, once there are at least `n`
    /// (waiting up to `limit` for the server to log them).
    pub(crate) fn counters_lines(&self, n: usize, limit: Duration) -> Vec<String> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let lines = self.counters.lock().map(|c| c.clone()).unwrap_or_default();
            if lines.len() >= n || std::time::Instant::now() >= deadline {
                return lines;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    pub(crate) fn log_tail(&self) -> String {
        self.log
            .lock()
            .map(|l| l.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    /// Whether it is still running.
    pub(crate) fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ADDR` from a log line containing `listening on ADDR`.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening on ")? + "listening on ".len()..];
    rest.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_listening_line() {
        let line = "2026-05-01T12:34:56.789Z INFO  confab_net: listening on 127.0.0.1:4242";
        assert_eq!(
            listening_addr(line),
            Some("127.0.0.1:4242".parse().expect("addr"))
        );
        assert_eq!(listening_addr("nothing"), None);
    }

    #[test]
    fn irc_configs_listen_on_loopback_only() {
        for text in [
            ngircd_config(4242, Path::new("/tmp/x")),
            inspircd_config(4242, Path::new("/tmp/x")),
        ] {
            assert!(text.contains("127.0.0.1"), "{text}");
            assert!(text.contains("4242"), "{text}");
            assert!(!text.contains("0.0.0.0"), "{text}");
        }
    }
}
