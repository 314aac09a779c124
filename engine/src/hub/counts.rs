//! What the hub did, counted from its start as plain numbers, for the
//! shell to export (`/metrics`): logins by outcome, refusals by error
//! code, messages committed and delivered by conversation kind, and
//! messages dropped for slow consumers. The engine keeps no clock and
//! exports nothing itself.

use crate::event::Event;
use crate::frame::{ErrorCode, Target};
use crate::shared::Outgoing;

use super::Hub;

/// The highest error code counted one by one; higher ones count as this.
const CODES: usize = 64;

/// The kinds of conversation, in [`HubCounts`]' arrays.
pub const KINDS: [&str; 3] = ["room", "group", "direct"];

/// The hub's counters (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubCounts {
    /// Logins (LOGIN and LOGIN2) that succeeded.
    pub logins_ok: u64,
    /// Logins refused, by error code number.
    pub logins_refused: [u64; CODES],
    /// ERRORs sent, by error code number (rate limits, floods, ...).
    pub errors: [u64; CODES],
    /// Messages committed, by [`KINDS`].
    pub committed: [u64; 3],
    /// Messages handed to writers, by [`KINDS`].
    pub delivered: [u64; 3],
    /// Messages dropped from slow readers' queues (reported by MISSED).
    pub dropped: u64,
}

impl Default for HubCounts {
    fn default() -> HubCounts {
        HubCounts {
            logins_ok: 0,
            logins_refused: [0; CODES],
            errors: [0; CODES],
            committed: [0; 3],
            delivered: [0; 3],
            dropped: 0,
        }
    }
}

/// The index of `code` in the arrays.
pub fn code_index(code: ErrorCode) -> usize {
    usize::from(code.to_u16()).min(CODES - 1)
}

/// The index of `target`'s kind in [`KINDS`].
pub(super) fn kind(target: &Target) -> usize {
    match target {
        Target::Room => 0,
        Target::Group(_) => 1,
        Target::User(_) => 2,
    }
}

impl Hub {
    /// The counters so far.
    pub fn counts(&self) -> &HubCounts {
        &self.counts
    }

    /// Counts what one drain handed over.
    pub(super) fn count_drained(&mut self, out: &[Outgoing]) {
        for o in out {
            match o.event() {
                Event::Message(m) => self.counts.delivered[kind(&m.target)] += 1,
                Event::Missed { count, .. } => self.counts.dropped += u64::from(*count),
                _ => {}
            }
        }
    }
}
