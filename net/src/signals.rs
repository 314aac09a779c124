//! SIGINT and SIGTERM: the first asks for a graceful shutdown, a second one
//! exits at once with status 130. SIGUSR2 asks for the counters in the log
//! ([`Dumps`]).
//!
//! signal-hook writes a byte to a socket pair from the handler (the
//! self-pipe pattern); the server awaits the other end with async-io. The
//! second signal is handled inside the handler itself: a conditional exit
//! armed by the first, so it works even if shutdown is stuck.

use std::io;
use std::os::unix::net::UnixStream;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use async_io::Async;
use futures_lite::AsyncReadExt;
use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR2};
use signal_hook::flag;
use signal_hook::low_level::pipe;

/// Exit status after a second signal (128 + SIGINT, as shells report ^C).
pub const FORCED_EXIT: i32 = 130;

/// The installed handlers' receiving end.
pub struct Signals {
    read: Async<UnixStream>,
}

impl Signals {
    /// Installs the handlers.
    pub fn install() -> io::Result<Signals> {
        let (read, write) = UnixStream::pair()?;
        let armed = Arc::new(AtomicBool::new(false));
        for signal in [SIGINT, SIGTERM] {
            // Order matters: the exit checks the flag before the first
            // signal sets it.
            flag::register_conditional_shutdown(signal, FORCED_EXIT, armed.clone())?;
            flag::register(signal, armed.clone())?;
            pipe::register(signal, write.try_clone()?)?;
        }
        Ok(Signals {
            read: Async::new(read)?,
        })
    }

    /// Completes at the first signal.
    pub async fn first(&self) {
        let mut byte = [0u8; 1];
        let mut read = &self.read;
        // An error here (never expected) is treated as a signal too.
        let _ = read.read(&mut byte).await;
    }
}

/// SIGHUP, each time it arrives: the server reloads its config file.
pub struct Hangups {
    read: Async<UnixStream>,
}

impl Hangups {
    /// Installs the handler.
    pub fn install() -> io::Result<Hangups> {
        let (read, write) = UnixStream::pair()?;
        pipe::register(signal_hook::consts::SIGHUP, write)?;
        Ok(Hangups {
            read: Async::new(read)?,
        })
    }

    /// Completes at the next SIGHUP; `false` if the pipe failed.
    pub async fn next(&self) -> bool {
        let mut byte = [0u8; 1];
        let mut read = &self.read;
        matches!(read.read(&mut byte).await, Ok(1))
    }
}

/// SIGUSR2, each time it arrives: the server logs its
/// [`Counters`](crate::counters::Counters) line.
pub struct Dumps {
    read: Async<UnixStream>,
}

impl Dumps {
    /// Installs the handler.
    pub fn install() -> io::Result<Dumps> {
        let (read, write) = UnixStream::pair()?;
        pipe::register(SIGUSR2, write)?;
        Ok(Dumps {
            read: Async::new(read)?,
        })
    }

    /// Completes at the next SIGUSR2 (signals that arrive together may
    /// count once); `false` if the pipe failed, never expected.
    pub async fn next(&self) -> bool {
        let mut byte = [0u8; 1];
        let mut read = &self.read;
        matches!(read.read(&mut byte).await, Ok(1))
    }
}
