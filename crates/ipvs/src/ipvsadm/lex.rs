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

/// Bytes read per step by [`find_byte`] and [`count_byte`].
const WORD: usize = 8;
/// `0x0101...01`: one in every byte of a word.
const ONES: u64 = u64::from_ne_bytes([0x01; WORD]);
/// `0x7f7f...7f`.
const LOW7: u64 = u64::from_ne_bytes([0x7f; WORD]);

/// `0x80` in exactly the bytes of `w` that equal `needle`, 0 elsewhere (no false positives: the
/// carry-free form of the "has zero byte" test).
fn matches(w: u64, needle: u8) -> u64 {
    let x = w ^ ONES.wrapping_mul(u64::from(needle));
    !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7)
}

/// The position of the first `needle` in `b`, reading a word at a time. A restore line is ~40
/// bytes: this beats `memchr`'s set-up cost there (it was a tenth of a 10,000 x 10 parse).
pub(crate) fn find_byte(b: &[u8], needle: u8) -> Option<usize> {
    let mut chunks = b.chunks_exact(WORD);
    let mut at = 0;
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap_or([0; WORD]));
        let m = matches(w, needle);
        if m != 0 {
            return Some(at + m.trailing_zeros() as usize / 8);
        }
        at += WORD;
    }
    chunks
        .remainder()
        .iter()
        .position(|c| *c == needle)
        .map(|p| at + p)
}

/// How many times `needle` occurs in `b`, a word at a time.
pub fn count_byte(b: &[u8], needle: u8) -> usize {
    let mut chunks = b.chunks_exact(WORD);
    let mut n = 0;
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap_or([0; WORD]));
        n += matches(w, needle).count_ones() as usize;
    }
    n + chunks.remainder().iter().filter(|c| **c == needle).count()
}

/// The lines of a text exactly as [`str::lines`] gives them (split at `\n`, a `\r` before it
/// removed, no empty last line), found with [`find_byte`].
pub(crate) struct Lines<'a>(pub(crate) &'a str);

impl<'a> Iterator for Lines<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.0.is_empty() {
            return None;
        }
        match find_byte(self.0.as_bytes(), b'\n') {
            // `\n` is ASCII: both sides are on character boundaries.
            Some(i) => {
                let line = self.0.get(..i)?;
                self.0 = self.0.get(i + 1..)?;
                Some(line.strip_suffix('\r').unwrap_or(line))
            }
            None => Some(std::mem::take(&mut self.0)),
        }
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
    fn lines_are_str_lines() {
        let texts = [
            "",
            "\n",
            "\n\n",
            "a",
            "a\n",
            "a\r\n",
            "a\r",
            "a\r\r\n",
            "a\nb",
            "a\n\nb\n",
            "-a -t 10.1.0.1:80 -r 10.2.0.1:80 -g -w 1\r\n-A -t 10.1.0.1:80 -s wrr\n\n# c\n",
            "ünï\ncödé\r\n\u{1F600}\n",
        ];
        for t in texts {
            assert_eq!(
                Lines(t).collect::<Vec<_>>(),
                t.lines().collect::<Vec<_>>(),
                "{t:?}"
            );
        }
    }

    #[test]
    fn find_and_count_agree_with_plain_loops_at_every_offset() {
        // Every position of the needle relative to the 8-byte words, neighbours of every value
        // (the carry trap of the usual zero-byte test: 0x01 right after a match, 0x80, 0xff).
        let fill: Vec<u8> = (0..=255u8)
            .chain([0x0a, 0x0b, 0x09, 0x01, 0x80, 0xff])
            .collect();
        for len in 0..40 {
            for at in 0..=len {
                let mut b: Vec<u8> = fill
                    .iter()
                    .cycle()
                    .skip(at * 7)
                    .take(len)
                    .copied()
                    .collect();
                b.retain(|c| *c != b'\n');
                b.truncate(len.saturating_sub(1));
                if at <= b.len() {
                    b.insert(at, b'\n');
                }
                let want = b.iter().position(|c| *c == b'\n');
                assert_eq!(find_byte(&b, b'\n'), want, "{b:?}");
                assert_eq!(
                    count_byte(&b, b'\n'),
                    b.iter().filter(|c| **c == b'\n').count()
                );
                for needle in [0u8, 1, 0x7f, 0x80, 0xff, b':'] {
                    assert_eq!(
                        find_byte(&b, needle),
                        b.iter().position(|c| *c == needle),
                        "{needle} in {b:?}"
                    );
                    assert_eq!(
                        count_byte(&b, needle),
                        b.iter().filter(|c| **c == needle).count(),
                        "{needle} in {b:?}"
                    );
                }
            }
        }
    }

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
