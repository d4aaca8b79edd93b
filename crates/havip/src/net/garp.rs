//! Gratuitous ARP (IPv4) and unsolicited neighbour advertisements (IPv6), so that switches and
//! hosts on the LAN move the VIP to the new master's MAC at once.
//!
//! The frames are built whole (Ethernet header included) by pure functions tested byte-wise, and
//! sent on an `AF_PACKET`/`SOCK_RAW` socket to the interface's link address (from `getifaddrs`, so
//! no `unsafe` is needed to build a `sockaddr_ll`).
//!
//! RFC 9568 - Section 6.4.2 (erratum 7949 wording): "For each IPv4 address associated with the
//! Virtual Router, broadcast a gratuitous ARP message containing the Virtual Router IPv4 address
//! and with the target link-layer address set to the Virtual Router MAC address." and "For each
//! IPv6 address associated with the Virtual Router, send an unsolicited ND Neighbor Advertisement
//! with the Router Flag (R) set, the Solicited Flag (S) clear, the Override flag (O) set, ...".
//! We do not use the virtual router MAC (the
//! VIP stays on the interface's own MAC, as keepalived does by default), so the sender address is
//! the interface MAC, and R is clear because a director is a host, not a router.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use nix::sys::socket::{sendto, LinkAddr, MsgFlags};
use socket2::{Domain, Socket, Type};

use super::NetError;

/// Length of a gratuitous ARP frame: 14 (Ethernet) + 28 (ARP for IPv4 over Ethernet).
pub const ARP_FRAME_LEN: usize = 42;
/// Length of an unsolicited NA frame: 14 (Ethernet) + 40 (IPv6) + 24 (NA) + 8 (target LL option).
pub const NA_FRAME_LEN: usize = 86;

const ETH_BROADCAST: [u8; 6] = [0xff; 6];
/// `33:33` + the low 32 bits of ff02::1 (RFC 2464 - Section 7).
const ETH_ALL_NODES: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// A gratuitous ARP request announcing that `vip` is at `mac`: broadcast, sender and target
/// protocol address both the VIP, target hardware address zero (RFC 5227 - Section 3: "the
/// 'target hardware address' field is ignored and SHOULD be set to all zeroes").
pub fn arp_frame(mac: [u8; 6], vip: Ipv4Addr) -> [u8; ARP_FRAME_LEN] {
    let mut f = [0u8; ARP_FRAME_LEN];
    f[0..6].copy_from_slice(&ETH_BROADCAST);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&0x0806u16.to_be_bytes()); // ETH_P_ARP
    f[14..16].copy_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
    f[16..18].copy_from_slice(&0x0800u16.to_be_bytes()); // ETH_P_IP
    f[18] = 6; // hardware address length
    f[19] = 4; // protocol address length
    f[20..22].copy_from_slice(&1u16.to_be_bytes()); // ARPOP_REQUEST
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&vip.octets());
    // f[32..38]: target hardware address, zero.
    f[38..42].copy_from_slice(&vip.octets());
    f
}

/// An unsolicited neighbour advertisement for `vip` at `mac`, from `vip` to ff02::1, hop limit 255,
/// Override set, Solicited and Router clear, with the target link-layer address option.
///
/// RFC 4861 - Section 7.2.6: "the node SHOULD send ... unsolicited Neighbor Advertisement
/// messages ... The Override flag MAY be set ... The Solicited flag MUST NOT be set"; Section 7.1.2
/// makes receivers drop an NA whose "IP Hop Limit field has a value of 255" does not hold.
pub fn na_frame(mac: [u8; 6], vip: Ipv6Addr) -> [u8; NA_FRAME_LEN] {
    let mut f = [0u8; NA_FRAME_LEN];
    f[0..6].copy_from_slice(&ETH_ALL_NODES);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes()); // ETH_P_IPV6
                                                         // IPv6 header.
    f[14] = 0x60;
    f[18..20].copy_from_slice(&32u16.to_be_bytes()); // payload length
    f[20] = 58; // next header: ICMPv6
    f[21] = 255; // hop limit
    f[22..38].copy_from_slice(&vip.octets());
    f[38..54].copy_from_slice(&ALL_NODES.octets());
    // ICMPv6 neighbour advertisement.
    f[54] = 136;
    f[55] = 0;
    f[58] = 0x20; // Override
    f[62..78].copy_from_slice(&vip.octets());
    f[78] = 2; // option: target link-layer address
    f[79] = 1; // length in units of 8 bytes
    f[80..86].copy_from_slice(&mac);
    let sum = icmpv6_checksum(vip, ALL_NODES, &f[54..]);
    f[56..58].copy_from_slice(&sum.to_be_bytes());
    f
}

/// The ICMPv6 checksum over the IPv6 pseudo-header and `msg` (whose checksum field is zero).
///
/// RFC 4443 - Section 2.3: "The checksum is the 16-bit one's complement of the one's complement
/// sum of the entire ICMPv6 message, starting with the ICMPv6 message type field, and prepended
/// with a 'pseudo-header' of IPv6 header fields".
pub fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let hi = u32::from(pair.first().copied().unwrap_or(0));
            let lo = u32::from(pair.get(1).copied().unwrap_or(0));
            sum = sum.wrapping_add((hi << 8) | lo);
        }
    };
    add(&src.octets());
    add(&dst.octets());
    let len = u32::try_from(msg.len()).unwrap_or(u32::MAX);
    add(&len.to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(msg);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A socket that sends whole Ethernet frames out of one interface.
#[derive(Debug)]
pub struct Announcer {
    sock: Socket,
    link: LinkAddr,
    mac: [u8; 6],
}

impl Announcer {
    /// Opens an `AF_PACKET` socket (protocol 0: it receives nothing) for the interface whose
    /// link address and MAC are given (see [`super::iface::Interface`]).
    pub fn open(link: LinkAddr, mac: [u8; 6]) -> Result<Announcer, NetError> {
        let sock = Socket::new(Domain::PACKET, Type::RAW, None)
            .map_err(|e| NetError::io("socket(AF_PACKET, SOCK_RAW)", e))?;
        Ok(Announcer { sock, link, mac })
    }

    /// Sends one gratuitous ARP for `vip`.
    pub fn send_arp(&self, vip: Ipv4Addr) -> Result<(), NetError> {
        self.send(&arp_frame(self.mac, vip), "gratuitous ARP")
    }

    /// Sends one unsolicited neighbour advertisement for `vip`.
    pub fn send_na(&self, vip: Ipv6Addr) -> Result<(), NetError> {
        self.send(&na_frame(self.mac, vip), "unsolicited NA")
    }

    fn send(&self, frame: &[u8], what: &str) -> Result<(), NetError> {
        sendto(self.sock.as_raw_fd(), frame, &self.link, MsgFlags::empty())
            .map(|_| ())
            .map_err(|e| NetError::io(format!("send {what}"), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];

    #[test]
    fn arp_frame_bytes() {
        let f = arp_frame(MAC, Ipv4Addr::new(192, 0, 2, 100));
        #[rustfmt::skip]
        let want: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff,   // dst: broadcast
            0x02, 0x11, 0x22, 0x33, 0x44, 0x55,   // src: our MAC
            0x08, 0x06,                           // ARP
            0x00, 0x01, 0x08, 0x00, 6, 4,         // Ethernet / IPv4
            0x00, 0x01,                           // request
            0x02, 0x11, 0x22, 0x33, 0x44, 0x55,   // sender MAC
            192, 0, 2, 100,                       // sender IP = VIP
            0, 0, 0, 0, 0, 0,                     // target MAC
            192, 0, 2, 100,                       // target IP = VIP
        ];
        assert_eq!(f, want);
    }

    #[test]
    fn na_frame_bytes_and_checksum() {
        let vip: Ipv6Addr = "2001:db8::100".parse().unwrap();
        let f = na_frame(MAC, vip);
        assert_eq!(&f[0..6], &[0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(&f[6..12], &MAC);
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
        assert_eq!(&f[14..22], &[0x60, 0, 0, 0, 0, 32, 58, 255]);
        assert_eq!(&f[22..38], &vip.octets());
        assert_eq!(&f[38..54], &ALL_NODES.octets());
        assert_eq!(&f[54..56], &[136, 0]);
        assert_eq!(&f[58..62], &[0x20, 0, 0, 0], "Override only");
        assert_eq!(&f[62..78], &vip.octets());
        assert_eq!(&f[78..86], &[2, 1, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55]);
        // Summing the message with its checksum in place gives zero.
        assert_eq!(icmpv6_checksum(vip, ALL_NODES, &f[54..]), 0);
        // The value computed independently (Python: RFC 1071 sum over pseudo-header + message).
        assert_eq!(&f[56..58], &[0x90, 0x94]);
    }
}
