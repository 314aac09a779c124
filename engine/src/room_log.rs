//! The room log: committed room messages, kept once for every reader, each
//! reader at its own cursor (issue 17's shared log). The hub pushes every
//! room message here once and each session's drain reads it, merged by id
//! with the session's own queue (groups, direct messages, CAUGHT_UP).
//!
//! Why: routing a room message to N sessions today costs N `Arc` clones
//! and N queue pushes, on memory the I/O threads touched last; it is the
//! largest known gap to a minimal relay (docs/PERFORMANCE.md, "Where the
//! CPU goes"). With the log, a commit is one push here, whatever N, and
//! each session's writer copies the entries after its cursor when it
//! drains. The same log is what a bus subscriber feeds on several nodes.
//!
//! Bounds: the entries (with their items, the encoded bytes) are kept
//! while their lengths sum to at most `max_bytes` (the newest always
//! stays), so a reader that does not keep up cannot hold memory; their ids
//! are kept longer, up to `max_ids`, so that a reader that fell behind the
//! bytes is told exactly what it missed (a MISSED range: first and last
//! id and how many). A reader behind even the ids is [`Read::cut`]: the
//! hub closes it as a slow consumer.
//!
//! Invariant: ids strictly increase in push order, and a reader gets each
//! entry after its cursor once, in order, or has it counted in exactly one
//! missed range reported before any later entry.

use std::collections::VecDeque;
use std::num::NonZeroU64;

use crate::id::MessageId;

/// Where a reader is: the sequence number of the next entry it reads.
/// Sequence numbers start at 1, so an `Option<Cursor>` (a session not
/// reading the log) costs a session no more than a cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor(NonZeroU64);

impl Cursor {
    fn seq(self) -> u64 {
        self.0.get()
    }

    fn at(seq: u64) -> Cursor {
        Cursor(NonZeroU64::new(seq).unwrap_or(NonZeroU64::MIN))
    }
}

/// Messages a reader will not get from the log: they are in history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Missed {
    /// The oldest missed id.
    pub first: MessageId,
    /// The newest missed id.
    pub last: MessageId,
    /// How many.
    pub count: u64,
}

/// What one [`RoomLog::read`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Read {
    /// Entries the reader fell behind, reported before anything it read.
    pub missed: Option<Missed>,
    /// Lengths of the entries handed over, summed.
    pub bytes: usize,
    /// The reader is behind even the ids kept: nothing was read, and what
    /// it missed cannot be told exactly.
    pub cut: bool,
}

struct Entry<T> {
    len: usize,
    item: T,
}

/// The log (see the module docs).
pub struct RoomLog<T> {
    /// The ids of the last up to `max_ids` entries; `ids[0]` is entry
    /// `ids_start`.
    ids: VecDeque<MessageId>,
    ids_start: u64,
    /// The entries still held, the newest last; `entries[0]` is entry
    /// `start`. Invariant: `ids_start <= start`, and `start + entries.len()
    /// == ids_start + ids.len()` (the next sequence number).
    entries: VecDeque<Entry<T>>,
    start: u64,
    bytes: usize,
    max_bytes: usize,
    max_ids: usize,
}

impl<T> RoomLog<T> {
    /// An empty log holding items of up to `max_bytes` in all and the ids
    /// of the last `max_ids` entries (at least one of each).
    pub fn new(max_bytes: usize, max_ids: usize) -> RoomLog<T> {
        RoomLog {
            ids: VecDeque::new(),
            ids_start: 1,
            entries: VecDeque::new(),
            start: 1,
            bytes: 0,
            max_bytes,
            max_ids: max_ids.max(1),
        }
    }

    /// Where a new reader starts: after everything pushed so far.
    pub fn head(&self) -> Cursor {
        Cursor::at(self.start + self.entries.len() as u64)
    }

    /// The id of the entry at `cursor`, if one was pushed there and its id
    /// is still kept: what a reader's next read starts with.
    pub fn next_id(&self, cursor: Cursor) -> Option<MessageId> {
        let i = cursor.seq().checked_sub(self.ids_start)?;
        self.ids.get(usize::try_from(i).ok()?).copied()
    }

    /// The id of the newest entry pushed, if any.
    pub fn last_id(&self) -> Option<MessageId> {
        self.ids.back().copied()
    }

    /// Appends a committed message, `len` bytes long; ids must increase.
    /// Evicts the oldest entries beyond the bounds.
    pub fn push(&mut self, id: MessageId, len: usize, item: T) {
        debug_assert!(self.ids.back().is_none_or(|&last| last < id));
        self.ids.push_back(id);
        self.entries.push_back(Entry { len, item });
        self.bytes += len;
        while self.bytes > self.max_bytes && self.entries.len() > 1 {
            if let Some(e) = self.entries.pop_front() {
                self.bytes -= e.len;
                self.start += 1;
            }
        }
        while self.ids.len() > self.max_ids {
            self.ids.pop_front();
            self.ids_start += 1;
        }
        // The ids outlive the entries: an entry whose id is gone goes too.
        while self.start < self.ids_start {
            if let Some(e) = self.entries.pop_front() {
                self.bytes -= e.len;
            }
            self.start += 1;
        }
    }

    /// Hands `each` the entries after `cursor` whose ids are below
    /// `below`, oldest first, up to about `max_bytes` (at least one, if
    /// there is one), and moves the cursor past them. A cursor the bytes
    /// left behind first skips the entries no longer held whose ids are
    /// below `below`, and what it skipped is [`Read::missed`]; one newer
    /// than that waits for a later read. So a reader that merges the log
    /// with messages of its own (its direct messages, by id) is told of
    /// each missed entry in its place, never after a newer message.
    pub fn read(
        &self,
        cursor: &mut Cursor,
        below: MessageId,
        max_bytes: usize,
        mut each: impl FnMut(&T),
    ) -> Read {
        let mut read = Read::default();
        let mut seq = cursor.seq();
        if seq < self.ids_start {
            read.cut = true;
            return read;
        }
        let id_at = |seq: u64| self.ids[(seq - self.ids_start) as usize];
        if seq < self.start {
            let from = seq;
            while seq < self.start && id_at(seq) < below {
                seq += 1;
            }
            if seq > from {
                read.missed = Some(Missed {
                    first: id_at(from),
                    last: id_at(seq - 1),
                    count: seq - from,
                });
            }
            *cursor = Cursor::at(seq);
            if seq < self.start {
                return read;
            }
        }
        let from = (seq - self.start) as usize;
        for e in self.entries.iter().skip(from) {
            if read.bytes > 0 && read.bytes + e.len > max_bytes || id_at(seq) >= below {
                break;
            }
            each(&e.item);
            read.bytes += e.len;
            seq += 1;
        }
        *cursor = Cursor::at(seq);
        read
    }

    /// Whether `cursor` has read everything.
    pub fn is_read(&self, cursor: Cursor) -> bool {
        cursor == self.head()
    }

    /// Bytes of the entries held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The reference: every entry ever pushed, and which are held computed
    /// from scratch (the longest suffix within the byte bound, at least
    /// one, and no older than the last `max_ids`).
    struct Model {
        all: Vec<(MessageId, usize)>,
        max_bytes: usize,
        max_ids: usize,
    }

    impl Model {
        /// First sequence number whose id is kept, and whose entry is held.
        fn starts(&self) -> (usize, usize) {
            let n = self.all.len();
            let ids_start = n.saturating_sub(self.max_ids);
            let mut start = n;
            let mut sum = 0;
            while start > ids_start {
                let len = self.all[start - 1].1;
                if start < n && sum + len > self.max_bytes {
                    break;
                }
                sum += len;
                start -= 1;
            }
            (ids_start, start)
        }

        /// What a read at `cursor` gives: (cut, missed, ids read), and the new cursor.
        fn read(
            &self,
            cursor: usize,
            max: usize,
            below: MessageId,
        ) -> (bool, Option<Missed>, Vec<MessageId>, usize) {
            let (ids_start, start) = self.starts();
            if cursor < ids_start {
                return (true, None, Vec::new(), cursor);
            }
            let mut missed = None;
            let mut at = cursor;
            while at < start && self.all[at].0 < below {
                at += 1;
            }
            if at > cursor {
                missed = Some(Missed {
                    first: self.all[cursor].0,
                    last: self.all[at - 1].0,
                    count: (at - cursor) as u64,
                });
            }
            let (mut got, mut bytes) = (Vec::new(), 0);
            if at < start {
                return (false, missed, got, at);
            }
            while at < self.all.len() {
                let (id, len) = self.all[at];
                if bytes > 0 && bytes + len > max || id >= below {
                    break;
                }
                got.push(id);
                bytes += len;
                at += 1;
            }
            (false, missed, got, at)
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Push(usize),
        Join,
        /// A reader, its byte budget, and how far below the newest id its
        /// `below` bound is (none: `u64::MAX`).
        Read(usize, usize, Option<u64>),
        Leave(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1usize..300).prop_map(Op::Push),
            1 => Just(Op::Join),
            4 => (0usize..8, 1usize..2000, prop::option::of(0u64..60))
                .prop_map(|(r, m, b)| Op::Read(r, m, b)),
            1 => (0usize..8).prop_map(Op::Leave),
        ]
    }

    proptest! {
        /// Readers join, fall behind, catch up, are cut and leave at random;
        /// every read matches the reference, and every reader that was never
        /// cut has each entry since it joined either read once, in order, or
        /// counted in exactly one missed range.
        #[test]
        fn readers_get_what_the_reference_model_says(
            max_bytes in 1usize..2000,
            max_ids in 1usize..40,
            ops in prop::collection::vec(op(), 1..300),
        ) {
            let mut log: RoomLog<MessageId> = RoomLog::new(max_bytes, max_ids);
            let mut model = Model { all: Vec::new(), max_bytes, max_ids };
            // Per reader: its cursor, the model's, when it joined, what it
            // got (ids read and missed, in order), whether it was cut.
            struct Reader { cursor: Cursor, at: usize, joined: usize, seen: Vec<MessageId>, cut: bool }
            let mut readers: Vec<Reader> = Vec::new();
            let mut next_id = 1u64;
            for op in ops {
                match op {
                    Op::Push(len) => {
                        next_id += 1 + len as u64 % 3;
                        log.push(MessageId(next_id), len, MessageId(next_id));
                        model.all.push((MessageId(next_id), len));
                        // Exactly what the reference holds: no more memory.
                        let (_, start) = model.starts();
                        let held: usize = model.all[start..].iter().map(|e| e.1).sum();
                        prop_assert_eq!(log.bytes(), held);
                        prop_assert!(held <= max_bytes.max(len));
                    }
                    Op::Join => readers.push(Reader {
                        cursor: log.head(),
                        at: model.all.len(),
                        joined: model.all.len(),
                        seen: Vec::new(),
                        cut: false,
                    }),
                    Op::Read(r, max, below) => {
                        let Some(reader) = readers.get_mut(r) else { continue };
                        if reader.cut { continue }
                        let below = MessageId(below.map_or(u64::MAX, |b| next_id.saturating_sub(b)));
                        let mut got = Vec::new();
                        let read = log.read(&mut reader.cursor, below, max, |&id| got.push(id));
                        prop_assert!(got.iter().all(|id| *id < below));
                        let (cut, missed, want, at) = model.read(reader.at, max, below);
                        prop_assert_eq!(read.cut, cut);
                        prop_assert_eq!(read.missed, missed);
                        prop_assert_eq!(&got, &want);
                        reader.at = at;
                        reader.cut = cut;
                        prop_assert_eq!(log.next_id(reader.cursor), model.all.get(at).map(|e| e.0).filter(|_| !cut && at >= model.starts().0));
                        if let Some(m) = missed {
                            let (from, to) = (reader.at - want.len() - m.count as usize, reader.at - want.len());
                            reader.seen.extend(model.all[from..to].iter().map(|e| e.0));
                            prop_assert_eq!(model.all[from].0, m.first);
                            prop_assert_eq!(model.all[to - 1].0, m.last);
                        }
                        reader.seen.extend(got);
                        prop_assert_eq!(log.is_read(reader.cursor), reader.at == model.all.len());
                    }
                    Op::Leave(r) => {
                        if r < readers.len() {
                            readers.swap_remove(r);
                        }
                    }
                }
            }
            for reader in readers.iter().filter(|r| !r.cut) {
                let since: Vec<MessageId> = model.all[reader.joined..reader.at].iter().map(|e| e.0).collect();
                prop_assert_eq!(&reader.seen, &since);
            }
        }
    }

    #[test]
    fn a_reader_left_behind_is_told_exactly_what_it_missed_then_reads_on() {
        let mut log = RoomLog::new(300, 100);
        let mut reader = log.head();
        for id in 1..=5 {
            log.push(MessageId(id * 10), 100, id);
        }
        let mut got = Vec::new();
        let read = log.read(&mut reader, MessageId(u64::MAX), 1 << 20, |&i| got.push(i));
        assert_eq!(
            read.missed,
            Some(Missed {
                first: MessageId(10),
                last: MessageId(20),
                count: 2
            })
        );
        assert_eq!(got, [3, 4, 5]);
        assert!(log.is_read(reader));
    }

    #[test]
    fn a_read_below_an_id_reports_only_the_missed_entries_older_than_it() {
        let mut log = RoomLog::new(200, 100);
        let mut reader = log.head();
        for id in 1..=5 {
            log.push(MessageId(id * 10), 100, id);
        }
        // Entries 10, 20 and 30 are gone; a direct message 25 is waiting.
        let mut got = Vec::new();
        let read = log.read(&mut reader, MessageId(25), 1 << 20, |&i| got.push(i));
        let missed = |first, last, count| {
            Some(Missed {
                first: MessageId(first),
                last: MessageId(last),
                count,
            })
        };
        assert_eq!(read.missed, missed(10, 20, 2));
        assert!(got.is_empty());
        assert_eq!(log.next_id(reader), Some(MessageId(30)));
        let read = log.read(&mut reader, MessageId(u64::MAX), 1 << 20, |&i| got.push(i));
        assert_eq!(read.missed, missed(30, 30, 1));
        assert_eq!(got, [4, 5]);
    }

    #[test]
    fn a_reader_behind_even_the_ids_is_cut() {
        let mut log = RoomLog::new(1 << 20, 2);
        let mut reader = log.head();
        for id in 1..=3 {
            log.push(MessageId(id), 10, id);
        }
        let read = log.read(&mut reader, MessageId(u64::MAX), 1 << 20, |_| {});
        assert!(read.cut);
        assert_eq!(read.bytes, 0);
    }
}
