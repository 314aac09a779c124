//! Password hashing: argon2id with parameters of our own choosing.
//!
//! Hashing a password costs tens of milliseconds and megabytes on purpose,
//! so it never runs on an I/O thread: the password pool
//! (`workers/auth.rs`) runs it. Hashes are PHC strings carrying their
//! parameters; a login that verifies against weaker parameters than the
//! current ones re-hashes the password.

use argon2::password_hash::phc::{Output, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::hash_memory::HashMemory;

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters: the tests check logic, not cost.
    const FAST: HashParams = HashParams {
        memory_kib: 64,
        passes: 1,
        lanes: 1,
    };

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
}
