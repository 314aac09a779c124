//! TLS 1.3 for the server: the certificate and key (given as PEM files, or
//! a self-signed pair created in the data dir on first start), and the
//! rustls configuration (ring provider, TLS 1.3 only, no client
//! certificates, no session tickets: confab clients do not resume).
//!
//! The handshake itself runs in each connection's task (`server.rs`),
//! bounded by the auth timeout; the encrypted stream is then served by
//! `conn.rs` like a plain one.

use std::fs;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use log::info;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

/// The self-signed certificate's file in the data dir.
pub const SELF_SIGNED_CERT: &str = "tls-cert.pem";
/// Its key's file in the data dir (mode 0600).
pub const SELF_SIGNED_KEY: &str = "tls-key.pem";

/// Why TLS could not be set up; one line for stderr.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file cannot be read or holds nothing usable.
    #[error("cannot use {what} {}: {reason}", path.display())]
    File {
        /// `the certificate` or `the key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// rustls refused the pair (the key does not match the certificate, say).
    #[error("the certificate {} and the key {} cannot be used together: {reason}", cert.display(), key.display())]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        reason: String,
    },
    /// The self-signed pair could not be created.
    #[error("cannot create a self-signed certificate in {}: {reason}", dir.display())]
    SelfSigned {
        /// The data dir.
        dir: PathBuf,
        /// Why.
        reason: String,
    },
}

/// A ready TLS configuration and its certificate's fingerprint.
#[derive(Debug, Clone)]
pub struct Tls {
    /// For the acceptor.
    pub config: Arc<ServerConfig>,
    /// `SHA256:ab:cd:...` of the (first) certificate.
    pub fingerprint: String,
}

/// The configuration new handshakes use, replaced by a reload (a new
/// certificate); handshakes under way keep the one they started with.
#[derive(Debug)]
pub struct TlsSlot(std::sync::RwLock<Arc<ServerConfig>>);

impl TlsSlot {
    /// A slot holding `config`.
    pub fn new(config: Arc<ServerConfig>) -> TlsSlot {
        TlsSlot(std::sync::RwLock::new(config))
    }

    /// The configuration in force.
    pub fn get(&self) -> Arc<ServerConfig> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Puts `config` in force for the next handshakes.
    pub fn set(&self, config: Arc<ServerConfig>) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = config;
    }
}

/// Loads a certificate chain and its key from PEM files.
pub fn from_files(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::File {
            what: "the certificate",
            path: cert.to_owned(),
            reason: pem_reason(&e),
        })?;
    if certs.is_empty() {
        return Err(TlsError::File {
            what: "the certificate",
            path: cert.to_owned(),
            reason: "it holds no certificate".into(),
        });
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::File {
        what: "the key",
        path: key.to_owned(),
        reason: pem_reason(&e),
    })?;
    let fingerprint = fingerprint(&certs[0]);
    let config = server_config(certs, private).map_err(|e| TlsError::Pair {
        cert: cert.to_owned(),
        key: key.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(Tls {
        config: Arc::new(config),
        fingerprint,
    })
}

/// The self-signed pair in `dir`, created on first use for `localhost`
/// and `host` (unless it is the unspecified address).
pub fn self_signed(dir: &Path, host: IpAddr) -> Result<Tls, TlsError> {
    let cert = dir.join(SELF_SIGNED_CERT);
    let key = dir.join(SELF_SIGNED_KEY);
    if cert.exists() || key.exists() {
        let tls = from_files(&cert, &key)?;
        info!("tls: the self-signed certificate {}", cert.display());
        return Ok(tls);
    }
    let mut names = vec!["localhost".to_owned()];
    if !host.is_unspecified() {
        names.push(host.to_string());
    }
    let fail = |reason: String| TlsError::SelfSigned {
        dir: dir.to_owned(),
        reason,
    };
    let pair =
        rcgen::generate_simple_self_signed(names.clone()).map_err(|e| fail(e.to_string()))?;
    // The key first, readable by the owner only, and never overwritten: two
    // servers starting at once on one data dir cannot mix their pairs.
    write_new(&key, pair.signing_key.serialize_pem().as_bytes(), 0o600)
        .map_err(|e| fail(format!("{}: {e}", key.display())))?;
    write_new(&cert, pair.cert.pem().as_bytes(), 0o644)
        .map_err(|e| fail(format!("{}: {e}", cert.display())))?;
    info!(
        "tls: created a self-signed certificate for {} in {}",
        names.join(", "),
        cert.display()
    );
    from_files(&cert, &key)
}

/// Creates `path` (failing if it exists) with `mode`, and writes `bytes`.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = options.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    // Clients reconnect with a full handshake; tickets would be bytes and
    // work for nothing.
    config.send_tls13_tickets = 0;
    Ok(config)
}

fn pem_reason(e: &rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(e) => e.to_string(),
        rustls::pki_types::pem::Error::NoItemsFound => "it holds no PEM item of that kind".into(),
        other => format!("it is not valid PEM ({other:?})"),
    }
}

/// A certificate's SHA-256 fingerprint: `SHA256:ab:cd:...` (lower-case
/// hex), as clients pin it.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("SHA256:{}", hex.join(":"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_pair_is_created_once_then_reused() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let ip: IpAddr = "127.0.0.1".parse().expect("an address");
        let first = self_signed(dir.path(), ip).expect("created");
        let again = self_signed(dir.path(), ip).expect("reused");
        assert_eq!(first.fingerprint, again.fingerprint);
        assert!(first.fingerprint.starts_with("SHA256:"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(SELF_SIGNED_KEY))
                .expect("the key exists")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the key is private: {mode:o}");
        }
    }

    #[test]
    fn a_missing_or_mismatched_key_is_a_clear_error() {
        let a = tempfile::tempdir().expect("a temp dir");
        let b = tempfile::tempdir().expect("a temp dir");
        let ip: IpAddr = "127.0.0.1".parse().expect("an address");
        self_signed(a.path(), ip).expect("created");
        self_signed(b.path(), ip).expect("created");
        let e = from_files(
            &a.path().join(SELF_SIGNED_CERT),
            &b.path().join(SELF_SIGNED_KEY),
        )
        .expect_err("mismatched");
        assert!(e.to_string().contains("cannot be used together"), "{e}");
        let e = from_files(&a.path().join("nope.pem"), &a.path().join(SELF_SIGNED_KEY))
            .expect_err("missing");
        assert!(e.to_string().contains("cannot use the certificate"), "{e}");
    }
}
