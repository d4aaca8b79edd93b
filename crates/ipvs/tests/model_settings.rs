//! Settings equality and normalisation (`Service::same_settings`, `Destination::same_settings`,
//! `Service::normalised`, `Destination::normalised_for`) and the keyed view, as laws over
//! arbitrary services and real servers.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipvs::ipvsadm;
use ipvs::{
    AddressFamily, DestKey, Destination, Forwarding, KeyedTable, Netmask, Op, Protocol, Scheduler,
    Service, ServiceEntry, ServiceFlags, ServiceKey, Stats, Table, Tunnel, TunnelFlags, TunnelType,
};
use proptest::prelude::*;

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
            any::<u16>()
        )
            .prop_map(|(protocol, addr, port)| ServiceKey::Inet {
                protocol,
                addr,
                port
            }),
        (
            prop_oneof![Just(AddressFamily::Inet), Just(AddressFamily::Inet6)],
            any::<u32>()
        )
            .prop_map(|(af, mark)| ServiceKey::Fwmark { af, mark }),
    ]
}

fn stats() -> impl Strategy<Value = Option<Stats>> {
    proptest::option::of(
        (any::<u64>(), any::<u64>()).prop_map(|(conns, inbytes)| Stats {
            conns,
            inbytes,
            ..Stats::default()
        }),
    )
}

fn scheduler() -> impl Strategy<Value = Scheduler> {
    prop_oneof![
        proptest::sample::select(Scheduler::KNOWN.to_vec()),
        proptest::sample::select(vec!["rr", "wlc", "mh", "xyz", ""])
            .prop_map(|n| Scheduler::Other(n.to_string())),
    ]
}

prop_compose! {
    fn service()(
        key in key(),
        scheduler in scheduler(),
        bits in 0u32..0x40,
        timeout in any::<u32>(),
        prefix in 1u8..=128,
        mask in any::<u32>(),
        pe in proptest::option::of(proptest::sample::select(vec!["", "sip"])),
        stats in stats(),
    ) -> Service {
        Service {
            netmask: match key.af() {
                AddressFamily::Inet => Netmask::Inet(Ipv4Addr::from(mask)),
                AddressFamily::Inet6 => Netmask::Inet6(prefix),
            },
            key,
            scheduler,
            flags: ServiceFlags::from_bits_retain(bits),
            timeout,
            pe_name: pe.map(str::to_string),
            stats,
        }
    }
}

fn forwarding() -> impl Strategy<Value = Forwarding> {
    proptest::sample::select(vec![
        Forwarding::Masq,
        Forwarding::Local,
        Forwarding::Tunnel,
        Forwarding::DirectRoute,
        Forwarding::Bypass,
    ])
}

prop_compose! {
    fn dest()(
        addr in addr(),
        port in any::<u16>(),
        forwarding in forwarding(),
        weight in 0i32..=65_535,
        upper in any::<u32>(),
        lower in any::<u32>(),
        kind in 0u8..4,
        tun_port in any::<u16>(),
        tun_flags in 0u16..4,
        conns in any::<(u32, u32, u32)>(),
        stats in stats(),
    ) -> Destination {
        Destination {
            addr,
            port,
            forwarding,
            weight,
            upper_threshold: upper,
            lower_threshold: lower,
            tunnel: Tunnel {
                kind: TunnelType::from_raw(kind),
                port: tun_port,
                flags: TunnelFlags::from_bits_retain(tun_flags),
            },
            active_conns: conns.0,
            inactive_conns: conns.1,
            persist_conns: conns.2,
            stats,
        }
    }
}

/// What the kernel adds to a service it holds: `HASHED`, and counters.
fn as_the_kernel_reports(mut s: Service, stats: Option<Stats>) -> Service {
    s.flags = s.flags.with(ServiceFlags::HASHED, true);
    s.stats = stats.or(Some(Stats::default()));
    s
}

proptest! {
    #[test]
    fn a_service_equals_its_snapshot(s in service(), st in stats()) {
        let wanted = s.normalised();
        prop_assert!(wanted.same_settings(&wanted));
        let live = as_the_kernel_reports(wanted.clone(), st);
        prop_assert!(wanted.same_settings(&live));
        prop_assert!(live.same_settings(&wanted));
    }

    #[test]
    fn every_service_setting_counts(s in service(), other in service()) {
        let s = s.normalised();
        let other = other.normalised();
        // Each field of `other` moved into `s` alone: unequal exactly when that field differs.
        let mut t = s.clone();
        t.key = other.key;
        prop_assert_eq!(s.same_settings(&t), s.key == other.key);
        let mut t = s.clone();
        t.scheduler = other.scheduler.clone();
        prop_assert_eq!(s.same_settings(&t), s.scheduler == other.scheduler);
        let mut t = s.clone();
        t.flags = other.flags;
        prop_assert_eq!(
            s.same_settings(&t),
            s.flags.with(ServiceFlags::HASHED, false) == other.flags.with(ServiceFlags::HASHED, false)
        );
        let mut t = s.clone();
        t.timeout = other.timeout;
        prop_assert_eq!(s.same_settings(&t), s.timeout == other.timeout);
        let mut t = s.clone();
        t.netmask = other.netmask;
        prop_assert_eq!(s.same_settings(&t), s.netmask == other.netmask);
        let mut t = s.clone();
        t.pe_name = other.pe_name.clone();
        prop_assert_eq!(s.same_settings(&t), s.pe_name == other.pe_name);
        // Symmetric.
        prop_assert_eq!(s.same_settings(&other), other.same_settings(&s));
    }

    #[test]
    fn service_normalisation_is_idempotent_and_keeps_settings(s in service()) {
        let once = s.clone().normalised();
        prop_assert_eq!(once.clone().normalised(), once.clone());
        prop_assert!(!once.flags.hashed());
        prop_assert_eq!(once.stats, None);
        prop_assert_eq!(once.key, s.key);
        prop_assert_eq!(once.scheduler.as_str(), s.scheduler.as_str());
        prop_assert_ne!(once.pe_name.as_deref(), Some(""));
    }

    #[test]
    fn a_real_server_equals_its_snapshot(d in dest(), k in key(), st in stats(), c in any::<(u32, u32, u32)>()) {
        let wanted = d.normalised_for(&k);
        let mut live = wanted.clone();
        (live.active_conns, live.inactive_conns, live.persist_conns) = c;
        live.stats = st;
        prop_assert!(wanted.same_settings(&live));
        prop_assert!(live.same_settings(&wanted));
    }

    #[test]
    fn every_real_server_setting_counts(d in dest(), other in dest()) {
        let mut t = d.clone();
        t.addr = other.addr;
        prop_assert_eq!(d.same_settings(&t), d.addr == other.addr);
        let mut t = d.clone();
        t.port = other.port;
        prop_assert_eq!(d.same_settings(&t), d.port == other.port);
        let mut t = d.clone();
        t.forwarding = other.forwarding;
        prop_assert_eq!(d.same_settings(&t), d.forwarding == other.forwarding);
        let mut t = d.clone();
        t.weight = other.weight;
        prop_assert_eq!(d.same_settings(&t), d.weight == other.weight);
        let mut t = d.clone();
        t.upper_threshold = other.upper_threshold;
        prop_assert_eq!(d.same_settings(&t), d.upper_threshold == other.upper_threshold);
        let mut t = d.clone();
        t.lower_threshold = other.lower_threshold;
        prop_assert_eq!(d.same_settings(&t), d.lower_threshold == other.lower_threshold);
        let mut t = d.clone();
        t.tunnel = other.tunnel;
        prop_assert_eq!(d.same_settings(&t), d.tunnel == other.tunnel);
        prop_assert_eq!(d.same_settings(&other), other.same_settings(&d));
    }

    #[test]
    fn real_server_normalisation_follows_ipvsadm(d in dest(), k in key()) {
        let n = d.clone().normalised_for(&k);
        prop_assert_eq!(n.clone().normalised_for(&k), n.clone());
        match (k, d.forwarding) {
            (ServiceKey::Inet { port, .. }, Forwarding::DirectRoute | Forwarding::Tunnel) => {
                prop_assert_eq!(n.port, port)
            }
            _ => prop_assert_eq!(n.port, d.port),
        }
        if d.forwarding == Forwarding::Tunnel {
            prop_assert_eq!(n.tunnel, d.tunnel);
        } else {
            prop_assert_eq!(n.tunnel, Tunnel::default());
        }
        prop_assert_eq!((n.addr, n.forwarding, n.weight), (d.addr, d.forwarding, d.weight));
        prop_assert_eq!((n.upper_threshold, n.lower_threshold), (d.upper_threshold, d.lower_threshold));
        prop_assert_eq!((n.active_conns, n.inactive_conns, n.persist_conns, n.stats), (0, 0, 0, None));
    }

    #[test]
    fn keyed_tables_find_every_entry(
        entries in proptest::collection::vec(
            (service(), proptest::collection::vec(dest(), 0..5)),
            0..20,
        )
    ) {
        let table = Table {
            services: entries
                .into_iter()
                .map(|(service, destinations)| ServiceEntry { service, destinations })
                .collect(),
        };
        let keyed: KeyedTable = table.keyed();
        // The last entry of a key wins, as in any map.
        for e in &table.services {
            let last = table.services.iter().rev().find(|x| x.service.key == e.service.key).unwrap();
            let got = keyed.get(&e.service.key).unwrap();
            prop_assert_eq!(&got.service, &last.service);
            for d in &last.destinations {
                let want = last.destinations.iter().rev().find(|x| x.key() == d.key()).unwrap();
                prop_assert_eq!(keyed.dest(&e.service.key, &d.key()), Some(want));
            }
        }
        prop_assert_eq!(keyed.clone().into_table().keyed(), keyed);
    }
}

/// What the restore parser produces is already normalised: the rules live in the model.
#[test]
fn restore_output_is_normalised() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ipvsadm/");
    let text = std::fs::read_to_string(format!("{dir}all.rules")).unwrap();
    let parsed = ipvsadm::parse(&text).unwrap();
    let mut dests = 0;
    for op in parsed.ops {
        match op {
            Op::AddService(s) | Op::EditService(s) => {
                assert_eq!(s.clone().normalised(), s);
            }
            Op::AddDest(k, d) | Op::EditDest(k, d) => {
                dests += 1;
                assert_eq!(d.clone().normalised_for(&k), d);
            }
            _ => {}
        }
    }
    assert!(dests > 10, "only {dests} real servers in all.rules");
}

/// The cases ipvsadm's documentation names: direct routing and tunnels take the service's port,
/// masquerading keeps its own, a firewall-mark service forces nothing.
#[test]
fn normalisation_examples() {
    let tcp = ServiceKey::Inet {
        protocol: Protocol::Tcp,
        addr: "10.1.0.1".parse().unwrap(),
        port: 80,
    };
    let fw = ServiceKey::Fwmark {
        af: AddressFamily::Inet,
        mark: 1,
    };
    let rs: IpAddr = "10.2.0.1".parse().unwrap();
    let dr = Destination::new(rs, 8080, Forwarding::DirectRoute);
    assert_eq!(dr.clone().normalised_for(&tcp).port, 80);
    assert_eq!(dr.normalised_for(&fw).port, 8080);
    let mut nat = Destination::new(rs, 8080, Forwarding::Masq);
    nat.tunnel.port = 6080;
    let n = nat.normalised_for(&tcp);
    assert_eq!((n.port, n.tunnel), (8080, Tunnel::default()));
    assert_eq!(
        n.key(),
        DestKey {
            addr: rs,
            port: 8080
        }
    );

    let s = Service {
        scheduler: Scheduler::Other("wrr".into()),
        pe_name: Some(String::new()),
        flags: ServiceFlags::HASHED | ServiceFlags::PERSISTENT,
        ..Service::new(tcp, Scheduler::Wlc)
    }
    .normalised();
    assert_eq!(s.scheduler, Scheduler::Wrr);
    assert_eq!(s.pe_name, None);
    assert_eq!(s.flags, ServiceFlags::PERSISTENT);
}
