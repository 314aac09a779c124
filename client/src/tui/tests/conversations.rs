//! Conversations: where messages land, unread counts and read markers,
//! history pages, sending and its refusals.

use std::time::Duration;

use confab::session::HistoryPage;
use confab::{Event, Message};
use confab_engine::frame::ErrorCode;
use confab_engine::MessageId;

use super::harness::{group, message, n, room, user, Client};
use crate::tui::conversation::{ConvId, Older};
use crate::tui::network::{Command, NetEvent};
use crate::tui::update::HISTORY_PAGE;
use crate::tui::Msg;

#[test]
fn messages_land_in_their_conversation_and_count_as_unread_elsewhere() {
    let mut c = Client::online("bob", &["alice", "bob"], MessageId(0));
    c.ev(message(MessageId(1), "alice", room(), "hello room"));
    c.ev(message(MessageId(2), "alice", user("bob"), "psst"));
    c.ev(message(MessageId(3), "alice", group("dev"), "hi devs"));
    c.ev(message(MessageId(4), "alice", group("dev"), "still there?"));

    assert_eq!(c.m.current, ConvId::Room);
    assert_eq!(c.ids(room()), vec![MessageId(1)]);
    // The DM sent to bob is filed under its sender, alice.
    assert_eq!(c.ids(user("alice")), vec![MessageId(2)]);
    assert_eq!(c.ids(group("dev")), vec![MessageId(3), MessageId(4)]);
    assert_eq!(c.unread(room()), 0, "the shown conversation is read");
    assert_eq!(c.unread(user("alice")), 1);
    assert_eq!(c.unread(group("dev")), 2);

    // A DM of our own from another session goes under its recipient.
    c.ev(message(MessageId(5), "bob", user("carol"), "from my phone"));
    assert_eq!(c.ids(user("carol")), vec![MessageId(5)]);
    assert_eq!(c.unread(user("carol")), 0, "our own words are not unread");
}

#[test]
fn switching_conversations_marks_them_read_and_loads_their_history_once() {
    let mut c = Client::online("bob", &["alice", "bob"], MessageId(0));
    c.ev(message(MessageId(3), "alice", group("dev"), "hi devs"));
    c.ev(message(MessageId(4), "alice", user("bob"), "psst"));

    // Ctrl-N walks the lists in order: all, #dev, then the people.
    let cmds = c.key(Msg::NextConversation);
    assert_eq!(c.m.current, ConvId::of(&group("dev")));
    assert_eq!(c.unread(group("dev")), 0);
    assert_eq!(
        cmds,
        vec![
            Command::History {
                target: group("dev"),
                before: MessageId(0),
                limit: HISTORY_PAGE
            },
            // The user's other sessions learn that it is read.
            Command::MarkRead {
                target: group("dev"),
                id: MessageId(3)
            }
        ]
    );
    // Typing goes to the shown conversation.
    let cmds = c.type_line("hello devs");
    assert_eq!(
        cmds,
        vec![Command::Send {
            target: group("dev"),
            body: "hello devs".into()
        }]
    );
    assert_eq!(c.m.pending_in_current(), vec!["hello devs".to_owned()]);

    // Picking alice in the people list (Tab Tab, Down past ourselves, Enter).
    c.key(Msg::Next);
    c.key(Msg::Next);
    c.key(Msg::Down);
    c.key(Msg::Down);
    let cmds = c.key(Msg::Submit);
    assert_eq!(c.m.current, ConvId::of(&user("alice")));
    assert_eq!(c.unread(user("alice")), 0);
    assert_eq!(cmds.len(), 2, "{cmds:?}");
    assert_eq!(
        cmds[1],
        Command::MarkRead {
            target: user("alice"),
            id: MessageId(4)
        }
    );
    // Back to the group: its history is not fetched again.
    let cmds = c.type_line("/msg #dev");
    assert_eq!(c.m.current, ConvId::of(&group("dev")));
    assert_eq!(cmds, vec![]);
    // A DM to someone new opens their conversation.
    let cmds = c.type_line("/msg carol are you there");
    assert_eq!(
        cmds,
        vec![Command::Send {
            target: user("carol"),
            body: "are you there".into()
        }]
    );
}

#[test]
fn a_read_marker_from_another_device_recomputes_the_unread_count_from_the_marker() {
    let mut c = Client::online("bob", &["alice", "bob"], MessageId(0));
    for id in [3, 4, 5] {
        c.ev(message(MessageId(id), "alice", group("dev"), "hi devs"));
    }
    assert_eq!(c.unread(group("dev")), 3);
    c.ev(Event::ReadMarker {
        target: group("dev"),
        id: MessageId(4),
    });
    assert_eq!(c.unread(group("dev")), 1);
    c.ev(Event::ReadMarker {
        target: group("dev"),
        id: MessageId(5),
    });
    assert_eq!(c.unread(group("dev")), 0);
    // An older marker arriving late changes nothing, and viewing the
    // conversation now sends no MARK_READ: the server knows already.
    c.ev(Event::ReadMarker {
        target: group("dev"),
        id: MessageId(3),
    });
    assert_eq!(c.unread(group("dev")), 0);
    let cmds = c.key(Msg::NextConversation);
    assert!(
        !cmds.iter().any(|c| matches!(c, Command::MarkRead { .. })),
        "{cmds:?}"
    );
    // A marker heard before the messages (at login, before the replay)
    // keeps them from counting as unread.
    c.ev(Event::ReadMarker {
        target: user("alice"),
        id: MessageId(9),
    });
    c.ev(message(MessageId(9), "alice", user("bob"), "old news"));
    c.ev(message(MessageId(10), "alice", user("bob"), "new"));
    assert_eq!(c.unread(user("alice")), 1);
}

#[test]
fn viewing_a_conversation_marks_it_read_once_per_new_message() {
    let mut c = Client::online("bob", &["alice", "bob"], MessageId(0));
    let marks = |cmds: &[Command]| -> Vec<MessageId> {
        cmds.iter()
            .filter_map(|c| match c {
                Command::MarkRead { id, .. } => Some(*id),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        marks(&c.ev(message(MessageId(7), "alice", room(), "hi"))),
        vec![MessageId(7)]
    );
    assert_eq!(marks(&c.advance(Duration::from_millis(10))), vec![]);
    assert_eq!(
        marks(&c.ev(message(MessageId(8), "alice", room(), "yo"))),
        vec![MessageId(8)]
    );
}

#[test]
fn acks_store_our_messages_and_history_adds_no_unread() {
    let mut c = Client::online("bob", &["bob"], MessageId(0));
    c.type_line("first");
    let r = c.ref_of(&Command::Send {
        target: room(),
        body: "first".into(),
    });
    c.ev(Event::Ack {
        reference: r,
        id: MessageId(7),
        timestamp_ms: 1,
        target: Some(room()),
    });
    assert_eq!(c.ids(room()), vec![MessageId(7)]);
    assert!(c.m.pending_in_current().is_empty());

    let r = c.ref_of(&Command::History {
        target: room(),
        before: MessageId(0),
        limit: HISTORY_PAGE,
    });
    let page = |ids: &[MessageId]| -> Vec<Message> {
        ids.iter()
            .map(|&id| Message {
                id,
                timestamp_ms: id.0,
                sender: n("alice"),
                target: room(),
                body: format!("old {id}"),
            })
            .collect()
    };
    c.ev(Event::HistoryPage(HistoryPage {
        reference: r,
        target: room(),
        more: true,
        messages: page(&[MessageId(3), MessageId(5), MessageId(7)]),
    }));
    assert_eq!(
        c.ids(room()),
        vec![MessageId(3), MessageId(5), MessageId(7)],
        "id 7 is held once"
    );
    assert_eq!(c.unread(room()), 0);
    assert_eq!(c.m.current().older, Older::More);

    // Scrolling to the top asks for the page before the oldest message.
    let cmds = c.key(Msg::PageUp);
    let want = Command::History {
        target: room(),
        before: MessageId(3),
        limit: HISTORY_PAGE,
    };
    assert_eq!(cmds, vec![want.clone()]);
    assert_eq!(c.key(Msg::PageUp), vec![], "one request at a time");
    let r = c.ref_of(&want);
    c.ev(Event::HistoryPage(HistoryPage {
        reference: r,
        target: room(),
        more: false,
        messages: page(&[MessageId(1), MessageId(2)]),
    }));
    assert_eq!(
        c.ids(room()),
        vec![
            MessageId(1),
            MessageId(2),
            MessageId(3),
            MessageId(5),
            MessageId(7)
        ]
    );
    assert_eq!(c.m.current().older, Older::Complete);
    assert_eq!(c.key(Msg::PageUp), vec![], "nothing older to fetch");
}

#[test]
fn missed_messages_are_fetched_from_history_and_count_as_read() {
    let mut c = Client::online("bob", &["bob"], MessageId(0));
    c.ev(message(
        MessageId(50),
        "alice",
        group("dev"),
        "after the gap",
    ));
    let cmds = c.ev(Event::Missed {
        target: group("dev"),
        first: MessageId(41),
        last: MessageId(48),
        count: 3,
    });
    let want = Command::History {
        target: group("dev"),
        before: MessageId(49),
        limit: 3,
    };
    assert_eq!(cmds, vec![want.clone()]);
    let r = c.ref_of(&want);
    let page = [41, 44, 48].map(|id| Message {
        id: MessageId(id),
        timestamp_ms: id,
        sender: n("alice"),
        target: group("dev"),
        body: format!("dropped {id}"),
    });
    c.ev(Event::HistoryPage(HistoryPage {
        reference: r,
        target: group("dev"),
        more: true,
        messages: page.to_vec(),
    }));
    assert_eq!(
        c.ids(group("dev")),
        vec![MessageId(41), MessageId(44), MessageId(48), MessageId(50)]
    );
    let dev = &c.m.conversations[&ConvId::of(&group("dev"))];
    // The page reaches below the oldest message held, so PgUp goes on
    // from it.
    assert_eq!(dev.older, Older::More);
    assert_eq!(dev.unread, 1, "history is not unread");
}

#[test]
fn refusals_are_reported_and_pending_messages_dropped() {
    let mut c = Client::online("bob", &["bob"], MessageId(0));
    c.type_line("/msg nobody hello?");
    let r = c.ref_of(&Command::Send {
        target: user("nobody"),
        body: "hello?".into(),
    });
    c.ev(Event::Error(confab::ServerError {
        code: ErrorCode::NoSuchUser,
        reference: r,
        retry_after_ms: 0,
        text: "no user nobody".into(),
        request: None,
    }));
    let notice = c.m.notice.clone().unwrap();
    assert!(notice.error);
    assert!(notice.text.contains("NO_SUCH_USER"), "{}", notice.text);
    let sending =
        c.m.requests
            .values()
            .any(|c| matches!(c, Command::Send { .. }));
    assert!(!sending);
}

#[test]
fn a_message_too_long_or_while_offline_stays_in_the_input_line() {
    let mut c = Client::online("bob", &["bob"], MessageId(0));
    c.net(NetEvent::Lost("reset".into()));
    assert_eq!(c.type_line("are you there"), vec![]);
    assert_eq!(c.m.input.text(), "are you there");
    assert!(c.m.notice.as_ref().unwrap().error);
}
