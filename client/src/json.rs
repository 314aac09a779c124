//! The JSON shape of events, one object per line (client/README.md has the
//! table). Every object has an `"event"` field naming its kind; targets are
//! written as in [`crate::address`] (`all`, `@user`, `#group`); times are
//! milliseconds since the Unix epoch. Fields are only ever added, never
//! renamed or removed, so scripts and tests can rely on them. Objects keep
//! their fields in the order written here (`event` first), for people.

use confab_engine::frame::{DeviceInfo, GroupChange, GroupInfo, Presence};
use serde_json::{json, Value};

use crate::address::format_target;
use crate::session::{code_name, Event, Message, ServerError};

/// The JSON object for an event.
pub fn event_json(event: &Event) -> Value {
    match event {
        Event::ServerHello(h) => json!({
            "event": "server_hello",
            "server": h.server,
            "registration_open": h.info.registration_open,
            "max_body": h.info.max_body,
            "msg_rate": h.info.msg_rate,
            "msg_burst": h.info.msg_burst,
            "history_page_max": h.info.history_page_max,
        }),
        Event::Ok { reference, .. } => json!({ "event": "ok", "ref": reference.0 }),
        Event::LoginOk { user, .. } => json!({ "event": "logged_in", "user": user.as_str() }),
        Event::RosterSnapshot { version, users } => json!({
            "event": "roster",
            "version": version.0,
            "users": users.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
        }),
        Event::RosterDelta {
            version,
            presence,
            user,
        } => json!({
            "event": match presence { Presence::Online => "online", Presence::Offline => "offline" },
            "user": user.as_str(),
            "version": version.0,
        }),
        Event::CaughtUp { last_id } => json!({ "event": "caught_up", "last_id": last_id.0 }),
        Event::Message(m) => message_json(m),
        Event::Ack {
            reference,
            id,
            timestamp_ms,
            target,
        } => {
            let mut v =
                json!({ "event": "ack", "ref": reference.0, "id": id.0, "ts": timestamp_ms });
            if let Some(t) = target {
                v["to"] = Value::from(format_target(t));
            }
            v
        }
        Event::GroupEvent {
            change,
            group,
            user,
        } => json!({
            "event": match change { GroupChange::Joined => "joined", GroupChange::Left => "left" },
            "group": group.as_str(),
            "user": user.as_str(),
        }),
        Event::GroupList { groups, .. } => json!({
            "event": "groups",
            "groups": groups.iter().map(group_json).collect::<Vec<_>>(),
        }),
        Event::HistoryPage(page) => json!({
            "event": "history",
            "to": format_target(&page.target),
            "more": page.more,
            "messages": page.messages.iter().map(message_json).collect::<Vec<_>>(),
        }),
        Event::Missed {
            target,
            first,
            last,
            count,
        } => json!({
            "event": "missed",
            "to": format_target(target),
            "first": first.0,
            "last": last.0,
            "count": count,
        }),
        Event::Error(e) => error_json(e),
        Event::Pong { token } => json!({ "event": "pong", "token": token }),
        Event::TokenIssued { .. }
        | Event::ReadMarker { .. }
        | Event::DeviceList { .. }
        | Event::Deleted { .. }
        | Event::Notice { .. } => v2_json(event),
        Event::Shutdown {
            retry_after_ms,
            reason,
        } => json!({ "event": "shutdown", "retry_after_ms": retry_after_ms, "reason": reason }),
    }
}

/// The JSON of protocol version 2's events.
fn v2_json(event: &Event) -> Value {
    match event {
        // The token itself is never printed here: `confab login` stores it.
        Event::TokenIssued { device, .. } => {
            json!({ "event": "token_issued", "device": device.as_str() })
        }
        Event::ReadMarker { target, id } => json!({
            "event": "read_marker",
            "to": format_target(target),
            "id": id.0,
        }),
        Event::DeviceList { devices, .. } => json!({
            "event": "devices",
            "devices": devices.iter().map(device_json).collect::<Vec<_>>(),
        }),
        Event::Deleted { id, by } => json!({
            "event": "deleted",
            "id": id.0,
            "by": by.as_str(),
        }),
        Event::Notice { text } => json!({ "event": "notice", "text": text }),
        _ => json!({ "event": "unknown" }),
    }
}

/// `{"event":"message","id":..,"ts":..,"from":..,"to":..,"body":..}`.
/// A deleted message (a tombstone: its body is empty, which a message
/// never is otherwise) also has `"deleted": true`.
pub fn message_json(m: &Message) -> Value {
    let mut v = json!({
        "event": "message",
        "id": m.id.0,
        "ts": m.timestamp_ms,
        "from": m.sender.as_str(),
        "to": format_target(&m.target),
        "body": m.body,
    });
    if m.body.is_empty() {
        v["deleted"] = Value::from(true);
    }
    v
}

/// `{"event":"group","name":..,"members":..,"member":..}`.
pub fn group_json(g: &GroupInfo) -> Value {
    json!({
        "event": "group",
        "name": g.name.as_str(),
        "members": g.members,
        "member": g.is_member,
    })
}

/// `{"event":"device","name":..,"created_ms":..,"last_seen_ms":..,"current":..}`.
pub fn device_json(d: &DeviceInfo) -> Value {
    json!({
        "event": "device",
        "name": d.name.as_str(),
        "created_ms": d.created_ms,
        "last_seen_ms": d.last_seen_ms,
        "current": d.current,
    })
}

/// `{"event":"error","code":..,"name":..,"ref":..,"retry_after_ms":..,"text":..}`.
pub fn error_json(e: &ServerError) -> Value {
    json!({
        "event": "error",
        "code": e.code.to_u16(),
        "name": code_name(e.code),
        "ref": e.reference.0,
        "retry_after_ms": e.retry_after_ms,
        "text": e.text,
    })
}

#[cfg(test)]
mod tests {
    use confab_engine::{MessageId, Name, Ref, Target};

    use super::*;

    #[test]
    fn a_message_prints_with_its_target_spelled_as_on_the_command_line() {
        let m = Message {
            id: MessageId(12),
            timestamp_ms: 1_700_000_000_000,
            sender: Name::new("alice").unwrap(),
            target: Target::Group(Name::new("dev").unwrap()),
            body: "hi \"there\"".into(),
        };
        assert_eq!(
            event_json(&Event::Message(m)).to_string(),
            r##"{"event":"message","id":12,"ts":1700000000000,"from":"alice","to":"#dev","body":"hi \"there\""}"##
        );
    }

    #[test]
    fn a_token_issued_event_prints_the_device_but_never_the_token() {
        let e = Event::TokenIssued {
            device: Name::new("laptop").unwrap(),
            token: confab_engine::Token([0xab; 32]),
        };
        let line = event_json(&e).to_string();
        assert_eq!(line, r#"{"event":"token_issued","device":"laptop"}"#);
    }

    #[test]
    fn an_error_carries_its_code_number_and_name() {
        let e = ServerError {
            code: confab_engine::frame::ErrorCode::NoSuchUser,
            reference: Ref(3),
            retry_after_ms: 0,
            text: "no user zed".into(),
            request: None,
        };
        let v = event_json(&Event::Error(e));
        assert_eq!(v["code"], 20);
        assert_eq!(v["name"], "NO_SUCH_USER");
        assert_eq!(v["event"], "error");
    }
}
