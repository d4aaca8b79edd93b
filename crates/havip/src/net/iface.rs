//! Interface lookup: index, hardware address and IP addresses, from `getifaddrs(3)` (safe `nix`
//! wrapper), so the runner needs no netlink round trip to learn its primary address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use nix::ifaddrs::getifaddrs;
use nix::net::if_::if_nametoindex;
use nix::sys::socket::LinkAddr;

use super::NetError;

/// What the runner needs to know about its interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// The interface name, e.g. `eth0`.
    pub name: String,
    /// The kernel's interface index.
    pub index: u32,
    /// The Ethernet address, when the interface has one.
    pub mac: Option<[u8; 6]>,
    /// The `AF_PACKET` address of the interface (index + MAC), used to send GARP/NA frames.
    pub link: Option<LinkAddr>,
    /// IPv4 addresses in the kernel's order (the primary address first).
    pub ipv4: Vec<Ipv4Addr>,
    /// IPv6 addresses in the kernel's order (link-local ones included).
    pub ipv6: Vec<Ipv6Addr>,
}

impl Interface {
    /// Looks `name` up in the calling thread's network namespace.
    pub fn lookup(name: &str) -> Result<Interface, NetError> {
        let index =
            if_nametoindex(name).map_err(|_| NetError::NoSuchInterface(name.to_string()))?;
        let mut out = Interface {
            name: name.to_string(),
            index,
            mac: None,
            link: None,
            ipv4: Vec::new(),
            ipv6: Vec::new(),
        };
        let addrs = getifaddrs().map_err(|e| NetError::io("getifaddrs", e))?;
        for ifa in addrs.filter(|a| a.interface_name == name) {
            let Some(addr) = ifa.address else { continue };
            if let Some(sin) = addr.as_sockaddr_in() {
                out.ipv4.push(sin.ip());
            } else if let Some(sin6) = addr.as_sockaddr_in6() {
                out.ipv6.push(sin6.ip());
            } else if let Some(ll) = addr.as_link_addr() {
                out.mac = ll.addr().filter(|m| m.iter().any(|b| *b != 0));
                out.link = Some(*ll);
            }
        }
        Ok(out)
    }

    /// The first IPv4 address that is not one of `exclude` (the VIPs): the source address of
    /// VRRPv2/v3-over-IPv4 adverts.
    ///
    /// RFC 9568 - Section 7.2: "Set the source IPv4 address to the interface's primary IPv4
    /// address".
    pub fn primary_ipv4(&self, exclude: &[IpAddr]) -> Option<Ipv4Addr> {
        self.ipv4
            .iter()
            .copied()
            .find(|a| !exclude.contains(&IpAddr::V4(*a)))
    }

    /// The first link-local IPv6 address: the source address of VRRPv3-over-IPv6 adverts.
    ///
    /// RFC 9568 - Section 7.2: "Set the source IPv6 address to the interface's link-local IPv6
    /// address".
    pub fn link_local_ipv6(&self) -> Option<Ipv6Addr> {
        self.ipv6.iter().copied().find(|a| is_link_local(*a))
    }
}

/// True for `fe80::/10`.
pub fn is_link_local(a: Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_found_with_its_address() {
        let lo = Interface::lookup("lo").expect("lo exists");
        assert!(lo.index >= 1);
        assert!(lo.ipv4.contains(&Ipv4Addr::LOCALHOST), "{lo:?}");
        assert_eq!(lo.mac, None, "lo has an all-zero hardware address");
    }

    #[test]
    fn missing_interface_is_a_typed_error() {
        let err = Interface::lookup("nosuchif0").unwrap_err();
        assert!(matches!(err, NetError::NoSuchInterface(ref n) if n == "nosuchif0"));
    }

    #[test]
    fn primary_skips_vips_and_link_local_detection() {
        let i = Interface {
            name: "x".into(),
            index: 2,
            mac: None,
            link: None,
            ipv4: vec![Ipv4Addr::new(192, 0, 2, 10), Ipv4Addr::new(192, 0, 2, 1)],
            ipv6: vec!["2001:db8::1".parse().unwrap(), "fe80::1".parse().unwrap()],
        };
        assert_eq!(
            i.primary_ipv4(&[IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10))]),
            Some(Ipv4Addr::new(192, 0, 2, 1))
        );
        assert_eq!(i.link_local_ipv6(), Some("fe80::1".parse().unwrap()));
        assert!(is_link_local("febf::1".parse().unwrap()));
        assert!(!is_link_local("fec0::1".parse().unwrap()));
    }
}
