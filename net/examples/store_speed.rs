//! How many messages per second `SqliteStore::commit` sustains, by batch size
//! and sync mode, on this machine's disk. Not a test: it only prints.
//!
//! ```text
//! cargo run --release -p confab-net --example store_speed [DIR] [SECONDS] [WORKLOAD[-BATCH]]
//! ```
//!
//! DIR (default: the system temp dir) is where the scratch databases go, so
//! it can be measured on the disk the server's data dir will be on.

use std::time::{Duration, Instant};

use confab_engine::effect::NewMessage;
use confab_engine::{Name, Target};
use confab_net::store::sqlite::{SqliteOptions, SqliteStore, Sync};
use confab_net::store::{CatchUp, Store, Write};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let base = args.next().map_or_else(std::env::temp_dir, Into::into);
    let secs: f64 = args.next().map_or(Ok(2.0), |s| s.parse())?;
    let budget = Duration::from_secs_f64(secs);
    let only = args.next();
    let alice = Name::new("alice")?;
    let bob = Name::new("bob")?;
    let users: Vec<Name> = (0..100)
        .map(|i| Name::new(&format!("user{i}")))
        .collect::<Result<_, _>>()?;
    let body = "x".repeat(100);
    println!(
        "{:<9}{:<7}{:>7}{:>12}{:>12}{:>10}",
        "workload", "sync", "batch", "msgs/s", "commits/s", "% indexing"
    );
    // "mixed": four room messages to one DM, all from alice (one
    // conversation each: index inserts land on the same pages).
    // "dm100": each of 100 users writes to itself, round robin, like
    // `confab-bench storage` (100 conversations: inserts spread out).
    for (workload, sync, batch) in [Sync::Full, Sync::Normal]
        .into_iter()
        .flat_map(|s| [1usize, 10, 100, 1000].map(|b| (s, b)))
        .flat_map(|(s, b)| ["mixed", "dm100"].map(|w| (w, s, b)))
    {
        if only
            .as_deref()
            .is_some_and(|o| o != workload && o != format!("{workload}-{batch}"))
        {
            continue;
        }
        {
            let dir = tempfile::TempDir::new_in(&base)?;
            let options = SqliteOptions {
                sync,
                busy_timeout: Duration::from_secs(5),
            };
            let mut store = SqliteStore::open(dir.path(), &options)?;
            for user in users.iter().chain([&alice, &bob]) {
                store.create_account(user, "h")?;
            }
            let message = |i: usize| match workload {
                "mixed" => NewMessage {
                    sender: alice,
                    target: if i % 5 == 4 {
                        Target::User(bob)
                    } else {
                        Target::Room
                    },
                    body: body.clone(),
                    kind: confab_engine::MessageKind::Message,
                    tags: confab_engine::ClientTags::default(),
                },
                _ => {
                    let user = users[i % users.len()];
                    NewMessage {
                        sender: user,
                        target: Target::User(user),
                        body: body.clone(),
                        kind: confab_engine::MessageKind::Message,
                        tags: confab_engine::ClientTags::default(),
                    }
                }
            };
            let writes: Vec<Write> = (0..batch).map(|i| Write::Message(message(i))).collect();
            let start = Instant::now();
            let mut commits = 0u64;
            let mut indexing = Duration::ZERO;
            while start.elapsed() < budget {
                store.commit(&writes, 1)?;
                let index_start = Instant::now();
                // As the server's writer does between batches when no
                // writes wait (as here: the next batch is not sent yet).
                while store.catch_up(CatchUp::Spare)? > 0 {}
                indexing += index_start.elapsed();
                commits += 1;
            }
            let elapsed = start.elapsed().as_secs_f64();
            println!(
                "{:<9}{:<7}{:>7}{:>12.0}{:>12.0}{:>10.1}",
                workload,
                format!("{sync:?}"),
                batch,
                (commits * batch as u64) as f64 / elapsed,
                commits as f64 / elapsed,
                100.0 * indexing.as_secs_f64() / elapsed,
            );
        }
    }
    Ok(())
}
