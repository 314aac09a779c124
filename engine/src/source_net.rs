//! A block of source addresses, as an operator bans them: a prefix of the
//! engine's 128-bit [`Source`] keys (an IPv4 `/n` is the mapped `/96+n`;
//! the shell parses the CIDR text and does the mapping, see
//! `net/src/source.rs`). The base never has bits below the prefix, so two
//! spellings of one block are equal.

use crate::id::Source;

/// A CIDR block of sources (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SourceNet {
    base: u128,
    prefix: u8,
}

impl SourceNet {
    /// The block of the `prefix` leading bits of `bits`; `None` for a
    /// prefix over 128.
    pub fn new(bits: u128, prefix: u8) -> Option<SourceNet> {
        (prefix <= 128).then(|| SourceNet {
            base: bits & mask(prefix),
            prefix,
        })
    }

    /// Whether `source` is in the block.
    pub fn contains(self, source: Source) -> bool {
        source.0 & mask(self.prefix) == self.base
    }

    /// The block's first source.
    pub fn base(self) -> u128 {
        self.base
    }

    /// How many leading bits are fixed.
    pub fn prefix(self) -> u8 {
        self.prefix
    }
}

fn mask(prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p => u128::MAX << (128 - u32::from(p)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_holds_exactly_the_sources_under_its_prefix() {
        let net = SourceNet::new(0xffff_0a00_0000, 104).expect("valid");
        assert!(net.contains(Source(0xffff_0a00_0001)));
        assert!(net.contains(Source(0xffff_0aff_ffff)));
        assert!(!net.contains(Source(0xffff_0b00_0000)));
        assert_eq!(
            SourceNet::new(0xffff_0a12_3456, 104),
            Some(net),
            "bits below go"
        );
        let all = SourceNet::new(7, 0).expect("valid");
        assert!(all.contains(Source(u128::MAX)));
        let one = SourceNet::new(5, 128).expect("valid");
        assert!(one.contains(Source(5)) && !one.contains(Source(4)));
        assert_eq!(SourceNet::new(0, 129), None);
    }
}
