//! A hub as one node of several: what it tells the shell about its own
//! users (`Effect::NodePresence`), and the presence other nodes report.

use crate::config::Config;
use crate::effect::Effect;
use crate::frame::Presence;

use super::util::{name, World};

fn announced(w: &World) -> Vec<Presence> {
    w.held
        .iter()
        .filter_map(|e| match e {
            Effect::NodePresence { presence, .. } => Some(*presence),
            _ => None,
        })
        .collect()
}

/// Logs `user` in with effects held; what was announced meanwhile.
fn login_announcing(w: &mut World, user: &str) -> (usize, Vec<Presence>) {
    let p = w.login(user, false);
    // The password check; the login's own effects are held after it.
    w.release();
    let said = announced(w);
    w.release();
    (p, said)
}

#[test]
fn a_node_announces_a_users_first_session_here_and_their_last() {
    let config = Config {
        announce_presence: true,
        ..Config::default()
    };
    let mut w = World::with_accounts(config, &["ann"]);
    w.hold_effects = true;
    let (p1, said) = login_announcing(&mut w, "ann");
    assert_eq!(said, [Presence::Online]);
    let (p2, said) = login_announcing(&mut w, "ann");
    assert_eq!(said, [], "a second session here is not news");
    w.disconnect(p1);
    assert_eq!(announced(&w), []);
    w.disconnect(p2);
    assert_eq!(announced(&w), [Presence::Offline]);
}

#[test]
fn a_node_announces_its_users_even_while_another_node_has_them() {
    let config = Config {
        announce_presence: true,
        ..Config::default()
    };
    let mut w = World::with_accounts(config, &["ann"]);
    let now = w.now;
    w.hub.handle_presence(now, name("ann"), Presence::Online);
    w.hold_effects = true;
    let (p, said) = login_announcing(&mut w, "ann");
    assert_eq!(said, [Presence::Online]);
    w.disconnect(p);
    assert_eq!(announced(&w), [Presence::Offline]);
}

#[test]
fn a_single_node_announces_nothing() {
    let mut w = World::with_accounts(Config::default(), &["ann"]);
    w.hold_effects = true;
    let (p, said) = login_announcing(&mut w, "ann");
    assert_eq!(said, []);
    w.disconnect(p);
    assert_eq!(announced(&w), []);
}
