//! Storage behind one interface: the [`Store`] trait and its types are
//! the engine's (`confab_engine::store`, re-exported here so that the
//! server's paths stay); this crate implements it on SQLite (`sqlite.rs`,
//! bundled, so a fresh machine needs nothing). The in-memory store for
//! tests is `confab_engine::testing::MemoryStore`.

pub(crate) mod group_moderation;
pub mod postgres;
pub mod sqlite;
#[cfg(test)]
mod tests_history_from;
#[cfg(test)]
mod tests_targets;

pub use confab_engine::store::{
    Account, CatchUp, Loaded, Retention, Store, StoreError, Stored, StoredDevice, Write, Written,
};

use confab_engine::Name;
use sqlite::{AuditEntry, SanctionKind, StoredAddressBan, StoredSanction};

/// What the operator's command line (`ops.rs`) writes, on either store:
/// each call is one transaction with its audit line.
pub trait Moderation: Store {
    /// Records a ban or mute (replacing one of the same kind).
    fn sanction(&mut self, sanction: &StoredSanction, actor: &str) -> Result<(), StoreError>;
    /// Lifts a ban or mute; whether there was one.
    fn lift(&mut self, kind: SanctionKind, user: &Name, actor: &str) -> Result<bool, StoreError>;
    /// Bans an address block (replacing an earlier ban of it).
    fn ban_address(&mut self, ban: &StoredAddressBan, actor: &str) -> Result<(), StoreError>;
    /// Lifts the ban of exactly the block `net`; whether there was one.
    fn lift_address(&mut self, net: &str, actor: &str) -> Result<bool, StoreError>;
    /// Appends a line to the audit log.
    fn audit(
        &mut self,
        actor: &str,
        action: &str,
        target: &str,
        reason: &str,
    ) -> Result<(), StoreError>;
    /// The newest `limit` lines of the audit log, oldest first.
    fn audit_log(&mut self, limit: u32) -> Result<Vec<AuditEntry>, StoreError>;
}

/// Both stores have these as inherent methods of the same names; the
/// trait names them for `ops.rs`.
macro_rules! moderation_by_inherent_methods {
    ($store:ty) => {
        impl Moderation for $store {
            fn sanction(
                &mut self,
                sanction: &StoredSanction,
                actor: &str,
            ) -> Result<(), StoreError> {
                <$store>::sanction(self, sanction, actor)
            }
            fn lift(
                &mut self,
                kind: SanctionKind,
                user: &Name,
                actor: &str,
            ) -> Result<bool, StoreError> {
                <$store>::lift(self, kind, user, actor)
            }
            fn ban_address(
                &mut self,
                ban: &StoredAddressBan,
                actor: &str,
            ) -> Result<(), StoreError> {
                <$store>::ban_address(self, ban, actor)
            }
            fn lift_address(&mut self, net: &str, actor: &str) -> Result<bool, StoreError> {
                <$store>::lift_address(self, net, actor)
            }
            fn audit(
                &mut self,
                actor: &str,
                action: &str,
                target: &str,
                reason: &str,
            ) -> Result<(), StoreError> {
                <$store>::audit(self, actor, action, target, reason)
            }
            fn audit_log(&mut self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
                <$store>::audit_log(self, limit)
            }
        }
    };
}

moderation_by_inherent_methods!(sqlite::SqliteStore);
moderation_by_inherent_methods!(postgres::PgStore);
