//! Group roles: the creator owns a group and appoints moderators; the
//! owner, a moderator or a server operator takes members out, mutes them
//! in the group, and deletes the group's messages; nobody else may.

use super::util::{name, Got, World};
use crate::config::Config;
use crate::frame::{ErrorCode, Frame, GroupAction, Target, Text};
use crate::id::{MessageId, Ref};

fn world() -> World {
    World::with_accounts(Config::default(), &["olga", "mo", "bob", "eve", "op"])
}

impl World {
    fn group_op(&mut self, p: usize, f: fn(Ref) -> Frame<'static>) -> Ref {
        let r = self.reference();
        self.send(p, &f(r));
        r
    }

    fn moderate_group(&mut self, p: usize, action: GroupAction, user: &str, seconds: u32) -> Ref {
        let reference = self.reference();
        let frame = Frame::GroupModerate {
            reference,
            group: name("dev"),
            action,
            user: name(user),
            seconds,
            reason: Text::new("rules").expect("short"),
        };
        self.send(p, &frame);
        reference
    }

    fn answered_ok(&self, p: usize, r: Ref) -> bool {
        self.peers[p].got.contains(&Got::Ok(r))
    }
}

/// olga creates dev; mo, bob and eve join.
fn with_group() -> (World, [usize; 4]) {
    let mut w = world();
    let ps = ["olga", "mo", "bob", "eve"].map(|u| w.login(u, false));
    w.group_op(ps[0], |r| Frame::GroupCreate {
        reference: r,
        group: name("dev"),
    });
    for &p in &ps[1..] {
        w.group_op(p, |r| Frame::GroupJoin {
            reference: r,
            group: name("dev"),
        });
    }
    (w, ps)
}

#[test]
fn the_owner_appoints_a_moderator_who_removes_and_mutes_members_and_others_may_not() {
    let (mut w, [olga, mo, bob, eve]) = with_group();
    let r = w.moderate_group(mo, GroupAction::Remove, "eve", 0);
    assert_eq!(w.errors(mo), vec![ErrorCode::NotGroupModerator], "not yet");
    assert!(!w.answered_ok(mo, r));

    let r = w.moderate_group(bob, GroupAction::Appoint, "bob", 0);
    assert!(!w.answered_ok(bob, r), "only the owner appoints");
    assert_eq!(w.errors(bob), vec![ErrorCode::NotGroupModerator]);
    w.peers[bob].got.clear();
    let r = w.moderate_group(olga, GroupAction::Appoint, "mo", 0);
    assert!(w.answered_ok(olga, r));

    let r = w.moderate_group(mo, GroupAction::Remove, "eve", 0);
    assert!(w.answered_ok(mo, r));
    assert!(
        w.peers[eve].got.iter().any(|g| matches!(g,
            Got::GroupEvent { joined: false, group, user } if group == "dev" && user == "eve")),
        "eve is told she left"
    );
    w.say(eve, Target::Group(name("dev")), "still here?");
    assert_eq!(w.errors(eve), vec![ErrorCode::NotAMember]);

    let r = w.moderate_group(mo, GroupAction::Mute, "bob", 60);
    assert!(w.answered_ok(mo, r));
    w.say(bob, Target::Group(name("dev")), "hello dev");
    assert_eq!(w.errors(bob), vec![ErrorCode::Muted], "muted in the group");
    w.say(bob, Target::Room, "hello room");
    assert_eq!(w.errors(bob), vec![ErrorCode::Muted], "but not in the room");
    w.advance(std::time::Duration::from_secs(61));
    w.say(bob, Target::Group(name("dev")), "back");
    assert_eq!(w.errors(bob).len(), 1, "the mute ended");

    let r = w.moderate_group(mo, GroupAction::Remove, "olga", 0);
    assert!(!w.answered_ok(mo, r), "a moderator cannot remove the owner");
    let r = w.moderate_group(olga, GroupAction::Dismiss, "mo", 0);
    assert!(w.answered_ok(olga, r));
    let r = w.moderate_group(mo, GroupAction::Mute, "bob", 0);
    assert!(!w.answered_ok(mo, r), "dismissed");
}

#[test]
fn a_server_operator_moderates_any_group_and_a_moderator_deletes_only_in_theirs() {
    let (mut w, [olga, mo, bob, _]) = with_group();
    w.hub.set_operator(&name("op"), true);
    let op = w.login("op", false);
    let r = w.moderate_group(op, GroupAction::Appoint, "mo", 0);
    assert!(w.answered_ok(op, r), "an operator need not be a member");

    w.say(bob, Target::Group(name("dev")), "dev spam");
    w.say(bob, Target::Room, "room spam");
    let all = w.store.messages();
    let in_group = all
        .iter()
        .find(|m| m.body == "dev spam")
        .expect("stored")
        .id;
    let in_room = all
        .iter()
        .find(|m| m.body == "room spam")
        .expect("stored")
        .id;
    let del = |w: &mut World, p: usize, id: MessageId| {
        let reference = w.reference();
        let f = Frame::Delete {
            reference,
            id,
            reason: Text::new("x").expect("short"),
        };
        w.send(p, &f);
        reference
    };
    let r = del(&mut w, mo, in_room);
    assert!(!w.answered_ok(mo, r));
    assert_eq!(
        w.errors(mo),
        vec![ErrorCode::NotOperator],
        "not their group's"
    );
    let r = del(&mut w, mo, in_group);
    assert!(w.answered_ok(mo, r));
    assert!(w.peers[olga].got.contains(&Got::Deleted {
        id: in_group,
        by: "mo".to_owned()
    }));
    let r = del(&mut w, bob, in_group);
    assert!(!w.answered_ok(bob, r), "bob moderates nothing");
}
