//! A raw socket speaking frames through the engine's codec, for input no
//! well-behaved client would send.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use confab_engine::frame::{ErrorCode, Frame, Text, PROTOCOL_VERSION};
use confab_engine::{decode, MessageId, Name, Ref};

use crate::harness::{Server, WAIT};

/// One frame from the server, copied out of the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Got {
    /// The frame's name (`ERROR`, `SERVER_HELLO`, ...).
    pub(crate) name: &'static str,
    /// For an ERROR: its code and reference.
    pub(crate) error: Option<(ErrorCode, Ref)>,
    /// The whole frame, for messages.
    pub(crate) debug: String,
}

/// A raw connection.
pub(crate) struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub(crate) fn connect(server: &Server) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", server.port())).expect("the server accepts");
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    /// A raw connection over a stream connected some other way.
    pub(crate) fn from_stream(stream: TcpStream) -> Raw {
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    /// Another handle to the socket, to write from another thread.
    pub(crate) fn clone_stream(&self) -> TcpStream {
        self.stream.try_clone().expect("the socket can be cloned")
    }

    /// Writes bytes; the server may already have closed (then it errors).
    pub(crate) fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Writes one frame, which must go through.
    pub(crate) fn frame(&mut self, f: &Frame<'_>) {
        self.write(&f.to_bytes()).expect("the server reads");
    }

    /// Closes the sending half: the server sees the end of the stream.
    pub(crate) fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// The next frame, or `None` when the server closed the connection.
    /// Panics if neither happens within [`WAIT`].
    #[track_caller]
    pub(crate) fn recv(&mut self) -> Option<Got> {
        let deadline = Instant::now() + WAIT;
        loop {
            match decode(&self.buf, u32::MAX) {
                Ok(Some((f, used))) => {
                    let got = Got {
                        name: f.name(),
                        error: match &f {
                            Frame::Error {
                                code, reference, ..
                            } => Some((*code, *reference)),
                            _ => None,
                        },
                        debug: format!("{f:?}"),
                    };
                    self.buf.drain(..used);
                    return Some(got);
                }
                Ok(None) => {}
                Err(e) => panic!("the server sent an undecodable frame: {e}"),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "nothing from the server within {WAIT:?}");
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .expect("a read timeout can be set");
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A reset counts as closed (the server closed with our bytes unread).
                Err(_) => return None,
            }
        }
    }

    /// The next frame that is not a PING; panics on close.
    #[track_caller]
    pub(crate) fn next(&mut self) -> Got {
        loop {
            match self.recv() {
                Some(g) if g.name == "PING" => continue,
                Some(g) => return g,
                None => panic!("the server closed the connection"),
            }
        }
    }

    /// Asserts the next frame is ERROR `code` and returns its reference.
    #[track_caller]
    pub(crate) fn expect_error(&mut self, code: ErrorCode) -> Ref {
        let g = self.next();
        match g.error {
            Some((c, reference)) if c == code => reference,
            _ => panic!("expected ERROR {code:?}, got {}", g.debug),
        }
    }

    /// Asserts the server closes the connection with nothing more to say.
    #[track_caller]
    pub(crate) fn expect_closed(&mut self) {
        if let Some(g) = self.recv() {
            panic!("expected the connection to close, got {}", g.debug);
        }
    }

    /// HELLO, answered by SERVER_HELLO.
    #[track_caller]
    pub(crate) fn hello(&mut self) {
        self.frame(&Frame::Hello {
            version: PROTOCOL_VERSION,
            client: Text::new("raw-test").expect("short"),
        });
        let g = self.next();
        assert_eq!(g.name, "SERVER_HELLO", "{}", g.debug);
    }

    /// HELLO and LOGIN (without the roster), answered by LOGIN_OK and CAUGHT_UP.
    #[track_caller]
    pub(crate) fn login(&mut self, user: &str, password: &str) {
        self.hello();
        self.frame(&Frame::Login {
            reference: Ref(1),
            user: Name::new(user).expect("a valid name"),
            password: Text::new(password).expect("short"),
            resume_after: MessageId(0),
            roster: false,
        });
        let g = self.next();
        assert_eq!(g.name, "LOGIN_OK", "{}", g.debug);
        // CAUGHT_UP always follows a login.
        let g = self.next();
        assert_eq!(g.name, "CAUGHT_UP", "{}", g.debug);
    }
}
