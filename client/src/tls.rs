//! TLS for the client: TLS 1.3 only (rustls, ring provider), with three
//! ways to trust a server's certificate.
//!
//! - **`--ca FILE`** ([`TlsConfig::with_ca`]): the chain must lead to a
//!   certificate of that file, name the host and be in its validity period.
//!   Nothing else is trusted.
//! - **The system's roots** ([`TlsConfig::system`], `rustls-native-certs`):
//!   the same checks against the certificates the operating system trusts.
//! - **Trust on first use**, when the system's roots do not know the
//!   certificate's issuer (a self-signed certificate, say): like SSH, the
//!   certificate's SHA-256 fingerprint is pinned for `host:port` in
//!   [`known_servers_path`] on the first connection, and a later connection
//!   that shows another certificate is refused
//!   ([`ConnectionError::CertificateChanged`]). The handshake signature is
//!   still checked against the certificate's key, so the pin proves that
//!   the server holds the key. A pinned certificate is trusted whatever its
//!   name and dates (as an SSH host key is); an expired or misnamed
//!   certificate from a known authority is refused.
//!
//! The file has one line per server, `host:port SHA256:ab:cd:...`, the
//! same spelling of the fingerprint as the server's `tls fingerprint` log
//! line. Blank lines and lines starting with `#` are skipped.
//!
//! [`ConnectionError::CertificateChanged`]: crate::ConnectionError::CertificateChanged

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error as RustlsError, RootCertStore,
    SignatureScheme,
};

/// The name of the file of pinned certificates in the config dir.
pub const KNOWN_SERVERS: &str = "known_servers";

/// Why the TLS settings could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// The `--ca` file cannot be read or holds no certificate.
    #[error("cannot use the CA certificate {}: {reason}", path.display())]
    Ca {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// How a client checks servers' certificates (see the module docs). Built
/// once (reading the roots from disk), used for every connection.
#[derive(Clone)]
pub struct TlsConfig {
    provider: Arc<CryptoProvider>,
    /// `None` when there is no root at all (every certificate is unknown).
    roots: Option<Arc<WebPkiServerVerifier>>,
    /// Where to pin certificates the roots do not know; `None`: refuse them.
    known_servers: Option<PathBuf>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("roots", &self.roots.is_some())
            .field("known_servers", &self.known_servers)
            .finish()
    }
}

impl TlsConfig {
    /// `--ca FILE` if given, else the system's roots with trust on first
    /// use in the default [`known_servers_path`].
    pub fn from_options(ca: Option<&Path>) -> Result<TlsConfig, TlsSetupError> {
        match ca {
            Some(path) => TlsConfig::with_ca(path),
            None => Ok(TlsConfig::system(known_servers_path())),
        }
    }

    /// Only the certificates in the PEM file `path` are trusted as roots.
    pub fn with_ca(path: &Path) -> Result<TlsConfig, TlsSetupError> {
        let fail = |reason: String| TlsSetupError::Ca {
            path: path.to_owned(),
            reason,
        };
        let mut roots = RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| fail(pem_reason(&e)))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(pem_reason(&e)))?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(fail("it holds no usable certificate".into()));
        }
        let provider = provider();
        Ok(TlsConfig {
            roots: verifier(roots, &provider),
            provider,
            known_servers: None,
        })
    }

    /// The operating system's roots; certificates they do not know are
    /// trusted on first use and pinned in `known_servers` (refused if `None`).
    pub fn system(known_servers: Option<PathBuf>) -> TlsConfig {
        let mut roots = RootCertStore::empty();
        // Unreadable system certificates just leave fewer roots: the
        // certificates they would have verified fall to trust on first use.
        let found = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(found.certs);
        let provider = provider();
        TlsConfig {
            roots: verifier(roots, &provider),
            provider,
            known_servers,
        }
    }

    /// A rustls configuration for one connection to `addr` (`host:port`),
    /// and the verifier that tells afterwards how the certificate was trusted.
    pub(crate) fn client_config(&self, addr: &str) -> (Arc<ClientConfig>, Arc<PinVerifier>) {
        let verifier = Arc::new(PinVerifier {
            provider: self.provider.clone(),
            roots: self.roots.clone(),
            known_servers: self.known_servers.clone(),
            addr: addr.to_owned(),
            seen: Mutex::new(None),
        });
        let config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("the ring provider supports TLS 1.3")
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        (Arc::new(config), verifier)
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn verifier(
    roots: RootCertStore,
    provider: &Arc<CryptoProvider>,
) -> Option<Arc<WebPkiServerVerifier>> {
    if roots.is_empty() {
        return None;
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .ok()
}

fn pem_reason(e: &rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(e) => crate::io_error::describe(e),
        rustls::pki_types::pem::Error::NoItemsFound => "it holds no PEM certificate".into(),
        other => format!("it is not a PEM certificate file ({other:?})"),
    }
}

/// The file of pinned certificates: `$CONFAB_CONFIG_DIR/known_servers`, else
/// `$XDG_CONFIG_HOME/confab/known_servers`, else
/// `~/.config/confab/known_servers`; `None` if no such directory can be named.
pub fn known_servers_path() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let dir = var("CONFAB_CONFIG_DIR")
        .or_else(|| var("XDG_CONFIG_HOME").map(|d| d.join("confab")))
        .or_else(|| var("HOME").map(|d| d.join(".config").join("confab")))?;
    Some(dir.join(KNOWN_SERVERS))
}

/// A certificate's SHA-256 fingerprint: `SHA256:ab:cd:...` (lower-case hex).
pub fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("SHA256:{}", hex.join(":"))
}

/// How the server's certificate came to be trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trust {
    /// It chains to a trusted root (`--ca` or the system's).
    Verified,
    /// It is the one pinned for this server.
    Pinned,
    /// Trusted on first use: now pinned in this file, or why it could not be.
    FirstUse(Result<PathBuf, String>),
}

/// What a TLS connection knows about its server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsInfo {
    /// The certificate's [`fingerprint`].
    pub fingerprint: String,
    /// How it was trusted.
    pub trust: Trust,
}

/// What the verifier decided.
#[derive(Clone, Debug)]
pub(crate) enum Seen {
    Verified(String),
    Pinned(String),
    FirstUse(String),
    /// Pinned with another fingerprint (this is the new one).
    Changed(String),
    /// Unknown issuer, and no file to pin it in.
    Unpinnable,
}

/// Checks against the roots, then against the pins (see the module docs).
/// One per connection: it keeps what it decided for [`PinVerifier::seen`].
#[derive(Debug)]
pub(crate) struct PinVerifier {
    provider: Arc<CryptoProvider>,
    roots: Option<Arc<WebPkiServerVerifier>>,
    known_servers: Option<PathBuf>,
    addr: String,
    seen: Mutex<Option<Seen>>,
}

impl PinVerifier {
    /// What the handshake showed, if it got as far as the certificate.
    pub(crate) fn seen(&self) -> Option<Seen> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn known_servers(&self) -> Option<&Path> {
        self.known_servers.as_deref()
    }

    fn note(&self, s: Seen) {
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = Some(s);
    }

    /// After a successful handshake: pins a first-use certificate.
    pub(crate) fn finish(&self) -> Option<TlsInfo> {
        Some(match self.seen()? {
            Seen::Verified(fingerprint) => TlsInfo {
                fingerprint,
                trust: Trust::Verified,
            },
            Seen::Pinned(fingerprint) => TlsInfo {
                fingerprint,
                trust: Trust::Pinned,
            },
            Seen::FirstUse(fingerprint) => {
                let file = self.known_servers.as_deref()?;
                let pinned = pin(file, &self.addr, &fingerprint)
                    .map(|()| file.to_owned())
                    .map_err(|e| {
                        format!(
                            "cannot write {}: {}",
                            file.display(),
                            crate::io_error::describe(&e)
                        )
                    });
                TlsInfo {
                    fingerprint,
                    trust: Trust::FirstUse(pinned),
                }
            }
            Seen::Changed(_) | Seen::Unpinnable => return None,
        })
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, RustlsError> {
        let fp = fingerprint(end_entity);
        let verified = match &self.roots {
            Some(roots) => {
                roots.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(RustlsError::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
        };
        match verified {
            Ok(v) => {
                self.note(Seen::Verified(fp));
                Ok(v)
            }
            Err(RustlsError::InvalidCertificate(CertificateError::UnknownIssuer)) => {
                let Some(file) = &self.known_servers else {
                    self.note(Seen::Unpinnable);
                    return Err(RustlsError::InvalidCertificate(
                        CertificateError::UnknownIssuer,
                    ));
                };
                let pins = read_pins(file, &self.addr);
                if pins.is_empty() {
                    self.note(Seen::FirstUse(fp));
                    Ok(ServerCertVerified::assertion())
                } else if pins.contains(&fp) {
                    self.note(Seen::Pinned(fp));
                    Ok(ServerCertVerified::assertion())
                } else {
                    self.note(Seen::Changed(fp));
                    Err(RustlsError::InvalidCertificate(
                        CertificateError::ApplicationVerificationFailure,
                    ))
                }
            }
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RustlsError> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RustlsError> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The fingerprints pinned for `addr` (an unreadable file pins nothing).
fn read_pins(file: &Path, addr: &str) -> Vec<String> {
    let Ok(text) = fs::read_to_string(file) else {
        return Vec::new();
    };
    parse_pins(&text, addr)
}

fn parse_pins(text: &str, addr: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let (host, fp) = (words.next()?, words.next()?);
            (host == addr).then(|| fp.to_ascii_lowercase().replacen("sha256:", "SHA256:", 1))
        })
        .collect()
}

/// Appends `addr fingerprint` to `file`, creating it (and its directory).
fn pin(file: &Path, addr: &str, fingerprint: &str) -> io::Result<()> {
    if let Some(dir) = file.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    // One write: concurrent clients pinning at once do not interleave.
    f.write_all(format!("{addr} {fingerprint}\n").as_bytes())
}

/// A certificate refusal in words, for `the certificate of ADDR is not
/// trusted: ...`.
pub(crate) fn describe_certificate_error(e: &CertificateError, host: &str) -> String {
    match e {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "it has expired".into()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "it is not valid yet".into()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("it is not valid for the name {host} ({e})")
        }
        CertificateError::UnknownIssuer => {
            "it is not signed by a trusted authority (give the right one with --ca FILE)".into()
        }
        CertificateError::Revoked => "it has been revoked".into(),
        CertificateError::BadSignature => "its signature is wrong".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_found_by_exact_address() {
        let text = "# comment\n\n127.0.0.1:7878 SHA256:AB:cd\nlocalhost:7878 SHA256:ef\n\
                    127.0.0.1:78 SHA256:00\n127.0.0.1:7878   sha256:12  trailing\n";
        assert_eq!(
            parse_pins(text, "127.0.0.1:7878"),
            ["SHA256:ab:cd", "SHA256:12"]
        );
        assert!(parse_pins(text, "127.0.0.1:787").is_empty());
        assert!(parse_pins("garbage\n", "garbage").is_empty());
    }

    #[test]
    fn fingerprints_are_colon_separated_lower_hex() {
        let fp = fingerprint(b"");
        assert!(fp.starts_with("SHA256:e3:b0:c4:42:98:fc"), "{fp}");
        assert_eq!(fp.len(), "SHA256:".len() + 32 * 3 - 1);
    }

    #[test]
    fn pinning_appends_a_line_and_creates_the_directory() {
        let dir = std::env::temp_dir().join(format!("confab-pin-test-{}", std::process::id()));
        let file = dir.join("sub").join(KNOWN_SERVERS);
        pin(&file, "h:1", "SHA256:aa").expect("pins");
        pin(&file, "h:2", "SHA256:bb").expect("pins");
        assert_eq!(read_pins(&file, "h:2"), ["SHA256:bb"]);
        assert_eq!(
            fs::read_to_string(&file).expect("readable"),
            "h:1 SHA256:aa\nh:2 SHA256:bb\n"
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
