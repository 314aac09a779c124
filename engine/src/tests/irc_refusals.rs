//! IRC lines the gateway refuses or trims: a muted sender's TAGMSG and
//! QUIT reason, a PRIVMSG too long to relay, a labeled JOIN that cannot
//! be gathered.

use super::irc::Irc;

#[test]
fn a_muted_user_cannot_relay_a_tagmsg_and_is_told_why() {
    let mut w = Irc::new(&["alice", "bob"]);
    let a = w.login("alice");
    let b = w.login("bob");
    w.read(a);
    w.read(b);
    let alice = crate::Name::new("alice").expect("a valid name");
    w.hub.mute(w.now, &alice, None, "calm down");
    w.send(a, "@+typing=active TAGMSG #confab\r\n");
    let got = w.read(a);
    assert!(got.contains("FAIL TAGMSG MUTED"), "{got}");
    assert!(!w.read(b).contains("TAGMSG"));
}

#[test]
fn a_labeled_join_whose_label_is_still_gathering_is_refused_whole() {
    let mut w = Irc::new(&["alice"]);
    let a = w.login("alice");
    w.send(a, "@label=j1 JOIN #one,#two\r\n@label=j1 JOIN #three\r\n");
    let got = w.read(a);
    assert!(got.contains("@label=j1 :confab FAIL JOIN BUSY"), "{got}");
    assert!(got.contains(" JOIN #two\r\n"), "{got}");
    assert!(!got.contains(" JOIN #three\r\n"), "{got}");
    assert_eq!(got.matches(":confab BATCH +").count(), 1, "{got}");
}

#[test]
fn a_muted_users_quit_reason_is_not_shown_and_a_long_one_is_cut_to_fit_a_line() {
    let (mut w, a, b) = Irc::alice_and_bob();
    w.read(b);
    let bob = crate::Name::new("bob").expect("a valid name");
    w.hub.mute(w.now, &bob, None, "spam");
    w.send(b, "QUIT :buy my stuff\r\n");
    let got = w.read(a);
    assert!(got.contains(":bob!bob@confab QUIT :offline\r\n"), "{got}");
    assert!(!got.contains("buy my stuff"), "{got}");
    w.hub.unmute(&bob);
    let b = w.login("bob");
    w.read(a);
    let long = "é".repeat(240);
    w.send(b, &format!("QUIT :{long}\r\n"));
    let got = w.read(a);
    let line = got
        .lines()
        .find(|l| l.contains(" QUIT :Quit: "))
        .unwrap_or_else(|| panic!("no QUIT: {got}"));
    assert!(line.len() + 2 <= 512, "{} bytes", line.len());
    assert!(line.ends_with(&"é".repeat(150)), "{line}");
}

#[test]
fn a_privmsg_that_fits_a_relayed_line_is_relayed_whole_and_a_longer_one_is_417() {
    let (mut w, a, b) = Irc::alice_and_bob();
    w.read(b);
    // What a relayed line leaves for the text: 512 less CR LF and
    // `:alice!alice@confab PRIVMSG #confab :`.
    let room = 512 - 2 - ":alice!alice@confab PRIVMSG #confab :".len();
    let text = "z".repeat(room);
    w.send(a, &format!("PRIVMSG #confab :{text}\r\n"));
    let got = w.read(b);
    let lines: Vec<&str> = got.lines().filter(|l| l.contains("PRIVMSG")).collect();
    assert_eq!(lines.len(), 1, "{got}");
    assert!(lines[0].ends_with(&format!(" :{text}")), "{got}");
    let body = lines[0].split_once(" :alice").map_or("", |(_, rest)| rest);
    assert_eq!(body.len() + ":alice".len() + 2, 512, "{got}");
    w.send(a, &format!("PRIVMSG #confab :{text}z\r\n"));
    assert!(w.read(a).contains(" 417 alice :Input line was too long"));
    assert_eq!(w.read(b), "");
}
