//! Per-delivery counts over a measured window: the server's read and
//! write syscalls and context switches (from /proc, for any server), and
//! confab-server's own counters (lock holds, writer wake-ups, drains,
//! writes), which it logs when sent SIGUSR2 (`net/src/counters.rs`).
//!
//! Why counts: this machine's speed drifts by up to 40% within minutes,
//! and a count does not; "writes per delivery" says whether a change
//! coalesced anything whatever the CPU figure did.

use std::fs;

use serde_json::{json, Map, Value};

/// What /proc says about a process at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ProcCounts {
    /// Read-like syscalls (`syscr` of /proc/PID/io: read, readv, recv...).
    pub(crate) syscr: u64,
    /// Write-like syscalls (`syscw`: write, writev, send...).
    pub(crate) syscw: u64,
    /// Summed over the threads alive now: switches because a thread
    /// blocked (each is a later wake-up)...
    pub(crate) voluntary_cs: u64,
    /// ...and because it was preempted.
    pub(crate) nonvoluntary_cs: u64,
}

impl ProcCounts {
    /// Reads `pid`'s counts; `None` off Linux or without access.
    pub(crate) fn read(pid: u32) -> Option<ProcCounts> {
        let io = fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
        let (syscr, syscw) = parse_io(&io)?;
        let mut c = ProcCounts {
            syscr,
            syscw,
            ..ProcCounts::default()
        };
        for task in fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
            // A thread that exits between the listing and the read is skipped.
            if let Ok(status) = fs::read_to_string(task.path().join("status")) {
                let (v, n) = parse_switches(&status);
                c.voluntary_cs += v;
                c.nonvoluntary_cs += n;
            }
        }
        Some(c)
    }

    /// `self - earlier`, per delivery, as JSON fields.
    pub(crate) fn per_delivery(&self, earlier: &ProcCounts, deliveries: u64) -> Value {
        let per = |a: u64, b: u64| per_delivery(a.saturating_sub(b), deliveries);
        json!({
            "server_syscr_per_delivery": per(self.syscr, earlier.syscr),
            "server_syscw_per_delivery": per(self.syscw, earlier.syscw),
            "server_voluntary_cs_per_delivery": per(self.voluntary_cs, earlier.voluntary_cs),
            "server_nonvoluntary_cs_per_delivery": per(self.nonvoluntary_cs, earlier.nonvoluntary_cs),
        })
    }
}

fn per_delivery(count: u64, deliveries: u64) -> Value {
    if deliveries == 0 {
        Value::Null
    } else {
        json!(count as f64 / deliveries as f64)
    }
}

/// `syscr` and `syscw` of a /proc/PID/io text.
fn parse_io(text: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
    };
    Some((field("syscr:")?, field("syscw:")?))
}

/// Voluntary and nonvoluntary context switches of a /proc/.../status text
/// (0 for a field that is missing).
fn parse_switches(text: &str) -> (u64, u64) {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (
        field("voluntary_ctxt_switches:"),
        field("nonvoluntary_ctxt_switches:"),
    )
}

/// Asks confab-server for a `counters:` log line (SIGUSR2); a server that
/// does not know the signal is not sent it (only confab's logs the line,
/// and the suite starts the others without that handler: see
/// [`crate::peers`]).
pub(crate) fn ask_for_counters(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill only sends a signal; SIGUSR2 is handled by
    // confab-server (logs its counters) and by nothing else we start.
    unsafe {
        libc::kill(pid, libc::SIGUSR2);
    }
}

/// The `key=value` integers of a `counters:` line.
pub(crate) fn parse_counters(line: &str) -> Option<Map<String, Value>> {
    let rest = &line[line.find("counters:")? + "counters:".len()..];
    let mut map = Map::new();
    for pair in rest.split_whitespace() {
        let (k, v) = pair.split_once('=')?;
        map.insert(k.to_owned(), json!(v.parse::<u64>().ok()?));
    }
    Some(map)
}

/// `<key>_per_delivery` for each counter, from the lines at the start and
/// the end of the window.
pub(crate) fn counters_per_delivery(start: &str, end: &str, deliveries: u64) -> Option<Value> {
    let (a, b) = (parse_counters(start)?, parse_counters(end)?);
    let mut out = Map::new();
    for (k, v) in &b {
        let (Some(v), Some(was)) = (v.as_u64(), a.get(k).and_then(Value::as_u64)) else {
            continue;
        };
        out.insert(
            format!("{k}_per_delivery"),
            per_delivery(v.saturating_sub(was), deliveries),
        );
    }
    Some(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_syscalls_from_an_io_text() {
        let io = "rchar: 10\nwchar: 20\nsyscr: 7\nsyscw: 9\nread_bytes: 0\n";
        assert_eq!(parse_io(io), Some((7, 9)));
        assert_eq!(parse_io("rchar: 10\n"), None);
    }

    #[test]
    fn reads_context_switches_from_a_status_text() {
        let status =
            "Name:\tconfab-server\nvoluntary_ctxt_switches:\t120\nnonvoluntary_ctxt_switches:\t4\n";
        assert_eq!(parse_switches(status), (120, 4));
    }

    #[test]
    fn counts_per_delivery_are_the_deltas_divided() {
        let a = ProcCounts {
            syscr: 10,
            syscw: 100,
            voluntary_cs: 5,
            nonvoluntary_cs: 1,
        };
        let b = ProcCounts {
            syscr: 60,
            syscw: 300,
            voluntary_cs: 25,
            nonvoluntary_cs: 1,
        };
        let v = b.per_delivery(&a, 100);
        assert_eq!(v["server_syscw_per_delivery"], json!(2.0));
        assert_eq!(v["server_syscr_per_delivery"], json!(0.5));
        assert_eq!(v["server_voluntary_cs_per_delivery"], json!(0.2));
        assert_eq!(v["server_nonvoluntary_cs_per_delivery"], json!(0.0));
        assert_eq!(
            b.per_delivery(&a, 0)["server_syscw_per_delivery"],
            Value::Null
        );
    }

    #[test]
    fn the_counters_of_two_log_lines_become_per_delivery_figures() {
        let start = "2026-12-07T10:37:37.401Z INFO  confab_net::server: counters: lock_acquired=100 wakes=10 writes=5";
        let end = "2026-12-07T10:37:39.000Z INFO  confab_net::server: counters: lock_acquired=300 wakes=50 writes=405";
        let v = counters_per_delivery(start, end, 200).expect("both parse");
        assert_eq!(v["lock_acquired_per_delivery"], json!(1.0));
        assert_eq!(v["wakes_per_delivery"], json!(0.2));
        assert_eq!(v["writes_per_delivery"], json!(2.0));
        assert!(counters_per_delivery(start, "no counters here", 200).is_none());
        assert!(parse_counters("counters: wakes=x").is_none());
    }
}
