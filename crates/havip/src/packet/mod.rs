//! VRRP advertisement encode/decode for VRRPv3 (RFC 9568, IPv4 and IPv6) and VRRPv2 (RFC 3768,
//! IPv4), with checksums and every receive check of the RFCs' Section 7.1. Pure: no I/O.
//!
//! VRRPv3 (RFC 9568 - Section 5.1):
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    IPv4 Fields or IPv6 Fields                 |
//! ...                                                             ...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |(rsvd) |     Max Adver Int     |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       IPvX Address(es)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! VRRPv2 (RFC 3768 - Section 5.1):
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Auth Type   |   Adver Int   |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         IP Address (1)                        |
//! |                            .....                              |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     Authentication Data (1)                   |
//! |                     Authentication Data (2)                   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! The bytes handled here are the VRRP message only (the IP payload); the IP source,
//! destination and TTL come in [`RxMeta`].

pub mod checksum;
mod drop;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use drop::{check_local, DropReason, LocalCheck};

use crate::time::Centisecs;

/// The VRRP version of an instance or a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// VRRPv2, RFC 3768 (IPv4 only, interval in whole seconds, optional simple password).
    V2,
    /// VRRPv3, RFC 9568 (IPv4 and IPv6, interval in centiseconds, pseudo-header checksum).
    V3,
}

impl Version {
    /// The value of the version nibble.
    pub fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VRRPv{}", self.number())
    }
}

/// VRRPv2 authentication (ignored, and `None`, for VRRPv3).
///
/// RFC 3768 - Section 5.3.6 (paraphrased): the Auth Type field names the authentication method
/// in use; a packet with an unknown one, or one that does not match ours, is discarded. Type 1 (keepalived's `auth_type PASS`) carries an 8-byte password in the
/// Authentication Data field.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub enum Auth {
    /// Auth Type 0 ("No Authentication"). The 8 Authentication Data bytes are sent as zeros
    /// (RFC 3768 - Section 5.3.10, paraphrased: unused data is zero on transmission and ignored on
    /// reception), as keepalived does.
    #[default]
    None,
    /// Auth Type 1: the password, zero-padded to 8 bytes.
    Simple([u8; 8]),
}

impl Auth {
    /// A simple-password authentication from a string, truncated or zero-padded to 8 bytes (as
    /// keepalived does).
    pub fn simple(password: &str) -> Auth {
        let mut data = [0u8; 8];
        for (d, s) in data.iter_mut().zip(password.bytes()) {
            *d = s;
        }
        Auth::Simple(data)
    }

    fn type_byte(&self) -> u8 {
        match self {
            Auth::None => 0,
            Auth::Simple(_) => 1,
        }
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => write!(f, "None"),
            // Never print a secret.
            Auth::Simple(_) => write!(f, "Simple(MASKED)"),
        }
    }
}

/// A VRRP ADVERTISEMENT, version-independent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Advert {
    /// RFC 9568 - Section 5.2.1: the version nibble (3; 2 for RFC 3768 peers).
    pub version: Version,
    /// RFC 9568 - Section 5.2.3 (paraphrased): the Virtual Router Identifier (VRID) of the
    /// Virtual Router the packet reports on.
    pub vrid: u8,
    /// RFC 9568 - Section 5.2.4 (paraphrased): the sending VRRP Router's priority for the Virtual
    /// Router. 255 = address owner, 0 = the sender stops participating.
    pub priority: u8,
    /// The (Max) Advertisement Interval. v3: 12-bit centiseconds; v2: whole seconds on the wire,
    /// kept here in centiseconds.
    pub max_advert_int: Centisecs,
    /// The virtual addresses (all IPv4, or all IPv6 for v3 over IPv6).
    pub addresses: Vec<IpAddr>,
    /// VRRPv2 authentication; always [`Auth::None`] for v3.
    pub auth: Auth,
}

/// What the receive path knows about a packet besides its VRRP bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxMeta {
    /// IP source address: the sender's primary address, used in the RFC 9568 - Section 6.4.3
    /// tie-break.
    pub src: IpAddr,
    /// IP destination address (the multicast group, or ours in unicast mode).
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 Hop Limit.
    pub ttl_or_hop_limit: u8,
}

/// Why an advertisement cannot be encoded (a configuration error, caught before sending).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// Source, destination and virtual addresses must all be of one family.
    #[error("source, destination and virtual addresses must be of one address family")]
    FamilyMismatch,
    /// VRRPv2 is IPv4 only.
    #[error("VRRPv2 cannot carry IPv6 (RFC 3768 is for IPv4)")]
    V2OverIpv6,
    /// RFC 9568 - Section 5.2.5 (erratum 8299): "If the received count is 0, the VRRP
    /// advertisement MUST be ignored." The field is 8 bits.
    #[error("{0} virtual addresses: VRRP carries 1 to 255")]
    AddressCount(usize),
    /// The interval does not fit the packet (v3: 1..=4095 cs; v2: 1..=255 whole seconds).
    #[error("advertisement interval {0} cannot be sent in {1}")]
    Interval(Centisecs, Version),
}

/// VRRP packet type ADVERTISEMENT.
///
/// RFC 9568 - Section 5.2.2 (paraphrased): ADVERTISEMENT (1) is the only type defined; and "A
/// packet with unknown type MUST be discarded."
pub const TYPE_ADVERTISEMENT: u8 = 1;
/// Length of the fixed VRRP header.
const HEADER_LEN: usize = 8;
/// Length of the VRRPv2 Authentication Data.
const V2_AUTH_LEN: usize = 8;
/// The TTL / hop limit every VRRP packet is sent and received with.
///
/// RFC 9568 - Section 5.1.1.3: "The TTL MUST be set to 255."
pub const VRRP_TTL: u8 = 255;

fn family_len(a: IpAddr) -> usize {
    match a {
        IpAddr::V4(_) => 4,
        IpAddr::V6(_) => 16,
    }
}

/// Encodes `advert` as sent from `src` to `dst` (needed for the VRRPv3 pseudo-header checksum).
///
/// The checksum covers the whole VRRP message from the version field, plus (v3 only) the IP
/// pseudo-header (RFC 9568 - Section 5.2.8 and RFC 3768 - Section 5.3.8, paraphrased). The v3
/// reserved bits are sent as zero (RFC 9568 - Section 5.2.6: "The Reserve field MUST be set to
/// zero on transmission and ignored on reception.").
pub fn encode(advert: &Advert, src: IpAddr, dst: IpAddr) -> Result<Vec<u8>, EncodeError> {
    let v6 = src.is_ipv6();
    if dst.is_ipv6() != v6 || advert.addresses.iter().any(|a| a.is_ipv6() != v6) {
        return Err(EncodeError::FamilyMismatch);
    }
    if advert.version == Version::V2 && v6 {
        return Err(EncodeError::V2OverIpv6);
    }
    let count = u8::try_from(advert.addresses.len())
        .ok()
        .filter(|c| *c > 0)
        .ok_or(EncodeError::AddressCount(advert.addresses.len()))?;
    let bad_interval = EncodeError::Interval(advert.max_advert_int, advert.version);
    let second_byte_and_interval: [u8; 2] = match advert.version {
        Version::V3 => {
            let cs = advert.max_advert_int.get();
            if cs == 0 || cs > Centisecs::V3_MAX.get() {
                return Err(bad_interval);
            }
            u16::try_from(cs).map_err(|_| bad_interval)?.to_be_bytes()
        }
        Version::V2 => {
            let secs = advert
                .max_advert_int
                .whole_secs()
                .and_then(|s| u8::try_from(s).ok())
                .filter(|s| *s > 0)
                .ok_or(bad_interval)?;
            [advert.auth.type_byte(), secs]
        }
    };
    let addr_len = family_len(src);
    let auth_len = if advert.version == Version::V2 {
        V2_AUTH_LEN
    } else {
        0
    };
    let mut out = Vec::with_capacity(HEADER_LEN + addr_len * advert.addresses.len() + auth_len);
    out.push((advert.version.number() << 4) | TYPE_ADVERTISEMENT);
    out.push(advert.vrid);
    out.push(advert.priority);
    out.push(count);
    out.extend_from_slice(&second_byte_and_interval);
    out.extend_from_slice(&[0, 0]);
    for a in &advert.addresses {
        match a {
            IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
        }
    }
    if advert.version == Version::V2 {
        match &advert.auth {
            Auth::None => out.extend_from_slice(&[0; V2_AUTH_LEN]),
            Auth::Simple(pw) => out.extend_from_slice(pw),
        }
    }
    let sum = match advert.version {
        Version::V3 => checksum::v3(src, dst, &out),
        Version::V2 => checksum::v2(&out),
    };
    if let Some(field) = out.get_mut(6..8) {
        field.copy_from_slice(&sum.to_be_bytes());
    }
    Ok(out)
}

/// Decodes and validates one received VRRP message (the IP payload), in the order of RFC 9568 -
/// Section 7.1 ("If any one of the above checks fails, the receiver MUST discard the packet"):
/// address family, TTL/hop limit, length of the fixed header, version, type, length against the
/// address count, checksum, then the field values (interval, count, v2 auth type).
///
/// Every failure is a [`DropReason`] for the caller to count. Never panics, whatever the bytes.
pub fn decode(meta: &RxMeta, bytes: &[u8]) -> Result<Advert, DropReason> {
    let v6 = meta.src.is_ipv6();
    if meta.dst.is_ipv6() != v6 {
        return Err(DropReason::FamilyMismatch);
    }
    // RFC 9568 - Section 5.1.1.3: "A VRRP Router receiving a packet with the TTL not equal to 255
    // MUST discard the packet [RFC5082]."
    if meta.ttl_or_hop_limit != VRRP_TTL {
        return Err(DropReason::BadTtl {
            got: meta.ttl_or_hop_limit,
        });
    }
    let Some(&[vt, vrid, priority, count, b4, b5, c6, c7]) = bytes.get(..HEADER_LEN) else {
        return Err(DropReason::Truncated { len: bytes.len() });
    };
    // RFC 9568 - Section 7.1: "It MUST verify that the VRRP version is 3."
    let version = match vt >> 4 {
        2 => Version::V2,
        3 => Version::V3,
        got => return Err(DropReason::BadVersion { got }),
    };
    if version == Version::V2 && v6 {
        return Err(DropReason::FamilyMismatch);
    }
    // RFC 9568 - Section 7.1: "It MUST verify that the VRRP packet type is 1 (ADVERTISEMENT)."
    if vt & 0x0f != TYPE_ADVERTISEMENT {
        return Err(DropReason::BadType { got: vt & 0x0f });
    }
    // RFC 9568 - Section 7.1: "It MUST verify that the received packet contains the complete
    // VRRP packet (including fixed fields and the IPvX address)."
    let addr_len = if v6 { 16 } else { 4 };
    let auth_len = if version == Version::V2 {
        V2_AUTH_LEN
    } else {
        0
    };
    let want_len = HEADER_LEN + usize::from(count) * addr_len + auth_len;
    if bytes.len() != want_len {
        return Err(DropReason::LengthMismatch {
            count,
            len: bytes.len(),
        });
    }
    // RFC 9568 - Section 7.1: "It MUST verify the VRRP checksum."
    let residual = match version {
        Version::V3 => checksum::v3(meta.src, meta.dst, bytes),
        Version::V2 => checksum::v2(bytes),
    };
    if residual != 0 {
        let got = u16::from_be_bytes([c6, c7]);
        let mut zeroed = bytes.to_vec();
        if let Some(field) = zeroed.get_mut(6..8) {
            field.copy_from_slice(&[0, 0]);
        }
        let want = match version {
            Version::V3 => checksum::v3(meta.src, meta.dst, &zeroed),
            Version::V2 => checksum::v2(&zeroed),
        };
        return Err(DropReason::BadChecksum { got, want });
    }
    let (max_advert_int, auth_type) = match version {
        // RFC 9568 - Section 5.2.6: rsvd "MUST be set to zero on transmission and ignored on
        // reception."
        Version::V3 => (Centisecs(u32::from(u16::from_be_bytes([b4 & 0x0f, b5]))), 0),
        Version::V2 => (Centisecs::from_secs(u32::from(b5)), b4),
    };
    // RFC 9568 - Section 7.1 (erratum 8301): "It MUST verify that the Max Advertise Interval is
    // non zero."
    if max_advert_int.get() == 0 {
        return Err(DropReason::ZeroInterval);
    }
    // RFC 9568 - Section 5.2.5 (erratum 8299): "If the received count is 0, the VRRP
    // advertisement MUST be ignored."
    if count == 0 {
        return Err(DropReason::NoAddresses);
    }
    let body = bytes.get(HEADER_LEN..).unwrap_or_default();
    let addresses: Vec<IpAddr> = body
        .chunks_exact(addr_len)
        .take(usize::from(count))
        .map(|c| match <[u8; 16]>::try_from(c) {
            Ok(o) => IpAddr::V6(Ipv6Addr::from(o)),
            Err(_) => {
                let mut o = [0u8; 4];
                for (d, s) in o.iter_mut().zip(c) {
                    *d = *s;
                }
                IpAddr::V4(Ipv4Addr::from(o))
            }
        })
        .collect();
    let auth = match (version, auth_type) {
        (Version::V3, _) | (Version::V2, 0) => Auth::None,
        (Version::V2, 1) => {
            let mut pw = [0u8; 8];
            let tail = body
                .get(usize::from(count) * addr_len..)
                .unwrap_or_default();
            for (d, s) in pw.iter_mut().zip(tail) {
                *d = *s;
            }
            Auth::Simple(pw)
        }
        (Version::V2, got) => return Err(DropReason::UnsupportedAuthType { got }),
    };
    Ok(Advert {
        version,
        vrid,
        priority,
        max_advert_int,
        addresses,
        auth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    fn meta(src: &str, dst: &str) -> RxMeta {
        RxMeta {
            src: v4(src),
            dst: v4(dst),
            ttl_or_hop_limit: 255,
        }
    }

    fn sample(version: Version) -> Advert {
        Advert {
            version,
            vrid: 9,
            priority: 120,
            max_advert_int: Centisecs(100),
            addresses: vec![v4("192.168.77.100"), v4("192.168.77.101")],
            auth: Auth::None,
        }
    }

    #[test]
    fn round_trip_v3_v4() {
        let a = sample(Version::V3);
        let m = meta("192.168.77.1", "224.0.0.18");
        let b = encode(&a, m.src, m.dst).unwrap_or_default();
        assert_eq!(b.len(), 16);
        assert_eq!(decode(&m, &b), Ok(a));
    }

    #[test]
    fn round_trip_v2_with_password() {
        let mut a = sample(Version::V2);
        a.auth = Auth::simple("secret");
        let m = meta("192.168.77.1", "224.0.0.18");
        let b = encode(&a, m.src, m.dst).unwrap_or_default();
        assert_eq!(b.len(), 24);
        assert_eq!(b.get(16..22), Some(&b"secret"[..]));
        assert_eq!(decode(&m, &b), Ok(a));
    }

    #[test]
    fn round_trip_v3_v6() {
        let a = Advert {
            addresses: vec!["fd00::100".parse().unwrap_or(v4("0.0.0.0"))],
            ..sample(Version::V3)
        };
        let m = RxMeta {
            src: "fe80::1".parse().unwrap_or(v4("0.0.0.0")),
            dst: "ff02::12".parse().unwrap_or(v4("0.0.0.0")),
            ttl_or_hop_limit: 255,
        };
        let b = encode(&a, m.src, m.dst).unwrap_or_default();
        assert_eq!(b.len(), 24);
        assert_eq!(decode(&m, &b), Ok(a));
        // The pseudo-header matters: another source breaks the checksum.
        let other = RxMeta {
            src: "fe80::2".parse().unwrap_or(v4("0.0.0.0")),
            ..m
        };
        assert!(matches!(
            decode(&other, &b),
            Err(DropReason::BadChecksum { .. })
        ));
    }

    #[test]
    fn encode_rejects_bad_config() {
        let m = meta("192.168.77.1", "224.0.0.18");
        let mut a = sample(Version::V2);
        a.max_advert_int = Centisecs(150);
        assert!(matches!(
            encode(&a, m.src, m.dst),
            Err(EncodeError::Interval(..))
        ));
        let mut a = sample(Version::V3);
        a.max_advert_int = Centisecs(4096);
        assert!(matches!(
            encode(&a, m.src, m.dst),
            Err(EncodeError::Interval(..))
        ));
        a.max_advert_int = Centisecs(0);
        assert!(matches!(
            encode(&a, m.src, m.dst),
            Err(EncodeError::Interval(..))
        ));
        let mut a = sample(Version::V3);
        a.addresses.clear();
        assert_eq!(encode(&a, m.src, m.dst), Err(EncodeError::AddressCount(0)));
        let a = sample(Version::V3);
        assert_eq!(
            encode(&a, m.src, "ff02::12".parse().unwrap_or(m.dst)),
            Err(EncodeError::FamilyMismatch)
        );
    }

    #[test]
    fn every_short_length_is_dropped_never_panics() {
        let a = sample(Version::V3);
        let m = meta("192.168.77.1", "224.0.0.18");
        let b = encode(&a, m.src, m.dst).unwrap_or_default();
        for n in 0..b.len() {
            let r = decode(&m, b.get(..n).unwrap_or_default());
            assert!(
                matches!(
                    r,
                    Err(DropReason::Truncated { .. } | DropReason::LengthMismatch { .. })
                ),
                "length {n}: {r:?}"
            );
        }
    }

    #[test]
    fn auth_debug_is_masked() {
        assert_eq!(format!("{:?}", Auth::simple("pw")), "Simple(MASKED)");
    }
}
