//! Bans and mutes stored as ends in Unix time, handed to the hub, which
//! counts in `Instant`s.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use confab_engine::Hub;

use crate::store::sqlite::{SanctionKind, StoredAddressBan, StoredSanction};

/// Gives the hub the bans and mutes read from the database at start.
pub(crate) fn apply(hub: &mut Hub, sanctions: &[StoredSanction]) {
    let now = Instant::now();
    for s in sanctions {
        let left = match s.until_ms {
            None => None,
            Some(ms) => match until(&ms.to_string()) {
                Ok(left) => left,
                Err(_) => continue,
            },
        };
        let until = left.map(|d| now + d);
        match s.kind {
            SanctionKind::Ban => {
                hub.ban(now, &s.name, until, &s.reason);
            }
            SanctionKind::Mute => hub.mute(now, &s.name, until, &s.reason),
        }
    }
}

/// Gives the hub the address bans read from the database; one whose
/// block no longer parses (an older build's text) is logged and skipped.
pub(crate) fn apply_addresses(hub: &mut Hub, bans: &[StoredAddressBan]) {
    let now = Instant::now();
    for b in bans {
        let left = match b.until_ms {
            None => None,
            Some(ms) => match until(&ms.to_string()) {
                Ok(left) => left,
                Err(_) => continue,
            },
        };
        match crate::source::parse_net(&b.net) {
            Ok((_, net)) => {
                hub.ban_address(now, net, left.map(|d| now + d), &b.reason);
            }
            Err(e) => log::warn!("a stored address ban is skipped: {e}"),
        }
    }
}

/// `UNTIL_MS` (ms since the epoch, empty for good) as the time left from
/// now; an end in the past is zero.
pub(crate) fn until(field: &str) -> Result<Option<Duration>, String> {
    if field.is_empty() {
        return Ok(None);
    }
    let ms: u64 = field
        .parse()
        .map_err(|_| format!("bad end time {field:?}"))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Ok(Some(Duration::from_millis(ms).saturating_sub(now)))
}
