//! A fast path for the two line shapes that make up almost every large restore file: what
//! `ipvsadm -Sn` prints for a plain IPv4 service and for a real server reached by direct routing
//! or masquerading:
//!
//! ```text
//! -A -t 10.1.0.1:80 -s wrr
//! -a -t 10.1.0.1:80 -r 10.2.0.1:80 -g -w 1
//! ```
//!
//! Every other line, and every line whose values the general parser would reject or treat
//! specially, goes to the general parser (`None` here), so the result is the same either way (the
//! tests below compare both on every line of the golden files and on edge cases). Under the lab's
//! emulated CPU the general parser's option machinery cost about 3,000 instructions per line:
//! 0.4 s of a 2.5 s restore of 10,000 x 10.

use super::lex::{find_byte, parse_u32_in, parse_v4, Words};
use crate::model::{Destination, Forwarding, Protocol, Scheduler, Service, ServiceKey};
use crate::ops::Op;
use std::net::{IpAddr, Ipv4Addr};

/// `a.b.c.d:port` with an explicit port. Split at the first `:` (found a word at a time), which
/// accepts exactly what splitting at the last one would: a second `:` is not a digit of the port.
fn v4_port(s: &str) -> Option<(Ipv4Addr, u16)> {
    let colon = find_byte(s.as_bytes(), b':')?;
    let (a, p) = (s.get(..colon)?, s.get(colon + 1..)?);
    let port = u16::try_from(parse_u32_in(p, 0, 65_535)?).ok()?;
    Some((parse_v4(a)?, port))
}

/// A plain word: not an option, not a comment.
fn plain(w: &str) -> Option<&str> {
    (!w.is_empty() && !w.starts_with('-') && !w.starts_with('#')).then_some(w)
}

/// The operation of a line of one of the two common shapes, or `None`.
pub(super) fn fast_line(raw: &str) -> Option<Op> {
    let mut w = Words(raw);
    let cmd = w.next()?;
    let protocol = match w.next()? {
        "-t" => Protocol::Tcp,
        "-u" => Protocol::Udp,
        _ => return None,
    };
    let (addr, port) = v4_port(w.next()?)?;
    let key = ServiceKey::Inet {
        protocol,
        addr: IpAddr::V4(addr),
        port,
    };
    match cmd {
        "-A" => {
            if w.next()? != "-s" {
                return None;
            }
            let sched = plain(w.next()?)?;
            if w.next().is_some() || port == 0 {
                return None;
            }
            Some(Op::AddService(Service::new(
                key,
                Scheduler::from_name(sched),
            )))
        }
        "-a" => {
            if w.next()? != "-r" {
                return None;
            }
            let (raddr, rport) = v4_port(w.next()?)?;
            let forwarding = match w.next()? {
                "-g" => Forwarding::DirectRoute,
                "-m" => Forwarding::Masq,
                _ => return None,
            };
            if w.next()? != "-w" {
                return None;
            }
            let weight = i32::try_from(parse_u32_in(w.next()?, 0, 65_535)?).ok()?;
            if w.next().is_some() {
                return None;
            }
            let mut d = Destination::new(IpAddr::V4(raddr), rport, forwarding);
            d.weight = weight;
            // Direct routing takes the service's port, as in the general parser.
            Some(Op::AddDest(key, d.normalised_for(&key)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::restore::{parse_line_general, Buffers};
    use super::*;

    fn general(line: &str) -> Result<Option<Op>, String> {
        parse_line_general(line, &mut Buffers::default())
    }

    /// Whenever the fast path answers, the general parser gives the same operation.
    fn agree(line: &str) -> bool {
        match fast_line(line) {
            Some(op) => {
                assert_eq!(Ok(Some(op)), general(line), "{line:?}");
                true
            }
            None => false,
        }
    }

    #[test]
    fn takes_the_common_shapes() {
        for line in [
            "-A -t 10.1.0.1:80 -s wrr",
            "-A -u 10.1.0.1:53 -s rr",
            "-a -t 10.1.0.1:80 -r 10.2.0.1:80 -g -w 1",
            "-a -t 10.1.0.1:80 -r 10.2.0.1:8080 -g -w 1",
            "-a -t 10.1.0.1:80 -r 10.2.0.1:8080 -m -w 0",
            "  -a\t-u 10.1.0.1:53   -r 10.2.0.1:5353 -m -w 65535\r",
            "-A -t 10.1.0.1:80 -s nosuchsched",
            "-a -t 10.1.0.1:0 -r 10.2.0.1:0 -m -w 1",
            "-a -t 10.1.0.1:80 -r 10.2.0.1:80 -g -w 007",
        ] {
            assert!(agree(line), "fast path refused {line:?}");
        }
    }

    #[test]
    fn leaves_everything_else_to_the_general_parser() {
        for line in [
            "-A -t 10.1.0.1:0 -s rr",
            "-A -t 10.1.0.1:80 -s rr -p",
            "-A -t 10.1.0.1:80 -s #rr",
            "-A -t 10.1.0.1:80 -s -p",
            "-A -t 10.1.0.1 -s rr",
            "-A -t [2001:db8::1]:80 -s rr",
            "-A --sctp-service 10.1.0.1:80 -s rr",
            "-A -f 1 -s rr",
            "-a -t 10.1.0.1:80 -r 10.2.0.1:80 -i -w 1 --tun-type ipip",
            "-a -t 10.1.0.1:80 -r 10.2.0.1 -g -w 1",
            "-a -t 10.1.0.1:80 -r 10.2.0.1:80 -g -w 65536",
            "-a -t 10.1.0.1:80 -r 10.2.0.1:80 -g -w -1",
            "-a -t 10.1.0.1:80 -r 10.2.0.1:80 -g -w 1 -x 5",
            "-a -t 10.1.0.1:80 -r [::1]:80 -g -w 1",
            "-a -t 10.1.0.1:80 -r 10.2.0.1:80 -g -w 1 # note",
            "-a -t 10.1.0.1:99999 -r 10.2.0.1:80 -g -w 1",
            "-a -t 010.1.0.1:80 -r 10.2.0.1:80 -g -w 1",
            "ipvsadm -A -t 10.1.0.1:80 -s rr",
            "-E -t 10.1.0.1:80 -s rr",
            "-e -t 10.1.0.1:80 -r 10.2.0.1:80 -g -w 1",
            "-At 10.1.0.1:80 -srr",
            "",
            "# comment",
        ] {
            assert!(fast_line(line).is_none(), "fast path took {line:?}");
        }
    }

    #[test]
    fn agrees_with_the_general_parser_on_the_golden_files() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ipvsadm/");
        let mut taken = 0;
        for f in ["all.rules", "all.Sn", "order.rules", "order.Sn"] {
            let text = std::fs::read_to_string(format!("{dir}{f}")).unwrap_or_default();
            assert!(!text.is_empty(), "{f}");
            for line in text.lines() {
                taken += usize::from(agree(line));
            }
        }
        assert!(taken > 40, "the fast path took only {taken} lines");
    }
}
