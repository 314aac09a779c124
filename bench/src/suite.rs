//! `confab-bench suite`: for every scenario and run, a fresh
//! `confab-server --listen 127.0.0.1:0 --data-dir <temp dir>` with the limits
//! that scenario needs; its `listening on ADDR` log line gives the port; the
//! scenario runs against it; the server is killed (a Drop guard, and
//! `PR_SET_PDEATHSIG` should the bench itself die). Each scenario runs
//! `--runs` times and the median of every figure is reported.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::Duration;

use clap::{Args, Parser};
use serde_json::{json, Value};

use crate::conn::{err, Error, Result};
use crate::peers::Peer;
use crate::table::{scenarios, strings, Scenario, BASE, CHEAP_HASHING};
use crate::Cli;

#[derive(Debug, Clone, Args)]
pub(crate) struct SuiteArgs {
    /// The confab-server binary.
    #[arg(long, default_value = "target/release/confab-server")]
    pub(crate) server: PathBuf,
    /// Runs per scenario; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub(crate) runs: usize,
    /// Scenarios to run, comma-separated [default: all]: fanout-a, fanout-b,
    /// latency, paced-a, conns, conns-1thread, storage, abuse, abuse-baseline, storm,
    /// pre-auth-flood, unknown-frame-flood, registration-spam, logins.
    #[arg(long, value_delimiter = ',')]
    pub(crate) only: Vec<String>,
    /// Load-generator threads.
    #[arg(long, default_value_t = 2)]
    pub(crate) threads: usize,
    /// Clients of the conns scenarios.
    #[arg(long, default_value_t = 19_000)]
    pub(crate) conns: u32,
    /// Before each run, wait up to this many seconds for the machine to be
    /// quiet (at least 90% idle over one second); 0: do not wait.
    #[arg(long, default_value_t = 60)]
    pub(crate) quiet_wait: u64,
    /// A run during which other processes used more than this share of the
    /// machine's CPU is done again (at most --retries times).
    #[arg(long, default_value_t = 0.05)]
    pub(crate) max_noise: f64,
    /// How often a noisy run is done again.
    #[arg(long, default_value_t = 2)]
    pub(crate) retries: usize,
    /// Only print the commands each scenario would run.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Serve and connect over TLS: the server gets --tls-self-signed, the
    /// bench --tls-ca with that certificate.
    #[arg(long)]
    pub(crate) tls: bool,
    /// Connect over the WebSocket (issue 18): the server gets --web-listen
    /// 127.0.0.1:0, the bench --transport ws and that port (wss with --tls).
    #[arg(long)]
    pub(crate) ws: bool,
    /// Who serves: confab-server, or one of issue 17's peers (the minimal
    /// relay, ngIRCd, InspIRCd), for the fan-out scenarios only.
    #[arg(long, value_enum, default_value_t = Peer::Confab)]
    pub(crate) peer: Peer,
}

/// The scenarios a peer other than confab runs: the fan-out ones (the
/// others need confab's storage, limits or logins).
const PEER_SCENARIOS: &[&str] = &["fanout-a", "fanout-b", "latency", "paced-a"];

/// Waits (at most `limit`) until the machine is at least 90% idle over one
/// second; returns the last idle fraction seen.
fn wait_quiet(limit: Duration) -> Option<f64> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let (b0, t0) = crate::procfs::machine_cpu()?;
        thread::sleep(Duration::from_secs(1));
        let (b1, t1) = crate::procfs::machine_cpu()?;
        let idle = 1.0 - (b1 - b0) / (t1 - t0).max(1e-9);
        if idle >= 0.9 || std::time::Instant::now() >= deadline {
            return Some(idle);
        }
    }
}

/// The 1-minute load average, to tell how quiet the machine was.
fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Runs the suite; returns the median of each scenario.
pub(crate) fn run(a: &SuiteArgs) -> Result<Vec<Value>> {
    let nofile = crate::procfs::raise_nofile();
    if !a.dry_run && matches!(a.peer, Peer::Confab | Peer::ConfabIrc) && !a.server.is_file() {
        return err(format!(
            "{} is missing: build it with `cargo build --release -p confab-net`",
            a.server.display()
        ));
    }
    let all = scenarios(a);
    for o in &a.only {
        if !all.iter().any(|s| s.name == o) {
            return err(format!("no scenario {o}"));
        }
    }
    if a.peer != Peer::Confab && (a.tls || a.ws) {
        return err("--tls and --ws are for confab-server only, not --peer");
    }
    let chosen: Vec<&Scenario> = all
        .iter()
        .filter(|s| a.only.is_empty() || a.only.iter().any(|o| o == s.name))
        .filter(|s| {
            let runs = a.peer == Peer::Confab || PEER_SCENARIOS.contains(&s.name);
            if !runs {
                eprintln!(
                    "suite: skipping {} for --peer {}: only {} run against peers",
                    s.name,
                    a.peer.name(),
                    PEER_SCENARIOS.join(", ")
                );
            }
            runs
        })
        .collect();
    eprintln!(
        "suite: {} scenarios x {} runs; open-file limit {nofile}; {} cores",
        chosen.len(),
        a.runs,
        thread::available_parallelism().map_or(1, |n| n.get())
    );
    let mut medians = Vec::new();
    let mut table = Vec::new();
    for s in chosen {
        let bench_args: Vec<String> = match a.peer.protocol() {
            crate::Protocol::Irc => s
                .bench
                .iter()
                .cloned()
                .chain(["--protocol".into(), "irc".into()])
                .collect(),
            crate::Protocol::Confab => s.bench.clone(),
        };
        let server_args = strings(&[BASE])
            .into_iter()
            .chain(
                s.cheap_hashing
                    .then(|| strings(&[CHEAP_HASHING]))
                    .into_iter()
                    .flatten(),
            )
            .chain(s.server.clone())
            .chain(a.tls.then(|| "--tls-self-signed".to_owned()))
            .chain(
                a.ws.then(|| strings(&[&["--web-listen", "127.0.0.1:0"]]))
                    .into_iter()
                    .flatten(),
            )
            .collect::<Vec<_>>();
        eprintln!(
            "\n== {}\n   server: {}\n   bench:  confab-bench {}{} --port PORT --server-pid PID --threads {}",
            s.name,
            match a.peer {
                Peer::Confab => format!(
                    "{} --listen 127.0.0.1:0 --data-dir $(mktemp -d) {}",
                    a.server.display(),
                    server_args.join(" ")
                ),
                Peer::ConfabIrc => format!(
                    "{} --listen 127.0.0.1:0 --data-dir $(mktemp -d) {} --irc-listen 127.0.0.1:0 --irc-guests --irc-quiet-room",
                    a.server.display(),
                    server_args.join(" ")
                ),
                Peer::Relay => "confab-bench relay --listen 127.0.0.1:0".to_owned(),
                peer => format!("{} on 127.0.0.1:<free port>, generated config (peers.rs)", peer.name()),
            },
            bench_args.join(" ")
                + if s.paired {
                    ", interleaved with the same plus --off"
                } else {
                    ""
                },
            if a.tls {
                " --tls-ca DATA_DIR/tls-cert.pem"
            } else {
                ""
            },
            a.threads
        );
        if a.dry_run {
            continue;
        }
        let off_bench: Vec<String> = s.bench.iter().cloned().chain(["--off".into()]).collect();
        let (mut runs, mut offs) = (Vec::new(), Vec::new());
        for i in 0..a.runs.max(1) {
            runs.push(run_retried(a, s.name, &bench_args, &server_args, i)?);
            if s.paired {
                offs.push(run_retried(a, s.name, &off_bench, &server_args, i)?);
            }
        }
        let ok = |runs: &[Value]| -> Vec<Value> {
            runs.iter()
                .filter(|r| r.get("error").is_none())
                .cloned()
                .collect()
        };
        let median = median_json(&ok(&runs));
        let mut line = json!({
            "suite": s.name,
            "peer": a.peer.name(),
            "tls": a.tls,
            "ws": a.ws,
            "runs": runs.len(),
            "ok_runs": ok(&runs).len(),
            // confab-server's options; a peer's command is in its config.
            "server_args": if matches!(a.peer, Peer::Confab | Peer::ConfabIrc) { server_args.clone() } else { Vec::new() },
            "bench_args": bench_args,
            "median": median,
        });
        let median_off = s.paired.then(|| median_json(&ok(&offs)));
        if let (Some(off), Value::Object(o)) = (&median_off, &mut line) {
            o.insert("ok_runs_off".into(), json!(ok(&offs).len()));
            o.insert("median_off".into(), off.clone());
            o.insert("ratios".into(), ratios(&median, off));
        }
        println!("{line}");
        table.push((s.name, s.show, median, median_off));
        medians.push(line);
    }
    if !a.dry_run {
        eprintln!("\n== medians of {} runs", a.runs);
        for (name, show, median, off) in &table {
            eprintln!(
                "{name}:{}",
                if off.is_some() {
                    format!("\n  {:<44} {:<12} without the attack", "", "attack")
                } else {
                    String::new()
                }
            );
            for key in show.iter().chain(&["others_cpu_s"]) {
                let on = lookup(median, key).unwrap_or(&Value::Null);
                match off {
                    Some(off) => eprintln!(
                        "  {key:<44} {:<12} {}",
                        on.to_string(),
                        lookup(off, key).unwrap_or(&Value::Null)
                    ),
                    None => eprintln!("  {key:<44} {on}"),
                }
            }
            if let Some(off) = off {
                eprintln!(
                    "  {:<44} {}",
                    "ratios (attack / without)",
                    ratios(median, off)
                );
            }
        }
    }
    Ok(medians)
}

/// The figures issue 15's bar compares, attack run over comparison run:
/// the well-behaved clients' delivery p99 (bar: 3x) and, where there is a
/// probe, its login p99.
fn ratios(on: &Value, off: &Value) -> Value {
    let ratio = |key: &str| {
        let (a, b) = (lookup(on, key)?.as_f64()?, lookup(off, key)?.as_f64()?);
        (b > 0.0).then(|| (a / b * 100.0).round() / 100.0)
    };
    json!({
        "latency_p99": ratio("latency.p99_us"),
        "probe_login_p99": ratio("probe.login_p99_ms"),
        "peak_rss": ratio("server_peak_rss_mib"),
    })
}

/// Run `i` of a scenario, done again (up to `--retries`) while too noisy.
fn run_retried(
    a: &SuiteArgs,
    name: &str,
    bench: &[String],
    server_args: &[String],
    i: usize,
) -> Result<Value> {
    let mut attempt = 0;
    loop {
        let (v, noise) = run_once(a, name, bench, server_args, i)?;
        let noisy = noise.is_some_and(|n| n > a.max_noise);
        if noisy && attempt < a.retries {
            eprintln!(
                "   too noisy (others used {:.0}% of the machine): run again",
                noise.unwrap_or(0.0) * 100.0
            );
            attempt += 1;
            continue;
        }
        return Ok(v);
    }
}

/// One run of scenario `s` against a fresh server; returns the result (or
/// an `error` object) and the share of the machine other processes used.
fn run_once(
    a: &SuiteArgs,
    name: &str,
    bench: &[String],
    server_args: &[String],
    i: usize,
) -> Result<(Value, Option<f64>)> {
    let idle = if a.quiet_wait > 0 {
        wait_quiet(Duration::from_secs(a.quiet_wait))
    } else {
        None
    };
    let load = loadavg();
    let machine0 = crate::procfs::machine_cpu();
    let me = std::process::id();
    let own0 = crate::procfs::cpu_seconds(me);
    let mut server = a.peer.start(&a.server, server_args)?;
    let mut argv = vec!["confab-bench".to_string()];
    argv.extend(bench.iter().cloned());
    if a.tls {
        let ca = server.dir.path().join("tls-cert.pem");
        argv.extend(["--tls-ca".into(), ca.to_string_lossy().into_owned()]);
    }
    let port = if a.ws {
        argv.extend(["--transport".into(), "ws".into()]);
        server.web_addr(Duration::from_secs(15))?.port()
    } else {
        server.addr.port()
    };
    argv.extend([
        "--port".into(),
        port.to_string(),
        "--server-pid".into(),
        server.pid.to_string(),
        "--threads".into(),
        a.threads.to_string(),
    ]);
    let counters = matches!(a.peer, Peer::Confab | Peer::ConfabIrc)
        && bench.first().is_some_and(|c| c == "fanout");
    if counters {
        argv.push("--server-counters".into());
    }
    let cli = Cli::try_parse_from(&argv).map_err(|e| Error(e.to_string()))?;
    eprintln!(
        "-- {} run {}/{} (load average {}{})",
        name,
        i + 1,
        a.runs,
        load.map_or("?".into(), |l| format!("{l:.2}")),
        idle.map_or(String::new(), |f| format!(", {:.0}% idle", f * 100.0))
    );
    let result = crate::scenario(cli.command);
    // CPU used by everything else on the machine during the run: how
    // quiet it was.
    let server_cpu = crate::procfs::cpu_seconds(server.pid);
    let others = match (machine0, crate::procfs::machine_cpu(), own0, server_cpu) {
        (Some((b0, t0)), Some((b1, t1)), Some(o0), Some(sv)) => {
            let own = crate::procfs::cpu_seconds(me).unwrap_or(o0) - o0;
            Some((((b1 - b0) - own - sv).max(0.0), t1 - t0))
        }
        _ => None,
    };
    if let Some((o, avail)) = others {
        eprintln!("   other processes used {o:.2} of {avail:.1} CPU-s during the run");
    }
    let alive = server.alive();
    let counter_lines = if counters {
        server.counters_lines(2, Duration::from_secs(2))
    } else {
        Vec::new()
    };
    let tail = server.log_tail();
    let log_lines = server.log_lines.load(Ordering::Relaxed);
    drop(server);
    let noise = others.map(|(o, avail)| o / avail.max(1e-9));
    let v = match result {
        Ok(mut v) => {
            if let Value::Object(o) = &mut v {
                o.insert("peer".into(), json!(a.peer.name()));
                o.insert("loadavg_1m_before".into(), json!(load));
                o.insert("idle_before".into(), json!(idle));
                // Summed over all cores: of `run_cpu_s_available`.
                o.insert("others_cpu_s".into(), json!(others.map(|o| o.0)));
                o.insert("run_cpu_s_available".into(), json!(others.map(|o| o.1)));
                o.insert("server_survived".into(), json!(alive));
                o.insert("server_log_lines".into(), json!(log_lines));
                let delivered = o.get("delivered").and_then(Value::as_u64).unwrap_or(0);
                if let [.., start, end] = &counter_lines[..] {
                    if let Some(Value::Object(per)) =
                        crate::counts::counters_per_delivery(start, end, delivered)
                    {
                        o.extend(per);
                    }
                }
            }
            if !alive {
                eprintln!("   the server died; its log:\n{tail}");
            }
            println!("{v}");
            v
        }
        Err(e) => {
            eprintln!("   run failed: {e}\n   server log tail:\n{tail}");
            json!({ "scenario": name, "peer": a.peer.name(), "error": e.to_string() })
        }
    };
    Ok((v, noise))
}

/// `a.b.0.c` in a JSON value.
fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| match v {
        Value::Array(a) => a.get(k.parse::<usize>().ok()?),
        _ => v.get(k),
    })
}

/// The element-wise median of several runs' results: numbers become their
/// median, objects and arrays recurse, anything else is the first run's.
pub(crate) fn median_json(runs: &[Value]) -> Value {
    let Some(first) = runs.first() else {
        return Value::Null;
    };
    match first {
        Value::Number(_) => {
            // Integers stay integers (the middle run's value for an odd count).
            let mut ints: Vec<i64> = runs.iter().filter_map(Value::as_i64).collect();
            let mid = runs.len() / 2;
            if ints.len() == runs.len() && runs.len() != mid * 2 {
                ints.sort_unstable();
                return json!(ints[mid]);
            }
            let mut xs: Vec<f64> = runs.iter().filter_map(Value::as_f64).collect();
            if xs.is_empty() {
                return first.clone();
            }
            xs.sort_by(f64::total_cmp);
            let mid = xs.len() / 2;
            if xs.len() == mid * 2 {
                json!((xs[mid - 1] + xs[mid]) / 2.0)
            } else {
                json!(xs[mid])
            }
        }
        Value::Object(o) => Value::Object(
            o.keys()
                .map(|k| {
                    let col: Vec<Value> = runs.iter().filter_map(|r| r.get(k).cloned()).collect();
                    (k.clone(), median_json(&col))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            (0..a.len())
                .map(|i| {
                    let col: Vec<Value> = runs.iter().filter_map(|r| r.get(i).cloned()).collect();
                    median_json(&col)
                })
                .collect(),
        ),
        _ => first.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_recurse() {
        let runs = [
            json!({"a": 1, "b": {"c": [5, "x"]}, "d": "keep"}),
            json!({"a": 3, "b": {"c": [1, "y"]}, "d": "other"}),
            json!({"a": 2, "b": {"c": [9, "z"]}, "d": null}),
        ];
        let m = median_json(&runs);
        assert_eq!(m, json!({"a": 2, "b": {"c": [5, "x"]}, "d": "keep"}));
        assert_eq!(lookup(&m, "b.c.0"), Some(&json!(5)));
        assert_eq!(median_json(&[json!(1), json!(2.5)]), json!(1.75));
    }

    #[test]
    fn ratios_compare_the_attack_run_with_the_one_without() {
        let on = json!({"latency": {"p99_us": 30.0}, "probe": {"login_p99_ms": 5.0}});
        let off = json!({"latency": {"p99_us": 10.0}, "probe": null});
        let r = ratios(&on, &off);
        assert_eq!(r["latency_p99"], json!(3.0));
        assert_eq!(
            r["probe_login_p99"],
            Value::Null,
            "no probe without the attack"
        );
        assert_eq!(r["peak_rss"], Value::Null);
    }

    fn dry_run_args() -> SuiteArgs {
        SuiteArgs {
            server: PathBuf::from("x"),
            runs: 1,
            only: Vec::new(),
            threads: 2,
            conns: 100,
            quiet_wait: 0,
            max_noise: 0.05,
            retries: 0,
            dry_run: true,
            tls: false,
            ws: false,
            peer: Peer::Confab,
        }
    }

    #[test]
    fn every_scenario_parses() {
        let a = dry_run_args();
        for s in scenarios(&a) {
            let mut argv = vec!["confab-bench".to_string()];
            argv.extend(s.bench.iter().cloned());
            argv.extend(["--port".into(), "1".into()]);
            Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{}: {e}", s.name));
            if s.paired {
                argv.push("--off".into());
                Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{} --off: {e}", s.name));
            }
        }
    }

    #[test]
    fn paced_a_offers_600_000_deliveries_a_second() {
        let a = dry_run_args();
        let paced = scenarios(&a)
            .into_iter()
            .find(|s| s.name == "paced-a")
            .expect("paced-a is a scenario");
        let mut argv = vec!["confab-bench".to_string()];
        argv.extend(paced.bench.iter().cloned());
        argv.extend(["--port".into(), "1".into()]);
        let cli = Cli::try_parse_from(&argv).expect("parses");
        let crate::Command::Fanout(f) = cli.command else {
            panic!("paced-a is a fan-out");
        };
        // `--rate` is messages per second in all; each reaches every
        // client but its sender.
        let rate = f.rate.expect("paced");
        let per_s = rate * f64::from(f.clients - 1);
        assert!((per_s - 600_000.0).abs() / 600_000.0 < 0.001, "{per_s}");
    }
}
