//! The ids the engine hands out and the wire carries.
//!
//! Each is its own type, not an alias of an integer, so that a message id
//! cannot be passed where a request reference or a roster version is
//! expected: all three are plain numbers on the wire, and mixing them up
//! would type-check as integers and go wrong silently. The codec wraps and
//! unwraps them at the edge; the encoding is the bare integer, unchanged.

use std::fmt;
use std::num::ParseIntError;
use std::str::FromStr;

/// A connection's handle. Handles are never reused while the hub lives: a
/// result for a connection that has gone is recognised and dropped.
///
/// The invariant is kept by the pair: the slot `index` is reused once the
/// connection is gone, but with the slot's next `generation`, so an old
/// handle never matches the new occupant. Only the hub makes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    index: u32,
    generation: u32,
}

impl ConnId {
    /// The handle of slot `index` in its `generation`; for the hub.
    pub(crate) fn new(index: u32, generation: u32) -> ConnId {
        ConnId { index, generation }
    }

    /// The connection's slot: small, dense, and reused once the connection
    /// is gone (with a new generation), so a shell can keep per-connection
    /// state in a `Vec` indexed by it instead of a map keyed by the id.
    pub fn index(self) -> usize {
        self.index as usize
    }

    /// Which use of the slot this handle names.
    pub(crate) fn generation(self) -> u32 {
        self.generation
    }

    #[cfg(test)]
    pub(crate) fn for_test(index: u32) -> ConnId {
        ConnId::new(index, 0)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.index, self.generation)
    }
}

/// A client-chosen number that the server echoes in the answer to a request
/// (ack, ok or error), so a client can match answers to requests. `0` is
/// allowed but means "I will not match this". The server never interprets
/// it beyond echoing it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ref(pub u32);

/// A server-assigned message id. Ids are positive and strictly increasing in
/// the order the server commits messages, across all conversations, so "I
/// have everything up to id N" is a complete description of what a client has.
/// [`MessageId::ZERO`] is no message: "none yet" or "from the newest".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub u64);

impl MessageId {
    /// No message: in a LOGIN "I have none", in a HISTORY_REQUEST "from the
    /// newest". Every real id is above it.
    pub const ZERO: MessageId = MessageId(0);

    /// The number on the wire.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The id after this one.
    pub fn next(self) -> MessageId {
        MessageId(self.0 + 1)
    }
}

/// A version of the roster (who is online). Every change bumps it by one;
/// a session that has applied version `v` needs exactly the deltas `v + 1`
/// onwards, or a fresh snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RosterVersion(pub u64);

impl RosterVersion {
    /// The number on the wire.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The version after this one.
    pub fn next(self) -> RosterVersion {
        RosterVersion(self.0 + 1)
    }
}

macro_rules! number {
    ($t:ident, $n:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $t {
            type Err = ParseIntError;
            fn from_str(s: &str) -> Result<$t, ParseIntError> {
                s.parse::<$n>().map($t)
            }
        }
    };
}

number!(Ref, u32);
number!(MessageId, u64);
number!(RosterVersion, u64);

/// An opaque key for the peer's source address: the shell maps addresses to
/// it (the engine does no networking), and the hub counts sessions per key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Source(pub u128);
