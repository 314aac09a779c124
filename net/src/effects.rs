//! Where each [`Effect`] goes.
//!
//! - `Authenticate`/`Register`/`Login2` → the auth pool's queue, bounded in
//!   all and per source address and fair across sources ([`FairQueue`]). A
//!   login for a locked-out account or address is refused here, before any
//!   hashing.
//! - `Store`/`StoreGroup`/`UserOffline`/`SaveBookmark`/`SaveReadMarker`/
//!   `RevokeDevice` → the one storage writer, FIFO, so results come back in
//!   commit order (a bookmark, which a LOGOUT may wait for, is never
//!   refused).
//! - `LoadHistory`/`LoadTargets`/`Replay`/`ListDevices` → the storage
//!   reader pool's queue (bounded for history, targets and device lists;
//!   a replay, one per login, is never refused).
//!
//! Nothing here blocks: a full queue answers at once with `BUSY` and a
//! retry delay, and that answer goes back to the hub like any other result.

use std::net::SocketAddr;
use std::sync::Arc;

use confab_engine::{Effect, EffectResult, ProtocolError};
use log::warn;

use crate::auth_queue::FairQueue;
use crate::source::source_of;
use crate::workers::auth::{AuthJob, AuthKind, Login2Ask};
use crate::workers::queue::Queue;
use crate::workers::storage::{ReadJob, WriteJob};

/// An effect with the peer of its connection (for logins).
#[derive(Debug)]
pub(crate) struct Routed {
    pub(crate) effect: Effect,
    pub(crate) peer: Option<SocketAddr>,
}

/// The queues effects go to.
pub(crate) struct Effects {
    pub(crate) auth: Arc<FairQueue<AuthJob>>,
    pub(crate) writes: Queue<WriteJob>,
    pub(crate) reads: Queue<ReadJob>,
    /// One node of several: where `NodePresence` and `TellNodes` go.
    pub(crate) cluster: Option<Arc<crate::cluster::Cluster>>,
}

/// The answer when a queue is full (or closed at shutdown).
pub(crate) fn busy(doing: &'static str) -> ProtocolError {
    ProtocolError::Busy { doing }
}

impl Effects {
    /// Queues each effect; returns the answers for those refused at once.
    pub(crate) fn dispatch(&self, effects: Vec<Routed>) -> Vec<EffectResult> {
        let mut refused = Vec::new();
        for Routed { effect, peer } in effects {
            match effect {
                Effect::Authenticate {
                    conn,
                    user,
                    password,
                } => {
                    let job = AuthJob {
                        conn,
                        kind: AuthKind::Login(password),
                        user,
                        peer,
                    };
                    self.queue_auth(job, &mut refused);
                }
                Effect::Register {
                    conn,
                    user,
                    password,
                } => self.queue_auth(
                    AuthJob {
                        conn,
                        kind: AuthKind::Register(password),
                        user,
                        peer,
                    },
                    &mut refused,
                ),
                Effect::Login2 {
                    conn,
                    user,
                    secret,
                    device,
                    token_idle,
                    max_devices,
                    max_read_markers,
                } => {
                    let ask = Login2Ask {
                        secret,
                        device,
                        token_idle,
                        max_devices,
                        max_read_markers,
                    };
                    let kind = AuthKind::Login2(Box::new(ask));
                    let job = AuthJob {
                        conn,
                        kind,
                        user,
                        peer,
                    };
                    self.queue_auth(job, &mut refused);
                }
                other => self.dispatch_storage(other, &mut refused),
            }
        }
        refused
    }

    /// The writer's effects (and, through [`Effects::dispatch_reads`], the readers').
    fn dispatch_storage(&self, effect: Effect, refused: &mut Vec<EffectResult>) {
        match effect {
            Effect::Store {
                conn,
                reference,
                message,
                once,
            } => {
                let job = WriteJob::Message {
                    conn,
                    reference,
                    message,
                    once,
                };
                self.write(job, "storing messages", refused);
            }
            Effect::StoreGroup {
                conn,
                reference,
                op,
            } => {
                let job = WriteJob::Group {
                    conn,
                    reference,
                    op,
                };
                self.write(job, "storing group changes", refused);
            }
            Effect::UserOffline { user, seen_upto } => {
                if self
                    .writes
                    .push(WriteJob::Offline { user, seen_upto })
                    .is_err()
                {
                    warn!("the storage writer has stopped; the offline mark of {user} is lost");
                }
            }
            other => self.dispatch_reads(other, refused),
        }
    }

    /// The readers' effects.
    fn dispatch_reads(&self, effect: Effect, refused: &mut Vec<EffectResult>) {
        match effect {
            Effect::LoadHistory {
                conn,
                reference,
                user,
                target,
                window,
                limit,
            } => {
                let job = ReadJob::History {
                    conn,
                    reference,
                    user,
                    target,
                    window,
                    limit,
                };
                if let Err(job) = self.reads.push_refusable(job) {
                    refused.push(job.refused(busy("loading history")));
                }
            }
            Effect::LoadTargets {
                conn,
                reference,
                user,
                groups,
                between,
                limit,
            } => {
                let job = ReadJob::Targets {
                    conn,
                    reference,
                    user,
                    groups,
                    between,
                    limit,
                };
                if let Err(job) = self.reads.push_refusable(job) {
                    refused.push(job.refused(busy("listing conversations")));
                }
            }
            Effect::Replay {
                conn,
                user,
                scope,
                upto,
                max,
            } => {
                let job = ReadJob::Replay {
                    conn,
                    user,
                    scope,
                    upto,
                    max,
                };
                if let Err(job) = self.reads.push(job) {
                    refused.push(job.refused(busy("loading missed messages")));
                }
            }
            Effect::ListDevices {
                conn,
                reference,
                user,
            } => {
                let job = ReadJob::Devices {
                    conn,
                    reference,
                    user,
                };
                if let Err(job) = self.reads.push_refusable(job) {
                    refused.push(job.refused(busy("listing devices")));
                }
            }
            other => self.dispatch_v2(other, refused),
        }
    }

    /// Protocol version 2's writes.
    fn dispatch_v2(&self, effect: Effect, refused: &mut Vec<EffectResult>) {
        match effect {
            Effect::SaveBookmark {
                device,
                upto,
                logout,
            } => {
                let job = WriteJob::Bookmark {
                    device,
                    upto,
                    logout,
                };
                if self.writes.push(job).is_err() {
                    refused.push(EffectResult::BookmarkSaved {
                        device,
                        upto,
                        logout,
                        saved: false,
                    });
                }
            }
            Effect::SaveReadMarker {
                conn,
                user,
                target,
                id,
                max,
            } => {
                let job = WriteJob::ReadMarker {
                    conn,
                    user,
                    target,
                    id,
                    max,
                };
                self.write(job, "storing read markers", refused);
            }
            Effect::RevokeDevice {
                conn,
                reference,
                user,
                device,
            } => {
                let job = WriteJob::RevokeDevice {
                    conn,
                    reference,
                    user,
                    device,
                };
                self.write(job, "revoking devices", refused);
            }
            Effect::Moderate {
                conn,
                reference,
                record,
            } => {
                let job = WriteJob::Moderate {
                    conn,
                    reference,
                    record,
                };
                self.write(job, "storing moderation", refused);
            }
            Effect::BanAddress {
                conn,
                reference,
                record,
            } => {
                let job = WriteJob::BanAddress {
                    conn,
                    reference,
                    record,
                };
                self.write(job, "storing an address ban", refused);
            }
            Effect::NodePresence { user, presence } => {
                if let Some(cluster) = &self.cluster {
                    cluster.presence(user, presence);
                }
            }
            Effect::TellNodes(remote) => {
                if let Some(cluster) = &self.cluster {
                    cluster.tell(remote);
                }
            }
            Effect::DeleteMessage {
                conn,
                reference,
                actor,
                id,
                reason,
                within,
            } => {
                let job = WriteJob::Delete {
                    conn,
                    reference,
                    actor,
                    id,
                    reason,
                    within,
                };
                self.write(job, "deleting a message", refused);
            }
            Effect::Audit {
                conn,
                reference,
                line,
            } => {
                let job = WriteJob::Audit {
                    conn,
                    reference,
                    line,
                };
                self.write(job, "writing the audit log", refused);
            }
            // Not printed: a future effect may carry a password.
            _ => warn!("an effect this server does not know was dropped"),
        }
    }

    /// Queues a write a request waits on; a full queue answers BUSY for
    /// `doing` at once.
    fn write(&self, job: WriteJob, doing: &'static str, refused: &mut Vec<EffectResult>) {
        if let Err(job) = self.writes.push_refusable(job) {
            refused.extend(job.refused(busy(doing)));
        }
    }

    fn queue_auth(&self, job: AuthJob, refused: &mut Vec<EffectResult>) {
        let source = job.peer.map(|p| source_of(p.ip()));
        if let Err(job) = self.auth.push(source, job) {
            refused.push(job.refused(busy("checking passwords")));
        }
    }

    /// Closes the queues of the auth and reader pools: their threads finish
    /// what is queued and stop. The writer is closed separately, last.
    pub(crate) fn close_pools(&self) {
        self.auth.close();
        self.reads.close();
    }
}
