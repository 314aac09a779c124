//! SASL PLAIN responses that take more than one AUTHENTICATE: the longest
//! a confab account allows (names of 32 bytes, a password of 255) is
//! past one 400-byte chunk, and one of exactly 400 ends with `+`.

use super::{b64, name, Irc};
use crate::password::Password;
use crate::store::Store;

/// Logs `user` in by SASL with `authzid`, `user` and `password`, the
/// response sent in 400-byte chunks as the spec says (and `+` after a
/// last chunk of exactly 400); what the server answered the last chunk.
fn sasl_in_chunks(w: &mut Irc, user: &str, password: &str) -> String {
    let c = w.connect();
    w.send(
        c,
        &format!(
            "CAP LS 302\r\nNICK {user}\r\nUSER a 0 * :A\r\nCAP REQ :sasl\r\nAUTHENTICATE PLAIN\r\n"
        ),
    );
    let got = w.read(c);
    assert!(got.contains("AUTHENTICATE +\r\n"), "{got}");
    let encoded = b64(format!("{user}\0{user}\0{password}").as_bytes());
    let chunks: Vec<&str> = encoded
        .as_bytes()
        .chunks(400)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    let (last, first) = chunks.split_last().expect("a response");
    for chunk in first {
        w.send(c, &format!("AUTHENTICATE {chunk}\r\n"));
        let got = w.read(c);
        assert!(
            !got.contains(" 90"),
            "answered before the last chunk: {got}"
        );
    }
    w.send(c, &format!("AUTHENTICATE {last}\r\n"));
    if last.len() == 400 {
        let got = w.read(c);
        assert!(!got.contains(" 90"), "answered before the +: {got}");
        w.send(c, "AUTHENTICATE +\r\n");
    }
    w.read(c)
}

#[test]
fn the_longest_name_and_password_log_in_over_two_chunks() {
    let user = "a".repeat(32);
    let password = "p".repeat(Password::MAX_LEN);
    let mut w = Irc::new(&[]);
    assert!(w
        .store
        .create_account(&name(&user), &password)
        .expect("made"));
    let encoded_len = b64(format!("{user}\0{user}\0{password}").as_bytes()).len();
    assert!(encoded_len > 400, "one chunk: {encoded_len}");
    let got = sasl_in_chunks(&mut w, &user, &password);
    assert!(got.contains(&format!(" 903 {user} :")), "{got}");
}

#[test]
fn a_response_of_exactly_400_bytes_logs_in_after_the_plus() {
    // 22 + 1 + 22 + 1 + 254 = 300 bytes, 400 in base64.
    let user = "b".repeat(22);
    let password = "q".repeat(254);
    let mut w = Irc::new(&[]);
    assert!(w
        .store
        .create_account(&name(&user), &password)
        .expect("made"));
    assert_eq!(
        b64(format!("{user}\0{user}\0{password}").as_bytes()).len(),
        400
    );
    let got = sasl_in_chunks(&mut w, &user, &password);
    assert!(got.contains(&format!(" 903 {user} :")), "{got}");
}
