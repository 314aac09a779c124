//! A [`Store`] in memory, for tests and benches of the server shell: every
//! clone shares the same data, as every SQLite connection shares the file.
//! Nothing survives the process.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use confab_engine::effect::{GroupOp, HistoryLoaded, ReplayLoaded, ReplayScope, StoredMessage};
use confab_engine::name::NameKey;
use confab_engine::{MessageId, Name, ProtocolError, Target};

use super::{Account, Loaded, Retention, Store, StoreError, Write, Written};

/// The in-memory store (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    accounts: BTreeMap<NameKey, Account>,
    groups: BTreeMap<NameKey, (Name, BTreeMap<NameKey, Name>)>,
    /// In id order.
    messages: Vec<StoredMessage>,
    last_id: MessageId,
    offline: HashMap<NameKey, MessageId>,
}

impl MemoryStore {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether `m` belongs to the conversation `target` as `user` sees it.
fn in_conversation(m: &StoredMessage, user: &Name, target: &Target) -> bool {
    match (target, &m.target) {
        (Target::Room, Target::Room) => true,
        (Target::Group(g), Target::Group(h)) => g.key() == h.key(),
        (Target::User(other), Target::User(to)) => {
            (m.sender.key() == user.key() && to.key() == other.key())
                || (m.sender.key() == other.key() && to.key() == user.key())
        }
        _ => false,
    }
}

/// The conversation `m` belongs to from `user`'s side.
fn conversation(m: &StoredMessage, user: &Name) -> Target {
    match m.target {
        Target::User(to) if to.key() == user.key() => Target::User(m.sender),
        t => t,
    }
}

impl Store for MemoryStore {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        let inner = self.inner();
        Ok(Loaded {
            last_id: inner.last_id,
            groups: inner
                .groups
                .values()
                .map(|(name, members)| (*name, members.values().copied().collect()))
                .collect(),
        })
    }

    fn account(&mut self, user: &Name) -> Result<Option<Account>, StoreError> {
        Ok(self.inner().accounts.get(&user.key()).cloned())
    }

    fn create_account(&mut self, user: &Name, password_hash: &str) -> Result<bool, StoreError> {
        let mut inner = self.inner();
        if inner.accounts.contains_key(&user.key()) {
            return Ok(false);
        }
        inner.accounts.insert(
            user.key(),
            Account {
                name: *user,
                password_hash: password_hash.to_owned(),
            },
        );
        Ok(true)
    }

    fn set_password(&mut self, user: &Name, password_hash: &str) -> Result<bool, StoreError> {
        Ok(match self.inner().accounts.get_mut(&user.key()) {
            Some(a) => {
                a.password_hash = password_hash.to_owned();
                true
            }
            None => false,
        })
    }

    fn delete_account(&mut self, user: &Name) -> Result<bool, StoreError> {
        let mut inner = self.inner();
        for (_, members) in inner.groups.values_mut() {
            members.remove(&user.key());
        }
        Ok(inner.accounts.remove(&user.key()).is_some())
    }

    fn accounts(&mut self) -> Result<Vec<Name>, StoreError> {
        Ok(self.inner().accounts.values().map(|a| a.name).collect())
    }

    fn commit(&mut self, batch: &[Write], now_ms: u64) -> Result<Vec<Written>, StoreError> {
        let mut inner = self.inner();
        let mut out = Vec::with_capacity(batch.len());
        for w in batch {
            out.push(match w {
                Write::Message(m) => {
                    let target = match m.target {
                        Target::User(u) => match inner.accounts.get(&u.key()) {
                            Some(a) => Target::User(a.name),
                            None => {
                                let r = ProtocolError::NoSuchUser { user: u };
                                out.push(Written::Message(Err(r)));
                                continue;
                            }
                        },
                        t => t,
                    };
                    inner.last_id = inner.last_id.next();
                    let stored = StoredMessage {
                        id: inner.last_id,
                        timestamp_ms: now_ms,
                        sender: m.sender,
                        target,
                        body: m.body.clone(),
                    };
                    inner.messages.push(stored.clone());
                    Written::Message(Ok(stored))
                }
                Write::Group(op) => Written::Group(apply_group(&mut inner, op)),
                Write::Offline { user, seen_upto } => {
                    inner.offline.insert(user.key(), *seen_upto);
                    Written::Offline
                }
            });
        }
        Ok(out)
    }

    fn history(
        &mut self,
        user: &Name,
        target: &Target,
        before: MessageId,
        limit: u16,
    ) -> Result<HistoryLoaded, StoreError> {
        let inner = self.inner();
        let mut matching = inner
            .messages
            .iter()
            .rev()
            .filter(|m| before == MessageId(0) || m.id < before)
            .filter(|m| in_conversation(m, user, target));
        let messages: Vec<StoredMessage> = matching
            .by_ref()
            .take(usize::from(limit))
            .cloned()
            .collect();
        let more = matching.next().is_some();
        Ok(HistoryLoaded { messages, more })
    }

    fn replay(
        &mut self,
        user: &Name,
        scope: &ReplayScope,
        upto: MessageId,
        max: usize,
    ) -> Result<ReplayLoaded, StoreError> {
        let inner = self.inner();
        let me = user.key();
        let to_me = |m: &StoredMessage| matches!(m.target, Target::User(to) if to.key() == me);
        let missed: Vec<&StoredMessage> = match scope {
            ReplayScope::Since { after, groups } => inner
                .messages
                .iter()
                .filter(|m| m.id > *after && m.id <= upto)
                .filter(|m| match &m.target {
                    Target::Room => true,
                    Target::Group(g) => groups.iter().any(|h| h.key() == g.key()),
                    Target::User(_) => to_me(m) || m.sender.key() == me,
                })
                .collect(),
            ReplayScope::OfflineDirect => {
                let mark = inner.offline.get(&me).copied().unwrap_or(MessageId(0));
                inner
                    .messages
                    .iter()
                    .filter(|m| m.id > mark && m.id <= upto && to_me(m))
                    .collect()
            }
        };
        let cut = missed.len().saturating_sub(max);
        let mut skipped: Vec<(Target, MessageId, MessageId, u32)> = Vec::new();
        for m in &missed[..cut] {
            let t = conversation(m, user);
            match skipped.iter_mut().find(|s| s.0 == t) {
                Some(s) => {
                    s.2 = m.id;
                    s.3 += 1;
                }
                None => skipped.push((t, m.id, m.id, 1)),
            }
        }
        Ok(ReplayLoaded {
            messages: missed[cut..].iter().map(|m| (*m).clone()).collect(),
            skipped,
        })
    }

    fn apply_retention(&mut self, retention: &Retention, now_ms: u64) -> Result<u64, StoreError> {
        let mut inner = self.inner();
        let before = inner.messages.len();
        if let Some(age) = retention.max_age_secs {
            let oldest = now_ms.saturating_sub(age.saturating_mul(1000));
            inner.messages.retain(|m| m.timestamp_ms >= oldest);
        }
        if let Some(max) = retention.max_count {
            // Keep the newest `max` of each conversation.
            let mut seen: HashMap<Conversation, u64> = HashMap::new();
            let mut keep = vec![true; inner.messages.len()];
            for (i, m) in inner.messages.iter().enumerate().rev() {
                let key = match m.target {
                    Target::Room => Conversation::Room,
                    Target::Group(g) => Conversation::Group(g.key()),
                    Target::User(to) => {
                        let (a, b) = (m.sender.key(), to.key());
                        Conversation::Direct(a.min(b), a.max(b))
                    }
                };
                let n = seen.entry(key).or_default();
                *n += 1;
                keep[i] = *n <= max;
            }
            let mut i = 0;
            inner.messages.retain(|_| {
                i += 1;
                keep[i - 1]
            });
        }
        Ok((before - inner.messages.len()) as u64)
    }
}

/// A conversation, for retention by count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Conversation {
    Room,
    Group(NameKey),
    Direct(NameKey, NameKey),
}

fn apply_group(inner: &mut Inner, op: &GroupOp) -> Result<(), ProtocolError> {
    match op {
        GroupOp::Create { group, user } => {
            if inner.groups.contains_key(&group.key()) {
                return Err(ProtocolError::GroupExists { group: *group });
            }
            let members = BTreeMap::from([(user.key(), *user)]);
            inner.groups.insert(group.key(), (*group, members));
            Ok(())
        }
        GroupOp::Join { group, user } | GroupOp::Leave { group, user } => {
            let Some((_, members)) = inner.groups.get_mut(&group.key()) else {
                return Err(ProtocolError::NoSuchGroup { group: *group });
            };
            if matches!(op, GroupOp::Join { .. }) {
                members.insert(user.key(), *user);
            } else {
                members.remove(&user.key());
            }
            Ok(())
        }
    }
}
