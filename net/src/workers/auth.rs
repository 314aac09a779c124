//! The password pool: logins and registrations on a small pool of
//! blocking threads.
//!
//! The pool has `--auth-threads` threads, each with its own [`Store`] and
//! its own argon2 memory; the effect dispatcher hands them jobs through a
//! bounded queue that serves source addresses in turn ([`FairQueue`]) and
//! answers "busy" when it is full. Each thread hands its results to the
//! hub through a [`Results`] inbox, not the hub's lock.
//!
//! A login is only ever a password check here: whether it may be tried at
//! all (lockouts, flood penalties) and what a failure costs the next try
//! are the engine's to decide, before the job is queued and when its
//! answer comes back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_engine::effect::{DeviceAsk, DeviceLogin, Secret};
use confab_engine::{ConnId, EffectResult, Input, Name, Password, ProtocolError, Token};
use log::{error, info, warn};
use ring::rand::{SecureRandom, SystemRandom};

use super::storage_failed;
use crate::auth::{HashParams, Verified};
use crate::auth_queue::FairQueue;
use crate::hash_memory::HashMemory;
use crate::inbox::Results;
use crate::store::Store;
use confab_engine::seat;

/// A pool thread's loop: runs jobs until the queue is closed and empty,
/// giving its hash memory back whenever no job waits.
///
/// Registrations that wait together commit together: after the first job
/// the thread goes on taking waiting jobs for up to [`BATCH_TIME`] (and
/// [`BATCH_MAX`] jobs), hashing each registration's password, then
/// creates the accounts in one transaction, one fsync for all, before any
/// of them is answered. A login's answer goes out at once; one that comes
/// after registrations first commits them, so it can see them. With
/// real password hashing a hash takes longer than the batch time and a
/// batch is one registration, as before; what it saves is the fsync per
/// account when they are cheap and many (19,000 connections registering,
/// docs/PERFORMANCE.md).
pub(crate) fn run_pool(
    jobs: Arc<FairQueue<AuthJob>>,
    mut auth: Authenticator,
    results: Arc<dyn Results>,
) {
    // The hash memory goes back before the answer that leaves the queue
    // empty does: a client that has its answer finds the server idle.
    let hand = |auth: &mut Authenticator, out: Vec<Input>| {
        if jobs.is_empty() {
            auth.idle();
        }
        results.deliver(out);
    };
    while let Some(first) = jobs.pop_blocking() {
        let started = Instant::now();
        let mut pending = Vec::new();
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(job) = next.take() {
            taken += 1;
            match job.kind {
                AuthKind::Register(password) => pending.push(Checked {
                    hash: auth.check_registration(job.user, password.expose()),
                    conn: job.conn,
                    user: job.user,
                    peer: job.peer,
                }),
                _ => {
                    if !pending.is_empty() {
                        let registered = auth.register_all(std::mem::take(&mut pending));
                        results.deliver(registered);
                    }
                    let hashed = Instant::now();
                    let result = auth.run(job);
                    crate::measures::NET
                        .hash_seconds
                        .observe(hashed.elapsed().as_secs_f64());
                    hand(&mut auth, vec![result.into()]);
                }
            }
            if taken < BATCH_MAX && started.elapsed() < BATCH_TIME {
                next = jobs.try_pop();
            }
        }
        if !pending.is_empty() {
            let registered = auth.register_all(pending);
            hand(&mut auth, registered);
        }
    }
}

fn log_registration(user: &Name, conn: ConnId, peer: &str, result: &Result<(), ProtocolError>) {
    match result {
        Ok(()) => info!("registered user={user} conn={conn} peer={peer}"),
        Err(r) => info!("registration refused user={user} conn={conn} peer={peer}: {r}"),
    }
}

/// A registration whose password is hashed (or that failed its checks),
/// waiting for its batch to commit.
struct Checked {
    conn: ConnId,
    user: Name,
    peer: Option<SocketAddr>,
    hash: Result<String, ProtocolError>,
}

/// Most jobs a pool thread takes into one batch (see [`run_pool`]).
const BATCH_MAX: usize = 64;
/// How long a pool thread goes on taking waiting jobs into one batch.
const BATCH_TIME: Duration = Duration::from_millis(2);

/// A job for the pool.
#[derive(Debug)]
pub(crate) struct AuthJob {
    pub(crate) conn: ConnId,
    pub(crate) kind: AuthKind,
    pub(crate) user: Name,
    pub(crate) peer: Option<SocketAddr>,
}

/// Which check, with its secret.
#[derive(Debug)]
pub(crate) enum AuthKind {
    Login(Password),
    Register(Password),
    Login2(Box<Login2Ask>),
}

/// A LOGIN2 as `Effect::Login2` asks it.
#[derive(Debug)]
pub(crate) struct Login2Ask {
    pub(crate) secret: Secret,
    pub(crate) device: Option<DeviceAsk>,
    pub(crate) token_idle: Duration,
    pub(crate) max_devices: u16,
    pub(crate) max_read_markers: u16,
}

impl AuthJob {
    /// The answer when the job cannot even be queued.
    pub(crate) fn refused(self, refusal: ProtocolError) -> EffectResult {
        match self.kind {
            AuthKind::Login(_) => EffectResult::Authenticated {
                conn: self.conn,
                result: Err(refusal),
            },
            AuthKind::Register(_) => EffectResult::Registered {
                conn: self.conn,
                result: Err(refusal),
            },
            AuthKind::Login2(_) => EffectResult::LoggedIn2 {
                conn: self.conn,
                result: Err(refusal),
            },
        }
    }
}

/// What each pool thread owns.
pub(crate) struct Authenticator {
    pub(crate) store: Box<dyn Store>,
    pub(crate) params: HashParams,
    /// Verified against for unknown accounts, so that they take as long.
    pub(crate) dummy_hash: Arc<str>,
    /// This thread's argon2 blocks (see [`HashMemory`]).
    pub(crate) memory: HashMemory,
    /// Where new device tokens come from.
    pub(crate) rng: SystemRandom,
}

impl Authenticator {
    /// A thread's authenticator, holding no hash memory yet.
    pub(crate) fn new(
        store: Box<dyn Store>,
        params: HashParams,
        dummy_hash: Arc<str>,
    ) -> Authenticator {
        Authenticator {
            store,
            params,
            dummy_hash,
            memory: HashMemory::new(),
            rng: SystemRandom::new(),
        }
    }

    /// No job waits: gives the hash memory back to the OS.
    pub(crate) fn idle(&mut self) {
        self.memory.release();
    }

    /// Runs one job.
    pub(crate) fn run(&mut self, job: AuthJob) -> EffectResult {
        let AuthJob {
            conn,
            kind,
            user,
            peer,
        } = job;
        let peer_text = peer.map_or_else(|| "-".to_owned(), |p| p.to_string());
        match kind {
            AuthKind::Login(password) => {
                let result = self.login(user, password.expose());
                match &result {
                    Ok(name) => info!("login user={name} conn={conn} peer={peer_text}"),
                    Err(r) => info!("login refused user={user} conn={conn} peer={peer_text}: {r}"),
                }
                EffectResult::Authenticated { conn, result }
            }
            AuthKind::Register(password) => {
                let result = self.register(user, password.expose());
                log_registration(&user, conn, &peer_text, &result);
                EffectResult::Registered { conn, result }
            }
            AuthKind::Login2(ask) => {
                let result = self.login2(user, *ask);
                match &result {
                    // Neither the token nor the password is printed.
                    Ok(l) => {
                        let device = l.seat.map_or_else(|| "-".to_owned(), |s| s.id.to_string());
                        let issued = if l.token.is_some() {
                            " (new token)"
                        } else {
                            ""
                        };
                        info!(
                            "login2 user={} {device}{issued} conn={conn} peer={peer_text}",
                            l.user
                        )
                    }
                    Err(r) => info!("login2 refused user={user} conn={conn} peer={peer_text}: {r}"),
                }
                EffectResult::LoggedIn2 { conn, result }
            }
        }
    }

    /// Checks a login's password; the canonical name on success.
    pub(crate) fn login(&mut self, user: Name, password: &str) -> Result<Name, ProtocolError> {
        // The engine sets the wait a failure earns (its lockout policy).
        let wrong = ProtocolError::BadCredentials {
            retry: Duration::ZERO,
        };
        let account = self
            .store
            .account(&user)
            .map_err(|e| storage_failed("looking up an account", &e))?;
        let Some(account) = account else {
            // Same work as for a real account; the answer is "wrong" anyway.
            let _ = self
                .params
                .verify_in(&mut self.memory, &self.dummy_hash, password);
            return Err(wrong);
        };
        match self
            .params
            .verify_in(&mut self.memory, &account.password_hash, password)
        {
            Ok(Verified::Match { upgrade }) => {
                if upgrade {
                    self.upgrade(&account.name, password);
                }
                Ok(account.name)
            }
            Ok(Verified::Mismatch) => Err(wrong),
            Err(e) => {
                error!("cannot check the password of {user}: {e}");
                Err(ProtocolError::Storage(e.to_string()))
            }
        }
    }

    /// A LOGIN2: the password checked as a LOGIN's (argon2id), then the
    /// device it names; or the token, by its blake3 hash (no argon2: it
    /// has 256 bits of entropy). Then the user's read markers.
    pub(crate) fn login2(
        &mut self,
        typed: Name,
        ask: Login2Ask,
    ) -> Result<DeviceLogin, ProtocolError> {
        let now = now_ms();
        let store = &mut *self.store;
        let (user, seated) = match ask.secret {
            Secret::Password(password) => {
                let user = self.login(typed, password.expose())?;
                let seated = match ask.device {
                    Some(device) => {
                        let issue = if device.issue_token {
                            Some(self.new_token()?)
                        } else {
                            None
                        };
                        let store = &mut *self.store;
                        let issue = issue.map(|t| (t, blake3::hash(&t.0).into()));
                        let seated =
                            seat::by_password(store, &user, device, issue, ask.max_devices, now)
                                .map_err(|e| storage_failed("seating a device", &e))??;
                        Some(seated)
                    }
                    None => None,
                };
                (user, seated)
            }
            Secret::Token(token) => {
                let hash: [u8; 32] = blake3::hash(&token.0).into();
                let (user, seat) = seat::by_token(store, &typed, &hash, ask.token_idle, now)
                    .map_err(|e| storage_failed("looking a device token up", &e))??;
                (user, Some((seat, None)))
            }
        };
        let read_markers = self
            .store
            .read_markers(&user, ask.max_read_markers)
            .map_err(|e| storage_failed("loading read markers", &e))?;
        Ok(DeviceLogin {
            user,
            seat: seated.map(|(s, _)| s),
            token: seated.and_then(|(_, t)| t),
            read_markers,
        })
    }

    /// 32 bytes from the OS's random source.
    fn new_token(&self) -> Result<Token, ProtocolError> {
        let mut bytes = [0u8; Token::LEN];
        self.rng.fill(&mut bytes).map_err(|_| {
            error!("the system's random source failed; no device token issued");
            ProtocolError::Storage("cannot make a device token".to_owned())
        })?;
        Ok(Token(bytes))
    }

    /// Creates an account.
    pub(crate) fn register(&mut self, user: Name, password: &str) -> Result<(), ProtocolError> {
        let hash = self.check_registration(user, password)?;
        match self.store.create_account(&user, &hash) {
            Ok(true) => Ok(()),
            Ok(false) => Err(ProtocolError::NameTaken { user }),
            Err(e) => Err(storage_failed("creating an account", &e)),
        }
    }

    /// A registration's password hash, unless the name is taken already
    /// (a cheap check first: a taken name costs no hash).
    fn check_registration(&mut self, user: Name, password: &str) -> Result<String, ProtocolError> {
        match self.store.account(&user) {
            Ok(Some(_)) => return Err(ProtocolError::NameTaken { user }),
            Ok(None) => {}
            Err(e) => return Err(storage_failed("looking up an account", &e)),
        }
        self.params
            .hash_in(&mut self.memory, password)
            .map_err(|e| {
                error!("cannot hash a password: {e}");
                ProtocolError::Storage(e.to_string())
            })
    }

    /// Creates the accounts of checked registrations in one transaction
    /// and answers every registration, in order.
    fn register_all(&mut self, checked: Vec<Checked>) -> Vec<Input> {
        let accounts: Vec<(Name, String)> = checked
            .iter()
            .filter_map(|c| Some((c.user, c.hash.as_ref().ok()?.clone())))
            .collect();
        let mut created = match self.store.create_accounts(&accounts) {
            Ok(created) => Ok(created.into_iter()),
            Err(e) => Err(storage_failed("creating accounts", &e)),
        };
        checked
            .into_iter()
            .map(|job| {
                let result = job.hash.and_then(|_| match &mut created {
                    Ok(created) => match created.next() {
                        Some(true) => Ok(()),
                        _ => Err(ProtocolError::NameTaken { user: job.user }),
                    },
                    Err(e) => Err(e.clone()),
                });
                let peer = job.peer.map_or_else(|| "-".to_owned(), |p| p.to_string());
                log_registration(&job.user, job.conn, &peer, &result);
                EffectResult::Registered {
                    conn: job.conn,
                    result,
                }
                .into()
            })
            .collect()
    }

    fn upgrade(&mut self, user: &Name, password: &str) {
        let result = self
            .params
            .hash_in(&mut self.memory, password)
            .map_err(|e| e.to_string())
            .and_then(|h| self.store.set_password(user, &h).map_err(|e| e.to_string()));
        match result {
            Ok(_) => info!("upgraded the password hash of {user} to the current parameters"),
            Err(e) => warn!("cannot upgrade the password hash of {user}: {e}"),
        }
    }
}

fn now_ms() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {

    use confab_engine::frame::ErrorCode;
    use confab_engine::testing::MemoryStore;

    use super::*;

    /// Cheap parameters: the tests check logic, not cost.
    const FAST: HashParams = HashParams {
        memory_kib: 64,
        passes: 1,
        lanes: 1,
    };

    fn name(s: &str) -> Name {
        Name::new(s).expect("test names are valid")
    }

    fn authenticator(params: HashParams) -> (Authenticator, MemoryStore) {
        let store = MemoryStore::default();
        let a = Authenticator::new(
            Box::new(store.clone()),
            params,
            params.hash("dummy").expect("hashes").into(),
        );
        (a, store)
    }

    #[test]
    fn register_then_login_returns_the_registered_spelling() {
        let (mut a, _) = authenticator(FAST);
        assert_eq!(a.register(name("Alice"), "pw"), Ok(()));
        let taken = a.register(name("alice"), "pw2").unwrap_err();
        assert_eq!(taken.code(), ErrorCode::NameTaken);
        assert_eq!(taken.to_string(), "the name alice is taken");
        assert_eq!(a.login(name("ALICE"), "pw"), Ok(name("Alice")));
    }

    #[test]
    fn a_wrong_password_is_bad_credentials_and_the_wait_is_left_to_the_engine() {
        let (mut a, _) = authenticator(FAST);
        a.register(name("bob"), "right").expect("registers");
        for _ in 0..3 {
            let r = a.login(name("bob"), "wrong").unwrap_err();
            assert_eq!(
                (r.code(), r.retry_after_ms()),
                (ErrorCode::BadCredentials, 0)
            );
        }
        assert_eq!(a.login(name("bob"), "right"), Ok(name("bob")));
    }

    #[test]
    fn an_unknown_account_is_wrong_credentials() {
        let (mut a, _) = authenticator(FAST);
        let r = a.login(name("nobody"), "pw").unwrap_err();
        assert_eq!(r.code(), ErrorCode::BadCredentials);
    }

    #[test]
    fn a_login_upgrades_a_weak_stored_hash() {
        let (mut a, mut store) = authenticator(FAST);
        a.register(name("carol"), "pw").expect("registers");
        a.params = HashParams {
            memory_kib: 128,
            ..FAST
        };
        assert_eq!(a.login(name("carol"), "pw"), Ok(name("carol")));
        let stored = store
            .account(&name("carol"))
            .expect("reads")
            .expect("exists");
        assert!(
            stored.password_hash.contains("m=128,"),
            "{}",
            stored.password_hash
        );
    }

    fn login2(
        a: &mut Authenticator,
        secret: Secret,
        device: Option<&str>,
    ) -> Result<DeviceLogin, ProtocolError> {
        let ask = Login2Ask {
            secret,
            device: device.map(|d| DeviceAsk {
                name: name(d),
                issue_token: true,
            }),
            token_idle: Duration::from_secs(3600),
            max_devices: 2,
            max_read_markers: 8,
        };
        a.login2(name("DAN"), ask)
    }

    #[test]
    fn a_password_login2_issues_a_random_token_that_then_logs_in_by_its_blake3_hash() {
        let (mut a, mut store) = authenticator(FAST);
        a.register(name("dan"), "pw").expect("registers");
        let wrong = login2(
            &mut a,
            Secret::Password(Password::offered("no")),
            Some("laptop"),
        );
        assert_eq!(
            wrong.map(|_| ()).unwrap_err().code(),
            ErrorCode::BadCredentials
        );
        let first = login2(
            &mut a,
            Secret::Password(Password::offered("pw")),
            Some("laptop"),
        )
        .expect("logs in");
        let token = first.token.expect("a token was issued");
        let seat = first.seat.expect("seated");
        assert_eq!(first.user, name("dan"));
        let stored = store
            .device_by_name(&name("dan"), &name("laptop"))
            .expect("reads");
        let hash: [u8; 32] = blake3::hash(&token.0).into();
        assert_eq!(stored.and_then(|d| d.token_hash), Some(hash));
        let again = login2(&mut a, Secret::Token(token), None).expect("the token logs in");
        assert_eq!(
            (again.user, again.seat.map(|s| s.id), again.token),
            (name("dan"), Some(seat.id), None)
        );
        // A second password login gets a different token; the first is void.
        let second = login2(
            &mut a,
            Secret::Password(Password::offered("pw")),
            Some("laptop"),
        )
        .expect("logs in");
        assert_ne!(second.token, Some(token));
        let stale = login2(&mut a, Secret::Token(token), None)
            .map(|_| ())
            .unwrap_err();
        assert!(matches!(stale, ProtocolError::BadToken { .. }), "{stale:?}");
    }
}
