//! One [`Op`] as the `ipvsadm -R` line that makes it: the notation `director plan` prints, so an
//! operator reads the exact changes as ipvsadm would spell them, and can feed them back to
//! `director ipvs restore` (or `ipvsadm -R`): [`parse_line`](super::restore::parse_line) of a
//! rule gives the operation back (property-tested below).
//!
//! The spelling is `ipvsadm -Sn`'s (`save`), with the command letter of the operation (`-A`,
//! `-E`, `-D`, `-a`, `-e`, `-d`, `-Z`, `-C`, `--set`) and, unlike the save text, the real
//! server's thresholds (`-x`, `-y`) when they are set: ipvsadm's save omits them, a plan must
//! not.

use super::fmt::{push_addr_port, push_u32};
use super::save::{push_dest_rule, push_service_rule, rule_name};
use crate::model::Destination;
use crate::ops::Op;

/// The `ipvsadm -R` line (without its newline) of `op`, or `None` for the operations restore
/// input cannot express (starting and stopping the sync daemon: `ipvsadm --start-daemon` is a
/// command of its own, not a restore line).
pub fn rule(op: &Op) -> Option<String> {
    let mut out = String::with_capacity(96);
    match op {
        Op::AddService(s) => push_service_rule(&mut out, "-A", &rule_name(&s.key), s),
        Op::EditService(s) => push_service_rule(&mut out, "-E", &rule_name(&s.key), s),
        Op::DelService(k) => {
            out.push_str("-D ");
            out.push_str(&rule_name(k));
        }
        Op::AddDest(k, d) => push_dest(&mut out, "-a", &rule_name(k), d),
        Op::EditDest(k, d) => push_dest(&mut out, "-e", &rule_name(k), d),
        Op::DelDest(k, d) => {
            out.push_str("-d ");
            out.push_str(&rule_name(k));
            out.push_str(" -r ");
            push_addr_port(&mut out, d.addr, d.port);
        }
        Op::Zero(Some(k)) => {
            out.push_str("-Z ");
            out.push_str(&rule_name(k));
        }
        Op::Zero(None) => out.push_str("-Z"),
        Op::Flush => out.push_str("-C"),
        Op::SetTimeouts(t) => {
            out.push_str("--set ");
            push_u32(&mut out, t.tcp);
            out.push(' ');
            push_u32(&mut out, t.tcp_fin);
            out.push(' ');
            push_u32(&mut out, t.udp);
        }
        Op::StartDaemon(_) | Op::StopDaemon(_) => return None,
    }
    while out.ends_with('\n') {
        out.pop();
    }
    Some(out)
}

/// A real-server line with its thresholds.
fn push_dest(out: &mut String, cmd: &str, name: &str, d: &Destination) {
    push_dest_rule(out, cmd, name, d);
    out.pop(); // the save line's newline
    if d.upper_threshold != 0 {
        out.push_str(" -x ");
        push_u32(out, d.upper_threshold);
    }
    if d.lower_threshold != 0 {
        out.push_str(" -y ");
        push_u32(out, d.lower_threshold);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;

    use super::*;
    use crate::ipvsadm::restore::parse_line;
    use crate::model::{
        AddressFamily, DaemonState, Forwarding, Netmask, Protocol, Scheduler, Service,
        ServiceFlags, ServiceKey, SyncDaemon, Timeouts, Tunnel, TunnelFlags, TunnelType,
    };

    fn tcp(addr: &str, port: u16) -> ServiceKey {
        ServiceKey::Inet {
            protocol: Protocol::Tcp,
            addr: addr.parse().unwrap(),
            port,
        }
    }

    #[test]
    fn each_operation_has_its_command_letter() {
        let k = tcp("10.0.0.1", 80);
        let mut d = Destination::new("10.0.0.11".parse().unwrap(), 80, Forwarding::DirectRoute);
        d.weight = 3;
        d.upper_threshold = 100;
        d.lower_threshold = 10;
        let s = Service::new(k, Scheduler::Wlc);
        let cases = [
            (Op::AddService(s.clone()), "-A -t 10.0.0.1:80 -s wlc"),
            (Op::EditService(s), "-E -t 10.0.0.1:80 -s wlc"),
            (Op::DelService(k), "-D -t 10.0.0.1:80"),
            (
                Op::AddDest(k, d.clone()),
                "-a -t 10.0.0.1:80 -r 10.0.0.11:80 -g -w 3 -x 100 -y 10",
            ),
            (
                Op::EditDest(k, d.clone()),
                "-e -t 10.0.0.1:80 -r 10.0.0.11:80 -g -w 3 -x 100 -y 10",
            ),
            (Op::DelDest(k, d.key()), "-d -t 10.0.0.1:80 -r 10.0.0.11:80"),
            (Op::Zero(Some(k)), "-Z -t 10.0.0.1:80"),
            (Op::Zero(None), "-Z"),
            (Op::Flush, "-C"),
            (
                Op::SetTimeouts(Timeouts {
                    tcp: 900,
                    tcp_fin: 120,
                    udp: 300,
                }),
                "--set 900 120 300",
            ),
        ];
        for (op, want) in cases {
            assert_eq!(rule(&op).as_deref(), Some(want), "{op}");
        }
    }

    #[test]
    fn sync_daemons_have_no_restore_line() {
        let d = SyncDaemon::new(DaemonState::Master, "eth0", 1);
        assert_eq!(rule(&Op::StartDaemon(d)), None);
        assert_eq!(rule(&Op::StopDaemon(DaemonState::Backup)), None);
    }

    fn addr() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
            any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
        ]
    }

    fn key() -> impl Strategy<Value = ServiceKey> {
        prop_oneof![
            (
                prop_oneof![
                    Just(Protocol::Tcp),
                    Just(Protocol::Udp),
                    Just(Protocol::Sctp)
                ],
                addr(),
                // Port 0 (any port) only goes with persistence, which ipvsadm checks.
                1u16..
            )
                .prop_map(|(protocol, addr, port)| ServiceKey::Inet {
                    protocol,
                    addr,
                    port
                }),
            (
                prop_oneof![Just(AddressFamily::Inet), Just(AddressFamily::Inet6)],
                1u32..
            )
                .prop_map(|(af, mark)| ServiceKey::Fwmark { af, mark }),
        ]
    }

    prop_compose! {
        /// A service as a configuration would want it: a known scheduler, persistence with a
        /// timeout or none, one-packet, the scheduler flags.
        fn service()(
            key in key(),
            sched in proptest::sample::select(Scheduler::KNOWN.to_vec()),
            persistent in any::<bool>(),
            timeout in 1u32..=86_400,
            prefix in 1u8..=128,
            mask in 1u32..=32,
            ops in any::<bool>(),
            sched_bits in 0u32..8,
            pe in any::<bool>(),
        ) -> Service {
            let mut s = Service::new(key, sched.clone());
            if persistent {
                s.flags = s.flags.with(ServiceFlags::PERSISTENT, true);
                s.timeout = timeout;
                s.netmask = match key.af() {
                    AddressFamily::Inet => Netmask::Inet(Ipv4Addr::from(u32::MAX << (32 - mask))),
                    AddressFamily::Inet6 => Netmask::Inet6(prefix),
                };
                if pe {
                    s.pe_name = Some("sip".into());
                }
            }
            // ipvsadm: one-packet scheduling is for UDP and firewall-mark services.
            let udp_or_mark = !matches!(key, ServiceKey::Inet { protocol, .. } if protocol != Protocol::Udp);
            s.flags = s.flags.with(ServiceFlags::ONEPACKET, ops && udp_or_mark);
            // sh and mh name two flags; the others three.
            let named = if matches!(sched.as_str(), "sh" | "mh") { sched_bits & 3 } else { sched_bits };
            for (i, bit) in [ServiceFlags::SCHED1, ServiceFlags::SCHED2, ServiceFlags::SCHED3].into_iter().enumerate() {
                s.flags = s.flags.with(bit, named & (1 << i) != 0);
            }
            s
        }
    }

    prop_compose! {
        fn dest(service: ServiceKey)(
            addr in addr(),
            port in any::<u16>(),
            fwd in prop_oneof![Just(Forwarding::DirectRoute), Just(Forwarding::Masq), Just(Forwarding::Tunnel)],
            weight in 0i32..=65_535,
            upper in 0u32..=65_535,
            lower in 0u32..=65_535,
            kind in prop_oneof![Just(TunnelType::Ipip), Just(TunnelType::Gue), Just(TunnelType::Gre)],
            tport in 1u16..,
            csum in 0u8..3,
        ) -> Destination {
            // Mixed families only tunnel (the parser refuses the rest, as the kernel does).
            let addr = match (fwd, service.af(), addr) {
                (Forwarding::Tunnel, _, a) => a,
                (_, AddressFamily::Inet, IpAddr::V6(a)) => IpAddr::V4(Ipv4Addr::from(a.to_bits() as u32)),
                (_, AddressFamily::Inet6, IpAddr::V4(a)) => IpAddr::V6(a.to_ipv6_mapped()),
                (_, _, a) => a,
            };
            let mut d = Destination::new(addr, port, fwd);
            d.weight = weight;
            d.upper_threshold = upper;
            d.lower_threshold = lower.min(upper);
            if fwd == Forwarding::Tunnel {
                let flags = match csum { 0 => TunnelFlags::default(), 1 => TunnelFlags::CSUM, _ => TunnelFlags::REMCSUM };
                d.tunnel = match kind {
                    TunnelType::Gue => Tunnel { kind, port: tport, flags },
                    // ipvsadm: remote checksum offload is GUE's only.
                    TunnelType::Gre => Tunnel { kind, port: 0, flags: flags & TunnelFlags::CSUM },
                    _ => Tunnel::default(),
                };
            }
            d.normalised_for(&service)
        }
    }

    fn op() -> impl Strategy<Value = Op> {
        service().prop_flat_map(|s| {
            let k = s.key;
            prop_oneof![
                Just(Op::AddService(s.clone())),
                Just(Op::EditService(s.clone())),
                Just(Op::DelService(k)),
                dest(k).prop_map(move |d| Op::AddDest(k, d)),
                dest(k).prop_map(move |d| Op::EditDest(k, d)),
                dest(k).prop_map(move |d| Op::DelDest(k, d.key())),
                Just(Op::Zero(Some(k))),
            ]
        })
    }

    proptest! {
        /// The law: a rule reads back as the operation it was printed from.
        #[test]
        fn a_rule_parses_back_to_its_operation(op in op()) {
            let line = rule(&op).unwrap();
            prop_assert_eq!(parse_line(&line), Ok(Some(op.clone())), "{}", line);
        }
    }
}
