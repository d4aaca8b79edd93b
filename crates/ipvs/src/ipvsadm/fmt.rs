//! Address and number formatting exactly as ipvsadm 1.31 prints them (glibc `inet_ntop`,
//! `inet_ntoa`, and ipvsadm's `print_largenum`).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Appends `addr` as glibc's `inet_ntop` writes it.
///
/// IPv4 is the dotted quad. IPv6 follows glibc's `inet_ntop6` (`resolv/inet_ntop.c`): the first
/// longest run of two or more zero words becomes `::`, words print in lower-case hex without leading
/// zeros, and an address whose first six words are zero (IPv4-compatible, when word 6 is not zero)
/// or whose first five are zero followed by `ffff` (IPv4-mapped) ends in a dotted quad.
pub(crate) fn push_ip(out: &mut String, addr: IpAddr) {
    match addr {
        IpAddr::V4(a) => push_v4(out, a),
        IpAddr::V6(a) => push_v6(out, a),
    }
}

/// Appends an IPv4 address as a dotted quad (`inet_ntoa`).
pub(crate) fn push_v4(out: &mut String, a: Ipv4Addr) {
    let [b0, b1, b2, b3] = a.octets();
    push_u32(out, u32::from(b0));
    out.push('.');
    push_u32(out, u32::from(b1));
    out.push('.');
    push_u32(out, u32::from(b2));
    out.push('.');
    push_u32(out, u32::from(b3));
}

/// Appends a number in decimal (`%u`), without the formatting machinery: a save of a large
/// table prints a few hundred thousand of them.
pub(crate) fn push_u32(out: &mut String, mut n: u32) {
    let mut buf = [0u8; 10];
    let mut i = buf.len();
    loop {
        i -= 1;
        if let Some(b) = buf.get_mut(i) {
            *b = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    for b in buf.get(i..).unwrap_or_default() {
        out.push(char::from(*b));
    }
}

/// Appends a signed number in decimal (`%d`).
pub(crate) fn push_i32(out: &mut String, n: i32) {
    if n < 0 {
        out.push('-');
    }
    push_u32(out, n.unsigned_abs());
}

/// Appends an IPv6 address as glibc's `inet_ntop6` does.
pub(crate) fn push_v6(out: &mut String, a: Ipv6Addr) {
    let words = a.segments();
    // The first longest run of zero words (glibc keeps the first of equal runs).
    let (mut best_base, mut best_len) = (None::<usize>, 0usize);
    let (mut cur_base, mut cur_len) = (None::<usize>, 0usize);
    for (i, w) in words.iter().enumerate() {
        if *w == 0 {
            if cur_base.is_none() {
                cur_base = Some(i);
                cur_len = 1;
            } else {
                cur_len += 1;
            }
        } else if let Some(b) = cur_base.take() {
            if best_base.is_none() || cur_len > best_len {
                best_base = Some(b);
                best_len = cur_len;
            }
        }
    }
    if let Some(b) = cur_base {
        if best_base.is_none() || cur_len > best_len {
            best_base = Some(b);
            best_len = cur_len;
        }
    }
    if best_len < 2 {
        best_base = None;
    }
    for (i, w) in words.iter().enumerate() {
        if let Some(b) = best_base {
            if i >= b && i < b + best_len {
                if i == b {
                    out.push(':');
                }
                continue;
            }
        }
        if i != 0 {
            out.push(':');
        }
        if i == 6
            && best_base == Some(0)
            && (best_len == 6 || (best_len == 5 && words.get(5) == Some(&0xffff)))
        {
            let o = a.octets();
            let _ = write!(out, "{}.{}.{}.{}", o[12], o[13], o[14], o[15]);
            return;
        }
        let _ = write!(out, "{w:x}");
    }
    if let Some(b) = best_base {
        if b + best_len == 8 {
            out.push(':');
        }
    }
}

/// Appends `addr:port` as ipvsadm's numeric `addrport_to_anyname` does: IPv6 in brackets.
pub(crate) fn push_addr_port(out: &mut String, addr: IpAddr, port: u16) {
    if addr.is_ipv6() {
        out.push('[');
        push_ip(out, addr);
        out.push(']');
    } else {
        push_ip(out, addr);
    }
    out.push(':');
    push_u32(out, u32::from(port));
}

/// Appends a counter as ipvsadm's `print_largenum` does: nine columns, scaled to K/M/G/T beyond
/// 99,999,999 unless `exact`, in which case the number is printed whole after one space (at least
/// nine columns).
pub(crate) fn push_largenum(out: &mut String, n: u64, exact: bool) {
    if exact {
        let digits = n.to_string();
        let width = if digits.len() <= 8 {
            9
        } else {
            digits.len() + 1
        };
        let _ = write!(out, "{digits:>width$}");
        return;
    }
    let _ = if n < 100_000_000 {
        write!(out, "{n:>9}")
    } else if n < 1_000_000_000 {
        write!(out, "{:>8}K", n / 1_000)
    } else if n < 100_000_000_000 {
        write!(out, "{:>8}M", n / 1_000_000)
    } else if n < 100_000_000_000_000 {
        write!(out, "{:>8}G", n / 1_000_000_000)
    } else {
        write!(out, "{:>8}T", n / 1_000_000_000_000)
    };
}

/// Appends `s` left-aligned in `width` columns (C's `%-Ns`).
pub(crate) fn push_left(out: &mut String, s: &str, width: usize) {
    let _ = write!(out, "{s:<width$}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6(s: &str) -> String {
        let mut out = String::new();
        push_v6(&mut out, s.parse().unwrap_or(Ipv6Addr::UNSPECIFIED));
        out
    }

    #[test]
    fn ipv6_like_glibc() {
        assert_eq!(v6("2001:db8::1"), "2001:db8::1");
        assert_eq!(v6("::"), "::");
        assert_eq!(v6("::1"), "::1");
        assert_eq!(v6("::ffff:10.1.2.3"), "::ffff:10.1.2.3");
        // IPv4-compatible form: glibc prints the dotted quad, Rust's Display does not.
        assert_eq!(v6("::10.1.2.3"), "::10.1.2.3");
        assert_eq!(v6("1:0:0:2:0:0:0:3"), "1:0:0:2::3");
        assert_eq!(v6("1:0:0:2:0:0:3:4"), "1::2:0:0:3:4");
        assert_eq!(v6("1:0:2:3:4:5:6:7"), "1:0:2:3:4:5:6:7");
        assert_eq!(v6("fe80::"), "fe80::");
        assert_eq!(v6("2001:DB8:0:0:0:0:0:FFFF"), "2001:db8::ffff");
    }

    #[test]
    fn decimal_numbers() {
        let f = |n: i32| {
            let mut s = String::new();
            push_i32(&mut s, n);
            s
        };
        for n in [
            0,
            7,
            10,
            65535,
            i32::MAX,
            i32::MIN,
            -1,
            -1_294_967_296_i64 as i32,
        ] {
            assert_eq!(f(n), n.to_string());
        }
        let mut s = String::new();
        push_u32(&mut s, u32::MAX);
        assert_eq!(s, "4294967295");
    }

    #[test]
    fn largenum_like_ipvsadm() {
        let f = |n: u64, exact: bool| {
            let mut s = String::new();
            push_largenum(&mut s, n, exact);
            s
        };
        assert_eq!(f(0, false), "        0");
        assert_eq!(f(99_999_999, false), " 99999999");
        assert_eq!(f(100_000_000, false), "  100000K");
        assert_eq!(f(1_000_000_000, false), "    1000M");
        assert_eq!(f(100_000_000_000, false), "     100G");
        assert_eq!(f(100_000_000_000_000, false), "     100T");
        assert_eq!(f(123_456_789_012, true), " 123456789012");
        assert_eq!(f(5, true), "        5");
    }
}
