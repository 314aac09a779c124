//! The device step of a LOGIN2, the same over every [`Store`]: after the
//! shell checked a password, find or create the device it names (and
//! issue its token); or find the device a token names, refusing one that
//! is another user's or idle past its expiry.
//!
//! The shell brings what the engine cannot make: the token's hash
//! (blake3) and, to issue one, fresh random bytes. Every refusal of a
//! token reads the same (`BadToken`), so a guesser learns nothing.

use std::time::Duration;

use crate::device::Token;
use crate::effect::{DeviceAsk, Seat};
use crate::error::ProtocolError;
use crate::name::Name;
use crate::store::{Store, StoreError, StoredDevice};

/// What a seat step decided: a seat (and the token issued), or a refusal.
pub type Seated = Result<(Seat, Option<Token>), ProtocolError>;

fn seat(d: &StoredDevice) -> Seat {
    Seat {
        id: d.record.id,
        name: d.record.name,
        bookmark: d.bookmark,
    }
}

/// A password login of `user` (checked, registered spelling) naming
/// `ask`: the device, created within `max_devices`, with a new token if
/// asked (`issue` is the token and its hash, made by the shell).
pub fn by_password(
    store: &mut dyn Store,
    user: &Name,
    ask: DeviceAsk,
    issue: Option<(Token, [u8; 32])>,
    max_devices: u16,
    now_ms: u64,
) -> Result<Seated, StoreError> {
    let issue = issue.filter(|_| ask.issue_token);
    let hash = issue.map(|(_, h)| h);
    let token = issue.map(|(t, _)| t);
    let device = match store.device_by_name(user, &ask.name)? {
        Some(d) => {
            if let Some(h) = hash {
                store.set_device_token(d.record.id, Some(h))?;
            }
            store.touch_device(d.record.id, now_ms)?;
            d
        }
        None => {
            if store.devices(user)?.len() >= usize::from(max_devices) {
                return Ok(Err(ProtocolError::TooManyDevices { max: max_devices }));
            }
            store.create_device(user, &ask.name, hash, now_ms)?
        }
    };
    Ok(Ok((seat(&device), token)))
}

/// A token login of `typed` (the name as typed): the device whose token
/// hash is `hash`, if it is that user's and was used within `idle`. An
/// expired token is cleared, so it stays refused.
pub fn by_token(
    store: &mut dyn Store,
    typed: &Name,
    hash: &[u8; 32],
    idle: Duration,
    now_ms: u64,
) -> Result<Result<(Name, Seat), ProtocolError>, StoreError> {
    let refused = Err(ProtocolError::BadToken {
        retry: Duration::ZERO,
    });
    let Some(d) = store.device_by_token(hash)? else {
        return Ok(refused);
    };
    if d.user.key() != typed.key() {
        return Ok(refused);
    }
    let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
    if now_ms.saturating_sub(d.record.last_seen_ms) > idle_ms {
        store.set_device_token(d.record.id, None)?;
        return Ok(refused);
    }
    store.touch_device(d.record.id, now_ms)?;
    Ok(Ok((d.user, seat(&d))))
}
