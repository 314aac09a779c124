//! The confab protocol engine, sans I/O.
//!
//! This crate is the whole of confab's protocol: the [`Hub`] that owns the
//! sessions, the room, the groups and the roster and routes between them;
//! the protocol-neutral [`Request`]s it takes and [`Event`]s it queues; the
//! [`Codec`] trait a wire protocol's front end implements; and the confab
//! binary protocol ([`wire`]) with its front end ([`confab`]).
//!
//! It does no I/O: no sockets, no files, no threads, no clock, no async
//! runtime. Bytes, requests and the current time come in as arguments;
//! encoded events, the next deadline and effects for the shell (check
//! this password, commit this message, load that history) come out as
//! values. That keeps it deterministic, so property tests drive it with a
//! fake clock and fuzzers drive it with arbitrary bytes.
//!
//! # The run loop
//!
//! A shell (confab-net's server, or a test) drives it like this:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use confab_engine::{Config, Hub, MessageId, Output, Protocol, Source};
//! use confab_engine::frame::{Frame, Text, PROTOCOL_VERSION};
//!
//! let mut hub = Hub::new(Config::default(), [], MessageId(0));
//! let now = Instant::now();
//! let conn = hub.connect(now, Source(1), Protocol::CONFAB);
//! // Bytes from the socket go in; what is not consumed is kept for later.
//! let hello = Frame::Hello { version: PROTOCOL_VERSION, client: Text::new("doc").unwrap() }.to_bytes();
//! let used = hub.handle_bytes(now, conn, &hello);
//! assert_eq!(used, hello.len());
//! // After every call that feeds the hub, drain its outputs.
//! while let Some(out) = hub.poll_output() {
//!     match out {
//!         Output::Wake(c) => {
//!             // The writer of `c` drains the queue and writes the frames.
//!             let mut frames = Vec::new();
//!             hub.drain(c, &mut frames, 64 * 1024);
//!             assert!(!frames.is_empty());
//!         }
//!         Output::Effect(_effect) => {
//!             // Run it, then hub.handle_result(now, ..); a committed
//!             // message also goes to hub.handle_committed(now, ..).
//!         }
//!     }
//! }
//! // Timers: call handle_timeout at the deadline.
//! if let Some(t) = hub.poll_timeout(conn) {
//!     assert!(t > now);
//!     hub.handle_timeout(t, conn);
//! }
//! ```
#![warn(missing_docs)]

mod bucket;
pub mod confab;
pub mod config;
pub mod device;
pub mod effect;
pub mod error;
pub mod event;
pub mod hub;
pub mod id;
pub mod irc;
pub mod lockout;
pub mod message_kind;
pub mod name;
pub mod password;
pub mod protocol;
pub mod registrations;
pub mod remote;
pub mod request;
pub mod room_log;
mod roster;
pub mod seat;
mod send_queue;
pub mod session;
pub mod shared;
pub mod source_net;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod window;
pub mod wire;

pub use wire::{codec, frame};

pub use codec::{decode, DecodeError};
pub use confab::Confab;
pub use config::{Config, ConfigError};
pub use device::{ClientId, DeviceId, Token};
pub use effect::{Effect, EffectResult, Input};
pub use error::ProtocolError;
pub use event::Event;
pub use frame::{Frame, Target};
pub use hub::{
    Drained, Hub, HubCounts, HubStats, Output, ReadReady, Refused, Sanction, TurnedAway,
};
pub use id::{ConnId, MessageId, Ref, RosterVersion, Source};
pub use message_kind::{ClientTags, MessageKind};
pub use name::{Name, NameError};
pub use password::Password;
pub use protocol::{Codec, Decoded, Protocol, MAX_PROTOCOLS};
pub use registrations::RegistrationLimit;
pub use remote::Remote;
pub use request::{GroupRequest, Request};
pub use send_queue::Class;
pub use session::{CloseReason, Phase};
pub use shared::{Outgoing, Shared};
pub use source_net::SourceNet;

#[cfg(test)]
mod tests;
