//! The bus: Redis pub/sub on one channel per cluster (named by its
//! database, see `store::postgres::schema`), through the `redis` crate's
//! blocking client on two threads of the cluster's own (a publisher and
//! a subscriber), so nothing of it runs on the executor.
//!
//! Pub/sub is fire-and-forget, which is all the design asks of the bus:
//! what it loses (an outage, a slow subscriber cut off by Redis) the
//! sequencer reads from PostgreSQL, presence is restated by each node's
//! heartbeat, and a node gone silent for [`LEASE`] has its users marked
//! offline. The publisher's queue is bounded; a note that does not fit is
//! dropped (and for a message, filled from PostgreSQL by every reader).

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_engine::frame::Presence;
use confab_engine::name::NameKey;
use confab_engine::{Input, Name};
use log::{info, warn};

use super::sequencer::Fed;
use super::wire::{self, Note};
use crate::inbox::Results;

/// How often a node says it is alive (with its users).
pub(crate) const HEARTBEAT: Duration = Duration::from_millis(1000);
/// A node not heard from for this long is taken as dead: its users go
/// offline here.
pub(crate) const LEASE: Duration = Duration::from_millis(3500);
/// Most notes waiting for the publisher.
pub(crate) const QUEUE: usize = 65_536;
/// How long to wait before connecting again after a failure.
const RETRY: Duration = Duration::from_millis(250);

/// Queues a note for the publisher; dropped when its queue is full.
pub(crate) fn offer(tx: &SyncSender<Note>, note: Note) {
    match tx.try_send(note) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            warn!("the bus publisher is behind; a note was dropped (messages are read from PostgreSQL)")
        }
        Err(TrySendError::Disconnected(_)) => {}
    }
}

fn connect(client: &redis::Client) -> redis::RedisResult<redis::Connection> {
    let conn = client.get_connection_with_timeout(Duration::from_secs(1))?;
    conn.set_write_timeout(Some(Duration::from_secs(1)))?;
    conn.set_read_timeout(Some(Duration::from_secs(1)))?;
    Ok(conn)
}

/// The publisher's thread: publishes what it is given, in order, and a
/// heartbeat with this node's users every [`HEARTBEAT`].
pub(crate) fn publish(client: redis::Client, channel: String, node: u64, rx: Receiver<Note>) {
    let mut conn: Option<redis::Connection> = None;
    let mut here: HashMap<NameKey, Name> = HashMap::new();
    let mut beat = Instant::now();
    let mut down_since: Option<Instant> = None;
    loop {
        let note = match rx.recv_timeout(HEARTBEAT / 4) {
            Ok(note) => Some(note),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if let Some(Note::Presence(user, presence)) = &note {
            match presence {
                Presence::Online => here.insert(user.key(), *user),
                Presence::Offline => here.remove(&user.key()),
            };
        }
        let mut notes: Vec<Note> = note.into_iter().collect();
        if beat.elapsed() >= HEARTBEAT {
            beat = Instant::now();
            notes.push(Note::Heartbeat(here.values().copied().collect()));
        }
        for note in notes {
            if conn.is_none() && down_since.is_none_or(|t| t.elapsed() >= RETRY) {
                match connect(&client) {
                    Ok(c) => {
                        if down_since.take().is_some() {
                            info!("the bus is back");
                        }
                        conn = Some(c);
                    }
                    Err(e) => {
                        if down_since.is_none() {
                            warn!("cannot reach the bus: {e}; messages reach other nodes through PostgreSQL meanwhile");
                        }
                        down_since = Some(Instant::now());
                    }
                }
            }
            let Some(c) = conn.as_mut() else { continue };
            let bytes = wire::encode(node, &note);
            let sent: redis::RedisResult<i64> =
                redis::cmd("PUBLISH").arg(&channel).arg(bytes).query(c);
            if let Err(e) = sent {
                warn!("publishing on the bus failed: {e}");
                conn = None;
                down_since = Some(Instant::now());
            }
        }
    }
}

/// What the subscriber knows of one other node.
struct Peer {
    heard: Instant,
    users: HashMap<NameKey, Name>,
}

/// The other nodes' presence, turned into the hub's presence inputs.
#[derive(Default)]
pub(crate) struct Peers {
    nodes: HashMap<u64, Peer>,
}

impl Peers {
    fn peer(&mut self, node: u64, now: Instant) -> &mut Peer {
        let peer = self.nodes.entry(node).or_insert_with(|| Peer {
            heard: now,
            users: HashMap::new(),
        });
        peer.heard = now;
        peer
    }

    /// A presence note: the input, if it changes what is known.
    pub(crate) fn presence(
        &mut self,
        node: u64,
        user: Name,
        presence: Presence,
        now: Instant,
    ) -> Option<Input> {
        let peer = self.peer(node, now);
        let changed = match presence {
            Presence::Online => peer.users.insert(user.key(), user).is_none(),
            Presence::Offline => peer.users.remove(&user.key()).is_some(),
        };
        changed.then_some(Input::Presence { user, presence })
    }

    /// A heartbeat: what differs from it, as inputs.
    pub(crate) fn heartbeat(&mut self, node: u64, users: Vec<Name>, now: Instant) -> Vec<Input> {
        let peer = self.peer(node, now);
        let listed: HashMap<NameKey, Name> = users.into_iter().map(|u| (u.key(), u)).collect();
        let mut out = Vec::new();
        peer.users.retain(|k, u| {
            let keep = listed.contains_key(k);
            if !keep {
                out.push(Input::Presence {
                    user: *u,
                    presence: Presence::Offline,
                });
            }
            keep
        });
        for (k, u) in listed {
            if let std::collections::hash_map::Entry::Vacant(e) = peer.users.entry(k) {
                e.insert(u);
                out.push(Input::Presence {
                    user: u,
                    presence: Presence::Online,
                });
            }
        }
        out
    }

    /// Nodes past their lease: their users go offline.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<Input> {
        let mut out = Vec::new();
        self.nodes.retain(|node, peer| {
            let alive = now.duration_since(peer.heard) < LEASE;
            if !alive {
                info!(
                    "node {node:016x} is silent; its {} users are offline here",
                    peer.users.len()
                );
                out.extend(peer.users.values().map(|u| Input::Presence {
                    user: *u,
                    presence: Presence::Offline,
                }));
            }
            alive
        });
        out
    }
}

/// The subscriber's thread: other nodes' commits to the sequencer, their
/// group changes, sanctions, guard counts and presence to the hub.
///
/// While the bus is down what it would have carried besides messages is
/// lost, not replayed: a sanction is in PostgreSQL and applies from each
/// node's next start, and the lockout and registration budgets are each
/// node's own meanwhile (docs/SCALING.md).
pub(crate) fn subscribe(
    client: redis::Client,
    channel: String,
    node: u64,
    sequencer: SyncSender<Fed>,
    results: Arc<dyn Results>,
) {
    let mut peers = Peers::default();
    loop {
        let mut conn = match connect(&client) {
            Ok(c) => c,
            Err(_) => {
                let expired = peers.expire(Instant::now());
                if !expired.is_empty() {
                    results.deliver(expired);
                }
                std::thread::sleep(RETRY);
                continue;
            }
        };
        let mut pubsub = conn.as_pubsub();
        if let Err(e) = pubsub.subscribe(&channel) {
            warn!("cannot subscribe to the bus: {e}");
            continue;
        }
        // From here on, the other nodes' notes reach this hub.
        info!("subscribed to the bus");
        loop {
            let msg = pubsub.get_message();
            let now = Instant::now();
            let mut inputs = peers.expire(now);
            match msg {
                Ok(msg) => match wire::decode(msg.get_payload_bytes()) {
                    Ok((from, _)) if from == node => {}
                    Ok((_, Note::Committed(m))) => {
                        if sequencer.send(Fed::Remote(m)).is_err() {
                            return;
                        }
                    }
                    Ok((_, Note::Group(op))) => {
                        inputs.push(Input::GroupCommitted { op, origin: None })
                    }
                    Ok((_, Note::Remote(remote))) => inputs.push(Input::Remote(remote)),
                    Ok((from, Note::Presence(user, presence))) => {
                        inputs.extend(peers.presence(from, user, presence, now))
                    }
                    Ok((from, Note::Heartbeat(users))) => {
                        inputs.extend(peers.heartbeat(from, users, now))
                    }
                    Err(e) => warn!("a bus message was not understood: {e}"),
                },
                Err(e) if e.is_timeout() => {}
                Err(e) => {
                    warn!("the bus subscription failed: {e}");
                    if !inputs.is_empty() {
                        results.deliver(inputs);
                    }
                    break;
                }
            }
            if !inputs.is_empty() {
                results.deliver(inputs);
            }
        }
    }
}
