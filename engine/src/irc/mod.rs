//! The IRC gateway: IRC clients as sessions of the same hub.
//!
//! An IRC connection is a hub session like any other: it logs in to a
//! confab account, is in the roster, sends and receives the same stored
//! messages under the same limits. What is IRC's lives here:
//!
//! - [`line`]: the line parser and writer (bounded, typed errors);
//! - [`codec`]: [`IrcCodec`], the [`crate::Codec`] of the events every
//!   IRC session of one [`TagSet`] reads alike (one protocol per tag set,
//!   so a broadcast is still encoded once per protocol);
//! - [`session`]: [`IrcSession`], the per-connection state IRC needs and
//!   confab does not (CAP negotiation, NICK/USER before login, the SASL
//!   exchange, the caps in force, the requests waiting for an answer);
//! - [`commands`]: what each client line does, as [`Act`]s for the hub,
//!   [`queries`], the commands answered from the hub's state at once, and
//!   [`history`], CHATHISTORY read as a window of a conversation (or,
//!   TARGETS, as the conversations whose latest message is in a window);
//! - [`register`]: `draft/account-registration`'s REGISTER, before the
//!   connection completes;
//! - [`replies`]: the numerics and the rendering of the replies meant for
//!   one session (they need its nick and labels), made when it drains;
//!   [`targets`], the TARGETS batch among them.
//!
//! The hub holds the sessions and carries the acts out (`hub::irc`); the
//! shell only accepts connections with [`IrcProtocols::plain`] and passes
//! bytes, as for confab. docs/IRC.md is the mapping.

pub mod channels;
pub mod codec;
pub mod commands;
pub mod history;
pub mod invite;
pub mod labels;
pub mod line;
pub mod queries;
pub mod register;
pub mod replies;
pub mod sends;
pub mod session;
pub mod targets;

use crate::name::Name;
use crate::protocol::Protocol;
use crate::request::Request;

pub use codec::{IrcCodec, TagSet};
pub use session::IrcSession;

/// What the gateway is told at start.
#[derive(Clone, Debug)]
pub struct IrcConfig {
    /// The server's name, the source of its numerics.
    pub server: String,
    /// The channel the room is (`#confab`).
    pub room_channel: String,
    /// Whether a client without credentials gets an account made for its
    /// nick (for conformance suites only: anyone may then log in as a
    /// guest by knowing its nick).
    pub guests: bool,
    /// The MOTD's lines (none: 422).
    pub motd: Vec<String>,
    /// Whether clients are JOINed to the room's channel at login and see
    /// its presence as JOIN and QUIT (off only for conformance suites,
    /// whose tests count every line; room messages arrive either way).
    pub room_presence: bool,
    /// How long a PONG waits before it takes the store barrier: the hub
    /// only orders what it has read, and a line another client sent just
    /// before this PING may still be in that client's socket. The grace
    /// lets the shell read it; the barrier then orders its store before
    /// the PONG (irctest's PRIVMSG on one client, PING on another).
    pub pong_grace: std::time::Duration,
}

impl Default for IrcConfig {
    fn default() -> IrcConfig {
        IrcConfig {
            server: "confab".to_owned(),
            room_channel: "#confab".to_owned(),
            guests: false,
            motd: Vec::new(),
            room_presence: true,
            pong_grace: std::time::Duration::from_millis(10),
        }
    }
}

/// The hub's IRC protocols, one per [`TagSet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrcProtocols {
    /// No tags: what every connection starts as.
    pub plain: Protocol,
    /// The protocol of each tag set, in [`TagSet::EVERY`]'s order.
    pub each: [Protocol; 5],
}

impl IrcProtocols {
    /// The protocol of `tags`.
    pub fn of(&self, tags: TagSet) -> Protocol {
        let at = TagSet::EVERY.iter().position(|&t| t == tags).unwrap_or(0);
        self.each[at]
    }

    /// Whether `p` is one of them.
    pub fn contains(&self, p: Protocol) -> bool {
        self.each.contains(&p)
    }
}

/// What a request the gateway made is for, kept until its answer drains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pending {
    /// LOGIN2, by SASL (`true`) or PASS/guest.
    Login {
        /// By SASL.
        sasl: bool,
    },
    /// A guest's REGISTER, or a REGISTER command; its password logs in next.
    Register {
        /// The account.
        user: Name,
        /// Its password.
        password: String,
        /// By the client's REGISTER (answered `REGISTER SUCCESS` or
        /// `FAIL REGISTER`), not for a guest.
        command: bool,
    },
    /// A PRIVMSG or NOTICE.
    Send {
        /// The target as the client wrote it.
        target: String,
        /// The text.
        body: String,
        /// PRIVMSG or NOTICE.
        kind: crate::MessageKind,
        /// Its client-only tags, for the echo.
        tags: crate::ClientTags,
        /// The client's label.
        label: Option<String>,
    },
    /// A JOIN (create or join).
    Join {
        /// The channel.
        channel: String,
        /// The group.
        group: Name,
        /// The client's label.
        label: Option<String>,
    },
    /// A PART.
    Part {
        /// The channel.
        channel: String,
        /// Its reason, shown to the members (see `Hub::irc_part_reason`).
        reason: Option<String>,
        /// The client's label.
        label: Option<String>,
    },
    /// A CHATHISTORY page.
    History {
        /// The subcommand (LATEST, BEFORE, ...), upper case.
        sub: String,
        /// The target as the client wrote it.
        target: String,
        /// The client's label.
        label: Option<String>,
    },
}

/// One thing a client line (or a drained reply) asks the hub to do.
#[derive(Debug)]
pub enum Act<'a> {
    /// Queue these lines for the session (control class).
    Reply(Vec<u8>),
    /// Queue these lines after every message stored before now
    /// (a PONG: see `Hub::sync`).
    Synced(Vec<u8>),
    /// Make this request; remember what it is for.
    Request(Request<'a>, Option<Pending>),
    /// Log in (HELLO, then LOGIN2 by password as a device).
    Login(LoginAsk),
    /// Create an account (HELLO, then REGISTER), then log in.
    Register {
        /// The account.
        user: Name,
        /// Its password.
        password: String,
        /// By the client's REGISTER command (not a guest's account).
        command: bool,
    },
    /// Relay a TAGMSG live (not stored) to `target`'s readers.
    Relay {
        /// The conversation.
        target: crate::Target,
        /// The target as the client wrote it.
        to: String,
        /// Its client-only tags.
        tags: crate::ClientTags,
        /// The client's label.
        label: Option<String>,
    },
    /// Relay an INVITE live to `invitee`'s IRC sessions (checked: see
    /// `invite`).
    Invite {
        /// Who is invited (online).
        invitee: Name,
        /// The channel as the inviter wrote it.
        channel: String,
    },
    /// The session now reads this tag set.
    Tags(TagSet),
    /// Queue these lines, then close.
    Close(Vec<u8>),
}

/// A login the gateway asks of the hub.
#[derive(Debug)]
pub struct LoginAsk {
    /// The account.
    pub user: Name,
    /// The password.
    pub password: String,
    /// The device.
    pub device: Name,
    /// Replay from the device's bookmark (no chathistory negotiated).
    pub replay: bool,
    /// By SASL.
    pub sasl: bool,
}
