//! Logins and registrations: argon2id on a small pool of blocking threads.
//!
//! Hashing a password costs tens of milliseconds and megabytes on purpose,
//! so it never runs on an I/O thread. The pool has `--auth-threads` threads,
//! each with its own [`Store`]; the effect dispatcher hands them jobs through
//! a bounded queue and answers "busy" when it is full. Hashes are PHC
//! strings carrying their parameters; a login that verifies against weaker
//! parameters than the current ones re-hashes the password.
//!
//! The [`Lockout`] is consulted twice: by the dispatcher before a job is
//! queued, and here right before hashing (failures counted while the job
//! waited count too), so a locked key never costs a hash.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use argon2::password_hash::phc::{Output, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Params, Version};
use confab_engine::name::NameKey;
use confab_engine::{ConnId, EffectResult, Name, Password, ProtocolError, Source};
use log::{error, info, warn};

use crate::hash_memory::HashMemory;
use crate::lockout::Lockout;
use crate::source::source_of;
use crate::store::{Store, StoreError};

/// Argon2id cost of new hashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashParams {
    /// Memory per hash in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub passes: u32,
    /// Parallel lanes.
    pub lanes: u32,
}

impl Default for HashParams {
    /// OWASP's first recommendation for argon2id: 19 MiB, 2 passes, 1 lane.
    fn default() -> HashParams {
        HashParams {
            memory_kib: 19 * 1024,
            passes: 2,
            lanes: 1,
        }
    }
}

/// A password could not be hashed, or a stored hash not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// The parameters are out of argon2's range.
    #[error("invalid argon2 parameters: {0}")]
    Params(String),
    /// Hashing failed (the system's random source, ...).
    #[error("hashing failed: {0}")]
    Hash(String),
    /// The stored hash is not a PHC string this server can verify.
    #[error("the stored password hash is unreadable: {0}")]
    Unreadable(String),
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// The password is right; `upgrade` says the hash is weaker than current.
    Match {
        /// Re-hash with the current parameters.
        upgrade: bool,
    },
    /// The password is wrong.
    Mismatch,
}

impl HashParams {
    fn hasher(&self) -> Result<Argon2<'static>, HashError> {
        let params = Params::new(self.memory_kib, self.passes, self.lanes, None)
            .map_err(|e| HashError::Params(e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// Checks that these parameters can hash at all.
    pub fn validate(&self) -> Result<(), HashError> {
        self.hasher().map(|_| ())
    }

    /// Hashes `password` with a fresh salt into a PHC string, in memory of
    /// its own, given back at once (for one-off hashes: see [`HashMemory`]).
    pub fn hash(&self, password: &str) -> Result<String, HashError> {
        self.hash_in(&mut HashMemory::new(), password)
    }

    /// Hashes `password` with a fresh salt into a PHC string, in `memory`.
    pub(crate) fn hash_in(
        &self,
        memory: &mut HashMemory,
        password: &str,
    ) -> Result<String, HashError> {
        let salt = argon2::password_hash::try_generate_salt()
            .map_err(|e| HashError::Hash(format!("no random salt: {e}")))?;
        self.hash_with_salt(memory, password, &salt)
    }

    fn hash_with_salt(
        &self,
        memory: &mut HashMemory,
        password: &str,
        salt: &[u8],
    ) -> Result<String, HashError> {
        let hasher = self.hasher()?;
        let hash_err = |e: &dyn std::fmt::Display| HashError::Hash(e.to_string());
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        let blocks = memory
            .blocks(hasher.params().block_count())
            .ok_or(HashError::Hash("out of memory".to_owned()))?;
        hasher
            .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, blocks)
            .map_err(|e| hash_err(&e))?;
        let phc = PasswordHash {
            algorithm: argon2::ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: hasher.params().try_into().map_err(|e| hash_err(&e))?,
            salt: Some(Salt::new(salt).map_err(|e| hash_err(&e))?),
            hash: Some(Output::new(&out).map_err(|e| hash_err(&e))?),
        };
        Ok(phc.to_string())
    }

    /// Checks `password` against a stored PHC string (with the parameters
    /// stored in it), in memory of its own.
    pub fn verify(&self, stored: &str, password: &str) -> Result<Verified, HashError> {
        self.verify_in(&mut HashMemory::new(), stored, password)
    }

    /// Checks `password` against a stored PHC string (with the parameters
    /// stored in it), in `memory`.
    pub(crate) fn verify_in(
        &self,
        memory: &mut HashMemory,
        stored: &str,
        password: &str,
    ) -> Result<Verified, HashError> {
        let unreadable = |e: &dyn std::fmt::Display| HashError::Unreadable(e.to_string());
        let parsed = PasswordHash::new(stored).map_err(|e| unreadable(&e))?;
        let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
            return Err(HashError::Unreadable("no salt or no hash".to_owned()));
        };
        let algorithm =
            Algorithm::try_from(parsed.algorithm.as_str()).map_err(|e| unreadable(&e))?;
        let version = match parsed.version {
            Some(v) => Version::try_from(v).map_err(|e| unreadable(&e))?,
            None => Version::default(),
        };
        let params = Params::try_from(&parsed).map_err(|e| unreadable(&e))?;
        let hasher = Argon2::new(algorithm, version, params);
        let blocks = memory
            .blocks(hasher.params().block_count())
            .ok_or(HashError::Hash("out of memory".to_owned()))?;
        let mut out = vec![0u8; expected.len()];
        hasher
            .hash_password_into_with_memory(password.as_bytes(), salt.as_ref(), &mut out, blocks)
            .map_err(|e| unreadable(&e))?;
        // `Output`'s equality is constant-time.
        if Output::new(&out).map_err(|e| unreadable(&e))? == *expected {
            Ok(Verified::Match {
                upgrade: self.is_stronger_than(&parsed),
            })
        } else {
            Ok(Verified::Mismatch)
        }
    }

    /// Whether a stored hash is weaker than these parameters (another
    /// algorithm or version, less memory, fewer passes or lanes).
    fn is_stronger_than(&self, stored: &PasswordHash) -> bool {
        if stored.algorithm != argon2::ARGON2ID_IDENT || stored.version != Some(0x13) {
            return true;
        }
        match Params::try_from(stored) {
            Ok(p) => {
                p.m_cost() < self.memory_kib || p.t_cost() < self.passes || p.p_cost() < self.lanes
            }
            Err(_) => true,
        }
    }
}

/// A job for the pool.
#[derive(Debug)]
pub(crate) struct AuthJob {
    pub(crate) conn: ConnId,
    pub(crate) kind: AuthKind,
    pub(crate) user: Name,
    pub(crate) password: Password,
    pub(crate) peer: Option<SocketAddr>,
}

/// Which check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthKind {
    Login,
    Register,
}

impl AuthJob {
    /// The answer when the job cannot even be queued.
    pub(crate) fn refused(self, refusal: ProtocolError) -> EffectResult {
        match self.kind {
            AuthKind::Login => EffectResult::Authenticated {
                conn: self.conn,
                result: Err(refusal),
            },
            AuthKind::Register => EffectResult::Registered {
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
    pub(crate) lockout: Arc<Mutex<Lockout>>,
    /// Verified against for unknown accounts, so that they take as long.
    pub(crate) dummy_hash: Arc<str>,
    /// This thread's argon2 blocks (see [`HashMemory`]).
    pub(crate) memory: HashMemory,
}

impl Authenticator {
    /// A thread's authenticator, holding no hash memory yet.
    pub(crate) fn new(
        store: Box<dyn Store>,
        params: HashParams,
        lockout: Arc<Mutex<Lockout>>,
        dummy_hash: Arc<str>,
    ) -> Authenticator {
        Authenticator {
            store,
            params,
            lockout,
            dummy_hash,
            memory: HashMemory::new(),
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
            password,
            peer,
        } = job;
        let peer_text = peer.map_or_else(|| "-".to_owned(), |p| p.to_string());
        match kind {
            AuthKind::Login => {
                let result = self.login(Instant::now(), user, password.expose(), peer);
                match &result {
                    Ok(name) => info!("login user={name} conn={conn} peer={peer_text}"),
                    Err(r) => info!("login refused user={user} conn={conn} peer={peer_text}: {r}"),
                }
                EffectResult::Authenticated { conn, result }
            }
            AuthKind::Register => {
                let result = self.register(user, password.expose());
                match &result {
                    Ok(()) => info!("registered user={user} conn={conn} peer={peer_text}"),
                    Err(r) => {
                        info!("registration refused user={user} conn={conn} peer={peer_text}: {r}")
                    }
                }
                EffectResult::Registered { conn, result }
            }
        }
    }

    /// Checks a login (see the module docs); the canonical name on success.
    pub(crate) fn login(
        &mut self,
        now: Instant,
        user: Name,
        password: &str,
        peer: Option<SocketAddr>,
    ) -> Result<Name, ProtocolError> {
        let source = peer.map(|p| source_of(p.ip()));
        let key = user.key();
        if let Err(wait) = self.lockout().check(now, key, source) {
            return Err(ProtocolError::LockedOut { retry: wait });
        }
        let account = self
            .store
            .account(&user)
            .map_err(|e| storage_failed("looking up an account", &e))?;
        let Some(account) = account else {
            // Same work as for a real account; the answer is "wrong" anyway.
            let _ = self
                .params
                .verify_in(&mut self.memory, &self.dummy_hash, password);
            return Err(self.failed(now, key, source));
        };
        match self
            .params
            .verify_in(&mut self.memory, &account.password_hash, password)
        {
            Ok(Verified::Match { upgrade }) => {
                self.lockout().success(key, source);
                if upgrade {
                    self.upgrade(&account.name, password);
                }
                Ok(account.name)
            }
            Ok(Verified::Mismatch) => Err(self.failed(now, key, source)),
            Err(e) => {
                error!("cannot check the password of {user}: {e}");
                Err(ProtocolError::Storage(e.to_string()))
            }
        }
    }

    /// Counts a failed login; the refusal says how long the next one waits.
    fn failed(&self, now: Instant, key: NameKey, source: Option<Source>) -> ProtocolError {
        let retry = self.lockout().failure(now, key, source);
        ProtocolError::BadCredentials { retry }
    }

    /// Creates an account.
    pub(crate) fn register(&mut self, user: Name, password: &str) -> Result<(), ProtocolError> {
        let taken = || ProtocolError::NameTaken { user };
        // Cheap check first: a taken name costs no hash.
        match self.store.account(&user) {
            Ok(Some(_)) => return Err(taken()),
            Ok(None) => {}
            Err(e) => return Err(storage_failed("looking up an account", &e)),
        }
        let hash = self
            .params
            .hash_in(&mut self.memory, password)
            .map_err(|e| {
                error!("cannot hash a password: {e}");
                ProtocolError::Storage(e.to_string())
            })?;
        match self.store.create_account(&user, &hash) {
            Ok(true) => Ok(()),
            Ok(false) => Err(taken()),
            Err(e) => Err(storage_failed("creating an account", &e)),
        }
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

    fn lockout(&self) -> std::sync::MutexGuard<'_, Lockout> {
        // The lockout maps stay consistent across a panic: each update is one insert.
        self.lockout.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The refusal for a storage failure, logged at error level.
pub(crate) fn storage_failed(doing: &str, e: &StoreError) -> ProtocolError {
    error!("storage failed while {doing}: {e}");
    ProtocolError::Storage(e.to_string())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use confab_engine::frame::ErrorCode;
    use confab_engine::testing::MemoryStore;

    use super::*;
    use crate::lockout::Policy;

    /// Cheap parameters: the tests check logic, not cost.
    const FAST: HashParams = HashParams {
        memory_kib: 64,
        passes: 1,
        lanes: 1,
    };

    fn name(s: &str) -> Name {
        Name::new(s).expect("test names are valid")
    }

    fn authenticator(params: HashParams, policy: Policy) -> (Authenticator, MemoryStore) {
        let store = MemoryStore::default();
        let a = Authenticator::new(
            Box::new(store.clone()),
            params,
            Arc::new(Mutex::new(Lockout::new(policy))),
            params.hash("dummy").expect("hashes").into(),
        );
        (a, store)
    }

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = FAST.hash("secret").expect("hashes");
        assert!(h.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{h}");
        assert_eq!(
            FAST.verify(&h, "secret"),
            Ok(Verified::Match { upgrade: false })
        );
        assert_eq!(FAST.verify(&h, "Secret"), Ok(Verified::Mismatch));
        assert!(matches!(
            FAST.verify("plain", "x"),
            Err(HashError::Unreadable(_))
        ));
    }

    #[test]
    fn a_hash_in_our_memory_is_the_argon2_crates_phc_string() {
        use argon2::password_hash::PasswordHasher;
        let salt = [7u8; 16];
        let ours = FAST
            .hash_with_salt(&mut HashMemory::new(), "secret", &salt)
            .expect("hashes");
        let theirs = FAST
            .hasher()
            .expect("valid")
            .hash_password_with_salt(b"secret", &salt)
            .expect("hashes")
            .to_string();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn a_weaker_hash_asks_for_an_upgrade() {
        let h = FAST.hash("secret").expect("hashes");
        let stronger = HashParams {
            memory_kib: 128,
            ..FAST
        };
        assert_eq!(
            stronger.verify(&h, "secret"),
            Ok(Verified::Match { upgrade: true })
        );
    }

    #[test]
    fn register_then_login_returns_the_registered_spelling() {
        let (mut a, _) = authenticator(FAST, Policy::default());
        assert_eq!(a.register(name("Alice"), "pw"), Ok(()));
        let taken = a.register(name("alice"), "pw2").unwrap_err();
        assert_eq!(taken.code(), ErrorCode::NameTaken);
        assert_eq!(taken.to_string(), "the name alice is taken");
        assert_eq!(
            a.login(Instant::now(), name("ALICE"), "pw", None),
            Ok(name("Alice"))
        );
    }

    #[test]
    fn repeated_failures_lock_out_without_hashing() {
        let (mut a, _) = authenticator(
            FAST,
            Policy {
                after: 2,
                ..Policy::default()
            },
        );
        a.register(name("bob"), "right").expect("registers");
        let t = Instant::now();
        let peer = Some("192.0.2.1:5000".parse().expect("valid"));
        assert_eq!(
            a.login(t, name("bob"), "wrong", peer).unwrap_err().code(),
            ErrorCode::BadCredentials
        );
        let r = a.login(t, name("bob"), "wrong", peer).unwrap_err();
        assert_eq!(
            (r.code(), r.retry_after_ms()),
            (ErrorCode::BadCredentials, 300_000)
        );
        // Even the right password is refused while locked, with the time left.
        let r = a
            .login(t + Duration::from_secs(1), name("bob"), "right", peer)
            .unwrap_err();
        assert_eq!(
            (r.code(), r.retry_after_ms()),
            (ErrorCode::LockedOut, 299_000)
        );
        let later = t + Duration::from_secs(300);
        assert_eq!(a.login(later, name("bob"), "right", None), Ok(name("bob")));
    }

    #[test]
    fn an_unknown_account_is_wrong_credentials() {
        let (mut a, _) = authenticator(FAST, Policy::default());
        let r = a
            .login(Instant::now(), name("nobody"), "pw", None)
            .unwrap_err();
        assert_eq!(r.code(), ErrorCode::BadCredentials);
    }

    #[test]
    fn a_login_upgrades_a_weak_stored_hash() {
        let (mut a, mut store) = authenticator(FAST, Policy::default());
        a.register(name("carol"), "pw").expect("registers");
        a.params = HashParams {
            memory_kib: 128,
            ..FAST
        };
        assert_eq!(
            a.login(Instant::now(), name("carol"), "pw", None),
            Ok(name("carol"))
        );
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
}
