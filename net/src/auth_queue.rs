//! The auth pool's queue: fair across source addresses.
//!
//! Hashing a password is the server's most expensive request on purpose, so
//! the jobs waiting for a hashing thread are a resource one address must not
//! take for itself. A FIFO let 32 connections from one address registering
//! back to back push a login from elsewhere from 53 ms to 589 ms. Here jobs
//! wait in one FIFO per source, and the threads take from the sources in
//! turn (round-robin), so a job waits for at most one job of each other
//! source that has any, however many that source queued. Each source may
//! queue at most `per_source` jobs, and all together at most `capacity`;
//! beyond either the job is handed back, and the caller answers BUSY.
//!
//! A blocking queue (a mutex and a condition variable): its consumers are
//! the pool's blocking threads.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use confab_engine::Source;

/// The queue (see the module docs). `None` is the source of jobs without a
/// peer address, one more source like the others.
pub(crate) struct FairQueue<T> {
    inner: Mutex<Inner<T>>,
    ready: Condvar,
    capacity: usize,
    per_source: usize,
}

struct Inner<T> {
    /// Each source's jobs; a source is here only while it has some.
    jobs: HashMap<Option<Source>, VecDeque<T>>,
    /// Sources with jobs, in the order they are served next.
    turn: VecDeque<Option<Source>>,
    len: usize,
    closed: bool,
}

impl<T> FairQueue<T> {
    /// At most `capacity` jobs, `per_source` from one source (both at least 1).
    pub(crate) fn new(capacity: usize, per_source: usize) -> FairQueue<T> {
        FairQueue {
            inner: Mutex::new(Inner {
                jobs: HashMap::new(),
                turn: VecDeque::new(),
                len: 0,
                closed: false,
            }),
            ready: Condvar::new(),
            capacity: capacity.max(1),
            per_source: per_source.max(1),
        }
    }

    /// Queues `job` from `source`; hands it back if the queue, or the
    /// source's share of it, is full, or the queue is closed.
    pub(crate) fn push(&self, source: Option<Source>, job: T) -> Result<(), T> {
        let mut inner = self.lock();
        if inner.closed || inner.len >= self.capacity {
            return Err(job);
        }
        let queued = inner.jobs.get(&source).map_or(0, VecDeque::len);
        if queued >= self.per_source {
            return Err(job);
        }
        if queued == 0 {
            inner.turn.push_back(source);
        }
        inner.jobs.entry(source).or_default().push_back(job);
        inner.len += 1;
        drop(inner);
        self.ready.notify_one();
        Ok(())
    }

    /// The next job in turn, waiting for one; `None` once the queue is
    /// closed and empty.
    pub(crate) fn pop_blocking(&self) -> Option<T> {
        let mut inner = self.lock();
        loop {
            if let Some(job) = inner.pop() {
                return Some(job);
            }
            if inner.closed {
                return None;
            }
            inner = self
                .ready
                .wait(inner)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The next job in turn, if one waits.
    pub(crate) fn try_pop(&self) -> Option<T> {
        self.lock().pop()
    }

    /// Jobs waiting (for `confab-server status`).
    pub(crate) fn len(&self) -> usize {
        self.lock().len
    }

    /// Whether no job waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().len == 0
    }

    /// No more jobs are taken; the threads finish what is queued.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        // Each update is consistent before anything that could panic.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T> Inner<T> {
    fn pop(&mut self) -> Option<T> {
        let source = self.turn.pop_front()?;
        let queue = self.jobs.get_mut(&source)?;
        let job = queue.pop_front();
        if queue.is_empty() {
            self.jobs.remove(&source);
        } else {
            self.turn.push_back(source);
        }
        if job.is_some() {
            self.len -= 1;
        }
        job
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Option<Source> = Some(Source(1));
    const B: Option<Source> = Some(Source(2));
    const C: Option<Source> = Some(Source(3));

    fn drain(q: &FairQueue<&'static str>) -> Vec<&'static str> {
        q.close();
        std::iter::from_fn(|| q.pop_blocking()).collect()
    }

    #[test]
    fn sources_are_served_in_turn_each_in_its_own_order() {
        let q = FairQueue::new(100, 100);
        for job in ["a1", "a2", "a3", "a4"] {
            q.push(A, job).expect("room");
        }
        q.push(B, "b1").expect("room");
        q.push(None, "n1").expect("room");
        q.push(B, "b2").expect("room");
        assert_eq!(drain(&q), ["a1", "b1", "n1", "a2", "b2", "a3", "a4"]);
    }

    #[test]
    fn a_late_source_waits_for_one_job_of_each_other_source_only() {
        let q = FairQueue::new(100, 100);
        for _ in 0..30 {
            q.push(A, "flood").expect("room");
        }
        assert_eq!(q.pop_blocking(), Some("flood"));
        q.push(C, "login").expect("room");
        assert_eq!(q.pop_blocking(), Some("flood"));
        assert_eq!(q.pop_blocking(), Some("login"));
    }

    #[test]
    fn one_source_cannot_take_more_than_its_share_nor_all_more_than_the_capacity() {
        let q = FairQueue::new(5, 3);
        for _ in 0..3 {
            q.push(A, "a").expect("room");
        }
        assert_eq!(q.push(A, "a4"), Err("a4"));
        q.push(B, "b1").expect("room for another source");
        q.push(C, "c1").expect("room for another source");
        assert_eq!(q.push(C, "c2"), Err("c2"), "full");
        // Once one of A's is taken, A may queue one more.
        assert_eq!(q.pop_blocking(), Some("a"));
        q.push(A, "a5").expect("room again");
        assert!(!q.is_empty());
    }

    #[test]
    fn a_closed_queue_refuses_new_jobs_and_hands_out_the_queued_ones() {
        let q = FairQueue::new(5, 5);
        q.push(A, "a1").expect("room");
        q.close();
        assert_eq!(q.push(A, "a2"), Err("a2"));
        assert_eq!(q.pop_blocking(), Some("a1"));
        assert_eq!(q.pop_blocking(), None);
        assert!(q.is_empty());
    }

    #[test]
    fn a_waiting_thread_is_woken_by_a_push() {
        let q = std::sync::Arc::new(FairQueue::new(5, 5));
        let taker = {
            let q = q.clone();
            std::thread::spawn(move || q.pop_blocking())
        };
        q.push(B, "b1").expect("room");
        assert_eq!(taker.join().expect("no panic"), Some("b1"));
    }
}
