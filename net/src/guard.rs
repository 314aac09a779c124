//! What a connection's task owes when it ends, however it ends (even
//! cancelled at the shutdown deadline): the hub's disconnect with its log
//! line, and the accept loop's notice that the task is done. Used by TCP,
//! TLS and WebSocket connections alike.

use async_channel::Sender;
use confab_engine::ConnId;
use log::info;

use crate::conn::End;
use crate::shared::Shared;

/// Disconnects a session from the hub exactly once, and logs why.
pub(crate) struct Disconnect<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) conn: ConnId,
    /// How the connection ended; `None`: dropped at the shutdown deadline.
    pub(crate) end: Option<End>,
}

impl Drop for Disconnect<'_> {
    fn drop(&mut self) {
        let conn = self.conn;
        let (reason, peer) = self.shared.with_core(|core, now| {
            let reason = core.hub.close_reason(conn).map(ToString::to_string);
            (reason, core.disconnect(now, conn))
        });
        let end = match &self.end {
            Some(end) => end.to_string(),
            None => "dropped at the shutdown deadline".to_owned(),
        };
        let why = match (reason, &self.end) {
            (Some(reason), Some(End::Closed)) => reason,
            (Some(reason), _) => format!("{reason} ({end})"),
            (None, _) => end,
        };
        match peer {
            Some(peer) => info!("connection closed peer={peer} conn={conn}: {why}"),
            None => info!("connection closed conn={conn}: {why}"),
        }
    }
}

/// Tells the accept loop that task `id` is done, when dropped.
pub(crate) struct Done<'a> {
    pub(crate) done: &'a Sender<u64>,
    pub(crate) id: u64,
}

impl Drop for Done<'_> {
    fn drop(&mut self) {
        let _ = self.done.try_send(self.id);
    }
}
