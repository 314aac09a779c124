//! The IRC gateway through the hub: lines in, lines out, over the
//! in-memory store, on virtual time.

use std::collections::VecDeque;
use std::time::Instant;

mod sasl_chunks;
mod targets;

use super::util::name;
use crate::irc::{IrcConfig, IrcProtocols};
use crate::shared::Outgoing;
use crate::store::Store;
use crate::testing::MemoryStore;
use crate::{Config, ConnId, Effect, Hub, MessageId, Output, Source};

/// Asserts that `got` has `first`, and `then` after it.
#[track_caller]
fn assert_before(got: &str, first: &str, then: &str) {
    let a = got
        .find(first)
        .unwrap_or_else(|| panic!("no {first:?} in {got}"));
    let b = got
        .find(then)
        .unwrap_or_else(|| panic!("no {then:?} in {got}"));
    assert!(a < b, "{first:?} is not before {then:?}: {got}");
}

pub(super) struct Irc {
    pub(super) hub: Hub,
    store: MemoryStore,
    pub(super) now: Instant,
    protocols: IrcProtocols,
    hold: bool,
    held: VecDeque<Effect>,
}

impl Irc {
    pub(super) fn new(users: &[&str]) -> Irc {
        Irc::with(users, IrcConfig::default())
    }

    pub(super) fn with(users: &[&str], config: IrcConfig) -> Irc {
        let mut hub = Hub::new(Config::default(), [], MessageId(0));
        let protocols = hub
            .add_irc(config)
            .unwrap_or_else(|| panic!("room for IRC"));
        let mut store = MemoryStore::default();
        for u in users {
            let _ = store.create_account(&name(u), "pw");
        }
        Irc {
            hub,
            store,
            now: Instant::now(),
            protocols,
            hold: false,
            held: VecDeque::new(),
        }
    }

    pub(super) fn run(&mut self) {
        while let Some(out) = self.hub.poll_output() {
            if let Output::Effect(e) = out {
                if self.hold {
                    self.held.push_back(e);
                    continue;
                }
                for input in self.store.run(e) {
                    self.hub.handle_input(self.now, input);
                }
            }
        }
    }

    pub(super) fn release(&mut self) {
        self.hold = false;
        while let Some(e) = self.held.pop_front() {
            for input in self.store.run(e) {
                self.hub.handle_input(self.now, input);
            }
        }
        self.run();
    }

    pub(super) fn connect(&mut self) -> ConnId {
        self.hub.connect(self.now, Source(1), self.protocols.plain)
    }

    pub(super) fn send(&mut self, conn: ConnId, lines: &str) {
        let used = self.hub.handle_bytes(self.now, conn, lines.as_bytes());
        assert_eq!(used, lines.len(), "every line is taken");
        self.run();
    }

    /// Lets `conn`'s timers run once its next deadline (a PONG's grace) is
    /// reached, as the shell's timer does.
    pub(super) fn timers(&mut self, conn: ConnId) {
        if let Some(t) = self.hub.poll_timeout(conn) {
            self.now = self.now.max(t);
        }
        self.hub.handle_timeout(self.now, conn);
        self.run();
    }

    pub(super) fn read(&mut self, conn: ConnId) -> String {
        let mut out: Vec<Outgoing> = Vec::new();
        loop {
            let d = self.hub.drain(conn, &mut out, 64 * 1024);
            self.run();
            if d.bytes == 0 {
                break;
            }
        }
        // A writer is never handed nothing to write.
        assert!(out.iter().all(|o| !o.is_empty()), "an empty write");
        out.iter()
            .map(|o| String::from_utf8_lossy(o).into_owned())
            .collect()
    }

    /// Alice and Bob logged in (with `login`), Alice having read Bob's
    /// arrival: the start of most two-user tests.
    pub(super) fn alice_and_bob() -> (Irc, ConnId, ConnId) {
        let mut w = Irc::new(&["alice", "bob"]);
        let a = w.login("alice");
        let b = w.login("bob");
        w.read(a);
        (w, a, b)
    }

    /// Logs `user` in with SASL PLAIN and message-tags, echo-message.
    pub(super) fn login(&mut self, user: &str) -> ConnId {
        self.login_with(
            user,
            "sasl message-tags server-time echo-message labeled-response batch",
        )
    }

    /// Logs `user` in with SASL PLAIN and these caps.
    pub(super) fn login_with(&mut self, user: &str, caps: &str) -> ConnId {
        let c = self.connect();
        self.send(c, "CAP LS 302\r\n");
        self.send(c, &format!("NICK {user}\r\nUSER u 0 * :real\r\n"));
        self.send(c, &format!("CAP REQ :{caps}\r\n"));
        self.send(c, "AUTHENTICATE PLAIN\r\n");
        let response = format!("\0{user}\0pw");
        self.send(c, &format!("AUTHENTICATE {}\r\n", b64(response.as_bytes())));
        let got = self.read(c);
        assert!(got.contains(" 903 "), "{got}");
        self.send(c, "CAP END\r\n");
        let got = self.read(c);
        assert!(got.contains(" 001 "), "{got}");
        c
    }
}

fn b64(b: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

#[test]
fn a_client_logs_in_with_sasl_and_is_welcomed_in_the_room() {
    let mut w = Irc::new(&["alice"]);
    let c = w.connect();
    w.send(c, "CAP LS 302\r\nNICK alice\r\nUSER a 0 * :A\r\n");
    let got = w.read(c);
    assert!(got.contains("CAP * LS :"), "{got}");
    assert!(got.contains("sasl=PLAIN"), "{got}");
    assert!(!got.contains(" 001 "), "no welcome during CAP: {got}");
    w.send(c, "CAP REQ :sasl\r\nAUTHENTICATE PLAIN\r\n");
    assert_eq!(
        w.read(c),
        ":confab CAP alice ACK :sasl\r\nAUTHENTICATE +\r\n"
    );
    w.send(c, &format!("AUTHENTICATE {}\r\n", b64(b"\0alice\0pw")));
    let got = w.read(c);
    assert!(
        got.contains(":confab 900 alice alice!alice@confab alice :"),
        "{got}"
    );
    assert!(got.contains(":confab 903 alice :"), "{got}");
    w.send(c, "CAP END\r\n");
    let got = w.read(c);
    assert!(got.starts_with(":confab 001 alice :Welcome"), "{got}");
    assert!(
        got.contains(":alice!alice@confab JOIN #confab\r\n"),
        "{got}"
    );
    assert!(
        got.contains(":confab 353 alice = #confab :alice\r\n"),
        "{got}"
    );
}

#[test]
fn a_wrong_sasl_password_is_904_and_the_client_may_try_again() {
    let mut w = Irc::new(&["alice"]);
    let c = w.connect();
    w.send(
        c,
        "CAP LS 302\r\nNICK alice\r\nUSER a 0 * :A\r\nCAP REQ :sasl\r\n",
    );
    w.send(
        c,
        &format!(
            "AUTHENTICATE PLAIN\r\nAUTHENTICATE {}\r\n",
            b64(b"\0alice\0no")
        ),
    );
    let got = w.read(c);
    assert!(
        got.contains(" 904 alice :SASL authentication failed"),
        "{got}"
    );
}

#[test]
fn room_messages_reach_the_others_and_echo_to_the_sender_with_its_label() {
    let (mut w, a, b) = Irc::alice_and_bob();
    w.send(a, "@label=x1 PRIVMSG #confab :hello bob\r\n");
    let echo = w.read(a);
    assert!(echo.starts_with("@label=x1;time="), "{echo}");
    assert!(
        echo.contains(";msgid=1;account=alice :alice!alice@confab PRIVMSG #confab :hello bob\r\n"),
        "{echo}"
    );
    let got = w.read(b);
    assert!(
        got.contains("msgid=1;account=alice :alice!alice@confab PRIVMSG #confab :hello bob\r\n"),
        "{got}"
    );
}

#[test]
fn a_pong_waits_for_messages_stored_before_its_ping() {
    let (mut w, a, b) = Irc::alice_and_bob();
    w.hold = true;
    w.send(a, "PRIVMSG bob :first\r\n");
    w.send(b, "PING :sync\r\n");
    w.timers(b);
    assert_eq!(w.read(b), "", "the PONG waits for the store");
    w.release();
    let got = w.read(b);
    assert_before(&got, "PRIVMSG bob :first", "PONG confab :sync");
}

#[test]
fn a_pong_waits_its_grace_for_a_message_read_just_after_its_ping() {
    let (mut w, a, b) = Irc::alice_and_bob();
    let ping_at = w.now;
    w.send(b, "PING :sync\r\n");
    assert_eq!(
        w.hub.poll_timeout(b),
        Some(ping_at + IrcConfig::default().pong_grace),
        "the grace is the session's next deadline"
    );
    assert_eq!(w.read(b), "", "no PONG within the grace");
    // Alice's line, sent before bob's PING but read after it.
    w.hold = true;
    w.send(a, "PRIVMSG bob :first\r\n");
    w.timers(b);
    assert_eq!(
        w.read(b),
        "",
        "after the grace, the PONG waits for the store"
    );
    w.release();
    let got = w.read(b);
    assert_before(&got, "PRIVMSG bob :first", "PONG confab :sync");
}

#[test]
fn a_pong_without_a_grace_is_answered_at_once() {
    let config = IrcConfig {
        pong_grace: std::time::Duration::ZERO,
        ..IrcConfig::default()
    };
    let mut w = Irc::with(&["bob"], config);
    let b = w.login("bob");
    w.send(b, "PING :now\r\n");
    assert!(w.read(b).contains("PONG confab :now"));
}

#[test]
fn authenticate_after_registration_is_462_without_sasl_and_907_with_it() {
    let mut w = Irc::new(&["alice", "bob"]);
    let a = w.login("alice");
    let b = w.connect();
    w.send(b, "PASS pw\r\nNICK bob\r\nUSER u 0 * :r\r\n");
    assert!(w.read(b).contains(" 001 bob "));
    w.send(b, "AUTHENTICATE PLAIN\r\n");
    assert_eq!(w.read(b), ":confab 462 bob :You may not reregister\r\n");
    w.send(a, "AUTHENTICATE PLAIN\r\n");
    assert!(w.read(a).contains(" 907 alice "));
}

#[test]
fn a_sasl_password_over_the_limit_is_904_saying_why() {
    let mut w = Irc::new(&["alice"]);
    let c = w.connect();
    w.send(c, "CAP REQ :sasl\r\nAUTHENTICATE PLAIN\r\n");
    w.read(c);
    let response = format!("\0alice\0{}", "x".repeat(400));
    let encoded = b64(response.as_bytes());
    let (first, rest) = encoded.split_at(400);
    w.send(
        c,
        &format!("AUTHENTICATE {first}\r\nAUTHENTICATE {rest}\r\n"),
    );
    let got = w.read(c);
    assert!(
        got.contains(" 904 * :SASL authentication failed: passwords are at most 255 bytes"),
        "{got}"
    );
}

#[test]
fn account_tag_without_message_tags_tags_messages_with_the_account_only() {
    let mut w = Irc::new(&["alice", "bob", "carol"]);
    let a = w.login("alice");
    let b = w.login_with("bob", "sasl account-tag");
    let c = w.login_with("carol", "sasl account-tag server-time");
    w.read(b);
    w.send(a, "PRIVMSG bob :hi\r\nPRIVMSG carol :hey\r\n");
    assert_eq!(
        w.read(b),
        "@account=alice :alice!alice@confab PRIVMSG bob :hi\r\n"
    );
    let got = w.read(c);
    assert!(got.starts_with("@time="), "{got}");
    assert!(
        got.ends_with(";account=alice :alice!alice@confab PRIVMSG carol :hey\r\n"),
        "{got}"
    );
    assert!(!got.contains("msgid"), "{got}");
}

#[test]
fn register_before_connecting_makes_the_account_and_logs_in_to_it() {
    let mut w = Irc::new(&["alice"]);
    let c = w.connect();
    w.send(c, "CAP LS 302\r\n");
    let caps = w.read(c);
    assert!(
        caps.contains("draft/account-registration=before-connect"),
        "{caps}"
    );
    w.send(c, "CAP REQ :draft/account-registration\r\nNICK dan\r\n");
    w.read(c);
    w.send(c, "REGISTER other * secret\r\n");
    assert_eq!(
        w.read(c),
        ":confab FAIL REGISTER ACCOUNT_NAME_MUST_BE_NICK other :The account name must be your nick\r\n"
    );
    w.send(c, "REGISTER * * secret\r\n");
    assert!(w
        .read(c)
        .contains(":confab REGISTER SUCCESS dan :Account created\r\n"));
    w.send(c, "USER u 0 * :r\r\nCAP END\r\n");
    assert!(w.read(c).contains(" 001 dan "));
    w.send(c, "REGISTER * * again\r\n");
    assert!(w
        .read(c)
        .contains("FAIL REGISTER ALREADY_AUTHENTICATED dan "));
    // Another name is refused as not the nick, logged in or not.
    w.send(c, "REGISTER other * again\r\n");
    assert!(w
        .read(c)
        .contains("FAIL REGISTER ACCOUNT_NAME_MUST_BE_NICK other "));
    // The account is there for the next login, with that password.
    let d = w.connect();
    w.send(d, "PASS dan:secret\r\nNICK dan\r\nUSER u 0 * :r\r\n");
    assert!(w.read(d).contains(" 001 dan "));
}

#[test]
fn a_pong_after_register_waits_for_its_answer() {
    let mut w = Irc::new(&[]);
    let c = w.connect();
    w.hold = true;
    w.send(c, "NICK dan\r\nREGISTER * * secret\r\nPING :sync\r\n");
    w.timers(c);
    assert_eq!(w.read(c), "", "the PONG waits for the registration");
    w.release();
    let got = w.read(c);
    assert_before(&got, "REGISTER SUCCESS dan", "PONG confab :sync");
}

#[test]
fn register_of_a_taken_name_is_account_exists_and_the_client_stays() {
    let mut w = Irc::new(&["alice"]);
    let c = w.connect();
    w.send(c, "NICK alice\r\nREGISTER alice * secret\r\n");
    assert_eq!(
        w.read(c),
        ":confab FAIL REGISTER ACCOUNT_EXISTS alice :the name alice is taken\r\n"
    );
    w.send(c, "PASS pw\r\nUSER u 0 * :r\r\n");
    assert!(w.read(c).contains(" 001 alice "));
}

#[test]
fn a_sasl_chunk_over_400_bytes_is_905_and_a_response_over_1200_is_904() {
    let mut w = Irc::new(&["alice"]);
    let c = w.connect();
    w.send(c, "CAP REQ :sasl\r\nAUTHENTICATE PLAIN\r\n");
    w.read(c);
    w.send(c, &format!("AUTHENTICATE {}\r\n", "A".repeat(401)));
    assert!(w.read(c).contains(" 905 * :SASL message too long"));
    w.send(c, "AUTHENTICATE PLAIN\r\n");
    w.read(c);
    let chunk = format!("AUTHENTICATE {}\r\n", "A".repeat(400));
    for _ in 0..3 {
        w.send(c, &chunk);
    }
    assert_eq!(w.read(c), "", "1200 bytes are still read");
    w.send(c, &chunk);
    assert!(w
        .read(c)
        .contains(" 904 * :SASL authentication failed: the response is too long"));
}

#[test]
fn groups_are_channels_joined_and_parted() {
    let (mut w, a, b) = Irc::alice_and_bob();
    w.send(a, "JOIN #team\r\n");
    let got = w.read(a);
    assert!(got.contains(":alice!alice@confab JOIN #team\r\n"), "{got}");
    assert!(got.contains(" 366 alice #team :"), "{got}");
    w.read(b);
    w.send(b, "JOIN #team\r\n");
    let got = w.read(a);
    assert!(got.contains(":bob!bob@confab JOIN #team\r\n"), "{got}");
    w.send(b, "PART #team\r\n");
    assert!(w.read(b).contains(":bob!bob@confab PART #team\r\n"));
    assert!(w.read(a).contains(":bob!bob@confab PART #team\r\n"));
}

#[test]
fn a_line_too_long_is_417_and_bad_utf8_is_a_fail() {
    let mut w = Irc::new(&["alice"]);
    let a = w.login("alice");
    let long = format!("PRIVMSG #confab :{}\r\n", "x".repeat(600));
    w.send(a, &long);
    assert!(w.read(a).contains(" 417 alice :Input line was too long"));
    let used = w.hub.handle_bytes(w.now, a, b"PRIVMSG #confab :\xff\r\n");
    assert_eq!(used, 20);
    w.run();
    assert!(w.read(a).contains("FAIL * INVALID_UTF8"));
}

#[test]
fn invite_is_relayed_to_the_invitee_with_the_inviters_account_and_341_to_the_inviter() {
    let (mut w, a, b) = Irc::alice_and_bob();
    w.send(a, "JOIN #team\r\n");
    w.read(a);
    w.read(b);
    w.send(a, "INVITE bob #team\r\n");
    assert!(w.read(a).contains(" 341 alice bob #team\r\n"));
    let got = w.read(b);
    assert!(
        got.contains("@account=alice :alice!alice@confab INVITE bob #team\r\n"),
        "{got}"
    );
    // It grants nothing: bob is not in #team until he joins.
    w.send(b, "JOIN #team\r\n");
    w.send(a, "INVITE bob #team\r\n");
    assert!(w.read(a).contains(" 443 alice bob #team :"));
}

#[test]
fn invite_is_refused_with_the_standard_numerics() {
    let (mut w, a, b) = Irc::alice_and_bob();
    w.send(b, "JOIN #team\r\n");
    w.read(a);
    w.send(a, "INVITE nobody #team\r\n");
    assert!(w.read(a).contains(" 401 alice nobody :"));
    w.send(a, "INVITE bob #nowhere\r\n");
    assert!(w.read(a).contains(" 403 alice #nowhere :"));
    w.send(a, "INVITE bob #team\r\n");
    assert!(w.read(a).contains(" 442 alice #team :"));
    w.send(a, "INVITE bob\r\n");
    assert!(w.read(a).contains(" 461 alice INVITE :"));
    assert!(!w.read(b).contains("INVITE"));
}

#[test]
fn a_quit_reason_reaches_the_others_and_a_quit_without_one_is_offline() {
    let (mut w, a, b) = Irc::alice_and_bob();
    w.read(b);
    w.send(b, "QUIT :gone fishing\r\n");
    assert!(w.read(b).contains("ERROR :"));
    let got = w.read(a);
    assert!(
        got.contains(":bob!bob@confab QUIT :Quit: gone fishing\r\n"),
        "{got}"
    );
    // Back, and gone without a reason.
    let b = w.login("bob");
    w.read(a);
    w.send(b, "QUIT\r\n");
    let got = w.read(a);
    assert!(got.contains(":bob!bob@confab QUIT :offline\r\n"), "{got}");
}

#[test]
fn a_long_confab_body_is_split_for_irc_readers() {
    let (mut w, a, b) = Irc::alice_and_bob();
    let body = "y".repeat(1000);
    let s = w.hub.handle_request(
        w.now,
        a,
        crate::Request::Send {
            reference: crate::Ref(900),
            target: crate::Target::Room,
            body: &body,
            kind: crate::MessageKind::Message,
            tags: crate::ClientTags::default(),
        },
    );
    assert!(s);
    w.run();
    let got = w.read(b);
    let lines: Vec<&str> = got.lines().filter(|l| l.contains("PRIVMSG")).collect();
    assert!(lines.len() >= 3, "{got}");
    assert!(lines.iter().all(|l| l.len() <= 512 + 200), "{got}");
}

#[test]
fn a_room_message_to_irc_readers_of_one_tag_set_is_one_shared_encoding() {
    let mut w = Irc::new(&["alice", "bob", "carol"]);
    let a = w.login("alice");
    let b = w.login("bob");
    let c = w.login("carol");
    for conn in [a, b, c] {
        w.read(conn);
    }
    w.send(a, "PRIVMSG #confab :one encoding\r\n");
    let mut got = Vec::new();
    for conn in [b, c] {
        let mut out: Vec<Outgoing> = Vec::new();
        while w.hub.drain(conn, &mut out, 64 * 1024).bytes > 0 {}
        let message = out
            .into_iter()
            .find(|o| String::from_utf8_lossy(o).contains("one encoding"));
        got.push(message.unwrap_or_else(|| panic!("no message for {conn:?}")));
    }
    assert!(got[0].same_bytes(&got[1]), "both readers share the bytes");
}

#[test]
fn with_a_quiet_room_presence_is_not_shown_and_nothing_empty_is_written() {
    let quiet = IrcConfig {
        room_presence: false,
        ..IrcConfig::default()
    };
    let mut w = Irc::with(&["alice", "bob"], quiet);
    let a = w.login("alice");
    w.read(a);
    let b = w.login("bob");
    w.read(b);
    let got = w.read(a);
    assert!(!got.contains("JOIN"), "{got}");
    w.send(b, "PRIVMSG #confab :still here\r\n");
    assert!(w.read(a).contains("PRIVMSG #confab :still here"));
}

#[test]
fn a_notice_stays_a_notice_live_in_its_echo_and_in_history() {
    let (mut w, a, b) = Irc::alice_and_bob();
    w.send(a, "@+draft/reply=7 NOTICE #confab :heads up\r\n");
    let echo = w.read(a);
    assert!(
        echo.contains(";+draft/reply=7 :alice!alice@confab NOTICE #confab :heads up\r\n"),
        "{echo}"
    );
    let got = w.read(b);
    assert!(
        got.contains(";+draft/reply=7 :alice!alice@confab NOTICE #confab :heads up\r\n"),
        "{got}"
    );
    // The kind is stored; the client tags are not.
    w.send(b, "CHATHISTORY LATEST #confab * 10\r\n");
    let page = w.read(b);
    assert!(
        page.contains("account=alice :alice!alice@confab NOTICE #confab :heads up\r\n"),
        "{page}"
    );
    assert!(!page.contains("+draft/reply"), "{page}");
}

#[test]
fn a_notice_that_cannot_be_delivered_is_not_answered() {
    let mut w = Irc::new(&["alice"]);
    let a = w.login("alice");
    w.send(a, "NOTICE #nowhere :hello\r\nPRIVMSG #nowhere :hello\r\n");
    let got = w.read(a);
    assert_eq!(got.matches(" 404 ").count(), 1, "{got}");
}

#[test]
fn a_tagmsg_is_relayed_live_and_not_stored() {
    let (mut w, a, b) = Irc::alice_and_bob();
    w.send(a, "@label=t1;+typing=active TAGMSG bob\r\n");
    let echo = w.read(a);
    assert!(
        echo.starts_with("@label=t1;+typing=active;msgid="),
        "{echo}"
    );
    assert!(
        echo.ends_with(":alice!alice@confab TAGMSG bob\r\n"),
        "{echo}"
    );
    let got = w.read(b);
    assert!(got.starts_with("@+typing=active;msgid="), "{got}");
    assert!(got.ends_with(";account=alice :alice!alice@confab TAGMSG bob\r\n"));
    w.send(b, "CHATHISTORY LATEST alice * 10\r\n");
    assert!(!w.read(b).contains("TAGMSG"));
    let too_many = format!("@+k={} TAGMSG bob\r\n", "v".repeat(4092));
    w.send(a, &too_many);
    assert!(w.read(a).contains(" 417 "));
    assert_eq!(w.read(b), "");
}

#[test]
fn a_part_reason_reaches_the_members_and_the_creator_is_an_operator() {
    let (mut w, a, b) = Irc::alice_and_bob();
    w.send(a, "JOIN #team\r\n");
    w.read(a);
    w.send(b, "JOIN #team\r\n");
    let got = w.read(b);
    assert!(got.contains(" 353 bob = #team :@alice bob\r\n"), "{got}");
    w.read(a);
    w.send(b, "PART #team :see you\r\n");
    assert!(w
        .read(b)
        .contains(":bob!bob@confab PART #team :see you\r\n"));
    assert!(w
        .read(a)
        .contains(":bob!bob@confab PART #team :see you\r\n"));
}

#[test]
fn a_labeled_join_of_several_channels_is_one_labeled_batch() {
    let mut w = Irc::new(&["alice"]);
    let a = w.login("alice");
    w.send(a, "@label=j1 JOIN #one,inv@lid,#two\r\n");
    let got = w.read(a);
    assert_eq!(got.matches("label=j1").count(), 1, "{got}");
    assert!(got.starts_with("@label=j1 :confab BATCH +"), "{got}");
    for part in [" 403 alice inv@lid ", " JOIN #one\r\n", " JOIN #two\r\n"] {
        assert!(got.contains(part), "{part}: {got}");
    }
    assert!(got.contains(":confab BATCH -"), "{got}");
}
