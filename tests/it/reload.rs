//! `--config FILE`, `check-config` and reloading (SIGHUP, `confab-server
//! reload`) without dropping anyone: limits, the log level and the TLS
//! certificate change under 100 connected clients; a file with errors is
//! refused whole and the old settings stay.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use confab::tls::TlsConfig;
use confab::{Connection, ConnectionError, LoginOptions, Security};
use confab_engine::frame::ErrorCode;
use confab_engine::{Name, Target};
use tempfile::TempDir;

use crate::harness::{password, Server, WAIT};

/// A self-signed pair for 127.0.0.1 in `dir`, named `tag`.
fn pair(dir: &Path, tag: &str) -> (PathBuf, PathBuf) {
    let pair =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("a self-signed pair");
    let cert = dir.join(format!("{tag}-cert.pem"));
    let key = dir.join(format!("{tag}-key.pem"));
    std::fs::write(&cert, pair.cert.pem()).expect("the certificate is written");
    std::fs::write(&key, pair.signing_key.serialize_pem()).expect("the key is written");
    (cert, key)
}

fn write_config(path: &Path, text: &str) {
    std::fs::write(path, text).expect("the config file is written");
}

/// A TLS connection that trusts only `ca`, logged in as `user`.
fn tls_login(server: &Server, ca: &Path, user: &str) -> Result<Connection, ConnectionError> {
    let security = Security::Tls(Arc::new(TlsConfig::with_ca(ca).expect("a usable CA")));
    let mut c = Connection::connect_with("127.0.0.1", server.port(), WAIT, &security)?;
    let name = Name::new(user).expect("valid");
    match c.register(name, &password(user), WAIT) {
        Ok(()) | Err(ConnectionError::Refused(_)) => {}
        Err(e) => return Err(e),
    }
    c.login(name, &password(user), LoginOptions::default(), WAIT)?;
    Ok(c)
}

/// A TLS handshake with the web port, trusting only `ca`.
fn web_handshake(addr: std::net::SocketAddr, ca: &Path) -> Result<(), String> {
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(ca).expect("the certificate");
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.expect("PEM")).expect("a usable certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).expect("a TLS client");
    let mut tcp = std::net::TcpStream::connect(addr).expect("the web port accepts");
    tcp.set_read_timeout(Some(WAIT)).expect("a timeout");
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn refusal(c: &mut Connection, body: &str) -> Option<ErrorCode> {
    match c.send(Target::Room, body, WAIT) {
        Ok(_) => None,
        Err(ConnectionError::Refused(e)) => Some(e.code),
        Err(e) => panic!("sending: {e}"),
    }
}

#[test]
fn a_sighup_changes_a_limit_the_log_level_and_the_certificate_while_100_clients_stay() {
    let dir = TempDir::new().expect("a temp dir");
    let (cert1, key1) = pair(dir.path(), "one");
    let (cert2, key2) = pair(dir.path(), "two");
    let config = dir.path().join("confab.toml");
    let settings = |cert: &Path, key: &Path, max_body: u32, level: &str| {
        format!(
            "tls-cert = {:?}\ntls-key = {:?}\nmax-body = {max_body}\nlog-level = {level:?}\n",
            cert.display().to_string(),
            key.display().to_string()
        )
    };
    write_config(&config, &settings(&cert1, &key1, 2000, "warn"));
    let server = Server::start_with(&[
        "--config",
        &config.to_string_lossy(),
        "--web-listen",
        "127.0.0.1:0",
    ]);
    web_handshake(server.web_addr(), &cert1).expect("the web port serves the first certificate");

    let mut clients: Vec<Connection> = (0..100)
        .map(|i| tls_login(&server, &cert1, &format!("user{i}")).expect("logs in over TLS"))
        .collect();
    let long = "x".repeat(1500);
    assert_eq!(refusal(&mut clients[0], &long), None, "1500 bytes fit 2000");
    assert!(
        !server.log().contains("connection opened"),
        "at warn, connections are not logged"
    );

    write_config(&config, &settings(&cert2, &key2, 1000, "info"));
    server.hangup();
    server.wait_log("the reload", |l| l.contains("reloaded the configuration"));

    // Nobody was dropped: every client still sends and is acknowledged.
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(refusal(c, &format!("still here {i}")), None, "client {i}");
    }
    // The new limit applies to the connections that were there before.
    assert_eq!(refusal(&mut clients[1], &long), Some(ErrorCode::BadBody));
    // New handshakes see the new certificate: trusting only the old one fails.
    assert!(
        tls_login(&server, &cert1, "newcomer").is_err(),
        "the old certificate is gone"
    );
    let fresh = tls_login(&server, &cert2, "newcomer").expect("the new certificate serves");
    // The web port's handshakes too.
    let old = web_handshake(server.web_addr(), &cert1);
    assert!(
        old.is_err(),
        "the web port still serves the old certificate"
    );
    web_handshake(server.web_addr(), &cert2).expect("the web port serves the new one");
    // The clients kept their subscriptions: a message after the reload
    // reaches the last of them.
    assert_eq!(refusal(&mut clients[2], "after the reload"), None);
    let last = clients.last_mut().expect("100 clients");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        assert!(
            !left.is_zero(),
            "client 99 did not get the message sent after the reload"
        );
        match last.next_event(left) {
            Ok(Some(confab::Event::Message(m))) if m.body == "after the reload" => break,
            Ok(_) => {}
            Err(e) => panic!("client 99: {e}"),
        }
    }
    let fingerprint = &fresh.tls().expect("TLS").fingerprint;
    server.wait_log("the new fingerprint", |l| l.contains(fingerprint.as_str()));
    // At info, connections are logged now.
    server.wait_log("a connection at info", |l| l.contains("connection opened"));
    let status = server.server_command(&["status"]);
    assert!(
        status.ok().lines().any(|l| l == "logged_in 101"),
        "all 100 and the newcomer are logged in: {status:?}"
    );
}

#[test]
fn a_config_file_with_errors_is_refused_by_check_config_and_by_reload_which_keeps_the_old_settings()
{
    let dir = TempDir::new().expect("a temp dir");
    let config = dir.path().join("confab.toml");
    write_config(&config, "max-body = 1000\nwrite-queue = 4096\n");
    let check =
        |server: &Server| server.server_command(&["check-config", &config.to_string_lossy()]);
    let server = Server::start_with(&["--config", &config.to_string_lossy()]);
    assert!(check(&server).ok().contains(": ok"));

    write_config(
        &config,
        "max-body = 100000\nno-such-setting = 1\nmsg-rate = \"fast\"\nwrite-queue = 4096\n",
    );
    let run = check(&server);
    assert_eq!(run.code, Some(1), "{run:?}");
    let shown = config.display().to_string();
    for line in [1, 2, 3] {
        assert_eq!(
            run.stderr.matches(&format!("{shown}:{line}: ")).count(),
            1,
            "one error for line {line}: {run:?}"
        );
    }
    let reload = server.server_command(&["reload"]);
    assert_ne!(reload.code, Some(0), "{reload:?}");
    assert!(
        reload
            .stderr
            .contains(&format!("{shown}:2: no-such-setting")),
        "{reload:?}"
    );
    assert!(
        reload.stderr.contains(&format!("{shown}:3: msg-rate")),
        "{reload:?}"
    );

    // The old limit is still in force.
    let mut c = server.connect();
    let alice = Name::new("alice").expect("valid");
    c.register(alice, &password("alice"), WAIT)
        .expect("registers");
    c.login(alice, &password("alice"), LoginOptions::default(), WAIT)
        .expect("logs in");
    assert_eq!(refusal(&mut c, &"y".repeat(1200)), Some(ErrorCode::BadBody));
    assert_eq!(refusal(&mut c, &"y".repeat(900)), None);

    // A valid file applies; what takes a restart is said so.
    write_config(&config, "max-body = 2000\nwrite-queue = 100\n");
    let reload = server.server_command(&["reload"]);
    assert!(
        reload
            .ok()
            .contains("write-queue changed: it takes effect at the next restart"),
        "{reload:?}"
    );
    assert_eq!(refusal(&mut c, &"y".repeat(1200)), None, "the new limit");
}
