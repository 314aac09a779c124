//! Moderation on PostgreSQL, as on SQLite (`sqlite/moderation.rs`):
//! server operators (`accounts.operator`), bans and mutes (`sanctions`)
//! and the audit log (`audit`), written by an operator's client (through
//! the hub) and by the command line (`ops.rs`, with `--store
//! postgres://...`); each node reads the sanctions and operators in force
//! at its start.

use confab_engine::effect::{AuditLine, ModerationRecord};
use confab_engine::frame::ModAction;
use confab_engine::Name;
use postgres::GenericClient;

use super::{failed, name_of, sat_i64, sat_u64, PgStore};
use crate::store::sqlite::{AuditEntry, SanctionKind, StoredSanction};
use crate::store::StoreError;

/// Appends a line to the audit log.
pub(super) fn audit_in(
    c: &mut impl GenericClient,
    now: i64,
    actor: &str,
    action: &str,
    target: &str,
    reason: &str,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO audit (at_ms, actor, action, target, reason) VALUES ($1, $2, $3, $4, $5)",
        &[&now, &actor, &action, &target, &reason],
    )
    .map(drop)
    .map_err(failed("writing the audit log"))
}

fn kind_text(kind: SanctionKind) -> &'static str {
    match kind {
        SanctionKind::Ban => "ban",
        SanctionKind::Mute => "mute",
    }
}

impl PgStore {
    /// The sanctions in force at `now_ms` (for a node's start).
    pub fn sanctions(&mut self, now_ms: u64) -> Result<Vec<StoredSanction>, StoreError> {
        let rows = self
            .client()?
            .query(
                "SELECT kind, name, until_ms, reason FROM sanctions
                 WHERE until_ms IS NULL OR until_ms > $1 ORDER BY kind, name_key",
                &[&sat_i64(now_ms)],
            )
            .map_err(failed("reading sanctions"))?;
        rows.iter()
            .map(|r| {
                // A kind this build does not know (written by hand, or by a
                // newer one) is a storage failure, never a ban by default.
                let kind = match r.get::<_, &str>(0) {
                    "mute" => SanctionKind::Mute,
                    "ban" => SanctionKind::Ban,
                    other => {
                        return Err(StoreError::Failed {
                            doing: "reading sanctions",
                            reason: format!("unknown sanction kind {other:?}"),
                        })
                    }
                };
                Ok(StoredSanction {
                    kind,
                    name: name_of(r.get(1))?,
                    until_ms: r.get::<_, Option<i64>>(2).map(sat_u64),
                    reason: r.get(3),
                })
            })
            .collect()
    }

    /// The server operators.
    pub fn operators(&mut self) -> Result<Vec<Name>, StoreError> {
        let rows = self
            .client()?
            .query(
                "SELECT name FROM accounts WHERE operator ORDER BY name_key",
                &[],
            )
            .map_err(failed("listing operators"))?;
        rows.iter().map(|r| name_of(r.get(0))).collect()
    }

    /// Makes `user` a server operator or not; whether the account exists.
    pub fn set_operator(&mut self, user: &Name, operator: bool) -> Result<bool, StoreError> {
        self.client()?
            .execute(
                "UPDATE accounts SET operator = $2 WHERE name_key = $1",
                &[&user.key().as_str(), &operator],
            )
            .map(|n| n == 1)
            .map_err(failed("setting an operator"))
    }

    /// Records a ban or mute of `sanction.name` (replacing one of the same
    /// kind) and its audit line, in one transaction.
    pub fn sanction(&mut self, sanction: &StoredSanction, actor: &str) -> Result<(), StoreError> {
        let now = sat_i64(super::now_ms());
        let kind = kind_text(sanction.kind);
        let until = sanction.until_ms.map(sat_i64);
        let name = sanction.name;
        self.transaction("recording a sanction", |tx| {
            tx.execute(
                "INSERT INTO sanctions (kind, name_key, name, until_ms, reason, by_whom, at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (kind, name_key) DO UPDATE SET name = $3, until_ms = $4,
                 reason = $5, by_whom = $6, at_ms = $7",
                &[
                    &kind,
                    &name.key().as_str(),
                    &name.as_str(),
                    &until,
                    &sanction.reason,
                    &actor,
                    &now,
                ],
            )
            .map_err(failed("recording a sanction"))?;
            audit_in(tx, now, actor, kind, name.as_str(), &sanction.reason)
        })
    }

    /// Lifts `user`'s ban or mute (auditing it); whether there was one.
    pub fn lift(
        &mut self,
        kind: SanctionKind,
        user: &Name,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let now = sat_i64(super::now_ms());
        let text = kind_text(kind);
        self.transaction("lifting a sanction", |tx| {
            let n = tx
                .execute(
                    "DELETE FROM sanctions WHERE kind = $1 AND name_key = $2",
                    &[&text, &user.key().as_str()],
                )
                .map_err(failed("lifting a sanction"))?;
            audit_in(tx, now, actor, &format!("un{text}"), user.as_str(), "")?;
            Ok(n == 1)
        })
    }

    /// Appends a line to the audit log, now.
    pub fn audit(
        &mut self,
        actor: &str,
        action: &str,
        target: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        let now = sat_i64(super::now_ms());
        audit_in(self.client()?, now, actor, action, target, reason)
    }

    /// The newest `limit` lines of the audit log, oldest first.
    pub fn audit_log(&mut self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = self
            .client()?
            .query(
                "SELECT at_ms, actor, action, target, reason FROM
                 (SELECT * FROM audit ORDER BY seq DESC LIMIT $1) a ORDER BY seq",
                &[&i64::from(limit)],
            )
            .map_err(failed("reading the audit log"))?;
        Ok(rows
            .iter()
            .map(|r| AuditEntry {
                at_ms: sat_u64(r.get(0)),
                actor: r.get(1),
                action: r.get(2),
                target: r.get(3),
                reason: r.get(4),
            })
            .collect())
    }

    /// An operator's MODERATE, from a client: the sanction (or its
    /// lifting) and the audit line, in one transaction.
    pub(super) fn record_moderation(
        &mut self,
        record: &ModerationRecord,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let actor = record.actor.as_str();
        let target = record.target;
        let (kind, action) = match record.action {
            ModAction::Kick => (None, "kick"),
            ModAction::Ban => (Some("ban"), "ban"),
            ModAction::Mute => (Some("mute"), "mute"),
            ModAction::Unban => (Some("ban"), "unban"),
            ModAction::Unmute => (Some("mute"), "unmute"),
        };
        let lifting = matches!(record.action, ModAction::Unban | ModAction::Unmute);
        let until = (record.seconds > 0)
            .then(|| sat_i64(now_ms.saturating_add(u64::from(record.seconds) * 1000)));
        let now = sat_i64(now_ms);
        self.transaction("recording a moderation", |tx| {
            let doing = "recording a moderation";
            match kind {
                Some(kind) if lifting => tx
                    .execute(
                        "DELETE FROM sanctions WHERE kind = $1 AND name_key = $2",
                        &[&kind, &target.key().as_str()],
                    )
                    .map_err(failed(doing))?,
                Some(kind) => tx
                    .execute(
                        "INSERT INTO sanctions (kind, name_key, name, until_ms, reason, by_whom, at_ms)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)
                         ON CONFLICT (kind, name_key) DO UPDATE SET name = $3, until_ms = $4,
                         reason = $5, by_whom = $6, at_ms = $7",
                        &[&kind, &target.key().as_str(), &target.as_str(), &until, &record.reason, &actor, &now],
                    )
                    .map_err(failed(doing))?,
                None => 0,
            };
            audit_in(tx, now, actor, action, target.as_str(), &record.reason)
        })
    }

    /// A line of the audit log from the hub (an announcement, ...).
    pub(super) fn record_audit_line(
        &mut self,
        line: &AuditLine,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        audit_in(
            self.client()?,
            sat_i64(now_ms),
            line.actor.as_str(),
            line.action,
            &line.target,
            &line.reason,
        )
    }
}
