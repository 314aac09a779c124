//! Deleted messages and announcements: an operator's DELETE leaves a
//! tombstone that every session entitled to the message hears of, live,
//! in history and in resume; an ANNOUNCE reaches everyone logged in.

use super::util::{name, Got, World};
use crate::config::Config;
use crate::frame::{ErrorCode, Frame, Target, Text};
use crate::id::{MessageId, Ref};
use crate::Source;

fn t(s: &str) -> Text<'_> {
    Text::new(s).expect("short")
}

fn world() -> World {
    let mut w = World::with_accounts(Config::default(), &["alice", "bob", "carol", "dave"]);
    w.hub.set_operator(&name("alice"), true);
    w
}

impl World {
    fn delete(&mut self, p: usize, id: MessageId) -> Ref {
        let reference = self.reference();
        let frame = Frame::Delete {
            reference,
            id,
            reason: t("spam"),
        };
        self.send(p, &frame);
        reference
    }

    fn announce(&mut self, p: usize, text: &str) -> Ref {
        let reference = self.reference();
        self.send(
            p,
            &Frame::Announce {
                reference,
                text: t(text),
            },
        );
        reference
    }

    fn history_of(&mut self, p: usize, target: Target) {
        let reference = self.reference();
        let frame = Frame::HistoryRequest {
            reference,
            target,
            before: MessageId(0),
            limit: 50,
        };
        self.send(p, &frame);
    }

    /// The id of the newest message peer `p` was sent.
    fn last_message(&self, p: usize) -> MessageId {
        self.messages(p).last().expect("a message arrived").0
    }

    fn deleted(&self, p: usize) -> Vec<(MessageId, String)> {
        self.peers[p]
            .got
            .iter()
            .filter_map(|g| match g {
                Got::Deleted { id, by } => Some((*id, by.clone())),
                _ => None,
            })
            .collect()
    }

    fn notices(&self, p: usize) -> Vec<String> {
        self.peers[p]
            .got
            .iter()
            .filter_map(|g| match g {
                Got::Notice(text) => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    fn stored_body(&self, id: MessageId) -> String {
        let all = self.store.messages();
        let m = all.iter().find(|m| m.id == id).expect("stored");
        m.body.clone()
    }
}

#[test]
fn an_operators_delete_empties_the_body_and_tells_everyone_who_saw_the_message() {
    let mut w = world();
    let (a, b, c) = (
        w.login("alice", false),
        w.login("bob", false),
        w.login("carol", false),
    );
    w.say(b, Target::Room, "buy cheap watches");
    let id = w.last_message(c);
    let r = w.delete(a, id);
    assert!(w.peers[a].got.contains(&Got::Ok(r)), "the operator's OK");
    assert_eq!(w.stored_body(id), "", "the body is gone from storage");
    for p in [a, b, c] {
        assert_eq!(
            w.deleted(p),
            vec![(id, "alice".to_owned())],
            "peer {p} is told"
        );
    }
}

#[test]
fn a_group_message_deletion_is_told_to_the_members_only() {
    let mut w = world();
    let (a, b, c) = (
        w.login("alice", false),
        w.login("bob", false),
        w.login("carol", false),
    );
    let r = w.reference();
    w.send(
        b,
        &Frame::GroupCreate {
            reference: r,
            group: name("dev"),
        },
    );
    w.say(b, Target::Group(name("dev")), "secret");
    let id = w.store.messages().last().expect("stored").id;
    w.delete(a, id);
    assert_eq!(w.deleted(b), vec![(id, "alice".to_owned())]);
    assert!(w.deleted(c).is_empty(), "carol is not in the group");
    assert!(w.deleted(a).is_empty(), "nor is the operator");
}

#[test]
fn history_and_resume_show_the_tombstone_and_who_deleted_it() {
    let mut w = world();
    let (a, b) = (w.login("alice", false), w.login("bob", false));
    w.say(b, Target::Room, "first");
    w.say(b, Target::Room, "oops");
    w.say(b, Target::Room, "third");
    let oops = MessageId(w.last_message(a).0 - 1);
    w.delete(a, oops);

    let c = w.login("carol", false);
    w.history_of(c, Target::Room);
    let page = w.peers[c]
        .got
        .iter()
        .position(|g| matches!(g, Got::History { .. }))
        .expect("a page");
    assert!(
        matches!(&w.peers[c].got[page], Got::History { ids, .. } if ids.contains(&oops)),
        "the tombstone stays in history"
    );
    assert_eq!(
        w.peers[c].got.get(page + 1),
        Some(&Got::Deleted {
            id: oops,
            by: "alice".to_owned()
        }),
        "who deleted it, right after the page"
    );

    let d = w.connect();
    w.login_peer(d, "dave", MessageId(oops.0 - 1), false);
    let replayed = w.messages(d);
    let bodies: Vec<&str> = replayed.iter().map(|m| m.2.as_str()).collect();
    assert_eq!(bodies, ["", "third"], "resume carries the empty body");
    let at = w.peers[d]
        .got
        .iter()
        .position(|g| matches!(g, Got::Message { id, .. } if *id == oops))
        .expect("replayed");
    assert_eq!(
        w.peers[d].got.get(at + 1),
        Some(&Got::Deleted {
            id: oops,
            by: "alice".to_owned()
        }),
        "who deleted it, right after the tombstone"
    );
}

#[test]
fn a_delete_from_a_non_operator_is_refused_and_the_message_stays() {
    let mut w = world();
    let (a, b) = (w.login("alice", false), w.login("bob", false));
    w.say(a, Target::Room, "keep me");
    let id = w.last_message(b);
    w.delete(b, id);
    assert_eq!(w.errors(b), vec![ErrorCode::NotOperator]);
    assert_eq!(w.stored_body(id), "keep me");
    assert!(w.deleted(a).is_empty() && w.deleted(b).is_empty());
}

#[test]
fn deleting_an_id_no_message_has_is_refused_with_no_such_message() {
    let mut w = world();
    let a = w.login("alice", false);
    w.delete(a, MessageId(999));
    assert_eq!(w.errors(a), vec![ErrorCode::NoSuchMessage]);
}

#[test]
fn an_announcement_reaches_every_session_and_only_an_operator_may_make_one() {
    let mut w = world();
    let (a, b, c) = (
        w.login("alice", false),
        w.login("bob", false),
        w.login("bob", false),
    );
    let r = w.announce(a, "restart at noon");
    assert!(w.peers[a].got.contains(&Got::Ok(r)));
    for p in [a, b, c] {
        assert_eq!(w.notices(p), ["restart at noon"], "peer {p}");
    }
    w.announce(b, "I am in charge now");
    assert_eq!(w.errors(b), vec![ErrorCode::NotOperator]);
    assert_eq!(w.notices(c), ["restart at noon"], "nothing more went out");
    w.announce(a, "");
    assert_eq!(w.errors(a), vec![ErrorCode::BadBody], "an empty notice");
}

#[test]
fn a_version_1_session_hears_of_neither_and_sees_the_empty_body() {
    let mut w = world();
    let a = w.login("alice", false);
    let old = w.connect_speaking(Source(77), 1);
    w.login_peer(old, "carol", MessageId(0), false);
    w.say(a, Target::Room, "before");
    let before = w.last_message(old);
    w.say(a, Target::Room, "soon gone");
    let id = w.last_message(old);
    w.delete(a, id);
    w.announce(a, "hello all");
    assert!(w.deleted(old).is_empty() && w.notices(old).is_empty());
    assert!(w.errors(old).is_empty(), "and no error either");
    assert!(!w.peers[old].closed);
    let late = w.connect_speaking(Source(78), 1);
    w.login_peer(late, "dave", before, false);
    let bodies: Vec<String> = w.messages(late).into_iter().map(|m| m.2).collect();
    assert_eq!(bodies, [""], "resume shows the tombstone's empty body");
    assert!(w.deleted(late).is_empty());
}

#[test]
fn the_command_lines_deletion_and_announcement_reach_the_sessions_through_the_hub() {
    let mut w = world();
    let (a, b) = (w.login("alice", false), w.login("bob", false));
    w.say(a, Target::Room, "x");
    let stored = w.store.messages().last().cloned().expect("stored");
    assert_eq!(w.hub.tell_deleted(&stored, &name("operator")), 2);
    assert_eq!(w.hub.announce("maintenance"), 2);
    w.run();
    assert_eq!(w.deleted(b), vec![(stored.id, "operator".to_owned())]);
    assert_eq!(w.notices(b), ["maintenance"]);
}
