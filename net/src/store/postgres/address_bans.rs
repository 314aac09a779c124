//! Bans of address blocks on PostgreSQL (schema step 2), as on SQLite
//! (`sqlite/moderation.rs`): one row per block, by its canonical CIDR
//! text, replaced by a later ban of the same block; `until_ms` NULL for
//! good. An operator's BAN_ADDRESS (through the hub) and the command
//! line's `ban-address` / `unban-address` write them with an audit line;
//! each node reads the bans not yet ended at its start.

use confab_engine::effect::AddressBanRecord;

use super::moderation::audit_in;
use super::{failed, sat_i64, sat_u64, PgStore};
use crate::store::sqlite::StoredAddressBan;
use crate::store::StoreError;

impl PgStore {
    /// Bans the block `ban.net` (replacing an earlier ban of it), with its
    /// audit line, in one transaction.
    pub fn ban_address(&mut self, ban: &StoredAddressBan, actor: &str) -> Result<(), StoreError> {
        self.ban_address_at(ban, actor, super::now_ms())
    }

    fn ban_address_at(
        &mut self,
        ban: &StoredAddressBan,
        actor: &str,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        const DOING: &str = "banning an address";
        let now = sat_i64(now_ms);
        let until = ban.until_ms.map(sat_i64);
        self.transaction(DOING, |tx| {
            tx.execute(
                "INSERT INTO address_bans (net, until_ms, reason, by_whom, at_ms)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (net) DO UPDATE SET until_ms = $2, reason = $3, by_whom = $4,
                 at_ms = $5",
                &[&ban.net, &until, &ban.reason, &actor, &now],
            )
            .map_err(failed(DOING))?;
            audit_in(tx, now, actor, "ban-address", &ban.net, &ban.reason)
        })
    }

    /// Lifts the ban of exactly the block `net` (auditing it); whether
    /// there was one.
    pub fn lift_address(&mut self, net: &str, actor: &str) -> Result<bool, StoreError> {
        self.lift_address_at(net, actor, super::now_ms())
    }

    fn lift_address_at(&mut self, net: &str, actor: &str, now_ms: u64) -> Result<bool, StoreError> {
        const DOING: &str = "lifting an address ban";
        let now = sat_i64(now_ms);
        self.transaction(DOING, |tx| {
            let n = tx
                .execute("DELETE FROM address_bans WHERE net = $1", &[&net])
                .map_err(failed(DOING))?;
            audit_in(tx, now, actor, "unban-address", net, "")?;
            Ok(n == 1)
        })
    }

    /// The address bans not yet ended at `now_ms` (for a node's start).
    pub fn address_bans(&mut self, now_ms: u64) -> Result<Vec<StoredAddressBan>, StoreError> {
        let rows = self
            .client()?
            .query(
                "SELECT net, until_ms, reason FROM address_bans
                 WHERE until_ms IS NULL OR until_ms > $1 ORDER BY net",
                &[&sat_i64(now_ms)],
            )
            .map_err(failed("reading address bans"))?;
        Ok(rows
            .iter()
            .map(|r| StoredAddressBan {
                net: r.get(0),
                until_ms: r.get::<_, Option<i64>>(1).map(sat_u64),
                reason: r.get(2),
            })
            .collect())
    }

    /// An operator's BAN_ADDRESS from a client, at `now_ms`.
    pub(super) fn record_address_ban_at(
        &mut self,
        record: &AddressBanRecord,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let actor = record.actor.as_str();
        if record.lift {
            return self.lift_address_at(&record.block, actor, now_ms).map(drop);
        }
        let ban = StoredAddressBan {
            net: record.block.clone(),
            until_ms: (record.seconds > 0)
                .then(|| now_ms.saturating_add(u64::from(record.seconds) * 1000)),
            reason: record.reason.clone(),
        };
        self.ban_address_at(&ban, actor, now_ms)
    }
}
