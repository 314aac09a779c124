//! What the bench reads about the server process from /proc (Linux only;
//! elsewhere the figures are simply missing), and the file limit.

use std::fs;

/// CPU time of a process (all its threads), in seconds: utime + stime from
/// `/proc/PID/stat` (clock-tick resolution, usually 10 ms).
pub(crate) fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields
    // are counted from the last ')'. utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // SAFETY: sysconf only reads a constant of the system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks = if ticks > 0 { ticks as f64 } else { 100.0 };
    Some((utime + stime) as f64 / ticks)
}

/// CPU time of a process in seconds with nanosecond resolution: the sum of
/// each thread's `/proc/PID/task/TID/schedstat` run time. Threads that
/// exited are not counted, so this is only good over a phase where the
/// server's threads are stable (they are: its pools live as long as it).
pub(crate) fn cpu_seconds_precise(pid: u32) -> Option<f64> {
    let mut total: u64 = 0;
    for entry in fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = entry.ok()?.path().join("schedstat");
        let s = fs::read_to_string(path).ok()?;
        total += s.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total as f64 / 1e9)
}

/// A `kB` field of `/proc/PID/status`, in bytes.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Resident memory now, in bytes (VmRSS).
pub(crate) fn rss_bytes(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// Peak resident memory since the process started, in bytes (VmHWM).
pub(crate) fn peak_rss_bytes(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

/// Raises this process's open-file limit to its hard limit (children
/// inherit it); returns the soft limit now in force.
pub(crate) fn raise_nofile() -> libc::rlim_t {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                lim = want;
            }
        }
    }
    lim.rlim_cur
}

/// Busy and total CPU time of the whole machine so far, in seconds (from
/// the `cpu` line of /proc/stat; idle and iowait count as not busy).
pub(crate) fn machine_cpu() -> Option<(f64, f64)> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    // SAFETY: sysconf only reads a constant of the system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks = if ticks > 0 { ticks as f64 } else { 100.0 };
    Some(((total - idle) as f64 / ticks, total as f64 / ticks))
}

/// Snapshot of the server's counters at the start of a measured phase.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CpuMark {
    pid: u32,
    ticks: Option<f64>,
    precise: Option<f64>,
}

impl CpuMark {
    pub(crate) fn now(pid: u32) -> CpuMark {
        CpuMark {
            pid,
            ticks: cpu_seconds(pid),
            precise: cpu_seconds_precise(pid),
        }
    }

    /// CPU seconds since the mark: (from /proc/PID/stat, from schedstat).
    pub(crate) fn since(&self) -> (Option<f64>, Option<f64>) {
        let end = CpuMark::now(self.pid);
        (
            end.ticks.zip(self.ticks).map(|(b, a)| b - a),
            end.precise.zip(self.precise).map(|(b, a)| b - a),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(cpu_seconds(pid).is_some());
            assert!(rss_bytes(pid).is_some_and(|b| b > 0));
            assert!(peak_rss_bytes(pid).is_some_and(|b| b > 0));
        }
    }
}
