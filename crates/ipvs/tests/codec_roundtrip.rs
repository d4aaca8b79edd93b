//! Property tests: encode then decode gives back the model (request and reply layouts), and no
//! input makes a decoder panic.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipvs::codec::daemon::{decode_daemon_msg, encode_daemon, encode_daemon_reply};
use ipvs::codec::dest::{decode_dest_msg, encode_dest, encode_dest_reply};
use ipvs::codec::info::{decode_family_id, decode_info, decode_timeouts};
use ipvs::codec::msg::MessageIter;
use ipvs::codec::request::{encode_op, op_cmd};
use ipvs::codec::service::{decode_service_msg, encode_service, encode_service_reply};
use ipvs::*;
use proptest::prelude::*;

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<[u8; 16]>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
    ]
}

fn af() -> impl Strategy<Value = AddressFamily> {
    prop_oneof![Just(AddressFamily::Inet), Just(AddressFamily::Inet6)]
}

fn key() -> impl Strategy<Value = ServiceKey> {
    prop_oneof![
        (any::<u16>(), ip(), any::<u16>()).prop_map(|(p, addr, port)| ServiceKey::Inet {
            protocol: Protocol::from_raw(p),
            addr,
            port
        }),
        (af(), 1..=u32::MAX).prop_map(|(af, mark)| ServiceKey::Fwmark { af, mark }),
    ]
}

fn stats() -> impl Strategy<Value = Option<Stats>> {
    proptest::option::of(any::<[u64; 10]>().prop_map(|v| Stats {
        conns: v[0],
        inpkts: v[1],
        outpkts: v[2],
        inbytes: v[3],
        outbytes: v[4],
        cps: v[5],
        inpps: v[6],
        outpps: v[7],
        inbps: v[8],
        outbps: v[9],
    }))
}

fn service() -> impl Strategy<Value = Service> {
    (
        key(),
        "[a-z]{1,15}",
        any::<u32>(),
        any::<u32>(),
        any::<[u8; 4]>(),
        0u8..=128,
        proptest::option::of("[a-z]{1,15}"),
        stats(),
    )
        .prop_map(|(key, sched, flags, timeout, m4, p6, pe_name, stats)| {
            let netmask = match key.af() {
                AddressFamily::Inet => Netmask::Inet(Ipv4Addr::from(m4)),
                AddressFamily::Inet6 => Netmask::Inet6(p6),
            };
            Service {
                key,
                scheduler: Scheduler::from_name(&sched),
                flags: ServiceFlags::from_bits_retain(flags),
                timeout,
                netmask,
                pe_name,
                stats,
            }
        })
}

fn destination() -> impl Strategy<Value = Destination> {
    (
        (
            ip(),
            any::<u16>(),
            0u32..5,
            any::<i32>(),
            any::<u32>(),
            any::<u32>(),
        ),
        (any::<u8>(), any::<u16>(), any::<u16>()),
        (any::<u32>(), any::<u32>(), any::<u32>()),
        stats(),
    )
        .prop_map(
            |((addr, port, fwd, weight, u, l), (tt, tp, tf), (a, i, p), stats)| Destination {
                addr,
                port,
                forwarding: Forwarding::from_raw(fwd).unwrap(),
                weight,
                upper_threshold: u,
                lower_threshold: l,
                tunnel: Tunnel {
                    kind: TunnelType::from_raw(tt),
                    port: tp,
                    flags: TunnelFlags::from_bits_retain(tf),
                },
                active_conns: a,
                inactive_conns: i,
                persist_conns: p,
                stats,
            },
        )
}

fn daemon() -> impl Strategy<Value = SyncDaemon> {
    (
        prop_oneof![Just(DaemonState::Master), Just(DaemonState::Backup)],
        "[a-z0-9]{1,15}",
        any::<u32>(),
        proptest::option::of(any::<u16>()),
        proptest::option::of(ip()),
        proptest::option::of(any::<u16>()),
        proptest::option::of(any::<u8>()),
    )
        .prop_map(
            |(state, ifn, syncid, maxlen, group, port, ttl)| SyncDaemon {
                state,
                mcast_ifn: ifn,
                syncid,
                sync_maxlen: maxlen,
                mcast_group: group,
                mcast_port: port,
                mcast_ttl: ttl,
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        service().prop_map(Op::AddService),
        service().prop_map(Op::EditService),
        key().prop_map(Op::DelService),
        (key(), destination()).prop_map(|(k, d)| Op::AddDest(k, d)),
        (key(), destination()).prop_map(|(k, d)| Op::EditDest(k, d)),
        (key(), destination()).prop_map(|(k, d)| Op::DelDest(k, d.key())),
        proptest::option::of(key()).prop_map(Op::Zero),
        Just(Op::Flush),
        any::<[u32; 3]>().prop_map(|t| Op::SetTimeouts(Timeouts {
            tcp: t[0],
            tcp_fin: t[1],
            udp: t[2]
        })),
        daemon().prop_map(Op::StartDaemon),
        prop_oneof![Just(DaemonState::Master), Just(DaemonState::Backup)].prop_map(Op::StopDaemon),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn service_round_trips(s in service()) {
        let mut b = Vec::new();
        encode_service_reply(&mut b, &s);
        prop_assert_eq!(&decode_service_msg(&b).unwrap().service, &s);
        let mut b = Vec::new();
        encode_service(&mut b, &s);
        let want = Service { stats: None, ..s };
        prop_assert_eq!(decode_service_msg(&b).unwrap().service, want);
    }

    #[test]
    fn destination_round_trips(d in destination(), svc_af in af()) {
        let mut b = Vec::new();
        encode_dest_reply(&mut b, &d);
        prop_assert_eq!(&decode_dest_msg(&b, svc_af).unwrap().dest, &d);
        let mut b = Vec::new();
        encode_dest(&mut b, &d);
        let want = Destination {
            active_conns: 0,
            inactive_conns: 0,
            persist_conns: 0,
            stats: None,
            ..d
        };
        prop_assert_eq!(decode_dest_msg(&b, svc_af).unwrap().dest, want);
    }

    #[test]
    fn daemon_round_trips(d in daemon()) {
        for reply in [false, true] {
            let mut b = Vec::new();
            if reply { encode_daemon_reply(&mut b, &d) } else { encode_daemon(&mut b, &d) }
            prop_assert_eq!(&decode_daemon_msg(&b).unwrap().daemon, &d);
        }
    }

    #[test]
    fn packed_requests_frame_and_carry_their_objects(ops in proptest::collection::vec(op(), 1..20)) {
        let mut b = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            encode_op(&mut b, 0x20, i as u32, op);
        }
        let msgs: Vec<_> = MessageIter::new(&b).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(msgs.len(), ops.len());
        for (i, (m, op)) in msgs.iter().zip(&ops).enumerate() {
            prop_assert_eq!(m.seq, i as u32);
            let g = m.genl().unwrap();
            prop_assert_eq!(g.cmd, op_cmd(op));
            match op {
                Op::AddService(s) | Op::EditService(s) => prop_assert_eq!(
                    decode_service_msg(g.attrs).unwrap().service,
                    Service { stats: None, ..s.clone() }
                ),
                Op::DelService(k) | Op::Zero(Some(k)) =>
                    prop_assert_eq!(decode_service_msg(g.attrs).map(|r| r.service.key).ok(), {
                        // A key-only nest lacks the scheduler and flags but decodes its key.
                        Some(*k)
                    }),
                Op::AddDest(k, d) | Op::EditDest(k, d) => {
                    prop_assert_eq!(decode_service_msg(g.attrs).unwrap().service.key, *k);
                    prop_assert_eq!(decode_dest_msg(g.attrs, k.af()).unwrap().dest.key(), d.key());
                }
                Op::SetTimeouts(t) => prop_assert_eq!(decode_timeouts(g.attrs).unwrap(), *t),
                Op::StartDaemon(d) => prop_assert_eq!(&decode_daemon_msg(g.attrs).unwrap().daemon, d),
                _ => {}
            }
        }
    }

    #[test]
    fn no_input_makes_a_decoder_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), svc_af in af()) {
        let _ = decode_service_msg(&bytes);
        let _ = decode_dest_msg(&bytes, svc_af);
        let _ = decode_daemon_msg(&bytes);
        let _ = decode_info(&bytes);
        let _ = decode_timeouts(&bytes);
        let _ = decode_family_id(&bytes);
        for m in MessageIter::new(&bytes).flatten() {
            let _ = m.ack();
            if let Ok(g) = m.genl() {
                let _ = decode_service_msg(g.attrs);
                let _ = decode_dest_msg(g.attrs, svc_af);
            }
        }
    }
}
