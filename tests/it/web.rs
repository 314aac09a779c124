//! The web port (`--web-listen`): its static files and their headers, and
//! the WebSocket at `/ws` carrying confab frames to the same hub as TCP,
//! with its refusals (origin, subprotocol, text, size, masking) and TLS.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Instant;

use confab_engine::frame::{Frame, Target, Text, PROTOCOL_VERSION};
use confab_engine::{decode, MessageId, Name, Ref};
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

use crate::harness::{password, Server, WAIT};
use crate::raw::Raw;

/// The headers every response must carry.
const SECURITY: [&str; 5] = [
    "content-security-policy: default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "x-content-type-options: nosniff",
    "referrer-policy: no-referrer",
    "x-frame-options: deny",
    "cache-control: no-cache",
];

fn web_server(args: &[&str]) -> (Server, SocketAddr) {
    let mut all = vec!["--web-listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let server = Server::start_with(&all);
    let addr = server.web_addr();
    (server, addr)
}

/// One raw HTTP exchange: `request` as written, the whole answer as read
/// until the server closes.
fn http(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("the web port accepts");
    s.set_read_timeout(Some(WAIT)).expect("a timeout");
    s.write_all(request.as_bytes())
        .expect("the request is written");
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// The head of the answer to `request` (for a 101, after which the
/// server keeps the connection open).
fn http_head(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("the web port accepts");
    s.set_read_timeout(Some(WAIT)).expect("a timeout");
    s.write_all(request.as_bytes())
        .expect("the request is written");
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") && s.read(&mut byte).is_ok_and(|n| n == 1) {
        answer.push(byte[0]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

fn get(addr: SocketAddr, path: &str) -> String {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
    )
}

/// An upgrade request's head with `extra` headers, ended.
fn upgrade_request(addr: SocketAddr, extra: &str) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    )
}

#[track_caller]
fn assert_status(answer: &str, status: &str) {
    assert!(
        answer.starts_with(&format!("HTTP/1.1 {status}")),
        "{answer}"
    );
    let lower = answer.to_ascii_lowercase();
    for h in SECURITY {
        assert!(lower.contains(h), "no {h:?} in {answer}");
    }
}

/// A WebSocket client with subprotocol `confab.v2` on any stream.
fn ws_over<S: Read + Write>(url: &str, stream: S) -> WebSocket<S> {
    let mut request = url.into_client_request().expect("a valid URL");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "confab.v2".parse().expect("a header value"),
    );
    let (ws, response) = tungstenite::client(request, stream).expect("the upgrade succeeds");
    let chosen = response.headers().get("Sec-WebSocket-Protocol");
    assert_eq!(chosen.and_then(|v| v.to_str().ok()), Some("confab.v2"));
    ws
}

fn ws_connect(addr: SocketAddr) -> WebSocket<TcpStream> {
    let tcp = TcpStream::connect(addr).expect("the web port accepts");
    tcp.set_read_timeout(Some(WAIT)).expect("a timeout");
    ws_over(&format!("ws://{addr}/ws"), tcp)
}

/// Frames from a WebSocket: each binary message must hold whole frames.
struct Frames<S> {
    ws: WebSocket<S>,
    got: Vec<String>,
}

impl<S: Read + Write> Frames<S> {
    fn new(ws: WebSocket<S>) -> Self {
        Frames {
            ws,
            got: Vec::new(),
        }
    }

    fn send(&mut self, bytes: Vec<u8>) {
        self.ws
            .send(Message::binary(bytes))
            .expect("the message is sent");
    }

    /// The next frame's debug text, skipping PINGs.
    #[track_caller]
    fn next(&mut self) -> String {
        let deadline = Instant::now() + WAIT;
        while self.got.is_empty() {
            assert!(Instant::now() < deadline, "no frame within {WAIT:?}");
            match self.ws.read().expect("a message") {
                Message::Binary(b) => self.split(&b),
                other => panic!("expected a binary message, got {other:?}"),
            }
        }
        self.got.remove(0)
    }

    fn split(&mut self, mut b: &[u8]) {
        while !b.is_empty() {
            match decode(b, u32::MAX) {
                Ok(Some((f, used))) => {
                    if !matches!(f, Frame::Ping { .. }) {
                        self.got.push(format!("{f:?}"));
                    }
                    b = &b[used..];
                }
                other => panic!("a message held a partial or bad frame: {other:?}"),
            }
        }
    }

    /// The close the server sends, skipping frames before it.
    #[track_caller]
    fn close(&mut self) -> (CloseCode, String) {
        loop {
            match self.ws.read() {
                Ok(Message::Close(Some(f))) => return (f.code, f.reason.as_str().to_owned()),
                Ok(Message::Close(None)) => panic!("a close without a code"),
                Ok(_) => continue,
                Err(e) => panic!("expected a close frame, got {e}"),
            }
        }
    }
}

fn hello() -> Vec<u8> {
    Frame::Hello {
        version: PROTOCOL_VERSION,
        client: Text::new("web-test").expect("short"),
    }
    .to_bytes()
}

fn login(user: &str, pass: &str) -> Vec<u8> {
    Frame::Login {
        reference: Ref(1),
        user: Name::new(user).expect("a name"),
        password: Text::new(pass).expect("short"),
        resume_after: MessageId(0),
        roster: false,
    }
    .to_bytes()
}

fn send_room(reference: u32, body: &str) -> Vec<u8> {
    Frame::Send {
        reference: Ref(reference),
        target: Target::Room,
        body: Text::new(body).expect("short"),
    }
    .to_bytes()
}

/// HELLO split across two messages, then LOGIN: logged in.
fn ws_login<S: Read + Write>(ws: &mut Frames<S>, user: &str) {
    let h = hello();
    ws.send(h[..3].to_vec());
    ws.send(h[3..].to_vec());
    assert!(ws.next().starts_with("ServerHello"));
    ws.send(login(user, &password(user)));
    let ok = ws.next();
    assert!(ok.starts_with("LoginOk"), "{ok}");
    assert!(ws.next().starts_with("CaughtUp"));
}

#[test]
fn the_root_page_is_html_with_every_security_header() {
    let (_server, addr) = web_server(&[]);
    let answer = get(addr, "/");
    assert_status(&answer, "200");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("content-type: text/html"),
        "{answer}"
    );
    let head = http(
        addr,
        &format!("HEAD /index.html HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
    );
    assert_status(&head, "200");
    assert!(head.ends_with("\r\n\r\n"), "HEAD has no body: {head}");
}

#[test]
fn an_unknown_path_is_not_found_and_other_methods_are_not_allowed() {
    let (_server, addr) = web_server(&[]);
    assert_status(&get(addr, "/no-such-file.js"), "404");
    assert_status(&get(addr, "/../Cargo.toml"), "404");
    let post = http(
        addr,
        &format!("POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n"),
    );
    assert_status(&post, "405");
}

#[test]
fn garbage_instead_of_a_request_is_a_bad_request() {
    let (_server, addr) = web_server(&[]);
    assert_status(&http(addr, "\x16\x03\x01 not http\r\n\r\n"), "400");
    let endless = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(9000));
    assert_status(&http(addr, &endless), "431");
}

#[test]
fn a_websocket_client_and_a_tcp_client_chat_in_the_room() {
    let (server, addr) = web_server(&[]);
    server.register("alice", &password("alice"));
    server.register("bob", &password("bob"));
    let mut alice = Frames::new(ws_connect(addr));
    ws_login(&mut alice, "alice");
    let mut bob = Raw::connect(&server);
    bob.login("bob", &password("bob"));

    // Two frames in one message: the SEND and a PING.
    let mut two = send_room(2, "hello from the browser");
    two.extend(Frame::Ping { token: 7 }.to_bytes());
    alice.send(two);
    // The PONG is answered at once, the ACK after the commit.
    let mut answers = [alice.next(), alice.next()];
    answers.sort();
    assert!(
        answers[0].starts_with("Ack") && answers[1].starts_with("Pong"),
        "{answers:?}"
    );
    let got = bob.next();
    assert!(
        got.debug.contains("hello from the browser"),
        "{}",
        got.debug
    );

    bob.frame(&Frame::Send {
        reference: Ref(2),
        target: Target::Room,
        body: Text::new("hello from tcp").expect("short"),
    });
    let seen = loop {
        let f = alice.next();
        if f.starts_with("Message") {
            break f;
        }
    };
    assert!(
        seen.contains("hello from tcp") && seen.contains("bob"),
        "{seen}"
    );
    server.wait_log("the websocket session", |l| {
        l.contains("websocket=confab.v2")
    });
}

#[test]
fn a_foreign_origin_is_forbidden_and_logged() {
    let (server, addr) = web_server(&[]);
    let answer = http(
        addr,
        &upgrade_request(
            addr,
            "Origin: http://evil.example\r\nSec-WebSocket-Protocol: confab.v2\r\n",
        ),
    );
    assert_status(&answer, "403");
    assert!(answer.contains("http://evil.example"), "{answer}");
    server.wait_log("the refused origin", |l| l.contains("refused a WebSocket"));
    // The server's own origin, and a listed one, are allowed.
    let own = http_head(
        addr,
        &upgrade_request(
            addr,
            &format!("Origin: http://{addr}\r\nSec-WebSocket-Protocol: confab.v2\r\n"),
        ),
    );
    assert!(own.starts_with("HTTP/1.1 101"), "{own}");
    let (_listed_server, listed) = web_server(&["--web-allowed-origin", "https://chat.example"]);
    let answer = http_head(
        listed,
        &upgrade_request(
            listed,
            "Origin: https://chat.example\r\nSec-WebSocket-Protocol: confab.v1\r\n",
        ),
    );
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
    assert!(answer.contains("confab.v1"), "{answer}");
}

#[test]
fn an_upgrade_without_a_confab_subprotocol_is_a_bad_request() {
    let (_server, addr) = web_server(&[]);
    let none = http(addr, &upgrade_request(addr, ""));
    assert_status(&none, "400");
    assert!(
        none.contains("confab.v2"),
        "the body says what to offer: {none}"
    );
    let other = http(
        addr,
        &upgrade_request(addr, "Sec-WebSocket-Protocol: chat\r\n"),
    );
    assert_status(&other, "400");
}

#[test]
fn a_text_message_is_closed_with_1003() {
    let (_server, addr) = web_server(&[]);
    let mut ws = Frames::new(ws_connect(addr));
    ws.ws.send(Message::text("HELLO")).expect("sent");
    let (code, reason) = ws.close();
    assert_eq!(code, CloseCode::Unsupported);
    assert!(reason.contains("binary"), "{reason}");
}

#[test]
fn an_oversize_message_is_closed_with_1009() {
    let (_server, addr) = web_server(&[]);
    let mut ws = Frames::new(ws_connect(addr));
    // Over twice the largest frame (64 KiB by default).
    ws.send(vec![0u8; 200 * 1024]);
    let (code, reason) = ws.close();
    assert_eq!(code, CloseCode::Size);
    assert!(reason.contains("too big"), "{reason}");
}

#[test]
fn an_unmasked_client_frame_is_closed_with_1002() {
    let (_server, addr) = web_server(&[]);
    let mut s = TcpStream::connect(addr).expect("the web port accepts");
    s.set_read_timeout(Some(WAIT)).expect("a timeout");
    let request = upgrade_request(addr, "Sec-WebSocket-Protocol: confab.v2\r\n");
    s.write_all(request.as_bytes()).expect("written");
    // A binary frame without the mask bit, which a client must set.
    s.write_all(&[0x82, 0x02, 0x00, 0x00]).expect("written");
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a 101 head")
        + 4;
    assert!(answer.starts_with(b"HTTP/1.1 101"));
    let close = &answer[end..];
    assert!(
        close.len() >= 4 && close[0] == 0x88,
        "a close frame: {close:?}"
    );
    assert_eq!(u16::from_be_bytes([close[2], close[3]]), 1002);
}

#[test]
fn the_websocket_works_over_tls_with_the_self_signed_certificate() {
    let server = Server::start_tls(&["--web-listen", "127.0.0.1:0"]);
    let addr = server.web_addr();
    let pem = std::fs::read(server.certificate()).expect("the certificate");
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_certs(&pem) {
        roots.add(cert).expect("a usable certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("a TLS client");
    let tcp = TcpStream::connect(addr).expect("the web port accepts");
    tcp.set_read_timeout(Some(WAIT)).expect("a timeout");
    let tls = rustls::StreamOwned::new(conn, tcp);
    let mut ws = Frames::new(ws_over(&format!("wss://localhost:{}/ws", addr.port()), tls));
    ws.send(hello());
    assert!(ws.next().starts_with("ServerHello"));
    // A plain HTTP request to the TLS port gets nothing.
    let plain = get(addr, "/");
    assert!(!plain.starts_with("HTTP/1.1 200"), "{plain}");
}

pub(crate) fn rustls_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .expect("PEM certificates")
}

#[test]
fn a_silent_web_connection_does_not_hold_up_the_shutdown() {
    let (mut server, addr) = web_server(&["--shutdown-timeout", "30", "--auth-timeout", "60"]);
    // A browser's spare connection: open, and nothing said.
    let _idle = TcpStream::connect(addr).expect("the web port accepts");
    // Accepted (the page is served meanwhile) before the shutdown starts.
    assert_status(&get(addr, "/"), "200");
    let start = Instant::now();
    server.terminate();
    assert!(server.wait_exit().success());
    let took = start.elapsed();
    assert!(
        took < std::time::Duration::from_secs(10),
        "the shutdown took {took:?}"
    );
}

#[test]
fn websocket_sessions_count_against_the_same_per_address_limits_as_tcp() {
    let (server, addr) = web_server(&["--max-pre-auth-per-source", "1"]);
    // One session not logged in yet, over the WebSocket...
    let _first = ws_connect(addr);
    // ...fills the address's pre-login place for both transports.
    let second = http_head(
        addr,
        &upgrade_request(addr, "Sec-WebSocket-Protocol: confab.v2\r\n"),
    );
    assert!(second.starts_with("HTTP/1.1 503"), "{second}");
    let mut tcp = Raw::connect(&server);
    let g = tcp.next();
    assert!(g.debug.contains("TooManyConnections"), "{}", g.debug);
    // The page itself is not a session, and is still served.
    assert_status(&get(addr, "/"), "200");
}

#[test]
fn a_websocket_ping_is_answered_with_its_pong() {
    let (_server, addr) = web_server(&[]);
    let mut ws = ws_connect(addr);
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .expect("sent");
    match ws.read().expect("an answer") {
        Message::Pong(p) => assert_eq!(&p[..], b"are you there"),
        other => panic!("expected the pong, got {other:?}"),
    }
}

#[test]
fn a_ping_flood_before_login_is_paid_for_and_closes_the_session_as_flooding() {
    let (_server, addr) = web_server(&["--pre-auth-burst", "8"]);
    let mut ws = Frames::new(ws_connect(addr));
    // Each ping is one request of the pre-auth budget, as a PING frame is.
    for i in 0..20u8 {
        if ws.ws.send(Message::Ping(vec![i].into())).is_err() {
            break;
        }
    }
    let mut got = Vec::new();
    loop {
        match ws.ws.read() {
            Ok(Message::Binary(b)) => ws.split(&b),
            Ok(Message::Pong(_)) => got.push("pong".to_owned()),
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(other) => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        got.len() < 20,
        "the flood was cut short, not answered in full: {} pongs",
        got.len()
    );
    let error = ws.got.iter().find(|f| f.starts_with("Error"));
    assert!(
        error.is_some_and(|e| e.contains("code: Flooding")),
        "{:?}",
        ws.got
    );
}
