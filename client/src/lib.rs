//! The confab client.
//!
//! - [`session`]: the protocol, sans I/O. Bytes in, typed [`Event`]s out;
//!   requests in, bytes out; PONG and ROSTER_ACK answered by itself; the
//!   roster model ([`roster`]). A terminal UI, a load generator and the
//!   command line all drive this one type.
//! - [`connection`]: a blocking driver over `std::net::TcpStream`, with
//!   request helpers that wait for their answer and keep every other event.
//! - [`tls`]: TLS 1.3 and how a server's certificate is trusted (a CA,
//!   the system's roots, or pinned on first use like SSH's known_hosts).
//! - [`address`]: the `all` / `@user` / `#group` spelling of targets.
//! - [`json`]: the JSON shape of events printed by `confab listen`.
//!
//! ```no_run
//! use std::time::Duration;
//! use confab::{connect, Event, LoginOptions};
//! use confab_engine::{Name, Target};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let t = Duration::from_secs(10);
//! let mut c = connect("127.0.0.1", 7878)?;
//! c.login(Name::new("alice")?, "secret", LoginOptions::default(), t)?;
//! let ack = c.send(Target::Room, "hello", t)?;
//! println!("stored as {}", ack.id);
//! while let Some(event) = c.next_event(t)? {
//!     if let Event::Message(m) = event {
//!         println!("{}: {}", m.sender, m.body);
//!     }
//! }
//! # Ok(())
//! # }
//! ```

pub mod address;
pub mod connection;
mod io_error;
pub mod json;
pub mod roster;
pub mod session;
pub mod tls;
pub mod token_file;

pub use connection::{connect, Ack, Connection, ConnectionError, DeviceLogin, Security};
pub use roster::Roster;
pub use session::{
    ApiMisuse, Error, Event, HistoryPage, Login2Options, LoginOptions, Message, Outbox, Phase,
    Request, ServerError, ServerHello, Session, Unacked,
};
