//! The blocking threads that carry out the engine's slow effects: the
//! password pool ([`auth`]) and the storage writer and readers
//! ([`storage`]). Each takes jobs from a queue of its own ([`queue`] for
//! storage, `auth_queue.rs` for the pool) and hands its results to a
//! [`crate::inbox::Results`]; none of them touches the hub or its lock.

use confab_engine::ProtocolError;
use log::error;

use crate::store::StoreError;

pub(crate) mod auth;
pub(crate) mod queue;
mod refusals;
pub(crate) mod storage;

/// The refusal for a storage failure, logged at error level.
pub(crate) fn storage_failed(doing: &str, e: &StoreError) -> ProtocolError {
    error!("storage failed while {doing}: {e}");
    ProtocolError::Storage(e.to_string())
}
