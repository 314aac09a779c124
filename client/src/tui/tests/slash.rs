//! The `/commands` that become requests: moderation, deleting and
//! announcing, group moderation.

use confab::Event;
use confab_engine::MessageId;

use super::harness::{group, message, n, room, Client};
use crate::tui::conversation::ConvId;
use crate::tui::network::Command;

#[test]
fn moderation_commands_become_moderate_requests_with_their_length_and_reason() {
    use confab_engine::frame::ModAction;
    let mut c = Client::online("carol", &["bob", "carol"], MessageId(0));
    let moderate = |action, user: &str, seconds, reason: &str| Command::Moderate {
        action,
        user: n(user),
        seconds,
        reason: reason.into(),
    };
    assert_eq!(
        c.type_line("/kick @bob stop spamming"),
        vec![moderate(ModAction::Kick, "bob", 0, "stop spamming")]
    );
    assert_eq!(
        c.type_line("/ban bob 7d spam"),
        vec![moderate(ModAction::Ban, "bob", 604_800, "spam")]
    );
    assert_eq!(
        c.type_line("/mute bob too loud"),
        vec![moderate(ModAction::Mute, "bob", 0, "too loud")]
    );
    assert_eq!(
        c.type_line("/unban bob"),
        vec![moderate(ModAction::Unban, "bob", 0, "")]
    );
    assert_eq!(c.type_line("/kick !bad"), vec![], "refused locally");
}

#[test]
fn delete_and_announce_become_requests_and_a_deletion_or_notice_shows() {
    let mut c = Client::online("carol", &["bob", "carol"], MessageId(0));
    assert_eq!(
        c.type_line("/delete 42 spam"),
        vec![Command::Delete {
            id: MessageId(42),
            reason: "spam".into()
        }]
    );
    assert_eq!(
        c.type_line("/announce back soon"),
        vec![Command::Announce("back soon".into())]
    );
    assert_eq!(c.type_line("/delete soon"), vec![], "refused locally");
    assert!(c.m.notice.as_ref().is_some_and(|n| n.error));

    c.ev(message(MessageId(7), "bob", room(), "buy coins"));
    c.ev(message(MessageId(8), "bob", room(), ""));
    let body = |c: &Client, id: u64| {
        c.m.conversations[&ConvId::Room].messages[&MessageId(id)]
            .body
            .clone()
    };
    assert_eq!(body(&c, 8), "(message deleted)", "a tombstone from history");
    c.ev(Event::Deleted {
        id: MessageId(7),
        by: n("carol"),
    });
    assert_eq!(body(&c, 7), "(message deleted) by carol");
    assert_eq!(c.m.notice.clone().unwrap().text, "carol deleted a message.");
    c.ev(Event::Notice {
        text: "restart at noon".into(),
    });
    assert_eq!(
        c.m.notice.clone().unwrap().text,
        "Announcement: restart at noon"
    );
}

#[test]
fn group_moderation_commands_act_in_the_group_shown() {
    use confab_engine::frame::GroupAction;
    let mut c = Client::online("olga", &["bob", "olga"], MessageId(0));
    assert_eq!(c.type_line("/remove bob"), vec![], "not in a group");
    c.m.conversation_mut(&group("dev"));
    c.m.current = ConvId::of(&group("dev"));
    assert_eq!(
        c.type_line("/gmute @bob 30m"),
        vec![Command::GroupModerate {
            group: n("dev"),
            action: GroupAction::Mute,
            user: n("bob"),
            seconds: 1800,
        }]
    );
    assert_eq!(
        c.type_line("/remove bob"),
        vec![Command::GroupModerate {
            group: n("dev"),
            action: GroupAction::Remove,
            user: n("bob"),
            seconds: 0,
        }]
    );
}
