//! What nodes tell each other on the bus, and its bytes: a tag, the
//! sending node's id, then the fields, each string with a u32 length.
//! Decoding checks every length against what is left, and every name,
//! target, tag, flag and address block, so a bad payload is an error,
//! never a panic.

use std::time::Duration;

use confab_engine::effect::{GroupOp, StoredMessage};
use confab_engine::frame::{GroupAction, Presence, Target};
use confab_engine::{
    ClientTags, DeviceId, MessageId, MessageKind, Name, Remote, Source, SourceNet,
};

/// One bus message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Note {
    /// A message committed by `node` (every node routes it, in id order).
    Committed(StoredMessage),
    /// A group change committed by `node`.
    Group(GroupOp),
    /// `node`'s first session of a user logged in, or its last left.
    Presence(Name, Presence),
    /// `node` is alive, with every user it has a session of: the truth
    /// that the faster [`Note::Presence`] notes are checked against.
    Heartbeat(Vec<Name>),
    /// What `node`'s hub applied and every other hub applies too: a
    /// sanction, a revoked device, a login outcome, a registration.
    Remote(Remote),
}

/// Why a payload was not understood.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    #[error("the payload ends early")]
    Short,
    #[error("unknown tag {0}")]
    Tag(u8),
    #[error("a bad name: {0}")]
    Name(#[from] confab_engine::NameError),
    #[error("a body that is not UTF-8")]
    Utf8,
    #[error("a flag that is neither 0 nor 1: {0}")]
    Flag(u8),
    #[error("an address block of prefix {0}")]
    Block(u8),
    #[error("client tags over the limit a client may send")]
    Tags,
}

struct Writer(Vec<u8>);

impl Writer {
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u128(&mut self, v: u128) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn flag(&mut self, v: bool) {
        self.0.push(u8::from(v));
    }
    /// A sanction's time left: a flag, then milliseconds if there is an end.
    fn left(&mut self, left: Option<Duration>) {
        self.flag(left.is_some());
        if let Some(d) = left {
            self.u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        }
    }
    fn net(&mut self, net: SourceNet) {
        self.u128(net.base());
        self.0.push(net.prefix());
    }
    fn str(&mut self, s: &str) {
        let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&len.to_le_bytes());
        self.0.extend_from_slice(&s.as_bytes()[..len as usize]);
    }
    fn target(&mut self, t: &Target) {
        match t {
            Target::Room => self.0.push(0),
            Target::Group(g) => {
                self.0.push(1);
                self.str(g.as_str());
            }
            Target::User(u) => {
                self.0.push(2);
                self.str(u.as_str());
            }
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.0.len() < n {
            return Err(WireError::Short);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u128(&mut self) -> Result<u128, WireError> {
        let mut a = [0u8; 16];
        a.copy_from_slice(self.take(16)?);
        Ok(u128::from_le_bytes(a))
    }
    fn flag(&mut self) -> Result<bool, WireError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            f => Err(WireError::Flag(f)),
        }
    }
    fn left(&mut self) -> Result<Option<Duration>, WireError> {
        Ok(match self.flag()? {
            true => Some(Duration::from_millis(self.u64()?)),
            false => None,
        })
    }
    fn net(&mut self) -> Result<SourceNet, WireError> {
        let base = self.u128()?;
        let prefix = self.u8()?;
        SourceNet::new(base, prefix).ok_or(WireError::Block(prefix))
    }
    fn str(&mut self) -> Result<&'a str, WireError> {
        let b = self.take(4)?;
        let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        std::str::from_utf8(self.take(len)?).map_err(|_| WireError::Utf8)
    }
    fn name(&mut self) -> Result<Name, WireError> {
        Ok(Name::new(self.str()?)?)
    }
    fn target(&mut self) -> Result<Target, WireError> {
        Ok(match self.u8()? {
            0 => Target::Room,
            1 => Target::Group(self.name()?),
            2 => Target::User(self.name()?),
            t => return Err(WireError::Tag(t)),
        })
    }
}

/// The bytes of `note` from `node`.
pub(crate) fn encode(node: u64, note: &Note) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(64));
    let tag = match note {
        Note::Committed(_) => b'M',
        Note::Group(_) => b'G',
        Note::Presence(..) => b'P',
        Note::Heartbeat(_) => b'H',
        Note::Remote(_) => b'R',
    };
    w.0.push(tag);
    w.u64(node);
    match note {
        Note::Committed(m) => {
            w.u64(m.id.0);
            w.u64(m.timestamp_ms);
            w.str(m.sender.as_str());
            w.target(&m.target);
            w.str(&m.body);
            w.0.push(m.kind.code());
            w.str(m.tags.get().unwrap_or(""));
        }
        Note::Group(op) => {
            let (kind, group, user) = match op {
                GroupOp::Create { group, user } => (0, group, user),
                GroupOp::Join { group, user } => (1, group, user),
                GroupOp::Leave { group, user } => (2, group, user),
                GroupOp::Moderate { group, user, .. } => (3, group, user),
            };
            w.0.push(kind);
            w.str(group.as_str());
            w.str(user.as_str());
            if let GroupOp::Moderate {
                action,
                seconds,
                reason,
                by,
                ..
            } = op
            {
                w.0.push(action.to_u8());
                w.u32(*seconds);
                w.str(reason);
                w.str(by.as_str());
            }
        }
        Note::Remote(remote) => encode_remote(&mut w, remote),
        Note::Presence(user, presence) => {
            w.0.push(u8::from(*presence == Presence::Online));
            w.str(user.as_str());
        }
        Note::Heartbeat(users) => {
            w.u64(users.len() as u64);
            for u in users {
                w.str(u.as_str());
            }
        }
    }
    w.0
}

/// The sending node and its note.
pub(crate) fn decode(bytes: &[u8]) -> Result<(u64, Note), WireError> {
    let mut r = Reader(bytes);
    let tag = r.u8()?;
    let node = r.u64()?;
    let note = match tag {
        b'M' => Note::Committed(StoredMessage {
            id: MessageId(r.u64()?),
            timestamp_ms: r.u64()?,
            sender: r.name()?,
            target: r.target()?,
            body: r.str()?.to_owned(),
            kind: MessageKind::from_code(r.u8()?),
            // Bounded as a client's: more is a bad note (the message is
            // then read from PostgreSQL, which keeps no client tags).
            tags: ClientTags::from_raw(r.str()?).ok_or(WireError::Tags)?,
        }),
        b'G' => {
            let kind = r.u8()?;
            let (group, user) = (r.name()?, r.name()?);
            Note::Group(match kind {
                0 => GroupOp::Create { group, user },
                1 => GroupOp::Join { group, user },
                2 => GroupOp::Leave { group, user },
                3 => {
                    let action = r.u8()?;
                    GroupOp::Moderate {
                        group,
                        user,
                        action: GroupAction::from_u8(action).ok_or(WireError::Tag(action))?,
                        seconds: r.u32()?,
                        reason: r.str()?.to_owned(),
                        by: r.name()?,
                    }
                }
                k => return Err(WireError::Tag(k)),
            })
        }
        b'R' => Note::Remote(decode_remote(&mut r)?),
        b'P' => {
            let online = r.u8()? == 1;
            let presence = if online {
                Presence::Online
            } else {
                Presence::Offline
            };
            Note::Presence(r.name()?, presence)
        }
        b'H' => {
            let n = r.u64()?;
            // Each name takes at least 5 bytes: a count beyond that is a lie.
            if n > (r.0.len() / 5) as u64 {
                return Err(WireError::Short);
            }
            let users = (0..n).map(|_| r.name()).collect::<Result<_, _>>()?;
            Note::Heartbeat(users)
        }
        t => return Err(WireError::Tag(t)),
    };
    Ok((node, note))
}

fn encode_remote(w: &mut Writer, remote: &Remote) {
    let (kind, user) = match remote {
        Remote::Kick { user, .. } => (0, Some(user)),
        Remote::Ban { user, .. } => (1, Some(user)),
        Remote::Unban { user } => (2, Some(user)),
        Remote::Mute { user, .. } => (3, Some(user)),
        Remote::Unmute { user } => (4, Some(user)),
        Remote::Operator { user, .. } => (5, Some(user)),
        Remote::DeviceRevoked(_) => (6, None),
        Remote::BanAddress { .. } => (7, None),
        Remote::UnbanAddress { .. } => (8, None),
        Remote::LoginFailed { user, .. } => (9, Some(user)),
        Remote::LoggedIn { user, .. } => (10, Some(user)),
        Remote::Registered { .. } => (11, None),
        Remote::Unlock { .. } => (12, None),
    };
    w.0.push(kind);
    if let Some(user) = user {
        w.str(user.as_str());
    }
    match remote {
        Remote::Kick { reason, .. } => w.str(reason),
        Remote::Ban { left, reason, .. } | Remote::Mute { left, reason, .. } => {
            w.left(*left);
            w.str(reason);
        }
        Remote::Unban { .. } | Remote::Unmute { .. } => {}
        Remote::Operator { operator, .. } => w.flag(*operator),
        Remote::DeviceRevoked(device) => w.u64(device.0),
        Remote::BanAddress { net, left, reason } => {
            w.net(*net);
            w.left(*left);
            w.str(reason);
        }
        Remote::UnbanAddress { net } => w.net(*net),
        Remote::LoginFailed { source, .. }
        | Remote::LoggedIn { source, .. }
        | Remote::Registered { source } => w.u128(source.0),
        Remote::Unlock { user, source } => {
            w.flag(user.is_some());
            if let Some(user) = user {
                w.str(user.as_str());
            }
            w.flag(source.is_some());
            if let Some(source) = source {
                w.u128(source.0);
            }
        }
    }
}

fn decode_remote(r: &mut Reader<'_>) -> Result<Remote, WireError> {
    Ok(match r.u8()? {
        0 => Remote::Kick {
            user: r.name()?,
            reason: r.str()?.to_owned(),
        },
        1 => Remote::Ban {
            user: r.name()?,
            left: r.left()?,
            reason: r.str()?.to_owned(),
        },
        2 => Remote::Unban { user: r.name()? },
        3 => Remote::Mute {
            user: r.name()?,
            left: r.left()?,
            reason: r.str()?.to_owned(),
        },
        4 => Remote::Unmute { user: r.name()? },
        5 => Remote::Operator {
            user: r.name()?,
            operator: r.flag()?,
        },
        6 => Remote::DeviceRevoked(DeviceId(r.u64()?)),
        7 => Remote::BanAddress {
            net: r.net()?,
            left: r.left()?,
            reason: r.str()?.to_owned(),
        },
        8 => Remote::UnbanAddress { net: r.net()? },
        9 => Remote::LoginFailed {
            user: r.name()?,
            source: Source(r.u128()?),
        },
        10 => Remote::LoggedIn {
            user: r.name()?,
            source: Source(r.u128()?),
        },
        11 => Remote::Registered {
            source: Source(r.u128()?),
        },
        12 => {
            let user = if r.flag()? { Some(r.name()?) } else { None };
            let source = if r.flag()? {
                Some(Source(r.u128()?))
            } else {
                None
            };
            Remote::Unlock { user, source }
        }
        k => return Err(WireError::Tag(k)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::new(s).expect("valid")
    }

    #[test]
    fn every_note_decodes_to_itself_and_truncations_are_errors() {
        let notes = [
            Note::Committed(StoredMessage {
                id: MessageId(42),
                timestamp_ms: 7,
                sender: n("ann"),
                target: Target::User(n("Bob")),
                body: "héllo".into(),
                kind: MessageKind::Notice,
                tags: ClientTags::from_raw("+a=b").unwrap_or_default(),
            }),
            Note::Group(GroupOp::Join {
                group: n("g"),
                user: n("ann"),
            }),
            Note::Group(GroupOp::Moderate {
                group: n("g"),
                user: n("bob"),
                action: GroupAction::Mute,
                seconds: 60,
                reason: "shh".into(),
                by: n("olga"),
            }),
            Note::Presence(n("ann"), Presence::Offline),
            Note::Heartbeat(vec![n("a"), n("b")]),
        ];
        let remotes = remotes();
        let notes = notes
            .into_iter()
            .chain(remotes.into_iter().map(Note::Remote));
        for note in notes {
            let bytes = encode(9, &note);
            assert_eq!(decode(&bytes).expect("decodes"), (9, note));
            for cut in 0..bytes.len() {
                assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
            }
        }
    }

    fn remotes() -> Vec<Remote> {
        let net = SourceNet::new(0xffff_0a00_0000, 104).expect("valid");
        let source = Source(u128::MAX - 3);
        vec![
            Remote::Kick {
                user: n("ann"),
                reason: "out".into(),
            },
            Remote::Ban {
                user: n("ann"),
                left: Some(Duration::from_millis(60_001)),
                reason: "spam".into(),
            },
            Remote::Ban {
                user: n("ann"),
                left: None,
                reason: String::new(),
            },
            Remote::Unban { user: n("ann") },
            Remote::Mute {
                user: n("bob"),
                left: None,
                reason: "shh".into(),
            },
            Remote::Unmute { user: n("bob") },
            Remote::Operator {
                user: n("carol"),
                operator: true,
            },
            Remote::Operator {
                user: n("carol"),
                operator: false,
            },
            Remote::DeviceRevoked(DeviceId(77)),
            Remote::BanAddress {
                net,
                left: Some(Duration::from_secs(5)),
                reason: "abuse".into(),
            },
            Remote::UnbanAddress { net },
            Remote::LoginFailed {
                user: n("bob"),
                source,
            },
            Remote::LoggedIn {
                user: n("bob"),
                source,
            },
            Remote::Registered { source },
            Remote::Unlock {
                user: Some(n("bob")),
                source: None,
            },
            Remote::Unlock {
                user: None,
                source: Some(source),
            },
            Remote::Unlock {
                user: None,
                source: None,
            },
        ]
    }

    /// A note's bytes with byte `at` (counted after the tag and node id)
    /// set to `value`.
    fn with_byte(note: &Note, at: usize, value: u8) -> Vec<u8> {
        let mut bytes = encode(1, note);
        bytes[9 + at] = value;
        bytes
    }

    #[test]
    fn a_message_note_with_more_client_tags_than_a_client_may_send_is_an_error() {
        let m = Note::Committed(StoredMessage {
            id: MessageId(1),
            timestamp_ms: 1,
            sender: n("ann"),
            target: Target::Room,
            body: "hi".into(),
            kind: MessageKind::Message,
            tags: ClientTags::default(),
        });
        let mut bytes = encode(7, &m);
        // The tags are last: an empty string, its length 0.
        let tags = format!("+k={}", "v".repeat(5000));
        bytes.truncate(bytes.len() - 4);
        bytes.extend_from_slice(&(tags.len() as u32).to_le_bytes());
        bytes.extend_from_slice(tags.as_bytes());
        assert!(matches!(decode(&bytes), Err(WireError::Tags)));
    }

    #[test]
    fn bad_kinds_flags_blocks_and_names_in_a_remote_note_are_errors() {
        let kick = Note::Remote(Remote::Kick {
            user: n("ann"),
            reason: "x".into(),
        });
        assert!(matches!(
            decode(&with_byte(&kick, 0, 13)),
            Err(WireError::Tag(13))
        ));
        let op = Note::Remote(Remote::Operator {
            user: n("ann"),
            operator: true,
        });
        // kind, then the name's length (4) and bytes (3): the flag.
        assert!(matches!(
            decode(&with_byte(&op, 8, 2)),
            Err(WireError::Flag(2))
        ));
        let unban = Note::Remote(Remote::UnbanAddress {
            net: SourceNet::new(0, 8).expect("valid"),
        });
        assert!(matches!(
            decode(&with_byte(&unban, 17, 129)),
            Err(WireError::Block(129))
        ));
        let ban = Note::Remote(Remote::Ban {
            user: n("ann"),
            left: None,
            reason: String::new(),
        });
        assert!(matches!(
            decode(&with_byte(&ban, 8, 7)),
            Err(WireError::Flag(7))
        ));
        // A name that is no name (a space) is refused as on the client wire.
        assert!(matches!(
            decode(&with_byte(&kick, 6, b' ')),
            Err(WireError::Name(_))
        ));
        let group = Note::Group(GroupOp::Moderate {
            group: n("g"),
            user: n("b"),
            action: GroupAction::Remove,
            seconds: 0,
            reason: String::new(),
            by: n("o"),
        });
        // kind, group (4+1), user (4+1): the action.
        assert!(matches!(
            decode(&with_byte(&group, 11, 9)),
            Err(WireError::Tag(9))
        ));
    }
}
