//! The confab server shell: drives the sans-IO [`confab_engine::Hub`] over
//! TCP with smol's pieces (async-io, async-executor), and runs password
//! hashing and storage on threads of their own.
//!
//! `net` makes no protocol decisions. It moves bytes between sockets and the
//! hub, arms one timer per connection, and turns the hub's effects into
//! work for the blocking threads and their results back into hub calls.
//!
//! - [`server`]: the executor, the accept loop, shutdown; [`Server`] is the
//!   entry point for tests and benches.
//! - `conn`: one task per connection, reader and writer, over plain TCP
//!   or TLS; [`tls`]: the certificate and the rustls configuration.
//! - `shared`: the hub and the writer wakers behind one lock.
//! - `effects`: where each effect goes; `storage`: the writer (group
//!   commit) and the readers; [`auth`]: argon2id and the login checks;
//! - [`cli`], [`logger`], [`signals`], [`admin`]: the `confab-server` binary.
//! - [`store`]: the storage interface and its implementations.
//!
//! A server in a test:
//!
//! ```no_run
//! use std::sync::Arc;
//! use confab_engine::testing::MemoryStore;
//! use confab_net::store::Store;
//! use confab_net::{Server, ServerOptions};
//!
//! let store = MemoryStore::default();
//! let stores = Arc::new(move || Ok(Box::new(store.clone()) as Box<dyn Store>));
//! let server = Server::bind(ServerOptions::default(), stores)?.spawn()?;
//! let addr = server.local_addr();
//! // ... connect to `addr` ...
//! let stats = server.shutdown();
//! # Ok::<(), confab_net::StartError>(())
//! ```

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use log::{info, warn};

pub mod admin;
pub mod auth;
mod auth_queue;
pub mod cli;
pub mod cluster;
pub mod config_file;
mod conn;
pub mod control;
pub mod counters;
mod effects;
mod guard;
mod hash_memory;
mod inbox;
mod linger;
mod listeners;
pub mod logger;
mod measures;
pub mod metrics;
pub mod migrate;
pub mod ops;
pub mod options;
mod refuse;
pub mod reload;
mod reloader;
mod sanctions;
pub mod server;
mod server_handle;
mod shared;
pub mod signals;
pub mod source;
pub mod store;
mod store_record;
mod sweep;
mod task_slab;
mod tcp_task;
pub mod tls;
pub mod web;
mod workers;

pub use server::{Server, ServerHandle, ServerOptions, StartError, Stats, StoreFactory};

use crate::auth::HashError;
use crate::cli::{Cli, Command, ServeArgs, SyncMode, UserCommand};
use crate::store::postgres::PgStore;
use crate::store::sqlite::{SqliteOptions, SqliteStore, Sync};
use crate::store::{Store, StoreError};

/// Why `confab-server` stopped with an error; each is one line for stderr.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The log file cannot be opened.
    #[error("cannot open the log file {}: {source}", path.display())]
    LogFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The data dir cannot be created or written.
    #[error("the data dir {} cannot be used: {source}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The server could not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// Storage failed (account commands).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing failed (account commands).
    #[error(transparent)]
    Hash(#[from] HashError),
    /// TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// Plaintext on an address others can reach, without saying so.
    #[error(
        "refusing to serve plaintext on {0}, which is not a loopback address: give \
         --tls-cert FILE --tls-key FILE or --tls-self-signed, or --insecure-plaintext \
         to send passwords and messages unencrypted anyway"
    )]
    Plaintext(std::net::SocketAddr),
    /// The limits do not fit together (see `Config::check`).
    #[error("invalid limits: {0}")]
    Config(#[from] confab_engine::ConfigError),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(io::Error),
    /// An account command was refused.
    #[error("{0}")]
    User(String),
}

/// The `confab-server` binary: logs, then serves or runs an account command.
pub fn run(mut cli: Cli) -> Result<(), Error> {
    // A command without --store acts on the store the node on its data
    // dir runs on (see store_record.rs), never silently on another.
    if matches!(cli.command, Some(Command::User(_) | Command::Ops(_))) && cli.serve.store.is_none()
    {
        cli.serve.store = store_record::follow(&cli.serve.data_dir)?;
    }
    let args = &cli.serve;
    if let Some(Command::CheckConfig { file }) = &cli.command {
        let errors = config_file::check(file);
        if errors.is_empty() {
            println!("{}: ok", file.display());
            return Ok(());
        }
        for e in &errors {
            eprintln!("{e}");
        }
        return Err(Error::User(format!(
            "{} errors in {}",
            errors.len(),
            file.display()
        )));
    }
    logger::init(args.log_level.into(), args.log_file.as_deref()).map_err(|source| {
        Error::LogFile {
            path: args.log_file.clone().unwrap_or_default(),
            source,
        }
    })?;
    prepare_data_dir(&args.data_dir)?;
    let node = cluster::random_node_id();
    let stores = match postgres_url(args)? {
        Some(url) => postgres_stores(url, node),
        None => sqlite_stores(&args.data_dir, args.sync),
    };
    match cli.command {
        Some(Command::User(command)) if postgres_url(args)?.is_some() => {
            let mut store = PgStore::open(postgres_url(args)?.unwrap_or_default())?;
            match command {
                UserCommand::Op { name } => pg_operator(&args.data_dir, &mut store, &name, true),
                UserCommand::Deop { name } => pg_operator(&args.data_dir, &mut store, &name, false),
                UserCommand::Del { name } => {
                    admin::run(&mut store, &args.hash_params(), UserCommand::Del { name })?;
                    ops::deleted(&args.data_dir, &name)
                }
                command => {
                    // The node running on this data dir, if any, closes the
                    // revoked sessions and tells the other nodes.
                    let revoked = admin::run(&mut store, &args.hash_params(), command)?;
                    ops::revoked(&args.data_dir, &revoked)
                }
            }
        }
        Some(Command::User(command)) => {
            let mut store = sqlite_store(&args.data_dir, args.sync)?;
            match command {
                UserCommand::Op { name } => {
                    ops::set_operator(&args.data_dir, &mut store, &name, true)
                }
                UserCommand::Deop { name } => {
                    ops::set_operator(&args.data_dir, &mut store, &name, false)
                }
                UserCommand::Del { name } => {
                    admin::run(&mut store, &args.hash_params(), UserCommand::Del { name })?;
                    ops::deleted(&args.data_dir, &name)
                }
                command => {
                    let revoked = admin::run(&mut store, &args.hash_params(), command)?;
                    ops::revoked(&args.data_dir, &revoked)
                }
            }
        }
        Some(Command::CheckConfig { .. }) => Ok(()),
        Some(Command::Reload) => match control::request(&args.data_dir, &["reload"]) {
            Ok(Some(lines)) => {
                lines.iter().for_each(|l| println!("{l}"));
                Ok(())
            }
            Ok(None) => Err(Error::User(format!(
                "no server is running on the data dir {}",
                args.data_dir.display()
            ))),
            Err(e) => Err(Error::User(format!(
                "reload refused, nothing changed:\n{e}"
            ))),
        },
        Some(Command::Migrate { from, to }) => {
            let Some(dir) = from.strip_prefix("sqlite:") else {
                return Err(Error::User(format!("--from {from}: give sqlite:DIR")));
            };
            let moved = migrate::run(Path::new(dir), &sqlite_options(args.sync), &to)?;
            println!("{moved}");
            Ok(())
        }
        Some(Command::Ops(command)) => match postgres_url(args)? {
            Some(url) => ops::run(&args.data_dir, &mut PgStore::open(url)?, command),
            None => ops::run(
                &args.data_dir,
                &mut sqlite_store(&args.data_dir, args.sync)?,
                command,
            ),
        },
        None => serve(args, stores, node),
    }
}

fn serve(args: &ServeArgs, stores: StoreFactory, node: u64) -> Result<(), Error> {
    args.engine_config().check()?;
    let tls = server_tls(args)?;
    let signals = signals::Signals::install().map_err(Error::Signals)?;
    let (sanctions, operators, address_bans) = match postgres_url(args)? {
        Some(url) => {
            let mut store = PgStore::open(url)?;
            let now = ops::now_ms();
            (
                store.sanctions(now)?,
                store.operators()?,
                store.address_bans(now)?,
            )
        }
        None => {
            let mut store = sqlite_store(&args.data_dir, args.sync)?;
            let (s, o) = (store.sanctions(ops::now_ms())?, store.operators()?);
            (s, o, store.address_bans(ops::now_ms())?)
        }
    };
    // The store opened: commands run on this data dir follow it.
    store_record::write(&args.data_dir, postgres_url(args)?).map_err(|source| Error::DataDir {
        path: args.data_dir.clone(),
        source,
    })?;
    let cluster = match (postgres_url(args)?, &args.bus) {
        (Some(url), Some(bus)) => Some(cluster::ClusterOptions {
            store: url.to_owned(),
            bus: bus.clone(),
            node,
        }),
        _ => None,
    };
    let tls_slot = tls
        .as_ref()
        .map(|t| Arc::new(tls::TlsSlot::new(t.config.clone())));
    let reloader = args.config.as_ref().map(|file| {
        Arc::new(reloader::FileReloader {
            file: file.clone(),
            applied: std::sync::Mutex::new(config_file::read(file).unwrap_or_default()),
            tls: tls_slot.clone(),
            data_dir: args.data_dir.clone(),
            sync: args.sync,
        }) as Arc<dyn reload::Reload>
    });
    let server = Server::bind(
        ServerOptions {
            tls: tls.map(|t| t.config),
            tls_slot,
            reloader,
            counters_on_signal: true,
            control_dir: Some(args.data_dir.clone()),
            sanctions,
            address_bans,
            operators,
            metrics_listen: args.metrics_listen,
            cluster,
            ..options(args)
        },
        stores,
    )?;
    info!("data dir {}", args.data_dir.display());
    if log::log_enabled!(log::Level::Info) {
        info!("listening on {}", server.local_addr());
        if let Some(web) = server.web_addr() {
            info!("web listening on {web}");
        }
    } else {
        // Scripts and tests read the bound addresses from these lines, so
        // they are printed even when the log level hides info.
        eprintln!("listening on {}", server.local_addr());
        if let Some(web) = server.web_addr() {
            eprintln!("web listening on {web}");
        }
    }
    if let Some(addr) = server.irc_addr() {
        info!("irc listening on {addr}");
        if !log::log_enabled!(log::Level::Info) {
            eprintln!("irc listening on {addr}");
        }
    }
    log::logger().flush();
    server.run(signals.first())?;
    Ok(())
}

/// The TLS configuration the command line asks for (logging the
/// certificate's fingerprint), or `None` for plaintext, which is refused
/// on a non-loopback address without `--insecure-plaintext`.
fn server_tls(args: &ServeArgs) -> Result<Option<tls::Tls>, Error> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls::from_files(cert, key)?),
        _ if args.tls_self_signed => Some(tls::self_signed(&args.data_dir, args.listen.ip())?),
        _ => None,
    };
    if let Some(t) = &tls {
        info!("tls fingerprint {}", t.fingerprint);
        return Ok(tls);
    }
    // The web port is held to the same rule as the confab port.
    for addr in std::iter::once(args.listen).chain(args.web_listen) {
        if addr.ip().is_loopback() {
            continue;
        }
        if !args.insecure_plaintext {
            return Err(Error::Plaintext(addr));
        }
        warn!("serving plaintext on {addr}: passwords and messages cross the network unencrypted");
    }
    Ok(tls)
}

/// The server options the command line asks for.
pub fn options(args: &ServeArgs) -> ServerOptions {
    ServerOptions {
        listen: args.listen,
        threads: args.io_threads(),
        engine: args.engine_config(),
        auth_threads: usize::from(args.auth_threads),
        auth_queue: args.auth_queue as usize,
        auth_queue_per_source: args.auth_queue_per_source as usize,
        hash: args.hash_params(),
        write_queue: args.write_queue as usize,
        retention: args.retention(),
        shutdown_timeout: Duration::from_secs(args.shutdown_timeout),
        web: args.web_listen.map(|listen| web::WebOptions {
            listen,
            allowed_origins: args.web_allowed_origins.clone(),
        }),
        irc_listen: args.irc_listen,
        irc: confab_engine::irc::IrcConfig {
            room_channel: args.irc_room_channel.clone(),
            guests: args.irc_guests,
            room_presence: !args.irc_quiet_room,
            ..Default::default()
        },
        ..ServerOptions::default()
    }
}

fn sqlite_options(sync: SyncMode) -> SqliteOptions {
    SqliteOptions {
        sync: match sync {
            SyncMode::Full => Sync::Full,
            SyncMode::Normal => Sync::Normal,
        },
        ..SqliteOptions::default()
    }
}

/// Opens one SQLite store on `data_dir` (for the commands).
pub(crate) fn sqlite_store(data_dir: &Path, sync: SyncMode) -> Result<SqliteStore, Error> {
    Ok(SqliteStore::open(data_dir, &sqlite_options(sync))?)
}

/// The PostgreSQL URL of `--store`, if it names one; a `--bus` needs one.
fn postgres_url(args: &ServeArgs) -> Result<Option<&str>, Error> {
    match (args.store.as_deref(), &args.bus) {
        (Some(url), _) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Some(url))
        }
        // Only the scheme is echoed: a mistyped URL may hold a password.
        (Some(other), _) => {
            Err(Error::User(format!(
            "--store {}: give a postgres://... URL (or leave it out for SQLite in the data dir)",
            other.split_once("://").map_or("(not a URL)", |(scheme, _)| scheme)
        )))
        }
        (None, Some(_)) => Err(Error::User(
            "--bus needs --store postgres://...: nodes share their data through PostgreSQL".into(),
        )),
        (None, None) => Ok(None),
    }
}

/// `user op`/`deop` on PostgreSQL: stored, then the node running on
/// this data dir, if any, applies it at once and tells the other nodes
/// on the bus; without one it applies from each node's next start.
fn pg_operator(
    data_dir: &Path,
    store: &mut PgStore,
    name: &confab_engine::Name,
    operator: bool,
) -> Result<(), Error> {
    if !store.set_operator(name, operator)? {
        return Err(Error::User(format!("no account {name}")));
    }
    let role = if operator { "is" } else { "is no longer" };
    let action = if operator { "op" } else { "deop" };
    match control::request(data_dir, &[action, name.as_str()]) {
        Ok(Some(_)) => println!("{name} {role} a server operator (on every running node)"),
        Ok(None) => println!("{name} {role} a server operator (from each node's next start)"),
        Err(e) => {
            return Err(Error::User(format!(
                "stored, but the running node's control socket in {}: {e}",
                data_dir.display()
            )))
        }
    }
    Ok(())
}

/// Opens PostgreSQL stores on `url`, one connection each,
/// whose commits name `node`.
pub fn postgres_stores(url: &str, node: u64) -> StoreFactory {
    let url = url.to_owned();
    Arc::new(move || Ok(Box::new(PgStore::open(&url)?.for_node(node)) as Box<dyn Store>))
}

/// Opens SQLite stores on `data_dir`.
pub fn sqlite_stores(data_dir: &Path, sync: SyncMode) -> StoreFactory {
    let options = sqlite_options(sync);
    let dir = data_dir.to_owned();
    Arc::new(move || Ok(Box::new(SqliteStore::open(&dir, &options)?) as Box<dyn Store>))
}

/// Creates the data dir if needed and checks that it is writable, so that
/// the error names the directory rather than a database file.
fn prepare_data_dir(dir: &Path) -> Result<(), Error> {
    let err = |source| Error::DataDir {
        path: dir.to_owned(),
        source,
    };
    if dir.exists() && !dir.is_dir() {
        return Err(err(io::Error::other("it is not a directory")));
    }
    std::fs::create_dir_all(dir).map_err(err)?;
    // One probe per process: `confab-server user add` may check the same
    // directory while the server starts, and with one shared name the
    // second remove found the file gone and failed the start.
    let probe = dir.join(format!(".confab-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(err)?;
    std::fs::remove_file(&probe).map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests;
