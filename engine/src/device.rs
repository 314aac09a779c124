//! Devices (protocol version 2): a device is one of a user's clients (a
//! laptop, a phone, a CI bot) that the server knows by name, identified on
//! the wire by a token and in storage by a [`DeviceId`].
//!
//! A [`Token`] is 32 random bytes that the server shows its client once,
//! in LOGIN_OK2, and afterwards knows only by its hash: storage keeps the
//! blake3 hash, which is right for a secret of that entropy (a password,
//! guessable, keeps its slow argon2id hash). Neither `Debug` nor any
//! `Display` prints a token, so an effect or a frame can be logged as is.

use std::fmt;

/// A device as storage knows it: unique across the server, never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(pub u64);

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "device {}", self.0)
    }
}

/// A device token: 32 bytes, shown once. `Debug` hides the bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token(pub [u8; Token::LEN]);

impl Token {
    /// Bytes in a token.
    pub const LEN: usize = 32;

    /// The token in `bytes`, if they are exactly a token's length.
    pub fn from_slice(bytes: &[u8]) -> Option<Token> {
        bytes.try_into().ok().map(Token)
    }

    /// The token as 64 lowercase hex digits, as clients show and store it.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A token written as [`Token::to_hex`] writes it.
    pub fn from_hex(s: &str) -> Option<Token> {
        let s = s.trim();
        if s.len() != 2 * Token::LEN || !s.is_ascii() {
            return None;
        }
        let mut out = [0u8; Token::LEN];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Token(out))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<hidden>)")
    }
}

/// A client's id for one of its SEND2s: unique per device, never zero.
/// A SEND2 repeated with the same id is stored once (see docs/PROTOCOL.md,
/// "Exactly-once sends").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub u64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_through_hex_and_never_prints() {
        let t = Token([0xab; 32]);
        assert_eq!(Token::from_hex(&t.to_hex()), Some(t));
        assert_eq!(format!("{t:?}"), "Token(<hidden>)");
        assert_eq!(Token::from_hex("ab"), None);
        assert_eq!(Token::from_hex(&"zz".repeat(32)), None);
        assert_eq!(Token::from_slice(&[1; 31]), None);
    }
}
