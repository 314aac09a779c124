//! Kicks, bans and mutes, decided by an operator through the shell.

use std::time::Duration;

use super::util::{name, Got, World};
use crate::config::Config;
use crate::frame::{ErrorCode, Frame, Target, Text};
use crate::id::Ref;

fn world() -> World {
    World::with_accounts(Config::default(), &["alice", "bob"])
}

fn logged_in(w: &World, p: usize) -> bool {
    w.peers[p].got.iter().any(|g| matches!(g, Got::LoginOk(..)))
}

fn retry_of(w: &World, p: usize, code: ErrorCode) -> Option<u32> {
    w.peers[p].got.iter().find_map(|g| match g {
        Got::Error {
            code: c,
            retry_after_ms,
            ..
        } if *c == code => Some(*retry_after_ms),
        _ => None,
    })
}

#[test]
fn a_kick_closes_every_session_of_the_user_and_no_other() {
    let mut w = world();
    let a1 = w.login("alice", false);
    let a2 = w.login("alice", false);
    let b = w.login("bob", false);
    let kicked = w.hub.kick(w.now, &name("ALICE"), "spam");
    w.run();
    assert_eq!(kicked, 2);
    for p in [a1, a2] {
        assert_eq!(w.errors(p), vec![ErrorCode::Kicked]);
        assert!(w.peers[p].closed, "alice's session {p} is closed");
    }
    assert!(w.errors(b).is_empty());
    assert!(!w.peers[b].closed);
}

#[test]
fn a_banned_account_is_closed_and_refused_with_the_time_left_until_the_ban_ends() {
    let mut w = world();
    let a = w.login("alice", false);
    let until = w.now + Duration::from_secs(60);
    assert_eq!(w.hub.ban(w.now, &name("alice"), Some(until), "spam"), 1);
    w.run();
    assert_eq!(w.errors(a), vec![ErrorCode::Banned]);
    assert!(w.peers[a].closed);

    let again = w.login("alice", false);
    assert!(!logged_in(&w, again));
    assert_eq!(retry_of(&w, again, ErrorCode::Banned), Some(60_000));

    w.advance(Duration::from_secs(61));
    let later = w.login("alice", false);
    assert!(logged_in(&w, later), "the ban has ended");
}

#[test]
fn a_ban_for_good_says_no_retry_and_an_unban_lifts_it() {
    let mut w = world();
    w.hub.ban(w.now, &name("alice"), None, "gone");
    let a = w.login("alice", false);
    assert_eq!(retry_of(&w, a, ErrorCode::Banned), Some(0));
    assert!(w.hub.unban(&name("alice")));
    let b = w.login("alice", false);
    assert!(logged_in(&w, b));
}

#[test]
fn a_muted_user_has_sends_refused_with_muted_and_others_still_send() {
    let mut w = world();
    let a = w.login("alice", false);
    let b = w.login("bob", false);
    w.hub.mute(w.now, &name("alice"), None, "calm down");
    w.say(a, Target::Room, "hi");
    w.say(b, Target::Room, "hello");
    assert_eq!(w.errors(a), vec![ErrorCode::Muted]);
    assert!(!w.peers[a].closed, "a mute does not close the session");
    assert_eq!(w.messages(a).len(), 1, "alice still reads bob");
    assert!(w.hub.unmute(&name("alice")));
    w.say(a, Target::Room, "sorry");
    let bodies: Vec<String> = w.messages(b).into_iter().map(|m| m.2).collect();
    assert_eq!(
        bodies,
        ["sorry"],
        "only what alice said unmuted reached bob"
    );
}

#[test]
fn stats_count_sessions_per_user_and_bans() {
    let mut w = world();
    w.login("alice", false);
    w.login("alice", false);
    w.connect();
    w.hub.ban(w.now, &name("bob"), None, "x");
    let stats = w.hub.stats(w.now);
    assert_eq!(stats.connections, 3);
    assert_eq!(stats.logged_in, 2);
    assert_eq!(stats.per_protocol, vec![3]);
    assert_eq!(stats.sessions_per_user, vec![(name("alice"), 2)]);
    assert_eq!(stats.bans, 1);
}

#[test]
fn an_address_ban_closes_its_blocks_sessions_and_admit_turns_it_away_until_it_ends() {
    use crate::{Source, SourceNet};
    let mut w = world();
    let inside = w.connect_from(Source(0x0a00_0001));
    w.login_peer(inside, "alice", crate::id::MessageId(0), false);
    let outside = w.connect_from(Source(0x0b00_0001));
    w.login_peer(outside, "bob", crate::id::MessageId(0), false);
    let net = SourceNet::new(0x0a00_0000, 104).expect("a /8 in mapped space");
    let until = w.now + Duration::from_secs(60);
    assert_eq!(w.hub.ban_address(w.now, net, Some(until), "abuse"), 1);
    w.run();
    assert_eq!(w.errors(inside), vec![ErrorCode::Banned]);
    assert!(w.peers[inside].closed);
    assert!(w.errors(outside).is_empty() && !w.peers[outside].closed);
    let refused = w
        .hub
        .admit(w.now, Source(0x0aff_0000))
        .expect_err("turned away");
    assert_eq!(refused.reason, crate::hub::TurnedAway::Banned);
    assert!(w.hub.admit(w.now, Source(0x0b00_0002)).is_ok());
    assert_eq!(w.hub.stats(w.now).address_bans, 1);
    w.advance(Duration::from_secs(61));
    assert!(
        w.hub.admit(w.now, Source(0x0a00_0002)).is_ok(),
        "the ban ended"
    );
    w.hub.ban_address(w.now, net, None, "again");
    assert!(w.hub.unban_address(net));
    assert!(w.hub.admit(w.now, Source(0x0a00_0002)).is_ok(), "lifted");
}

fn ban_address_frame(reference: Ref, lift: bool, block: &str) -> Frame<'_> {
    Frame::BanAddress {
        reference,
        lift,
        block: Text::new(block).expect("short"),
        seconds: 60,
        reason: Text::new("abuse").expect("short"),
    }
}

#[test]
fn an_operators_ban_address_closes_the_block_and_a_bad_block_or_a_non_operator_is_refused() {
    use crate::Source;
    let mut w = world();
    w.hub.set_operator(&name("alice"), true);
    let op = w.connect_from(Source(0xffff_c000_0201));
    w.login_peer(op, "alice", crate::id::MessageId(0), false);
    let inside = w.connect_from(Source(0xffff_0a01_0203));
    w.login_peer(inside, "bob", crate::id::MessageId(0), false);
    let r = w.reference();
    w.send(inside, &ban_address_frame(r, false, "192.0.2.0/24"));
    assert_eq!(w.errors(inside), vec![ErrorCode::NotOperator]);
    assert!(
        w.hub.admit(w.now, Source(0xffff_c000_0202)).is_ok(),
        "nothing done"
    );
    let r = w.reference();
    w.send(op, &ban_address_frame(r, false, "example.com"));
    assert_eq!(w.errors(op), vec![ErrorCode::BadAddress]);
    let r = w.reference();
    w.send(op, &ban_address_frame(r, false, "10.1.2.3/8"));
    assert!(
        w.peers[op].got.contains(&Got::Ok(r)),
        "{:?}",
        w.peers[op].got
    );
    assert_eq!(
        w.errors(inside),
        vec![ErrorCode::NotOperator, ErrorCode::Banned]
    );
    assert!(w.peers[inside].closed);
    let refused = w.hub.admit(w.now, Source(0xffff_0aff_0001));
    assert_eq!(
        refused.expect_err("turned away").reason,
        crate::hub::TurnedAway::Banned
    );
    let r = w.reference();
    w.send(op, &ban_address_frame(r, true, "10.0.0.0/8"));
    assert!(w.peers[op].got.contains(&Got::Ok(r)));
    assert!(
        w.hub.admit(w.now, Source(0xffff_0aff_0001)).is_ok(),
        "lifted"
    );
    assert_eq!(w.hub.stats(w.now).address_bans, 0);
}
