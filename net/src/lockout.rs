//! Brute-force protection for logins: the engine's policy
//! (`confab_engine::lockout`), re-exported so that the server's paths
//! (`confab_net::lockout::Policy`) stay.

pub use confab_engine::lockout::{Lockout, Policy};
