//! IRC lines: the parser of what a client sends, and the writer of what
//! the server sends.
//!
//! A line is `[@tags] [:source] COMMAND [params...] [:trailing]` ended by
//! LF (CR LF in practice; a lone CR before the LF is dropped). The parser
//! borrows every part from the input and allocates nothing but the
//! parameter list, which is bounded ([`MAX_PARAMS`]). Limits follow the
//! IRCv3 message-tags specification: at most [`MAX_TAGS_LEN`] bytes of
//! tags from a client, and [`MAX_BODY_LEN`] bytes for the rest, CR LF
//! included. A longer line is an error the caller answers with 417
//! (`ERR_INPUTTOOLONG`) and skips; bytes that are not UTF-8 are an error
//! the caller answers with a FAIL, never a panic.

use std::fmt::Write as _;

/// Most bytes of tags a client may send, the `@` and the space after
/// them included (so 4094 of tag data).
pub const MAX_TAGS_LEN: usize = 4096;
/// Most bytes of the rest of a line, CR LF included (RFC 1459's 512).
pub const MAX_BODY_LEN: usize = 512;
/// The longest line a client may send, tags, body and CR LF.
pub const MAX_LINE: usize = MAX_TAGS_LEN + 1 + MAX_BODY_LEN;
/// Most parameters a line carries (RFC 2812 allows 15).
pub const MAX_PARAMS: usize = 15;

/// Why a line could not be read (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// Longer than the limits; `len` bytes (to the LF, or all so far).
    #[error("input line too long")]
    TooLong {
        /// Bytes of the line, LF included if it was found.
        len: usize,
        /// Whether its end (LF) was found: if not, skip to the next LF.
        ended: bool,
    },
    /// Not UTF-8.
    #[error("input line is not valid UTF-8")]
    NotUtf8 {
        /// Bytes of the line, LF included.
        len: usize,
    },
}

/// One client line, borrowed from the input (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line<'a> {
    /// The raw tags without the `@`, or empty.
    pub tags: &'a str,
    /// The command, as sent (compare ignoring case).
    pub command: &'a str,
    /// The parameters, the trailing one last.
    pub params: Vec<&'a str>,
}

impl<'a> Line<'a> {
    /// The `i`th parameter, or empty.
    pub fn param(&self, i: usize) -> &'a str {
        self.params.get(i).copied().unwrap_or("")
    }

    /// The value of client tag `key` (unescaped values are not needed:
    /// the server reads only `label`, whose value has no escapes).
    pub fn tag(&self, key: &str) -> Option<&'a str> {
        self.tags.split(';').find_map(|t| {
            let (k, v) = t.split_once('=').unwrap_or((t, ""));
            (k == key).then_some(v)
        })
    }
}

/// What [`parse`] found at the front of the input.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// No LF yet, and not too long: wait for more.
    Incomplete,
    /// An empty line (ignored), this long.
    Empty(usize),
    /// A line, this many bytes long with its LF.
    Line(Line<'a>, usize),
}

/// Reads the line at the front of `input` (see the module docs).
pub fn parse(input: &[u8]) -> Result<Parsed<'_>, LineError> {
    let Some(lf) = input.iter().position(|&b| b == b'\n') else {
        if input.len() > MAX_LINE {
            return Err(LineError::TooLong {
                len: input.len(),
                ended: false,
            });
        }
        return Ok(Parsed::Incomplete);
    };
    let len = lf + 1;
    let mut raw = &input[..lf];
    if let [rest @ .., b'\r'] = raw {
        raw = rest;
    }
    let text = std::str::from_utf8(raw).map_err(|_| LineError::NotUtf8 { len })?;
    let (tags, body) = split_tags(text);
    // `tags` is without its `@` and space.
    if tags.len() + 2 > MAX_TAGS_LEN || body.len() + 2 > MAX_BODY_LEN {
        return Err(LineError::TooLong { len, ended: true });
    }
    Ok(match parse_body(tags, body) {
        Some(line) => Parsed::Line(line, len),
        None => Parsed::Empty(len),
    })
}

/// Splits `@tags rest` into the tags (without `@`) and the rest.
fn split_tags(text: &str) -> (&str, &str) {
    match text.strip_prefix('@') {
        Some(t) => t.split_once(' ').unwrap_or((t, "")),
        None => ("", text),
    }
}

/// The command and parameters of `body`; `None` if there is no command.
fn parse_body<'a>(tags: &'a str, body: &'a str) -> Option<Line<'a>> {
    let mut rest = body.trim_start_matches(' ');
    if rest.starts_with(':') {
        // A source prefix from a client is ignored.
        rest = rest.split_once(' ').map_or("", |(_, r)| r);
        rest = rest.trim_start_matches(' ');
    }
    let (command, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
    if command.is_empty() {
        return None;
    }
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() || params.len() == MAX_PARAMS {
            break;
        }
        if let Some(trailing) = rest.strip_prefix(':') {
            params.push(trailing);
            break;
        }
        let (p, r) = rest.split_once(' ').unwrap_or((rest, ""));
        params.push(p);
        rest = r;
    }
    Some(Line {
        tags,
        command,
        params,
    })
}

/// A server line being written: tags, source, command, parameters, then
/// [`Out::end`] adds CR LF. The last parameter is always written as a
/// trailing one when it needs to be (empty, a space, or a leading `:`).
pub struct Out<'a> {
    buf: &'a mut Vec<u8>,
    tags: bool,
}

impl<'a> Out<'a> {
    /// Starts a line in `buf`.
    pub fn new(buf: &'a mut Vec<u8>) -> Out<'a> {
        Out { buf, tags: false }
    }

    /// Adds a tag (`value` must need no escaping: ids, times, names).
    pub fn tag(mut self, key: &str, value: &str) -> Self {
        self.buf.push(if self.tags { b';' } else { b'@' });
        self.tags = true;
        self.buf.extend_from_slice(key.as_bytes());
        if !value.is_empty() {
            self.buf.push(b'=');
            self.buf.extend_from_slice(value.as_bytes());
        }
        self
    }

    /// Adds the source `:source` and the command.
    pub fn command(self, source: &str, command: &str) -> Self {
        if self.tags {
            self.buf.push(b' ');
        }
        self.buf.push(b':');
        self.buf.extend_from_slice(source.as_bytes());
        self.buf.push(b' ');
        self.buf.extend_from_slice(command.as_bytes());
        self
    }

    /// Adds a command without a source (`AUTHENTICATE +`).
    pub fn bare(self, command: &str) -> Self {
        if self.tags {
            self.buf.push(b' ');
        }
        self.buf.extend_from_slice(command.as_bytes());
        self
    }

    /// Adds a middle parameter (no spaces, not empty, no leading `:`).
    pub fn param(self, p: &str) -> Self {
        self.buf.push(b' ');
        self.buf.extend_from_slice(p.as_bytes());
        self
    }

    /// Adds the last parameter and ends the line.
    pub fn trailing(self, p: &str) {
        self.buf.extend_from_slice(b" :");
        self.buf.extend_from_slice(p.as_bytes());
        self.end();
    }

    /// Ends the line.
    pub fn end(self) {
        self.buf.extend_from_slice(b"\r\n");
    }
}

/// `ms` since the Unix epoch as IRCv3 server-time
/// (`YYYY-MM-DDThh:mm:ss.sssZ`), computed without a calendar library.
pub fn server_time(ms: u64) -> String {
    let (secs, millis) = (ms / 1000, ms % 1000);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let mut s = String::with_capacity(24);
    let _ = write!(
        s,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    s
}

/// Milliseconds since the epoch of a server-time string, if it is one.
pub fn parse_server_time(s: &str) -> Option<u64> {
    let s = s.strip_prefix("timestamp=").unwrap_or(s);
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    if b.len() < 20 || b.get(4) != Some(&b'-') || b.get(10) != Some(&b'T') {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let millis = match b.get(19) {
        Some(b'.') => num(20..23).unwrap_or(0),
        _ => 0,
    };
    let days = days_from_civil(y, mo, d);
    let total = ((days * 24 + h) * 60 + mi) * 60 + sec;
    u64::try_from(total * 1000 + millis).ok()
}

/// Howard Hinnant's `civil_from_days`: the date `days` after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_with_tags_source_and_trailing_parses_into_its_parts() {
        let input = b"@label=a1;+x=y :me PRIVMSG #confab :hello there\r\nNEXT";
        let Ok(Parsed::Line(line, len)) = parse(input) else {
            panic!("not a line");
        };
        assert_eq!(len, input.len() - 4);
        assert_eq!(line.command, "PRIVMSG");
        assert_eq!(line.params, ["#confab", "hello there"]);
        assert_eq!(line.tag("label"), Some("a1"));
    }

    #[test]
    fn a_line_without_its_end_waits_until_it_is_too_long() {
        assert_eq!(parse(b"PING"), Ok(Parsed::Incomplete));
        let long = vec![b'a'; MAX_LINE + 1];
        assert!(matches!(
            parse(&long),
            Err(LineError::TooLong { ended: false, .. })
        ));
    }

    #[test]
    fn a_body_over_512_bytes_is_too_long_and_bad_utf8_is_refused() {
        let mut long = b"PRIVMSG #c :".to_vec();
        long.extend(std::iter::repeat_n(b'a', 600));
        long.extend_from_slice(b"\r\n");
        assert!(matches!(
            parse(&long),
            Err(LineError::TooLong { ended: true, .. })
        ));
        assert_eq!(
            parse(b"PRIVMSG #c :\xff\r\n"),
            Err(LineError::NotUtf8 { len: 15 })
        );
    }

    #[test]
    fn server_time_round_trips_through_its_text() {
        let ms = 1_796_647_036_123;
        let text = server_time(ms);
        assert_eq!(text, "2026-12-07T12:37:16.123Z");
        assert_eq!(parse_server_time(&text), Some(ms));
        assert_eq!(server_time(0), "1970-01-01T00:00:00.000Z");
    }
}
