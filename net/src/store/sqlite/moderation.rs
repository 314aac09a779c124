//! Moderation on SQLite (migration 4 -> 5): server operators
//! (`accounts.operator`), bans and mutes (`sanctions`), and the audit log
//! (`audit`). The command line writes them, with or without a running
//! server (which it then tells through the control socket); the server
//! reads the sanctions in force at start.

use confab_engine::effect::ModerationRecord;
use confab_engine::frame::ModAction;
use confab_engine::Name;
use rusqlite::{params, OptionalExtension};

use super::{failed, now_ms, DbName, SqliteStore};
use crate::store::StoreError;

/// What a sanction does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SanctionKind {
    /// Logins are refused.
    Ban,
    /// SENDs are refused.
    Mute,
}

impl SanctionKind {
    fn as_str(self) -> &'static str {
        match self {
            SanctionKind::Ban => "ban",
            SanctionKind::Mute => "mute",
        }
    }
}

/// A ban or mute as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSanction {
    /// Ban or mute.
    pub kind: SanctionKind,
    /// The account, as named when sanctioned.
    pub name: Name,
    /// Its end, in ms since the Unix epoch; `None`: until lifted.
    pub until_ms: Option<u64>,
    /// Why.
    pub reason: String,
}

/// A ban of an address block as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAddressBan {
    /// The block, as canonical CIDR text (`10.0.0.0/8`).
    pub net: String,
    /// Its end, in ms since the Unix epoch; `None`: for good.
    pub until_ms: Option<u64>,
    /// Why.
    pub reason: String,
}

/// One line of the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// When, in ms since the Unix epoch.
    pub at_ms: u64,
    /// Who: an account, or `operator` for the command line.
    pub actor: String,
    /// What: `kick`, `ban`, `unban`, `mute`, `unmute`, `op`, `deop`, ...
    pub action: String,
    /// Whom.
    pub target: String,
    /// Why.
    pub reason: String,
}

fn ms_i64(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

impl SqliteStore {
    /// Makes `user` a server operator or not; `false` if there is no such
    /// account.
    pub fn set_operator(&mut self, user: &Name, operator: bool) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached("UPDATE accounts SET operator = ?2 WHERE name_key = ?1")
            .and_then(|mut s| s.execute(params![user.key().as_str(), i64::from(operator)]))
            .map(|n| n == 1)
            .map_err(failed("setting an operator"))
    }

    /// Whether `user` is a server operator.
    pub fn is_operator(&mut self, user: &Name) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached("SELECT operator FROM accounts WHERE name_key = ?1")
            .and_then(|mut s| {
                s.query_row([user.key().as_str()], |r| r.get::<_, i64>(0))
                    .optional()
            })
            .map(|o| o == Some(1))
            .map_err(failed("reading an operator"))
    }

    /// The server operators, by name.
    pub fn operators(&mut self) -> Result<Vec<Name>, StoreError> {
        self.conn
            .prepare_cached("SELECT name FROM accounts WHERE operator = 1 ORDER BY name_key")
            .and_then(|mut s| {
                s.query_map([], |r| r.get::<_, DbName>(0).map(|n| n.0))?
                    .collect()
            })
            .map_err(failed("listing operators"))
    }

    /// Records a ban or mute of `user` (replacing one of the same kind)
    /// and its audit line, in one transaction.
    pub fn sanction(&mut self, sanction: &StoredSanction, actor: &str) -> Result<(), StoreError> {
        let now = now_ms();
        let tx = self
            .conn
            .transaction()
            .map_err(failed("recording a sanction"))?;
        tx.execute(
            "INSERT OR REPLACE INTO sanctions (kind, name_key, name, until_ms, reason, by, at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                sanction.kind.as_str(),
                sanction.name.key().as_str(),
                sanction.name.as_str(),
                sanction.until_ms.map(ms_i64),
                sanction.reason,
                actor,
                now
            ],
        )
        .map_err(failed("recording a sanction"))?;
        audit_in(
            &tx,
            now,
            actor,
            sanction.kind.as_str(),
            sanction.name.as_str(),
            &sanction.reason,
        )
        .map_err(failed("recording a sanction"))?;
        tx.commit().map_err(failed("recording a sanction"))
    }

    /// Lifts `user`'s ban or mute (auditing it); whether there was one.
    pub fn lift(
        &mut self,
        kind: SanctionKind,
        user: &Name,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let tx = self
            .conn
            .transaction()
            .map_err(failed("lifting a sanction"))?;
        let n = tx
            .execute(
                "DELETE FROM sanctions WHERE kind = ?1 AND name_key = ?2",
                params![kind.as_str(), user.key().as_str()],
            )
            .map_err(failed("lifting a sanction"))?;
        let action = format!("un{}", kind.as_str());
        audit_in(&tx, now, actor, &action, user.as_str(), "")
            .map_err(failed("lifting a sanction"))?;
        tx.commit().map_err(failed("lifting a sanction"))?;
        Ok(n == 1)
    }

    /// Bans the address block `ban.net` (replacing an earlier ban of it),
    /// with its audit line.
    pub fn ban_address(&mut self, ban: &StoredAddressBan, actor: &str) -> Result<(), StoreError> {
        const DOING: &str = "banning an address";
        let now = now_ms();
        let tx = self.conn.transaction().map_err(failed(DOING))?;
        tx.prepare_cached(
            "INSERT OR REPLACE INTO address_bans (net, until_ms, reason, by, at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut s| {
            s.execute(params![
                ban.net,
                ban.until_ms.map(ms_i64),
                ban.reason,
                actor,
                now
            ])
        })
        .map_err(failed(DOING))?;
        audit_in(&tx, now, actor, "ban-address", &ban.net, &ban.reason).map_err(failed(DOING))?;
        tx.commit().map_err(failed(DOING))
    }

    /// Lifts the ban of exactly the block `net`; whether there was one.
    pub fn lift_address(&mut self, net: &str, actor: &str) -> Result<bool, StoreError> {
        const DOING: &str = "lifting an address ban";
        let now = now_ms();
        let tx = self.conn.transaction().map_err(failed(DOING))?;
        let n = tx
            .execute("DELETE FROM address_bans WHERE net = ?1", [net])
            .map_err(failed(DOING))?;
        audit_in(&tx, now, actor, "unban-address", net, "").map_err(failed(DOING))?;
        tx.commit().map_err(failed(DOING))?;
        Ok(n == 1)
    }

    /// The address bans not yet ended at `now_ms`.
    pub fn address_bans(&mut self, now_ms: u64) -> Result<Vec<StoredAddressBan>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT net, until_ms, reason FROM address_bans
                 WHERE until_ms IS NULL OR until_ms > ?1 ORDER BY net",
            )
            .and_then(|mut s| {
                s.query_map([ms_i64(now_ms)], |r| {
                    let until: Option<i64> = r.get(1)?;
                    Ok(StoredAddressBan {
                        net: r.get(0)?,
                        until_ms: until.map(|u| u.max(0) as u64),
                        reason: r.get(2)?,
                    })
                })?
                .collect()
            })
            .map_err(failed("reading address bans"))
    }

    /// The bans and mutes not yet ended at `now_ms`.
    pub fn sanctions(&mut self, now_ms: u64) -> Result<Vec<StoredSanction>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT kind, name, until_ms, reason FROM sanctions
                 WHERE until_ms IS NULL OR until_ms > ?1 ORDER BY kind, name_key",
            )
            .and_then(|mut s| {
                s.query_map([ms_i64(now_ms)], |r| {
                    let kind: String = r.get(0)?;
                    let until: Option<i64> = r.get(2)?;
                    Ok(StoredSanction {
                        kind: if kind == "ban" {
                            SanctionKind::Ban
                        } else {
                            SanctionKind::Mute
                        },
                        name: r.get::<_, DbName>(1)?.0,
                        until_ms: until.map(|u| u.max(0) as u64),
                        reason: r.get(3)?,
                    })
                })?
                .collect()
            })
            .map_err(failed("reading sanctions"))
    }

    /// An operator's MODERATE, from a client: the sanction (or its
    /// lifting) and the audit line, as the command line writes them.
    pub(super) fn record_moderation(
        &mut self,
        record: &ModerationRecord,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let actor = record.actor.as_str();
        let kind = match record.action {
            ModAction::Kick => {
                return self.audit(actor, "kick", record.target.as_str(), &record.reason)
            }
            ModAction::Unban => {
                return self
                    .lift(SanctionKind::Ban, &record.target, actor)
                    .map(drop)
            }
            ModAction::Unmute => {
                return self
                    .lift(SanctionKind::Mute, &record.target, actor)
                    .map(drop)
            }
            ModAction::Ban => SanctionKind::Ban,
            ModAction::Mute => SanctionKind::Mute,
        };
        let until_ms =
            (record.seconds > 0).then(|| now_ms.saturating_add(u64::from(record.seconds) * 1000));
        self.sanction(
            &StoredSanction {
                kind,
                name: record.target,
                until_ms,
                reason: record.reason.clone(),
            },
            actor,
        )
    }

    /// Appends a line to the audit log.
    pub fn audit(
        &mut self,
        actor: &str,
        action: &str,
        target: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        audit_in(&self.conn, now_ms(), actor, action, target, reason)
            .map_err(failed("writing the audit log"))
    }

    /// The newest `limit` lines of the audit log, oldest first.
    pub fn audit_log(&mut self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let mut entries: Vec<AuditEntry> = self
            .conn
            .prepare_cached(
                "SELECT at_ms, actor, action, target, reason FROM audit
                 ORDER BY id DESC LIMIT ?1",
            )
            .and_then(|mut s| {
                s.query_map([limit], |r| {
                    Ok(AuditEntry {
                        at_ms: r.get::<_, i64>(0)?.max(0) as u64,
                        actor: r.get(1)?,
                        action: r.get(2)?,
                        target: r.get(3)?,
                        reason: r.get(4)?,
                    })
                })?
                .collect()
            })
            .map_err(failed("reading the audit log"))?;
        entries.reverse();
        Ok(entries)
    }
}

pub(super) fn audit_in(
    conn: &rusqlite::Connection,
    now: i64,
    actor: &str,
    action: &str,
    target: &str,
    reason: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO audit (at_ms, actor, action, target, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![now, actor, action, target, reason])?;
    Ok(())
}
