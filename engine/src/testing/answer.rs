//! [`answer`]: an effect answered from any store the way the server's
//! workers answer it.

use std::time::Duration;

use crate::device::Token;
use crate::effect::{
    DeviceLogin, Effect, EffectResult, GroupOp, Input, NewMessage, Secret, SendKey,
};
use crate::error::ProtocolError;
use crate::id::{ConnId, Ref};
use crate::name::Name;
use crate::seat;
use crate::store::{Store, StoreError, Write, Written};

/// Answers `effect` from `store` as the server's workers do (its auth pool,
/// storage writer and readers), committing at `now_ms`: what to feed the
/// hub, in order (nothing for an effect that needs no answer; for a
/// commit, the requester's answer and then the commit to route).
///
/// Authentication compares the stored "hash" with the password as plain
/// text: accounts made through [`Effect::Register`] store the password
/// itself. That is why this is for tests only.
pub fn answer(store: &mut dyn Store, effect: Effect, now_ms: u64) -> Vec<Input> {
    let result = match effect {
        Effect::Authenticate {
            conn,
            user,
            password,
        } => EffectResult::Authenticated {
            conn,
            result: match store.account(&user) {
                Ok(Some(a)) if a.password_hash == password.expose() => Ok(a.name),
                Ok(_) => Err(ProtocolError::BadCredentials {
                    retry: Duration::ZERO,
                }),
                Err(e) => Err(failed(e)),
            },
        },
        Effect::Register {
            conn,
            user,
            password,
        } => EffectResult::Registered {
            conn,
            result: match store.create_account(&user, password.expose()) {
                Ok(true) => Ok(()),
                Ok(false) => Err(ProtocolError::NameTaken { user }),
                Err(e) => Err(failed(e)),
            },
        },
        Effect::Store {
            conn,
            reference,
            message,
            once,
        } => return commit_message(store, conn, reference, message, once, now_ms),
        effect @ (Effect::Login2 { .. }
        | Effect::SaveBookmark { .. }
        | Effect::SaveReadMarker { .. }
        | Effect::ListDevices { .. }
        | Effect::RevokeDevice { .. }
        | Effect::Moderate { .. }
        | Effect::BanAddress { .. }
        | Effect::DeleteMessage { .. }
        | Effect::Audit { .. }) => answer_v2(store, effect, now_ms),
        effect @ Effect::LoadTargets { .. } => targets(store, effect),
        Effect::StoreGroup {
            conn,
            reference,
            op,
        } => return commit_group(store, conn, reference, op, now_ms),
        Effect::LoadHistory {
            conn,
            reference,
            user,
            target,
            window,
            limit,
        } => EffectResult::History {
            conn,
            reference,
            target,
            result: store
                .history_page(&user, &target, &window, limit)
                .unwrap_or_else(|e| Err(failed(e))),
        },
        Effect::Replay {
            conn,
            user,
            scope,
            upto,
            max,
        } => EffectResult::Replayed {
            conn,
            result: store.replay(&user, &scope, upto, max).map_err(failed),
        },
        other => return answer_unanswered(store, other, now_ms),
    };
    vec![result.into()]
}

/// Effects that need no answer: `UserOffline` (a failure loses only the
/// offline mark), `NodePresence` and `TellNodes` (the shell's to tell the other nodes
/// of a cluster; no store has a part in it).
fn answer_unanswered(store: &mut dyn Store, effect: Effect, now_ms: u64) -> Vec<Input> {
    if let Effect::UserOffline { user, seen_upto } = effect {
        let _ = store.commit(&[Write::Offline { user, seen_upto }], now_ms);
    }
    Vec::new()
}

/// [`answer`] for [`Effect::LoadTargets`] (and nothing else).
fn targets(store: &mut dyn Store, effect: Effect) -> EffectResult {
    let Effect::LoadTargets {
        conn,
        reference,
        user,
        groups,
        between,
        limit,
    } = effect
    else {
        unreachable!("answer hands only LoadTargets here")
    };
    EffectResult::Targets {
        conn,
        reference,
        result: store
            .history_targets(&user, &groups, between, limit)
            .map_err(failed),
    }
}

/// [`answer`] for the effects of protocol version 2.
fn answer_v2(store: &mut dyn Store, effect: Effect, now_ms: u64) -> EffectResult {
    match effect {
        Effect::Login2 {
            conn,
            user,
            secret,
            device,
            token_idle,
            max_devices,
            max_read_markers,
        } => EffectResult::LoggedIn2 {
            conn,
            result: login2(store, user, secret, device, token_idle, max_devices, now_ms).and_then(
                |mut login| {
                    login.read_markers = store
                        .read_markers(&login.user, max_read_markers)
                        .map_err(failed)?;
                    Ok(login)
                },
            ),
        },
        Effect::SaveBookmark {
            device,
            upto,
            logout,
        } => EffectResult::BookmarkSaved {
            device,
            upto,
            logout,
            saved: store
                .commit(&[Write::Bookmark { device, upto }], now_ms)
                .is_ok(),
        },
        Effect::SaveReadMarker {
            conn,
            user,
            target,
            id,
            max,
        } => save_read_marker(store, conn, user, (target, id, max), now_ms),
        Effect::ListDevices {
            conn,
            reference,
            user,
        } => EffectResult::Devices {
            conn,
            reference,
            result: store.devices(&user).map_err(failed),
        },
        Effect::RevokeDevice {
            conn,
            reference,
            user,
            device,
        } => EffectResult::DeviceRevoked {
            conn,
            reference,
            result: match store.revoke_device(&user, &device) {
                Ok(Some(id)) => Ok(id),
                Ok(None) => Err(ProtocolError::NoSuchDevice { device }),
                Err(e) => Err(failed(e)),
            },
        },
        other => answer_moderation(store, other, now_ms),
    }
}

/// The answer to a moderation's effect, as the server's writer gives it.
fn answer_moderation(store: &mut dyn Store, effect: Effect, now_ms: u64) -> EffectResult {
    match effect {
        Effect::Moderate {
            conn,
            reference,
            record,
        } => EffectResult::Moderated {
            conn,
            reference,
            result: store.moderate(&record, now_ms).map_err(failed),
        },
        Effect::BanAddress {
            conn,
            reference,
            record,
        } => EffectResult::Moderated {
            conn,
            reference,
            result: store.record_address_ban(&record, now_ms).map_err(failed),
        },
        Effect::DeleteMessage {
            conn,
            reference,
            actor,
            id,
            reason,
            within,
        } => EffectResult::MessageDeleted {
            conn,
            reference,
            by: actor,
            result: match store.delete_within(id, &actor, &reason, now_ms, within.as_deref()) {
                Ok(r) => r,
                Err(e) => Err(failed(e)),
            },
        },
        Effect::Audit {
            conn,
            reference,
            line,
        } => EffectResult::Moderated {
            conn,
            reference,
            result: store.audit_line(&line, now_ms).map_err(failed),
        },
        other => unreachable!("answer passes only version 2 effects here, not {other:?}"),
    }
}

/// A read marker stored, answered with the marker as stored.
fn save_read_marker(
    store: &mut dyn Store,
    conn: ConnId,
    user: Name,
    (target, id, max): (crate::frame::Target, crate::MessageId, u16),
    now_ms: u64,
) -> EffectResult {
    let write = Write::ReadMarker {
        user,
        target,
        id,
        max,
    };
    let result = match store.commit(&[write], now_ms).map(|mut w| w.pop()) {
        Ok(Some(Written::ReadMarker(id))) => Ok(id),
        Ok(_) => Err(wrong_outcome()),
        Err(e) => Err(failed(e)),
    };
    EffectResult::ReadMarkerSaved {
        conn,
        user,
        target,
        result,
    }
}

/// The stand-in for blake3 a test store uses: the token itself (tests
/// read tokens back; the server's store never sees one).
pub fn test_hash(t: &Token) -> [u8; 32] {
    t.0
}

/// The token [`answer`] issues: deterministic, different per device name.
fn test_token(device: &Name) -> Token {
    let mut t = [7u8; 32];
    for (o, b) in t.iter_mut().zip(device.as_str().bytes()) {
        *o = b;
    }
    Token(t)
}

/// A LOGIN2 answered as the server's auth pool answers it.
fn login2(
    store: &mut dyn Store,
    typed: Name,
    secret: Secret,
    device: Option<crate::effect::DeviceAsk>,
    token_idle: Duration,
    max_devices: u16,
    now_ms: u64,
) -> Result<DeviceLogin, ProtocolError> {
    let bad = ProtocolError::BadCredentials {
        retry: Duration::ZERO,
    };
    let (user, seated) = match secret {
        Secret::Password(p) => {
            let user = match store.account(&typed).map_err(failed)? {
                Some(a) if a.password_hash == p.expose() => a.name,
                _ => return Err(bad),
            };
            let seated = match device {
                Some(ask) => {
                    let t = test_token(&ask.name);
                    let issue = Some((t, test_hash(&t)));
                    let s = seat::by_password(store, &user, ask, issue, max_devices, now_ms);
                    Some(s.map_err(failed)??)
                }
                None => None,
            };
            (user, seated)
        }
        Secret::Token(t) => {
            let (user, seat) = seat::by_token(store, &typed, &test_hash(&t), token_idle, now_ms)
                .map_err(failed)??;
            (user, Some((seat, None)))
        }
    };
    Ok(DeviceLogin {
        user,
        seat: seated.map(|(s, _)| s),
        token: seated.and_then(|(_, t)| t),
        read_markers: Vec::new(),
    })
}

fn failed(e: StoreError) -> ProtocolError {
    ProtocolError::Storage(e.to_string())
}

/// A message committed: its sender's ACK, then its routing.
fn commit_message(
    store: &mut dyn Store,
    conn: ConnId,
    reference: Ref,
    message: NewMessage,
    once: Option<SendKey>,
    now_ms: u64,
) -> Vec<Input> {
    let write = [match once {
        Some(key) => Write::MessageOnce(message.clone(), key),
        None => Write::Message(message.clone()),
    }];
    let result = match store.commit(&write, now_ms).map(|mut w| w.pop()) {
        Ok(Some(Written::Duplicate(c))) => return Input::message_stored_before(conn, reference, c),
        Ok(Some(Written::Message(result))) => result.map_err(|e| (message, e)),
        Ok(_) => Err((message, wrong_outcome())),
        Err(e) => Err((message, failed(e))),
    };
    Input::message_written(conn, reference, result)
}

/// A group change committed: the requester's OK, then the change.
fn commit_group(
    store: &mut dyn Store,
    conn: ConnId,
    reference: Ref,
    op: GroupOp,
    now_ms: u64,
) -> Vec<Input> {
    let write = [Write::Group(op.clone())];
    let result = match store.commit(&write, now_ms).map(|mut w| w.pop()) {
        Ok(Some(Written::Group(result))) => result,
        Ok(_) => Err(wrong_outcome()),
        Err(e) => Err(failed(e)),
    };
    Input::group_written(conn, reference, op, result)
}

fn wrong_outcome() -> ProtocolError {
    ProtocolError::Storage("storage answered with an outcome of another kind".to_owned())
}
