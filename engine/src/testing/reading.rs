//! The memory store's reading rules: which conversation a message is in
//! as a user sees it, and each conversation's latest message.

use std::collections::BTreeMap;

use super::{conversation, tombstones, Inner};
use crate::effect::{Latest, ReplayLoaded, ReplayScope, StoredMessage};
use crate::frame::Target;
use crate::id::MessageId;
use crate::name::Name;

/// Whether `m` belongs to the conversation `target` as `user` sees it.
pub(super) fn in_conversation(m: &StoredMessage, user: &Name, target: &Target) -> bool {
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

/// The conversation `m` is in as `user` sees it, if they read it: the
/// room, one of `groups`, or a direct conversation's other party.
fn seen_as(m: &StoredMessage, user: &Name, groups: &[Name]) -> Option<Target> {
    match &m.target {
        Target::Room => Some(Target::Room),
        Target::Group(g) => groups
            .iter()
            .any(|h| h.key() == g.key())
            .then_some(Target::Group(*g)),
        Target::User(to) if m.sender.key() == user.key() => Some(Target::User(*to)),
        Target::User(to) if to.key() == user.key() => Some(Target::User(m.sender)),
        Target::User(_) => None,
    }
}

/// See [`crate::store::Store::history_targets`]: `messages` in id order.
/// A direct conversation's messages up to `floor` (from before the
/// user's account was made) are not the user's.
pub(super) fn latest(
    messages: &[StoredMessage],
    floor: MessageId,
    user: &Name,
    groups: &[Name],
    (after, before): (u64, u64),
    limit: u16,
) -> Vec<Latest> {
    // Each conversation's latest message: the first met, newest first.
    let mut seen: BTreeMap<String, (MessageId, Latest)> = BTreeMap::new();
    for m in messages.iter().rev() {
        let Some(target) = seen_as(m, user, groups) else {
            continue;
        };
        if matches!(target, Target::User(_)) && m.id <= floor {
            continue;
        }
        let key = match &target {
            Target::Room => "r".to_owned(),
            Target::Group(g) => format!("g:{}", g.key().as_str()),
            Target::User(u) => format!("u:{}", u.key().as_str()),
        };
        seen.entry(key).or_insert((
            m.id,
            Latest {
                target,
                timestamp_ms: m.timestamp_ms,
            },
        ));
    }
    let mut within: Vec<(MessageId, Latest)> = seen
        .into_values()
        .filter(|(_, l)| l.timestamp_ms > after && l.timestamp_ms < before)
        .collect();
    within.sort_by_key(|(id, l)| (l.timestamp_ms, *id));
    within.truncate(usize::from(limit));
    within.into_iter().map(|(_, l)| l).collect()
}

/// See [`crate::store::Store::replay`]: what `user` missed, the oldest
/// left out beyond `max` (counted per conversation).
pub(super) fn replay(
    inner: &Inner,
    user: &Name,
    scope: &ReplayScope,
    upto: MessageId,
    max: usize,
) -> ReplayLoaded {
    let me = user.key();
    let to_me = |m: &StoredMessage| matches!(m.target, Target::User(to) if to.key() == me);
    let floor = inner.history_from(user);
    let missed: Vec<&StoredMessage> = match scope {
        ReplayScope::Since { after, groups } => inner
            .messages
            .iter()
            .filter(|m| m.id > *after && m.id <= upto)
            .filter(|m| match &m.target {
                Target::Room => true,
                Target::Group(g) => groups.iter().any(|h| h.key() == g.key()),
                Target::User(_) => m.id > floor && (to_me(m) || m.sender.key() == me),
            })
            .collect(),
        ReplayScope::OfflineDirect => {
            let mark = inner.offline.get(&me).copied().unwrap_or(MessageId(0));
            inner
                .messages
                .iter()
                .filter(|m| m.id > mark && m.id > floor && m.id <= upto && to_me(m))
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
    let messages: Vec<StoredMessage> = missed[cut..].iter().map(|m| (*m).clone()).collect();
    let deleted = tombstones(&inner.deleted, &messages);
    ReplayLoaded {
        messages,
        skipped,
        deleted,
    }
}
