//! A server started on a thread of its own (tests and embedders): its
//! address, and a graceful shutdown that waits for it.

use std::net::SocketAddr;
use std::thread::JoinHandle;

use async_channel::Sender;
use log::warn;

use crate::options::StartError;

/// Counters reported when the server stops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections accepted.
    pub connections: u64,
    /// Acquisitions of the hub lock.
    pub lock_acquired: u64,
    /// Acquisitions that found the lock held.
    pub lock_contended: u64,
}

/// A server running on its own thread.
pub struct ServerHandle {
    pub(crate) addr: SocketAddr,
    pub(crate) stop: Sender<()>,
    pub(crate) thread: JoinHandle<Result<Stats, StartError>>,
}

impl ServerHandle {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Shuts it down gracefully and waits for it.
    pub fn shutdown(self) -> Stats {
        let _ = self.stop.try_send(());
        match self.thread.join() {
            Ok(Ok(stats)) => stats,
            Ok(Err(e)) => {
                warn!("the server failed: {e}");
                Stats::default()
            }
            Err(_) => {
                warn!("the server thread panicked");
                Stats::default()
            }
        }
    }
}
