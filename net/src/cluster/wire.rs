//! What nodes tell each other on the bus, and its bytes: a tag, the
//! sending node's id, then the fields, each string with a u32 length.
//! Decoding checks every length against what is left, and every name and
//! target, so a bad payload is an error, never a panic.

use confab_engine::effect::{GroupOp, StoredMessage};
use confab_engine::frame::{Presence, Target};
use confab_engine::{ClientTags, MessageId, MessageKind, Name};

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
}

struct Writer(Vec<u8>);

impl Writer {
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
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
                // Not stored on PostgreSQL (refused there), so never published.
                GroupOp::Moderate { group, user, .. } => (3, group, user),
            };
            w.0.push(kind);
            w.str(group.as_str());
            w.str(user.as_str());
        }
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
            // Bounded as a client's: more than the limit reads as none.
            tags: ClientTags::from_raw(r.str()?).unwrap_or_default(),
        }),
        b'G' => {
            let kind = r.u8()?;
            let (group, user) = (r.name()?, r.name()?);
            Note::Group(match kind {
                0 => GroupOp::Create { group, user },
                1 => GroupOp::Join { group, user },
                2 => GroupOp::Leave { group, user },
                k => return Err(WireError::Tag(k)),
            })
        }
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
            Note::Presence(n("ann"), Presence::Offline),
            Note::Heartbeat(vec![n("a"), n("b")]),
        ];
        for note in notes {
            let bytes = encode(9, &note);
            assert_eq!(decode(&bytes).expect("decodes"), (9, note));
            for cut in 0..bytes.len() {
                assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
            }
        }
    }
}
