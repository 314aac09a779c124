//! A rough load run against an in-process server, to see throughput and how
//! often the hub lock is contended. Not a test: it only prints.
//!
//! ```text
//! cargo run --release -p confab-net --example load [CLIENTS] [MESSAGES] [THREADS] [sqlite|memory]
//! ```
//!
//! Every client registers, logs in, then sends MESSAGES room messages as
//! fast as it can (each delivered to every other client) while reading
//! everything it is sent. Rate limits are lifted for the run. With `sqlite`
//! the store is SQLite with `--sync normal` in a temp dir; the default is the
//! in-memory store, so the numbers are the shell's and the engine's.

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use confab_engine::frame::{kind, ErrorCode, Text, PROTOCOL_VERSION};
use confab_engine::testing::MemoryStore;
use confab_engine::{decode, Config, Frame, MessageId, Name, Ref, Target};
use confab_net::auth::HashParams;
use confab_net::store::sqlite::{SqliteOptions, SqliteStore, Sync};
use confab_net::store::Store;
use confab_net::{Server, ServerOptions, StoreFactory};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let clients: usize = args.next().map_or(Ok(50), |s| s.parse())?;
    let messages: usize = args.next().map_or(Ok(200), |s| s.parse())?;
    let threads: usize = args.next().map_or(Ok(2), |s| s.parse())?;
    let sqlite = args.next().is_some_and(|s| s == "sqlite");
    // The server's log (connections, logins) only when asked for.
    if let Ok(level) = std::env::var("LOAD_LOG") {
        let level = level.parse().map_err(|_| "LOAD_LOG is a log level")?;
        confab_net::logger::init(level, None)?;
    }

    let dir = std::env::temp_dir().join(format!("confab-load-{}", std::process::id()));
    let stores: StoreFactory = if sqlite {
        let dir = dir.clone();
        let options = SqliteOptions {
            sync: Sync::Normal,
            ..SqliteOptions::default()
        };
        Arc::new(move || Ok(Box::new(SqliteStore::open(&dir, &options)?) as Box<dyn Store>))
    } else {
        let store = MemoryStore::default();
        Arc::new(move || Ok(Box::new(store.clone()) as Box<dyn Store>))
    };
    let options = ServerOptions {
        threads,
        engine: Config {
            msg_rate: u16::MAX,
            msg_burst: u16::MAX,
            byte_rate: u32::MAX,
            byte_burst: u32::MAX,
            send_queue_bytes: 64 * 1024 * 1024,
            max_clients: 100_000,
            max_per_source: 100_000,
            ..Config::default()
        },
        hash: HashParams {
            memory_kib: 64,
            passes: 1,
            lanes: 1,
        },
        // Every client sends its whole burst at once: let the writer's
        // queue hold it all rather than answer BUSY.
        write_queue: clients * messages,
        ..ServerOptions::default()
    };
    let server = Server::bind(options, stores)?.spawn()?;
    let addr = server.local_addr();

    let ready = Arc::new(Barrier::new(clients + 1));
    let mut handles = Vec::new();
    for i in 0..clients {
        let ready = ready.clone();
        handles.push(thread::spawn(move || {
            client(addr, i, clients, messages, &ready)
        }));
    }
    ready.wait();
    let start = Instant::now();
    let mut received = 0;
    let mut failed = 0;
    for h in handles {
        match h.join().map_err(|_| "a client panicked")? {
            Ok(n) => received += n,
            Err(e) => {
                failed += 1;
                // Timeouts are usually the echo of another client's failure.
                if failed <= 3 || !e.to_string().contains("os error 11") {
                    eprintln!("{e}");
                }
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} clients failed");
    }
    let elapsed = start.elapsed();
    let stats = server.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "{clients} clients x {messages} messages, {threads} I/O threads, {} store",
        if sqlite { "sqlite" } else { "memory" }
    );
    println!(
        "{received} deliveries in {:.2} s: {:.0} deliveries/s, {:.0} sends/s",
        elapsed.as_secs_f64(),
        received as f64 / elapsed.as_secs_f64(),
        (clients * messages) as f64 / elapsed.as_secs_f64()
    );
    println!(
        "hub lock: {} acquisitions, {} contended ({:.2}%)",
        stats.lock_acquired,
        stats.lock_contended,
        100.0 * stats.lock_contended as f64 / stats.lock_acquired.max(1) as f64
    );
    Ok(())
}

/// One client: logs in, waits for everyone, sends, and reads until it has
/// every ACK and every other client's messages. Returns messages received.
fn client(
    addr: SocketAddr,
    i: usize,
    clients: usize,
    messages: usize,
    ready: &Barrier,
) -> io::Result<usize> {
    // Reach the barrier even on failure, or everyone waits forever.
    let setup = log_in(addr, i);
    ready.wait();
    let (mut reader, mut writer) = setup?;
    // At most WINDOW sends unacknowledged, as a real client would keep
    // under the server's in-flight limit.
    let acked = Arc::new((Mutex::new(0usize), Condvar::new()));
    let window = acked.clone();
    let sender = thread::spawn(move || -> io::Result<()> {
        for n in 0..messages {
            {
                let (count, cv) = &*window;
                let mut count = count.lock().map_err(|_| io::Error::other("poisoned"))?;
                if n >= *count + WINDOW {
                    writer.flush()?;
                    while n >= *count + WINDOW {
                        count = cv.wait(count).map_err(|_| io::Error::other("poisoned"))?;
                    }
                }
            }
            send(
                &mut writer,
                &Frame::Send {
                    reference: Ref(10 + n as u32),
                    target: Target::Room,
                    body: Text::truncated("hello from the load generator"),
                },
            )?;
        }
        writer.flush()
    });
    let expected = (clients - 1) * messages;
    let (mut acks, mut got) = (0, 0);
    while acks < messages || got < expected {
        let f = recv(&mut reader).map_err(|e| {
            io::Error::other(format!(
                "client {i}: {e} after {acks} acks and {got} messages"
            ))
        })?;
        match f[4] {
            kind::ACK => {
                acks += 1;
                let (count, cv) = &*acked;
                *count.lock().map_err(|_| io::Error::other("poisoned"))? = acks;
                cv.notify_one();
            }
            kind::MESSAGE => got += 1,
            kind::ERROR | kind::MISSED => return Err(unexpected(&f)),
            _ => {}
        }
    }
    sender
        .join()
        .map_err(|_| io::Error::other("sender panicked"))??;
    Ok(got)
}

/// Sends a client keeps unacknowledged.
const WINDOW: usize = 128;

type Reader = BufReader<TcpStream>;
type Writer = BufWriter<TcpStream>;

/// Connects, registers and logs in (without the roster).
fn log_in(addr: SocketAddr, i: usize) -> io::Result<(Reader, Writer)> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = BufWriter::new(stream);
    let user = Name::new(&format!("load{i}")).map_err(io::Error::other)?;
    let password = Text::new("password").map_err(io::Error::other)?;
    let hello = Frame::Hello {
        version: PROTOCOL_VERSION,
        client: Text::truncated("load"),
    };
    send(&mut writer, &hello)?;
    // One login or registration at a time; BUSY means retry after the delay.
    let register = Frame::Register {
        reference: Ref(1),
        user,
        password,
    };
    request(&mut reader, &mut writer, &register, kind::OK)?;
    let login = Frame::Login {
        reference: Ref(2),
        user,
        password,
        resume_after: MessageId(0),
        roster: false,
    };
    request(&mut reader, &mut writer, &login, kind::CAUGHT_UP)?;
    Ok((reader, writer))
}

/// Sends `frame` until the answer includes a frame of kind `done`,
/// retrying after BUSY.
fn request(
    reader: &mut Reader,
    writer: &mut Writer,
    frame: &Frame<'_>,
    done: u8,
) -> io::Result<()> {
    loop {
        send(writer, frame)?;
        writer.flush()?;
        loop {
            let f = recv(reader)?;
            if f[4] == done {
                return Ok(());
            }
            match decode(&f, u32::MAX) {
                Ok(Some((
                    Frame::Error {
                        code: ErrorCode::Busy,
                        retry_after_ms,
                        ..
                    },
                    _,
                ))) => {
                    thread::sleep(Duration::from_millis(u64::from(retry_after_ms)));
                    break;
                }
                Ok(Some((Frame::Error { .. }, _))) => return Err(unexpected(&f)),
                _ => {}
            }
        }
    }
}

fn unexpected(frame: &[u8]) -> io::Error {
    io::Error::other(format!("unexpected {:?}", decode(frame, u32::MAX)))
}

fn send(w: &mut impl Write, frame: &Frame<'_>) -> io::Result<()> {
    w.write_all(&frame.to_bytes())
}

/// One whole frame, header included.
fn recv(r: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut frame = vec![0u8; 4];
    r.read_exact(&mut frame)?;
    let len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
    frame.resize(4 + len, 0);
    r.read_exact(&mut frame[4..])?;
    Ok(frame)
}
