//! The raw IP socket for VRRP (IP protocol 112), bound to an interface; the runner shares one
//! among the instances on an interface (`runner/receiver.rs`).
//!
//! Choices (documented in `docs/havip-runtime.md`):
//! - IPv4: `IP_HDRINCL` is off; the kernel builds the IP header, with TTL 255 set through
//!   `IP_MULTICAST_TTL` and `IP_TTL`, and TOS 0xc0 (internetwork control, as keepalived). A raw
//!   IPv4 socket receives the whole datagram, IP header included: [`parse_ipv4`] reads the header
//!   length from IHL (never assumes 20 bytes) and hands the TTL and addresses to `packet::decode`.
//! - IPv6: hop limit 255 through `IPV6_MULTICAST_HOPS` and `IPV6_UNICAST_HOPS`; the received hop
//!   limit and destination come from `IPV6_RECVHOPLIMIT` / `IPV6_RECVPKTINFO` control messages.
//!   `IPV6_CHECKSUM` is NOT set: `packet` computes and verifies the VRRPv3 checksum itself (one
//!   code path for both families, and a bad checksum is counted instead of silently dropped by
//!   the kernel).
//! - `SO_BINDTODEVICE` on the interface; multicast joins 224.0.0.18 / ff02::12 on the interface
//!   index with loopback off. In unicast mode the runner sends one copy to each peer and drops
//!   adverts whose source is not a configured peer.
//!
//! RFC 9568 - Section 5.1.1.3: "The TTL MUST be set to 255. A VRRP Router receiving a packet with
//! the TTL not equal to 255 MUST discard the packet \[RFC5082\]." Section 5.1.2.3: "The Hop Limit
//! MUST be set to 255. A VRRP Router receiving a packet with the Hop Limit not equal to 255 MUST
//! discard the packet \[RFC5082\]."

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrStorage,
};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::NetError;

/// IP protocol number of VRRP (RFC 9568 - Section 5.1.1.4, paraphrased: the IPv4 protocol field
/// is 112; Section 7.2: "Set the IPvX protocol to VRRP").
pub const IPPROTO_VRRP: i32 = 112;
/// RFC 9568 - Section 5.1.1.2 (paraphrased): the IANA-assigned IPv4 multicast address of VRRP,
/// 224.0.0.18.
pub const VRRP_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// RFC 9568 - Section 5.1.2.2 (paraphrased): the IANA-assigned IPv6 multicast address of VRRP,
/// FF02:0:0:0:0:0:0:12.
pub const VRRP_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// The largest VRRP packet we read (IPv4 header up to 60 bytes + 8 + 255 * 16 + 8 fits easily).
const RX_BUF: usize = 4096;

/// Where adverts go and which are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// To the VRRP group of the family, from anyone on the link.
    Multicast,
    /// To each of these addresses; the runner accepts adverts only from them.
    Unicast(Vec<IpAddr>),
}

/// How to open a [`VrrpSocket`].
#[derive(Debug, Clone)]
pub struct SocketConfig {
    /// The interface name (bound with `SO_BINDTODEVICE`).
    pub ifname: String,
    /// The interface index (multicast membership and IPv6 scope).
    pub ifindex: u32,
    /// The address the adverts are sent from (and the socket is bound to): the interface's
    /// primary IPv4 address or its IPv6 link-local address, or the configured unicast source.
    pub src: IpAddr,
    /// Multicast or unicast peers.
    pub transport: Transport,
}

/// A datagram received on the socket, with the IP-level facts the VRRP receive checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The IP source address of the datagram (the sender's primary address).
    pub src: IpAddr,
    /// The IP destination address (group or our unicast address).
    pub dst: IpAddr,
    /// The IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// The VRRP message (IP header removed).
    pub payload: Vec<u8>,
}

/// Why a received IPv4 datagram could not be read as one (counted by the runner as a drop).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IpHeaderError {
    /// Fewer bytes than an IPv4 header.
    #[error("datagram of {0} bytes is shorter than an IPv4 header")]
    Short(usize),
    /// The version nibble is not 4.
    #[error("IP version {0}, expected 4")]
    Version(u8),
    /// IHL below 5 words or beyond the datagram.
    #[error("IPv4 header length {ihl} words does not fit {len} bytes")]
    Ihl {
        /// The IHL field (32-bit words).
        ihl: u8,
        /// Bytes received.
        len: usize,
    },
    /// Total length smaller than the header or larger than what was received.
    #[error("IPv4 total length {total} does not fit {len} received bytes")]
    TotalLength {
        /// The total length field.
        total: u16,
        /// Bytes received.
        len: usize,
    },
    /// IPv6 delivery without the hop limit or packet-info control message.
    #[error("missing IPv6 {0} control message")]
    MissingControl(&'static str),
}

impl IpHeaderError {
    /// A stable snake_case name for counters.
    pub fn label(&self) -> &'static str {
        match self {
            IpHeaderError::Short(_) => "ip_short",
            IpHeaderError::Version(_) => "ip_version",
            IpHeaderError::Ihl { .. } => "ip_bad_ihl",
            IpHeaderError::TotalLength { .. } => "ip_bad_total_length",
            IpHeaderError::MissingControl(_) => "ip_missing_control",
        }
    }
}

/// Splits a raw IPv4 datagram as a raw socket delivers it into (src, dst, ttl, payload).
///
/// The header length comes from IHL (RFC 791 - Section 3.1: "Internet Header Length is the
/// length of the internet header in 32 bit words ... the minimum value for a correct header is
/// 5"), so IP options are skipped, and the payload ends at Total Length.
pub fn parse_ipv4(buf: &[u8]) -> Result<(Ipv4Addr, Ipv4Addr, u8, &[u8]), IpHeaderError> {
    let len = buf.len();
    // A fixed-size array: every constant index below is checked at compile time.
    let Some(hdr) = buf.first_chunk::<20>() else {
        return Err(IpHeaderError::Short(len));
    };
    let (vihl, ttl) = (hdr[0], hdr[8]);
    if vihl >> 4 != 4 {
        return Err(IpHeaderError::Version(vihl >> 4));
    }
    let ihl = vihl & 0x0f;
    let hlen = usize::from(ihl) * 4;
    if ihl < 5 || hlen > len {
        return Err(IpHeaderError::Ihl { ihl, len });
    }
    let total = u16::from_be_bytes([hdr[2], hdr[3]]);
    let tlen = usize::from(total);
    if tlen < hlen || tlen > len {
        return Err(IpHeaderError::TotalLength { total, len });
    }
    let src = Ipv4Addr::new(hdr[12], hdr[13], hdr[14], hdr[15]);
    let dst = Ipv4Addr::new(hdr[16], hdr[17], hdr[18], hdr[19]);
    let payload = buf.get(hlen..tlen).unwrap_or(&[]);
    Ok((src, dst, ttl, payload))
}

/// The VRRP socket of one instance.
#[derive(Debug)]
pub struct VrrpSocket {
    fd: AsyncFd<Socket>,
    cfg: SocketConfig,
}

impl VrrpSocket {
    /// Opens, configures and binds the socket (needs `CAP_NET_RAW`). Must be called inside a
    /// tokio runtime (the socket is registered with its reactor).
    pub fn open(cfg: SocketConfig) -> Result<VrrpSocket, NetError> {
        let ctx = |what: &str| format!("{what} (VRRP socket on {})", cfg.ifname);
        let v6 = cfg.src.is_ipv6();
        let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
        let sock = Socket::new(domain, Type::RAW, Some(Protocol::from(IPPROTO_VRRP)))
            .map_err(|e| NetError::io(ctx("socket(SOCK_RAW, 112)"), e))?;
        sock.bind_device(Some(cfg.ifname.as_bytes()))
            .map_err(|e| NetError::io(ctx("SO_BINDTODEVICE"), e))?;
        match cfg.src {
            IpAddr::V4(src) => {
                sock.set_ttl_v4(255)
                    .map_err(|e| NetError::io(ctx("IP_TTL 255"), e))?;
                sock.set_multicast_ttl_v4(255)
                    .map_err(|e| NetError::io(ctx("IP_MULTICAST_TTL 255"), e))?;
                sock.set_multicast_loop_v4(false)
                    .map_err(|e| NetError::io(ctx("IP_MULTICAST_LOOP off"), e))?;
                // Internetwork control, as keepalived sets it; a failure here is harmless.
                let _ = sock.set_tos_v4(0xc0);
                // A raw IPv4 socket bound to an address only receives datagrams sent to that
                // address (`raw_v4_match`), which would filter out 224.0.0.18: in multicast
                // mode the source is set with IP_MULTICAST_IF instead; in unicast mode the
                // peers send to `src`, so binding is both the source and the right filter.
                if cfg.transport != Transport::Multicast {
                    sock.bind(&SockAddr::from(SocketAddr::new(IpAddr::V4(src), 0)))
                        .map_err(|e| NetError::io(ctx(&format!("bind {src}")), e))?;
                }
                if cfg.transport == Transport::Multicast {
                    sock.join_multicast_v4_n(
                        &VRRP_GROUP_V4,
                        &socket2::InterfaceIndexOrAddress::Index(cfg.ifindex),
                    )
                    .map_err(|e| NetError::io(ctx("join 224.0.0.18"), e))?;
                    sock.set_multicast_if_v4(&src)
                        .map_err(|e| NetError::io(ctx("IP_MULTICAST_IF"), e))?;
                }
            }
            IpAddr::V6(src) => {
                sock.set_unicast_hops_v6(255)
                    .map_err(|e| NetError::io(ctx("IPV6_UNICAST_HOPS 255"), e))?;
                sock.set_multicast_hops_v6(255)
                    .map_err(|e| NetError::io(ctx("IPV6_MULTICAST_HOPS 255"), e))?;
                sock.set_multicast_loop_v6(false)
                    .map_err(|e| NetError::io(ctx("IPV6_MULTICAST_LOOP off"), e))?;
                sock.set_recv_hoplimit_v6(true)
                    .map_err(|e| NetError::io(ctx("IPV6_RECVHOPLIMIT"), e))?;
                setsockopt(&sock, sockopt::Ipv6RecvPacketInfo, &true)
                    .map_err(|e| NetError::io(ctx("IPV6_RECVPKTINFO"), e))?;
                let scope = if super::iface::is_link_local(src) {
                    cfg.ifindex
                } else {
                    0
                };
                sock.bind(&SockAddr::from(SocketAddrV6::new(src, 0, 0, scope)))
                    .map_err(|e| NetError::io(ctx(&format!("bind {src}")), e))?;
                if cfg.transport == Transport::Multicast {
                    sock.join_multicast_v6(&VRRP_GROUP_V6, cfg.ifindex)
                        .map_err(|e| NetError::io(ctx("join ff02::12"), e))?;
                    sock.set_multicast_if_v6(cfg.ifindex)
                        .map_err(|e| NetError::io(ctx("IPV6_MULTICAST_IF"), e))?;
                }
            }
        }
        sock.set_nonblocking(true)
            .map_err(|e| NetError::io(ctx("O_NONBLOCK"), e))?;
        // tokio 1.54 deprecates `AsyncFd::new` because a generic `AsRawFd` type may hand out a
        // different or closed fd later; its replacement, `AsyncFd::register`, is `unsafe`, which
        // this crate forbids. A `socket2::Socket` owns its fd for its whole life and always
        // returns the same one, so the condition the deprecation is about holds here.
        #[allow(deprecated)]
        let fd = AsyncFd::new(sock).map_err(|e| NetError::io(ctx("register with tokio"), e))?;
        Ok(VrrpSocket { fd, cfg })
    }

    /// The configuration the socket was opened with.
    pub fn config(&self) -> &SocketConfig {
        &self.cfg
    }

    /// The destinations an advert goes to: the group, or every unicast peer.
    pub fn destinations(&self) -> Vec<IpAddr> {
        match (&self.cfg.transport, self.cfg.src) {
            (Transport::Multicast, IpAddr::V4(_)) => vec![IpAddr::V4(VRRP_GROUP_V4)],
            (Transport::Multicast, IpAddr::V6(_)) => vec![IpAddr::V6(VRRP_GROUP_V6)],
            (Transport::Unicast(peers), _) => peers.clone(),
        }
    }

    /// Sends one VRRP message (already encoded for `dst`: the v3 checksum covers `dst`) to `dst`.
    pub async fn send_to(&self, payload: &[u8], dst: IpAddr) -> io::Result<()> {
        let addr = match dst {
            IpAddr::V4(a) => SockAddr::from(SocketAddr::new(IpAddr::V4(a), 0)),
            IpAddr::V6(a) => {
                let scope = if a.is_multicast() || super::iface::is_link_local(a) {
                    self.cfg.ifindex
                } else {
                    0
                };
                SockAddr::from(SocketAddrV6::new(a, 0, 0, scope))
            }
        };
        loop {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|s| s.get_ref().send_to(payload, &addr)) {
                Ok(r) => return r.map(|_| ()),
                Err(_would_block) => continue,
            }
        }
    }

    /// Waits for the next datagram. The outer error is an I/O failure of the socket; the inner
    /// one a datagram that is not a readable IP packet (to be counted, not fatal).
    pub async fn recv(&self) -> io::Result<Result<Received, IpHeaderError>> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|s| self.recv_now(s.get_ref())) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    fn recv_now(&self, sock: &Socket) -> io::Result<Result<Received, IpHeaderError>> {
        let mut buf = [0u8; RX_BUF];
        let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int);
        let (n, src, hop, pktdst) = {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = recvmsg::<SockaddrStorage>(
                sock.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_DONTWAIT,
            )
            .map_err(io::Error::from)?;
            let mut hop = None;
            let mut pktdst = None;
            if let Ok(cmsgs) = msg.cmsgs() {
                for c in cmsgs {
                    match c {
                        ControlMessageOwned::Ipv6HopLimit(h) => {
                            hop = Some(u8::try_from(h).unwrap_or(0));
                        }
                        ControlMessageOwned::Ipv6PacketInfo(info) => {
                            pktdst = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr));
                        }
                        _ => {}
                    }
                }
            }
            let src = msg.address.and_then(|a| {
                a.as_sockaddr_in6()
                    .map(|s| IpAddr::V6(s.ip()))
                    .or_else(|| a.as_sockaddr_in().map(|s| IpAddr::V4(s.ip())))
            });
            (msg.bytes, src, hop, pktdst)
        };
        let data = buf.get(..n).unwrap_or(&[]);
        if self.cfg.src.is_ipv4() {
            return Ok(parse_ipv4(data).map(|(src, dst, ttl, payload)| Received {
                src: IpAddr::V4(src),
                dst: IpAddr::V4(dst),
                ttl,
                payload: payload.to_vec(),
            }));
        }
        let Some(ttl) = hop else {
            return Ok(Err(IpHeaderError::MissingControl("hop limit")));
        };
        let (Some(src), Some(dst)) = (src, pktdst) else {
            return Ok(Err(IpHeaderError::MissingControl("packet info")));
        };
        Ok(Ok(Received {
            src,
            dst: IpAddr::V6(dst),
            ttl,
            payload: data.to_vec(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(ihl: u8, ttl: u8, payload: &[u8], options: &[u8]) -> Vec<u8> {
        let total = 4 * usize::from(ihl) + payload.len();
        let mut b = vec![0x40 | ihl, 0xc0];
        b.extend_from_slice(&(total as u16).to_be_bytes());
        b.extend_from_slice(&[0, 0, 0, 0, ttl, 112, 0, 0]);
        b.extend_from_slice(&[192, 0, 2, 1, 224, 0, 0, 18]);
        b.extend_from_slice(options);
        b.extend_from_slice(payload);
        b
    }

    #[test]
    fn plain_header_is_split() {
        let d = v4(5, 255, &[0x31, 7, 100, 1], &[]);
        let (s, t, ttl, p) = parse_ipv4(&d).unwrap();
        assert_eq!(s, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(t, VRRP_GROUP_V4);
        assert_eq!(ttl, 255);
        assert_eq!(p, &[0x31, 7, 100, 1]);
    }

    #[test]
    fn options_are_skipped_by_ihl() {
        // IHL 6: one 4-byte option word (router alert) before the payload.
        let d = v4(6, 254, &[0x21, 9], &[0x94, 0x04, 0, 0]);
        let (_, _, ttl, p) = parse_ipv4(&d).unwrap();
        assert_eq!(ttl, 254, "TTL is reported, not checked, here");
        assert_eq!(p, &[0x21, 9]);
    }

    #[test]
    fn trailing_bytes_beyond_total_length_are_cut() {
        let mut d = v4(5, 255, &[1, 2], &[]);
        d.extend_from_slice(&[9, 9, 9]);
        assert_eq!(parse_ipv4(&d).unwrap().3, &[1, 2]);
    }

    #[test]
    fn every_short_prefix_is_an_error_not_a_panic() {
        let d = v4(6, 255, &[1, 2, 3], &[0x94, 4, 0, 0]);
        for n in 0..d.len() {
            assert!(parse_ipv4(&d[..n]).is_err(), "prefix of {n} bytes");
        }
    }

    #[test]
    fn random_datagrams_never_panic_and_payload_stays_inside() {
        // A deterministic xorshift stream: 200,000 datagrams of 0..80 bytes, first byte biased
        // towards version 4 so the deeper checks are reached.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200_000 {
            let len = (next() % 80) as usize;
            let mut d: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if let Some(b) = d.first_mut() {
                if next() % 2 == 0 {
                    *b = 0x40 | (*b & 0x0f);
                }
            }
            if d.len() >= 4 && next() % 2 == 0 {
                let l = d.len() as u16;
                d[2..4].copy_from_slice(&l.to_be_bytes());
            }
            if let Ok((_, _, _, p)) = parse_ipv4(&d) {
                assert!(p.len() + 20 <= d.len());
            }
        }
    }

    #[test]
    fn bad_headers_have_their_reason() {
        let mut d = v4(5, 255, &[1], &[]);
        d[0] = 0x45 | 0x60; // version 6
        assert_eq!(parse_ipv4(&d), Err(IpHeaderError::Version(6)));
        let mut d = v4(5, 255, &[1], &[]);
        d[0] = 0x44; // IHL 4
        assert!(matches!(
            parse_ipv4(&d),
            Err(IpHeaderError::Ihl { ihl: 4, .. })
        ));
        let mut d = v4(5, 255, &[1], &[]);
        d[0] = 0x4f; // IHL 15 = 60 bytes > 21
        assert!(matches!(
            parse_ipv4(&d),
            Err(IpHeaderError::Ihl { ihl: 15, .. })
        ));
        let mut d = v4(5, 255, &[1], &[]);
        d[3] = 200; // total length beyond the datagram
        assert!(matches!(
            parse_ipv4(&d),
            Err(IpHeaderError::TotalLength {
                total: 200,
                len: 21
            })
        ));
        assert_eq!(IpHeaderError::Short(3).label(), "ip_short");
    }
}
