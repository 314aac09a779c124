//! The server: an executor of our own on N threads, the accept loop, the
//! worker threads, and shutdown.
//!
//! ```text
//!  I/O threads (async-executor, easy-parallel)      blocking threads
//!  ┌──────────────┐  ┌─────────────────────────┐    ┌──────────────────┐
//!  │ accept loop  │  │ task per connection:     │    │ auth pool (N)    │
//!  │ + shutdown   │  │  reader ─┐ handle_bytes  │    │ storage writer   │
//!  └──────────────┘  │  writer ─┤ drain ──────► │    │ storage readers  │
//!                    └──────────┼──────────────┘    └────────┬─────────┘
//!                               ▼                            │ results
//!                      Mutex<Hub + writer wakers> ◄──────────┘
//!                               │ effects (after unlock)
//!                               └──► bounded queues ──► blocking threads
//! ```
//!
//! Shutdown: stop accepting; `Hub::shutdown` queues SHUTDOWN for everyone;
//! connections flush and close until `shutdown_timeout`, then the rest are
//! cancelled; the pools finish their queues; the writer commits everything
//! queued; then [`Server::run`] returns.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use async_executor::Executor;
use async_io::{Async, Timer};
use confab_engine::irc::IrcConfig;
use confab_engine::{Hub, Protocol};
use easy_parallel::Parallel;
use futures_lite::future;
use futures_rustls::TlsAcceptor;
use log::{debug, info, warn};

use crate::auth_queue::FairQueue;
use crate::control;
use crate::effects::Effects;
use crate::inbox::Results;
use crate::listeners::{self, accept, IrcListener, Listeners};
use crate::measures::{self, NET};
use crate::metrics;
use crate::refuse::Refusals;
pub use crate::server_handle::{ServerHandle, Stats};
use crate::shared::Shared;
use crate::signals::Dumps;
use crate::source::source_of;
use crate::store::{Retention, Store, StoreError};
use crate::task_slab::TaskSlab;
use crate::tcp_task::{plain_connection, tls_connection, Connection, Tls};
use crate::web::{self, Web, WebConn};
use crate::workers::auth::{self as pool, AuthJob, Authenticator};
use crate::workers::queue::{Jobs, Queue};
use crate::workers::storage::{self, ReadJob, WriteJob};

pub use crate::options::{ServerOptions, StartError};

/// Opens one [`Store`]; called once per storage-using thread.
pub type StoreFactory = Arc<dyn Fn() -> Result<Box<dyn Store>, StoreError> + Send + Sync>;

/// A bound server, not yet serving.
pub struct Server {
    options: ServerOptions,
    listener: Async<TcpListener>,
    addr: SocketAddr,
    /// The web port's listener and its address, if asked for.
    web: Option<(Async<TcpListener>, SocketAddr)>,
    /// The IRC listener, if it serves IRC.
    irc: Option<IrcListener>,
    shared: Arc<Shared>,
    workers: Workers,
    control: Option<control::Listener>,
    metrics: Option<metrics::Listener>,
}

/// The blocking threads' state, until they start.
struct Workers {
    auth_rx: Arc<FairQueue<AuthJob>>,
    authenticators: Vec<Authenticator>,
    read_rx: Jobs<ReadJob>,
    read_stores: Vec<Box<dyn Store>>,
    write_rx: Jobs<WriteJob>,
    write_store: Box<dyn Store>,
    /// One node of several: the writer's commits go through it.
    cluster: Option<Arc<crate::cluster::Cluster>>,
}

impl Server {
    /// Opens storage (one store per thread that needs one), loads the hub's
    /// starting state and binds the listener.
    pub fn bind(mut options: ServerOptions, stores: StoreFactory) -> Result<Server, StartError> {
        options.hash.validate()?;
        let cluster = options
            .cluster
            .as_ref()
            .map(crate::cluster::Cluster::new)
            .transpose()?;
        options.engine.announce_presence |= cluster.is_some();
        let mut write_store = stores()?;
        let loaded = write_store.load()?;
        let mut hub = Hub::new(options.engine.clone(), loaded.groups, loaded.last_id);
        hub.set_group_roles(&loaded.roles);
        let now = std::time::Instant::now();
        for (group, user, left, reason) in &loaded.group_mutes {
            let until = left.map(|s| now + std::time::Duration::from_secs(s));
            hub.mute_in_group(now, group, user, until, reason);
        }
        let irc = match options.irc_listen {
            Some(at) => {
                let config = IrcConfig {
                    server: options.engine.server_name.replace(' ', "-"),
                    ..options.irc.clone()
                };
                let protocols = hub.add_irc(config).ok_or(StartError::Protocols)?;
                let (listener, addr) =
                    listeners::bind(at).map_err(|source| StartError::Bind { addr: at, source })?;
                Some((listener, addr, protocols.plain))
            }
            None => None,
        };
        crate::sanctions::apply(&mut hub, &options.sanctions);
        crate::sanctions::apply_addresses(&mut hub, &options.address_bans);
        for operator in &options.operators {
            hub.set_operator(operator, true);
        }
        let control = match &options.control_dir {
            Some(dir) => Some(control::bind(dir).map_err(|source| StartError::Control {
                dir: dir.clone(),
                source,
            })?),
            None => None,
        };
        let metrics = match options.metrics_listen {
            Some(addr) => {
                Some(metrics::bind(addr).map_err(|source| StartError::Bind { addr, source })?)
            }
            None => None,
        };

        let dummy_hash: Arc<str> = options.hash.hash("confab: no such account")?.into();
        let mut authenticators = Vec::new();
        for _ in 0..options.auth_threads.max(1) {
            authenticators.push(Authenticator::new(
                stores()?,
                options.hash,
                dummy_hash.clone(),
            ));
        }
        let read_stores = (0..options.read_threads.max(1))
            .map(|_| stores())
            .collect::<Result<Vec<_>, _>>()?;

        let bind = |addr| listeners::bind(addr).map_err(|source| StartError::Bind { addr, source });
        let (listener, addr) = bind(options.listen)?;
        let web = options.web.as_ref().map(|w| bind(w.listen)).transpose()?;

        let auth_rx = Arc::new(FairQueue::new(
            options.auth_queue,
            options.auth_queue_per_source,
        ));
        let (reads, read_rx) = Queue::new(options.read_queue.max(1));
        let (writes, write_rx) = Queue::new(options.write_queue.max(1));
        let (cluster, unstarted) = match cluster {
            Some((c, u)) => (Some(Arc::new(c)), Some(u)),
            None => (None, None),
        };
        let effects = Effects {
            auth: auth_rx.clone(),
            writes,
            reads,
            cluster: cluster.clone(),
        };
        let shared = Arc::new(Shared::new(hub, effects));
        if let (Some(c), Some(u)) = (&cluster, unstarted) {
            c.start(u, shared.clone(), loaded.last_id)?;
        }
        Ok(Server {
            options,
            listener,
            addr,
            web,
            irc,
            shared,
            workers: Workers {
                cluster,
                auth_rx,
                authenticators,
                read_rx,
                read_stores,
                write_rx,
                write_store,
            },
            control,
            metrics,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The web port's address actually bound, if there is one.
    pub fn web_addr(&self) -> Option<SocketAddr> {
        self.web.as_ref().map(|(_, addr)| *addr)
    }

    /// The IRC listener's address, if it serves IRC.
    pub fn irc_addr(&self) -> Option<SocketAddr> {
        self.irc.as_ref().map(|(_, addr, _)| *addr)
    }

    /// Serves until `stop` completes, then shuts down (see the module docs).
    pub fn run(self, stop: impl Future<Output = ()>) -> Result<Stats, StartError> {
        let Server {
            options,
            listener,
            addr: _,
            web,
            irc,
            shared,
            workers,
            control,
            metrics,
        } = self;
        let listeners = Listeners {
            tcp: listener,
            web: web.map(|(l, _)| l),
            irc,
        };
        let threads = spawn_workers(&shared, workers)?;
        info!(
            "serving with {} I/O threads, {} password-hashing threads, {} storage readers",
            options.threads.max(1),
            options.auth_threads.max(1),
            options.read_threads.max(1)
        );

        let ex = Executor::new();
        let reloader = options.reloader.clone();
        let control = control.map(|l| {
            ex.spawn(control::serve(
                l,
                shared.clone(),
                Instant::now(),
                reloader.clone(),
            ))
        });
        let hangups = reloader.map(|r| ex.spawn(crate::reload::on_hangup(shared.clone(), r)));
        let metrics = metrics.map(|l| ex.spawn(metrics::serve(l, shared.clone(), Instant::now())));
        let (stop_executor, executor_stopped) = async_channel::unbounded::<()>();
        let (_, connections) = Parallel::new()
            .each(0..options.threads.max(1) - 1, |_| {
                async_io::block_on(ex.run(executor_stopped.recv()))
            })
            .finish(|| {
                let accepted =
                    async_io::block_on(ex.run(serve(&ex, &shared, listeners, &options, stop)));
                drop(stop_executor);
                accepted
            });

        drop((control, metrics, hangups));
        // The pools finish their queues (their results may still queue
        // writes), then the writer commits everything and stops.
        shared.effects.close_pools();
        for t in threads.pools {
            let _ = t.join();
        }
        shared.effects.writes.close();
        let _ = threads.writer.join();

        let stats = Stats {
            connections,
            lock_acquired: shared.counters.lock_acquired.load(Ordering::Relaxed),
            lock_contended: shared.counters.lock_contended.load(Ordering::Relaxed),
        };
        debug!(
            "hub lock: {} acquisitions, {} contended ({:.3}%), over {} connections",
            stats.lock_acquired,
            stats.lock_contended,
            100.0 * stats.lock_contended as f64 / stats.lock_acquired.max(1) as f64,
            stats.connections
        );
        info!("stopped");
        Ok(stats)
    }

    /// Runs the server on a thread of its own until [`ServerHandle::shutdown`]
    /// (or until the handle is dropped).
    pub fn spawn(self) -> Result<ServerHandle, StartError> {
        let addr = self.addr;
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let thread = thread::Builder::new()
            .name("confab-server".into())
            .spawn(move || {
                self.run(async move {
                    let _ = stopped.recv().await;
                })
            })
            .map_err(StartError::Thread)?;
        Ok(ServerHandle { addr, stop, thread })
    }
}

struct Threads {
    pools: Vec<JoinHandle<()>>,
    writer: JoinHandle<()>,
}

fn spawn_workers(shared: &Arc<Shared>, w: Workers) -> Result<Threads, StartError> {
    let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
        thread::Builder::new()
            .name(name)
            .spawn(f)
            .map_err(StartError::Thread)
    };
    let mut pools = Vec::new();
    // The workers see the hub only as the inbox for their results.
    let results: Arc<dyn Results> = shared.clone();
    for (i, auth) in w.authenticators.into_iter().enumerate() {
        let (rx, results) = (w.auth_rx.clone(), results.clone());
        pools.push(spawn(
            format!("confab-auth-{i}"),
            Box::new(move || pool::run_pool(rx, auth, results)),
        )?);
    }
    for (i, store) in w.read_stores.into_iter().enumerate() {
        let (rx, results) = (w.read_rx.clone(), results.clone());
        pools.push(spawn(
            format!("confab-read-{i}"),
            Box::new(move || storage::run_reader(rx, results, store)),
        )?);
    }
    let (rx, store) = (w.write_rx, w.write_store);
    let results: Arc<dyn Results> = match w.cluster {
        Some(cluster) => Arc::new(crate::cluster::Inbox {
            hub: results,
            cluster,
        }),
        None => results,
    };
    let writer = spawn(
        "confab-write".into(),
        Box::new(move || storage::run_writer(rx, results, store)),
    )?;
    Ok(Threads { pools, writer })
}

/// The accept loop and the shutdown sequence; returns connections accepted.
async fn serve(
    ex: &Executor<'_>,
    shared: &Arc<Shared>,
    listeners: Listeners,
    options: &ServerOptions,
    stop: impl Future<Output = ()>,
) -> u64 {
    enum Event {
        Stop,
        Accepted(io::Result<(Async<TcpStream>, SocketAddr)>, Protocol),
        WebAccepted(io::Result<(Async<TcpStream>, SocketAddr)>),
        Finished(u64),
        Summary,
    }
    let (done_tx, done_rx) = async_channel::unbounded::<u64>();
    let mut tasks = TaskSlab::default();
    let mut accepted = 0u64;
    let prune = WriteJob::PruneSends {
        window: options.engine.dedup_window,
        keep: options.engine.dedup_per_device,
    };
    let storage_clock = ex.spawn(storage_clock(shared.clone(), options.retention, prune));
    let sweep = ex.spawn(crate::sweep::sweep(shared.clone()));
    let dumps = options
        .counters_on_signal
        .then(|| ex.spawn(log_counters_on_signal(shared.clone())));
    let tls = options.tls.clone().map(|config| Tls {
        acceptor: TlsAcceptor::from(config),
        // The hub's auth timer starts now too: the handshake uses it up.
        timeout: options.engine.auth_timeout,
    });
    let (stop_web, web_stopping) = async_channel::bounded::<()>(1);
    let irc = listeners.irc.as_ref().map(|(_, _, protocol)| *protocol);
    let web = options.web.as_ref().map(|w| {
        let tls = options.tls.clone();
        let slot = options.tls_slot.clone();
        Arc::new(Web::new(w, tls, slot, &options.engine, irc, web_stopping))
    });
    let mut stop = pin!(stop);
    let mut refusals = Refusals::new();
    loop {
        let due = refusals.due();
        let event = future::or(
            async {
                stop.as_mut().await;
                Event::Stop
            },
            future::or(
                async {
                    match done_rx.recv().await {
                        Ok(id) => Event::Finished(id),
                        // Unreachable while `done_tx` lives; treat as a stop.
                        Err(_) => Event::Stop,
                    }
                },
                future::or(
                    accept(&listeners.tcp, listeners.irc.as_ref(), Event::Accepted),
                    future::or(
                        async { Event::WebAccepted(listeners.accept_web().await) },
                        async {
                            match due {
                                Some(t) => Timer::at(t).await,
                                None => Timer::never().await,
                            };
                            Event::Summary
                        },
                    ),
                ),
            ),
        )
        .await;
        match event {
            Event::Stop => break,
            Event::Finished(id) => tasks.remove(id),
            Event::Summary => refusals.summarize(Instant::now()),
            Event::Accepted(Ok((stream, peer)), protocol) => {
                // Frames are written whole; no need to wait for more.
                let _ = stream.get_ref().set_nodelay(true);
                let source = source_of(peer.ip());
                let admitted = shared.with_core(|core, now| {
                    core.hub
                        .admit(now, source)
                        .map(|()| core.connect(now, peer, source, protocol))
                });
                let (conn, woken) = match admitted {
                    Ok(admitted) => admitted,
                    Err(refused) => {
                        measures::count(&NET.refused);
                        refusals.turn_away(ex, Instant::now(), stream, peer, refused);
                        continue;
                    }
                };
                measures::count(&NET.accepted);
                info!("connection opened peer={peer} conn={conn}");
                let id = tasks.next_id();
                accepted += 1;
                let c = Connection {
                    shared: shared.clone(),
                    stream,
                    conn,
                    woken,
                    done: done_tx.clone(),
                    id,
                    ended: false,
                };
                let task = match &tls {
                    None => ex.spawn(plain_connection(c)),
                    Some(tls) => {
                        let tls = match &options.tls_slot {
                            Some(slot) => Tls {
                                acceptor: TlsAcceptor::from(slot.get()),
                                timeout: tls.timeout,
                            },
                            None => tls.clone(),
                        };
                        ex.spawn(tls_connection(c, tls))
                    }
                };
                tasks.insert(task);
            }
            Event::WebAccepted(Ok((stream, peer))) => {
                let _ = stream.get_ref().set_nodelay(true);
                let (Some(web), id) = (&web, u64::from(tasks.next_id())) else {
                    continue;
                };
                accepted += 1;
                let c = WebConn {
                    shared: shared.clone(),
                    stream,
                    peer,
                    done: done_tx.clone(),
                    id,
                };
                tasks.insert(ex.spawn(web::connection(c, web.clone())));
            }
            Event::Accepted(Err(e), _) | Event::WebAccepted(Err(e)) => {
                // Out of file descriptors, usually: back off instead of spinning.
                warn!("accepting a connection failed: {e}");
                Timer::after(Duration::from_millis(100)).await;
            }
        }
    }
    drop(listeners);
    // Web connections still reading their request end now.
    drop(stop_web);
    info!("shutting down: {} connections to close", tasks.len());
    shared.with_core(|core, now| {
        let retry = core.hub.config().shutdown_retry;
        core.hub.shutdown(now, retry, "server shutting down")
    });
    let deadline = Instant::now() + options.shutdown_timeout;
    while !tasks.is_empty() {
        let finished = future::or(async { done_rx.recv().await.ok() }, async {
            Timer::at(deadline).await;
            None
        })
        .await;
        match finished {
            Some(id) => tasks.remove(id),
            None => {
                warn!(
                    "{} connections did not close within the shutdown timeout; dropping them",
                    tasks.len()
                );
                break;
            }
        }
    }
    for task in tasks.into_tasks() {
        task.cancel().await;
    }
    storage_clock.cancel().await;
    sweep.cancel().await;
    if let Some(dumps) = dumps {
        dumps.cancel().await;
    }
    accepted
}

/// Sends the storage writer its [`WriteJob::Tick`]s, and once a minute
/// the pruning of exactly-once records (`prune`, a
/// [`WriteJob::PruneSends`]) and retention if there is one; until the
/// writer's queue closes.
/// Logs the counters at each SIGUSR2 (see [`crate::counters`]).
async fn log_counters_on_signal(shared: Arc<Shared>) {
    let dumps = match Dumps::install() {
        Ok(d) => d,
        Err(e) => return warn!("cannot install the SIGUSR2 handler for counters: {e}"),
    };
    while dumps.next().await {
        info!("{}", shared.counters.line());
    }
}

async fn storage_clock(shared: Arc<Shared>, retention: Option<Retention>, prune: WriteJob) {
    let WriteJob::PruneSends { window, keep } = prune else {
        return;
    };
    let ticks_per_retention =
        (Duration::from_secs(60).as_millis() / storage::TICK.as_millis()).max(1);
    let mut tick = 0u128;
    loop {
        let minute = tick.is_multiple_of(ticks_per_retention);
        let retention = retention.filter(|_| minute);
        let writes = &shared.effects.writes;
        let pushed = writes.push(WriteJob::Tick).is_ok()
            && (!minute || writes.push(WriteJob::PruneSends { window, keep }).is_ok())
            && retention.is_none_or(|r| writes.push(WriteJob::Retention(r)).is_ok());
        if !pushed {
            return;
        }
        tick += 1;
        Timer::after(storage::TICK).await;
    }
}
