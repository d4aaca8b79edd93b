//! What to check and how often: plain data that keys the [`Registry`](crate::Registry).
//!
//! Every type here is `Eq + Hash`, so one probe runs per (backend address, [`CheckSpec`]) however
//! many services subscribe to it. Two services asking for the same check of the same backend with
//! different timing (interval, rise, ...) get two probes: timing is part of the check.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// One check definition: the probe kind, where it connects, and its timing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CheckSpec {
    /// What one probe run does.
    pub kind: CheckKind,
    /// Where the probe connects when not the real server's own address and port (a health port,
    /// a management address). keepalived: `connect_ip` / `connect_port`.
    pub connect: Connect,
    /// Time between the starts of two probe runs (keepalived: `delay_loop`). Values below
    /// [`MIN_INTERVAL`] are raised to it.
    pub interval: Duration,
    /// Limit of one probe run, connect included (keepalived: `connect_timeout`). A run that
    /// overruns counts as a failure.
    pub timeout: Duration,
    /// Consecutive successes that turn a backend Up (at least 1).
    pub rise: u32,
    /// Consecutive failures that turn an Up backend Down (at least 1).
    pub fall: u32,
}

/// The shortest interval a probe runs at: 10 ms.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

impl CheckSpec {
    /// A check of `kind` with keepalived's defaults for a real server: every 5 s, 5 s timeout,
    /// rise 1, fall 1, connecting to the real server itself.
    pub fn new(kind: CheckKind) -> Self {
        CheckSpec {
            kind,
            connect: Connect::default(),
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
            rise: 1,
            fall: 1,
        }
    }

    /// The interval actually used: at least [`MIN_INTERVAL`].
    pub fn effective_interval(&self) -> Duration {
        self.interval.max(MIN_INTERVAL)
    }

    /// The address a probe of `target` connects to: the real server's, with [`Connect`]'s
    /// overrides applied.
    pub fn connect_addr(&self, target: SocketAddr) -> SocketAddr {
        SocketAddr::new(
            self.connect.address.unwrap_or(target.ip()),
            self.connect.port.unwrap_or(target.port()),
        )
    }
}

/// Overrides of the address a probe connects to; `None` keeps the real server's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Connect {
    /// Connect to this address instead of the real server's.
    pub address: Option<IpAddr>,
    /// Connect to this port instead of the real server's (for exec checks: the port given in
    /// `CHECK_PORT`).
    pub port: Option<u16>,
}

/// What one probe run does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CheckKind {
    /// A TCP connect that completes within the timeout is a success; the connection is reset at
    /// once (SO_LINGER 0, no TIME_WAIT left behind on the director).
    Tcp,
    /// An HTTP/1.1 `GET` (over TLS when [`HttpCheck::tls`] is set).
    Http(HttpCheck),
    /// A DNS query over UDP (RFC 1035 section 4.2.1) whose answer carries the expected RCODE.
    Dns(DnsCheck),
    /// A UDP datagram sent, an answer expected.
    Udp(UdpCheck),
    /// A command run with `sh -c`.
    Exec(ExecCheck),
}

impl CheckKind {
    /// A short name for logs: `tcp`, `http`, `https`, `dns`, `udp`, `exec`.
    pub fn name(&self) -> &'static str {
        match self {
            CheckKind::Tcp => "tcp",
            CheckKind::Http(h) if h.tls.is_some() => "https",
            CheckKind::Http(_) => "http",
            CheckKind::Dns(_) => "dns",
            CheckKind::Udp(_) => "udp",
            CheckKind::Exec(_) => "exec",
        }
    }
}

/// An HTTP or HTTPS GET check.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpCheck {
    /// The request target, e.g. `/healthz` (RFC 9112 section 3.2, origin-form).
    pub path: String,
    /// The `Host` header; the connect address (`192.0.2.1:8080`, `[2001:db8::1]:443`) when `None`.
    pub host: Option<String>,
    /// Status codes that mean healthy.
    pub status: StatusRange,
    /// When set, the body (up to [`BODY_MAX`] bytes, chunked coding decoded) must contain it.
    pub body_contains: Option<String>,
    /// TLS settings; `None` is plain HTTP.
    pub tls: Option<TlsSpec>,
}

/// The most body bytes an HTTP check reads to look for [`HttpCheck::body_contains`]: 64 KiB.
pub const BODY_MAX: usize = 64 * 1024;

impl HttpCheck {
    /// `GET path` expecting a 2xx status, plain HTTP, no body condition.
    pub fn get(path: &str) -> Self {
        HttpCheck {
            path: path.to_owned(),
            host: None,
            status: StatusRange::SUCCESS,
            body_contains: None,
            tls: None,
        }
    }
}

/// An inclusive range of HTTP status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusRange {
    /// Lowest accepted code.
    pub min: u16,
    /// Highest accepted code.
    pub max: u16,
}

impl StatusRange {
    /// 200..=299.
    pub const SUCCESS: StatusRange = StatusRange { min: 200, max: 299 };

    /// Exactly one code.
    pub fn exactly(code: u16) -> Self {
        StatusRange {
            min: code,
            max: code,
        }
    }

    /// True when `code` is in the range.
    pub fn contains(&self, code: u16) -> bool {
        (self.min..=self.max).contains(&code)
    }
}

impl std::fmt::Display for StatusRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min)
        } else {
            write!(f, "{}-{}", self.min, self.max)
        }
    }
}

/// TLS settings of an HTTPS check.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlsSpec {
    /// How the server's certificate is checked.
    pub verify: TlsVerify,
    /// The server name sent in SNI (RFC 6066 section 3) and checked against the certificate.
    /// When `None`: the Host header's name if it is a DNS name, else the connect address (no SNI
    /// is sent for an address; the certificate must name the address).
    pub sni: Option<String>,
}

/// How an HTTPS check verifies the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TlsVerify {
    /// No verification of the chain or the name (the handshake's signatures are still checked).
    /// Common for real servers with self-signed certificates.
    Off,
    /// Against the system's trust store (`/etc/ssl/certs`, via rustls-native-certs), loaded once.
    System,
    /// Against the certificates of this PEM file (a private CA, or the server's own certificate).
    CaFile(PathBuf),
}

/// A DNS check: one query, the answer's RCODE compared.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DnsCheck {
    /// The name asked for, e.g. `example.com.` (a relative name is taken from the root).
    pub name: String,
    /// The query type, as its RFC 1035 / IANA number (1 = A, 28 = AAAA, 6 = SOA, ...).
    pub qtype: u16,
    /// The RCODE that means healthy (RFC 1035 section 4.1.1; 0 = NOERROR, 3 = NXDOMAIN).
    pub rcode: u16,
}

impl DnsCheck {
    /// A query for `name` of type `qtype` (a mnemonic such as `A`, `AAAA`, `SOA`), healthy on
    /// NOERROR.
    pub fn new(name: &str, qtype: &str) -> Result<Self, crate::SpecError> {
        let t: hickory_proto::rr::RecordType =
            qtype.parse().map_err(|_| crate::SpecError::DnsType {
                qtype: qtype.to_owned(),
            })?;
        hickory_proto::rr::Name::from_ascii(name).map_err(|e| crate::SpecError::DnsName {
            name: name.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(DnsCheck {
            name: name.to_owned(),
            qtype: u16::from(t),
            rcode: 0,
        })
    }
}

/// A UDP check: send a datagram, wait for one back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UdpCheck {
    /// The datagram sent (may be empty).
    pub send: Vec<u8>,
    /// The answer must contain these bytes; an empty value accepts any answer.
    pub expect: Vec<u8>,
}

/// An exec check: `sh -c command`, exit status 0 is a success.
///
/// The command runs in its own process group with stdin, stdout and stderr on `/dev/null`; on
/// timeout the whole group is killed (SIGKILL). Its environment adds `REAL_SERVER_ADDRESS`,
/// `REAL_SERVER_PORT` (the real server) and `CHECK_ADDRESS`, `CHECK_PORT` (where a probe
/// connects, after [`Connect`]'s overrides).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExecCheck {
    /// The command line, given to `sh -c`.
    pub command: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[test]
    fn timing_is_part_of_the_key() {
        let a = CheckSpec::new(CheckKind::Tcp);
        let mut b = a.clone();
        let set: HashSet<CheckSpec> = [a.clone(), b.clone()].into_iter().collect();
        assert_eq!(set.len(), 1);
        b.rise = 2;
        let set: HashSet<CheckSpec> = [a.clone(), b].into_iter().collect();
        assert_eq!(set.len(), 2);
        let mut c = a.clone();
        c.interval = Duration::ZERO;
        assert_eq!(c.effective_interval(), MIN_INTERVAL);
        assert_eq!(a.effective_interval(), Duration::from_secs(5));
    }

    #[test]
    fn names_and_ranges() {
        let mut h = HttpCheck::get("/");
        assert_eq!(CheckKind::Http(h.clone()).name(), "http");
        h.tls = Some(TlsSpec {
            verify: TlsVerify::Off,
            sni: None,
        });
        assert_eq!(CheckKind::Http(h).name(), "https");
        assert_eq!(StatusRange::SUCCESS.to_string(), "200-299");
        assert_eq!(StatusRange::exactly(204).to_string(), "204");
        assert!(StatusRange::SUCCESS.contains(200) && StatusRange::SUCCESS.contains(299));
        assert!(!StatusRange::SUCCESS.contains(199) && !StatusRange::SUCCESS.contains(300));
    }

    proptest! {
        #[test]
        fn connect_overrides(ip: [u8; 4], port: u16, oip: Option<[u8; 4]>, oport: Option<u16>) {
            let target = SocketAddr::from((ip, port));
            let mut s = CheckSpec::new(CheckKind::Tcp);
            s.connect = Connect { address: oip.map(IpAddr::from), port: oport };
            let c = s.connect_addr(target);
            prop_assert_eq!(c.ip(), oip.map(IpAddr::from).unwrap_or(target.ip()));
            prop_assert_eq!(c.port(), oport.unwrap_or(port));
        }
    }
}
