//! Peer addresses as the engine's opaque [`Source`] keys.
//!
//! The engine counts sessions per `Source(u128)` and knows nothing of IP.
//! An IPv6 address is its 128 bits; an IPv4 address is mapped into IPv6
//! (`::ffff:a.b.c.d`), so a client reaching a dual-stack listener over either
//! family counts as the same source.

use std::net::IpAddr;

use confab_engine::{Source, SourceNet};

/// The engine's key for a peer's address.
pub fn source_of(ip: IpAddr) -> Source {
    let v6 = match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    Source(u128::from(v6))
}

/// An operator's address block: its canonical text and the engine's
/// block of sources. The engine parses it ([`SourceNet::parse`]), so the
/// command line and BAN_ADDRESS accept and refuse exactly the same texts.
pub fn parse_net(text: &str) -> Result<(String, SourceNet), String> {
    SourceNet::parse(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    #[track_caller]
    fn check(ip: &str, expected: u128) {
        let ip: IpAddr = ip.parse().expect("test addresses parse");
        assert_eq!(source_of(ip), Source(expected), "{ip}");
    }

    #[test]
    fn ipv4_is_mapped_into_ipv6() {
        check("127.0.0.1", 0xffff_7f00_0001);
        check("0.0.0.0", 0xffff_0000_0000);
        check("255.255.255.255", 0xffff_ffff_ffff);
    }

    #[test]
    fn blocks_parse_to_their_canonical_text_and_hold_their_addresses() {
        let (text, net) = parse_net("10.1.2.3/8").expect("valid");
        assert_eq!(text, "10.0.0.0/8");
        let ip = |s: &str| source_of(s.parse().expect("test address"));
        assert!(net.contains(ip("10.200.0.1")));
        assert!(!net.contains(ip("11.0.0.1")));
        let (text, one) = parse_net("192.0.2.7").expect("valid");
        assert_eq!(text, "192.0.2.7/32");
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let (text, v6) = parse_net("2001:db8::1/32").expect("valid");
        assert_eq!(text, "2001:db8::/32");
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(parse_net("10.0.0.0/33").is_err());
        assert!(parse_net("example.com").unwrap_err().contains("10.0.0.0/8"));
    }

    #[test]
    fn ipv6_is_taken_as_is() {
        check("::1", 1);
        check("2001:db8::7", 0x2001_0db8_0000_0000_0000_0000_0000_0007);
    }

    #[test]
    fn a_mapped_address_is_the_same_source_as_its_ipv4() {
        let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        assert_eq!(source_of(v4), source_of(mapped));
        assert_ne!(source_of(v4), source_of(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    }
}
