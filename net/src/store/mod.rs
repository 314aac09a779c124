//! Storage behind one interface: the [`Store`] trait and its types are
//! the engine's (`confab_engine::store`, re-exported here so that the
//! server's paths stay); this crate implements it on SQLite (`sqlite.rs`,
//! bundled, so a fresh machine needs nothing). The in-memory store for
//! tests is `confab_engine::testing::MemoryStore`.

pub mod postgres;
pub mod sqlite;

pub use confab_engine::store::{
    Account, CatchUp, Loaded, Retention, Store, StoreError, Stored, StoredDevice, Write, Written,
};
