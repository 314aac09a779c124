//! The load generator's runtime: a smol executor on a few threads, one
//! monotonic clock for every timestamp, and latency histograms kept per
//! thread (recording takes no lock and allocates nothing) and merged when
//! the run ends.

use std::cell::RefCell;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_executor::Executor;
use easy_parallel::Parallel;
use hdrhistogram::Histogram;

/// Nanoseconds since the bench started (the process-wide monotonic epoch).
/// Bodies carry this, so sender and receiver compare the same clock.
pub(crate) fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Lowest and highest latency a histogram tracks, in ns (1 µs .. 10 min);
/// values outside are clamped.
const LOW_NS: u64 = 1_000;
const HIGH_NS: u64 = 600_000_000_000;

/// A latency histogram in nanoseconds, 3 significant digits.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(LOW_NS, HIGH_NS, 3).expect("constant bounds are valid")
}

/// What one thread recorded.
pub(crate) struct Recorded {
    /// Send → MESSAGE at a receiver.
    pub(crate) delivery: Histogram<u64>,
    /// Send → ACK at the sender.
    pub(crate) ack: Histogram<u64>,
}

impl Default for Recorded {
    fn default() -> Recorded {
        Recorded::new()
    }
}

impl Recorded {
    fn new() -> Recorded {
        Recorded {
            delivery: histogram(),
            ack: histogram(),
        }
    }

    fn merge(&mut self, other: &Recorded) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.delivery.add(&other.delivery);
        let _ = self.ack.add(&other.ack);
    }
}

thread_local! {
    static LOCAL: RefCell<Option<Recorded>> = const { RefCell::new(None) };
}

fn with_local(f: impl FnOnce(&mut Recorded)) {
    LOCAL.with(|l| f(l.borrow_mut().get_or_insert_with(Recorded::new)));
}

/// Records a delivery latency on this thread.
pub(crate) fn record_delivery(ns: u64) {
    with_local(|r| r.delivery.saturating_record(ns.clamp(LOW_NS, HIGH_NS)));
}

/// Records an ACK latency on this thread.
pub(crate) fn record_ack(ns: u64) {
    with_local(|r| r.ack.saturating_record(ns.clamp(LOW_NS, HIGH_NS)));
}

fn take_local() -> Recorded {
    LOCAL.with(|l| l.borrow_mut().take()).unwrap_or_default()
}

/// The executor handed to a run's main future, to spawn client tasks on.
pub(crate) type Ex = Arc<Executor<'static>>;

/// Runs `main` on an executor driven by `threads` threads (the calling one
/// included) and returns its output with everything the threads recorded.
/// When `main` finishes, the other threads stop; tasks still running are
/// cancelled when the executor is dropped (closing their sockets).
pub(crate) fn run<T, F>(threads: usize, main: impl FnOnce(Ex) -> F) -> (T, Recorded)
where
    F: Future<Output = T>,
{
    let ex: Ex = Arc::new(Executor::new());
    // Nothing recorded before this run counts.
    drop(take_local());
    let (stop, stopped) = async_channel::bounded::<()>(1);
    let main = main(ex.clone());
    let (others, (out, mut recorded)) = Parallel::new()
        .each(0..threads.max(1) - 1, |_| {
            drop(take_local());
            async_io::block_on(ex.run(stopped.recv())).ok();
            take_local()
        })
        .finish(|| {
            let out = async_io::block_on(ex.run(main));
            drop(stop);
            (out, take_local())
        });
    for r in &others {
        recorded.merge(r);
    }
    drop(ex);
    drop(take_local());
    (out, recorded)
}

/// Runs `work` on one thread per part (scoped: it may borrow) and returns
/// their outputs, in order, with everything the threads recorded.
pub(crate) fn on_threads<P: Send, T: Send>(
    parts: Vec<P>,
    work: impl Fn(P) -> T + Sync,
) -> (Vec<T>, Recorded) {
    let work = &work;
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| {
                scope.spawn(move || {
                    drop(take_local());
                    let out = work(part);
                    (out, take_local())
                })
            })
            .collect();
        let mut outs = Vec::with_capacity(handles.len());
        let mut recorded = Recorded::new();
        for h in handles {
            match h.join() {
                Ok((out, r)) => {
                    recorded.merge(&r);
                    outs.push(out);
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        (outs, recorded)
    })
}

/// Runs `f` with a deadline: `None` if it did not finish in time.
pub(crate) async fn timeout<T>(limit: Duration, f: impl Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(f.await) }, async {
        async_io::Timer::after(limit).await;
        None
    })
    .await
}

/// Percentiles of a latency histogram, in microseconds (for the report).
pub(crate) fn summary(h: &Histogram<u64>) -> serde_json::Value {
    let us = |v: u64| v as f64 / 1000.0;
    if h.is_empty() {
        return serde_json::Value::Null;
    }
    serde_json::json!({
        "count": h.len(),
        "p50_us": us(h.value_at_quantile(0.50)),
        "p99_us": us(h.value_at_quantile(0.99)),
        "p999_us": us(h.value_at_quantile(0.999)),
        "max_us": us(h.max()),
        "mean_us": h.mean() / 1000.0,
    })
}

/// One line for the human summary.
pub(crate) fn describe(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return "none".into();
    }
    let ms = |v: u64| v as f64 / 1e6;
    format!(
        "p50 {:.3} ms, p99 {:.3} ms, p999 {:.3} ms, max {:.3} ms ({} samples)",
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max()),
        h.len()
    )
}
