//! Reloading the config file on SIGHUP or `confab-server reload`, without
//! dropping any connection. The binary's [`Reload`] re-reads the file
//! and, only if all of it is valid, applies what it owns (log level and
//! file, TLS certificate); the hub then gets the new limits and the
//! stored bans and mutes. A file with errors changes nothing: each error
//! is logged (and answered to `reload`) with its line.

use std::sync::Arc;

use confab_engine::Config;
use log::{info, warn};

use crate::shared::Shared;
use crate::signals::Hangups;
use crate::store::sqlite::StoredSanction;

/// What a reload hands the server.
#[derive(Debug)]
pub struct Reloaded {
    /// The limits now in force.
    pub engine: Config,
    /// The bans and mutes stored now.
    pub sanctions: Vec<StoredSanction>,
    /// The address bans stored now.
    pub address_bans: Vec<crate::store::sqlite::StoredAddressBan>,
    /// What changed but takes a restart, and other remarks.
    pub notes: Vec<String>,
}

/// Re-reads the configuration (see the module docs).
pub trait Reload: Send + Sync + std::fmt::Debug {
    /// The new settings, or every error found (nothing applied then).
    fn reload(&self) -> Result<Reloaded, Vec<String>>;
}

/// Runs a reload and puts its result in force; the lines to answer.
pub(crate) fn apply(shared: &Shared, reloader: &dyn Reload) -> Result<Vec<String>, String> {
    match reloader.reload() {
        Ok(r) => {
            shared.with_core(|core, now| {
                core.hub.reconfigure(r.engine);
                core.hub.clear_sanctions();
                crate::sanctions::apply(&mut core.hub, &r.sanctions);
                crate::sanctions::apply_addresses(&mut core.hub, &r.address_bans);
                let _ = now;
            });
            for note in &r.notes {
                warn!("reload: {note}");
            }
            info!("reloaded the configuration");
            let mut lines = vec!["reloaded".to_owned()];
            lines.extend(r.notes);
            Ok(lines)
        }
        Err(errors) => {
            for e in &errors {
                warn!("reload refused, the old settings stay: {e}");
            }
            Err(errors.join("\n"))
        }
    }
}

/// Reloads at each SIGHUP, until dropped.
pub(crate) async fn on_hangup(shared: Arc<Shared>, reloader: Arc<dyn Reload>) {
    let hangups = match Hangups::install() {
        Ok(h) => h,
        Err(e) => {
            warn!("cannot install the SIGHUP handler: {e}");
            return;
        }
    };
    while hangups.next().await {
        info!("SIGHUP: reloading the configuration");
        let _ = apply(&shared, &*reloader);
    }
}
