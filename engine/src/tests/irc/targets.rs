//! CHATHISTORY TARGETS through the gateway, each message committed at a
//! time of the test's choosing.

use super::Irc;
use crate::testing::answer;
use crate::ConnId;

/// Sends `line` from `conn` with its message committed at `ms`.
fn at(w: &mut Irc, ms: u64, conn: ConnId, line: &str) {
    w.hold = true;
    w.send(conn, line);
    w.hold = false;
    while let Some(e) = w.held.pop_front() {
        for input in answer(&mut w.store, e, ms) {
            w.hub.handle_input(w.now, input);
        }
    }
    w.run();
}

/// The `(target, time)` of each TARGETS line of `got`, in order.
fn listed(got: &str) -> Vec<(String, String)> {
    got.lines()
        .filter_map(|l| l.split_once(" CHATHISTORY TARGETS "))
        .map(|(_, rest)| {
            let (t, time) = rest.split_once(' ').unwrap_or((rest, ""));
            (t.to_owned(), time.to_owned())
        })
        .collect()
}

fn names(got: &str) -> Vec<String> {
    listed(got).into_iter().map(|(t, _)| t).collect()
}

/// Alice in the room, #team, DMs with Bob and Carol; Bob and Carol's
/// own DM she cannot read, written last.
fn conversations() -> (Irc, ConnId) {
    let mut w = Irc::new(&["alice", "bob", "carol"]);
    let a = w.login("alice");
    let b = w.login("bob");
    let c = w.login("carol");
    w.send(a, "JOIN #team\r\n");
    at(&mut w, 1_000, a, "PRIVMSG #confab :room\r\n");
    at(&mut w, 2_000, a, "PRIVMSG bob :hi\r\n");
    at(&mut w, 3_000, a, "PRIVMSG #team :team\r\n");
    at(&mut w, 4_000, c, "PRIVMSG alice :yo\r\n");
    at(&mut w, 5_000, b, "PRIVMSG carol :secret\r\n");
    w.read(a);
    (w, a)
}

#[test]
fn targets_lists_what_the_user_reads_by_latest_message_earliest_first_in_a_batch() {
    let (mut w, a) = conversations();
    w.send(a, "@label=t1 CHATHISTORY TARGETS * * 10\r\n");
    let got = w.read(a);
    // One labeled batch around the targets batch.
    assert!(got.starts_with("@label=t1 :confab BATCH +L"), "{got}");
    assert!(
        got.contains(" :confab BATCH +T6 draft/chathistory-targets\r\n"),
        "{got}"
    );
    let time = |s: u64| format!("1970-01-01T00:00:0{s}.000Z");
    let expected: Vec<(String, String)> = [("#confab", 1), ("bob", 2), ("#team", 3), ("carol", 4)]
        .into_iter()
        .map(|(t, s)| (t.to_owned(), time(s)))
        .collect();
    assert_eq!(listed(&got), expected, "{got}");
    assert_eq!(got.matches("@batch=T6 ").count(), 4, "{got}");
    assert!(got.contains(" :confab BATCH -T6\r\n"), "{got}");
}

#[test]
fn targets_bounds_are_exclusive_in_either_order_and_the_limit_keeps_the_earliest() {
    let (mut w, a) = conversations();
    let (from, to) = (
        "timestamp=1970-01-01T00:00:01.000Z",
        "timestamp=1970-01-01T00:00:04.000Z",
    );
    w.send(a, &format!("CHATHISTORY TARGETS {from} {to} 10\r\n"));
    assert_eq!(names(&w.read(a)), ["bob", "#team"]);
    w.send(a, &format!("CHATHISTORY TARGETS {to} {from} 10\r\n"));
    assert_eq!(names(&w.read(a)), ["bob", "#team"]);
    w.send(a, "CHATHISTORY TARGETS * * 2\r\n");
    assert_eq!(names(&w.read(a)), ["#confab", "bob"]);
}

#[test]
fn targets_leaves_out_a_conversation_written_to_after_the_window() {
    let (mut w, a) = conversations();
    at(&mut w, 6_000, a, "PRIVMSG bob :again\r\n");
    w.read(a);
    w.send(
        a,
        "CHATHISTORY TARGETS * timestamp=1970-01-01T00:00:05.000Z 10\r\n",
    );
    assert_eq!(names(&w.read(a)), ["#confab", "#team", "carol"]);
}

#[test]
fn targets_with_a_bad_bound_is_refused_as_invalid_params() {
    let (mut w, a) = conversations();
    w.send(a, "CHATHISTORY TARGETS msgid=3 * 10\r\n");
    let got = w.read(a);
    assert!(
        got.contains("FAIL CHATHISTORY INVALID_PARAMS TARGETS"),
        "{got}"
    );
}
