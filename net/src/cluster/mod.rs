//! One node of several (`--store postgres://... --bus redis://...`,
//! docs/SCALING.md): PostgreSQL holds everything durable and orders the
//! messages of every node (see `store::postgres`); the bus carries what
//! each node committed, its presence and group changes to the others.
//!
//! On this node: the storage writer's commits go to the hub through
//! [`Inbox`], which publishes them and hands the messages to the
//! [`sequencer`] instead of routing them at once; the bus subscriber
//! hands other nodes' messages to the same sequencer, which feeds the hub
//! in id order and fills gaps from PostgreSQL. Answers (ACKs, OKs) go to
//! the hub directly, as on a single node. The hub's `NodePresence`
//! effects go to the publisher (see [`Cluster::presence`]), and so do its
//! `TellNodes` (sanctions, revocations, login outcomes, registrations:
//! [`Cluster::tell`]), which every other node's subscriber hands its hub
//! as `Input::Remote`.
//!
//! A single node on SQLite starts none of this.

mod bus;
pub(crate) mod sequencer;
pub(crate) mod wire;

use std::sync::mpsc::{self, SyncSender};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use confab_engine::effect::GroupOp;
use confab_engine::frame::Presence;
use confab_engine::{Input, MessageId, Name, Remote};

use crate::inbox::Results;
use crate::store::postgres::PgStore;
use crate::store::StoreError;
use sequencer::{Fed, Sequencer};
use wire::Note;

/// Where a node's cluster lives.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// The PostgreSQL URL (the store's).
    pub store: String,
    /// The bus: a `redis://` URL.
    pub bus: String,
    /// This node's id (see [`random_node_id`]), which its stores' commits
    /// carry too.
    pub node: u64,
}

/// Why the cluster's part of a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The bus URL is not one the client takes.
    #[error("the bus URL {url} is not usable: {reason}")]
    Bus {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// PostgreSQL could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A thread could not be started.
    #[error("cannot start a cluster thread: {0}")]
    Thread(std::io::Error),
}

/// This node's cluster: the queues of its publisher and sequencer.
pub(crate) struct Cluster {
    node: u64,
    notes: SyncSender<Note>,
    sequencer: SyncSender<Fed>,
}

/// A cluster made but not started: what its threads will take.
pub(crate) struct Unstarted {
    client: redis::Client,
    channel: String,
    store: PgStore,
    notes_rx: mpsc::Receiver<Note>,
    seq_rx: mpsc::Receiver<Fed>,
}

impl Cluster {
    /// Connects to PostgreSQL and checks the bus URL; the threads start
    /// with [`Cluster::start`], once the hub they feed exists.
    pub(crate) fn new(options: &ClusterOptions) -> Result<(Cluster, Unstarted), ClusterError> {
        let client = redis::Client::open(options.bus.as_str()).map_err(|e| ClusterError::Bus {
            url: options.bus.clone(),
            reason: e.to_string(),
        })?;
        let node = options.node;
        let mut store = PgStore::open(&options.store)?.for_node(node);
        let channel = format!("confab:{}", store.cluster_id()?);
        let (notes, notes_rx) = mpsc::sync_channel(bus::QUEUE);
        let (sequencer, seq_rx) = mpsc::sync_channel(bus::QUEUE);
        log::info!("cluster node {node:016x} on bus {}", options.bus);
        let parts = Unstarted {
            client,
            channel,
            store,
            notes_rx,
            seq_rx,
        };
        Ok((
            Cluster {
                node,
                notes,
                sequencer,
            },
            parts,
        ))
    }

    /// Starts the publisher, the subscriber and the sequencer; `hub` is
    /// where their inputs go, `last_id` what the hub has seen.
    pub(crate) fn start(
        &self,
        parts: Unstarted,
        hub: Arc<dyn Results>,
        last_id: MessageId,
    ) -> Result<(), ClusterError> {
        let Unstarted {
            client,
            channel,
            store,
            notes_rx,
            seq_rx,
        } = parts;
        let node = self.node;
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map(drop)
                .map_err(ClusterError::Thread)
        };
        let seq = Sequencer::new(last_id, Instant::now());
        let results = hub.clone();
        spawn(
            "confab-sequencer",
            Box::new(move || sequencer::run(seq_rx, results, store, seq)),
        )?;
        let (publisher, publish_on) = (client.clone(), channel.clone());
        spawn(
            "confab-publish",
            Box::new(move || bus::publish(publisher, publish_on, node, notes_rx)),
        )?;
        let to_sequencer = self.sequencer.clone();
        spawn(
            "confab-subscribe",
            Box::new(move || bus::subscribe(client, channel, node, to_sequencer, hub)),
        )
    }

    /// The hub's `NodePresence`: told to the other nodes.
    pub(crate) fn presence(&self, user: Name, presence: Presence) {
        bus::offer(&self.notes, Note::Presence(user, presence));
    }

    /// A group change committed outside the storage writer (the control
    /// socket's): told to the other nodes as the writer's are.
    pub(crate) fn group(&self, op: GroupOp) {
        bus::offer(&self.notes, Note::Group(op));
    }

    /// The hub's `TellNodes`: what the other nodes' hubs apply too.
    pub(crate) fn tell(&self, remote: Remote) {
        bus::offer(&self.notes, Note::Remote(remote));
    }
}

/// A node id: random, so a restarted node is a new node (its old self's
/// users expire with its lease).
pub fn random_node_id() -> u64 {
    let mut b = [0u8; 8];
    // A clash of two 64-bit ids only merges two nodes' presence.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    u64::from_le_bytes(b) | 1
}

/// The storage writer's inbox in a cluster (see the module docs).
pub(crate) struct Inbox {
    pub(crate) hub: Arc<dyn Results>,
    pub(crate) cluster: Arc<Cluster>,
}

impl Results for Inbox {
    fn deliver(&self, results: Vec<Input>) {
        let mut direct = Vec::with_capacity(results.len());
        let mut committed = Vec::new();
        for input in results {
            match input {
                Input::Committed { message, origin } => {
                    bus::offer(&self.cluster.notes, Note::Committed(message.clone()));
                    committed.push((message, origin));
                }
                Input::GroupCommitted { op, origin } => {
                    bus::offer(&self.cluster.notes, Note::Group(op.clone()));
                    direct.push(Input::GroupCommitted { op, origin });
                }
                other => direct.push(other),
            }
        }
        if !direct.is_empty() {
            self.hub.deliver(direct);
        }
        if !committed.is_empty() {
            // Never dropped: the sequencer is this node's only route.
            let _ = self.cluster.sequencer.send(Fed::Local(committed));
        }
    }
}
