//! The Internet checksum (RFC 1071) over the VRRP message, with the IPv4 / IPv6 pseudo-header for
//! VRRPv3.
//!
//! RFC 9568 - Section 5.2.8 (paraphrased): the 16-bit one's complement of the one's complement
//! sum of the whole VRRP message from the version field, plus a pseudo-header (for IPv6 the one
//! of RFC 8200 - Section 8.1, next header 112; for IPv4 the one of RFC 768), computed with the
//! checksum field set to zero.
//!
//! RFC 3768 - Section 5.3.8 (paraphrased): the same sum over the VRRP message from the version
//! field, with the checksum field set to zero, and no pseudo-header.

use std::net::IpAddr;

/// IP protocol number of VRRP.
///
/// RFC 9568 - Section 5.1.1.4 (paraphrased): the IPv4 protocol field is 112.
pub const IPPROTO_VRRP: u8 = 112;

/// A running one's complement sum over a byte stream (handles odd-length pieces).
#[derive(Debug, Default)]
struct Sum {
    acc: u64,
    pending: Option<u8>,
}

impl Sum {
    fn feed(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        if let Some(hi) = self.pending.take() {
            match rest.split_first() {
                Some((lo, tail)) => {
                    self.acc += u64::from(u16::from_be_bytes([hi, *lo]));
                    rest = tail;
                }
                None => {
                    self.pending = Some(hi);
                    return;
                }
            }
        }
        let mut chunks = rest.chunks_exact(2);
        for pair in &mut chunks {
            if let [a, b] = pair {
                self.acc += u64::from(u16::from_be_bytes([*a, *b]));
            }
        }
        if let [last] = chunks.remainder() {
            self.pending = Some(*last);
        }
    }

    fn finish(mut self) -> u16 {
        if let Some(hi) = self.pending.take() {
            self.acc += u64::from(u16::from_be_bytes([hi, 0]));
        }
        while self.acc > 0xffff {
            self.acc = (self.acc & 0xffff) + (self.acc >> 16);
        }
        // acc <= 0xffff here, so the conversion cannot fail.
        !u16::try_from(self.acc).unwrap_or(0xffff)
    }
}

/// The VRRPv2 checksum of `msg` (the whole VRRP message, checksum field included as it is: pass
/// a message with a zero checksum field to compute, or the received one to verify, which then
/// yields 0).
pub fn v2(msg: &[u8]) -> u16 {
    let mut s = Sum::default();
    s.feed(msg);
    s.finish()
}

/// The VRRPv3 checksum of `msg` with the pseudo-header of `src`/`dst` (same verify rule as
/// [`v2`]). Mixed address families are summed as given; the callers reject them before.
pub fn v3(src: IpAddr, dst: IpAddr, msg: &[u8]) -> u16 {
    let mut s = Sum::default();
    let len = msg.len();
    match (src, dst) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            // RFC 768 pseudo-header: src, dst, zero, protocol, length (16 bits).
            s.feed(&a.octets());
            s.feed(&b.octets());
            s.feed(&[0, IPPROTO_VRRP]);
            s.feed(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
        }
        _ => {
            // RFC 8200 - Section 8.1 pseudo-header: src, dst, upper-layer length (32 bits),
            // three zero bytes, next header.
            s.feed(&v6_octets(src));
            s.feed(&v6_octets(dst));
            s.feed(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
            s.feed(&[0, 0, 0, IPPROTO_VRRP]);
        }
    }
    s.feed(msg);
    s.finish()
}

fn v6_octets(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 - Section 3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2, checksum 220d.
        assert_eq!(
            v2(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
    }

    #[test]
    fn odd_lengths_pad_with_zero() {
        assert_eq!(v2(&[0x12]), !0x1200);
        assert_eq!(v2(&[0x12, 0x34, 0x56]), !(0x1234 + 0x5600));
    }

    #[test]
    fn verify_yields_zero() {
        let mut msg = vec![
            0x31, 0x01, 0x09, 0x64, 0x01, 0x00, 0x00, 0x00, 192, 168, 1, 1,
        ];
        let c = v2(&msg);
        msg[6..8].copy_from_slice(&c.to_be_bytes());
        assert_eq!(v2(&msg), 0);
    }
}
