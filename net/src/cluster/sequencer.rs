//! The one path by which committed messages reach this node's hub in a
//! cluster: this node's own commits (from its storage writer, with their
//! sender as origin) and other nodes' (from the bus) meet here and go to
//! the hub strictly in id order, since the hub's resume bookmark is
//! "everything up to id N".
//!
//! A reorder buffer keyed by id holds what arrived early. An id that has
//! not arrived within [`GAP_DEADLINE`] (its node died between commit and
//! publish, the bus dropped it, or the bus is down) is read from
//! PostgreSQL, as is everything up to the counter, which is polled every
//! [`POLL`]: so a node that dies after committing loses nothing, and a
//! bus outage is filled from the database. An id at most the counter that
//! PostgreSQL no longer has was deleted (retention) and is skipped.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_engine::effect::StoredMessage;
use confab_engine::{ConnId, Input, MessageId};
use log::{debug, warn};

use crate::inbox::Results;
use crate::store::postgres::PgStore;

/// How long an id may be missing before it is read from PostgreSQL.
pub(crate) const GAP_DEADLINE: Duration = Duration::from_millis(150);
/// How often the counter is read, to find ids the bus never brought.
pub(crate) const POLL: Duration = Duration::from_millis(300);
/// Most messages held out of order; beyond, remote ones are dropped and
/// read from PostgreSQL when their turn comes.
pub(crate) const MAX_BUFFERED: usize = 100_000;
/// How long a message this node committed, read back from PostgreSQL,
/// waits for the writer's own copy (which names its sender, who must not
/// get it twice) before it goes out without (the writer's answer was lost).
pub(crate) const OWN_WAIT: Duration = Duration::from_secs(2);
/// Most messages read from PostgreSQL at once.
const FETCH: i64 = 2_000;

/// What the sequencer is fed.
pub(crate) enum Fed {
    /// This node's commits, in commit order, with their senders.
    Local(Vec<(StoredMessage, Option<ConnId>)>),
    /// Another node's commit, from the bus.
    Remote(StoredMessage),
}

/// The reorder buffer and its deadlines.
/// Where a held message came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum From {
    /// The bus, or PostgreSQL (another node's).
    Elsewhere,
    /// This node's writer, with the sender.
    Here(Option<ConnId>),
    /// PostgreSQL, committed by this node: wait for [`From::Here`] until then.
    OwnSince(Instant),
}

pub(crate) struct Sequencer {
    next: MessageId,
    held: BTreeMap<MessageId, (StoredMessage, From)>,
    /// Since when `next` has been missing while something later is known.
    missing_since: Option<Instant>,
    /// The newest id known to be committed (the counter, or a later id held).
    known: MessageId,
    /// Ids up to here that are not held were deleted from PostgreSQL.
    gone_upto: MessageId,
    last_poll: Instant,
}

impl Sequencer {
    pub(crate) fn new(last_id: MessageId, now: Instant) -> Sequencer {
        Sequencer {
            next: last_id.next(),
            held: BTreeMap::new(),
            missing_since: None,
            known: last_id,
            gone_upto: last_id,
            last_poll: now,
        }
    }

    /// Takes a message; a local one wins over the same id from elsewhere
    /// (it carries the sender, whose copy is its ACK).
    pub(crate) fn take(&mut self, m: StoredMessage) {
        if self.held.len() >= MAX_BUFFERED {
            return;
        }
        self.hold(m, From::Elsewhere);
    }

    /// This node's writer's commit (never dropped: nothing else has its sender).
    pub(crate) fn take_local(&mut self, m: StoredMessage, origin: Option<ConnId>) {
        self.hold(m, From::Here(origin));
    }

    fn hold(&mut self, m: StoredMessage, from: From) {
        if m.id < self.next {
            return;
        }
        self.known = self.known.max(m.id);
        match (self.held.get(&m.id), from) {
            (Some((_, From::Here(_))), _) => {}
            (Some((_, From::OwnSince(_))), From::Elsewhere) => {}
            _ => {
                self.held.insert(m.id, (m, from));
            }
        }
    }

    /// Moves every message now in order out, for the hub.
    pub(crate) fn ready(&mut self, now: Instant) -> Vec<Input> {
        let mut out = Vec::new();
        while let Some(entry) = self.held.first_entry() {
            if *entry.key() != self.next {
                if self.next <= self.gone_upto {
                    debug!(
                        "id {} is gone from PostgreSQL (retention); skipped",
                        self.next.0
                    );
                    self.next = self.next.next();
                    continue;
                }
                break;
            }
            let origin = match entry.get().1 {
                From::Here(origin) => origin,
                From::Elsewhere => None,
                From::OwnSince(t) if now.duration_since(t) >= OWN_WAIT => None,
                From::OwnSince(_) => break,
            };
            let (message, _) = entry.remove();
            self.next = message.id.next();
            out.push(Input::Committed { message, origin });
        }
        if self.known >= self.next {
            self.missing_since.get_or_insert(now);
        } else {
            self.missing_since = None;
        }
        if !out.is_empty() {
            // Progress: the deadline counts from now for what is missing.
            self.missing_since = (self.known >= self.next).then_some(now);
        }
        out
    }

    /// Whether PostgreSQL should be asked now (a gap past its deadline,
    /// or the counter's poll).
    pub(crate) fn due(&self, now: Instant) -> bool {
        self.missing_since
            .is_some_and(|t| now.duration_since(t) >= GAP_DEADLINE)
            || now.duration_since(self.last_poll) >= POLL
    }

    /// Takes what PostgreSQL holds from `next` on (`last`: its counter):
    /// ids up to the newest row read, or up to `last` if none was, that
    /// are neither there nor held were deleted, and are skipped.
    pub(crate) fn fetched(
        &mut self,
        last: MessageId,
        rows: Vec<(StoredMessage, bool)>,
        now: Instant,
    ) {
        self.last_poll = now;
        self.known = self.known.max(last);
        let upto = rows.last().map_or(last, |(m, _)| m.id);
        // Held past the buffer's bound: these are the ids' only copies.
        for (m, mine) in rows {
            let from = if mine {
                From::OwnSince(now)
            } else {
                From::Elsewhere
            };
            self.hold(m, from);
        }
        self.gone_upto = self.gone_upto.max(upto);
        if self.held.is_empty() && self.next <= upto {
            self.next = upto.next();
        }
    }

    pub(crate) fn next(&self) -> MessageId {
        self.next
    }

    /// Whether `next` is missing (the fetch is about a gap, not a poll).
    fn gap(&self) -> bool {
        self.known >= self.next
    }
}

/// The sequencer's thread: feeds the hub in id order until every sender
/// of `rx` is gone.
pub(crate) fn run(
    rx: Receiver<Fed>,
    results: Arc<dyn Results>,
    mut store: PgStore,
    mut seq: Sequencer,
) {
    // While PostgreSQL is down every fetch fails: said once a while.
    let mut warned: Option<Instant> = None;
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(Fed::Local(batch)) => {
                for (m, origin) in batch {
                    seq.take_local(m, origin);
                }
            }
            Ok(Fed::Remote(m)) => seq.take(m),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        while let Ok(fed) = rx.try_recv() {
            match fed {
                Fed::Local(batch) => batch.into_iter().for_each(|(m, o)| seq.take_local(m, o)),
                Fed::Remote(m) => seq.take(m),
            }
        }
        let now = Instant::now();
        let mut out = seq.ready(now);
        if seq.due(now) {
            let gap = seq.gap();
            match store.committed_from(seq.next(), FETCH) {
                Ok((last, rows)) => {
                    if gap && !rows.is_empty() {
                        debug!(
                            "filled {} messages from PostgreSQL from id {}",
                            rows.len(),
                            seq.next().0
                        );
                    }
                    seq.fetched(last, rows, now);
                    out.extend(seq.ready(now));
                }
                Err(e) => {
                    if warned.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10)) {
                        warn!("cannot read missing messages from PostgreSQL: {e}");
                        warned = Some(now);
                    }
                    seq.fetched(MessageId(0), Vec::new(), now);
                }
            }
        }
        if !out.is_empty() {
            results.deliver(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_engine::frame::Target;
    use confab_engine::Name;

    fn m(id: u64) -> StoredMessage {
        StoredMessage {
            id: MessageId(id),
            timestamp_ms: 0,
            sender: Name::new("ann").expect("valid"),
            target: Target::Room,
            body: format!("{id}"),
            kind: confab_engine::MessageKind::Message,
            tags: confab_engine::ClientTags::default(),
        }
    }

    fn ids(out: &[Input]) -> Vec<u64> {
        out.iter()
            .map(|i| match i {
                Input::Committed { message, .. } => message.id.0,
                _ => 0,
            })
            .collect()
    }

    #[test]
    fn messages_go_out_in_id_order_and_a_gap_waits_for_its_deadline() {
        let t0 = Instant::now();
        let mut s = Sequencer::new(MessageId(10), t0);
        s.take(m(13));
        s.take(m(11));
        assert_eq!(ids(&s.ready(t0)), [11]);
        assert!(!s.due(t0 + Duration::from_millis(10)));
        assert!(s.due(t0 + GAP_DEADLINE));
        s.take(m(12));
        s.take(m(12));
        assert_eq!(ids(&s.ready(t0)), [12, 13]);
        s.take(m(11));
        assert_eq!(ids(&s.ready(t0)), Vec::<u64>::new());
    }

    #[test]
    fn what_postgres_has_fills_a_gap_and_what_it_lost_is_skipped() {
        let t0 = Instant::now();
        let mut s = Sequencer::new(MessageId(0), t0);
        s.take(m(5));
        assert!(s.ready(t0).is_empty());
        // 1 and 3 were deleted by retention; 2 and 4 were never published.
        let rows = [2, 4, 5, 6].map(|i| (m(i), false)).to_vec();
        s.fetched(MessageId(6), rows, t0);
        assert_eq!(ids(&s.ready(t0)), [2, 4, 5, 6]);
        s.fetched(MessageId(9), vec![], t0);
        assert_eq!(s.next(), MessageId(10));
    }

    #[test]
    fn a_local_commit_keeps_its_sender_over_the_same_id_from_elsewhere() {
        let t0 = Instant::now();
        let mut s = Sequencer::new(MessageId(0), t0);
        let mut hub = confab_engine::Hub::new(Default::default(), Vec::new(), MessageId(0));
        let conn = hub.connect(
            t0,
            confab_engine::Source(1),
            confab_engine::Protocol::CONFAB,
        );
        s.take(m(1));
        s.take_local(m(1), Some(conn));
        // Its own commit read back from PostgreSQL waits for the writer's.
        s.fetched(MessageId(2), vec![(m(2), true)], t0);
        match s.ready(t0).as_slice() {
            [Input::Committed { origin, .. }] => assert_eq!(*origin, Some(conn)),
            other => panic!("{other:?}"),
        }
        s.take_local(m(2), Some(conn));
        assert!(matches!(
            s.ready(t0).as_slice(),
            [Input::Committed {
                origin: Some(_),
                ..
            }]
        ));
        // One whose writer's copy never comes goes out after OWN_WAIT.
        s.fetched(MessageId(3), vec![(m(3), true)], t0);
        assert!(s.ready(t0).is_empty());
        assert_eq!(ids(&s.ready(t0 + OWN_WAIT)), [3]);
    }
}
