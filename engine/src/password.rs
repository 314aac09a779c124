//! Passwords: the protocol's one limit on them, and a type that never prints.
//!
//! REGISTER takes a password of [`Password::MIN_LEN`] to
//! [`Password::MAX_LEN`] bytes (docs/PROTOCOL.md); the server, the client
//! and the bench all check against these constants, not their own numbers.
//! A LOGIN's password is not checked against them: a wrong one is just
//! wrong, and the answer must not tell an attacker anything more.

use std::fmt;

/// A password on its way to the password pool (see the module docs): its
/// `Debug` hides it, so an effect can be logged without leaking it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// The shortest password REGISTER takes.
    pub const MIN_LEN: usize = 1;
    /// The longest password REGISTER takes: all a `short` (REGISTER,
    /// LOGIN) or a `blob` (LOGIN2) carries. It was 128 until 2026-12; a
    /// hundred non-ASCII characters (200 bytes of UTF-8) did not fit.
    pub const MAX_LEN: usize = 255;

    /// A password for a new account, within the limits.
    pub fn new(s: &str) -> Option<Password> {
        (Password::MIN_LEN..=Password::MAX_LEN)
            .contains(&s.len())
            .then(|| Password(s.to_owned()))
    }

    /// A password offered at login, whatever its length.
    pub fn offered(s: &str) -> Password {
        Password(s.to_owned())
    }

    /// The password itself: for the hash function only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}
