//! The suite's scenarios: for each, the confab-server options it needs
//! (limits raised for one source address, rate limits off, cheap hashing)
//! and the bench command it runs. A table apart from the code that runs
//! it, so adding a scenario touches only this file.

use crate::suite::SuiteArgs;

/// Server options of every run.
pub(crate) const BASE: &[&str] = &["--log-level", "info"];

/// Cheap password hashing, for every run where logins are not what is
/// measured (all but `registration-spam` and `logins`; see
/// docs/PERFORMANCE.md for `conns`).
pub(crate) const CHEAP_HASHING: &[&str] = &["--hash-memory-kib", "8", "--hash-passes", "1"];

/// The per-address limits lifted, for the runs whose clients all come
/// from 127.0.0.1 and register there (the defaults are meant for a public
/// server): connections, queued password checks, and registrations.
pub(crate) const ONE_SOURCE: &[&str] = &[
    "--max-per-source",
    "10000",
    "--max-pre-auth-per-source",
    "10000",
    "--auth-queue-per-source",
    "256",
    "--register-source-burst",
    "65535",
    "--register-server-burst",
    "65535",
];

/// Registration limits lifted, for runs whose fleets register from one
/// address.
pub(crate) const REGISTRATIONS: &[&str] = &[
    "--register-source-burst",
    "65535",
    "--register-server-burst",
    "65535",
];

/// Rate limits lifted, for throughput runs.
pub(crate) const UNLIMITED: &[&str] = &[
    "--msg-rate",
    "65535",
    "--msg-burst",
    "65535",
    "--byte-rate",
    "4000000000",
    "--byte-burst",
    "4000000000",
];

pub(crate) struct Scenario {
    pub(crate) name: &'static str,
    /// Whether the server gets [`CHEAP_HASHING`].
    pub(crate) cheap_hashing: bool,
    /// Each run is followed by a run of the same scenario with `--off`
    /// (the attack scenarios' comparison); both are reported, and the
    /// ratio of their p99s.
    pub(crate) paired: bool,
    pub(crate) server: Vec<String>,
    pub(crate) bench: Vec<String>,
    /// Figures shown in the summary table.
    pub(crate) show: &'static [&'static str],
}

pub(crate) fn strings(parts: &[&[&str]]) -> Vec<String> {
    parts
        .iter()
        .flat_map(|p| p.iter().map(|s| s.to_string()))
        .collect()
}

pub(crate) fn scenarios(a: &SuiteArgs) -> Vec<Scenario> {
    let conns = a.conns.to_string();
    // Per source, ONE_SOURCE's limits already hold 19,000 clients from
    // 16 addresses; passing them again is an error of the server's CLI.
    let conn_limits: &[&str] = &["--max-clients", "20000"];
    let fan_show: &[&str] = &[
        "delivered",
        "loss",
        "deliveries_per_s",
        "server_cpu_s_per_m_deliveries",
        "server_cpu_s_per_m_deliveries_schedstat",
        "latency.p50_us",
        "latency.p99_us",
        "latency.p999_us",
        "latency.max_us",
        "server_peak_rss_mib",
        "server_syscw_per_delivery",
        "server_syscr_per_delivery",
        "server_voluntary_cs_per_delivery",
        "lock_acquired_per_delivery",
        "wakes_per_delivery",
        "drains_per_delivery",
        "writes_per_delivery",
    ];
    let conns_show: &[&str] = &[
        "connected",
        "failed",
        "connect_s",
        "server_rss_per_conn_kib",
        "server_peak_rss_mib",
        "broadcast_delivered",
        "broadcast_loss",
        "broadcast_all_ms",
    ];
    let abuse_show: &[&str] = &[
        "delivered",
        "loss",
        "latency.p50_us",
        "latency.p99_us",
        "latency.max_us",
        "server_peak_rss_mib",
        "flood_acked",
        "flood_disconnects",
        "slowloris_cycles",
    ];
    let attack_show: &[&str] = &[
        "loss",
        "latency.p50_us",
        "latency.p99_us",
        "latency.max_us",
        "ack_latency.p99_us",
        "probe.success",
        "probe.login_p50_ms",
        "probe.login_p99_ms",
        "server_peak_rss_mib",
        "server_log_lines",
        "attacker.connects",
        "attacker.answers_per_s",
        "attacker.accepted_mib_per_s",
        "attacker.registered_per_min",
        "attacker.rate_limited",
        "attacker.fatal",
    ];
    vec![
        fan_out_a("fanout-a", None, fan_show),
        Scenario {
            cheap_hashing: true,
            paired: false,
            name: "fanout-b",
            server: strings(&[UNLIMITED, ONE_SOURCE]),
            bench: strings(&[&[
                "fanout",
                "--clients",
                "1000",
                "--senders",
                "5",
                "--messages",
                "200",
                "--size",
                "100",
            ]]),
            show: fan_show,
        },
        // 500,000 deliveries/s to 99 receivers each.
        fan_out_a("latency", Some("5051"), fan_show),
        // Issue 17's everyday load: fan-out A paced at 600,000 deliveries/s
        // (6,061 messages/s to 99 receivers each), the figure tracked for
        // CPU and counts per delivery.
        fan_out_a("paced-a", Some("6061"), fan_show),
        Scenario {
            cheap_hashing: true,
            paired: false,
            name: "conns",
            server: strings(&[ONE_SOURCE, conn_limits]),
            bench: strings(&[&[
                "conns",
                "--clients",
                &conns,
                "--sources",
                "16",
                "--broadcast",
            ]]),
            show: conns_show,
        },
        Scenario {
            cheap_hashing: true,
            paired: false,
            name: "conns-1thread",
            server: strings(&[ONE_SOURCE, conn_limits, &["--threads", "1"]]),
            bench: strings(&[&[
                "conns",
                "--clients",
                &conns,
                "--sources",
                "16",
                "--broadcast",
            ]]),
            show: conns_show,
        },
        Scenario {
            cheap_hashing: true,
            paired: false,
            name: "storage",
            server: strings(&[UNLIMITED, ONE_SOURCE]),
            bench: strings(&[&["storage", "--senders", "1,10,100", "--messages", "1000"]]),
            show: &[
                "levels.0.acks_per_s",
                "levels.0.ack_latency.p50_us",
                "levels.0.ack_latency.p99_us",
                "levels.1.acks_per_s",
                "levels.1.ack_latency.p50_us",
                "levels.1.ack_latency.p99_us",
                "levels.2.acks_per_s",
                "levels.2.ack_latency.p50_us",
                "levels.2.ack_latency.p99_us",
            ],
        },
        Scenario {
            cheap_hashing: true,
            paired: false,
            name: "abuse",
            server: strings(&[ONE_SOURCE]),
            bench: strings(&[&[
                "abuse",
                "--clients",
                "20",
                "--flooders",
                "50",
                "--slowloris",
                "200",
            ]]),
            show: abuse_show,
        },
        Scenario {
            cheap_hashing: true,
            paired: false,
            name: "abuse-baseline",
            server: strings(&[ONE_SOURCE]),
            bench: strings(&[&[
                "abuse",
                "--clients",
                "20",
                "--flooders",
                "0",
                "--slowloris",
                "0",
            ]]),
            show: abuse_show,
        },
        // Issue 15's flood classes: each run is paired with the same
        // scenario with `--off` (see `Scenario::paired`).
        Scenario {
            name: "storm",
            cheap_hashing: true,
            paired: true,
            // Full: 20 well-behaved clients + 30 idle users = 50; the
            // attacker and the probe each have an address of their own.
            server: strings(&[
                REGISTRATIONS,
                &["--max-per-source", "20", "--max-clients", "50"],
            ]),
            bench: strings(&[&[
                "attack",
                "storm",
                "--login-concurrency",
                "4",
                "--clients",
                "20",
                "--fillers",
                "30",
                "--leave",
                "5",
            ]]),
            show: attack_show,
        },
        Scenario {
            name: "pre-auth-flood",
            cheap_hashing: true,
            paired: true,
            server: strings(&[REGISTRATIONS, &["--max-per-source", "64"]]),
            bench: strings(&[&[
                "attack",
                "pre-auth",
                "--clients",
                "20",
                "--login-concurrency",
                "4",
            ]]),
            show: attack_show,
        },
        Scenario {
            name: "unknown-frame-flood",
            cheap_hashing: true,
            paired: true,
            server: strings(&[REGISTRATIONS, &["--max-per-source", "64"]]),
            bench: strings(&[&[
                "attack",
                "unknown-frame",
                "--clients",
                "20",
                "--login-concurrency",
                "4",
            ]]),
            show: attack_show,
        },
        Scenario {
            name: "registration-spam",
            // The server's default argon2id: the hashing is the point.
            cheap_hashing: false,
            paired: true,
            // Registrations unlimited: what is measured is how the password
            // pool shares itself out under the spam (the registration
            // limits, which stop it sooner, are the engine's tests').
            server: strings(&[
                REGISTRATIONS,
                &["--registration", "open", "--max-per-source", "64"],
            ]),
            bench: strings(&[&[
                "attack",
                "register",
                "--clients",
                "20",
                "--duration",
                "20",
                "--login-concurrency",
                "4",
            ]]),
            show: attack_show,
        },
        Scenario {
            name: "logins",
            cheap_hashing: false,
            paired: false,
            server: Vec::new(),
            bench: strings(&[&["logins", "--checkpoints", "10,100,1000"]]),
            show: &[
                "server_rss_start_mib",
                "checkpoints.0.server_rss_mib",
                "checkpoints.1.server_rss_mib",
                "checkpoints.2.server_rss_mib",
                "checkpoints.2.seconds",
                "rss_ratio_last_to_first",
                "server_peak_rss_mib",
                "probe.failed",
                "probe.login_p50_ms",
                "probe.login_p99_ms",
            ],
        },
    ]
}

/// Fan-out A (100 clients, 10 senders x 1,000 room messages of 100 B),
/// unpaced or at `rate` messages/s in all.
fn fan_out_a(name: &'static str, rate: Option<&str>, show: &'static [&'static str]) -> Scenario {
    let mut bench = strings(&[&[
        "fanout",
        "--clients",
        "100",
        "--senders",
        "10",
        "--messages",
        "1000",
        "--size",
        "100",
    ]]);
    if let Some(rate) = rate {
        bench.extend(["--rate".to_owned(), rate.to_owned()]);
    }
    Scenario {
        cheap_hashing: true,
        paired: false,
        name,
        server: strings(&[UNLIMITED, ONE_SOURCE]),
        bench,
        show,
    }
}
