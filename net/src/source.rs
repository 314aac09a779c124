//! Peer addresses as the engine's opaque [`Source`] keys.
//!
//! The engine counts sessions per `Source(u128)` and knows nothing of IP.
//! An IPv6 address is its 128 bits; an IPv4 address is mapped into IPv6
//! (`::ffff:a.b.c.d`), so a client reaching a dual-stack listener over either
//! family counts as the same source.

use std::net::IpAddr;

use confab_engine::Source;

/// The engine's key for a peer's address.
pub fn source_of(ip: IpAddr) -> Source {
    let v6 = match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    Source(u128::from(v6))
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
