//! Several nodes of one cluster for the cluster tests: PostgreSQL and
//! Redis from scripts/services.sh, each test on a database of its own
//! (and so a bus channel of its own: the database names it), and nodes
//! that are ordinary [`Server`]s started with `--store` and `--bus`.
//!
//! The services come from `CONFAB_TEST_PG` and `CONFAB_TEST_BUS`
//! (scripts/test.sh starts them); a test that stops a service starts
//! services of its own instead ([`Services::own`]). Without them outside
//! CI a cluster test says it is skipped; under CI (`CI=true`) a missing
//! service fails it.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use tempfile::TempDir;

use crate::harness::Server;

/// PostgreSQL (an admin URL) and the bus.
pub(crate) struct Services {
    pg: String,
    pub(crate) bus: String,
    /// Services started for one test: stopped when it ends.
    own: Option<TempDir>,
}

fn services_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/services.sh")
}

/// Whether the services exist; `false` (skip) only outside CI.
fn available(what: &str) -> bool {
    let have = std::env::var("CONFAB_TEST_PG").is_ok() && std::env::var("CONFAB_TEST_BUS").is_ok();
    if !have {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CONFAB_TEST_PG and CONFAB_TEST_BUS are not set under CI: run the tests through scripts/test.sh"
        );
        eprintln!("CONFAB_TEST_PG/CONFAB_TEST_BUS not set: skipping {what}");
    }
    have
}

impl Services {
    /// The services scripts/test.sh started.
    pub(crate) fn shared(what: &str) -> Option<Services> {
        if !available(what) {
            return None;
        }
        Some(Services {
            pg: std::env::var("CONFAB_TEST_PG").ok()?,
            bus: std::env::var("CONFAB_TEST_BUS").ok()?,
            own: None,
        })
    }

    /// PostgreSQL and Redis of this test's own, which it may stop.
    pub(crate) fn own(what: &str) -> Option<Services> {
        if !available(what) {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("confab-services-")
            .tempdir()
            .expect("a temp dir");
        let out = Command::new("bash")
            .arg(services_script())
            .arg("start")
            .arg(dir.path())
            .output()
            .expect("bash runs scripts/services.sh");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "services.sh start failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
        let value = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("export {key}=")))
                .unwrap_or_else(|| panic!("services.sh printed no {key}: {text}"))
                .to_owned()
        };
        Some(Services {
            pg: value("CONFAB_TEST_PG"),
            bus: value("CONFAB_TEST_BUS"),
            own: Some(dir),
        })
    }

    /// Runs `services.sh ACTION` on this test's own services.
    pub(crate) fn service(&self, action: &str) {
        let dir = self
            .own
            .as_ref()
            .expect("only a test's own services are stopped");
        let out = Command::new("bash")
            .arg(services_script())
            .arg(action)
            .arg(dir.path())
            .output()
            .expect("bash runs scripts/services.sh");
        assert!(
            out.status.success(),
            "services.sh {action}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        if let Some(dir) = &self.own {
            let _ = Command::new("bash")
                .arg(services_script())
                .arg("stop")
                .arg(dir.path())
                .output();
        }
    }
}

/// A cluster: its database and its nodes.
pub(crate) struct Cluster {
    pub(crate) nodes: Vec<Server>,
    pub(crate) store: String,
    database: String,
    services: Services,
}

static DATABASES: AtomicU64 = AtomicU64::new(0);

fn psql(admin: &str, sql: &str) -> std::process::Output {
    Command::new("psql")
        .args([admin, "-qX", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql runs")
}

impl Cluster {
    /// `n` nodes on a fresh database.
    pub(crate) fn start(services: Services, n: usize, extra: &[&str]) -> Cluster {
        let database = format!(
            "c{}_{}_{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        );
        let out = psql(&services.pg, &format!("CREATE DATABASE {database}"));
        assert!(
            out.status.success(),
            "CREATE DATABASE: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let store = match services.pg.rfind('/') {
            Some(i) => format!("{}/{database}", &services.pg[..i]),
            None => panic!("the PostgreSQL URL ends in /DATABASE"),
        };
        let mut cluster = Cluster {
            nodes: Vec::new(),
            store,
            database,
            services,
        };
        for _ in 0..n {
            let node = cluster.node(extra);
            cluster.nodes.push(node);
        }
        cluster
    }

    /// `sql`'s rows on the cluster's database, one a line (`|` between
    /// columns), for what no client shows.
    pub(crate) fn query(&self, sql: &str) -> String {
        let out = Command::new("psql")
            .args([&self.store, "-qXtA", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A new node of this cluster (not added to `nodes`).
    pub(crate) fn node(&self, extra: &[&str]) -> Server {
        let mut args = vec!["--store", &self.store, "--bus", &self.services.bus];
        args.extend_from_slice(extra);
        Server::start_with(&args)
    }

    pub(crate) fn services(&self) -> &Services {
        &self.services
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
        if self.services.own.is_none() {
            let _ = psql(
                &self.services.pg,
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database),
            );
        }
    }
}
