//! The storage threads: one writer with group commit, and a reader pool.
//!
//! The writer takes everything queued (up to [`MAX_BATCH`] writes), commits
//! it with one [`Store::commit`] (one transaction, one fsync), stamps it
//! with the wall clock of the commit, and hands the results to the hub in
//! order under one lock hold. Its queue is FIFO and refuses messages and
//! group changes beyond its bound with `BUSY`; `UserOffline` marks are never
//! refused (there is at most one per online user). Between batches, while
//! nothing waits, it lets the store catch up on deferred work (indexing,
//! see [`Store::catch_up`]); the server's storage clock sends it a
//! [`WriteJob::Tick`] every [`TICK`] so that an idle server catches up
//! completely. At shutdown the queue is closed and the writer commits what
//! is left, catches up, and stops.
//!
//! Readers each own a store and answer history pages (refused with `BUSY`
//! beyond the bound) and replays (never refused: one per login, so a burst
//! of reconnecting clients after a restart still gets what it missed).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use confab_engine::device::DeviceId;
use confab_engine::effect::{GroupOp, NewMessage, ReplayScope, SendKey};
use confab_engine::{ConnId, EffectResult, Input, MessageId, Name, ProtocolError, Ref, Target};
use log::{debug, error, info, warn};

use super::queue::Jobs;
use super::storage_failed;
use crate::inbox::Results;
use crate::store::{CatchUp, Retention, Store, Write, Written};

/// Most writes in one commit.
pub(crate) const MAX_BATCH: usize = 1024;

/// Work for the writer.
#[derive(Debug)]
pub(crate) enum WriteJob {
    Message {
        conn: ConnId,
        reference: Ref,
        message: NewMessage,
        /// A SEND2's key: committed at most once.
        once: Option<SendKey>,
    },
    /// Never refused: one per session at a time, and a LOGOUT may wait for it.
    Bookmark {
        device: DeviceId,
        upto: MessageId,
        logout: Option<(ConnId, Ref)>,
    },
    ReadMarker {
        conn: ConnId,
        user: Name,
        target: Target,
        id: MessageId,
        max: u16,
    },
    /// A write, but not a batched one: it runs between the batches.
    RevokeDevice {
        conn: ConnId,
        reference: Ref,
        user: Name,
        device: Name,
    },
    /// An operator's moderation (a ban's end, the audit line), between
    /// the batches too.
    Moderate {
        conn: ConnId,
        reference: Ref,
        record: confab_engine::effect::ModerationRecord,
    },
    /// An operator's address ban (or its lifting) with its audit line.
    BanAddress {
        conn: ConnId,
        reference: Ref,
        record: confab_engine::effect::AddressBanRecord,
    },
    /// A message tombstoned, with its audit line.
    Delete {
        conn: ConnId,
        reference: Ref,
        actor: Name,
        id: confab_engine::MessageId,
        reason: String,
        within: Option<Vec<Name>>,
    },
    /// An audit line (an announcement).
    Audit {
        conn: ConnId,
        reference: Ref,
        line: confab_engine::effect::AuditLine,
    },
    /// Forget exactly-once records older than `window` and beyond the
    /// newest `keep` per device.
    PruneSends {
        window: Duration,
        keep: u32,
    },
    Group {
        conn: ConnId,
        reference: Ref,
        op: GroupOp,
    },
    Offline {
        user: Name,
        seen_upto: MessageId,
    },
    Retention(Retention),
    /// Time passes (see [`TICK`]).
    Tick,
}

impl WriteJob {
    fn refusable(&self) -> bool {
        matches!(
            self,
            WriteJob::Message { .. }
                | WriteJob::Group { .. }
                | WriteJob::ReadMarker { .. }
                | WriteJob::RevokeDevice { .. }
                | WriteJob::Moderate { .. }
                | WriteJob::BanAddress { .. }
                | WriteJob::Delete { .. }
                | WriteJob::Audit { .. }
        )
    }
}

/// How often the server sends the writer a [`WriteJob::Tick`]: deferred
/// work left through a whole tick with no commit is done.
pub(crate) const TICK: Duration = Duration::from_millis(500);

/// The writer thread's loop (see the module docs); between batches it lets
/// the store catch up while no writes wait, and completely once a tick
/// passes without a commit (see [`Store::catch_up`]).
pub(crate) fn run_writer(rx: Jobs<WriteJob>, results: Arc<dyn Results>, mut store: Box<dyn Store>) {
    let store = &mut *store;
    let mut jobs = Vec::new();
    let mut committed_since_tick = false;
    while let Ok(first) = rx.recv_blocking() {
        jobs.push(first);
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        rx.taken(jobs.iter().filter(|j| j.refusable()).count());
        let ticks = jobs.len();
        jobs.retain(|j| !matches!(j, WriteJob::Tick));
        let ticked = jobs.len() < ticks;
        if !jobs.is_empty() {
            committed_since_tick = true;
            let answers = run_jobs(store, jobs.drain(..));
            if !answers.is_empty() {
                results.deliver(answers);
            }
        }
        if ticked {
            if !committed_since_tick {
                catch_up(store, CatchUp::All);
            }
            committed_since_tick = false;
        }
        // Each step is short, so a write arriving meanwhile waits little.
        while rx.is_empty() && catch_up(store, CatchUp::Spare) > 0 {}
        catch_up(store, CatchUp::Due);
    }
    catch_up(store, CatchUp::All);
}

/// How many messages [`Store::catch_up`] caught up on; 0 if it failed.
fn catch_up(store: &mut dyn Store, when: CatchUp) -> u64 {
    store.catch_up(when).unwrap_or_else(|e| {
        // Nothing is lost: readers find the messages where they are, and
        // a later call tries again.
        error!("{e}");
        0
    })
}

/// Who waits for a write's outcome, and what they are told.
#[derive(Debug, Clone, Copy)]
enum Owner {
    /// Nobody (an offline mark).
    Nobody,
    /// A request's sender: a message or a group change.
    Request(ConnId, Ref),
    /// A bookmark, perhaps with a LOGOUT waiting for it.
    Bookmark(Option<(ConnId, Ref)>),
    /// A read marker's session.
    Marker(ConnId),
}

/// The write a job adds to the batch, and who waits for it; or the job
/// itself, if it runs on its own, between batches.
fn batched(job: WriteJob) -> Sorted {
    Sorted::Batched(match job {
        WriteJob::Message {
            conn,
            reference,
            message,
            once,
        } => {
            let write = match once {
                Some(key) => Write::MessageOnce(message, key),
                None => Write::Message(message),
            };
            (write, Owner::Request(conn, reference))
        }
        WriteJob::Group {
            conn,
            reference,
            op,
        } => (Write::Group(op), Owner::Request(conn, reference)),
        WriteJob::Offline { user, seen_upto } => {
            (Write::Offline { user, seen_upto }, Owner::Nobody)
        }
        WriteJob::Bookmark {
            device,
            upto,
            logout,
        } => (Write::Bookmark { device, upto }, Owner::Bookmark(logout)),
        WriteJob::ReadMarker {
            conn,
            user,
            target,
            id,
            max,
        } => (
            Write::ReadMarker {
                user,
                target,
                id,
                max,
            },
            Owner::Marker(conn),
        ),
        other => return Sorted::Alone(other),
    })
}

/// A job as [`batched`] sorts it.
enum Sorted {
    Batched((Write, Owner)),
    Alone(WriteJob),
}

/// Commits a batch of jobs; the jobs that are not batched (retention,
/// pruning, revoking a device) split it so that they run between the
/// writes queued before and after them.
fn run_jobs(store: &mut dyn Store, jobs: impl Iterator<Item = WriteJob>) -> Vec<Input> {
    let mut results = Vec::new();
    let mut batch = Vec::new();
    let mut owners = Vec::new();
    for job in jobs {
        match batched(job) {
            Sorted::Batched((write, owner)) => {
                batch.push(write);
                owners.push(owner);
            }
            Sorted::Alone(job) => {
                commit(store, &mut batch, &mut owners, &mut results);
                results.extend(run_alone(store, job));
            }
        }
    }
    commit(store, &mut batch, &mut owners, &mut results);
    results
}

/// A job that is not batched.
fn run_alone(store: &mut dyn Store, job: WriteJob) -> Option<Input> {
    match job {
        WriteJob::Retention(retention) => match store.apply_retention(&retention, now_ms()) {
            Ok(0) => {}
            Ok(n) => info!("retention deleted {n} messages"),
            Err(e) => error!("storage failed while applying retention: {e}"),
        },
        WriteJob::PruneSends { window, keep } => {
            let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
            let older_than = now_ms().saturating_sub(window_ms);
            match store.prune_sends(older_than, keep) {
                Ok(n) => debug!("pruned {n} exactly-once send records"),
                Err(e) => error!("storage failed while pruning send records: {e}"),
            }
        }
        WriteJob::RevokeDevice {
            conn,
            reference,
            user,
            device,
        } => {
            let result = match store.revoke_device(&user, &device) {
                Ok(Some(id)) => {
                    info!("revoked {id} ({device}) of user={user} conn={conn}");
                    Ok(id)
                }
                Ok(None) => Err(ProtocolError::NoSuchDevice { device }),
                Err(e) => Err(storage_failed("revoking a device", &e)),
            };
            let answer = EffectResult::DeviceRevoked {
                conn,
                reference,
                result,
            };
            return Some(answer.into());
        }
        WriteJob::Moderate {
            conn,
            reference,
            record,
        } => {
            let result = store
                .moderate(&record, now_ms())
                .map_err(|e| storage_failed("recording a moderation", &e));
            if result.is_ok() {
                info!(
                    "moderation: {} {} {}: {}",
                    record.actor,
                    record.action.as_str(),
                    record.target,
                    record.reason
                );
            }
            let answer = EffectResult::Moderated {
                conn,
                reference,
                result,
            };
            return Some(answer.into());
        }
        WriteJob::BanAddress {
            conn,
            reference,
            record,
        } => {
            let result = store
                .record_address_ban(&record, now_ms())
                .map_err(|e| storage_failed("recording an address ban", &e));
            if result.is_ok() {
                let what = if record.lift { "unbanned" } else { "banned" };
                info!(
                    "moderation: {} {what} the addresses {}: {}",
                    record.actor, record.block, record.reason
                );
            }
            let answer = EffectResult::Moderated {
                conn,
                reference,
                result,
            };
            return Some(answer.into());
        }
        WriteJob::Delete {
            conn,
            reference,
            actor,
            id,
            reason,
            within,
        } => {
            let result = match store.delete_within(id, &actor, &reason, now_ms(), within.as_deref())
            {
                Ok(Ok(m)) => {
                    info!("moderation: {actor} deleted message {}: {reason}", id.0);
                    Ok(m)
                }
                Ok(Err(e)) => Err(e),
                Err(e) => Err(storage_failed("deleting a message", &e)),
            };
            let answer = EffectResult::MessageDeleted {
                conn,
                reference,
                by: actor,
                result,
            };
            return Some(answer.into());
        }
        WriteJob::Audit {
            conn,
            reference,
            line,
        } => {
            let result = store
                .audit_line(&line, now_ms())
                .map_err(|e| storage_failed("writing the audit log", &e));
            if result.is_ok() {
                info!(
                    "moderation: {} {}: {}",
                    line.actor, line.action, line.reason
                );
            }
            let answer = EffectResult::Moderated {
                conn,
                reference,
                result,
            };
            return Some(answer.into());
        }
        // Batched, or taken out by the writer's loop.
        _ => {}
    }
    None
}

fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// One group commit of `batch`; appends the answers to `results`.
fn commit(
    store: &mut dyn Store,
    batch: &mut Vec<Write>,
    owners: &mut Vec<Owner>,
    results: &mut Vec<Input>,
) {
    if batch.is_empty() {
        return;
    }
    let started = std::time::Instant::now();
    let committed = store.commit(batch, now_ms());
    crate::measures::NET
        .commit_seconds
        .observe(started.elapsed().as_secs_f64());
    crate::measures::NET
        .commit_batch
        .observe(batch.len() as f64);
    let outcome = match committed {
        Ok(written) if written.len() == batch.len() => Ok(written),
        Ok(written) => {
            let text = format!(
                "storage answered {} writes with {} outcomes",
                batch.len(),
                written.len()
            );
            error!("{text}");
            Err(ProtocolError::Storage(text))
        }
        Err(e) => Err(storage_failed(
            &format!("committing {} writes", batch.len()),
            &e,
        )),
    };
    let writes = batch.drain(..).zip(owners.drain(..));
    match outcome {
        Ok(written) => {
            for ((write, owner), w) in writes.zip(written) {
                results.extend(answer(write, owner, Ok(w)));
            }
        }
        Err(refusal) => {
            for (write, owner) in writes {
                results.extend(answer(write, owner, Err(refusal.clone())));
            }
        }
    }
}

/// What the hub is fed for one write: the requester's answer, then (if
/// it was committed) the commit to route.
fn answer(write: Write, owner: Owner, outcome: Result<Written, ProtocolError>) -> Vec<Input> {
    let wrong_kind = || {
        error!("storage answered a write with an outcome of another kind");
        ProtocolError::Storage("storage answered with an outcome of another kind".to_owned())
    };
    match (write, owner) {
        (
            Write::Message(message) | Write::MessageOnce(message, _),
            Owner::Request(conn, reference),
        ) => {
            let result = match outcome {
                Ok(Written::Duplicate(c)) => {
                    return Input::message_stored_before(conn, reference, c)
                }
                Ok(Written::Message(result)) => result.map_err(|r| (message, r)),
                Err(r) => Err((message, r)),
                Ok(_) => Err((message, wrong_kind())),
            };
            Input::message_written(conn, reference, result)
        }
        (Write::Group(op), Owner::Request(conn, reference)) => {
            let result = match outcome {
                Ok(Written::Group(result)) => result,
                Err(r) => Err(r),
                Ok(_) => Err(wrong_kind()),
            };
            Input::group_written(conn, reference, op, result)
        }
        (Write::Bookmark { device, upto }, Owner::Bookmark(logout)) => {
            let saved = matches!(outcome, Ok(Written::Bookmark));
            if !saved {
                warn!("the bookmark of {device} was not saved (up to id {}); it may be sent some messages again", upto.0);
            }
            let saved = EffectResult::BookmarkSaved {
                device,
                upto,
                logout,
                saved,
            };
            vec![saved.into()]
        }
        (Write::ReadMarker { user, target, .. }, Owner::Marker(conn)) => {
            let result = match outcome {
                Ok(Written::ReadMarker(id)) => Ok(id),
                Err(r) => Err(r),
                Ok(_) => Err(wrong_kind()),
            };
            let saved = EffectResult::ReadMarkerSaved {
                conn,
                user,
                target,
                result,
            };
            vec![saved.into()]
        }
        _ => Vec::new(),
    }
}

/// Work for a reader.
#[derive(Debug)]
pub(crate) enum ReadJob {
    History {
        conn: ConnId,
        reference: Ref,
        user: Name,
        target: Target,
        window: confab_engine::window::Window,
        limit: u16,
    },
    Targets {
        conn: ConnId,
        reference: Ref,
        user: Name,
        groups: Vec<Name>,
        between: (u64, u64),
        limit: u16,
    },
    Replay {
        conn: ConnId,
        user: Name,
        scope: ReplayScope,
        upto: MessageId,
        max: usize,
    },
    Devices {
        conn: ConnId,
        reference: Ref,
        user: Name,
    },
}

impl ReadJob {
    /// History requests may be refused when the queue is full; a replay,
    /// one per login, may not: it is what tells the session it is caught up.
    pub(crate) fn refusable(&self) -> bool {
        matches!(
            self,
            ReadJob::History { .. } | ReadJob::Targets { .. } | ReadJob::Devices { .. }
        )
    }

    /// The answer when the job is refused.
    pub(crate) fn refused(self, refusal: ProtocolError) -> EffectResult {
        match self {
            ReadJob::History {
                conn,
                reference,
                target,
                ..
            } => EffectResult::History {
                conn,
                reference,
                target,
                result: Err(refusal),
            },
            ReadJob::Targets {
                conn, reference, ..
            } => EffectResult::Targets {
                conn,
                reference,
                result: Err(refusal),
            },
            ReadJob::Replay { conn, .. } => EffectResult::Replayed {
                conn,
                result: Err(refusal),
            },
            ReadJob::Devices {
                conn, reference, ..
            } => EffectResult::Devices {
                conn,
                reference,
                result: Err(refusal),
            },
        }
    }

    fn run(self, store: &mut dyn Store) -> EffectResult {
        match self {
            ReadJob::History {
                conn,
                reference,
                user,
                target,
                window,
                limit,
            } => {
                let result = store
                    .history_page(&user, &target, &window, limit)
                    .unwrap_or_else(|e| Err(storage_failed("loading history", &e)));
                EffectResult::History {
                    conn,
                    reference,
                    target,
                    result,
                }
            }
            ReadJob::Targets {
                conn,
                reference,
                user,
                groups,
                between,
                limit,
            } => EffectResult::Targets {
                conn,
                reference,
                result: store
                    .history_targets(&user, &groups, between, limit)
                    .map_err(|e| storage_failed("listing conversations", &e)),
            },
            ReadJob::Replay {
                conn,
                user,
                scope,
                upto,
                max,
            } => EffectResult::Replayed {
                conn,
                result: store
                    .replay(&user, &scope, upto, max)
                    .map_err(|e| storage_failed("loading missed messages", &e)),
            },
            ReadJob::Devices {
                conn,
                reference,
                user,
            } => EffectResult::Devices {
                conn,
                reference,
                result: store
                    .devices(&user)
                    .map_err(|e| storage_failed("listing devices", &e)),
            },
        }
    }
}

/// A reader thread's loop.
pub(crate) fn run_reader(rx: Jobs<ReadJob>, results: Arc<dyn Results>, mut store: Box<dyn Store>) {
    while let Ok(job) = rx.recv_blocking() {
        if job.refusable() {
            rx.taken(1);
        }
        let result = job.run(&mut *store);
        results.deliver(vec![result.into()]);
    }
}

#[cfg(test)]
mod tests;
