//! `confab-server`: see `confab-server --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    one_malloc_arena();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match confab_net::config_file::cli(&args) {
        Ok(cli) => cli,
        Err(errors) => {
            for e in errors {
                eprintln!("confab-server: {e}");
            }
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = cli.serve.check() {
        e.exit();
    }
    match confab_net::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("confab-server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// glibc gives each thread that allocates its own arena (up to 8 per
/// core), and a connection's memory is allocated on several threads (the
/// I/O threads, the password hashers that finish a login, the storage
/// writer that routes): each arena keeps its own free lists and holes, so
/// freed memory is reused less. With one arena, 19,000 idle connections
/// cost 1.59 KiB each instead of 1.66 (`bench/run.sh --only conns`), and
/// fan-out A did not get slower (per-thread caches still serve small
/// allocations without the arena lock). Must run before any thread starts.
/// `MALLOC_ARENA_MAX` in the environment still wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn one_malloc_arena() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    // SAFETY: mallopt only changes allocator tuning; called before any
    // other thread exists, as glibc asks of M_ARENA_MAX. Its return value
    // (0 on failure) only tells whether the tuning took.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn one_malloc_arena() {}
