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
use std::time::Duration;

use crate::effect::{
    Effect, EffectResult, GroupOp, HistoryLoaded, Input, NewMessage, ReplayLoaded, ReplayScope,
    StoredMessage,
};
use crate::error::ProtocolError;
use crate::frame::Target;
use crate::id::{ConnId, MessageId, Ref};
use crate::name::{Name, NameKey};
use crate::store::{Account, Loaded, Retention, Store, StoreError, Write, Written};

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
    }
}

/// Answers `effect` from `store` as the server's workers do (its auth pool,
/// storage writer and readers), committing at `now_ms`: what to feed the
/// hub, in order (nothing for an effect that needs no answer; for a
/// commit, the requester's answer and then the commit to route).
///
/// Authentication compares the stored "hash" with the password as plain
/// text: accounts made through [`Effect::Register`] store the password
/// itself. That is why this is for tests only.
pub fn answer(store: &mut dyn Store, effect: Effect, now_ms: u64) -> Vec<Input> {
    let result = match effect {
        Effect::Authenticate {
            conn,
            user,
            password,
        } => EffectResult::Authenticated {
            conn,
            result: match store.account(&user) {
                Ok(Some(a)) if a.password_hash == password.expose() => Ok(a.name),
                Ok(_) => Err(ProtocolError::BadCredentials {
                    retry: Duration::ZERO,
                }),
                Err(e) => Err(failed(e)),
            },
        },
        Effect::Register {
            conn,
            user,
            password,
        } => EffectResult::Registered {
            conn,
            result: match store.create_account(&user, password.expose()) {
                Ok(true) => Ok(()),
                Ok(false) => Err(ProtocolError::NameTaken { user }),
                Err(e) => Err(failed(e)),
            },
        },
        Effect::Store {
            conn,
            reference,
            message,
        } => return commit_message(store, conn, reference, message, now_ms),
        Effect::StoreGroup {
            conn,
            reference,
            op,
        } => return commit_group(store, conn, reference, op, now_ms),
        Effect::LoadHistory {
            conn,
            reference,
            user,
            target,
            before,
            limit,
        } => EffectResult::History {
            conn,
            reference,
            target,
            result: store
                .history_page(&user, &target, before, limit)
                .unwrap_or_else(|e| Err(failed(e))),
        },
        Effect::Replay {
            conn,
            user,
            scope,
            upto,
            max,
        } => EffectResult::Replayed {
            conn,
            result: store.replay(&user, &scope, upto, max).map_err(failed),
        },
        Effect::UserOffline { user, seen_upto } => {
            // Needs no answer; a failure here loses only the offline mark.
            let _ = store.commit(&[Write::Offline { user, seen_upto }], now_ms);
            return Vec::new();
        }
    };
    vec![result.into()]
}

fn failed(e: StoreError) -> ProtocolError {
    ProtocolError::Storage(e.to_string())
}

/// A message committed: its sender's ACK, then its routing.
fn commit_message(
    store: &mut dyn Store,
    conn: ConnId,
    reference: Ref,
    message: NewMessage,
    now_ms: u64,
) -> Vec<Input> {
    let write = [Write::Message(message.clone())];
    let result = match store.commit(&write, now_ms).map(|mut w| w.pop()) {
        Ok(Some(Written::Message(result))) => result.map_err(|e| (message, e)),
        Ok(_) => Err((message, wrong_outcome())),
        Err(e) => Err((message, failed(e))),
    };
    Input::message_written(conn, reference, result)
}

/// A group change committed: the requester's OK, then the change.
fn commit_group(
    store: &mut dyn Store,
    conn: ConnId,
    reference: Ref,
    op: GroupOp,
    now_ms: u64,
) -> Vec<Input> {
    let write = [Write::Group(op.clone())];
    let result = match store.commit(&write, now_ms).map(|mut w| w.pop()) {
        Ok(Some(Written::Group(result))) => result,
        Ok(_) => Err(wrong_outcome()),
        Err(e) => Err(failed(e)),
    };
    Input::group_written(conn, reference, op, result)
}

fn wrong_outcome() -> ProtocolError {
    ProtocolError::Storage("storage answered with an outcome of another kind".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
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
