//! The diff's laws, checked against the kernel model in `simulate`: for any desired table and
//! any kernel table (foreign services included), the plan applies without a refusal, leaves the
//! kernel holding what we want for every key we own and everything else untouched, and a second
//! diff finds nothing to do. Plus the cases issue 16 names (weight edit in place, drain).
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ipvs::{
    AddressFamily, Destination, Forwarding, Netmask, Op, Protocol, Scheduler, Service,
    ServiceEntry, ServiceFlags, ServiceKey, Table, Tunnel, TunnelFlags, TunnelType,
};
use proptest::prelude::*;

use super::compare::{same_dest, same_service};
use super::simulate::{simulate, Refused, EEXIST, ESRCH};
use super::{diff, withdraw, DrainState, Owned, Plan};
use crate::desired::{build, AllUp, Desired, Overrides, ServiceInput};

const TIMEOUT: Duration = Duration::from_secs(30);

fn inet(port: u16) -> ServiceKey {
    ServiceKey::Inet {
        protocol: Protocol::Tcp,
        addr: "192.0.2.1".parse().unwrap(),
        port,
    }
}

fn rs(last: u8, weight: i32) -> Destination {
    let mut d = Destination::new(IpAddr::from([10, 0, 0, last]), 80, Forwarding::DirectRoute);
    d.weight = weight;
    d
}

/// What the kernel reports for what we sent: `HASHED` set, counters present.
fn live(s: &Service, dests: &[Destination]) -> ServiceEntry {
    let mut service = s.clone();
    service.flags = service.flags.with(ServiceFlags::HASHED, true);
    service.stats = Some(ipvs::Stats {
        conns: 12,
        ..Default::default()
    });
    ServiceEntry {
        service,
        destinations: dests.to_vec(),
    }
}

fn desired_one(key: ServiceKey, dests: Vec<Destination>) -> Desired {
    let mut d = Desired::default();
    d.insert("vi_1", Service::new(key, Scheduler::Wlc), dests);
    d
}

fn plan(desired: &Desired, kernel: &Table, now: Instant) -> Plan {
    diff(
        desired,
        kernel,
        &Owned::default(),
        &DrainState::default(),
        now,
        TIMEOUT,
    )
}

#[test]
fn equal_tables_give_no_operation() {
    let want = desired_one(inet(80), vec![rs(1, 1), rs(2, 3)]);
    let kernel = Table {
        services: vec![live(
            &Service::new(inet(80), Scheduler::Wlc),
            &[rs(2, 3), rs(1, 1)],
        )],
    };
    assert!(plan(&want, &kernel, Instant::now()).is_empty());
}

#[test]
fn a_weight_change_is_one_edit_in_place() {
    let want = desired_one(inet(80), vec![rs(1, 1), rs(2, 7)]);
    let mut busy = rs(2, 3);
    busy.active_conns = 40;
    let kernel = Table {
        services: vec![live(
            &Service::new(inet(80), Scheduler::Wlc),
            &[rs(1, 1), busy],
        )],
    };
    let p = plan(&want, &kernel, Instant::now());
    assert_eq!(p.ops, [Op::EditDest(inet(80), rs(2, 7))]);
    let after = simulate(&kernel, &p.ops).unwrap();
    let kept = &after.services[0].destinations[1];
    assert_eq!(
        (kept.weight, kept.active_conns),
        (7, 40),
        "edited, not re-added"
    );
}

#[test]
fn thresholds_and_forwarding_are_edits_too() {
    let mut changed = rs(1, 1);
    changed.upper_threshold = 100;
    changed.lower_threshold = 10;
    changed.forwarding = Forwarding::Masq;
    let want = desired_one(inet(80), vec![changed.clone()]);
    let kernel = Table {
        services: vec![live(&Service::new(inet(80), Scheduler::Wlc), &[rs(1, 1)])],
    };
    assert_eq!(
        plan(&want, &kernel, Instant::now()).ops,
        [Op::EditDest(inet(80), changed)]
    );
}

#[test]
fn a_settings_change_is_one_service_edit() {
    let mut s = Service::new(inet(80), Scheduler::Sh);
    s.flags = ServiceFlags::PERSISTENT;
    s.timeout = 300;
    let mut want = Desired::default();
    want.insert("vi_1", s.clone(), vec![rs(1, 1)]);
    let kernel = Table {
        services: vec![live(&Service::new(inet(80), Scheduler::Wlc), &[rs(1, 1)])],
    };
    assert_eq!(
        plan(&want, &kernel, Instant::now()).ops,
        [Op::EditService(s)]
    );
}

#[test]
fn foreign_services_are_never_named_and_owned_ones_are_deleted_whole() {
    let want = desired_one(inet(80), vec![rs(1, 1)]);
    let foreign = live(&Service::new(inet(8080), Scheduler::Rr), &[rs(9, 1)]);
    let old = live(
        &Service::new(inet(443), Scheduler::Rr),
        &[rs(1, 1), rs(2, 1)],
    );
    let kernel = Table {
        services: vec![foreign.clone(), old],
    };
    let owned: Owned = [inet(443)].into_iter().collect();
    let p = diff(
        &want,
        &kernel,
        &owned,
        &DrainState::default(),
        Instant::now(),
        TIMEOUT,
    );
    assert_eq!(
        p.ops,
        [
            Op::DelService(inet(443)),
            Op::AddService(Service::new(inet(80), Scheduler::Wlc)),
            Op::AddDest(inet(80), rs(1, 1)),
        ]
    );
    let after = simulate(&kernel, &p.ops).unwrap();
    assert_eq!(after.services[0], foreign);
}

#[test]
fn a_removed_real_server_drains_then_goes() {
    let t0 = Instant::now();
    let want = desired_one(inet(80), vec![rs(1, 1)]);
    let mut leaving = rs(2, 5);
    leaving.active_conns = 3;
    let kernel = Table {
        services: vec![live(
            &Service::new(inet(80), Scheduler::Wlc),
            &[rs(1, 1), leaving.clone()],
        )],
    };
    let p1 = plan(&want, &kernel, t0);
    assert_eq!(p1.ops, [Op::EditDest(inet(80), rs(2, 0))]);
    assert_eq!(p1.drain.since(&inet(80), &leaving.key()), Some(t0));
    assert_eq!(p1.wake_at, Some(t0 + TIMEOUT));

    // Still busy, already at weight 0: nothing to do, the drain keeps its start.
    let k1 = simulate(&kernel, &p1.ops).unwrap();
    let owned = Owned::default();
    let t1 = t0 + Duration::from_secs(10);
    let p2 = diff(&want, &k1, &owned, &p1.drain, t1, TIMEOUT);
    assert!(p2.is_empty());
    assert_eq!(p2.drain, p1.drain);

    // Connections gone: deleted.
    let mut k2 = k1.clone();
    k2.services[0].destinations[1].active_conns = 0;
    let p3 = diff(&want, &k2, &owned, &p2.drain, t1, TIMEOUT);
    assert_eq!(p3.ops, [Op::DelDest(inet(80), leaving.key())]);
    assert!(p3.drain.is_empty());

    // Or the timeout passed while still busy: deleted anyway.
    let p4 = diff(&want, &k1, &owned, &p2.drain, t0 + TIMEOUT, TIMEOUT);
    assert_eq!(p4.ops, [Op::DelDest(inet(80), leaving.key())]);
}

#[test]
fn an_idle_removed_real_server_goes_at_once_and_a_returning_one_is_restored() {
    let t0 = Instant::now();
    let want = desired_one(inet(80), vec![rs(1, 1)]);
    let kernel = Table {
        services: vec![live(
            &Service::new(inet(80), Scheduler::Wlc),
            &[rs(1, 1), rs(2, 5)],
        )],
    };
    assert_eq!(
        plan(&want, &kernel, t0).ops,
        [Op::DelDest(inet(80), rs(2, 5).key())]
    );

    // Draining, then configured again: one edit back to its weight, drain forgotten.
    let mut drained = rs(2, 0);
    drained.active_conns = 2;
    let kernel = Table {
        services: vec![live(
            &Service::new(inet(80), Scheduler::Wlc),
            &[rs(1, 1), drained],
        )],
    };
    let mut state = DrainState::default();
    state.since.insert((inet(80), rs(2, 0).key()), t0);
    let back = desired_one(inet(80), vec![rs(1, 1), rs(2, 5)]);
    let p = diff(&back, &kernel, &Owned::default(), &state, t0, TIMEOUT);
    assert_eq!(p.ops, [Op::EditDest(inet(80), rs(2, 5))]);
    assert!(p.drain.is_empty());
}

#[test]
fn the_model_refuses_what_the_kernel_refuses() {
    let s = Service::new(inet(80), Scheduler::Wlc);
    let t = Table {
        services: vec![live(&s, &[])],
    };
    let refused = |ops: &[Op]| simulate(&t, ops).unwrap_err().errno;
    assert_eq!(refused(&[Op::AddService(s.clone())]), EEXIST);
    assert_eq!(
        refused(&[Op::EditService(Service::new(inet(1), Scheduler::Rr))]),
        ESRCH
    );
    assert_eq!(refused(&[Op::AddDest(inet(1), rs(1, 1))]), ESRCH);
    assert_eq!(
        simulate(
            &t,
            &[
                Op::AddDest(inet(80), rs(1, 1)),
                Op::AddDest(inet(80), rs(1, 1))
            ]
        ),
        Err(Refused {
            index: 1,
            op: Box::new(Op::AddDest(inet(80), rs(1, 1))),
            errno: EEXIST
        })
    );
    assert_eq!(
        refused(&[Op::AddDest(inet(80), rs(1, -1))]),
        super::simulate::ERANGE
    );
}

// ---------------------------------------------------------------------------------------------
// Property tests.

fn key_pool() -> Vec<ServiceKey> {
    let mut keys = Vec::new();
    for addr in ["192.0.2.1", "192.0.2.2", "2001:db8::1"] {
        for (protocol, port) in [
            (Protocol::Tcp, 80),
            (Protocol::Udp, 53),
            (Protocol::Tcp, 443),
        ] {
            keys.push(ServiceKey::Inet {
                protocol,
                addr: addr.parse().unwrap(),
                port,
            });
        }
    }
    for (af, mark) in [(AddressFamily::Inet, 1), (AddressFamily::Inet6, 2)] {
        keys.push(ServiceKey::Fwmark { af, mark });
    }
    keys
}

fn service_strategy(key: ServiceKey) -> impl Strategy<Value = Service> {
    (
        prop_oneof![
            Just(Scheduler::Rr),
            Just(Scheduler::Wlc),
            Just(Scheduler::Sh)
        ],
        prop::sample::select(vec![
            ServiceFlags::empty(),
            ServiceFlags::PERSISTENT,
            ServiceFlags::ONEPACKET,
            ServiceFlags::SCHED1 | ServiceFlags::SCHED2,
            // Never configured, but a desired service carrying it must still work.
            ServiceFlags::HASHED | ServiceFlags::PERSISTENT,
        ]),
        prop::sample::select(vec![0u32, 300]),
        any::<bool>(),
        prop::option::of(Just("sip".to_string())),
    )
        .prop_map(move |(scheduler, flags, timeout, narrow, pe_name)| {
            let netmask = match (key.af(), narrow) {
                (AddressFamily::Inet, true) => Netmask::Inet([255, 255, 255, 0].into()),
                (AddressFamily::Inet6, true) => Netmask::Inet6(64),
                (af, false) => Netmask::default_for(af),
            };
            Service {
                key,
                scheduler,
                flags,
                timeout,
                netmask,
                pe_name,
                stats: None,
            }
        })
}

/// A valid real server of a service of family `af` (what the config validator lets through).
fn dest_strategy(af: AddressFamily) -> impl Strategy<Value = Destination> {
    (
        prop::sample::select(vec![
            "10.0.0.1",
            "10.0.0.2",
            "10.0.0.3",
            "2001:db8::a",
            "2001:db8::b",
        ]),
        prop::sample::select(vec![80u16, 8080]),
        prop::sample::select(vec![
            Forwarding::Masq,
            Forwarding::DirectRoute,
            Forwarding::Tunnel,
        ]),
        0..4i32,
        prop::sample::select(vec![(0u32, 0u32), (100, 0), (100, 50)]),
        prop::sample::select(vec![TunnelType::Ipip, TunnelType::Gue, TunnelType::Gre]),
        0..4u16,
        0..50u32,
    )
        .prop_map(
            move |(addr, port, fwd, weight, (upper, lower), kind, flags, conns)| {
                let addr: IpAddr = addr.parse().unwrap();
                let forwarding = if AddressFamily::of(&addr) == af {
                    fwd
                } else {
                    Forwarding::Tunnel
                };
                let mut d = Destination::new(addr, port, forwarding);
                d.weight = weight;
                d.upper_threshold = upper;
                d.lower_threshold = lower;
                if forwarding == Forwarding::Tunnel {
                    d.tunnel = Tunnel {
                        kind,
                        port: if kind == TunnelType::Gue { 6080 } else { 0 },
                        flags: TunnelFlags::from_bits_retain(flags & 3),
                    };
                }
                // Only the kernel's copy carries counts; `desired` inputs have 0 (dest_to_send).
                d.active_conns = conns.saturating_sub(25);
                d
            },
        )
}

fn entry_strategy(key: ServiceKey) -> impl Strategy<Value = (Service, Vec<Destination>)> {
    (
        service_strategy(key),
        prop::collection::vec(dest_strategy(key.af()), 0..5),
    )
}

/// Several services with distinct keys picked from the pool.
fn entries_strategy() -> impl Strategy<Value = Vec<(Service, Vec<Destination>)>> {
    prop::sample::subsequence(key_pool(), 0..=8)
        .prop_flat_map(|keys| keys.into_iter().map(entry_strategy).collect::<Vec<_>>())
}

fn kernel_of(entries: &[(Service, Vec<Destination>)]) -> Table {
    Table {
        services: entries
            .iter()
            .map(|(s, ds)| {
                let mut unique = BTreeMap::new();
                for d in ds {
                    unique.entry(d.key()).or_insert(d.clone());
                }
                live(s, &unique.into_values().collect::<Vec<_>>())
            })
            .collect(),
    }
}

fn desired_of(entries: &[(Service, Vec<Destination>)]) -> Desired {
    let inputs: Vec<ServiceInput> = entries
        .iter()
        .map(|(s, ds)| {
            let ds = ds
                .iter()
                .map(|d| {
                    let mut d = d.clone();
                    d.active_conns = 0;
                    d
                })
                .collect();
            ServiceInput::new("vi_1", s.clone(), ds)
        })
        .collect();
    build(&inputs, &Overrides::default(), &AllUp)
}

fn scenario() -> impl Strategy<Value = (Desired, Table, Owned)> {
    (
        entries_strategy(),
        entries_strategy(),
        prop::sample::subsequence(key_pool(), 0..=4),
    )
        .prop_map(|(want, have, owned)| {
            (
                desired_of(&want),
                kernel_of(&have),
                owned.into_iter().collect(),
            )
        })
}

fn is_ours(desired: &Desired, owned: &Owned, key: &ServiceKey) -> bool {
    desired.contains(key) || owned.contains(key)
}

fn op_key(op: &Op) -> Option<ServiceKey> {
    match op {
        Op::AddService(s) | Op::EditService(s) => Some(s.key),
        Op::DelService(k) | Op::AddDest(k, _) | Op::EditDest(k, _) | Op::DelDest(k, _) => Some(*k),
        _ => None,
    }
}

/// `after` holds `desired` for every key we own, foreign entries as in `before`; real servers
/// not desired remain only while `drain` lists them, at weight 0 with active connections.
fn check_result(
    desired: &Desired,
    owned: &Owned,
    before: &Table,
    after: &Table,
    drain: &DrainState,
) -> Result<(), TestCaseError> {
    for e in &before.services {
        if !is_ours(desired, owned, &e.service.key) {
            prop_assert!(
                after.services.contains(e),
                "foreign entry changed: {}",
                e.service.key
            );
        }
    }
    for e in &after.services {
        let key = e.service.key;
        if !is_ours(desired, owned, &key) {
            continue;
        }
        let want = desired.get(&key);
        prop_assert!(want.is_some(), "owned, not desired, still there: {key}");
        let want = want.unwrap();
        prop_assert!(same_service(&want.service, &e.service));
        for d in &e.destinations {
            match want.dests.get(&d.key()) {
                Some(w) => prop_assert!(same_dest(&w.dest, d), "{key} {}", d.key()),
                None => {
                    prop_assert!(drain.since(&key, &d.key()).is_some());
                    prop_assert!(d.weight == 0 && d.active_conns > 0);
                }
            }
        }
        prop_assert_eq!(
            want.dests.len() + drain.iter().filter(|((k, _), _)| *k == key).count(),
            e.destinations.len()
        );
    }
    for key in desired.keys() {
        prop_assert!(
            after.services.iter().any(|e| e.service.key == *key),
            "missing {key}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn applying_the_plan_yields_desired_and_then_nothing_to_do((desired, kernel, owned) in scenario()) {
        let now = Instant::now();
        let p = diff(&desired, &kernel, &owned, &DrainState::default(), now, TIMEOUT);
        for op in &p.ops {
            let key = op_key(op).unwrap();
            prop_assert!(is_ours(&desired, &owned, &key), "{op} names a foreign service");
            // A fresh drain never deletes a real server that still has active connections.
            if let Op::DelDest(k, dk) = op {
                let busy = kernel.services.iter().filter(|e| e.service.key == *k)
                    .flat_map(|e| &e.destinations).any(|d| d.key() == *dk && d.active_conns > 0);
                prop_assert!(!busy, "{op} deletes a busy real server");
            }
        }
        let after = simulate(&kernel, &p.ops);
        prop_assert!(after.is_ok(), "refused: {:?}", after);
        let after = after.unwrap();
        check_result(&desired, &owned, &kernel, &after, &p.drain)?;

        let again = diff(&desired, &after, &owned, &p.drain, now, TIMEOUT);
        prop_assert!(again.is_empty(), "second plan: {:?}", again.ops);
        prop_assert_eq!(&again.drain, &p.drain);

        // Once the drain timeout passes, what drained is deleted and the table is exact.
        let later = now + TIMEOUT;
        let last = diff(&desired, &after, &owned, &p.drain, later, TIMEOUT);
        prop_assert!(last.ops.iter().all(|op| matches!(op, Op::DelDest(..))));
        prop_assert_eq!(last.ops.len(), p.drain.len());
        let exact = simulate(&after, &last.ops).unwrap();
        check_result(&desired, &owned, &kernel, &exact, &DrainState::default())?;
        prop_assert!(diff(&desired, &exact, &owned, &last.drain, later, TIMEOUT).is_empty());
    }

    #[test]
    fn a_blind_withdraw_is_the_plan_for_nothing_desired_when_the_kernel_holds_all_we_own((desired, kernel, owned) in scenario()) {
        // The kernel holds every owned key (and whatever foreign ones the scenario has).
        let mut full = kernel.clone();
        let all: BTreeSet<ServiceKey> = owned.iter().chain(desired.keys()).copied().collect();
        for k in &all {
            if !full.services.iter().any(|e| e.service.key == *k) {
                full.services.push(ServiceEntry {
                    service: Service::new(*k, Scheduler::Rr),
                    destinations: Vec::new(),
                });
            }
        }
        let owned_all: Owned = all.iter().copied().collect();
        let p = diff(&Desired::default(), &full, &owned_all, &DrainState::default(), Instant::now(), TIMEOUT);
        prop_assert_eq!(withdraw(&all), p.ops);
    }

    #[test]
    fn from_an_empty_kernel_the_plan_only_adds((desired, _kernel, owned) in scenario()) {
        let p = diff(&desired, &Table::default(), &owned, &DrainState::default(), Instant::now(), TIMEOUT);
        prop_assert!(p.ops.iter().all(|op| matches!(op, Op::AddService(_) | Op::AddDest(..))));
        let after = simulate(&Table::default(), &p.ops).unwrap();
        check_result(&desired, &owned, &Table::default(), &after, &DrainState::default())?;
    }

    #[test]
    fn what_is_already_there_is_never_deleted_and_re_added((desired, kernel, owned) in scenario()) {
        let p = diff(&desired, &kernel, &owned, &DrainState::default(), Instant::now(), TIMEOUT);
        for op in &p.ops {
            if let Op::AddService(s) = op {
                prop_assert!(!kernel.services.iter().any(|e| e.service.key == s.key));
            }
            if let Op::AddDest(k, d) = op {
                let existing = kernel.services.iter().find(|e| e.service.key == *k);
                prop_assert!(existing.is_none_or(|e| e.destinations.iter().all(|x| x.key() != d.key())));
            }
        }
    }
}
