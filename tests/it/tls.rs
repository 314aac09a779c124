//! TLS end to end: a whole chat over TLS, trust on first use and a changed
//! certificate, certificates refused for their name or their dates, and
//! clients speaking the wrong protocol for the port.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use confab::tls::{fingerprint, TlsConfig, Trust};
use confab::{Connection, Security};
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tempfile::TempDir;

use crate::harness::{Client, Run, Server, WAIT};

/// Exit code: the certificate is not the one pinned.
const EXIT_CERT_CHANGED: i32 = 4;
/// Exit code: the certificate is refused.
const EXIT_CERT_INVALID: i32 = 5;

/// The `tls fingerprint SHA256:...` the server logged.
fn logged_fingerprint(server: &Server) -> String {
    let line = server.wait_log("tls fingerprint", |l| l.contains("tls fingerprint "));
    let at = line.find("SHA256:").expect("a fingerprint on the line");
    line[at..].trim().to_owned()
}

/// A client of `server` that checks its certificate against `ca`.
fn with_ca<'s>(server: &'s Server, user: &str, ca: &Path) -> Client<'s> {
    server.client(user).with_env("CONFAB_CA", ca)
}

/// A client of `server` over TLS that pins certificates in `config`.
fn tofu<'s>(server: &'s Server, user: &str, config: &Path) -> Client<'s> {
    server
        .client(user)
        .with_env("CONFAB_TLS", "1")
        .with_env("CONFAB_CONFIG_DIR", config)
}

#[track_caller]
fn assert_fails(run: &Run, code: i32, words: &[&str]) {
    assert_eq!(run.code, Some(code), "{run:?}");
    for w in words {
        assert!(run.stderr.contains(w), "no {w:?} in {:?}", run.stderr);
    }
}

#[test]
fn a_whole_chat_runs_over_tls_with_the_certificate_as_ca() {
    let server = Server::start_tls(&[]);
    let ca = server.certificate();
    let fp = logged_fingerprint(&server);
    let mut bob = with_ca(&server, "bob", &ca).listen();
    let alice = with_ca(&server, "alice", &ca);
    let room = alice.send("all", "hello over tls");
    let dm = alice.send("@bob", "psst, bob");
    assert!(dm > room);
    assert_eq!(bob.wait_message("hello over tls")["from"], "alice");
    let m = bob.wait_message("psst, bob");
    assert_eq!(
        (m["to"].as_str(), m["id"].as_u64()),
        (Some("@bob"), Some(dm))
    );
    let history = with_ca(&server, "bob", &ca).run(&["history", "--to", "@alice"]);
    assert!(history.ok().contains("psst, bob"), "{history:?}");

    // The library sees the certificate the server announced, verified.
    let config = TlsConfig::with_ca(&ca).expect("the certificate is a usable CA");
    let security = Security::Tls(Arc::new(config));
    let c = Connection::connect_with("127.0.0.1", server.port(), WAIT, &security)
        .expect("connects over TLS");
    let info = c.tls().expect("a TLS connection");
    assert_eq!(info.fingerprint, fp);
    assert_eq!(info.trust, Trust::Verified);
    assert!(
        !server.log().contains("psst"),
        "no body is logged: {}",
        server.log()
    );
}

#[test]
fn trust_on_first_use_pins_the_certificate_and_refuses_a_changed_one() {
    let mut server = Server::start_tls(&[]);
    let config = TempDir::new().expect("a config dir");
    let known = config.path().join("known_servers");
    let fp = logged_fingerprint(&server);

    let first = tofu(&server, "alice", config.path()).run(&["send", "--to", "all", "one"]);
    first.ok();
    assert!(
        first.stderr.contains("on first use") && first.stderr.contains(&fp),
        "the fingerprint is shown: {:?}",
        first.stderr
    );
    let pins = std::fs::read_to_string(&known).expect("known_servers was written");
    assert_eq!(pins, format!("127.0.0.1:{} {fp}\n", server.port()));

    let second = tofu(&server, "alice", config.path()).run(&["send", "--to", "all", "two"]);
    second.ok();
    assert!(!second.stderr.contains("first use"), "{:?}", second.stderr);

    // Same address, another certificate: refused, and nothing is sent.
    server.kill();
    for f in ["tls-cert.pem", "tls-key.pem"] {
        std::fs::remove_file(server.data_dir().join(f)).expect("the pair was there");
    }
    let server = server.restart_same_port();
    let new_fp = logged_fingerprint(&server);
    assert_ne!(new_fp, fp);
    let third = tofu(&server, "alice", config.path()).run(&["send", "--to", "all", "three"]);
    let expected = format!(
        "confab: the certificate of 127.0.0.1:{} has changed ({new_fp})",
        server.port()
    );
    assert_fails(
        &third,
        EXIT_CERT_CHANGED,
        &[
            &expected,
            &format!("remove its line from {}", known.display()),
        ],
    );
    assert!(
        !server.log().contains("login user=alice"),
        "{}",
        server.log()
    );
    assert_eq!(
        std::fs::read_to_string(&known).expect("still there"),
        pins,
        "the pin is left alone"
    );
}

/// A CA, and a certificate it signed for `names` valid from `from` to
/// `until` (years), with its key, written as PEM files in `dir`.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn pki(dir: &Path, names: &[&str], from: i32, until: i32) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "confab test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().expect("a CA key");
    let ca_cert = ca_params.self_signed(&ca_key).expect("a CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);

    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(names).expect("server params");
    params.not_before = date_time_ymd(from, 1, 1);
    params.not_after = date_time_ymd(until, 1, 1);
    let key = KeyPair::generate().expect("a server key");
    let cert = params
        .signed_by(&key, &issuer)
        .expect("a server certificate");

    let write = |name: &str, pem: String| {
        let path = dir.join(name);
        std::fs::write(&path, pem).expect("writes a PEM file");
        path
    };
    Pki {
        ca: write("ca.pem", ca_cert.pem()),
        cert: write("cert.pem", cert.pem()),
        key: write("key.pem", key.serialize_pem()),
    }
}

fn start_with_pki(pki: &Pki) -> Server {
    let (cert, key) = (pki.cert.to_string_lossy(), pki.key.to_string_lossy());
    Server::start_with(&["--tls-cert", &cert, "--tls-key", &key])
}

#[test]
fn a_certificate_signed_by_the_ca_for_the_right_name_and_dates_is_accepted() {
    let dir = TempDir::new().expect("a temp dir");
    let pki = pki(dir.path(), &["127.0.0.1", "localhost"], 2020, 4000);
    let server = start_with_pki(&pki);
    with_ca(&server, "alice", &pki.ca).send("all", "fine");
    let run = with_ca(&server, "alice", &pki.ca)
        .with_env("CONFAB_HOST", "localhost")
        .run(&["send", "--to", "all", "by name"]);
    run.ok();
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    let dir = TempDir::new().expect("a temp dir");
    let pki = pki(dir.path(), &["chat.example.org"], 2020, 4000);
    let server = start_with_pki(&pki);
    let run = with_ca(&server, "alice", &pki.ca).run(&["send", "--to", "all", "x"]);
    let expected = format!(
        "the certificate of 127.0.0.1:{} is not trusted",
        server.port()
    );
    assert_fails(
        &run,
        EXIT_CERT_INVALID,
        &[&expected, "not valid for the name 127.0.0.1"],
    );
}

#[test]
fn an_expired_certificate_is_refused() {
    let dir = TempDir::new().expect("a temp dir");
    let pki = pki(dir.path(), &["127.0.0.1", "localhost"], 2000, 2001);
    let server = start_with_pki(&pki);
    let run = with_ca(&server, "alice", &pki.ca).run(&["send", "--to", "all", "x"]);
    assert_fails(&run, EXIT_CERT_INVALID, &["has expired"]);
}

#[test]
fn a_certificate_from_another_ca_is_refused_even_if_never_seen() {
    let dir = TempDir::new().expect("a temp dir");
    let server = Server::start_tls(&[]);
    let other = pki(dir.path(), &["127.0.0.1"], 2020, 4000);
    let run = with_ca(&server, "alice", &other.ca).run(&["send", "--to", "all", "x"]);
    assert_fails(
        &run,
        EXIT_CERT_INVALID,
        &["not signed by a trusted authority"],
    );
}

#[test]
fn a_plaintext_client_on_the_tls_port_is_closed_within_the_auth_timeout() {
    let server = Server::start_tls(&["--auth-timeout", "1"]);

    // Silent: closed when the auth timeout (which bounds the handshake) ends.
    let start = Instant::now();
    let mut silent = TcpStream::connect(("127.0.0.1", server.port())).expect("connects");
    silent.set_read_timeout(Some(WAIT)).expect("a timeout");
    let mut buf = [0u8; 64];
    match silent.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("{n} bytes for a silent client"),
        Err(e) => assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "not closed within {WAIT:?}"
        ),
    }
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "closed after {waited:?}, not after the 1 s auth timeout"
    );
    server.wait_log("the handshake timeout", |l| {
        l.contains("no TLS handshake within the auth timeout")
    });

    // Speaking the protocol in the clear: closed at once.
    let start = Instant::now();
    let mut plain = TcpStream::connect(("127.0.0.1", server.port())).expect("connects");
    plain.set_read_timeout(Some(WAIT)).expect("a timeout");
    plain
        .write_all(&[0, 0, 0, 5, 1, 0, 1, 0, 0])
        .expect("writes a HELLO-like frame");
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(
        got.is_empty() || got[0] == 0x15,
        "nothing, or a TLS alert: {got:?}"
    );

    // The real client says what is wrong, quickly.
    let start = Instant::now();
    let run = server.client("alice").run(&["send", "--to", "all", "x"]);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_fails(&run, 1, &["the server speaks TLS: connect with --tls"]);
}

#[test]
fn a_tls_client_on_a_plaintext_port_fails_cleanly_and_fast() {
    let server = Server::start();
    let config = TempDir::new().expect("a config dir");
    let start = Instant::now();
    let run = tofu(&server, "alice", config.path()).run(&["send", "--to", "all", "x"]);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert_fails(&run, 1, &["did not answer in TLS"]);
    assert!(
        !config.path().join("known_servers").exists(),
        "nothing was pinned"
    );
}

#[test]
fn the_library_pins_on_first_use_and_knows_it_next_time() {
    let server = Server::start_tls(&[]);
    let config = TempDir::new().expect("a config dir");
    let known = config.path().join("known_servers");
    let security = Security::Tls(Arc::new(TlsConfig::system(Some(known.clone()))));
    let connect = || {
        let mut c = Connection::connect_with("127.0.0.1", server.port(), WAIT, &security)
            .expect("connects over TLS");
        c.server_hello(WAIT).expect("the server says hello");
        c
    };
    let first = connect();
    let info = first.tls().expect("TLS").clone();
    assert_eq!(info.trust, Trust::FirstUse(Ok(known.clone())));
    let pem = std::fs::read_to_string(server.certificate()).expect("the certificate");
    let der = pem_der(&pem);
    assert_eq!(info.fingerprint, fingerprint(&der));
    let second = connect();
    assert_eq!(second.tls().expect("TLS").trust, Trust::Pinned);
}

/// The DER bytes of the first PEM block (base64 by hand: no extra crate).
fn pem_der(pem: &str) -> Vec<u8> {
    let b64: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = b64.bytes().filter(|&c| c != b'=').map(value).collect();
    let mut out = Vec::new();
    for chunk in digits.chunks(4) {
        let mut n = 0u32;
        for (i, d) in chunk.iter().enumerate() {
            n |= u32::from(*d) << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}
