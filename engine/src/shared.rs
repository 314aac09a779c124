//! One event on its way to many sessions, and its encodings.
//!
//! The hub queues [`Shared`] events: each sits beside the encodings made
//! of it, one per protocol, made the first time a connection of that
//! protocol drains it. A room message to ten thousand sessions is one
//! allocation, encoded once for the confab codec and once for IRC, and
//! every queue holds the same `Arc`.

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

use crate::event::Event;
use crate::protocol::{Codec, Protocol, MAX_PROTOCOLS};

/// An event and its encodings (see the module docs).
#[derive(Debug)]
pub struct Shared {
    event: Event,
    encoded: [OnceLock<Arc<[u8]>>; MAX_PROTOCOLS],
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
    pub fn encoded_len(&self, protocol: Protocol, codec: &dyn Codec) -> u32 {
        let len = match self.encoded[protocol.index()].get() {
            Some(bytes) => bytes.len(),
            None => codec.encoded_len(&self.event),
        };
        u32::try_from(len).unwrap_or(u32::MAX)
    }

    /// The event in `protocol`'s encoding, made by `codec` on first demand.
    pub fn encoded(&self, protocol: Protocol, codec: &dyn Codec) -> &Arc<[u8]> {
        self.encoded[protocol.index()].get_or_init(|| encode_shared(codec, &self.event))
    }
}

/// Encodes into a per-thread scratch vector, then allocates the shared
/// buffer once at its exact length (encoding into a fresh vector grew it
/// several times, then `Arc::from` copied it once more).
fn encode_shared(codec: &dyn Codec, event: &Event) -> Arc<[u8]> {
    thread_local! {
        static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    SCRATCH.with_borrow_mut(|scratch| {
        scratch.clear();
        codec.encode(event, scratch);
        let shared = Arc::from(&scratch[..]);
        // A large event (a history page) does not pin its buffer.
        if scratch.capacity() > SCRATCH_KEEP {
            *scratch = Vec::new();
        }
        shared
    })
}

/// Scratch capacity kept between encodings.
const SCRATCH_KEEP: usize = 16 * 1024;
