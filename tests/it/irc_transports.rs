//! IRC over the server's other transports: TLS on the IRC port with the
//! server's certificate, and the IRCv3 WebSocket transport on the web port
//! (`text.ircv3.net`, `binary.ircv3.net`: one line per message, no CR LF).
//!
//! Every read is bounded by [`WAIT`]; each wait reads until the line it
//! waits for arrives.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Instant;

use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

use crate::harness::{password, Server, WAIT};
use crate::irc::{b64, irc_addr};
use crate::web::rustls_certs;

/// Lines of one IRC client over any byte stream, every read bounded.
struct Lines<S: Read + Write> {
    stream: BufReader<S>,
    seen: Vec<String>,
}

impl<S: Read + Write> Lines<S> {
    fn send(&mut self, line: &str) {
        let s = self.stream.get_mut();
        s.write_all(format!("{line}\r\n").as_bytes())
            .and_then(|()| s.flush())
            .expect("the server reads");
    }

    #[track_caller]
    fn until(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let mut line = String::new();
            let n = self.stream.read_line(&mut line).unwrap_or(0);
            assert!(
                n > 0 && Instant::now() < deadline,
                "no {what} within {WAIT:?}; got:\n{}",
                self.seen.join("")
            );
            self.seen.push(line.clone());
            if pred(&line) {
                return line;
            }
        }
    }
}

/// `send` is one line, CR LF excluded; `next` the next message's text.
trait LineTransport {
    fn send(&mut self, line: &str);
    fn next(&mut self) -> String;
}

/// A WebSocket IRC client: `text` says which messages it sends.
struct WsIrc {
    ws: WebSocket<TcpStream>,
    text: bool,
    seen: Vec<String>,
}

impl LineTransport for WsIrc {
    fn send(&mut self, line: &str) {
        let m = match self.text {
            true => Message::Text(line.into()),
            false => Message::Binary(line.as_bytes().to_vec().into()),
        };
        self.ws.send(m).expect("the server reads");
    }

    fn next(&mut self) -> String {
        loop {
            let m = self.ws.read().expect("a message within the timeout");
            let text = match m {
                Message::Text(t) if self.text => t.as_str().to_owned(),
                Message::Binary(b) if !self.text => String::from_utf8(b.to_vec()).expect("UTF-8"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("a {} message, not {other:?}", self.kind()),
            };
            self.seen.push(text.clone());
            return text;
        }
    }
}

impl WsIrc {
    fn kind(&self) -> &'static str {
        if self.text {
            "text"
        } else {
            "binary"
        }
    }

    fn connect(server: &Server, subprotocol: &str) -> WsIrc {
        let addr = server.web_addr();
        let tcp = TcpStream::connect(addr).expect("the web port accepts");
        tcp.set_read_timeout(Some(WAIT)).expect("a timeout");
        let mut request = format!("ws://{addr}/")
            .into_client_request()
            .expect("a valid URL");
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            format!("chat, {subprotocol}")
                .parse()
                .expect("a header value"),
        );
        let (ws, response) = tungstenite::client(request, tcp).expect("the upgrade succeeds");
        let chosen = response.headers().get("Sec-WebSocket-Protocol");
        assert_eq!(chosen.and_then(|v| v.to_str().ok()), Some(subprotocol));
        WsIrc {
            ws,
            text: subprotocol == "text.ircv3.net",
            seen: Vec::new(),
        }
    }

    /// Reads messages until one matches; each must be one line without
    /// CR LF.
    #[track_caller]
    fn until(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(Instant::now() < deadline, "no {what}; got {:?}", self.seen);
            let m = self.next();
            assert!(
                !m.contains('\r') && !m.contains('\n') && !m.is_empty(),
                "one line per message, without CR LF: {m:?}"
            );
            if pred(&m) {
                return m;
            }
        }
    }
}

#[test]
fn an_irc_client_over_tls_logs_in_with_sasl_and_chats_with_a_confab_user() {
    let server = Server::start_tls(&["--irc-listen", "127.0.0.1:0"]);
    let addr = irc_addr(&server);
    let ca = server.certificate();
    // Both accounts made over TLS by the confab client, trusting the
    // certificate as its CA: bob's by listening, alice's by one send.
    let bob = server.client("bob").with_env("CONFAB_CA", &ca);
    let mut listener = bob.listen();
    let alice = server.client("alice").with_env("CONFAB_CA", &ca);
    alice.send("all", "alice exists");
    listener.wait_message("alice exists");

    let pem = std::fs::read(server.certificate()).expect("the certificate");
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_certs(&pem) {
        roots.add(cert).expect("a usable certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("a TLS client");
    let tcp = TcpStream::connect(addr).expect("the IRC port accepts");
    tcp.set_read_timeout(Some(WAIT)).expect("a timeout");
    let mut c = Lines {
        stream: BufReader::new(rustls::StreamOwned::new(conn, tcp)),
        seen: Vec::new(),
    };
    c.send("CAP LS 302");
    c.send("NICK alice");
    c.send("USER a 0 * :Alice");
    c.send("CAP REQ :sasl");
    c.until("CAP ACK", |l| l.contains(" ACK "));
    c.send("AUTHENTICATE PLAIN");
    c.until("AUTHENTICATE +", |l| l == "AUTHENTICATE +\r\n");
    c.send(&format!(
        "AUTHENTICATE {}",
        b64(&format!("\0alice\0{}", password("alice")))
    ));
    c.until("903", |l| l.contains(" 903 alice "));
    c.send("CAP END");
    c.until("the welcome", |l| l.contains(" 001 alice "));
    c.send("PRIVMSG #confab :hello over TLS");
    let m = listener.wait_message("hello over TLS");
    assert_eq!(m["from"].as_str(), Some("alice"), "{m}");
    bob.send("all", "and back over TLS");
    c.until("bob's message", |l| {
        l.ends_with(":bob!bob@confab PRIVMSG #confab :and back over TLS\r\n")
    });

    // A plaintext IRC client on the TLS port is not served.
    let mut plain = TcpStream::connect(addr).expect("the IRC port accepts");
    plain.set_read_timeout(Some(WAIT)).expect("a timeout");
    plain.write_all(b"NICK x\r\nUSER x 0 * :x\r\n").ok();
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    assert!(
        !String::from_utf8_lossy(&got).contains(" 001 "),
        "plaintext was served: {got:?}"
    );
}

#[test]
fn irc_clients_over_websocket_text_and_binary_chat_with_a_tcp_irc_client() {
    let server =
        Server::start_with(&["--irc-listen", "127.0.0.1:0", "--web-listen", "127.0.0.1:0"]);
    let addr = irc_addr(&server);
    for u in ["alice", "carol", "dave"] {
        server.register(u, &password(u));
    }
    let tcp = TcpStream::connect(addr).expect("the IRC port accepts");
    tcp.set_read_timeout(Some(WAIT)).expect("a timeout");
    let mut alice = Lines {
        stream: BufReader::new(tcp),
        seen: Vec::new(),
    };
    alice.send(&format!("PASS alice:{}", password("alice")));
    alice.send("NICK alice");
    alice.send("USER a 0 * :Alice");
    alice.until("the welcome's NAMES", |l| l.contains(" 366 alice #confab "));

    for (user, subprotocol) in [("carol", "text.ircv3.net"), ("dave", "binary.ircv3.net")] {
        let mut web = WsIrc::connect(&server, subprotocol);
        web.send(&format!("PASS {user}:{}", password(user)));
        web.send(&format!("NICK {user}"));
        web.send("USER w 0 * :web");
        let welcome = web.until("the welcome", |l| l.contains(" 001 "));
        assert!(
            welcome.starts_with(&format!(":confab 001 {user} :")),
            "{welcome}"
        );
        web.until("the room's NAMES", |l| {
            l.contains(&format!(" 366 {user} #confab "))
        });

        web.send(&format!("PRIVMSG alice :hi alice, {subprotocol}"));
        alice.until("the web client's DM", |l| {
            l == format!(":{user}!{user}@confab PRIVMSG alice :hi alice, {subprotocol}\r\n")
        });
        alice.send(&format!("PRIVMSG {user} :hi {user}, from TCP"));
        let got = web.until("alice's DM", |l| l.contains("from TCP"));
        assert_eq!(
            got,
            format!(":alice!alice@confab PRIVMSG {user} :hi {user}, from TCP")
        );
        // A message may end with CR LF; it is still one line.
        web.send("PING :with-crlf\r\n");
        web.until("the PONG", |l| l == ":confab PONG confab :with-crlf");
    }
}

#[test]
fn irc_over_websocket_is_refused_when_the_server_serves_no_irc() {
    let server = Server::start_with(&["--web-listen", "127.0.0.1:0"]);
    let addr = server.web_addr();
    let mut tcp = TcpStream::connect(addr).expect("the web port accepts");
    tcp.set_read_timeout(Some(WAIT)).expect("a timeout");
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: text.ircv3.net\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).expect("the request");
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("does not serve IRC"), "{answer}");
}
