//! The TLS handshake of a new connection, and telling a TLS server from a
//! plain one by its first bytes.

use std::io;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::{describe, ConnectionError};
use crate::tls::{describe_certificate_error, Seen, TlsConfig, TlsInfo};

/// Whether the first bytes from a server are a TLS record (an alert or a
/// handshake) rather than a frame: no frame is that long.
pub(super) fn looks_like_tls(first: &[u8]) -> bool {
    matches!(first, [0x15 | 0x16, 0x03, ..])
}

/// Completes a TLS handshake on `tcp` within `timeout` and pins a
/// certificate trusted on first use.
pub(super) fn handshake(
    mut tcp: TcpStream,
    host: &str,
    addr: &str,
    config: &TlsConfig,
    timeout: Duration,
) -> Result<
    (
        rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
        Option<TlsInfo>,
    ),
    ConnectionError,
> {
    let tls_error = |reason: String| ConnectionError::Tls {
        addr: addr.to_owned(),
        reason,
    };
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|_| tls_error(format!("{host:?} is not a host name or address")))?;
    let (client_config, verifier) = config.client_config(addr);
    let mut conn =
        rustls::ClientConnection::new(client_config, name).map_err(|e| tls_error(e.to_string()))?;
    let deadline = Instant::now() + timeout;
    while conn.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        let timed_out = ConnectionError::Timeout {
            waiting_for: "TLS handshake",
            after: timeout,
        };
        if left.is_zero() {
            return Err(timed_out);
        }
        tcp.set_read_timeout(Some(left))
            .map_err(|e| tls_error(describe(&e)))?;
        if let Err(e) = conn.complete_io(&mut tcp) {
            return Err(match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => timed_out,
                _ => handshake_error(&e, host, addr, &verifier),
            });
        }
    }
    let info = verifier.finish();
    Ok((rustls::StreamOwned::new(conn, tcp), info))
}

/// A failed handshake in the terms of [`ConnectionError`].
fn handshake_error(
    e: &io::Error,
    host: &str,
    addr: &str,
    verifier: &crate::tls::PinVerifier,
) -> ConnectionError {
    let tls_error = |reason: String| ConnectionError::Tls {
        addr: addr.to_owned(),
        reason,
    };
    match (verifier.seen(), verifier.known_servers()) {
        (Some(Seen::Changed(fingerprint)), Some(file)) => {
            return ConnectionError::CertificateChanged {
                addr: addr.to_owned(),
                fingerprint,
                known_servers: file.to_owned(),
            }
        }
        (Some(Seen::Unpinnable), _) => {
            return ConnectionError::CertificateInvalid {
                addr: addr.to_owned(),
                reason: "it is not signed by a trusted authority, and there is no config \
                         directory to pin it in (set CONFAB_CONFIG_DIR, or give --ca FILE)"
                    .into(),
            }
        }
        _ => {}
    }
    let Some(rustls_error) = e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) else {
        return match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                tls_error("the server closed the connection during the handshake".into())
            }
            _ => tls_error(describe(e)),
        };
    };
    match rustls_error {
        rustls::Error::InvalidCertificate(c) => ConnectionError::CertificateInvalid {
            addr: addr.to_owned(),
            reason: describe_certificate_error(c, host),
        },
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => tls_error(
            "the server did not answer in TLS (is it serving plaintext? try without --tls)".into(),
        ),
        rustls::Error::AlertReceived(alert) => {
            tls_error(format!("the server refused the handshake ({alert:?})"))
        }
        other => tls_error(other.to_string()),
    }
}
