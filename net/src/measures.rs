//! What the shell measures itself, for `/metrics` ([`crate::metrics`]):
//! a leaf the workers and the accept loop write to without seeing the hub.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

/// What the shell measures (see the module docs).
pub(crate) struct NetMetrics {
    /// Seconds one storage group commit took.
    pub(crate) commit_seconds: Histogram,
    /// Writes in one group commit.
    pub(crate) commit_batch: Histogram,
    /// Seconds one password check or hash took.
    pub(crate) hash_seconds: Histogram,
    /// Connections accepted / turned away at accept.
    pub(crate) accepted: AtomicU64,
    pub(crate) refused: AtomicU64,
    /// TLS handshakes: completed, failed, timed out.
    pub(crate) tls_ok: AtomicU64,
    pub(crate) tls_failed: AtomicU64,
    pub(crate) tls_timeout: AtomicU64,
}

/// The process's [`NetMetrics`].
pub(crate) static NET: LazyLock<NetMetrics> = LazyLock::new(|| NetMetrics {
    commit_seconds: Histogram::new(exponential_buckets(0.000_1, 2.0, 16)),
    commit_batch: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
    hash_seconds: Histogram::new(exponential_buckets(0.000_5, 2.0, 14)),
    accepted: AtomicU64::new(0),
    refused: AtomicU64::new(0),
    tls_ok: AtomicU64::new(0),
    tls_failed: AtomicU64::new(0),
    tls_timeout: AtomicU64::new(0),
});

/// Adds one to a [`NET`] counter.
pub(crate) fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}
