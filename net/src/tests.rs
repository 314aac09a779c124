//! The shell in process: a [`Server`] on the in-memory store, raw frames
//! over real sockets, every wait bounded by a read timeout.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use confab_engine::frame::{kind, Text, PROTOCOL_VERSION};
use confab_engine::testing::MemoryStore;
use confab_engine::{decode, Config, Frame, MessageId, Name, Ref, Target};

use clap::Parser;

use crate::auth::HashParams;
use crate::store::Store;
use crate::{Server, ServerHandle, ServerOptions};

const WAIT: Duration = Duration::from_secs(15);

fn start(engine: Config) -> (ServerHandle, MemoryStore) {
    let store = MemoryStore::default();
    let shared = store.clone();
    let stores = Arc::new(move || Ok(Box::new(shared.clone()) as Box<dyn Store>));
    let options = ServerOptions {
        engine,
        hash: HashParams {
            memory_kib: 64,
            passes: 1,
            lanes: 1,
        },
        ..ServerOptions::default()
    };
    let server = Server::bind(options, stores)
        .expect("binds")
        .spawn()
        .expect("spawns");
    (server, store)
}

struct Client {
    stream: TcpStream,
}

impl Client {
    fn connect(server: &ServerHandle) -> Client {
        let stream = TcpStream::connect(server.local_addr()).expect("connects");
        stream.set_read_timeout(Some(WAIT)).expect("sets a timeout");
        Client { stream }
    }

    fn send(&mut self, frame: &Frame<'_>) {
        self.stream.write_all(&frame.to_bytes()).expect("writes");
    }

    /// The next whole frame, header included; `None` at end of stream.
    fn recv(&mut self) -> Option<Vec<u8>> {
        let mut frame = vec![0u8; 4];
        match self.stream.read_exact(&mut frame) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return None,
            Err(e) => panic!("reading a frame failed: {e}"),
        }
        let len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        frame.resize(4 + len, 0);
        self.stream
            .read_exact(&mut frame[4..])
            .expect("reads a body");
        Some(frame)
    }

    /// Skips frames until one of kind `k`.
    #[track_caller]
    fn expect(&mut self, k: u8) -> Vec<u8> {
        loop {
            let f = self.recv().expect("the server keeps the connection open");
            if f[4] == k {
                return f;
            }
            assert_ne!(f[4], kind::ERROR, "{:?}", decode(&f, u32::MAX));
        }
    }

    /// HELLO, REGISTER, LOGIN (without the roster), up to CAUGHT_UP.
    fn log_in(server: &ServerHandle, user: &str) -> Client {
        let mut c = Client::connect(server);
        let user = Name::new(user).expect("valid name");
        let password = Text::new("password").expect("short");
        c.send(&Frame::Hello {
            version: PROTOCOL_VERSION,
            client: Text::truncated("net tests"),
        });
        c.send(&Frame::Register {
            reference: Ref(1),
            user,
            password,
        });
        c.expect(kind::OK);
        c.send(&Frame::Login {
            reference: Ref(2),
            user,
            password,
            resume_after: MessageId(0),
            roster: false,
        });
        c.expect(kind::CAUGHT_UP);
        c
    }
}

fn unlimited() -> Config {
    Config {
        msg_rate: u16::MAX,
        msg_burst: u16::MAX,
        byte_rate: u32::MAX,
        byte_burst: u32::MAX,
        ..Config::default()
    }
}

#[test]
fn hello_is_answered_with_server_hello() {
    let (server, _) = start(Config::default());
    let mut c = Client::connect(&server);
    c.send(&Frame::Hello {
        version: PROTOCOL_VERSION,
        client: Text::truncated("net tests"),
    });
    let f = c.recv().expect("an answer");
    assert!(
        matches!(
            decode(&f, u32::MAX),
            Ok(Some((
                Frame::ServerHello {
                    version: PROTOCOL_VERSION,
                    ..
                },
                _
            )))
        ),
        "{:?}",
        decode(&f, u32::MAX)
    );
    server.shutdown();
}

#[test]
fn server_hello_announces_the_frame_limits_given_on_the_command_line() {
    let cli = crate::cli::Cli::try_parse_from([
        "confab-server",
        "--max-frame",
        "100000",
        "--max-frame-pre-auth",
        "2000",
        "--history-page-max",
        "77",
    ])
    .expect("parses");
    cli.serve.check().expect("valid limits");
    let (server, _) = start(crate::options(&cli.serve).engine);
    let mut c = Client::connect(&server);
    c.send(&Frame::Hello {
        version: PROTOCOL_VERSION,
        client: Text::truncated("net tests"),
    });
    let f = c.expect(kind::SERVER_HELLO);
    let Ok(Some((Frame::ServerHello { info, .. }, _))) = decode(&f, u32::MAX) else {
        panic!("{:?}", decode(&f, u32::MAX));
    };
    assert_eq!(
        (
            info.max_frame,
            info.max_frame_pre_auth,
            info.history_page_max
        ),
        (100_000, 2000, 77)
    );
    server.shutdown();
}

#[test]
fn shutdown_announces_the_configured_retry_delay() {
    let (server, _) = start(Config {
        shutdown_retry: Duration::from_millis(1234),
        ..Config::default()
    });
    let mut ann = Client::log_in(&server, "ann");
    server.shutdown();
    let f = ann.expect(kind::SHUTDOWN);
    let Ok(Some((Frame::Shutdown { retry_after_ms, .. }, _))) = decode(&f, u32::MAX) else {
        panic!("{:?}", decode(&f, u32::MAX));
    };
    assert_eq!(retry_after_ms, 1234);
}

#[test]
fn a_message_is_acked_delivered_and_stored() {
    let (server, mut store) = start(Config::default());
    let mut ann = Client::log_in(&server, "ann");
    let mut bob = Client::log_in(&server, "bob");
    ann.send(&Frame::Send {
        reference: Ref(9),
        target: Target::Room,
        body: Text::truncated("hi bob"),
    });
    let ack = ann.expect(kind::ACK);
    let Ok(Some((
        Frame::Ack {
            reference: Ref(9),
            id,
            ..
        },
        _,
    ))) = decode(&ack, u32::MAX)
    else {
        panic!("{:?}", decode(&ack, u32::MAX));
    };
    let m = bob.expect(kind::MESSAGE);
    let Ok(Some((Frame::Message { id: got, body, .. }, _))) = decode(&m, u32::MAX) else {
        panic!("{:?}", decode(&m, u32::MAX));
    };
    assert_eq!((got, body.as_str()), (id, "hi bob"));
    let stats = server.shutdown();
    assert!(stats.lock_acquired > 0);
    let ann_name = Name::new("ann").expect("valid");
    let page = store
        .history(&ann_name, &Target::Room, MessageId(0), 10)
        .expect("reads");
    assert_eq!(page.messages.len(), 1);
}

#[test]
fn a_client_that_stops_reading_slows_nobody() {
    let (server, _) = start(Config {
        send_queue_bytes: 64 * 1024,
        ..unlimited()
    });
    let mut sleeper = Client::log_in(&server, "sleeper");
    let mut talker = Client::log_in(&server, "talker");
    let body = "x".repeat(4000);
    // Far more than the sleeper's queue and socket buffers hold; each is
    // acknowledged to the talker without waiting for the sleeper.
    for n in 0..2000u32 {
        talker.send(&Frame::Send {
            reference: Ref(n + 10),
            target: Target::Room,
            body: Text::truncated(&body),
        });
        talker.expect(kind::ACK);
    }
    // The sleeper finally reads: what fitted, then what it missed.
    let missed = sleeper.expect(kind::MISSED);
    let Ok(Some((Frame::Missed { count, .. }, _))) = decode(&missed, u32::MAX) else {
        panic!("{:?}", decode(&missed, u32::MAX));
    };
    assert!(count > 0);
    server.shutdown();
}

#[test]
fn shutdown_tells_every_client_and_closes() {
    let (server, _) = start(Config::default());
    let mut ann = Client::log_in(&server, "ann");
    let stats = server.shutdown();
    let f = ann.expect(kind::SHUTDOWN);
    assert!(matches!(
        decode(&f, u32::MAX),
        Ok(Some((Frame::Shutdown { .. }, _)))
    ));
    assert_eq!(ann.recv(), None);
    assert_eq!(stats.connections, 1);
}

#[test]
fn checking_the_data_dir_touches_only_this_process_s_probe() {
    let dir = tempfile::tempdir().expect("a temp dir");
    // Another process's probe, mid-check (`confab-server user add` while
    // the server starts; named as before probes were per process): it
    // must not be removed from under it.
    let other = dir.path().join(".confab-write-test");
    std::fs::write(&other, b"").expect("writes");
    crate::prepare_data_dir(dir.path()).expect("the dir is usable");
    assert!(other.exists(), "the other probe is left alone");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("lists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, [other.file_name().unwrap_or_default().to_owned()]);
}
