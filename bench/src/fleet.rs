//! Many clients at once: each logs in (with a bounded number of logins in
//! flight), reports ready, waits for the start signal if told to, then runs
//! [`drive`] until the run cancels it.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_channel::{Receiver, Sender};
use async_executor::Task;
use async_io::Timer;
use confab_engine::Name;

use crate::conn::{login, Login};
use crate::drive::{drive, Counters, Role};
use crate::rt::{now_ns, timeout, Ex};

/// State shared by the clients of one group and the run's main task.
pub(crate) struct Fleet {
    /// Logged in.
    pub(crate) ready: AtomicU64,
    /// Gave up logging in.
    pub(crate) failed: AtomicU64,
    /// Logins after the first (reconnecting clients).
    pub(crate) relogins: AtomicU64,
    /// Monotonic ns when the last client became ready.
    pub(crate) last_ready_ns: AtomicU64,
    /// Connect + login durations, ns.
    pub(crate) login_ns: Mutex<Vec<u64>>,
    /// The pacing origin, set before the start signal.
    pub(crate) start_ns: AtomicU64,
    start: Receiver<()>,
    /// What the clients counted.
    pub(crate) counters: Counters,
    login: Login,
    login_timeout: Duration,
    permits: (Sender<()>, Receiver<()>),
}

/// One client of a fleet.
pub(crate) struct Member {
    pub(crate) name: Name,
    pub(crate) source: Option<IpAddr>,
    /// Another node of a cluster than the fleet's address (`--receiver-ports`).
    pub(crate) addr: Option<std::net::SocketAddr>,
    pub(crate) role: Role,
    /// Wait for [`Fleet::start`] before sending.
    pub(crate) wait_start: bool,
    /// Log in again whenever the server closes the connection.
    pub(crate) reconnect: bool,
}

/// The start signal of a fleet's waiting clients (see [`Start::go`]).
pub(crate) struct Start(Option<Sender<()>>);

impl Start {
    /// Lets every waiting client go, with `start_ns` as the pacing origin.
    pub(crate) fn go(&mut self, fleet: &Fleet, start_ns: u64) {
        fleet.start_ns.store(start_ns, Ordering::Release);
        // Closing the channel wakes every `recv` at once.
        self.0.take();
    }
}

impl Fleet {
    /// A fleet whose clients log in as `login` says, at most `concurrency`
    /// logins at a time, each within `login_timeout`.
    pub(crate) fn new(
        login: Login,
        concurrency: usize,
        login_timeout: Duration,
    ) -> (Arc<Fleet>, Start) {
        let (tx, rx) = async_channel::bounded::<()>(1);
        let fleet = Fleet {
            ready: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            relogins: AtomicU64::new(0),
            last_ready_ns: AtomicU64::new(0),
            login_ns: Mutex::new(Vec::new()),
            start_ns: AtomicU64::new(0),
            start: rx,
            counters: Counters::default(),
            login,
            login_timeout,
            permits: async_channel::bounded(concurrency.max(1)),
        };
        (Arc::new(fleet), Start(Some(tx)))
    }

    /// Spawns a client.
    pub(crate) fn spawn(self: &Arc<Fleet>, ex: &Ex, member: Member) -> Task<()> {
        let fleet = self.clone();
        ex.spawn(async move { fleet.member(member).await })
    }

    async fn member(&self, m: Member) {
        let mut first = true;
        loop {
            // A bounded channel used as a semaphore: a send takes a permit.
            if self.permits.0.send(()).await.is_err() {
                return;
            }
            let t0 = now_ns();
            let mut how = self.login.clone();
            how.source = m.source;
            if let Some(addr) = m.addr {
                how.addr = addr;
            }
            how.register = first;
            let result = timeout(self.login_timeout, login(&how, m.name)).await;
            let _ = self.permits.1.try_recv();
            let mut client = match result {
                Some(Ok(c)) => c,
                other => {
                    let e = match other {
                        Some(Err(e)) => e.to_string(),
                        _ => format!("login of {} timed out", m.name),
                    };
                    self.counters.note(e);
                    if first {
                        self.failed.fetch_add(1, Ordering::Relaxed);
                    }
                    if m.reconnect && !first {
                        Timer::after(Duration::from_millis(100)).await;
                        continue;
                    }
                    return;
                }
            };
            let t1 = now_ns();
            if first {
                if let Ok(mut v) = self.login_ns.lock() {
                    v.push(t1 - t0);
                }
                self.last_ready_ns.fetch_max(t1, Ordering::Relaxed);
                self.ready.fetch_add(1, Ordering::Release);
                if m.wait_start {
                    // Err once the sender is gone: that is the signal.
                    let _ = self.start.recv().await;
                }
            } else {
                self.relogins.fetch_add(1, Ordering::Relaxed);
            }
            first = false;
            let start = self.start_ns.load(Ordering::Acquire);
            if let Err(e) = drive(&mut client, &m.role, &self.counters, start).await {
                self.counters.note(e);
            }
            if !m.reconnect {
                return;
            }
            Timer::after(Duration::from_millis(10)).await;
        }
    }
}

/// Polls `done` every few ms until it holds or `limit` passes; whether it held.
pub(crate) async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        Timer::after(Duration::from_millis(2)).await;
    }
}

/// Percentiles of login durations, in ms.
pub(crate) fn login_summary(fleet: &Fleet) -> serde_json::Value {
    let mut v = fleet.login_ns.lock().map(|v| v.clone()).unwrap_or_default();
    if v.is_empty() {
        return serde_json::Value::Null;
    }
    v.sort_unstable();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize] as f64 / 1e6;
    serde_json::json!({
        "p50_ms": at(0.5),
        "p99_ms": at(0.99),
        "max_ms": at(1.0),
    })
}
