//! A storage thread's queue: FIFO, bounded by hand. Jobs that may be
//! refused count against the bound, jobs bounded by something else (one
//! offline mark or one replay per session) always go in, and all keep one
//! order. The producer's end ([`Queue`], in the effect dispatcher) and the
//! consumer's ([`Jobs`], owned by the worker) share only the count, so a
//! worker never reaches back into the dispatcher to say what it took.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_channel::{Receiver, Sender};

/// The producer's end (see the module docs).
pub(crate) struct Queue<J> {
    tx: Sender<J>,
    queued: Arc<AtomicUsize>,
    cap: usize,
}

/// The consumer's end: the worker's own.
pub(crate) struct Jobs<J> {
    rx: Receiver<J>,
    queued: Arc<AtomicUsize>,
}

impl<J> Clone for Jobs<J> {
    fn clone(&self) -> Jobs<J> {
        Jobs {
            rx: self.rx.clone(),
            queued: self.queued.clone(),
        }
    }
}

impl<J> Queue<J> {
    /// A queue that refuses refusable jobs beyond `cap` waiting.
    pub(crate) fn new(cap: usize) -> (Queue<J>, Jobs<J>) {
        let (tx, rx) = async_channel::unbounded();
        let queued = Arc::new(AtomicUsize::new(0));
        let q = Queue {
            tx,
            queued: queued.clone(),
            cap,
        };
        (q, Jobs { rx, queued })
    }

    /// Queues a job that counts against the bound, or hands it back if the
    /// queue is full (or closed).
    pub(crate) fn push_refusable(&self, job: J) -> Result<(), J> {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.cap {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(job);
        }
        self.tx.try_send(job).map_err(|e| {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            e.into_inner()
        })
    }

    /// Queues a job that is never refused; hands it back if the queue is closed.
    pub(crate) fn push(&self, job: J) -> Result<(), J> {
        self.tx.try_send(job).map_err(|e| e.into_inner())
    }

    /// Closes the queue; the consumer drains it and stops.
    pub(crate) fn close(&self) {
        self.tx.close();
    }

    /// How many jobs wait (for `confab-server status` and metrics).
    pub(crate) fn len(&self) -> usize {
        self.tx.len()
    }
}

impl<J> Jobs<J> {
    /// The next job, waiting for one; `Err` once the queue is closed and empty.
    pub(crate) fn recv_blocking(&self) -> Result<J, async_channel::RecvError> {
        self.rx.recv_blocking()
    }

    /// The next job if one waits.
    pub(crate) fn try_recv(&self) -> Result<J, async_channel::TryRecvError> {
        self.rx.try_recv()
    }

    /// Whether no job waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// How many jobs wait.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.rx.len()
    }

    /// The worker took `n` refusable jobs: they no longer count against
    /// the bound.
    pub(crate) fn taken(&self, n: usize) {
        self.queued.fetch_sub(n, Ordering::AcqRel);
    }
}
