//! How many messages per second `SqliteStore::commit` sustains, by batch size
//! and sync mode, on this machine's disk. Not a test: it only prints.
//!
//! ```text
//! cargo run --release -p confab-net --example store_speed [DIR] [SECONDS]
//! ```
//!
//! DIR (default: the system temp dir) is where the scratch databases go, so
//! it can be measured on the disk the server's data dir will be on.

use std::time::{Duration, Instant};

use confab_engine::effect::NewMessage;
use confab_engine::{Name, Target};
use confab_net::store::sqlite::{SqliteOptions, SqliteStore, Sync};
use confab_net::store::{Store, Write};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let base = args.next().map_or_else(std::env::temp_dir, Into::into);
    let secs: f64 = args.next().map_or(Ok(2.0), |s| s.parse())?;
    let budget = Duration::from_secs_f64(secs);
    let alice = Name::new("alice")?;
    let bob = Name::new("bob")?;
    let body = "x".repeat(100);
    println!(
        "{:<7}{:>7}{:>12}{:>12}",
        "sync", "batch", "msgs/s", "commits/s"
    );
    for sync in [Sync::Full, Sync::Normal] {
        for batch in [1usize, 10, 100, 1000] {
            let dir = tempfile::TempDir::new_in(&base)?;
            let options = SqliteOptions {
                sync,
                busy_timeout: Duration::from_secs(5),
            };
            let mut store = SqliteStore::open(dir.path(), &options)?;
            store.create_account(&alice, "h")?;
            store.create_account(&bob, "h")?;
            // Four room messages to one direct message.
            let writes: Vec<Write> = (0..batch)
                .map(|i| {
                    Write::Message(NewMessage {
                        sender: alice,
                        target: if i % 5 == 4 {
                            Target::User(bob)
                        } else {
                            Target::Room
                        },
                        body: body.clone(),
                    })
                })
                .collect();
            let start = Instant::now();
            let mut commits = 0u64;
            while start.elapsed() < budget {
                store.commit(&writes, 1)?;
                commits += 1;
            }
            let elapsed = start.elapsed().as_secs_f64();
            println!(
                "{:<7}{:>7}{:>12.0}{:>12.0}",
                format!("{sync:?}"),
                batch,
                (commits * batch as u64) as f64 / elapsed,
                commits as f64 / elapsed
            );
        }
    }
    Ok(())
}
