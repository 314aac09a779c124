//! Which pages may open a WebSocket: a browser sends the page's origin
//! with every upgrade, so a page on another site cannot talk to the
//! server with the user's network position. A request without `Origin`
//! is not a browser's, and is allowed (the confab protocol's own login
//! protects it, as on TCP).

/// The origin rule of one web listener.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OriginPolicy {
    /// Origins allowed besides the server's own, as `scheme://host[:port]`,
    /// lower-case, without a trailing slash.
    pub allowed: Vec<String>,
    /// The listener serves TLS: its own origin is `https://`.
    pub tls: bool,
}

/// What the rule says about one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No `Origin`: not a browser.
    NoOrigin,
    /// The origin is the server's own (same scheme, host and port as `Host`).
    SameOrigin,
    /// The origin is one of `--web-allowed-origin`.
    Listed,
    /// Any other origin, or one that is not valid.
    Refused,
}

impl Verdict {
    /// Whether the request may go on.
    pub fn allowed(self) -> bool {
        self != Verdict::Refused
    }
}

impl OriginPolicy {
    /// The verdict on a request with these `Origin` and `Host` headers.
    pub fn check(&self, origin: Option<&str>, host: Option<&str>) -> Verdict {
        let Some(origin) = origin else {
            return Verdict::NoOrigin;
        };
        let origin = normalize(origin);
        if self.allowed.contains(&origin) {
            return Verdict::Listed;
        }
        let scheme = if self.tls { "https://" } else { "http://" };
        match (origin.strip_prefix(scheme), host) {
            (Some(authority), Some(host)) if !authority.is_empty() => {
                if same_authority(authority, &host.trim().to_ascii_lowercase(), self.tls) {
                    Verdict::SameOrigin
                } else {
                    Verdict::Refused
                }
            }
            _ => Verdict::Refused,
        }
    }
}

/// An origin as compared: trimmed, lower-case, no trailing slash.
pub fn normalize(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// `host[:port]` equal to `host[:port]`, a missing port being the
/// scheme's default (a browser leaves out `:443` and `:80`).
fn same_authority(a: &str, b: &str, tls: bool) -> bool {
    let default = if tls { "443" } else { "80" };
    let split = |s: &str| -> (String, String) {
        // An IPv6 literal keeps its colons inside the brackets.
        match s.rfind(':') {
            Some(i) if !s[i..].contains(']') => (s[..i].to_owned(), s[i + 1..].to_owned()),
            _ => (s.to_owned(), default.to_owned()),
        }
    };
    let (a, b) = (split(a), split(b));
    !a.0.is_empty() && a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> OriginPolicy {
        OriginPolicy::default()
    }

    #[test]
    fn a_request_without_origin_is_allowed() {
        assert_eq!(
            plain().check(None, Some("127.0.0.1:8080")),
            Verdict::NoOrigin
        );
    }

    #[test]
    fn the_servers_own_origin_is_allowed_with_its_scheme_only() {
        let host = Some("127.0.0.1:8080");
        assert_eq!(
            plain().check(Some("http://127.0.0.1:8080"), host),
            Verdict::SameOrigin
        );
        assert_eq!(
            plain().check(Some("https://127.0.0.1:8080"), host),
            Verdict::Refused
        );
        let tls = OriginPolicy {
            tls: true,
            ..plain()
        };
        assert_eq!(
            tls.check(Some("https://127.0.0.1:8080"), host),
            Verdict::SameOrigin
        );
        assert_eq!(
            tls.check(Some("https://Example.org"), Some("example.org:443")),
            Verdict::SameOrigin
        );
    }

    #[test]
    fn another_host_or_port_is_refused_unless_listed() {
        let host = Some("127.0.0.1:8080");
        assert_eq!(
            plain().check(Some("http://127.0.0.1:9999"), host),
            Verdict::Refused
        );
        assert_eq!(
            plain().check(Some("http://evil.example"), host),
            Verdict::Refused
        );
        assert_eq!(plain().check(Some("null"), host), Verdict::Refused);
        assert_eq!(
            plain().check(Some("http://127.0.0.1:8080"), None),
            Verdict::Refused
        );
        let listed = OriginPolicy {
            allowed: vec![normalize("https://chat.example/")],
            tls: false,
        };
        assert_eq!(
            listed.check(Some("https://CHAT.example"), host),
            Verdict::Listed
        );
    }

    #[test]
    fn ipv6_hosts_compare_with_their_brackets() {
        let host = Some("[::1]:8080");
        assert_eq!(
            plain().check(Some("http://[::1]:8080"), host),
            Verdict::SameOrigin
        );
        assert_eq!(plain().check(Some("http://[::1]"), host), Verdict::Refused);
    }
}
