//! Opening a SQLite store: the file, its pragmas, the migrations and
//! the first look at what it holds.

use super::*;

impl SqliteStore {
    /// Opens (creating if needed) `data_dir/confab.db`, migrating its schema
    /// to the current version. Creates `data_dir` if it does not exist.
    ///
    /// Errors: [`StoreError::Open`] if the directory or file cannot be used
    /// (not writable, not a database, corrupt, not confab's);
    /// [`StoreError::TooNew`] if a newer confab wrote it.
    pub fn open(data_dir: &Path, options: &SqliteOptions) -> Result<SqliteStore, StoreError> {
        let path = data_dir.join(FILE_NAME);
        let open_err = |reason: String| StoreError::Open {
            path: path.display().to_string(),
            reason,
        };
        match std::fs::metadata(data_dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(open_err(format!(
                    "the data directory {} is not a directory",
                    data_dir.display()
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir).map_err(|e| {
                    open_err(format!(
                        "cannot create the data directory {}: {e}",
                        data_dir.display()
                    ))
                })?;
            }
            Err(e) => {
                return Err(open_err(format!(
                    "cannot access the data directory {}: {e}",
                    data_dir.display()
                )))
            }
        }
        let step = |doing: &'static str| {
            let open_err = &open_err;
            move |e: rusqlite::Error| open_err(format!("{doing}: {}", describe_open(&e)))
        };

        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(&path, flags).map_err(step("opening"))?;
        conn.busy_timeout(options.busy_timeout)
            .map_err(step("setting the busy timeout"))?;
        // SQLite silently falls back to read-only when it may not write the file.
        if conn
            .is_readonly(rusqlite::MAIN_DB)
            .map_err(step("checking access"))?
        {
            return Err(open_err(
                "the file is read-only: the server must be able to write it (check its owner and permissions)"
                    .to_owned(),
            ));
        }
        // Before changing anything: is it confab's, and not from a newer one?
        let version = inspect(&conn, &path, &open_err)?;
        // Switching a new file to WAL needs a lock for which SQLite does not
        // call the busy handler, so stores opened at once wait here.
        let deadline = Instant::now() + options.busy_timeout;
        let mode: String = loop {
            match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)) {
                Err(e) if is_busy(&e) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                result => break result.map_err(step("switching to WAL mode"))?,
            }
        };
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(open_err(format!(
                "cannot use WAL mode (the journal mode stays {mode:?}); is the data directory on a network file system?"
            )));
        }
        set_sync(&conn, options.sync).map_err(step("setting synchronous"))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(step("enabling foreign keys"))?;
        // An indexing step dirties a hundred or more index pages, and a
        // history page reads scattered rows: keep the hot pages in memory
        // rather than SQLite's default 2 MiB. Statement journals (INSERT
        // ... SELECT keeps one) stay in RAM.
        conn.pragma_update(None, "cache_size", -CACHE_KIB)
            .map_err(step("setting the cache size"))?;
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(step("setting the temp store"))?;
        conn.set_prepared_statement_cache_capacity(64);

        let problems = {
            let mut stmt = conn
                .prepare("PRAGMA quick_check")
                .map_err(step("checking integrity"))?;
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(step("checking integrity"))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(step("checking integrity"))?
        };
        if problems != ["ok"] {
            let shown: Vec<&str> = problems.iter().take(3).map(String::as_str).collect();
            return Err(open_err(format!(
                "the database is corrupt (quick_check: {})",
                shown.join("; ")
            )));
        }

        migrate(&mut conn, version, &path, &open_err)?;
        let backlog: i64 = conn
            .query_row(
                &format!("SELECT count(*) FROM messages WHERE id > {INDEXED_UPTO}"),
                [],
                |r| r.get(0),
            )
            .map_err(step("counting the messages not yet indexed"))?;
        Ok(SqliteStore {
            conn,
            path,
            backlog: backlog.unsigned_abs(),
            sync: options.sync,
            lookups: Lookups::default(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The schema version of a file confab may use; refuses foreign and newer ones.
pub(super) fn inspect(
    conn: &Connection,
    path: &Path,
    open_err: &dyn Fn(String) -> StoreError,
) -> Result<u32, StoreError> {
    // One statement, so one snapshot even while another store migrates.
    let (version, app, tables): (u32, i32, i64) = conn
        .query_row(
            "SELECT (SELECT user_version FROM pragma_user_version),
                    (SELECT application_id FROM pragma_application_id),
                    (SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite%')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(|e| open_err(format!("reading the schema version: {}", describe_open(&e))))?;
    let ours = app == APPLICATION_ID || (app == 0 && version == 0 && tables == 0);
    if !ours {
        return Err(open_err(format!(
            "it is a SQLite database but not confab's (application_id {app:#x}, schema version {version}, {tables} tables)"
        )));
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.display().to_string(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(version)
}

/// Brings the schema from `version` to [`SCHEMA_VERSION`].
pub(super) fn migrate(
    conn: &mut Connection,
    version: u32,
    path: &Path,
    open_err: &dyn Fn(String) -> StoreError,
) -> Result<(), StoreError> {
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    let step = |doing: &'static str| {
        move |e: rusqlite::Error| open_err(format!("{doing}: {}", describe_open(&e)))
    };
    // Another store may be migrating at the same moment: take the write lock,
    // then look again.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(step("starting the schema migration"))?;
    let from = inspect(&tx, path, open_err)?;
    for migration in &MIGRATIONS[from as usize..] {
        tx.execute_batch(migration)
            .map_err(step("migrating the schema"))?;
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)
        .map_err(step("migrating the schema"))?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(step("migrating the schema"))?;
    tx.commit().map_err(step("committing the schema migration"))
}

pub(super) fn set_sync(conn: &Connection, sync: Sync) -> rusqlite::Result<()> {
    let mode = match sync {
        Sync::Full => "FULL",
        Sync::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", mode)
}
