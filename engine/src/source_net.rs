//! A block of source addresses, as an operator bans them: a prefix of the
//! engine's 128-bit [`Source`] keys (an IPv4 `/n` is the mapped `/96+n`;
//! the shell parses the CIDR text and does the mapping, see
//! `net/src/source.rs`). The base never has bits below the prefix, so two
//! spellings of one block are equal.

use core::net::IpAddr;

use ipnet::IpNet;

use crate::error::ProtocolError;
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

    /// An operator's block: `10.0.0.0/8`, `2001:db8::/32`, or one address
    /// (a `/32` or `/128`). Its canonical text (the network address, bits
    /// below the prefix cleared), which is how it is stored and audited,
    /// and the block (IPv4 mapped into IPv6, as the shell maps peers).
    /// `ipnet` parses and truncates the CIDR text.
    pub fn parse(text: &str) -> Result<(String, SourceNet), ProtocolError> {
        let bad = || ProtocolError::BadAddress {
            text: text.chars().take(64).collect(),
        };
        let net: IpNet = match text.parse::<IpNet>() {
            Ok(net) => net.trunc(),
            Err(_) => IpNet::from(text.parse::<IpAddr>().map_err(|_| bad())?),
        };
        let (base, prefix) = match net {
            IpNet::V4(v4) => (
                u128::from(v4.network().to_ipv6_mapped()),
                96 + v4.prefix_len(),
            ),
            IpNet::V6(v6) => (u128::from(v6.network()), v6.prefix_len()),
        };
        let block = SourceNet::new(base, prefix).ok_or_else(bad)?;
        Ok((net.to_string(), block))
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
