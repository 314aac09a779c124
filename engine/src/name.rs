//! Names of users and groups, validated once at the parser.
//!
//! A [`Name`] is 1 to [`Name::MAX_LEN`] bytes of ASCII letters, digits, `_`,
//! `-` and `.`, starting with a letter or a digit. It is stored inline (no
//! heap), so frames that carry names parse without allocating. Two names are
//! the same account or group when they are equal ignoring ASCII case: the
//! [`NameKey`] is what maps and sets are keyed by, while the `Name` keeps the
//! spelling its owner chose for display.

use std::fmt;

/// Why a byte string is not a valid [`Name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Zero bytes long.
    #[error("a name may not be empty")]
    Empty,
    /// Longer than [`Name::MAX_LEN`].
    #[error("a name is at most {max} bytes, this one has {len}", max = Name::MAX_LEN)]
    TooLong {
        /// The length that was offered.
        len: usize,
    },
    /// A byte outside `[A-Za-z0-9_.-]`, or a first byte that is not a letter or digit.
    #[error("a name uses only ASCII letters, digits, '_', '-' and '.', and starts with a letter or digit")]
    BadCharacter,
}

/// A user or group name: valid by construction (see the module docs).
#[derive(Clone, Copy)]
pub struct Name {
    len: u8,
    bytes: [u8; Name::MAX_LEN],
}

impl Name {
    /// The longest name, in bytes.
    pub const MAX_LEN: usize = 32;

    /// A name of the greatest length, for sizing what must fit any name.
    pub(crate) fn longest() -> Name {
        Name {
            len: Name::MAX_LEN as u8,
            bytes: [b'n'; Name::MAX_LEN],
        }
    }

    /// Validates `s` as a name.
    pub fn new(s: &str) -> Result<Name, NameError> {
        Name::from_bytes(s.as_bytes())
    }

    /// Validates raw bytes as a name (the parser's entry point).
    pub fn from_bytes(b: &[u8]) -> Result<Name, NameError> {
        if b.is_empty() {
            return Err(NameError::Empty);
        }
        if b.len() > Name::MAX_LEN {
            return Err(NameError::TooLong { len: b.len() });
        }
        if !b[0].is_ascii_alphanumeric()
            || !b
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
        {
            return Err(NameError::BadCharacter);
        }
        let mut bytes = [0u8; Name::MAX_LEN];
        bytes[..b.len()].copy_from_slice(b);
        Ok(Name {
            len: b.len() as u8,
            bytes,
        })
    }

    /// The name as its owner spelled it.
    pub fn as_str(&self) -> &str {
        // Invariant: only ASCII bytes are ever stored (checked in `from_bytes`).
        std::str::from_utf8(&self.bytes[..self.len as usize]).expect("names are ASCII")
    }

    /// The identity of this name: equal for names that differ only in case.
    pub fn key(&self) -> NameKey {
        let mut k = *self;
        k.bytes[..k.len as usize].make_ascii_lowercase();
        NameKey(k)
    }
}

impl PartialEq for Name {
    /// Exact spelling: two names that differ in case are different *values*
    /// but the same *key*.
    fn eq(&self, other: &Name) -> bool {
        self.as_str() == other.as_str()
    }
}
impl Eq for Name {}

impl std::hash::Hash for Name {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Name {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Name, NameError> {
        Name::new(s)
    }
}

/// The case-folded identity of a [`Name`]; what maps are keyed by.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NameKey(Name);

impl NameKey {
    /// The lower-case spelling.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Name {
    fn cmp(&self, other: &Name) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl fmt::Debug for NameKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Name {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Name> {
        const ALPHABET: &[u8] =
            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.";
        let len = u.int_in_range(1..=Name::MAX_LEN)?;
        let mut b = Vec::with_capacity(len);
        b.push(*u.choose(&ALPHABET[..62])?);
        for _ in 1..len {
            b.push(*u.choose(ALPHABET)?);
        }
        Name::from_bytes(&b).map_err(|_| arbitrary::Error::IncorrectFormat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(s: &str, want: Result<(), NameError>) {
        assert_eq!(Name::new(s).map(|_| ()), want, "{s:?}");
    }

    #[test]
    fn names_accept_the_documented_alphabet_only() {
        check("alice", Ok(()));
        check("Bob_2.x-y", Ok(()));
        check("7up", Ok(()));
        check(&"a".repeat(32), Ok(()));
        check("", Err(NameError::Empty));
        check(&"a".repeat(33), Err(NameError::TooLong { len: 33 }));
        check("_lead", Err(NameError::BadCharacter));
        check("sp ace", Err(NameError::BadCharacter));
        check("émile", Err(NameError::BadCharacter));
    }

    #[test]
    fn names_differing_in_case_share_a_key_but_keep_their_spelling() {
        let a = Name::new("Alice").unwrap();
        let b = Name::new("aLICE").unwrap();
        assert_eq!(a.key(), b.key());
        assert_ne!(a, b);
        assert_eq!(a.to_string(), "Alice");
        assert_eq!(a.key().as_str(), "alice");
    }
}
