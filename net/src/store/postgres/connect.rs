//! Reaching PostgreSQL: a connection from a URL (with a connect timeout
//! of its own), and the URL without its password for every message.

use postgres::{Client, NoTls};

use super::describe;
use crate::store::StoreError;

pub(super) fn open_failed(url: &str) -> impl FnOnce(postgres::Error) -> StoreError + '_ {
    move |e| StoreError::Open {
        path: redact(url),
        reason: describe(&e),
    }
}

/// The URL without its password, for messages.
pub(super) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

pub(super) fn connect(url: &str) -> Result<Client, StoreError> {
    let mut config: postgres::Config = url.parse().map_err(open_failed(url))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(2));
    }
    config.connect(NoTls).map_err(|e| StoreError::Failed {
        doing: "connecting to PostgreSQL",
        reason: describe(&e),
    })
}
