//! The words and values of a restore line: splitting on blanks, decimal numbers, IPv4 and IPv6
//! addresses with ports, firewall marks. Byte-level code: a restore of 10,000 x 10 runs these
//! some 400,000 times.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The words of a line, separated by spaces, tabs and carriage returns (ipvsadm's
/// `config_stream_read`), split byte by byte (all three are ASCII).
pub(crate) struct Words<'a>(pub(crate) &'a str);

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let sep = |c: &u8| matches!(c, b' ' | b'\t' | b'\r');
        let b = self.0.as_bytes();
        let start = b.iter().position(|c| !sep(c))?;
        let len = b
            .get(start..)?
            .iter()
            .position(sep)
            .unwrap_or(b.len() - start);
        let w = self.0.get(start..start + len)?;
        self.0 = self.0.get(start + len..).unwrap_or("");
        Some(w)
    }
}

/// A decimal number within `min..=max` (ipvsadm's `string_to_number`).
pub(crate) fn parse_u32_in(s: &str, min: u32, max: u32) -> Option<u32> {
    if s.is_empty() || s.len() > 10 {
        return None;
    }
    let mut v = 0u64;
    for d in s.bytes() {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(d - b'0');
    }
    u32::try_from(v).ok().filter(|n| (min..=max).contains(n))
}

/// A firewall mark, 1..2^32-1. `ipvsadm -Sn` prints marks above 2^31 with `%d`, as negative
/// numbers (`-f -1` is mark 4294967295): those read back as the mark they stand for.
pub(crate) fn parse_fwmark(s: &str) -> Result<u32, String> {
    let mark = match s.strip_prefix('-') {
        Some(n) => parse_u32_in(n, 1, 1 << 31).map(|n| n.wrapping_neg()),
        None => parse_u32_in(s, 1, u32::MAX),
    };
    mark.ok_or_else(|| format!("invalid firewall mark `{s}` (1..{})", u32::MAX))
}

/// `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:80`
/// (ipvsadm's `parse_service`, without name lookups).
pub(crate) fn parse_addr_port(s: &str) -> Result<(IpAddr, Option<u16>), String> {
    let port = |p: &str| {
        parse_u32_in(p, 0, 65_535)
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| format!("invalid port `{p}` (0..65535; service names are not resolved)"))
    };
    if let Some(rest) = s.strip_prefix('[') {
        let (a, tail) = rest.split_once(']').ok_or("missing `]`")?;
        let addr: Ipv6Addr = a
            .parse()
            .map_err(|_| format!("`{a}` is not an IPv6 address"))?;
        return match tail {
            "" => Ok((IpAddr::V6(addr), None)),
            t => match t.strip_prefix(':') {
                Some(p) => Ok((IpAddr::V6(addr), Some(port(p)?))),
                None => Err(format!("unexpected `{t}` after `]`")),
            },
        };
    }
    // The common case first: `a.b.c.d:port` or `a.b.c.d`.
    let (a, p) = match s.rsplit_once(':') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    if let Some(addr) = parse_v4(a) {
        return Ok((IpAddr::V4(addr), p.map(port).transpose()?));
    }
    if let Ok(a) = s.parse::<Ipv6Addr>() {
        return Ok((IpAddr::V6(a), None));
    }
    let shown = if s.matches(':').count() > 1 { s } else { a };
    Err(format!(
        "`{shown}` is not an IP address (host names are not resolved)"
    ))
}

/// A dotted-quad IPv4 address: four decimal octets 0..255 without leading zeros (what
/// `Ipv4Addr::from_str` accepts), parsed without the general address parser.
pub(crate) fn parse_v4(s: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let (mut n, mut v, mut digits, mut lead0) = (0usize, 0u16, 0u8, false);
    for &c in s.as_bytes() {
        if c == b'.' {
            if digits == 0 || lead0 && digits > 1 {
                return None;
            }
            *octets.get_mut(n)? = u8::try_from(v).ok()?;
            (n, v, digits) = (n + 1, 0, 0);
        } else if c.is_ascii_digit() {
            if digits == 0 {
                lead0 = c == b'0';
            }
            digits += 1;
            if digits > 3 {
                return None;
            }
            v = v * 10 + u16::from(c - b'0');
        } else {
            return None;
        }
    }
    if digits == 0 || lead0 && digits > 1 || n != 3 {
        return None;
    }
    octets[3] = u8::try_from(v).ok()?;
    Some(Ipv4Addr::from(octets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let v6 = |s: &str| {
            s.parse::<IpAddr>()
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        };
        assert_eq!(
            parse_addr_port("[2001:db8::1]:80"),
            Ok((v6("2001:db8::1"), Some(80)))
        );
        assert_eq!(
            parse_addr_port("2001:db8::1"),
            Ok((v6("2001:db8::1"), None))
        );
        assert_eq!(
            parse_addr_port("[2001:db8::1]"),
            Ok((v6("2001:db8::1"), None))
        );
        assert_eq!(parse_addr_port("10.0.0.1"), Ok((v6("10.0.0.1"), None)));
        assert!(parse_addr_port("10.0.0.1:http").is_err());
        assert!(parse_addr_port("host:80").is_err());
        assert!(parse_addr_port("[::1]80").is_err());
        assert!(parse_addr_port("10.0.0.1:65536").is_err());
        assert_eq!(
            parse_addr_port("[::ffff:1.2.3.4]:8"),
            Ok((v6("::ffff:1.2.3.4"), Some(8)))
        );
        assert_eq!(
            parse_addr_port("::ffff:1.2.3.4"),
            Ok((v6("::ffff:1.2.3.4"), None))
        );
    }

    #[test]
    fn fast_ipv4_parser_agrees_with_std() {
        for s in [
            "1.2.3.4",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1..3.4",
            "",
            "1.2.3.4 ",
            "a.b.c.d",
            "1.2.3.-4",
            "10.20.30.40",
            "999.1.1.1",
            "1.2.3.00",
            "0.0.0.01",
            "+1.2.3.4",
        ] {
            assert_eq!(parse_v4(s), s.parse::<Ipv4Addr>().ok(), "{s:?}");
        }
        for (s, want) in [
            ("0", Some(0)),
            ("4294967295", Some(u32::MAX)),
            ("4294967296", None),
        ] {
            assert_eq!(parse_u32_in(s, 0, u32::MAX), want, "{s}");
        }
        assert_eq!(parse_u32_in("+1", 0, 9), None);
        assert_eq!(parse_u32_in("99999999999", 0, u32::MAX), None);
    }
}
