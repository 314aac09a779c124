//! What the gateway keeps per IRC connection (see the module docs of
//! [`super`]). Every part a client can grow is bounded: the nick is a
//! [`Name`], the SASL buffer [`SASL_MAX`] bytes, the requests waiting for
//! an answer [`PENDING_MAX`], the lines held until registration ends
//! `held_max` bytes (the hub's queue limit).

use std::collections::VecDeque;
use std::time::Instant;

use crate::id::Ref;
use crate::name::Name;

use super::{Pending, TagSet};

/// The capabilities the gateway offers, as `CAP LS` lists them.
pub const CAPS: &[(&str, u16)] = &[
    ("account-tag", Caps::ACCOUNT_TAG),
    ("draft/account-registration", Caps::ACCOUNT_REGISTRATION),
    ("batch", Caps::BATCH),
    ("cap-notify", Caps::CAP_NOTIFY),
    ("draft/chathistory", Caps::CHATHISTORY),
    ("echo-message", Caps::ECHO),
    ("labeled-response", Caps::LABELED),
    ("message-tags", Caps::MESSAGE_TAGS),
    ("multi-prefix", Caps::MULTI_PREFIX),
    ("sasl", Caps::SASL),
    ("server-time", Caps::SERVER_TIME),
    ("userhost-in-names", Caps::USERHOST_IN_NAMES),
];

/// Most bytes of a SASL response (three 400-byte chunks).
pub const SASL_MAX: usize = 1200;
/// Most requests a session may have waiting for an answer.
pub const PENDING_MAX: usize = 64;

/// A set of negotiated capabilities.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caps(pub u16);

impl Caps {
    /// `account-tag`.
    pub const ACCOUNT_TAG: u16 = 1;
    /// `batch`.
    pub const BATCH: u16 = 1 << 1;
    /// `cap-notify`.
    pub const CAP_NOTIFY: u16 = 1 << 2;
    /// `draft/chathistory`.
    pub const CHATHISTORY: u16 = 1 << 3;
    /// `echo-message`.
    pub const ECHO: u16 = 1 << 4;
    /// `labeled-response`.
    pub const LABELED: u16 = 1 << 5;
    /// `message-tags`.
    pub const MESSAGE_TAGS: u16 = 1 << 6;
    /// `multi-prefix`.
    pub const MULTI_PREFIX: u16 = 1 << 7;
    /// `sasl`.
    pub const SASL: u16 = 1 << 8;
    /// `server-time`.
    pub const SERVER_TIME: u16 = 1 << 9;
    /// `userhost-in-names`.
    pub const USERHOST_IN_NAMES: u16 = 1 << 10;
    /// `draft/account-registration`.
    pub const ACCOUNT_REGISTRATION: u16 = 1 << 11;

    /// Whether `cap` is in the set.
    pub fn has(self, cap: u16) -> bool {
        self.0 & cap != 0
    }

    /// The tag set clients with these caps read.
    pub fn tags(self) -> TagSet {
        let (time, account) = (self.has(Caps::SERVER_TIME), self.has(Caps::ACCOUNT_TAG));
        match (self.has(Caps::MESSAGE_TAGS), time, account) {
            (true, ..) => TagSet::All,
            (false, true, true) => TagSet::TimeAccount,
            (false, true, false) => TagSet::Time,
            (false, false, true) => TagSet::Account,
            (false, false, false) => TagSet::Plain,
        }
    }

    /// The bit of a capability's name, if offered.
    pub fn bit(name: &str) -> Option<u16> {
        let name = name.split('=').next().unwrap_or(name);
        CAPS.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, b)| b)
    }

    /// The names of the caps in the set, space separated.
    pub fn names(self) -> String {
        let names: Vec<&str> = CAPS
            .iter()
            .filter(|&&(_, b)| self.has(b))
            .map(|&(n, _)| n)
            .collect();
        names.join(" ")
    }
}

/// Where the SASL exchange is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Sasl {
    /// Not started (or over).
    #[default]
    Idle,
    /// `AUTHENTICATE PLAIN` taken; the response so far.
    Reading(String),
    /// The response went to the hub; its answer is pending.
    Checking,
}

/// Where the login is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Login {
    /// Not asked.
    #[default]
    None,
    /// Asked; waiting for the hub.
    Pending,
    /// Logged in as this account.
    Done(Name),
}

/// The per-connection IRC state (see the module docs).
#[derive(Debug, Default)]
pub struct IrcSession {
    /// The nick the client asked for (before login), then its account.
    pub nick: Option<Name>,
    /// USER was given.
    pub user_given: bool,
    /// USER's real name (bounded by the line), shown in its own WHOIS.
    pub realname: String,
    /// PASS, if given.
    pub pass: Option<String>,
    /// `CAP LS` or `CAP REQ` came before registration, and `CAP END` not yet.
    pub negotiating: bool,
    /// The negotiated caps.
    pub caps: Caps,
    /// The SASL exchange.
    pub sasl: Sasl,
    /// The login.
    pub login: Login,
    /// The login was by SASL (a later AUTHENTICATE is 907, not 462).
    pub by_sasl: bool,
    /// 001 and the rest of the welcome were sent.
    pub welcomed: bool,
    /// QUIT's reason (bounded by the line), for the others' QUIT line if
    /// this is the user's last session.
    pub quit: Option<std::sync::Arc<str>>,
    /// Lines drained after login, before the welcome (bounded by the hub).
    pub held: Vec<u8>,
    /// The rest of a too-long line is being skipped.
    pub skipping: bool,
    /// The next request reference.
    pub next_ref: u32,
    /// Requests waiting for their answer, oldest first.
    pub pending: VecDeque<(Ref, Pending)>,
    /// The room's names from the roster snapshot, until its last chunk.
    pub names: Vec<Name>,
    /// The newest message id drained, for the device's bookmark.
    pub delivered: u64,
    /// PONGs to PINGs that came after a CHATHISTORY not yet answered:
    /// they go out after its page (a client reading to its PONG has read
    /// the page). At most [`PENDING_MAX`], beyond which a PONG goes at once.
    pub pongs: Vec<Vec<u8>>,
    /// PONGs in their grace (`IrcConfig::pong_grace`), oldest first, each
    /// with the instant it ends. At most [`PENDING_MAX`], beyond which a
    /// PONG takes the barrier at once.
    pub graced: VecDeque<(Instant, Vec<u8>)>,
    /// Labeled JOINs of several channels whose answers are gathered into
    /// one labeled batch (at most [`PENDING_MAX`]: each waits for one of
    /// its remembered requests).
    pub gathers: Vec<Gather>,
}

/// A labeled command's lines, gathered until its last answer.
#[derive(Debug, Default)]
pub struct Gather {
    /// The client's label.
    pub label: String,
    /// Answers still awaited.
    pub left: usize,
    /// The lines so far, unlabeled.
    pub lines: Vec<u8>,
}

impl IrcSession {
    /// The name numerics address: the nick, or `*` before one is known.
    pub fn me(&self) -> String {
        self.nick.map_or_else(|| "*".to_owned(), |n| n.to_string())
    }

    /// The account, once logged in.
    pub fn account(&self) -> Option<Name> {
        match self.login {
            Login::Done(n) => Some(n),
            _ => None,
        }
    }

    /// A fresh reference for a request for `what`; `None` when too many
    /// are waiting.
    pub fn remember(&mut self, what: Pending) -> Option<Ref> {
        if self.pending.len() >= PENDING_MAX {
            return None;
        }
        self.next_ref = self.next_ref.wrapping_add(1).max(1);
        let r = Ref(self.next_ref);
        self.pending.push_back((r, what));
        Some(r)
    }

    /// What the request with `reference` was for, taken.
    pub fn answered(&mut self, reference: Ref) -> Option<Pending> {
        let at = self.pending.iter().position(|(r, _)| *r == reference)?;
        self.pending.remove(at).map(|(_, p)| p)
    }

    /// Whether a CHATHISTORY waits for its page.
    pub fn reading_history(&self) -> bool {
        self.pending
            .iter()
            .any(|(_, p)| matches!(p, Pending::History { .. }))
    }

    /// The held PONGs, taken once no CHATHISTORY waits for its page.
    pub fn pongs_due(&mut self) -> Vec<Vec<u8>> {
        match self.reading_history() {
            true => Vec::new(),
            false => std::mem::take(&mut self.pongs),
        }
    }

    /// Whether NICK and USER were given and CAP negotiation is over.
    pub fn registration_done(&self) -> bool {
        self.nick.is_some() && self.user_given && !self.negotiating
    }
}

/// Decodes standard base64 (with padding); `None` if it is not.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let b = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(b.len() * 3 / 4);
    for chunk in b.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        match chunk.len() {
            4 => out.extend_from_slice(&bytes[1..4]),
            3 => out.extend_from_slice(&bytes[1..3]),
            2 => out.push(bytes[1]),
            _ => return None,
        }
    }
    Some(out)
}

/// The account, device and password of a SASL PLAIN response
/// (`authzid NUL authcid NUL password`); the authcid may name a device
/// as `user@device`. `None` if it is not one.
pub fn sasl_plain(response: &[u8]) -> Option<(Name, Option<Name>, String)> {
    let text = std::str::from_utf8(response).ok()?;
    let mut parts = text.split('\0');
    let (_authzid, authcid, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let (user, device) = match authcid.split_once('@') {
        Some((u, d)) => (Name::new(u).ok()?, Some(Name::new(d).ok()?)),
        None => (Name::new(authcid).ok()?, None),
    };
    Some((user, device, password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_response_with_a_device_names_the_account_and_the_device() {
        let raw = base64_decode("AGFsaWNlQHBob25lAHNlY3JldA==").unwrap_or_default();
        let (user, device, password) = sasl_plain(&raw).unwrap_or_else(|| panic!("not PLAIN"));
        assert_eq!(user.as_str(), "alice");
        assert_eq!(device.map(|d| d.to_string()).as_deref(), Some("phone"));
        assert_eq!(password, "secret");
        assert_eq!(base64_decode("!!"), None);
    }

    #[test]
    fn caps_pick_the_tag_set_they_read() {
        assert_eq!(Caps(Caps::SERVER_TIME).tags(), TagSet::Time);
        assert_eq!(
            Caps(Caps::SERVER_TIME | Caps::MESSAGE_TAGS).tags(),
            TagSet::All
        );
        assert_eq!(Caps(Caps::ACCOUNT_TAG).tags(), TagSet::Account);
        assert_eq!(
            Caps(Caps::ACCOUNT_TAG | Caps::SERVER_TIME).tags(),
            TagSet::TimeAccount
        );
        assert_eq!(Caps::bit("SASL=PLAIN"), Some(Caps::SASL));
    }
}
