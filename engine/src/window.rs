//! Which messages of a conversation a history request reads: a
//! [`Window`], bounded by message ids or commit times.
//!
//! confab's HISTORY_REQUEST reads backwards from an id only; IRC's
//! CHATHISTORY also reads forwards, around a point, between two points,
//! and by time. Every bound is exclusive (an inclusive one is the next
//! id, or the next millisecond, outside it), so a window is plain
//! comparisons a store runs as one range scan.

use crate::id::MessageId;

/// A point in a conversation: a message id, or a commit time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// A message id.
    Id(MessageId),
    /// Milliseconds since the Unix epoch (a message's `timestamp_ms`).
    Time(u64),
}

impl Bound {
    /// The bound just below this one, to make "from here on" exclusive.
    pub fn just_below(self) -> Bound {
        match self {
            Bound::Id(id) => Bound::Id(MessageId(id.0.saturating_sub(1))),
            Bound::Time(ms) => Bound::Time(ms.saturating_sub(1)),
        }
    }
}

/// Messages strictly after `after` and strictly before `before` (either
/// side open when `None`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Range {
    /// Only messages after this.
    pub after: Option<Bound>,
    /// Only messages before this.
    pub before: Option<Bound>,
}

impl Range {
    /// Whether a message with `id`, committed at `ms`, is inside.
    pub fn contains(&self, id: MessageId, ms: u64) -> bool {
        let above = |b: &Bound| match *b {
            Bound::Id(x) => id > x,
            Bound::Time(t) => ms > t,
        };
        let below = |b: &Bound| match *b {
            Bound::Id(x) => id < x,
            Bound::Time(t) => ms < t,
        };
        self.after.as_ref().is_none_or(above) && self.before.as_ref().is_none_or(below)
    }
}

/// What a history request reads (at most its limit of messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// The newest of the range, newest first (confab's page, IRC's
    /// LATEST and BEFORE, BETWEEN from the later end).
    Newest(Range),
    /// The oldest of the range, oldest first (AFTER, BETWEEN from the
    /// earlier end).
    Oldest(Range),
    /// Half the limit (rounded down) before the point, the rest from the
    /// point on, the point's own message included (AROUND).
    Around(Bound),
}

impl Window {
    /// confab's page: the newest before `before`, or the newest of all
    /// when it is zero.
    pub fn before(before: MessageId) -> Window {
        Window::Newest(Range {
            after: None,
            before: (before != MessageId(0)).then_some(Bound::Id(before)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_excludes_its_bounds_by_id_and_by_time() {
        let r = Range {
            after: Some(Bound::Id(MessageId(3))),
            before: Some(Bound::Time(1000)),
        };
        assert!(!r.contains(MessageId(3), 10));
        assert!(r.contains(MessageId(4), 999));
        assert!(!r.contains(MessageId(4), 1000));
        let from = Bound::Id(MessageId(7)).just_below();
        assert_eq!(from, Bound::Id(MessageId(6)));
        assert_eq!(
            Window::before(MessageId(0)),
            Window::Newest(Range::default())
        );
    }
}
