//! The hub behind one lock, and the rule for touching it.
//!
//! Every thread (I/O threads, the auth pool, the storage threads) reaches the
//! engine through [`Shared::with_core`], which takes the lock once, runs the
//! caller's batch (a whole read, a drain, a batch of results), then drains
//! [`Hub::poll_output`] before letting go, as the engine requires after
//! every call that feeds it. Writer wake-ups and effects are collected into
//! local vectors and acted on after the lock is released, so the hold is
//! just engine work plus an index per woken writer; a broadcast to N
//! sessions is one hold.
//!
//! The lock is a `std::sync::Mutex`: holds are short and never span an
//! `.await`, so an async lock would only add a queue; the blocking pool
//! threads must take it too, which a plain mutex does directly; std's mutex
//! is futex-based (an uncontended lock is one atomic) and needs no extra
//! crate. Holds and contention are counted (`try_lock` first; see
//! [`Counters`]) and logged at shutdown.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::task::Waker;
use std::time::Instant;

use confab_engine::{ConnId, Effect, Hub, Input, Output, Protocol, Source};

use crate::counters::Counters;
use crate::effects::{Effects, Routed};
use crate::inbox::Results;

/// What the lock guards.
pub(crate) struct Core {
    pub(crate) hub: Hub,
    /// Each live connection's peer and, while its writer waits, its waker,
    /// at the connection's [`ConnId::index`]: the hub keeps those dense, so
    /// this is as long as the most connections there were at once, with no
    /// hashing per wake-up and no map's slack per connection.
    conns: Vec<Option<ConnEntry>>,
    /// The writers' wake flags, [`WakeFlags::LEN`] connections' to a block,
    /// block `i / LEN` for the connection at index `i`: blocks are never
    /// freed, so a task's flag is there as long as the task is.
    flags: Vec<Arc<WakeFlags>>,
}

struct ConnEntry {
    /// Which connection holds the slot (the index alone is reused).
    conn: ConnId,
    peer: SocketAddr,
    /// The connection task's waker, from its writer's first drain on: the
    /// hub wakes the writer through it, and the sweep the reader.
    waker: Option<Waker>,
    /// The writer waits for the hub to wake it.
    parked: bool,
}

/// Set when the hub wakes a writer: the writer's task is also woken by its
/// reader, and only its flag says the lock is worth taking. One allocation
/// for [`WakeFlags::LEN`] connections: a flag of its own (an
/// `Arc<AtomicBool>`) was 32 bytes of heap per connection.
pub(crate) struct WakeFlags([AtomicBool; WakeFlags::LEN]);

impl WakeFlags {
    const LEN: usize = 256;

    /// `conn`'s flag (the block must be `conn`'s, from [`Core::connect`]).
    pub(crate) fn of(&self, conn: ConnId) -> &AtomicBool {
        &self.0[conn.index() % WakeFlags::LEN]
    }
}

impl Core {
    /// Registers a new connection with the hub; returns the block of its
    /// writer's wake flag too.
    pub(crate) fn connect(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        source: Source,
        protocol: Protocol,
    ) -> (ConnId, Arc<WakeFlags>) {
        let conn = self.hub.connect(now, source, protocol);
        let i = conn.index();
        if self.conns.len() <= i {
            self.conns.resize_with(i + 1, || None);
        }
        self.conns[i] = Some(ConnEntry {
            conn,
            peer,
            waker: None,
            parked: false,
        });
        let block = i / WakeFlags::LEN;
        while self.flags.len() <= block {
            let flags = std::array::from_fn(|_| AtomicBool::new(false));
            self.flags.push(Arc::new(WakeFlags(flags)));
        }
        let flags = self.flags[block].clone();
        // The slot's previous tenant has gone (the hub reuses an index only
        // after its disconnect, which its task makes as it ends).
        flags.of(conn).store(false, Ordering::Release);
        (conn, flags)
    }

    fn entry(&mut self, conn: ConnId) -> Option<&mut ConnEntry> {
        self.conns
            .get_mut(conn.index())
            .and_then(Option::as_mut)
            .filter(|e| e.conn == conn)
    }

    /// How many connection slots there are (the most connections at once).
    pub(crate) fn slots(&self) -> usize {
        self.conns.len()
    }

    /// Keeps `conn`'s task's waker (a clone only if it changed).
    pub(crate) fn remember_waker(&mut self, conn: ConnId, waker: &Waker) {
        if let Some(e) = self.entry(conn) {
            match &mut e.waker {
                Some(w) if w.will_wake(waker) => {}
                slot => *slot = Some(waker.clone()),
            }
        }
    }

    /// Parks `conn`'s writer until the hub wakes it (through the waker
    /// [`Core::remember_waker`] kept).
    pub(crate) fn park_writer(&mut self, conn: ConnId) {
        if let Some(e) = self.entry(conn) {
            e.parked = true;
        }
    }

    /// The wakers of the tasks among `count` slots from `*next` (then moved
    /// on, wrapping) whose hub deadline is no later than `horizon`: the
    /// sweep's step ([`crate::sweep`]).
    pub(crate) fn near_deadlines(
        &mut self,
        horizon: Instant,
        next: &mut usize,
        count: usize,
    ) -> Vec<Waker> {
        if *next >= self.conns.len() {
            *next = 0;
        }
        let end = (*next + count).min(self.conns.len());
        let hub = &self.hub;
        let near = self.conns[*next..end]
            .iter()
            .flatten()
            .filter(|e| hub.poll_timeout(e.conn).is_some_and(|t| t <= horizon))
            .filter_map(|e| e.waker.clone())
            .collect();
        *next = end;
        near
    }

    /// Frees `conn` in the hub and here; returns its peer (kept here only,
    /// not in every connection's task too).
    pub(crate) fn disconnect(&mut self, now: Instant, conn: ConnId) -> Option<SocketAddr> {
        self.hub.disconnect(now, conn);
        self.entry(conn)?;
        self.conns[conn.index()].take().map(|e| e.peer)
    }
}

/// The hub, the connection map and the effect queues (see the module docs).
pub(crate) struct Shared {
    core: Mutex<Core>,
    pub(crate) counters: Counters,
    pub(crate) effects: Effects,
}

impl Shared {
    pub(crate) fn new(hub: Hub, effects: Effects) -> Shared {
        Shared {
            core: Mutex::new(Core {
                hub,
                conns: Vec::new(),
                flags: Vec::new(),
            }),
            counters: Counters::default(),
            effects,
        }
    }

    /// Runs `f` on the hub under the lock, drains its outputs, then wakes
    /// writers and dispatches effects outside the lock. `now` is read under
    /// the lock, so the hub never sees time go backwards across threads.
    pub(crate) fn with_core<R>(&self, f: impl FnOnce(&mut Core, Instant) -> R) -> R {
        let mut wakers: Vec<Waker> = Vec::new();
        let mut effects: Vec<Routed> = Vec::new();
        let r = {
            let mut core = self.lock();
            let r = f(&mut core, Instant::now());
            let core = &mut *core;
            while let Some(out) = core.hub.poll_output() {
                match out {
                    Output::Wake(conn) => {
                        let parked = core.entry(conn).filter(|e| e.parked);
                        if let Some(w) = parked.and_then(|e| {
                            e.parked = false;
                            e.waker.clone()
                        }) {
                            let flags = &core.flags[conn.index() / WakeFlags::LEN];
                            flags.of(conn).store(true, Ordering::Release);
                            wakers.push(w);
                        }
                    }
                    Output::Effect(effect) => {
                        let peer = match &effect {
                            Effect::Authenticate { conn, .. } | Effect::Register { conn, .. } => {
                                core.entry(*conn).map(|e| e.peer)
                            }
                            _ => None,
                        };
                        effects.push(Routed { effect, peer });
                    }
                }
            }
            r
        };
        if !wakers.is_empty() {
            Counters::add(&self.counters.wakes, wakers.len() as u64);
        }
        for w in wakers {
            w.wake();
        }
        if !effects.is_empty() {
            let refused = self.effects.dispatch(effects);
            if !refused.is_empty() {
                self.feed(refused);
            }
        }
        r
    }

    /// Hands results (and commits to route) to the hub in one lock hold,
    /// in order.
    pub(crate) fn feed<I: Into<Input>>(&self, inputs: Vec<I>) {
        self.with_core(|core, now| {
            for i in inputs {
                core.hub.handle_input(now, i.into());
            }
        });
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        Counters::add(&self.counters.lock_acquired, 1);
        match self.core.try_lock() {
            Ok(g) => g,
            Err(TryLockError::WouldBlock) => {
                Counters::add(&self.counters.lock_contended, 1);
                // A panic under the lock is a bug that has already been
                // reported; going on keeps serving the other sessions.
                self.core.lock().unwrap_or_else(PoisonError::into_inner)
            }
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
        }
    }
}

/// The workers' inbox: their results go to the hub in one lock hold per batch.
impl Results for Shared {
    fn deliver(&self, results: Vec<Input>) {
        self.feed(results);
    }
}
