//! The `ipvsadm -R` input format -> operations, with every bad line reported.
//!
//! Accepted: every line `ipvsadm -Sn` prints, and the options of `-A`, `-E`, `-D`, `-C`, `-a`,
//! `-e`, `-d`, `-Z` and `--set` as ipvsadm 1.31 (`ipvsadm.c`: `parse_options`,
//! `process_options`, `generic_opt_check`, `tunnel_opt_check`) accepts them, with the same
//! defaults: scheduler `wlc`, persistence timeout 360 s, weight 1, direct routing, a real server's
//! port copied from the service (and forced to it for direct routing and tunnels:
//! [`Destination::normalised_for`](crate::model::Destination::normalised_for)).
//!
//! Differences from ipvsadm, all on the safe side: the whole text is parsed before anything is
//! applied and every bad line is reported (ipvsadm applies lines until the first it cannot parse,
//! then exits); blank lines and lines starting with `#` are skipped; a leading `ipvsadm` word is
//! skipped; host and service names are not resolved (numbers only, as `-Sn` writes them);
//! options may come in any order (`-M` before `-6` is fine).
//!
//! This file is the text (lines, comments, every bad line collected); `line` turns one line's
//! options into one operation.

use std::fmt;

use super::args::{parse_words_into, Opt, OptionList};
use super::lex::{count_byte, Lines, Words};
use super::line::Line;
use crate::ops::Op;

/// One line that could not be turned into an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong, naming the option or value.
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Every bad line of a restore text (never empty); nothing of such a text may be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RestoreError {
    /// The bad lines, in order.
    pub errors: Vec<LineError>,
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// The operations of a restore text, in order, with the line each came from (two vectors, so
/// that `ops` goes to `Conn::apply` as it is).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The operations.
    pub ops: Vec<Op>,
    /// `lines[i]` is the 1-based line of `ops[i]`.
    pub lines: Vec<usize>,
}

impl Parsed {
    /// Appends the operations of a later piece of the same text.
    pub fn append(&mut self, mut later: Parsed) {
        self.ops.append(&mut later.ops);
        self.lines.append(&mut later.lines);
    }
}

/// Parses a whole restore text: the operations in order, or every bad line.
pub fn parse(text: &str) -> Result<Parsed, RestoreError> {
    parse_at(text, 1)
}

/// [`parse`] of a piece of a text whose first line is line `first_line` of the whole (so that a
/// caller may parse the pieces of a large text on several threads and join the results).
pub fn parse_at(text: &str, first_line: usize) -> Result<Parsed, RestoreError> {
    let n = count_byte(text.as_bytes(), b'\n') + 1;
    let mut out = Parsed {
        ops: Vec::with_capacity(n),
        lines: Vec::with_capacity(n),
    };
    let mut errors = Vec::new();
    let mut bufs = Buffers::default();
    for (idx, raw) in Lines(text).enumerate() {
        let line = idx + first_line;
        match parse_line_with(raw, &mut bufs) {
            Ok(Some(op)) => {
                out.ops.push(op);
                out.lines.push(line);
            }
            Ok(None) => {}
            Err(message) => errors.push(LineError { line, message }),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(RestoreError { errors })
    }
}

/// Buffers reused from line to line.
#[derive(Default)]
pub(super) struct Buffers<'a> {
    words: Vec<&'a str>,
    parsed: OptionList<'a>,
}

/// Parses one line: `Ok(None)` for a blank or comment line.
pub fn parse_line(raw: &str) -> Result<Option<Op>, String> {
    parse_line_with(raw, &mut Buffers::default())
}

fn parse_line_with<'a>(raw: &'a str, bufs: &mut Buffers<'a>) -> Result<Option<Op>, String> {
    if let Some(op) = super::fast::fast_line(raw) {
        return Ok(Some(op));
    }
    parse_line_general(raw, bufs)
}

/// The general parser: every option ipvsadm's restore lines may carry.
pub(super) fn parse_line_general<'a>(
    raw: &'a str,
    bufs: &mut Buffers<'a>,
) -> Result<Option<Op>, String> {
    let words = &mut bufs.words;
    words.clear();
    for w in Words(raw) {
        if w.starts_with('#') {
            break;
        }
        words.push(w);
    }
    let skip = usize::from(words.first() == Some(&"ipvsadm"));
    let words = words.get(skip..).unwrap_or_default();
    if words.is_empty() {
        return Ok(None);
    }
    let parsed = &mut bufs.parsed;
    parse_words_into(words, parsed)?;
    let mut l = Line::default();
    for item in &parsed.items {
        l.take(item)?;
    }
    let cmd = l
        .cmd
        .ok_or("no command (-A, -E, -D, -C, -a, -e, -d, -Z or --set)")?;
    if cmd != Opt::Set {
        if let Some(w) = parsed.bare.first() {
            return Err(format!("unexpected argument `{w}`"));
        }
    }
    l.build(cmd, &parsed.bare).map(Some)
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::model::{
        AddressFamily, DestKey, Forwarding, Netmask, Protocol, Scheduler, ServiceFlags, ServiceKey,
        Timeouts,
    };

    fn one(line: &str) -> Result<Op, String> {
        parse_line(line).and_then(|o| o.ok_or_else(|| "no op".to_string()))
    }

    fn tcp(addr: &str, port: u16) -> ServiceKey {
        ServiceKey::Inet {
            protocol: Protocol::Tcp,
            addr: addr.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            port,
        }
    }

    #[test]
    fn defaults_like_ipvsadm() {
        let Ok(Op::AddService(s)) = one("-A -t 10.0.0.1:80") else {
            panic!("not an add");
        };
        assert_eq!(s.scheduler, Scheduler::Wlc);
        assert_eq!(s.netmask, Netmask::Inet(Ipv4Addr::BROADCAST));
        let Ok(Op::EditService(s)) = one("-E -t 10.0.0.1:80 -p") else {
            panic!("not an edit");
        };
        assert_eq!((s.timeout, s.flags.persistent()), (360, true));
        // -r without a port takes the service's; direct routing forces it.
        let Ok(Op::AddDest(_, d)) = one("-a -t 10.0.0.1:80 -r 10.0.0.2:90") else {
            panic!("not a dest add");
        };
        assert_eq!(
            (d.port, d.weight, d.forwarding),
            (80, 1, Forwarding::DirectRoute)
        );
        let Ok(Op::AddDest(_, d)) = one("-a -t 10.0.0.1:80 -r 10.0.0.2:90 -m") else {
            panic!("not a dest add");
        };
        assert_eq!(d.port, 90);
        assert_eq!(
            one("-d -t 10.0.0.1:80 -r 10.0.0.2"),
            Ok(Op::DelDest(
                tcp("10.0.0.1", 80),
                DestKey {
                    addr: "10.0.0.2"
                        .parse()
                        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                    port: 80
                }
            ))
        );
        assert_eq!(one("-C"), Ok(Op::Flush));
        assert_eq!(
            one("ipvsadm -D -t 10.0.0.1:80"),
            Ok(Op::DelService(tcp("10.0.0.1", 80)))
        );
        assert_eq!(one("-Z"), Ok(Op::Zero(None)));
        assert_eq!(
            one("--set 900 120 300"),
            Ok(Op::SetTimeouts(Timeouts {
                tcp: 900,
                tcp_fin: 120,
                udp: 300
            }))
        );
    }

    #[test]
    fn what_save_prints_reads_back() {
        let Ok(Op::AddService(s)) = one("-A -f -1 -s rr") else {
            panic!("not an add");
        };
        assert_eq!(
            s.key,
            ServiceKey::Fwmark {
                af: AddressFamily::Inet,
                mark: u32::MAX
            }
        );
        let Ok(Op::AddService(s)) = one("-A -u 10.1.0.1:55 -s sh -b ") else {
            panic!("not an add");
        };
        assert!(s.flags.contains(ServiceFlags::SCHED3));
        let Ok(Op::AddService(s)) = one("-A -f 4661 -6 -s rr -p 20 -M 48") else {
            panic!("not an add");
        };
        assert_eq!(s.netmask, Netmask::Inet6(48));
    }

    #[test]
    fn every_bad_line_is_reported_with_its_number() {
        let text = "-A -t 10.0.0.1:80\n\n# comment\n-A -t 10.0.0.1\n-a -t 10.0.0.1:80 -r 10.0.0.2 -w 70000\n-A -t 10.0.0.2:80 -s sh -b mh-port\n-L -n\n-a -t 10.0.0.1:80 -r [::1] -m\n-a -t 10.0.0.1:80 -r 10.0.0.3 -i --tun-type gue\n-A -t 10.0.0.3:80 -o\n-A -t 10.0.0.4:80 -s\n-X\n-A -t 10.0.0.5:80 -r 1.2.3.4\n";
        let Err(e) = parse(text) else {
            panic!("a bad text parsed");
        };
        let lines: Vec<usize> = e.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
        let msg = e.to_string();
        for want in [
            "line 4: port 0 is only allowed for a persistent service (-p)",
            "line 5: invalid weight `70000` (0..65535)",
            "line 6: scheduler flag `mh-port` does not fit scheduler `sh`",
            "line 7: `-L` cannot be used in a restore file",
            "line 8: real server `::1` is IPv6 but the service is IPv4",
            "line 9: tunnel type gue needs --tun-port",
            "line 10: one-packet scheduling (-o) is only for UDP services",
            "line 11: option `-s` needs a value",
            "line 12: `--exact` cannot be used",
            "line 13: option -r cannot be used with `-A`",
        ] {
            assert!(msg.contains(want), "missing {want:?} in:\n{msg}");
        }
    }
}
