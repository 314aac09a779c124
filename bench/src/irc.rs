//! The bench's clients over IRC (issue 17: confab's fan-out against IRC
//! servers, measured the same way). A client registers with NICK and USER,
//! waits for the 001 welcome, joins `#bench` and waits for the end of its
//! NAMES (366). A sender writes `PRIVMSG #bench :<body>` with the same body
//! as confab's SEND (send time, sender, sequence), followed by
//! `PING :<reference>`: IRC has no ACK, and the server's PONG, answered in
//! order after the PRIVMSG, stands in for it (window and ACK latency work
//! as for confab; the server does one reply per message, as confab does).

use confab_engine::Name;
use futures_lite::AsyncWriteExt;

use crate::body::{put_body, Stamp};
use crate::conn::{err, Client, Login, Reader, Result};

/// The channel every client joins.
pub(crate) const CHANNEL: &str = "#bench";

/// One line from the server, as far as the bench cares.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    /// `PRIVMSG <target> :<text>`.
    Privmsg { target: &'a [u8], text: &'a [u8] },
    /// `PING :<token>`: to be answered with the same token.
    Ping(&'a [u8]),
    /// `PONG <server> :<token>`.
    Pong(&'a [u8]),
    /// A numeric reply and its parameters.
    Numeric(u16, &'a [u8]),
    /// `ERROR :<text>`: the server closes the connection.
    Error(&'a [u8]),
    /// confab's gateway telling a slow reader that this many messages
    /// were not delivered (its MISSED, as a NOTICE), counted as `missed`
    /// the way the confab protocol's MISSED is.
    Missed(u64),
    /// Anything else (JOIN echoes, NOTICEs, MODEs...).
    Other,
}

/// The last parameter of `params`: after ` :` (or a leading `:`), else the
/// last word.
fn last_param(params: &[u8]) -> &[u8] {
    if let Some(rest) = params.strip_prefix(b":") {
        return rest;
    }
    if let Some(i) = params.windows(2).position(|w| w == b" :") {
        return &params[i + 2..];
    }
    params
        .rsplit(|&b| b == b' ')
        .find(|w| !w.is_empty())
        .unwrap_or(params)
}

/// The count of a "N messages to #c were not delivered (ids A to B)"
/// notice (engine/src/irc/replies.rs), if `text` is one.
fn missed(text: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(text).ok()?;
    let (count, rest) = text.split_once(" messages to ")?;
    rest.contains(" were not delivered (ids ")
        .then(|| count.parse().ok())
        .flatten()
}

/// Parses one line (without its line end). Never fails: what it does not
/// recognise is [`Line::Other`].
pub(crate) fn parse(line: &[u8]) -> Line<'_> {
    let mut rest = line;
    if rest.first() == Some(&b':') {
        // The prefix (`:nick!user@host` or `:server`).
        rest = match rest.iter().position(|&b| b == b' ') {
            Some(i) => &rest[i + 1..],
            None => return Line::Other,
        };
    }
    let (command, params) = match rest.iter().position(|&b| b == b' ') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &b""[..]),
    };
    match command {
        b"PRIVMSG" => {
            let target = params.split(|&b| b == b' ').next().unwrap_or_default();
            Line::Privmsg {
                target,
                text: last_param(&params[target.len().min(params.len())..]),
            }
        }
        b"PING" => Line::Ping(last_param(params)),
        b"PONG" => Line::Pong(last_param(params)),
        b"ERROR" => Line::Error(last_param(params)),
        b"NOTICE" => missed(last_param(params)).map_or(Line::Other, Line::Missed),
        [a, b, c] if [a, b, c].iter().all(|d| d.is_ascii_digit()) => Line::Numeric(
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'),
            params,
        ),
        _ => Line::Other,
    }
}

/// Appends a PRIVMSG of a `size`-byte body carrying `stamp`, and the PING
/// whose PONG acknowledges it.
pub(crate) fn encode_privmsg(out: &mut Vec<u8>, reference: u32, size: usize, stamp: Stamp) {
    out.extend_from_slice(b"PRIVMSG ");
    out.extend_from_slice(CHANNEL.as_bytes());
    out.extend_from_slice(b" :");
    put_body(out, size, stamp);
    out.extend_from_slice(b"\r\nPING :");
    out.extend_from_slice(reference.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends the answer to a server's PING.
pub(crate) fn encode_pong(out: &mut Vec<u8>, token: &[u8]) {
    out.extend_from_slice(b"PONG :");
    out.extend_from_slice(token);
    out.extend_from_slice(b"\r\n");
}

/// Connects, registers as `name` and joins [`CHANNEL`]; returns once the
/// server ended the channel's NAMES list. Bounded by the caller's timeout.
pub(crate) async fn login(how: &Login, name: Name) -> Result<Client> {
    let mut stream = how.connector.connect(how.addr, how.source).await?;
    let mut reader = Reader::lines(how.read_buf);
    let nick = name.as_str();
    let hello = format!("NICK {nick}\r\nUSER {nick} 0 * :confab-bench\r\n");
    stream.write_all(hello.as_bytes()).await?;
    let mut out = Vec::new();
    loop {
        let mut joined = false;
        while let Some(line) = reader.next_line() {
            match parse(line) {
                Line::Ping(token) => encode_pong(&mut out, token),
                Line::Numeric(1, _) => {
                    out.extend_from_slice(format!("JOIN {CHANNEL}\r\n").as_bytes())
                }
                Line::Numeric(366, _) => joined = true,
                // ERR_NOMOTD is no error.
                Line::Numeric(422, _) => {}
                Line::Numeric(n @ 400..=599, params) => {
                    return err(format!(
                        "IRC login of {nick}: {n} {}",
                        String::from_utf8_lossy(params)
                    ))
                }
                Line::Error(text) => {
                    return err(format!(
                        "IRC login of {nick}: ERROR {}",
                        String::from_utf8_lossy(text)
                    ))
                }
                _ => {}
            }
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        if joined {
            return Ok(Client {
                stream,
                reader,
                irc: true,
            });
        }
        if reader.fill(&mut stream).await? == 0 {
            return err(format!(
                "the IRC server closed the connection of {nick} during login"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::time::Duration;

    use super::*;
    use crate::conn::Connector;

    #[test]
    fn login_answers_pings_joins_after_the_welcome_and_ends_at_names() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        // A scripted server: PING before the welcome, JOIN only after it.
        let server = std::thread::spawn(move || {
            let (s, _) = listener.accept().expect("accept");
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            let mut w = s.try_clone().expect("clone");
            let mut lines = BufReader::new(s).lines();
            let mut next = || lines.next().expect("a line").expect("read");
            assert_eq!(next(), "NICK b1-0");
            assert!(next().starts_with("USER b1-0 "));
            w.write_all(b"PING :cookie\r\n").expect("write");
            assert_eq!(next(), "PONG :cookie");
            w.write_all(b":srv 001 b1-0 :Welcome\r\n:srv 422 b1-0 :No MOTD\r\n")
                .expect("write");
            assert_eq!(next(), "JOIN #bench");
            w.write_all(b":b1-0!u@h JOIN #bench\r\n:srv 366 b1-0 #bench :End\r\n")
                .expect("write");
        });
        let how = Login {
            connector: Connector::Tcp,
            addr,
            source: None,
            password: "x",
            read_buf: 4096,
            register: true,
            device: false,
            irc: true,
        };
        let name = Name::new("b1-0").expect("name");
        let done = futures_lite::future::block_on(crate::rt::timeout(
            Duration::from_secs(10),
            login(&how, name),
        ));
        assert!(matches!(done, Some(Ok(Client { irc: true, .. }))));
        server.join().expect("the server's script held");
    }

    #[test]
    fn parses_the_lines_the_bench_needs() {
        assert_eq!(
            parse(b":b1-2!~b1-2@localhost PRIVMSG #bench :00ff hello :x"),
            Line::Privmsg {
                target: b"#bench",
                text: b"00ff hello :x"
            }
        );
        assert_eq!(parse(b":irc.local PONG irc.local :42"), Line::Pong(b"42"));
        assert_eq!(parse(b":irc.local PONG irc.local 42"), Line::Pong(b"42"));
        assert_eq!(parse(b"PING :cookie"), Line::Ping(b"cookie"));
        assert_eq!(
            parse(b":irc.local 001 b1 :Welcome"),
            Line::Numeric(1, b"b1 :Welcome")
        );
        assert_eq!(
            parse(b":irc.local 366 b1 #bench :End of NAMES list"),
            Line::Numeric(366, b"b1 #bench :End of NAMES list")
        );
        assert_eq!(parse(b"ERROR :Closing link"), Line::Error(b"Closing link"));
        for junk in [
            &b""[..],
            b":",
            b":only-prefix",
            b"PRIVMSG",
            b"12",
            b"\xff\xfe :",
        ] {
            let _ = parse(junk);
        }
        assert_eq!(parse(b":a!b@c JOIN :#bench"), Line::Other);
        assert_eq!(
            parse(b":confab NOTICE bob :3168 messages to #confab were not delivered (ids 5 to 9000); they are in history"),
            Line::Missed(3168)
        );
        assert_eq!(parse(b":confab NOTICE bob :hello"), Line::Other);
    }

    #[test]
    fn a_privmsg_carries_the_stamp_and_is_acknowledged_by_a_ping() {
        let stamp = Stamp {
            sent_ns: 77,
            sender: 3,
            seq: 9,
        };
        let mut out = Vec::new();
        encode_privmsg(&mut out, 12, 100, stamp);
        let text = String::from_utf8(out).expect("ascii");
        let mut lines = text.split("\r\n");
        let msg = lines.next().expect("PRIVMSG");
        let Line::Privmsg { target, text: body } = parse(msg.as_bytes()) else {
            panic!("{msg}");
        };
        assert_eq!(target, b"#bench");
        assert_eq!(body.len(), 100);
        let body = std::str::from_utf8(body).expect("utf8");
        assert_eq!(Stamp::parse(body), Some(stamp));
        assert_eq!(lines.next(), Some("PING :12"));
        assert_eq!(lines.next(), Some(""));
    }
}
