//! A small logger for the `log` facade: one line per record,
//! `2026-05-01T12:34:56.789Z INFO  confab_net::server: listening on ...`,
//! written whole and flushed, to stderr or a file.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use log::{LevelFilter, Log, Metadata, Record};

enum Sink {
    Stderr,
    File(File),
}

struct Logger {
    level: std::sync::atomic::AtomicUsize,
    sink: Mutex<Sink>,
}

/// The installed logger, for [`reconfigure`].
static INSTALLED: std::sync::OnceLock<&'static Logger> = std::sync::OnceLock::new();

fn open(file: Option<&Path>) -> io::Result<Sink> {
    Ok(match file {
        Some(path) => Sink::File(OpenOptions::new().create(true).append(true).open(path)?),
        None => Sink::Stderr,
    })
}

/// A reload: the new level, and the log file opened anew (after
/// logrotate moved it away) or stderr. Nothing changes if the file
/// cannot be opened.
pub fn reconfigure(level: LevelFilter, file: Option<&Path>) -> io::Result<()> {
    let sink = open(file)?;
    if let Some(logger) = INSTALLED.get() {
        *logger.sink.lock().unwrap_or_else(PoisonError::into_inner) = sink;
        logger
            .level
            .store(level as usize, std::sync::atomic::Ordering::Relaxed);
        log::set_max_level(level);
    }
    Ok(())
}

/// Installs the logger at `level`, writing to `file` (appending) or stderr.
/// A second call does nothing, so tests can start several servers.
pub fn init(level: LevelFilter, file: Option<&Path>) -> io::Result<()> {
    let sink = open(file)?;
    let logger: &'static Logger = Box::leak(Box::new(Logger {
        level: std::sync::atomic::AtomicUsize::new(level as usize),
        sink: Mutex::new(sink),
    }));
    if log::set_logger(logger).is_ok() {
        let _ = INSTALLED.set(logger);
        log::set_max_level(level);
    }
    Ok(())
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        (metadata.level() as usize) <= self.level.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!(
            "{} {:<5} {}: {}\n",
            rfc3339(SystemTime::now()),
            record.level(),
            record.target(),
            record.args()
        );
        // A poisoned sink only means another thread panicked mid-write.
        let mut sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
        // Logging has nowhere to report its own failure.
        let _ = match &mut *sink {
            Sink::Stderr => {
                let mut e = io::stderr().lock();
                e.write_all(line.as_bytes()).and_then(|()| e.flush())
            }
            Sink::File(f) => f.write_all(line.as_bytes()).and_then(|()| f.flush()),
        };
    }

    fn flush(&self) {
        let mut sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = match &mut *sink {
            Sink::Stderr => io::stderr().flush(),
            Sink::File(f) => f.flush(),
        };
    }
}

/// `t` as RFC 3339 in UTC with milliseconds, e.g. `2026-05-01T12:34:56.789Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[track_caller]
    fn check(unix_ms: u64, expected: &str) {
        let t = UNIX_EPOCH + Duration::from_millis(unix_ms);
        assert_eq!(rfc3339(t), expected);
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_millis() {
        check(0, "1970-01-01T00:00:00.000Z");
        check(951_782_400_000, "2000-02-29T00:00:00.000Z");
        check(951_868_799_999, "2000-02-29T23:59:59.999Z");
        check(1_709_251_199_123, "2024-02-29T23:59:59.123Z");
        check(4_102_444_800_000, "2100-01-01T00:00:00.000Z");
    }
}
