//! The HTTP side of the web port: the request head (parsed by `httparse`,
//! at most [`MAX_HEAD`] bytes), the routing decision, the embedded static
//! files and the responses, every one with the same security headers.
//!
//! Everything here is pure (bytes in, a decision or bytes out), so that
//! the fuzz target `web_entry` can drive it without a socket. One request
//! per connection: every answer but the upgrade closes it.

use std::borrow::Cow;
use std::fmt::Write as _;

use rust_embed::RustEmbed;

use crate::web::origin::{OriginPolicy, Verdict};

/// The longest request head read; a longer one is refused (431).
pub const MAX_HEAD: usize = 8 * 1024;
/// Headers parsed at most; more is a malformed request (431).
pub const MAX_HEADERS: usize = 48;
/// Where the WebSocket is.
pub const WS_PATH: &str = "/ws";
/// The subprotocols, best first: both carry confab frames, the client
/// says with HELLO which protocol version it speaks.
pub const SUBPROTOCOLS: [&str; 2] = ["confab.v2", "confab.v1"];
/// IRC over WebSocket (IRCv3 `websocket`): one IRC line per message,
/// without CR LF; the server sends text messages under the first, binary
/// ones under the second. Of these the client's first choice is taken (a
/// client offers the one it reads best); of confab's, the server's best.
pub const IRC_SUBPROTOCOLS: [&str; 2] = ["text.ircv3.net", "binary.ircv3.net"];

/// Sent with every response: the page may load only its own scripts and
/// styles and connect only to its own origin, and may not be framed.
pub const SECURITY_HEADERS: &str = "Content-Security-Policy: default-src 'none'; \
     script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n\
     X-Content-Type-Options: nosniff\r\n\
     Referrer-Policy: no-referrer\r\n\
     X-Frame-Options: DENY\r\n\
     Cache-Control: no-cache\r\n";

/// The page, embedded at build time from `web/static/` at the repository
/// root (also in debug builds: the binary never reads it from disk).
#[derive(RustEmbed)]
#[folder = "../web/static/"]
struct Static;

/// A request head that cannot be used; each maps to a status.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeadError {
    /// Not HTTP/1.x.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// Over [`MAX_HEAD`] bytes or [`MAX_HEADERS`] headers.
    #[error("the request head is larger than {MAX_HEAD} bytes or {MAX_HEADERS} headers")]
    TooLarge,
}

impl HeadError {
    /// The answer's status.
    pub fn status(&self) -> Status {
        match self {
            HeadError::Malformed(_) => Status::BadRequest,
            HeadError::TooLarge => Status::TooLarge,
        }
    }
}

/// The statuses the web port answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// 200.
    Ok,
    /// 400.
    BadRequest,
    /// 403.
    Forbidden,
    /// 404.
    NotFound,
    /// 405.
    MethodNotAllowed,
    /// 431.
    TooLarge,
    /// 503: the hub turned the connection away.
    Unavailable,
}

impl Status {
    /// The status line's code and reason.
    pub fn line(self) -> (u16, &'static str) {
        match self {
            Status::Ok => (200, "OK"),
            Status::BadRequest => (400, "Bad Request"),
            Status::Forbidden => (403, "Forbidden"),
            Status::NotFound => (404, "Not Found"),
            Status::MethodNotAllowed => (405, "Method Not Allowed"),
            Status::TooLarge => (431, "Request Header Fields Too Large"),
            Status::Unavailable => (503, "Service Unavailable"),
        }
    }
}

/// What the routing needs of a request head.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Head {
    /// The method, as sent.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// `Host`.
    pub host: Option<String>,
    /// `Origin`.
    pub origin: Option<String>,
    /// `Upgrade` names `websocket` and `Connection` names `upgrade`.
    pub upgrade: bool,
    /// `Sec-WebSocket-Version`.
    pub ws_version: Option<String>,
    /// `Sec-WebSocket-Key`.
    pub ws_key: Option<String>,
    /// Every `Sec-WebSocket-Protocol` value, split at commas.
    pub protocols: Vec<String>,
}

/// Parses a request head: `Ok(None)` while it is incomplete (and under
/// [`MAX_HEAD`]), else the head and its length in bytes (what follows is
/// the client's next bytes, for the WebSocket).
pub fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let used = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(e) => return Err(HeadError::Malformed(e.to_string())),
    };
    if used > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let path = req.path.unwrap_or("/");
    let mut head = Head {
        method: req.method.unwrap_or_default().to_owned(),
        path: path.split(['?', '#']).next().unwrap_or_default().to_owned(),
        ..Head::default()
    };
    let (mut upgrade, mut connection) = (false, false);
    for h in req.headers.iter() {
        let value = String::from_utf8_lossy(h.value).trim().to_owned();
        let has = |word: &str| {
            value
                .split(',')
                .any(|v| v.trim().eq_ignore_ascii_case(word))
        };
        match h.name.to_ascii_lowercase().as_str() {
            "host" => head.host = Some(value),
            "origin" => head.origin = Some(value),
            "upgrade" => upgrade |= has("websocket"),
            "connection" => connection |= has("upgrade"),
            "sec-websocket-version" => head.ws_version = Some(value),
            "sec-websocket-key" => head.ws_key = Some(value),
            "sec-websocket-protocol" => head
                .protocols
                .extend(value.split(',').map(|p| p.trim().to_owned())),
            _ => {}
        }
    }
    head.upgrade = upgrade && connection;
    Ok(Some((head, used)))
}

/// What to do with a request.
#[derive(Debug)]
pub enum Route {
    /// Answer with an embedded file (only its headers for HEAD).
    File {
        /// The file's bytes.
        body: Cow<'static, [u8]>,
        /// By its extension.
        content_type: &'static str,
        /// HEAD: no body.
        head: bool,
    },
    /// Open the WebSocket with this subprotocol.
    Upgrade {
        /// One of [`SUBPROTOCOLS`].
        protocol: &'static str,
        /// `Sec-WebSocket-Accept`.
        accept: String,
    },
    /// Refuse, with a body saying why.
    Refuse(Status, String),
}

/// The decision for `head`: the WebSocket at [`WS_PATH`] (origin first,
/// then the handshake's headers and a subprotocol of ours), else a file.
pub fn route(head: &Head, origins: &OriginPolicy) -> Route {
    // IRC web clients (and irctest) open the WebSocket at the root.
    if head.path == WS_PATH || head.upgrade && head.path == "/" {
        return route_ws(head, origins);
    }
    if head.method != "GET" && head.method != "HEAD" {
        return refuse(Status::MethodNotAllowed, "only GET and HEAD are served");
    }
    let name = match head.path.strip_prefix('/') {
        Some("") => "index.html",
        Some(name) => name,
        None => return refuse(Status::BadRequest, "the path must start with /"),
    };
    match Static::get(name) {
        Some(file) => Route::File {
            body: file.data,
            content_type: content_type(name),
            head: head.method == "HEAD",
        },
        None => refuse(Status::NotFound, "no such file"),
    }
}

fn route_ws(head: &Head, origins: &OriginPolicy) -> Route {
    if head.method != "GET" {
        return refuse(Status::MethodNotAllowed, "the WebSocket is opened with GET");
    }
    if origins.check(head.origin.as_deref(), head.host.as_deref()) == Verdict::Refused {
        let origin = head.origin.as_deref().unwrap_or_default();
        return Route::Refuse(
            Status::Forbidden,
            format!("the origin {origin} may not open a WebSocket here (see --web-allowed-origin)"),
        );
    }
    let Some(key) = head.ws_key.as_deref().filter(|_| head.upgrade) else {
        return refuse(
            Status::BadRequest,
            "/ws is a WebSocket: it needs Upgrade: websocket, Connection: Upgrade and Sec-WebSocket-Key",
        );
    };
    if head.ws_version.as_deref() != Some("13") {
        return refuse(Status::BadRequest, "only WebSocket version 13 is spoken");
    }
    let offered = |p: &&&str| head.protocols.iter().any(|o| o == **p);
    let irc = head
        .protocols
        .iter()
        .find_map(|o| IRC_SUBPROTOCOLS.iter().find(|p| **p == o.as_str()));
    match SUBPROTOCOLS.iter().find(offered).or(irc) {
        Some(protocol) => Route::Upgrade {
            protocol,
            accept: async_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes()),
        },
        None => refuse(
            Status::BadRequest,
            "offer the subprotocol confab.v2 or confab.v1, or text.ircv3.net or binary.ircv3.net for IRC (Sec-WebSocket-Protocol)",
        ),
    }
}

fn refuse(status: Status, why: &str) -> Route {
    Route::Refuse(status, why.to_owned())
}

/// The Content-Type of a file, by its extension.
pub fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    match ext.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "woff2" => "font/woff2",
        "wasm" => "application/wasm",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// A whole response head (security headers included, `Connection: close`)
/// for a body of `len` bytes.
pub fn response_head(status: Status, content_type: &str, len: usize, extra: &str) -> Vec<u8> {
    let (code, reason) = status.line();
    let mut s = String::with_capacity(512);
    let _ = write!(
        s,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\n\
         Connection: close\r\n{extra}{SECURITY_HEADERS}\r\n"
    );
    s.into_bytes()
}

/// A refusal: the head and a one-line plain-text body.
pub fn refusal(status: Status, why: &str) -> Vec<u8> {
    let body = format!("{why}\n");
    let extra = if status == Status::MethodNotAllowed {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let mut out = response_head(status, "text/plain; charset=utf-8", body.len(), extra);
    out.extend_from_slice(body.as_bytes());
    out
}

/// The 101 that opens the WebSocket.
pub fn switching(protocol: &str, accept: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: {protocol}\r\n{SECURITY_HEADERS}\r\n"
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Head {
        match parse_head(text.as_bytes()) {
            Ok(Some((h, n))) => {
                assert_eq!(n, text.len());
                h
            }
            other => panic!("{other:?}"),
        }
    }

    const UPGRADE: &str = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\n\
        Connection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

    #[test]
    fn an_incomplete_head_waits_and_an_endless_one_is_too_large() {
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None));
        let long = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD));
        assert_eq!(parse_head(long.as_bytes()), Err(HeadError::TooLarge));
        assert!(matches!(
            parse_head(b"\x16\x03\x01garbage\r\n\r\n"),
            Err(HeadError::Malformed(_))
        ));
    }

    #[test]
    fn the_root_is_the_index_page_and_unknown_paths_are_not_found() {
        let policy = OriginPolicy::default();
        match route(&head("GET /?x=1 HTTP/1.1\r\n\r\n"), &policy) {
            Route::File {
                content_type, head, ..
            } => {
                assert!(content_type.starts_with("text/html"));
                assert!(!head);
            }
            other => panic!("{other:?}"),
        }
        let r = route(&head("GET /nope.js HTTP/1.1\r\n\r\n"), &policy);
        assert!(matches!(r, Route::Refuse(Status::NotFound, _)), "{r:?}");
        let r = route(&head("POST / HTTP/1.1\r\n\r\n"), &policy);
        assert!(
            matches!(r, Route::Refuse(Status::MethodNotAllowed, _)),
            "{r:?}"
        );
    }

    #[test]
    fn the_best_offered_subprotocol_is_chosen_and_none_is_refused() {
        let policy = OriginPolicy::default();
        let both = format!("{UPGRADE}Sec-WebSocket-Protocol: confab.v1, confab.v2\r\n\r\n");
        match route(&head(&both), &policy) {
            Route::Upgrade { protocol, accept } => {
                assert_eq!(protocol, "confab.v2");
                // RFC 6455's example key and answer.
                assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
            }
            other => panic!("{other:?}"),
        }
        let none = format!("{UPGRADE}Sec-WebSocket-Protocol: chat\r\n\r\n");
        let r = route(&head(&none), &policy);
        assert!(
            matches!(r, Route::Refuse(Status::BadRequest, ref why) if why.contains("confab.v2")),
            "{r:?}"
        );
    }

    #[test]
    fn an_irc_client_gets_its_first_irc_subprotocol_at_the_root_too() {
        let policy = OriginPolicy::default();
        let root = UPGRADE.replacen("GET /ws ", "GET / ", 1);
        for (offer, want) in [
            ("binary.ircv3.net, text.ircv3.net", "binary.ircv3.net"),
            ("text.ircv3.net, binary.ircv3.net", "text.ircv3.net"),
            ("chat, text.ircv3.net", "text.ircv3.net"),
        ] {
            let h = format!("{root}Sec-WebSocket-Protocol: {offer}\r\n\r\n");
            match route(&head(&h), &policy) {
                Route::Upgrade { protocol, .. } => assert_eq!(protocol, want, "{offer}"),
                other => panic!("{offer}: {other:?}"),
            }
        }
        // confab's subprotocol wins over IRC's when both are offered.
        let both = format!("{UPGRADE}Sec-WebSocket-Protocol: text.ircv3.net, confab.v1\r\n\r\n");
        assert!(matches!(
            route(&head(&both), &policy),
            Route::Upgrade {
                protocol: "confab.v1",
                ..
            }
        ));
    }

    #[test]
    fn a_foreign_origin_is_forbidden_before_anything_else() {
        let policy = OriginPolicy::default();
        let foreign = format!("{UPGRADE}Origin: http://evil.example\r\n\r\n");
        let r = route(&head(&foreign), &policy);
        assert!(matches!(r, Route::Refuse(Status::Forbidden, _)), "{r:?}");
        let own = format!(
            "{UPGRADE}Origin: http://127.0.0.1:8080\r\nSec-WebSocket-Protocol: confab.v1\r\n\r\n"
        );
        assert!(matches!(
            route(&head(&own), &policy),
            Route::Upgrade {
                protocol: "confab.v1",
                ..
            }
        ));
    }

    #[test]
    fn every_response_carries_the_security_headers() {
        let text = String::from_utf8(refusal(Status::NotFound, "no")).expect("ascii");
        for h in [
            "Content-Security-Policy: default-src 'none'",
            "X-Frame-Options: DENY",
            "nosniff",
        ] {
            assert!(text.contains(h), "{text}");
        }
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"));
    }
}
