//! Test support, compiled with the `testing` feature (and for the
//! engine's own tests): one in-memory [`Store`] for every test that needs
//! storage (the engine's scenarios, the fuzz target, the server shell's
//! tests and benches), and [`answer`], which answers an [`Effect`] from any
//! store the way the server's workers do.
//!
//! [`MemoryStore`] keeps its data behind an `Arc<Mutex<..>>` so that every
//! clone shares it, as every SQLite connection shares the file (the server
//! opens one store per thread): the one lock in this crate, and only in
//! test builds. Nothing survives the process. It refuses what SQLite
//! refuses, with the same [`ProtocolError`]s.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::device::DeviceId;
use crate::effect::{
    Committed, DeviceRecord, Effect, GroupOp, HistoryLoaded, Input, Latest, ReplayLoaded,
    ReplayScope, SendKey, StoredMessage,
};
use crate::error::ProtocolError;
use crate::frame::Target;
use crate::id::MessageId;
use crate::name::{Name, NameKey};
use crate::store::{Account, Loaded, Retention, Store, StoreError, StoredDevice, Write, Written};

mod answer;
mod reading;
pub use answer::{answer, test_hash};
use reading::in_conversation;

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
    /// By id.
    devices: BTreeMap<DeviceId, StoredDevice>,
    /// Each committed SEND2's key, with its message's commit.
    sends: HashMap<SendKey, Committed>,
    /// Per user: (conversation, marker), least recently set first.
    markers: HashMap<NameKey, Vec<(Target, MessageId)>>,
    /// Tombstones: who deleted each.
    deleted: BTreeMap<MessageId, Name>,
    /// Group roles by (group, user): (group, user, owner). Group mutes are
    /// not kept (the engine's tests do not restart).
    roles: BTreeMap<(NameKey, NameKey), (Name, Name, bool)>,
    /// Per account: the newest id when it was made. Its direct messages
    /// and replays start after it (a name registered again is a new
    /// person), as in the real stores.
    history_from: HashMap<NameKey, MessageId>,
}

impl Inner {
    fn history_from(&self, user: &Name) -> MessageId {
        self.history_from
            .get(&user.key())
            .copied()
            .unwrap_or(MessageId(0))
    }
}

impl MemoryStore {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every committed message, oldest first, for assertions.
    pub fn messages(&self) -> Vec<StoredMessage> {
        self.inner().messages.clone()
    }

    /// The commit time [`MemoryStore::run`] stamps: a fixed one, so that
    /// tests see the same frames every run.
    pub const COMMIT_MS: u64 = 1_700_000_000_000;

    /// Answers `effect` with [`answer`] at [`MemoryStore::COMMIT_MS`].
    pub fn run(&mut self, effect: Effect) -> Vec<Input> {
        answer(self, effect, MemoryStore::COMMIT_MS)
    }
}

/// Whether two targets name one conversation (names ignore case).
fn same_conversation(a: &Target, b: &Target) -> bool {
    match (a, b) {
        (Target::Room, Target::Room) => true,
        (Target::Group(x), Target::Group(y)) | (Target::User(x), Target::User(y)) => {
            x.key() == y.key()
        }
        _ => false,
    }
}

/// The tombstones among `messages`, with who deleted each.
fn tombstones(
    deleted: &BTreeMap<MessageId, Name>,
    messages: &[StoredMessage],
) -> Vec<(MessageId, Name)> {
    messages
        .iter()
        .filter_map(|m| deleted.get(&m.id).map(|by| (m.id, *by)))
        .collect()
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
            roles: inner.roles.values().copied().collect(),
            group_mutes: Vec::new(),
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
        let newest = inner.last_id;
        inner.history_from.insert(user.key(), newest);
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
                        kind: m.kind,
                        tags: m.tags.clone(),
                    };
                    // Client tags are relayed, not stored (as in every store).
                    let kept = StoredMessage {
                        tags: crate::ClientTags::default(),
                        ..stored.clone()
                    };
                    inner.messages.push(kept);
                    Written::Message(Ok(stored))
                }
                Write::MessageOnce(m, key) => {
                    if let Some(c) = inner.sends.get(key) {
                        out.push(Written::Duplicate(*c));
                        continue;
                    }
                    drop(inner);
                    let written = self.commit(&[Write::Message(m.clone())], now_ms)?;
                    inner = self.inner();
                    if let Some(Written::Message(Ok(stored))) = written.first() {
                        inner.sends.insert(*key, stored.committed());
                    }
                    out.extend(written);
                    continue;
                }
                Write::Bookmark { device, upto } => {
                    if let Some(d) = inner.devices.get_mut(device) {
                        d.bookmark = d.bookmark.max(*upto);
                    }
                    Written::Bookmark
                }
                Write::ReadMarker {
                    user,
                    target,
                    id,
                    max,
                } => {
                    let list = inner.markers.entry(user.key()).or_default();
                    let old = list.iter().position(|(t, _)| same_conversation(t, target));
                    let id = old.map_or(*id, |i| list.remove(i).1.max(*id));
                    list.push((*target, id));
                    while list.len() > usize::from(*max) {
                        list.remove(0);
                    }
                    Written::ReadMarker(id)
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

    fn history_range(
        &mut self,
        user: &Name,
        target: &Target,
        range: &crate::window::Range,
        newest: bool,
        limit: u16,
    ) -> Result<HistoryLoaded, StoreError> {
        let inner = self.inner();
        let floor = match target {
            Target::User(_) => inner.history_from(user),
            _ => MessageId(0),
        };
        let all: Box<dyn Iterator<Item = &StoredMessage>> = match newest {
            true => Box::new(inner.messages.iter().rev()),
            false => Box::new(inner.messages.iter()),
        };
        let mut matching = all
            .filter(|m| m.id > floor && range.contains(m.id, m.timestamp_ms))
            .filter(|m| in_conversation(m, user, target));
        let messages: Vec<StoredMessage> = matching
            .by_ref()
            .take(usize::from(limit))
            .cloned()
            .collect();
        let more = matching.next().is_some();
        let deleted = tombstones(&inner.deleted, &messages);
        Ok(HistoryLoaded {
            messages,
            more,
            deleted,
        })
    }

    fn history_targets(
        &mut self,
        user: &Name,
        groups: &[Name],
        between: (u64, u64),
        limit: u16,
    ) -> Result<Vec<Latest>, StoreError> {
        let inner = self.inner();
        let floor = inner.history_from(user);
        Ok(reading::latest(
            &inner.messages,
            floor,
            user,
            groups,
            between,
            limit,
        ))
    }

    fn replay(
        &mut self,
        user: &Name,
        scope: &ReplayScope,
        upto: MessageId,
        max: usize,
    ) -> Result<ReplayLoaded, StoreError> {
        Ok(reading::replay(&self.inner(), user, scope, upto, max))
    }

    fn message(&mut self, id: MessageId) -> Result<Option<StoredMessage>, StoreError> {
        let inner = self.inner();
        let at = inner.messages.binary_search_by_key(&id, |m| m.id);
        Ok(at.ok().map(|i| inner.messages[i].clone()))
    }

    fn delete_message(
        &mut self,
        id: MessageId,
        by: &Name,
        _reason: &str,
        _now_ms: u64,
    ) -> Result<Option<StoredMessage>, StoreError> {
        let mut inner = self.inner();
        let Ok(at) = inner.messages.binary_search_by_key(&id, |m| m.id) else {
            return Ok(None);
        };
        inner.messages[at].body.clear();
        let tombstone = inner.messages[at].clone();
        inner.deleted.entry(id).or_insert(*by);
        Ok(Some(tombstone))
    }

    fn device_by_token(&mut self, hash: &[u8; 32]) -> Result<Option<StoredDevice>, StoreError> {
        let inner = self.inner();
        let found = inner
            .devices
            .values()
            .find(|d| d.token_hash.as_ref() == Some(hash));
        Ok(found.copied())
    }

    fn device_by_name(
        &mut self,
        user: &Name,
        device: &Name,
    ) -> Result<Option<StoredDevice>, StoreError> {
        let inner = self.inner();
        let mine = |d: &&StoredDevice| d.user.key() == user.key();
        let found = inner
            .devices
            .values()
            .filter(mine)
            .find(|d| d.record.name.key() == device.key());
        Ok(found.copied())
    }

    fn create_device(
        &mut self,
        user: &Name,
        device: &Name,
        token_hash: Option<[u8; 32]>,
        now_ms: u64,
    ) -> Result<StoredDevice, StoreError> {
        let mut inner = self.inner();
        let user = inner.accounts.get(&user.key()).map_or(*user, |a| a.name);
        let id = DeviceId(inner.devices.keys().last().map_or(1, |d| d.0 + 1));
        let d = StoredDevice {
            record: DeviceRecord {
                id,
                name: *device,
                created_ms: now_ms,
                last_seen_ms: now_ms,
            },
            user,
            token_hash,
            bookmark: MessageId(0),
        };
        inner.devices.insert(id, d);
        Ok(d)
    }

    fn set_device_token(
        &mut self,
        device: DeviceId,
        token_hash: Option<[u8; 32]>,
    ) -> Result<(), StoreError> {
        if let Some(d) = self.inner().devices.get_mut(&device) {
            d.token_hash = token_hash;
        }
        Ok(())
    }

    fn touch_device(&mut self, device: DeviceId, now_ms: u64) -> Result<(), StoreError> {
        if let Some(d) = self.inner().devices.get_mut(&device) {
            d.record.last_seen_ms = now_ms;
        }
        Ok(())
    }

    fn devices(&mut self, user: &Name) -> Result<Vec<DeviceRecord>, StoreError> {
        let inner = self.inner();
        let mut v: Vec<DeviceRecord> = inner
            .devices
            .values()
            .filter(|d| d.user.key() == user.key())
            .map(|d| d.record)
            .collect();
        v.sort_by_key(|r| r.name.key());
        Ok(v)
    }

    fn revoke_device(
        &mut self,
        user: &Name,
        device: &Name,
    ) -> Result<Option<DeviceId>, StoreError> {
        let Some(d) = self.device_by_name(user, device)? else {
            return Ok(None);
        };
        let mut inner = self.inner();
        inner.devices.remove(&d.record.id);
        inner.sends.retain(|k, _| k.device != d.record.id);
        Ok(Some(d.record.id))
    }

    fn revoke_devices(&mut self, user: &Name) -> Result<Vec<DeviceId>, StoreError> {
        let ids: Vec<DeviceId> = self.devices(user)?.iter().map(|r| r.id).collect();
        let mut inner = self.inner();
        for id in &ids {
            inner.devices.remove(id);
        }
        inner.sends.retain(|k, _| !ids.contains(&k.device));
        Ok(ids)
    }

    fn read_markers(
        &mut self,
        user: &Name,
        max: u16,
    ) -> Result<Vec<(Target, MessageId)>, StoreError> {
        let inner = self.inner();
        let list = inner.markers.get(&user.key()).cloned().unwrap_or_default();
        let skip = list.len().saturating_sub(usize::from(max));
        Ok(list.into_iter().skip(skip).collect())
    }

    fn prune_sends(&mut self, older_than_ms: u64, keep: u32) -> Result<u64, StoreError> {
        let mut inner = self.inner();
        let before = inner.sends.len();
        inner.sends.retain(|_, c| c.timestamp_ms >= older_than_ms);
        let mut per_device: HashMap<DeviceId, Vec<(MessageId, SendKey)>> = HashMap::new();
        for (k, c) in &inner.sends {
            per_device.entry(k.device).or_default().push((c.id, *k));
        }
        for (_, mut v) in per_device {
            v.sort_by_key(|(id, _)| *id);
            let extra = v.len().saturating_sub(keep as usize);
            for (_, k) in v.into_iter().take(extra) {
                inner.sends.remove(&k);
            }
        }
        Ok((before - inner.sends.len()) as u64)
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

/// A group change, refused as the SQLite store refuses it (names in
/// refusals spelled as stored).
fn apply_group(inner: &mut Inner, op: &GroupOp) -> Result<(), ProtocolError> {
    let no_user = |user: &Name| ProtocolError::NoSuchUser { user: *user };
    match op {
        GroupOp::Create { group, user } => {
            if let Some((name, _)) = inner.groups.get(&group.key()) {
                return Err(ProtocolError::GroupExists { group: *name });
            }
            if !inner.accounts.contains_key(&user.key()) {
                return Err(no_user(user));
            }
            let members = BTreeMap::from([(user.key(), *user)]);
            inner.groups.insert(group.key(), (*group, members));
            let owner = (*group, *user, true);
            inner.roles.insert((group.key(), user.key()), owner);
            Ok(())
        }
        GroupOp::Join { group, user } => {
            let known = inner.accounts.contains_key(&user.key());
            let Some((name, members)) = inner.groups.get_mut(&group.key()) else {
                return Err(ProtocolError::NoSuchGroup { group: *group });
            };
            if !known {
                return Err(no_user(user));
            }
            match members.insert(user.key(), *user) {
                None => Ok(()),
                Some(_) => Err(ProtocolError::AlreadyMember { group: *name }),
            }
        }
        GroupOp::Leave { group, user } => {
            let Some((name, members)) = inner.groups.get_mut(&group.key()) else {
                return Err(ProtocolError::NoSuchGroup { group: *group });
            };
            match members.remove(&user.key()) {
                Some(_) => Ok(()),
                None => Err(ProtocolError::NotAMember { group: *name }),
            }
        }
        GroupOp::Moderate {
            group,
            user,
            action,
            ..
        } => {
            use crate::frame::GroupAction;
            let Some((name, members)) = inner.groups.get_mut(&group.key()) else {
                return Err(ProtocolError::NoSuchGroup { group: *group });
            };
            let name = *name;
            let key = (group.key(), user.key());
            match action {
                GroupAction::Remove if members.remove(&user.key()).is_none() => {
                    return Err(ProtocolError::NotAMember { group: name })
                }
                GroupAction::Remove | GroupAction::Dismiss => {
                    if inner.roles.get(&key).is_some_and(|r| !r.2) {
                        inner.roles.remove(&key);
                    }
                }
                GroupAction::Appoint => {
                    inner.roles.entry(key).or_insert((name, *user, false));
                }
                GroupAction::Mute | GroupAction::Unmute => {}
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effect::EffectResult;
    use crate::id::ConnId;
    use crate::password::Password;

    fn name(s: &str) -> Name {
        Name::new(s).expect("test names are valid")
    }

    fn group(store: &mut MemoryStore, op: GroupOp) -> Result<(), String> {
        match store.commit(&[Write::Group(op)], 1).expect("in memory") {
            mut w if w.len() == 1 => match w.pop() {
                Some(Written::Group(r)) => r.map_err(|e| e.to_string()),
                other => panic!("{other:?}"),
            },
            w => panic!("{w:?}"),
        }
    }

    #[test]
    fn group_changes_are_refused_as_the_sqlite_store_refuses_them() {
        let mut s = MemoryStore::default();
        for u in ["ann", "bob"] {
            s.create_account(&name(u), "h").expect("in memory");
        }
        let (devs, ann, bob) = (name("Devs"), name("ann"), name("bob"));
        let create = |g, user| GroupOp::Create { group: g, user };
        let join = |g, user| GroupOp::Join { group: g, user };
        let leave = |g, user| GroupOp::Leave { group: g, user };
        assert_eq!(group(&mut s, create(devs, ann)), Ok(()));
        let again = group(&mut s, create(name("devs"), bob));
        assert_eq!(again, Err("group Devs already exists".into()));
        assert_eq!(
            group(&mut s, create(name("x"), name("nobody"))),
            Err("no user nobody".into())
        );
        assert_eq!(
            group(&mut s, join(name("devs"), ann)),
            Err("already a member of Devs".into())
        );
        assert_eq!(
            group(&mut s, leave(devs, bob)),
            Err("not a member of Devs".into())
        );
        assert_eq!(
            group(&mut s, join(name("ops"), bob)),
            Err("no group ops".into())
        );
        assert_eq!(group(&mut s, join(devs, bob)), Ok(()));
        assert_eq!(group(&mut s, leave(devs, bob)), Ok(()));
    }

    #[test]
    fn answer_logs_in_with_the_password_registered_and_refuses_others() {
        let mut s = MemoryStore::default();
        let conn = ConnId::new(0, 0);
        let register = Effect::Register {
            conn,
            user: name("Ann"),
            password: Password::offered("pw"),
        };
        assert!(matches!(
            s.run(register).as_slice(),
            [Input::Result(EffectResult::Registered {
                result: Ok(()),
                ..
            })]
        ));
        let login = |password| Effect::Authenticate {
            conn,
            user: name("ANN"),
            password: Password::offered(password),
        };
        assert!(matches!(
            s.run(login("pw")).as_slice(),
            [Input::Result(EffectResult::Authenticated { result: Ok(n), .. })] if *n == name("Ann")
        ));
        assert!(matches!(
            s.run(login("other")).as_slice(),
            [Input::Result(EffectResult::Authenticated {
                result: Err(ProtocolError::BadCredentials { .. }),
                ..
            })]
        ));
    }
}
