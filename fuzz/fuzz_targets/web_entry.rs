//! Arbitrary bytes into the web port's two entries: the HTTP request head
//! (parse, then route) and the WebSocket read path (tungstenite in the
//! server role with the server's limits, over an in-memory stream, read
//! until it stops). Never a panic; every refusal is a clear status, and
//! every WebSocket error either means the peer is gone or has a close code.
#![no_main]
use std::io::{self, Cursor, Read, Write};

use confab_net::web::http::{
    self, parse_head, route, Route, IRC_SUBPROTOCOLS, MAX_HEAD, SUBPROTOCOLS,
};
use confab_net::web::ws::tungstenite::protocol::{Role, WebSocket};
use confab_net::web::ws::tungstenite::Error;
use confab_net::web::ws::{close_for, config};
use confab_net::web::OriginPolicy;
use libfuzzer_sys::fuzz_target;

/// What the client sent, and what the server wrote back (pongs, closes).
struct Mock<'a> {
    input: Cursor<&'a [u8]>,
    output: Vec<u8>,
}

impl Read for Mock<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Mock<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Bounded like a socket that stops taking bytes.
        if self.output.len() > 1 << 20 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn http_entry(data: &[u8], tls: bool) {
    let policy = OriginPolicy {
        allowed: vec!["https://chat.example".into()],
        tls,
    };
    match parse_head(data) {
        Ok(Some((head, used))) => {
            assert!(used <= data.len() && used <= MAX_HEAD);
            match route(&head, &policy) {
                Route::Refuse(status, why) => {
                    assert!(!why.is_empty());
                    let (code, _) = status.line();
                    assert!((400..600).contains(&code));
                    assert!(http::refusal(status, &why).starts_with(b"HTTP/1.1 "));
                }
                Route::Upgrade { protocol, accept } => {
                    assert!(head.path == http::WS_PATH || head.path == "/");
                    assert!(
                        SUBPROTOCOLS.contains(&protocol) || IRC_SUBPROTOCOLS.contains(&protocol)
                    );
                    assert_eq!(accept.len(), 28);
                }
                Route::File { content_type, .. } => assert!(!content_type.is_empty()),
            }
        }
        Ok(None) => assert!(data.len() < MAX_HEAD),
        Err(e) => {
            let (code, _) = e.status().line();
            assert!(code == 400 || code == 431, "{e}");
        }
    }
}

fn ws_entry(data: &[u8], max_frame: u32) {
    let mock = Mock {
        input: Cursor::new(data),
        output: Vec::new(),
    };
    let mut ws = WebSocket::from_raw_socket(mock, Role::Server, Some(config(max_frame)));
    // Each read consumes input or fails, so this ends.
    for _ in 0..data.len() + 2 {
        match ws.read() {
            Ok(_) => continue,
            Err(e) => {
                let gone = matches!(e, Error::ConnectionClosed | Error::AlreadyClosed | Error::Io(_));
                match close_for(&e, max_frame) {
                    Some(frame) => {
                        assert!(!gone);
                        let code = u16::from(frame.code);
                        assert!(matches!(code, 1002 | 1007 | 1009), "{e}: {code}");
                        assert!(frame.reason.len() <= 123);
                    }
                    None => assert!(gone, "{e} has no close code"),
                }
                return;
            }
        }
    }
    panic!("reading did not stop");
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => http_entry(rest, false),
        1 => http_entry(rest, true),
        // A small limit, so that 1009 is easy to reach, and the default.
        2 => ws_entry(rest, 64),
        _ => ws_entry(rest, 65536),
    }
});
