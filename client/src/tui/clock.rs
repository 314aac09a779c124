//! Time as the client reads and shows it: the clock read once per batch of
//! messages ([`Now`]), timestamps as local `HH:MM[:SS]`, durations in words.

use std::time::Instant;

/// The clock, read once per batch of messages by the main loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Now {
    /// Monotonic time, for timers.
    pub(crate) mono: Instant,
    /// Wall-clock time in ms since the Unix epoch, for display.
    pub(crate) wall_ms: u64,
}

/// `HH:MM` of a timestamp, local time (`utc_offset_s` ahead of UTC).
pub(crate) fn hh_mm(ts_ms: u64, utc_offset_s: i32) -> String {
    let local = ts_ms as i64 / 1000 + i64::from(utc_offset_s);
    let day_s = local.rem_euclid(86_400);
    format!("{:02}:{:02}", day_s / 3600, day_s % 3600 / 60)
}

/// `HH:MM:SS` of a timestamp, local time (`utc_offset_s` ahead of UTC).
pub(crate) fn hh_mm_ss(ts_ms: u64, utc_offset_s: i32) -> String {
    let local = ts_ms as i64 / 1000 + i64::from(utc_offset_s);
    let day_s = local.rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02}",
        day_s / 3600,
        day_s % 3600 / 60,
        day_s % 60
    )
}

/// `42 s`, `3 min 5 s`, `2 h 1 min`.
pub(crate) fn human_secs(s: u64) -> String {
    match s {
        0..60 => format!("{s} s"),
        60..3600 if s.is_multiple_of(60) => format!("{} min", s / 60),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}
