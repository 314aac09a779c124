//! One event on its way to many sessions, and its encodings.
//!
//! The hub queues [`Shared`] events: each sits beside the encodings made
//! of it, one per protocol, made the first time a connection of that
//! protocol drains it. A room message to ten thousand sessions is one
//! allocation, encoded once for the confab codec and once for IRC, and
//! every queue holds the same `Arc`. A drain hands each writer the event
//! itself as an [`Outgoing`], which reads as that protocol's bytes: moving
//! it out of the queue touches no reference count, so a recipient costs a
//! broadcast one `Arc` clone (its push) and one release (its write).

use std::cell::RefCell;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use crate::event::Event;
use crate::protocol::{Codec, Protocol, MAX_PROTOCOLS};

/// An event and its encodings (see the module docs).
///
/// `repr(C)` keeps the encodings first, beside the `Arc`'s counts: a drain
/// and a writer read the first protocol's encoding in the cache line that
/// queueing the event already brought in.
#[derive(Debug)]
#[repr(C)]
pub struct Shared {
    encoded: [OnceLock<Box<[u8]>>; MAX_PROTOCOLS],
    event: Event,
}

impl Shared {
    /// A new shared event, not yet encoded.
    pub fn new(event: Event) -> Arc<Shared> {
        Arc::new(Shared {
            event,
            encoded: Default::default(),
        })
    }

    /// The event.
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// The length of the event in `protocol`'s encoding: the encoding's,
    /// once made, else asked of `codec` without encoding.
    #[inline]
    pub fn encoded_len(&self, protocol: Protocol, codec: &dyn Codec) -> u32 {
        let len = match self.encoded[protocol.index()].get() {
            Some(bytes) => bytes.len(),
            None => codec.encoded_len(&self.event),
        };
        u32::try_from(len).unwrap_or(u32::MAX)
    }

    /// The event in `protocol`'s encoding, made by `codec` on first demand.
    #[inline]
    pub fn encoded(&self, protocol: Protocol, codec: &dyn Codec) -> &[u8] {
        self.encoded[protocol.index()].get_or_init(|| encode_once(codec, &self.event))
    }
}

/// A shared event on its way to a writer, read as one protocol's bytes
/// (see the module docs). Made by [`crate::Hub::drain`], which encodes it
/// first, so it always derefs to the whole encoding.
#[derive(Clone, Debug)]
pub struct Outgoing {
    event: Arc<Shared>,
    protocol: Protocol,
}

impl Outgoing {
    /// The event it carries.
    pub fn event(&self) -> &Event {
        self.event.event()
    }

    /// `event` in `protocol`'s encoding, made by `codec` if not yet.
    #[inline]
    pub(crate) fn new(event: Arc<Shared>, protocol: Protocol, codec: &dyn Codec) -> Outgoing {
        event.encoded(protocol, codec);
        Outgoing { event, protocol }
    }

    /// Whether `self` and `other` are the same bytes: one encoding, shared.
    pub fn same_bytes(&self, other: &Outgoing) -> bool {
        std::ptr::eq(self.as_ptr(), other.as_ptr())
    }
}

impl Deref for Outgoing {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        self.event.encoded[self.protocol.index()]
            .get()
            .map_or(&[], |bytes| bytes)
    }
}

impl AsRef<[u8]> for Outgoing {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

/// Encodes into a per-thread scratch vector, then allocates the buffer
/// once at its exact length (encoding into a fresh vector grew it several
/// times, then shrinking copied it once more).
fn encode_once(codec: &dyn Codec, event: &Event) -> Box<[u8]> {
    thread_local! {
        static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    SCRATCH.with_borrow_mut(|scratch| {
        scratch.clear();
        codec.encode(event, scratch);
        let shared = Box::from(&scratch[..]);
        // A large event (a history page) does not pin its buffer.
        if scratch.capacity() > SCRATCH_KEEP {
            *scratch = Vec::new();
        }
        shared
    })
}

/// Scratch capacity kept between encodings.
const SCRATCH_KEEP: usize = 16 * 1024;
