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
//! Sanctions and group changes taken while the bus is down are held by
//! their publisher (at most [`HELD`]) and published, their time left aged,
//! when it is back: a ban or a join on one node during an outage reaches
//! the others' live sessions after it, not only at their next start.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_engine::effect::GroupOp;
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
/// Most lasting notes ([`lasting`]) held through a bus outage for the
/// other nodes; past it the oldest go, and those nodes apply them from
/// their next start, as PostgreSQL has them.
pub(crate) const HELD: usize = 4096;

/// Queues a note for the publisher; dropped when its queue is full.
pub(crate) fn offer(tx: &SyncSender<Note>, note: Note) {
    match tx.try_send(note) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            warn!("the bus publisher is behind; a note was dropped (a message is read from PostgreSQL; a sanction or group change reaches the other nodes at their next start)")
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
    let mut p = Publisher {
        client,
        channel,
        node,
        conn: None,
        down_since: None,
        audience: 0,
        held: VecDeque::new(),
        back_at: None,
        probed: None,
    };
    let mut here: HashMap<NameKey, Name> = HashMap::new();
    let mut beat = Instant::now();
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
        p.flush();
        if let Some(note) = note {
            p.note(note);
        }
        if beat.elapsed() >= HEARTBEAT {
            beat = Instant::now();
            p.note(Note::Heartbeat(here.values().copied().collect()));
        }
    }
}

/// The publisher's connection, and the lasting notes it holds through an
/// outage.
///
/// Pub/sub keeps nothing for a subscriber that is not there, so what is
/// held goes out only once the channel has as many subscribers as the
/// last publish before the outage reached (every node has subscribed
/// again), or after [`LEASE`] (a node that has not is taken as dead, and
/// reads PostgreSQL at its next start). Lasting notes taken meanwhile
/// queue behind the held ones, so each node's sanctions arrive in the
/// order it took them.
struct Publisher {
    client: redis::Client,
    channel: String,
    node: u64,
    conn: Option<redis::Connection>,
    down_since: Option<Instant>,
    /// Subscribers the last publish reached while nothing was held.
    audience: i64,
    /// Lasting notes the bus could not take, with when each was taken.
    held: VecDeque<(Instant, Note)>,
    /// When the bus came back after an outage.
    back_at: Option<Instant>,
    /// When `flush` last asked Redis how many listen.
    probed: Option<Instant>,
}

impl Publisher {
    /// The connection, connecting if it is down and a retry is due.
    fn connection(&mut self) -> Option<&mut redis::Connection> {
        if self.conn.is_none() && self.down_since.is_none_or(|t| t.elapsed() >= RETRY) {
            match connect(&self.client) {
                Ok(c) => {
                    if self.down_since.take().is_some() {
                        info!("the bus is back");
                        self.back_at = Some(Instant::now());
                    }
                    self.conn = Some(c);
                }
                Err(e) => {
                    if self.down_since.is_none() {
                        warn!("cannot reach the bus: {e}; messages reach other nodes through PostgreSQL meanwhile");
                    }
                    self.down_since = Some(Instant::now());
                }
            }
        }
        self.conn.as_mut()
    }

    /// Publishes `note`; how many subscribers it reached.
    fn publish(&mut self, note: &Note) -> Result<i64, ()> {
        let (channel, bytes) = (self.channel.clone(), wire::encode(self.node, note));
        let c = self.connection().ok_or(())?;
        let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH").arg(channel).arg(bytes).query(c);
        sent.map_err(|e| {
            warn!("publishing on the bus failed: {e}");
            self.conn = None;
            self.down_since = Some(Instant::now());
        })
    }

    /// Publishes a note, or holds it (if lasting) for when the bus is back.
    fn note(&mut self, note: Note) {
        if lasting(&note) && !self.held.is_empty() {
            return self.hold(note);
        }
        // Just after an outage some nodes may not listen yet: a lasting
        // note that reached fewer than before is held (and sent again; the
        // hubs apply a repeated sanction or group change as a no-op), and
        // the audience is not lowered until the lease has passed.
        let recovering = self.back_at.is_some_and(|t| t.elapsed() < LEASE);
        match self.publish(&note) {
            Ok(reached) if recovering && reached < self.audience => self.hold(note),
            Ok(reached) if self.held.is_empty() && !recovering => self.audience = reached,
            Ok(_) => {}
            Err(()) => self.hold(note),
        }
    }

    /// Sends what is held, aged by the wait, once every node listens again.
    fn flush(&mut self) {
        if self.held.is_empty() {
            return;
        }
        // One probe per retry interval, not one per note.
        if self.probed.is_some_and(|t| t.elapsed() < RETRY) {
            return;
        }
        self.probed = Some(Instant::now());
        let channel = self.channel.clone();
        let Some(c) = self.connection() else { return };
        let listening: redis::RedisResult<(String, i64)> =
            redis::cmd("PUBSUB").arg("NUMSUB").arg(channel).query(c);
        let waited = self.back_at.is_some_and(|t| t.elapsed() >= LEASE);
        if !listening.is_ok_and(|(_, n)| n >= self.audience) && !waited {
            return;
        }
        while let Some((at, note)) = self.held.front() {
            let aged = aged(note.clone(), at.elapsed());
            if self.publish(&aged).is_err() {
                return;
            }
            self.held.pop_front();
        }
        info!("the sanctions and group changes held through the bus outage are published");
    }

    /// Keeps a lasting note for when the bus is back; at most [`HELD`].
    fn hold(&mut self, note: Note) {
        if !lasting(&note) {
            return;
        }
        if self.held.len() == HELD {
            self.held.pop_front();
            warn!("more than {HELD} sanctions and group changes taken while the bus is down: the oldest reach the other nodes only at their next start");
        }
        self.held.push_back((Instant::now(), note));
    }
}

/// Whether a note states something the other nodes keep (a sanction:
/// [`confab_engine::Remote::is_lasting`], or a group change), so that it
/// must still reach them after a bus outage. Messages are read from
/// PostgreSQL, presence is restated by heartbeats, and a kick or a guard
/// count means nothing late.
fn lasting(note: &Note) -> bool {
    match note {
        Note::Remote(r) => r.is_lasting(),
        Note::Group(_) => true,
        _ => false,
    }
}

/// `note` `elapsed` after it was taken: a ban's, mute's or group mute's
/// time left shrinks by the wait (a group mute to at least a second, as
/// its 0 means until lifted).
fn aged(note: Note, elapsed: Duration) -> Note {
    match note {
        Note::Remote(r) => Note::Remote(r.aged(elapsed)),
        Note::Group(GroupOp::Moderate {
            group,
            user,
            action,
            seconds,
            reason,
            by,
        }) if seconds > 0 => {
            let left = u64::from(seconds).saturating_sub(elapsed.as_secs()).max(1);
            Note::Group(GroupOp::Moderate {
                group,
                user,
                action,
                seconds: u32::try_from(left).unwrap_or(seconds),
                reason,
                by,
            })
        }
        other => other,
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
/// While the bus is down, sanctions wait at their publisher ([`Publisher`]);
/// kicks and the guard's counts are lost, so the lockout and registration
/// budgets are each node's own meanwhile (docs/SCALING.md).
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
            std::thread::sleep(RETRY);
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
                    // A bus that takes connections and then fails them is
                    // not retried in a busy loop.
                    std::thread::sleep(RETRY);
                    break;
                }
            }
            if !inputs.is_empty() {
                results.deliver(inputs);
            }
        }
    }
}
