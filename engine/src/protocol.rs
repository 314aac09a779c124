//! The seam between the hub and a wire protocol.
//!
//! A front end is a [`Codec`]: it takes requests off the front of a
//! connection's input and encodes events for it. The hub holds one codec
//! per [`Protocol`] and knows nothing else of any protocol: the confab
//! binary codec ([`crate::wire::Confab`]) is protocol 0, and a gateway adds
//! its own with [`crate::Hub::add_protocol`]. Every size the hub budgets (a
//! queue's bytes, a history page that must fit one frame, a roster chunk,
//! a request's charge) is asked of the codec, so a protocol with longer
//! encodings is held to the same limits in its own bytes.

use std::fmt;

use crate::effect::StoredMessage;
use crate::error::ProtocolError;
use crate::event::Event;
use crate::name::Name;
use crate::request::Request;

/// Protocols a hub can speak at once (see [`crate::Hub::add_protocol`]):
/// confab's and the IRC gateway's five tag sets.
pub const MAX_PROTOCOLS: usize = 6;

/// A protocol the hub speaks: an index into its codecs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Protocol(u8);

impl Protocol {
    /// The confab binary protocol, which every hub speaks.
    pub const CONFAB: Protocol = Protocol(0);

    pub(crate) fn new(index: usize) -> Option<Protocol> {
        (index < MAX_PROTOCOLS).then_some(Protocol(index as u8))
    }

    #[inline]
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

/// What [`Codec::decode`] found at the front of the input.
#[derive(Debug)]
pub enum Decoded<'a> {
    /// Not a whole request yet: wait for more bytes.
    Incomplete,
    /// A request, `len` bytes long.
    Request(Request<'a>, usize),
    /// `len` bytes the protocol skips (a frame type this server does not
    /// know), paid for like a request, and answered with the error.
    Skipped(usize, ProtocolError),
    /// `len` bytes of something well-formed that no client may send (a
    /// server's frame), paid for like a request and refused as out of
    /// place in any state; `name` is its name for the refusal.
    NotARequest(usize, &'static str),
    /// The input cannot be read on: the session is closed with this error.
    Fatal(ProtocolError),
}

/// A wire protocol's front end (see the module docs). Must be cheap to
/// call: `decode` runs for every request, `encoded_len` for every event
/// queued.
pub trait Codec: Send + Sync + fmt::Debug {
    /// Takes one request off the front of `input`; a request longer than
    /// `max_len` bytes is [`Decoded::Fatal`].
    fn decode<'a>(&self, input: &'a [u8], max_len: u32) -> Decoded<'a>;
    /// Appends the event's encoding to `out`.
    fn encode(&self, event: &Event, out: &mut Vec<u8>);
    /// The length `encode` would append.
    fn encoded_len(&self, event: &Event) -> usize;
    /// The bytes one entry adds to an [`Event::HistoryPage`].
    fn history_entry_len(&self, message: &StoredMessage) -> usize;
    /// The bytes one user adds to an [`Event::RosterSnapshot`].
    fn roster_entry_len(&self, user: &Name) -> usize;
    /// Whether a session that said `version` is told of `event` at all
    /// (an event its version has no frame for is not queued for it).
    fn tells(&self, event: &Event, version: u16) -> bool {
        let _ = (event, version);
        true
    }
}
