//! The sidebar: the people list following the roster, the groups list
//! following the group events and our answers.

use confab::Event;
use confab_engine::frame::{GroupChange, GroupInfo, Presence};
use confab_engine::{MessageId, RosterVersion};

use super::harness::{group, message, n, user, Client};
use crate::tui::conversation::ConvId;
use crate::tui::network::Command;
use crate::tui::Action;
use crate::tui::Msg;

#[test]
fn roster_snapshots_and_deltas_update_the_people_list() {
    let mut c = Client::online("bob", &["carol", "bob", "alice"], MessageId(0));
    let people = |c: &Client| -> Vec<(String, bool)> {
        c.m.people_rows()
            .iter()
            .map(|r| (confab::address::format_target(&r.target), r.active))
            .collect()
    };
    let s = |v: &[(&str, bool)]| -> Vec<(String, bool)> {
        v.iter().map(|(a, b)| ((*a).to_owned(), *b)).collect()
    };
    assert_eq!(
        people(&c),
        s(&[("@bob", true), ("@alice", true), ("@carol", true)])
    );
    c.ev(Event::RosterDelta {
        version: RosterVersion(2),
        presence: Presence::Offline,
        user: n("carol"),
    });
    c.ev(Event::RosterDelta {
        version: RosterVersion(3),
        presence: Presence::Online,
        user: n("Dave"),
    });
    assert_eq!(
        people(&c),
        s(&[("@bob", true), ("@alice", true), ("@Dave", true)])
    );
    // Someone offline with a DM conversation stays listed, dimmed.
    c.ev(message(MessageId(9), "Dave", user("bob"), "bye"));
    c.ev(Event::RosterDelta {
        version: RosterVersion(4),
        presence: Presence::Offline,
        user: n("dave"),
    });
    assert_eq!(
        people(&c),
        s(&[("@bob", true), ("@alice", true), ("@Dave", false)])
    );
    // A fresh snapshot (after a reconnect, or a coalesced one) replaces it all.
    c.ev(Event::RosterSnapshot {
        version: RosterVersion(10),
        users: vec![n("bob"), n("erin")],
    });
    assert_eq!(
        people(&c),
        s(&[("@bob", true), ("@erin", true), ("@Dave", false)])
    );
}

#[test]
fn groups_follow_the_list_events_and_our_answers() {
    let mut c = Client::online("bob", &["bob"], MessageId(0));
    let r = c.ref_of(&Command::GroupList);
    c.ev(Event::GroupList {
        reference: r,
        groups: vec![
            GroupInfo {
                name: n("dev"),
                members: 2,
                is_member: true,
            },
            GroupInfo {
                name: n("ops"),
                members: 1,
                is_member: false,
            },
        ],
    });
    let groups = |c: &Client| -> Vec<(String, bool)> {
        c.m.group_rows()
            .iter()
            .map(|r| (confab::address::format_target(&r.target), r.active))
            .collect()
    };
    assert_eq!(
        groups(&c),
        vec![
            ("all".into(), true),
            ("#dev".into(), true),
            ("#ops".into(), false)
        ]
    );
    // Enter on a group not joined joins it; the OK opens it.
    c.key(Msg::Next);
    c.key(Msg::Down);
    c.key(Msg::Down);
    assert_eq!(c.key(Msg::Submit), vec![Command::GroupJoin(n("ops"))]);
    let r = c.ref_of(&Command::GroupJoin(n("ops")));
    let cmds = c.ev(Event::Ok {
        reference: r,
        request: None,
    });
    assert_eq!(c.m.current, ConvId::of(&group("ops")));
    assert_eq!(cmds.len(), 1, "its history: {cmds:?}");
    // Another session of ours creates a group: it shows up as joined.
    c.ev(Event::GroupEvent {
        change: GroupChange::Joined,
        group: n("new"),
        user: n("bob"),
    });
    assert!(groups(&c).contains(&("#new".into(), true)));
    // F7 on the shown group, Enter: leave it, and go back to the room.
    c.key(Msg::Action(Action::LeaveGroup));
    assert_eq!(c.key(Msg::Submit), vec![Command::GroupLeave(n("ops"))]);
    let r = c.ref_of(&Command::GroupLeave(n("ops")));
    c.ev(Event::Ok {
        reference: r,
        request: None,
    });
    assert_eq!(c.m.current, ConvId::Room);
    assert!(groups(&c).contains(&("#ops".into(), false)));
}
