//! Where the workers' results go.
//!
//! The password pool, the storage writer and the readers answer effects;
//! they hand each batch of answers to a [`Results`] inbox and know nothing
//! of what is behind it (the server's is [`crate::shared::Shared`], which
//! feeds the hub under its lock; a test's may just collect them). So the
//! workers depend on this trait only, and the hub's lock and counters stay
//! the shell's own.

use confab_engine::Input;

/// Takes the answers to effects (see the module docs).
pub(crate) trait Results: Send + Sync {
    /// Hands `results` (answers, and commits to route) to the hub in
    /// order, in one go: the writer's batch is one lock hold, so a batch's
    /// deliveries keep commit order.
    fn deliver(&self, results: Vec<Input>);
}
