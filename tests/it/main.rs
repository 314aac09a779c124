//! End-to-end tests: the real `confab-server` and `confab` binaries over
//! real sockets (build them first: `cargo build --workspace --bins`).
//!
//! One binary, one module per area. Every test starts its own server on
//! 127.0.0.1:0 with its own temp data dir; every wait is bounded; nothing
//! sleeps to let something happen (see `harness`).

mod device;
mod harness;
mod nodes;
mod raw;

mod abuse;
mod accounts;
mod bad_input;
mod cli;
mod cluster;
mod cluster_crash;
mod cluster_moderation;
mod cluster_sanctions;
mod crash;
mod deletion;
mod devices;
mod direct;
mod durability;
mod group_roles;
mod groups;
mod hashing;
mod irc;
mod irc_transports;
mod limits;
mod lua_interop;
mod metrics;
mod moderation;
mod reload;
mod resume;
mod room;
mod shutdown;
mod tls;
mod tui;
mod web;
