//! Password hashing at the real (default) cost: what it does to the
//! server's memory.

use confab::LoginOptions;
use confab_engine::{MessageId, Name};

use crate::harness::{password, Server, WAIT};

/// Logs `user` in on a fresh connection, then drops it.
fn log_in_once(server: &Server, user: &str) {
    let mut c = server.connect();
    let name = Name::new(user).expect("a valid test name");
    let options = LoginOptions {
        resume_after: MessageId(0),
        roster: false,
    };
    c.login(name, &password(user), options, WAIT)
        .unwrap_or_else(|e| panic!("{user} cannot log in: {e}\n{}", server.log()));
}

/// Argon2id at 19 MiB a hash on two threads may hold 38 MiB while hashing;
/// none of it may stay behind or pile up from login to login.
#[cfg(target_os = "linux")]
#[test]
fn sequential_default_cost_logins_leave_memory_where_it_was() {
    let server = Server::start_with_default_hashing(&["--auth-threads", "2"]);
    server.register("alice", &password("alice"));
    for _ in 0..10 {
        log_in_once(&server, "alice");
    }
    let after_10 = server.rss_kib();
    for _ in 0..40 {
        log_in_once(&server, "alice");
    }
    let after_50 = server.rss_kib();
    println!("RSS after 10 logins: {after_10} KiB, after 50: {after_50} KiB");
    // The pool's whole hashing memory (2 x 19 MiB) is the most that may
    // come and go; the logins themselves keep nothing.
    assert!(
        after_50 <= after_10 + 2 * 19 * 1024,
        "RSS grew from {after_10} KiB to {after_50} KiB over 40 logins"
    );
    assert!(
        after_50 <= 2 * after_10,
        "RSS more than doubled: {after_10} KiB after 10 logins, {after_50} KiB after 50"
    );
}
