//! The [`Store`] on PostgreSQL, for several nodes serving one chat system
//! (`--store postgres://...`, docs/SCALING.md).
//!
//! Why the sync `postgres` crate: the storage threads are blocking threads
//! already (rusqlite's), so a blocking client fits them as it is; it runs
//! its own small runtime inside, on the storage thread, and nothing of it
//! reaches the smol executor. Each thread opens its own connection (the
//! [`crate::StoreFactory`] is called once per thread).
//!
//! Everything durable is here: accounts, devices, groups with their roles
//! and mutes, history, the exactly-once records, read markers, sanctions,
//! address bans and the audit log, and the message id counter (see
//! [`schema`]). A commit takes the counter's
//! row lock first, so the commits of all nodes are serialised in id order
//! (one lock per group commit, not per message), and a SEND2 key that two
//! nodes try at once is decided by whichever commits first.
//!
//! A lost connection (PostgreSQL restarted or unreachable) fails the call
//! with [`StoreError::Failed`] (the hub answers `STORAGE_ERROR`: nothing is
//! acknowledged that was not committed) and the next call connects again.

mod address_bans;
mod connect;
mod group_roles;
mod messages;
mod moderation;
mod schema;

use confab_engine::device::DeviceId;
use confab_engine::effect::{
    DeviceRecord, HistoryLoaded, Latest, ModerationRecord, ReplayLoaded, ReplayScope, StoredMessage,
};
use confab_engine::frame::Target;
use confab_engine::window::Range;
use confab_engine::{MessageId, Name};
use connect::{connect, open_failed};
use postgres::{Client, Row};

use super::{Account, Loaded, Retention, Store, StoreError, StoredDevice, Write, Written};

/// A PostgreSQL store: one connection, opened again after it is lost.
pub struct PgStore {
    url: String,
    client: Option<Client>,
    /// The node whose commits this store writes (see [`PgStore::for_node`]).
    node: i64,
    /// When a transaction last began: a connection idle for longer than
    /// [`IDLE_CHECK`] is checked first (one round trip), so that a
    /// restart of PostgreSQL meanwhile costs no write its answer; back to
    /// back commits (group commit under load) skip the check.
    used: std::time::Instant,
}

/// See [`PgStore::used`].
const IDLE_CHECK: std::time::Duration = std::time::Duration::from_millis(50);

fn failed(doing: &'static str) -> impl Fn(postgres::Error) -> StoreError {
    move |e| StoreError::Failed {
        doing,
        reason: describe(&e),
    }
}

/// The error with its database cause (`postgres::Error`'s own text is
/// only "db error").
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{e}: {}", db.message()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

pub(super) fn sat_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn sat_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A stored name; one that is not a valid name (written by hand) is a
/// storage failure, not a panic.
pub(super) fn name_of(s: &str) -> Result<Name, StoreError> {
    Name::new(s).map_err(|e| StoreError::Failed {
        doing: "reading a name",
        reason: format!("{s:?}: {e}"),
    })
}

/// The registered spelling of `user`, if there is such an account.
pub(super) fn account_name(
    tx: &mut impl postgres::GenericClient,
    user: &Name,
) -> Result<Option<Name>, StoreError> {
    let row = tx
        .query_opt(
            "SELECT name FROM accounts WHERE name_key = $1",
            &[&user.key().as_str()],
        )
        .map_err(failed("reading an account"))?;
    row.map(|r| name_of(r.get(0))).transpose()
}

/// The wall clock, in ms since the Unix epoch (what a mute's time left
/// is counted from when a node loads it).
pub(super) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl PgStore {
    /// Connects to `url` (a `postgres://` URL or key=value conninfo) and
    /// creates the schema if absent.
    pub fn open(url: &str) -> Result<PgStore, StoreError> {
        let mut store = PgStore {
            url: url.to_owned(),
            client: None,
            node: 0,
            used: std::time::Instant::now(),
        };
        let client = store.client()?;
        let mut tx = client.transaction().map_err(open_failed(url))?;
        schema::bring_up(&mut tx).map_err(|reason| StoreError::Open {
            path: connect::redact(url),
            reason,
        })?;
        tx.commit().map_err(open_failed(url))?;
        Ok(store)
    }

    /// This store's commits name `node` (a cluster node's id).
    pub fn for_node(mut self, node: u64) -> PgStore {
        self.node = node as i64;
        self
    }

    /// The connection, opened again if it was lost.
    fn client(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = None;
            let client = connect(&self.url)?;
            self.client = Some(client);
        }
        self.client.as_mut().ok_or_else(|| StoreError::Failed {
            doing: "connecting",
            reason: "no connection".into(),
        })
    }

    /// Every message with an id from `next` on (at most `limit`, oldest
    /// first), and the counter: every id up to it is committed, so an id
    /// at most the counter that is not among them was deleted (retention).
    /// What a node fetches for the ids the bus did not bring; each with
    /// whether this store's node committed it.
    pub fn committed_from(
        &mut self,
        next: MessageId,
        limit: i64,
    ) -> Result<(MessageId, Vec<(StoredMessage, bool)>), StoreError> {
        let node = self.node;
        self.read(|c| messages::committed_from(c, next, limit, node))
    }

    /// The newest committed id.
    pub fn last_id(&mut self) -> Result<MessageId, StoreError> {
        let row = self.read(|c| {
            c.query_one("SELECT last_id FROM counter", &[])
                .map_err(failed("reading the counter"))
        })?;
        Ok(MessageId(sat_u64(row.get(0))))
    }

    /// This database's cluster id (see [`schema`]).
    pub fn cluster_id(&mut self) -> Result<String, StoreError> {
        let row = self
            .client()?
            .query_one("SELECT id FROM cluster", &[])
            .map_err(failed("reading the cluster id"))?;
        Ok(row.get(0))
    }

    /// Runs a read; one that failed because the connection was found
    /// dead (PostgreSQL restarted since its last use) runs again on a
    /// new one, so a restart costs no reader its answer.
    fn read<T>(
        &mut self,
        f: impl Fn(&mut Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match f(self.client()?) {
            Err(_) if self.client.as_ref().is_none_or(Client::is_closed) => {
                self.client = None;
                f(self.client()?)
            }
            r => r,
        }
    }

    /// Starts a transaction; an idle connection found dead before BEGIN
    /// (nothing of the transaction was sent) is replaced.
    fn begin(&mut self, doing: &'static str) -> Result<postgres::Transaction<'_>, StoreError> {
        let idle = self.used.elapsed() >= IDLE_CHECK;
        self.used = std::time::Instant::now();
        if idle && self.client()?.simple_query("").is_err() {
            self.client = None;
        }
        self.client()?.transaction().map_err(failed(doing))
    }

    /// Runs `f` in one transaction, committed if it succeeds.
    pub(super) fn transaction<T>(
        &mut self,
        doing: &'static str,
        f: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let outcome = (|| {
            let mut tx = self.begin(doing)?;
            let out = f(&mut tx)?;
            tx.commit().map_err(failed(doing))?;
            Ok(out)
        })();
        if outcome.is_err() {
            // Whatever failed, the next call starts on a fresh connection.
            self.client = None;
        }
        outcome
    }
}

fn device_from_row(r: &Row) -> Result<StoredDevice, StoreError> {
    let hash: Option<Vec<u8>> = r.get(5);
    Ok(StoredDevice {
        record: DeviceRecord {
            id: DeviceId(sat_u64(r.get(0))),
            name: name_of(r.get(1))?,
            created_ms: sat_u64(r.get(2)),
            last_seen_ms: sat_u64(r.get(3)),
        },
        user: name_of(r.get(4))?,
        token_hash: hash.and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok()),
        bookmark: MessageId(sat_u64(r.get(6))),
    })
}

const DEVICE_COLUMNS: &str =
    "id, name, created_ms, last_seen_ms, user_name, token_hash, bookmark FROM devices";

impl Store for PgStore {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        let last_id = self.last_id()?;
        let rows = self
            .client()?
            .query(
                "SELECT g.name, m.name FROM groups g LEFT JOIN members m ON m.group_key = g.name_key
                 ORDER BY g.name_key, m.user_key",
                &[],
            )
            .map_err(failed("loading groups"))?;
        let mut groups: Vec<(Name, Vec<Name>)> = Vec::new();
        for r in &rows {
            let group = name_of(r.get(0))?;
            if groups.last().is_none_or(|(g, _)| g.key() != group.key()) {
                groups.push((group, Vec::new()));
            }
            if let (Some(member), Some((_, members))) =
                (r.get::<_, Option<&str>>(1), groups.last_mut())
            {
                members.push(name_of(member)?);
            }
        }
        let client = self.client()?;
        let roles = group_roles::roles(client)?;
        let group_mutes = group_roles::mutes(client, now_ms())?;
        Ok(Loaded {
            last_id,
            groups,
            roles,
            group_mutes,
        })
    }

    fn account(&mut self, user: &Name) -> Result<Option<Account>, StoreError> {
        let row = self.read(|c| {
            c.query_opt(
                "SELECT name, hash FROM accounts WHERE name_key = $1",
                &[&user.key().as_str()],
            )
            .map_err(failed("reading an account"))
        })?;
        row.map(|r| {
            Ok(Account {
                name: name_of(r.get(0))?,
                password_hash: r.get(1),
            })
        })
        .transpose()
    }

    fn create_account(&mut self, user: &Name, password_hash: &str) -> Result<bool, StoreError> {
        let created = self.create_accounts(&[(*user, password_hash.to_owned())])?;
        Ok(created.first() == Some(&true))
    }

    fn create_accounts(&mut self, accounts: &[(Name, String)]) -> Result<Vec<bool>, StoreError> {
        self.transaction("creating accounts", |tx| {
            let insert = tx
                .prepare(
                    "INSERT INTO accounts (name_key, name, hash, history_from)
                     VALUES ($1, $2, $3, (SELECT last_id FROM counter))
                     ON CONFLICT DO NOTHING",
                )
                .map_err(failed("creating accounts"))?;
            accounts
                .iter()
                .map(|(user, hash)| {
                    tx.execute(&insert, &[&user.key().as_str(), &user.as_str(), hash])
                        .map(|n| n == 1)
                        .map_err(failed("creating accounts"))
                })
                .collect()
        })
    }

    fn set_password(&mut self, user: &Name, password_hash: &str) -> Result<bool, StoreError> {
        self.client()?
            .execute(
                "UPDATE accounts SET hash = $2 WHERE name_key = $1",
                &[&user.key().as_str(), &password_hash],
            )
            .map(|n| n == 1)
            .map_err(failed("setting a password"))
    }

    fn delete_account(&mut self, user: &Name) -> Result<bool, StoreError> {
        let key = user.key();
        self.transaction("deleting an account", |tx| {
            tx.execute("DELETE FROM members WHERE user_key = $1", &[&key.as_str()])
                .map_err(failed("deleting an account"))?;
            // Its group roles and mutes too: a name registered again later
            // is someone else.
            group_roles::forget(tx, None, user)?;
            tx.execute("DELETE FROM accounts WHERE name_key = $1", &[&key.as_str()])
                .map(|n| n == 1)
                .map_err(failed("deleting an account"))
        })
    }

    fn accounts(&mut self) -> Result<Vec<Name>, StoreError> {
        let rows = self
            .client()?
            .query("SELECT name FROM accounts ORDER BY name_key", &[])
            .map_err(failed("listing accounts"))?;
        rows.iter().map(|r| name_of(r.get(0))).collect()
    }

    fn commit(&mut self, batch: &[Write], now_ms: u64) -> Result<Vec<Written>, StoreError> {
        let node = self.node;
        self.transaction("committing", |tx| messages::commit(tx, batch, now_ms, node))
    }

    fn history_range(
        &mut self,
        user: &Name,
        target: &Target,
        range: &Range,
        newest: bool,
        limit: u16,
    ) -> Result<HistoryLoaded, StoreError> {
        self.read(|c| messages::history_range(c, user, target, range, newest, limit))
    }

    fn history_targets(
        &mut self,
        user: &Name,
        groups: &[Name],
        between: (u64, u64),
        limit: u16,
    ) -> Result<Vec<Latest>, StoreError> {
        self.read(|c| messages::history_targets(c, user, groups, between, limit))
    }

    fn replay(
        &mut self,
        user: &Name,
        scope: &ReplayScope,
        upto: MessageId,
        max: usize,
    ) -> Result<ReplayLoaded, StoreError> {
        self.read(|c| messages::replay(c, user, scope, upto, max))
    }

    fn device_by_token(&mut self, hash: &[u8; 32]) -> Result<Option<StoredDevice>, StoreError> {
        let sql = format!("SELECT {DEVICE_COLUMNS} WHERE token_hash = $1");
        let row = self.read(|c| {
            c.query_opt(&sql, &[&hash.as_slice()])
                .map_err(failed("reading a device"))
        })?;
        row.as_ref().map(device_from_row).transpose()
    }

    fn device_by_name(
        &mut self,
        user: &Name,
        device: &Name,
    ) -> Result<Option<StoredDevice>, StoreError> {
        let sql = format!("SELECT {DEVICE_COLUMNS} WHERE user_key = $1 AND name_key = $2");
        let row = self.read(|c| {
            c.query_opt(&sql, &[&user.key().as_str(), &device.key().as_str()])
                .map_err(failed("reading a device"))
        })?;
        row.as_ref().map(device_from_row).transpose()
    }

    fn create_device(
        &mut self,
        user: &Name,
        device: &Name,
        token_hash: Option<[u8; 32]>,
        now_ms: u64,
    ) -> Result<StoredDevice, StoreError> {
        let sql = format!(
            "INSERT INTO devices (user_key, user_name, name, name_key, created_ms, last_seen_ms, token_hash)
             SELECT $1, COALESCE((SELECT name FROM accounts WHERE name_key = $1), $2), $3, $4, $5, $5, $6
             RETURNING {}",
            DEVICE_COLUMNS.trim_end_matches(" FROM devices")
        );
        let hash = token_hash.map(|h| h.to_vec());
        let row = self
            .client()?
            .query_one(
                &sql,
                &[
                    &user.key().as_str(),
                    &user.as_str(),
                    &device.as_str(),
                    &device.key().as_str(),
                    &sat_i64(now_ms),
                    &hash,
                ],
            )
            .map_err(failed("creating a device"))?;
        device_from_row(&row)
    }

    fn set_device_token(
        &mut self,
        device: DeviceId,
        token_hash: Option<[u8; 32]>,
    ) -> Result<(), StoreError> {
        let hash = token_hash.map(|h| h.to_vec());
        self.client()?
            .execute(
                "UPDATE devices SET token_hash = $2 WHERE id = $1",
                &[&sat_i64(device.0), &hash],
            )
            .map(drop)
            .map_err(failed("replacing a device token"))
    }

    fn touch_device(&mut self, device: DeviceId, now_ms: u64) -> Result<(), StoreError> {
        self.client()?
            .execute(
                "UPDATE devices SET last_seen_ms = $2 WHERE id = $1",
                &[&sat_i64(device.0), &sat_i64(now_ms)],
            )
            .map(drop)
            .map_err(failed("recording a device's login"))
    }

    fn devices(&mut self, user: &Name) -> Result<Vec<DeviceRecord>, StoreError> {
        let sql = format!("SELECT {DEVICE_COLUMNS} WHERE user_key = $1 ORDER BY name_key");
        let rows = self
            .client()?
            .query(&sql, &[&user.key().as_str()])
            .map_err(failed("listing devices"))?;
        rows.iter()
            .map(|r| device_from_row(r).map(|d| d.record))
            .collect()
    }

    fn revoke_device(
        &mut self,
        user: &Name,
        device: &Name,
    ) -> Result<Option<DeviceId>, StoreError> {
        let (user, device) = (user.key(), device.key());
        self.transaction("revoking a device", |tx| {
            let row = tx
                .query_opt(
                    "DELETE FROM devices WHERE user_key = $1 AND name_key = $2 RETURNING id",
                    &[&user.as_str(), &device.as_str()],
                )
                .map_err(failed("revoking a device"))?;
            let Some(row) = row else { return Ok(None) };
            let id: i64 = row.get(0);
            tx.execute("DELETE FROM sends WHERE device = $1", &[&id])
                .map_err(failed("revoking a device"))?;
            Ok(Some(DeviceId(sat_u64(id))))
        })
    }

    fn record_address_ban(
        &mut self,
        record: &confab_engine::effect::AddressBanRecord,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.record_address_ban_at(record, now_ms)
    }

    fn moderate(&mut self, record: &ModerationRecord, now_ms: u64) -> Result<(), StoreError> {
        self.record_moderation(record, now_ms)
    }

    fn audit_line(
        &mut self,
        line: &confab_engine::effect::AuditLine,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.record_audit_line(line, now_ms)
    }

    fn delete_message(
        &mut self,
        id: MessageId,
        by: &Name,
        reason: &str,
        now_ms: u64,
    ) -> Result<Option<StoredMessage>, StoreError> {
        let sql = format!(
            "UPDATE messages SET body = '', deleted_by = COALESCE(deleted_by, $2) WHERE id = $1
             RETURNING {}",
            messages::MESSAGE_COLUMNS
        );
        let (id, by_name) = (sat_i64(id.0), by.as_str());
        self.transaction("deleting a message", |tx| {
            let doing = "deleting a message";
            let Some(row) = tx.query_opt(&sql, &[&id, &by_name]).map_err(failed(doing))? else {
                return Ok(None);
            };
            tx.execute(
                "INSERT INTO audit (at_ms, actor, action, target, reason) VALUES ($1, $2, 'delete', $3, $4)",
                &[&sat_i64(now_ms), &by_name, &id.to_string(), &reason],
            )
            .map_err(failed(doing))?;
            messages::message_from_row(&row).map(Some)
        })
    }

    fn message(&mut self, id: MessageId) -> Result<Option<StoredMessage>, StoreError> {
        let sql = format!(
            "SELECT {} FROM messages WHERE id = $1",
            messages::MESSAGE_COLUMNS
        );
        let id = sat_i64(id.0);
        let row = self.read(|c| {
            c.query_opt(&sql, &[&id])
                .map_err(failed("reading a message"))
        })?;
        row.as_ref().map(messages::message_from_row).transpose()
    }

    fn revoke_devices(&mut self, user: &Name) -> Result<Vec<DeviceId>, StoreError> {
        let user = user.key();
        self.transaction("revoking devices", |tx| {
            let rows = tx
                .query(
                    "DELETE FROM devices WHERE user_key = $1 RETURNING id",
                    &[&user.as_str()],
                )
                .map_err(failed("revoking devices"))?;
            let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
            tx.execute("DELETE FROM sends WHERE device = ANY($1)", &[&ids])
                .map_err(failed("revoking devices"))?;
            Ok(ids.into_iter().map(|id| DeviceId(sat_u64(id))).collect())
        })
    }

    fn read_markers(
        &mut self,
        user: &Name,
        max: u16,
    ) -> Result<Vec<(Target, MessageId)>, StoreError> {
        self.read(|c| messages::read_markers(c, user, max))
    }

    fn prune_sends(&mut self, older_than_ms: u64, keep: u32) -> Result<u64, StoreError> {
        self.transaction("pruning send records", |tx| {
            let doing = "pruning send records";
            let old = tx
                .execute(
                    "DELETE FROM sends WHERE ts < $1",
                    &[&sat_i64(older_than_ms)],
                )
                .map_err(failed(doing))?;
            let extra = tx
                .execute(
                    "DELETE FROM sends s USING (SELECT device, client_id, row_number() OVER
                     (PARTITION BY device ORDER BY msg_id DESC) AS n FROM sends) x
                     WHERE s.device = x.device AND s.client_id = x.client_id AND x.n > $1",
                    &[&i64::from(keep)],
                )
                .map_err(failed(doing))?;
            Ok(old + extra)
        })
    }

    fn apply_retention(&mut self, retention: &Retention, now_ms: u64) -> Result<u64, StoreError> {
        self.transaction("applying retention", |tx| {
            let doing = "applying retention";
            let mut deleted = 0;
            if let Some(age) = retention.max_age_secs {
                let oldest = sat_i64(now_ms.saturating_sub(age.saturating_mul(1000)));
                deleted += tx
                    .execute("DELETE FROM messages WHERE ts < $1", &[&oldest])
                    .map_err(failed(doing))?;
            }
            if let Some(max) = retention.max_count {
                deleted += tx
                    .execute(
                        "DELETE FROM messages m USING (SELECT id, row_number() OVER
                         (PARTITION BY conv ORDER BY id DESC) AS n FROM messages) x
                         WHERE m.id = x.id AND x.n > $1",
                        &[&sat_i64(max)],
                    )
                    .map_err(failed(doing))?;
            }
            Ok(deleted)
        })
    }
}

#[cfg(test)]
mod tests;
