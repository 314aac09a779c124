//! End-to-end tests of confab live in `it/` (one integration test binary,
//! `cargo test -p confab-e2e`). They start the real `confab-server` and run
//! the real `confab` client, so build those first:
//!
//! ```text
//! cargo build --workspace --bins
//! cargo test -p confab-e2e
//! ```
//!
//! This library is empty on purpose: the harness is `it/harness.rs`.
