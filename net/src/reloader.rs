//! The binary's [`Reload`]: the command line again with the config file
//! as it is now, checked whole before anything is applied.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use log::info;

use crate::cli::SyncMode;
use crate::config_file::{self, Setting, NEEDS_RESTART};
use crate::reload::{Reload, Reloaded};
use crate::tls::{self, TlsSlot};
use crate::{logger, ops, sqlite_store};

/// Re-reads `--config FILE` (see the module docs).
#[derive(Debug)]
pub(crate) struct FileReloader {
    pub(crate) file: PathBuf,
    /// The file's settings last applied, to tell what changed.
    pub(crate) applied: Mutex<Vec<Setting>>,
    /// The TLS configuration new handshakes take, if serving TLS.
    pub(crate) tls: Option<Arc<TlsSlot>>,
    pub(crate) data_dir: PathBuf,
    pub(crate) sync: SyncMode,
}

impl Reload for FileReloader {
    fn reload(&self) -> Result<Reloaded, Vec<String>> {
        let args: Vec<OsString> = std::env::args_os().collect();
        let settings = config_file::read(&self.file)?;
        let serve = config_file::cli(&args)?.serve;
        let engine = serve.engine_config();
        engine
            .check()
            .map_err(|e| vec![format!("{}: {e}", self.file.display())])?;
        // Everything that can fail, before anything is applied.
        let tls = match (&self.tls, &serve.tls_cert, &serve.tls_key) {
            (Some(_), Some(cert), Some(key)) => {
                Some(tls::from_files(cert, key).map_err(|e| vec![e.to_string()])?)
            }
            _ => None,
        };
        let (sanctions, address_bans) = sqlite_store(&self.data_dir, self.sync)
            .and_then(|mut s| Ok((s.sanctions(ops::now_ms())?, s.address_bans(ops::now_ms())?)))
            .map_err(|e| vec![format!("reading bans and mutes: {e}")])?;
        logger::reconfigure(serve.log_level.into(), serve.log_file.as_deref()).map_err(|e| {
            vec![format!(
                "cannot open the log file {}: {e}",
                serve
                    .log_file
                    .as_deref()
                    .unwrap_or_else(|| "-".as_ref())
                    .display()
            )]
        })?;
        if let (Some(slot), Some(t)) = (&self.tls, tls) {
            slot.set(t.config);
            info!("tls fingerprint {} for new connections", t.fingerprint);
        }
        let mut applied = self.applied.lock().unwrap_or_else(PoisonError::into_inner);
        let notes = restart_notes(&applied, &settings);
        *applied = settings;
        Ok(Reloaded {
            engine,
            sanctions,
            address_bans,
            notes,
        })
    }
}

/// A note for each setting that changed but takes a restart.
fn restart_notes(before: &[Setting], now: &[Setting]) -> Vec<String> {
    let of =
        |list: &[Setting], key: &str| list.iter().find(|s| s.key == key).map(|s| s.args.clone());
    NEEDS_RESTART
        .iter()
        .filter(|key| of(before, key) != of(now, key))
        .map(|key| format!("{key} changed: it takes effect at the next restart"))
        .collect()
}
