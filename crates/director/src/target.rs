//! How an operator names a virtual service and a real server on the command line
//! (`director drain SERVICE REALSERVER`) and how `director status` and the drains file print
//! them: the same text both ways, so a name can be copied from one into the other.
//!
//! | what | spelling | example |
//! |---|---|---|
//! | TCP / UDP / SCTP service | `PROTO:ADDR:PORT` (IPv6 in brackets) | `tcp:10.0.0.1:80`, `udp:[2001:db8::1]:53` |
//! | firewall-mark service | `fwmark:MARK` (IPv4) or `fwmark6:MARK` (IPv6) | `fwmark:5` |
//! | real server | `ADDR:PORT`, or `ADDR` for the service's port | `10.0.0.11:80`, `10.0.0.11` |
//!
//! Pure: parsing and formatting only.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use ipvs::{AddressFamily, DestKey, Protocol, ServiceKey};

/// A service key printed as [`parse_service`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceName(pub ServiceKey);

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ServiceKey::Inet {
                protocol,
                addr,
                port,
            } => {
                let p = match protocol {
                    Protocol::Tcp => "tcp".to_string(),
                    Protocol::Udp => "udp".to_string(),
                    Protocol::Sctp => "sctp".to_string(),
                    other => format!("proto{}", other.to_raw()),
                };
                write!(f, "{p}:{}", SocketAddr::new(addr, port))
            }
            ServiceKey::Fwmark {
                af: AddressFamily::Inet6,
                mark,
            } => write!(f, "fwmark6:{mark}"),
            ServiceKey::Fwmark { mark, .. } => write!(f, "fwmark:{mark}"),
        }
    }
}

/// A real server key printed as [`parse_dest`] reads it (`ADDR:PORT`, IPv6 in brackets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DestName(pub DestKey);

impl fmt::Display for DestName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", SocketAddr::new(self.0.addr, self.0.port))
    }
}

/// Reads a service name (see the module table); the error says what is wrong and how to
/// write it.
pub fn parse_service(text: &str) -> Result<ServiceKey, String> {
    let hint = "write PROTO:ADDR:PORT (tcp:10.0.0.1:80, udp:[2001:db8::1]:53) or fwmark:MARK / fwmark6:MARK";
    let Some((kind, rest)) = text.split_once(':') else {
        return Err(format!("`{text}` is not a service ({hint})"));
    };
    let protocol = match kind.to_ascii_lowercase().as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        "fwmark" | "fwmark6" => {
            let mark: u32 = rest
                .parse()
                .map_err(|_| format!("`{rest}` is not a firewall mark (1..4294967295)"))?;
            if mark == 0 {
                return Err("firewall mark 0 marks nothing (1..4294967295)".into());
            }
            let af = if kind.eq_ignore_ascii_case("fwmark6") {
                AddressFamily::Inet6
            } else {
                AddressFamily::Inet
            };
            return Ok(ServiceKey::Fwmark { af, mark });
        }
        _ => return Err(format!("unknown protocol `{kind}` in `{text}` ({hint})")),
    };
    let sa: SocketAddr = rest
        .parse()
        .map_err(|_| format!("`{rest}` is not ADDR:PORT ({hint})"))?;
    Ok(ServiceKey::Inet {
        protocol,
        addr: sa.ip(),
        port: sa.port(),
    })
}

/// Reads a real server of `service`: `ADDR:PORT`, or a bare `ADDR` meaning the service's port
/// (what a direct-routing or tunnelling real server has anyway; 0 for a firewall-mark service).
pub fn parse_dest(text: &str, service: &ServiceKey) -> Result<DestKey, String> {
    if let Ok(sa) = text.parse::<SocketAddr>() {
        return Ok(DestKey {
            addr: sa.ip(),
            port: sa.port(),
        });
    }
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    let addr: IpAddr = bare.parse().map_err(|_| {
        format!("`{text}` is not a real server (write ADDR:PORT, [ADDR6]:PORT or ADDR)")
    })?;
    let port = match service {
        ServiceKey::Inet { port, .. } => *port,
        ServiceKey::Fwmark { .. } => 0,
    };
    Ok(DestKey { addr, port })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn reads_every_spelling() {
        assert_eq!(
            parse_service("tcp:10.0.0.1:80"),
            Ok(ServiceKey::Inet {
                protocol: Protocol::Tcp,
                addr: "10.0.0.1".parse().unwrap(),
                port: 80
            })
        );
        assert_eq!(
            parse_service("UDP:[2001:db8::1]:53"),
            Ok(ServiceKey::Inet {
                protocol: Protocol::Udp,
                addr: "2001:db8::1".parse().unwrap(),
                port: 53
            })
        );
        assert_eq!(
            parse_service("fwmark6:7"),
            Ok(ServiceKey::Fwmark {
                af: AddressFamily::Inet6,
                mark: 7
            })
        );
        let svc = parse_service("tcp:10.0.0.1:80").unwrap();
        assert_eq!(
            parse_dest("10.0.0.11", &svc),
            Ok(DestKey {
                addr: "10.0.0.11".parse().unwrap(),
                port: 80
            })
        );
        assert_eq!(
            parse_dest("[2001:db8::11]:8080", &svc),
            Ok(DestKey {
                addr: "2001:db8::11".parse().unwrap(),
                port: 8080
            })
        );
    }

    #[test]
    fn says_what_is_wrong() {
        for (text, part) in [
            ("10.0.0.1:80", "unknown protocol"),
            ("tcp10.0.0.1", "is not a service"),
            ("icmp:10.0.0.1:80", "unknown protocol `icmp`"),
            ("tcp:10.0.0.1", "is not ADDR:PORT"),
            ("fwmark:x", "not a firewall mark"),
            ("fwmark:0", "marks nothing"),
        ] {
            let e = parse_service(text).unwrap_err();
            assert!(e.contains(part), "{text}: {e}");
        }
        let svc = parse_service("fwmark:1").unwrap();
        assert!(parse_dest("host", &svc)
            .unwrap_err()
            .contains("not a real server"));
    }

    fn key() -> impl Strategy<Value = ServiceKey> {
        prop_oneof![
            (
                prop_oneof![
                    Just(Protocol::Tcp),
                    Just(Protocol::Udp),
                    Just(Protocol::Sctp)
                ],
                any::<IpAddr>(),
                any::<u16>()
            )
                .prop_map(|(protocol, addr, port)| ServiceKey::Inet {
                    protocol,
                    addr,
                    port
                }),
            (any::<bool>(), 1u32..).prop_map(|(v6, mark)| ServiceKey::Fwmark {
                af: if v6 {
                    AddressFamily::Inet6
                } else {
                    AddressFamily::Inet
                },
                mark
            }),
        ]
    }

    proptest! {
        /// What status prints, the command line reads back.
        #[test]
        fn names_read_back(k in key(), addr in any::<IpAddr>(), port in any::<u16>()) {
            prop_assert_eq!(parse_service(&ServiceName(k).to_string()), Ok(k));
            let d = DestKey { addr, port };
            prop_assert_eq!(parse_dest(&DestName(d).to_string(), &k), Ok(d));
        }
    }
}
