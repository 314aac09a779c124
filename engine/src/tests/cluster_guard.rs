//! A hub as one node of several: the sanctions, revocations, login
//! outcomes and registrations another node reports
//! ([`crate::Hub::handle_remote`]) take effect here as if taken here, and
//! what this node decides is told to the others (`Effect::TellNodes`).

use std::time::Duration;

use super::util::{name, Got, World};
use crate::config::Config;
use crate::effect::Effect;
use crate::frame::{ErrorCode, Frame, ModAction, Target, Text};
use crate::id::{MessageId, Ref, Source};
use crate::lockout::Policy;
use crate::remote::Remote;

fn node(users: &[&str]) -> World {
    let config = Config {
        announce_presence: true,
        lockout: Policy {
            after: 3,
            ..Policy::default()
        },
        ..Config::default()
    };
    World::with_accounts(config, users)
}

fn told(w: &World) -> Vec<Remote> {
    w.held
        .iter()
        .filter_map(|e| match e {
            Effect::TellNodes(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

fn logged_in(w: &World, p: usize) -> bool {
    w.peers[p].got.iter().any(|g| matches!(g, Got::LoginOk(..)))
}

fn last_error(w: &World, p: usize) -> Option<(ErrorCode, u32)> {
    w.peers[p].got.iter().rev().find_map(|g| match g {
        Got::Error {
            code,
            retry_after_ms,
            ..
        } => Some((*code, *retry_after_ms)),
        _ => None,
    })
}

fn login_from(w: &mut World, source: Source, user: &str, password: &str) -> usize {
    let p = w.connect_from(source);
    let reference = w.reference();
    w.send(
        p,
        &Frame::Login {
            reference,
            user: name(user),
            password: Text::new(password).expect("short"),
            resume_after: MessageId(0),
            roster: false,
        },
    );
    p
}

/// A REGISTER of `user` on a new connection from `source`; the peer and
/// the request's reference.
fn register_from(w: &mut World, source: Source, user: &str) -> (usize, Ref) {
    let p = w.connect_from(source);
    let reference = w.reference();
    let frame = Frame::Register {
        reference,
        user: name(user),
        password: Text::new("pw").expect("short"),
    };
    w.send(p, &frame);
    (p, reference)
}

/// Peer `p`'s MODERATE of `user`; the request's reference.
fn moderate(
    w: &mut World,
    p: usize,
    action: ModAction,
    user: &str,
    seconds: u32,
    reason: &str,
) -> Ref {
    let reference = w.reference();
    let frame = Frame::Moderate {
        reference,
        action,
        user: name(user),
        seconds,
        reason: Text::new(reason).expect("short"),
    };
    w.send(p, &frame);
    reference
}

#[test]
fn a_ban_from_another_node_closes_the_users_sessions_here_and_refuses_their_logins_until_it_ends() {
    let mut w = node(&["alice", "bob"]);
    let a = w.login("alice", false);
    let b = w.login("bob", false);
    let ban = Remote::Ban {
        user: name("ALICE"),
        left: Some(Duration::from_secs(60)),
        reason: "spam".into(),
    };
    w.hub.handle_remote(w.now, ban);
    w.run();
    assert_eq!(w.errors(a), vec![ErrorCode::Banned]);
    assert!(w.peers[a].closed);
    assert!(!w.peers[b].closed, "bob is not touched");
    let again = w.login("alice", false);
    assert!(!logged_in(&w, again));
    assert_eq!(last_error(&w, again), Some((ErrorCode::Banned, 60_000)));

    w.hub.handle_remote(
        w.now,
        Remote::Unban {
            user: name("alice"),
        },
    );
    let lifted = w.login("alice", false);
    assert!(logged_in(&w, lifted), "the unban from elsewhere holds here");
}

#[test]
fn a_mute_from_another_node_refuses_sends_here_until_it_is_lifted_there() {
    let mut w = node(&["alice"]);
    let a = w.login("alice", false);
    let mute = Remote::Mute {
        user: name("alice"),
        left: None,
        reason: "shh".into(),
    };
    w.hub.handle_remote(w.now, mute);
    w.say(a, Target::Room, "hello?");
    assert_eq!(w.errors(a), vec![ErrorCode::Muted]);
    w.hub.handle_remote(
        w.now,
        Remote::Unmute {
            user: name("alice"),
        },
    );
    w.say(a, Target::Room, "hello again");
    assert_eq!(w.errors(a), vec![ErrorCode::Muted], "no new refusal");
}

#[test]
fn an_operator_made_on_another_node_may_moderate_here_and_a_kick_from_there_closes_sessions() {
    let mut w = node(&["carol", "bob"]);
    let carol = w.login("carol", false);
    let bob = w.login("bob", false);
    let op = Remote::Operator {
        user: name("carol"),
        operator: true,
    };
    w.hub.handle_remote(w.now, op);
    let reference = moderate(&mut w, carol, ModAction::Mute, "bob", 0, "quiet");
    assert!(w.peers[carol].got.contains(&Got::Ok(reference)));
    let kick = Remote::Kick {
        user: name("bob"),
        reason: "out".into(),
    };
    w.hub.handle_remote(w.now, kick);
    w.run();
    assert_eq!(w.errors(bob), vec![ErrorCode::Kicked]);
}

#[test]
fn failed_logins_counted_on_other_nodes_lock_the_address_out_here_at_the_same_threshold() {
    let mut w = node(&["bob"]);
    let attacker = Source(7);
    for _ in 0..3 {
        let failed = Remote::LoginFailed {
            user: name("bob"),
            source: attacker,
        };
        w.hub.handle_remote(w.now, failed);
    }
    w.hold_effects = true;
    let p = login_from(&mut w, attacker, "bob", "pw");
    assert!(w.held.is_empty(), "no hash is asked for a locked-out login");
    assert_eq!(last_error(&w, p), Some((ErrorCode::LockedOut, 300_000)));
    // The owner, elsewhere, is checked as usual.
    w.hold_effects = false;
    let owner = login_from(&mut w, Source(8), "bob", "pw");
    assert!(logged_in(&w, owner));
}

#[test]
fn a_login_let_in_on_another_node_clears_the_accounts_failures_here() {
    let config = Config {
        announce_presence: true,
        lockout: Policy {
            after: 10,
            account_after: 2,
            ..Policy::default()
        },
        ..Config::default()
    };
    let mut w = World::with_accounts(config, &["bob"]);
    let user = name("bob");
    for s in [1, 2] {
        let source = Source(s);
        w.hub
            .handle_remote(w.now, Remote::LoginFailed { user, source });
    }
    let p = login_from(&mut w, Source(3), "bob", "pw");
    assert_eq!(last_error(&w, p).map(|e| e.0), Some(ErrorCode::LockedOut));
    let source = Source(4);
    w.hub
        .handle_remote(w.now, Remote::LoggedIn { user, source });
    let q = login_from(&mut w, Source(3), "bob", "pw");
    assert!(logged_in(&w, q), "the account starts over, as on one node");
}

#[test]
fn registrations_charged_on_other_nodes_spend_this_nodes_budget_for_the_source() {
    let mut w = node(&[]);
    let limit = Config::default().registrations_per_source;
    let source = Source(9);
    for _ in 0..limit.burst {
        w.hub.handle_remote(w.now, Remote::Registered { source });
    }
    let (p, _) = register_from(&mut w, source, "newbie");
    assert_eq!(last_error(&w, p).map(|e| e.0), Some(ErrorCode::RateLimited));
    w.advance(limit.every);
    let (q, reference) = register_from(&mut w, source, "patient");
    assert!(w.peers[q].got.contains(&Got::Ok(reference)));
}

/// The notes held, taken out of the held effects.
fn take_told(w: &mut World) -> Vec<Remote> {
    let said = told(w);
    w.held.retain(|e| !matches!(e, Effect::TellNodes(_)));
    said
}

#[test]
fn a_node_tells_the_others_its_login_outcomes_and_registrations() {
    let mut w = node(&["bob"]);
    w.hold_effects = true;
    let source = Source(5);
    login_from(&mut w, source, "bob", "wrong");
    // The password check's answer queues the note: held now.
    w.release();
    let mut said = take_told(&mut w);
    login_from(&mut w, source, "bob", "pw");
    w.release();
    said.extend(take_told(&mut w));
    register_from(&mut w, source, "newbie");
    said.extend(take_told(&mut w));
    let user = name("bob");
    assert_eq!(
        said,
        [
            Remote::LoginFailed { user, source },
            Remote::LoggedIn { user, source },
            Remote::Registered { source },
        ]
    );
}

#[test]
fn a_clients_moderation_is_told_to_the_other_nodes_only_once_it_is_stored() {
    let mut w = node(&["carol", "bob"]);
    w.hub.set_operator(&name("carol"), true);
    let carol = w.login("carol", false);
    w.hold_effects = true;
    let reference = moderate(&mut w, carol, ModAction::Ban, "bob", 60, "spam");
    assert_eq!(told(&w), [], "not before storage has it");
    w.release();
    assert!(w.peers[carol].got.contains(&Got::Ok(reference)));
    let ban = Remote::Ban {
        user: name("bob"),
        left: Some(Duration::from_secs(60)),
        reason: "spam".into(),
    };
    assert_eq!(told(&w), [ban]);
}

#[test]
fn an_order_from_the_control_socket_applies_here_and_is_told_but_a_single_node_tells_nothing() {
    let mut w = node(&["alice"]);
    let a = w.login("alice", false);
    w.hold_effects = true;
    let kick = Remote::Kick {
        user: name("alice"),
        reason: "bye".into(),
    };
    let applied = w.hub.order(w.now, kick.clone());
    assert_eq!(applied, crate::hub::Applied::Closed(1));
    w.run();
    assert_eq!(told(&w), std::slice::from_ref(&kick));
    w.release();
    assert_eq!(w.errors(a), vec![ErrorCode::Kicked]);

    let mut single = World::with_accounts(Config::default(), &["alice"]);
    single.login("alice", false);
    single.hold_effects = true;
    single.hub.order(single.now, kick);
    single.run();
    let p = login_from(&mut single, Source(3), "alice", "wrong");
    single.release();
    assert!(single.peers[p]
        .got
        .iter()
        .any(|g| matches!(g, Got::Error { .. })));
    assert_eq!(told(&single), []);
}
