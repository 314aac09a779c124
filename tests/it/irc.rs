//! The IRC gateway (`--irc-listen`): a raw IRC client checked byte for
//! byte, IRC and confab users chatting both ways, a reconnecting IRC
//! client given what it missed, and irssi, a real IRC client, under tmux.
//!
//! Every read is bounded by [`WAIT`]; nothing sleeps to let something
//! happen: each wait reads until the line it waits for arrives.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{password, Server, WAIT};

/// A server with an IRC listener, and the listener's address.
fn irc_server() -> (Server, SocketAddr) {
    let server = Server::start_with(&["--irc-listen", "127.0.0.1:0"]);
    let addr = irc_addr(&server);
    (server, addr)
}

/// The address of `server`'s IRC listener, from its log.
pub(crate) fn irc_addr(server: &Server) -> SocketAddr {
    let line = server.wait_log("irc listening", |l| l.contains("irc listening on "));
    line.rsplit(' ')
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
}

/// A raw IRC connection: lines out, lines in, every read bounded.
struct Irc {
    who: String,
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    seen: Vec<String>,
}

impl Irc {
    fn connect(addr: SocketAddr, who: &str) -> Irc {
        let stream = TcpStream::connect_timeout(&addr, WAIT).expect("the IRC port accepts");
        stream.set_read_timeout(Some(WAIT)).expect("a read timeout");
        Irc {
            who: who.to_owned(),
            writer: stream.try_clone().expect("a second handle"),
            reader: BufReader::new(stream),
            seen: Vec::new(),
        }
    }

    fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("the server reads");
    }

    /// Reads lines until one matches `pred`; returns every line read by
    /// this wait, the matching one last (CR LF kept).
    #[track_caller]
    fn until(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut got = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).unwrap_or(0);
            assert!(
                n > 0 && Instant::now() < deadline,
                "{}: no {what} within {WAIT:?}; got:\n{}\nbefore:\n{}",
                self.who,
                got.join(""),
                self.seen.join("")
            );
            self.seen.push(line.clone());
            got.push(line.clone());
            if pred(&line) {
                return got;
            }
        }
    }

    /// Logs in with SASL PLAIN as `authcid` (`user` or `user@device`),
    /// asking for `caps`; returns once the welcome's NAMES are read.
    fn login(addr: SocketAddr, authcid: &str, password: &str, caps: &str) -> Irc {
        let user = authcid.split('@').next().unwrap_or(authcid);
        let mut c = Irc::connect(addr, user);
        c.send("CAP LS 302");
        c.send(&format!("NICK {user}"));
        c.send("USER u 0 * :a user");
        c.send(&format!("CAP REQ :sasl {caps}"));
        c.until("CAP ACK", |l| l.contains(" ACK "));
        c.send("AUTHENTICATE PLAIN");
        c.until("AUTHENTICATE +", |l| l == "AUTHENTICATE +\r\n");
        c.send(&format!(
            "AUTHENTICATE {}",
            b64(&format!("\0{authcid}\0{password}"))
        ));
        c.until("903", |l| l.contains(" 903 "));
        c.send("CAP END");
        c.until("the room's NAMES", |l| {
            l.contains(" 366 ") && l.contains("#confab")
        });
        c
    }
}

pub(crate) fn b64(s: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in s.as_bytes().chunks(3) {
        let b = |i: usize| u32::from(c.get(i).copied().unwrap_or(0));
        let n = (b(0) << 16) | (b(1) << 8) | b(2);
        for i in 0..4 {
            out.push(if i <= c.len() {
                A[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// `lines` with each `time=...Z` tag value replaced by `T`, so that a
/// transcript compares byte for byte.
fn untimed(lines: &[String]) -> String {
    let mut out = String::new();
    for l in lines {
        let mut rest = l.as_str();
        while let Some(at) = rest.find("time=") {
            out.push_str(&rest[..at + 5]);
            out.push('T');
            rest = &rest[(at + 5 + 24).min(rest.len())..];
        }
        out.push_str(rest);
    }
    out
}

#[test]
fn register_before_connecting_makes_an_account_the_next_connection_logs_in_to() {
    let (_server, addr) = irc_server();
    let mut c = Irc::connect(addr, "dana");
    c.send("NICK dana");
    c.send("REGISTER * * dana-secret");
    c.until("REGISTER SUCCESS", |l| {
        l == ":confab REGISTER SUCCESS dana :Account created\r\n"
    });
    c.send("USER d 0 * :Dana");
    c.until("the welcome", |l| l.contains(" 001 dana "));
    let mut d = Irc::connect(addr, "dana again");
    d.send("PASS dana:dana-secret");
    d.send("NICK dana");
    d.send("USER d 0 * :Dana");
    d.until("the welcome", |l| l.contains(" 001 dana "));
}

#[test]
fn a_raw_irc_client_negotiates_caps_logs_in_with_sasl_and_reads_history_byte_for_byte() {
    let (server, addr) = irc_server();
    server.register("alice", &password("alice"));
    let mut c = Irc::connect(addr, "alice");
    c.send("CAP LS 302");
    let ls = c.until("CAP LS", |l| l.contains(" LS "));
    assert_eq!(
        ls.concat(),
        ":confab CAP * LS :account-tag draft/account-registration=before-connect batch \
         cap-notify draft/chathistory echo-message labeled-response message-tags multi-prefix \
         sasl=PLAIN server-time userhost-in-names\r\n"
    );
    c.send("NICK alice");
    c.send("USER a 0 * :Alice");
    c.send("CAP REQ :sasl message-tags server-time echo-message labeled-response batch draft/chathistory");
    let ack = c.until("CAP ACK", |l| l.contains(" ACK "));
    assert_eq!(
        ack.concat(),
        ":confab CAP alice ACK :sasl message-tags server-time echo-message labeled-response \
         batch draft/chathistory\r\n"
    );
    c.send("AUTHENTICATE PLAIN");
    assert_eq!(
        c.until("+", |l| l.starts_with("AUTH")).concat(),
        "AUTHENTICATE +\r\n"
    );
    c.send(&format!(
        "AUTHENTICATE {}",
        b64(&format!("\0alice\0{}", password("alice")))
    ));
    let sasl = c.until("903", |l| l.contains(" 903 "));
    assert_eq!(
        sasl.concat(),
        ":confab 900 alice alice!alice@confab alice :You are now logged in as alice\r\n\
         :confab 903 alice :SASL authentication successful\r\n"
    );
    c.send("CAP END");
    let welcome = c.until("NAMES", |l| l.contains(" 366 "));
    assert!(
        welcome[0].starts_with(":confab 001 alice :Welcome"),
        "{welcome:?}"
    );
    assert_eq!(
        welcome[welcome.len() - 3..].concat(),
        ":alice!alice@confab JOIN #confab\r\n:confab 353 alice = #confab :alice\r\n\
         :confab 366 alice #confab :End of /NAMES list\r\n"
    );

    c.send("@label=m1 PRIVMSG #confab :first words");
    let echo = c.until("the echo", |l| l.contains("first words"));
    assert_eq!(
        untimed(&echo),
        "@label=m1;time=T;msgid=1;account=alice :alice!alice@confab PRIVMSG #confab :first words\r\n"
    );
    c.send("@label=h1 CHATHISTORY LATEST #confab * 10");
    // The chathistory batch, in the labeled-response batch that carries the label.
    let page = c.until("the labeled batch's end", |l| {
        l.starts_with(":confab BATCH -L")
    });
    let text = untimed(&page);
    assert!(text.starts_with("@label=h1 :confab BATCH +"), "{text}");
    assert!(
        text.contains(
            ";time=T;msgid=1;account=alice :alice!alice@confab PRIVMSG #confab :first words\r\n"
        ),
        "{text}"
    );
    let t1 = tag_of(&echo[echo.len() - 1], "time");

    c.send("@label=m2 PRIVMSG #confab :second words");
    let echo2 = c.until("the second echo", |l| l.contains("second words"));
    let t2 = tag_of(&echo2[echo2.len() - 1], "time");
    assert_eq!(
        echo2.concat(),
        format!(
            "@label=m2;time={t2};msgid=2;account=alice :alice!alice@confab PRIVMSG #confab :second words\r\n"
        )
    );
    // AFTER by msgid: the second message only, in a chathistory batch
    // nested in the labeled-response batch (its lines in the inner one).
    c.send("@label=h2 CHATHISTORY AFTER #confab msgid=1 10");
    let page = c.until("the AFTER batch's end", |l| {
        l.starts_with(":confab BATCH -L")
    });
    let (outer, inner) = batch_ids(&page);
    assert_eq!(
        page.concat(),
        format!(
            "@label=h2 :confab BATCH +{outer} labeled-response\r\n\
             @batch={outer} :confab BATCH +{inner} chathistory #confab\r\n\
             @batch={inner};time={t2};msgid=2;account=alice :alice!alice@confab PRIVMSG #confab :second words\r\n\
             @batch={outer} :confab BATCH -{inner}\r\n\
             :confab BATCH -{outer}\r\n"
        )
    );
    // BEFORE by timestamp: what was committed strictly before the second.
    c.send(&format!(
        "@label=h3 CHATHISTORY BEFORE #confab timestamp={t2} 10"
    ));
    let page = c.until("the BEFORE batch's end", |l| {
        l.starts_with(":confab BATCH -L")
    });
    let (outer, inner) = batch_ids(&page);
    let first = match t1 < t2 {
        true => format!(
            "@batch={inner};time={t1};msgid=1;account=alice :alice!alice@confab PRIVMSG #confab :first words\r\n"
        ),
        // Committed in the same millisecond: not before it.
        false => String::new(),
    };
    assert_eq!(
        page.concat(),
        format!(
            "@label=h3 :confab BATCH +{outer} labeled-response\r\n\
             @batch={outer} :confab BATCH +{inner} chathistory #confab\r\n\
             {first}@batch={outer} :confab BATCH -{inner}\r\n\
             :confab BATCH -{outer}\r\n"
        )
    );
    // TARGETS: the room, by its latest message (the second), alone.
    c.send("@label=t1 CHATHISTORY TARGETS * * 10");
    let listed = c.until("the TARGETS batch's end", |l| {
        l.starts_with(":confab BATCH -L")
    });
    let (outer, inner) = batch_ids(&listed);
    assert_eq!(
        listed.concat(),
        format!(
            "@label=t1 :confab BATCH +{outer} labeled-response\r\n\
             @batch={outer} :confab BATCH +{inner} draft/chathistory-targets\r\n\
             @batch={inner} :confab CHATHISTORY TARGETS #confab {t2}\r\n\
             @batch={outer} :confab BATCH -{inner}\r\n\
             :confab BATCH -{outer}\r\n"
        )
    );
    // A labeled command with no answer is acknowledged.
    c.send("@label=p1 PONG :nothing");
    assert_eq!(
        c.until("the ACK", |l| l.contains(" ACK")).concat(),
        "@label=p1 :confab ACK\r\n"
    );
    c.send("PING :done");
    c.until("PONG", |l| l.contains("PONG confab :done"));
    drop(server);
}

/// The value of tag `key` of a server line.
fn tag_of(line: &str, key: &str) -> String {
    let tags = line
        .strip_prefix('@')
        .and_then(|t| t.split(' ').next())
        .unwrap_or("");
    tags.split(';')
        .find_map(|t| t.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
        .to_owned()
}

/// The outer (labeled-response) and inner (chathistory) batch ids of a
/// labeled history page, from its first two lines.
fn batch_ids(page: &[String]) -> (String, String) {
    let id = |l: &str| {
        l.split(' ')
            .find_map(|w| w.strip_prefix('+'))
            .unwrap_or_else(|| panic!("no batch in {l:?}"))
            .to_owned()
    };
    assert!(page.len() >= 2, "{page:?}");
    (id(&page[0]), id(&page[1]))
}

#[test]
fn irc_and_confab_users_chat_in_the_room_a_group_and_a_dm_both_ways() {
    let (server, addr) = irc_server();
    server.register("alice", &password("alice"));
    let bob = server.client("bob");
    let mut listener = bob.listen();
    let mut alice = Irc::login(addr, "alice", &password("alice"), "server-time");

    // The room.
    alice.send("PRIVMSG #confab :hi bob, from IRC");
    let m = listener.wait_message("hi bob, from IRC");
    assert_eq!(
        (m["from"].as_str(), m["to"].as_str()),
        (Some("alice"), Some("all")),
        "{m}"
    );
    bob.send("all", "hi alice, from confab");
    alice.until("bob's room message", |l| {
        l.ends_with(":bob!bob@confab PRIVMSG #confab :hi alice, from confab\r\n")
    });

    // A group: JOIN makes it; bob joins it from confab.
    alice.send("JOIN #ops");
    alice.until("the group's NAMES", |l| l.contains(" 366 alice #ops "));
    bob.run(&["group", "join", "ops"]).ok();
    alice.until("bob's JOIN", |l| {
        l.ends_with(":bob!bob@confab JOIN #ops\r\n")
    });
    alice.send("PRIVMSG #ops :ops, from IRC");
    let m = listener.wait_message("ops, from IRC");
    assert_eq!(m["to"].as_str(), Some("#ops"), "{m}");
    bob.send("#ops", "ops, from confab");
    alice.until("bob's group message", |l| {
        l.ends_with("PRIVMSG #ops :ops, from confab\r\n")
    });

    // A direct message.
    alice.send("PRIVMSG bob :just you, from IRC");
    let m = listener.wait_message("just you, from IRC");
    assert_eq!(m["to"].as_str(), Some("@bob"), "{m}");
    bob.send("@alice", "just you, from confab");
    alice.until("bob's DM", |l| {
        l.ends_with(":bob!bob@confab PRIVMSG alice :just you, from confab\r\n")
    });
}

#[test]
fn an_irc_client_that_reconnects_gets_what_it_missed_with_the_original_times() {
    let (server, addr) = irc_server();
    server.register("alice", &password("alice"));
    let bob = server.client("bob");
    let mut listener = bob.listen();
    let mut alice = Irc::login(addr, "alice@phone", &password("alice"), "server-time");
    bob.send("all", "while you were here");
    alice.until("the live message", |l| l.contains("while you were here"));
    alice.send("QUIT");
    alice.until("the close", |l| l.starts_with(":confab ERROR"));
    drop(alice);

    bob.send("all", "while you were away");
    let sent = listener.wait_message("while you were away");
    let ts = sent["ts"]
        .as_u64()
        .unwrap_or_else(|| panic!("no ts in {sent}"));
    let mut again = Irc::login(addr, "alice@phone", &password("alice"), "server-time");
    let got = again.until("the missed message", |l| l.contains("while you were away"));
    let line = got.last().map(String::as_str).unwrap_or("");
    let time = confab_engine::irc::line::server_time(ts);
    assert!(
        line.starts_with(&format!("@time={time} :bob!bob@confab PRIVMSG #confab")),
        "{line}"
    );
    assert!(
        !again.seen.iter().any(|l| l.contains("while you were here")),
        "what the device had is not sent again: {:?}",
        again.seen
    );
}

/// irssi under a tmux of our own, killed however the test ends.
struct Irssi {
    socket: String,
    _home: tempfile::TempDir,
}

impl Irssi {
    fn start(addr: SocketAddr, user: &str, password: &str) -> Irssi {
        let found = Command::new("irssi")
            .arg("--version")
            .stdout(Stdio::null())
            .status();
        assert!(
            found.is_ok_and(|s| s.success()),
            "irssi is not installed: `apt-get install -y irssi` (scripts/install-deps.sh does this)"
        );
        let home = tempfile::tempdir().expect("a home for irssi");
        let config = format!(
            r#"servers = ( {{ address = "{ip}"; chatnet = "confab"; port = "{port}";
  use_tls = "no"; autoconnect = "yes"; }} );
chatnets = {{ confab = {{ type = "IRC"; sasl_mechanism = "PLAIN";
  sasl_username = "{user}"; sasl_password = "{password}"; }}; }};
settings = {{ core = {{ nick = "{user}"; user_name = "{user}"; real_name = "{user}"; }};
  "fe-common/core" = {{ autocreate_windows = "yes"; }}; }};
"#,
            ip = addr.ip(),
            port = addr.port()
        );
        std::fs::write(home.path().join("config"), config).expect("irssi's config");
        static N: AtomicU32 = AtomicU32::new(0);
        let socket = format!(
            "confab-irssi-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let home_arg = format!("--home={}", home.path().display());
        let irssi = Irssi {
            socket,
            _home: home,
        };
        irssi.tmux(&[
            "new-session",
            "-d",
            "-s",
            "irc",
            "-x",
            "120",
            "-y",
            "40",
            "--",
            "irssi",
            &home_arg,
        ]);
        irssi
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("tmux runs");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn type_line(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "=irc:", "-l", text]);
        self.tmux(&["send-keys", "-t", "=irc:", "Enter"]);
    }

    #[track_caller]
    fn wait_screen(&self, server: &Server, what: &str, needle: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.tmux(&["capture-pane", "-p", "-t", "=irc:"]);
            if screen.contains(needle) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "irssi: no {what} within {WAIT:?}:\n{screen}\nserver log:\n{}",
                server.log()
            );
            // A screen has no notification to wait on; poll it.
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Irssi {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn irssi_logs_in_with_sasl_and_chats_in_the_room_with_a_confab_user() {
    let (server, addr) = irc_server();
    server.register("carol", &password("carol"));
    let bob = server.client("bob");
    let mut listener = bob.listen();
    let irssi = Irssi::start(addr, "carol", &password("carol"));
    // Logged in: the welcome ends with the MOTD (the room's JOIN opens
    // a window of its own).
    irssi.wait_screen(&server, "the welcome", "MOTD File is missing");
    irssi.type_line("/join #confab");
    irssi.wait_screen(&server, "the room's window", "[#confab]");
    irssi.type_line("hello from irssi");
    listener.wait_message("hello from irssi");
    bob.send("all", "hello irssi, from confab");
    irssi.wait_screen(&server, "bob's message", "hello irssi, from confab");
}

#[test]
fn irssi_chats_in_a_group_and_a_dm_and_gets_what_it_missed_after_reconnecting() {
    let (server, addr) = irc_server();
    server.register("carol", &password("carol"));
    let bob = server.client("bob");
    let mut listener = bob.listen();
    let irssi = Irssi::start(addr, "carol", &password("carol"));
    irssi.wait_screen(&server, "the welcome", "MOTD File is missing");

    // A group: irssi's JOIN creates it, bob joins from confab.
    irssi.type_line("/join #ops");
    irssi.wait_screen(
        &server,
        "the group's JOIN",
        "carol [carol@confab] has joined #ops",
    );
    bob.run(&["group", "join", "ops"]).ok();
    irssi.wait_screen(&server, "bob's JOIN", "bob [bob@confab] has joined #ops");
    irssi.type_line("ops from irssi");
    let m = listener.wait_message("ops from irssi");
    assert_eq!(m["to"].as_str(), Some("#ops"), "{m}");
    bob.send("#ops", "ops from confab");
    irssi.wait_screen(&server, "bob's group message", "ops from confab");

    // A direct message, both ways.
    irssi.type_line("/msg bob just you, from irssi");
    let m = listener.wait_message("just you, from irssi");
    assert_eq!(m["to"].as_str(), Some("@bob"), "{m}");
    bob.send("@carol", "just you, from confab");
    irssi.type_line("/window goto bob");
    irssi.wait_screen(&server, "bob's DM", "just you, from confab");

    // Away: what is sent meanwhile is pushed at the next login, with its
    // original time (irssi shows server-time's time in the line's stamp).
    irssi.type_line("/disconnect");
    listener.wait_for("carol offline", |v| {
        v["event"] == "offline" && v["user"] == "carol"
    });
    bob.send("@carol", "sent while you were away");
    let sent = listener.wait_message("sent while you were away");
    let ts = sent["ts"]
        .as_u64()
        .unwrap_or_else(|| panic!("no ts in {sent}"));
    irssi.type_line("/connect confab");
    listener.wait_for("carol online", |v| {
        v["event"] == "online" && v["user"] == "carol"
    });
    irssi.type_line("/window goto bob");
    irssi.wait_screen(&server, "the missed DM", "sent while you were away");
    let stamp = local_hh_mm(ts);
    irssi.wait_screen(&server, "the missed DM's time", &stamp);
}

/// `ms` since the epoch as irssi's default line stamp, `HH:MM`, in the
/// test's time zone (UTC unless TZ says otherwise: irssi runs with ours).
fn local_hh_mm(ms: u64) -> String {
    let out = Command::new("date")
        .args(["-d", &format!("@{}", ms / 1000), "+%H:%M"])
        .output()
        .expect("date runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
