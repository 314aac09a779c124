//! Ids by name, remembered between batches (bounded, and forgotten
//! when another connection commits).

use super::*;

/// Names and conversation ids that commits look up for every message,
/// remembered from one commit to the next: each costs a statement
/// otherwise, as much as the message's own insert.
///
/// Groups and conversations are created only by commits (the writer's) and
/// never deleted; accounts are created and deleted by other connections
/// too, so everything is forgotten whenever `PRAGMA data_version` says
/// another connection committed, and after a commit that failed (it may
/// have remembered rows it created and rolled back). Each map is bounded
/// by [`LOOKUPS_MAX`], and forgotten when full.
#[derive(Debug, Default)]
pub(super) struct Lookups {
    data_version: Option<i64>,
    /// Registered name by key.
    accounts: HashMap<NameKey, Name>,
    /// Name as created by key.
    groups: HashMap<NameKey, Name>,
    conversations: HashMap<ConvKey, i64>,
}

/// A conversation other than the room, by its parties' keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum ConvKey {
    Group(NameKey),
    /// The two keys, sorted.
    Direct(NameKey, NameKey),
}

impl ConvKey {
    pub(super) fn direct(a: &Name, b: &Name) -> ConvKey {
        let (a, b) = (a.key(), b.key());
        if a <= b {
            ConvKey::Direct(a, b)
        } else {
            ConvKey::Direct(b, a)
        }
    }

    /// The `conversations.key` (see the migrations' module docs).
    pub(super) fn text(&self) -> String {
        match self {
            ConvKey::Group(g) => format!("group:{}", g.as_str()),
            ConvKey::Direct(a, b) => format!("dm:{}:{}", a.as_str(), b.as_str()),
        }
    }
}

/// Most entries in each map of [`Lookups`].
pub(super) const LOOKUPS_MAX: usize = 1 << 16;

/// Remembers `v` under `k` in `map`, which is forgotten first when full.
pub(super) fn remember<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, k: K, v: V) {
    if map.len() >= LOOKUPS_MAX {
        map.clear();
    }
    map.insert(k, v);
}

impl Lookups {
    pub(super) fn forget(&mut self) {
        self.accounts.clear();
        self.groups.clear();
        self.conversations.clear();
    }

    /// Forgets everything if another connection committed since the last
    /// call; called in each write transaction.
    pub(super) fn revalidate(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let version: i64 = conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        if self.data_version != Some(version) {
            self.forget();
            self.data_version = Some(version);
        }
        Ok(())
    }

    /// The registered name of `user`'s account, if there is one.
    pub(super) fn account(
        &mut self,
        conn: &Connection,
        user: &Name,
    ) -> rusqlite::Result<Option<Name>> {
        if let Some(name) = self.accounts.get(&user.key()) {
            return Ok(Some(*name));
        }
        let found = account_id(conn, user)?.map(|(_, DbName(name))| name);
        if let Some(name) = found {
            remember(&mut self.accounts, user.key(), name);
        }
        Ok(found)
    }

    /// The name of `group` as created, if it exists.
    pub(super) fn group(
        &mut self,
        conn: &Connection,
        group: &Name,
    ) -> rusqlite::Result<Option<Name>> {
        if let Some(name) = self.groups.get(&group.key()) {
            return Ok(Some(*name));
        }
        let found = group_id(conn, group)?.map(|(_, DbName(name))| name);
        if let Some(name) = found {
            remember(&mut self.groups, group.key(), name);
        }
        Ok(found)
    }

    /// The id of the conversation `key`, created on its first message.
    pub(super) fn conversation(
        &mut self,
        conn: &Connection,
        key: ConvKey,
    ) -> rusqlite::Result<i64> {
        if let Some(id) = self.conversations.get(&key) {
            return Ok(*id);
        }
        let parties = match &key {
            ConvKey::Group(_) => vec![],
            ConvKey::Direct(a, b) => vec![a.as_str(), b.as_str()],
        };
        let id = conversation_for_message(conn, &key.text(), &parties)?;
        remember(&mut self.conversations, key, id);
        Ok(id)
    }
}
