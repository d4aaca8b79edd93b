//! Kernel tests (run inside the lab VM): `Conn::read_services`, services read by key.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;
use ipvs::*;

fn owned_ops(n: u32, r: u32) -> (Vec<ServiceKey>, Vec<Op>) {
    let mut keys = Vec::new();
    let mut ops = Vec::new();
    for s in 0..n {
        let key = tcp(&format!("10.1.{}.{}", s / 250, s % 250 + 1), 80);
        keys.push(key);
        ops.push(Op::AddService(svc(key, Scheduler::Wrr)));
        for d in 1..=r {
            let addr = format!("10.2.{}.{}", (d / 250) % 250, d % 250 + 1);
            ops.push(Op::AddDest(
                key,
                dest(&addr, 80, Forwarding::Masq, (s % 7) as i32),
            ));
        }
    }
    (keys, ops)
}

/// Every present key reads as the snapshot has it (settings and real servers), an absent key as
/// `None`, in the order given; a service with 200 real servers (a multi-datagram dump, verified)
/// and a firewall-mark and an IPv6 service read too.
#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn reads_services_by_key_as_the_snapshot_has_them() {
    with_conn(|mut c| async move {
        let (mut keys, mut ops) = owned_ops(30, 3);
        let big = tcp("10.9.0.1", 443);
        ops.push(Op::AddService(svc(big, Scheduler::Rr)));
        for d in 0..200u32 {
            let a = format!("10.3.{}.{}", d / 250, d % 250 + 1);
            ops.push(Op::AddDest(big, dest(&a, 443, Forwarding::DirectRoute, 2)));
        }
        let fw = ServiceKey::Fwmark {
            af: AddressFamily::Inet,
            mark: 0x1234,
        };
        let mut fws = svc(fw, Scheduler::Sh);
        fws.flags = ServiceFlags::PERSISTENT | ServiceFlags::SCHED1;
        fws.timeout = 300;
        ops.push(Op::AddService(fws));
        ops.push(Op::AddDest(fw, dest("10.4.0.1", 0, Forwarding::Masq, 3)));
        let v6 = tcp("2001:db8::1", 80);
        ops.push(Op::AddService(svc(v6, Scheduler::Wlc)));
        ops.push(Op::AddDest(
            v6,
            dest("2001:db8::2", 8080, Forwarding::Masq, 1),
        ));
        let r = c.apply(&ops).await.unwrap();
        assert!(r.all_ok(), "{:?}", r.failures().next());

        let absent = tcp("10.77.0.1", 80);
        keys.extend([big, fw, absent, v6, keys[0]]);
        let got = c.read_services(&keys).await.unwrap();
        assert_eq!(got.len(), keys.len());
        let snap = settled_snapshot(&mut c).await.into_keyed();
        for ((k, read), want) in got.iter().zip(&keys) {
            assert_eq!(k, want, "order kept");
            match (read, snap.get(k)) {
                (Some(read), Some(s)) => {
                    assert!(read.same_settings(s), "{k}: {read:?} vs {s:?}");
                    assert!(read.service.flags.hashed(), "{k}: as the kernel reports it");
                }
                (None, None) => assert_eq!(*k, absent),
                (r, s) => panic!("{k}: read {r:?}, snapshot {s:?}"),
            }
        }
        assert_eq!(
            got.iter()
                .find(|(k, _)| *k == big)
                .and_then(|(_, s)| s.as_ref())
                .map(|s| s.dests.len()),
            Some(200)
        );
        // Why `read_services` reads each service again after its real servers: the kernel
        // answers a real-server dump of a missing service with an empty list
        // (`ip_vs_genl_dump_dests`: `goto out_err` returns the empty skb), so the dump alone cannot
        // tell a vanished service from one without real servers.
        let probe = c.destinations(&absent).await;
        eprintln!("real-server dump of a missing service: {probe:?}");
        assert!(
            matches!(&probe, Ok(d) if d.is_empty())
                || matches!(&probe, Err(Error::Request { errno, .. }) if *errno == Errno::ESRCH),
            "{probe:?}"
        );
        // Nothing asked, nothing read.
        assert!(c.read_services(&[]).await.unwrap().is_empty());
    });
}

/// While another connection in the same namespace keeps adding and deleting services and real
/// servers that are not ours, every read of ours is exact (a services dump would be torn by the
/// same churn: docs/ipvs.md, "Consistent snapshots").
#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn churn_elsewhere_never_tears_a_read_by_key() {
    with_conn(|mut c| async move {
        let (keys, ops) = owned_ops(300, 2);
        let r = c.apply(&ops).await.unwrap();
        assert!(r.all_ok(), "{:?}", r.failures().next());
        let want = settled_snapshot(&mut c).await.into_keyed();

        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        // Same namespace: a thread inherits its creator's.
        let churn = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut c = Conn::connect().await.unwrap();
                let mut rounds = 0u32;
                while !stop2.load(Ordering::Relaxed) {
                    let k = tcp(&format!("10.50.0.{}", rounds % 200 + 1), 80);
                    let _ = c
                        .apply(&[
                            Op::AddService(svc(k, Scheduler::Rr)),
                            Op::AddDest(k, dest("10.60.0.1", 80, Forwarding::Masq, 1)),
                        ])
                        .await;
                    if rounds % 2 == 1 {
                        let _ = c.apply(&[Op::DelService(k)]).await;
                    }
                    rounds += 1;
                }
                rounds
            })
        });
        for _ in 0..10 {
            let got = c.read_services(&keys).await.unwrap();
            assert_eq!(got.len(), keys.len());
            for (k, read) in &got {
                let read = read.as_ref().unwrap_or_else(|| panic!("{k} missing"));
                let w = want.get(k).unwrap();
                assert!(read.same_settings(w), "{k}: {read:?} vs {w:?}");
            }
        }
        stop.store(true, Ordering::Relaxed);
        let rounds = churn.join().unwrap();
        assert!(rounds > 10, "the churn ran only {rounds} rounds");
    });
}

/// A service deleted while a snapshot reads the table is never listed with an empty set of real
/// servers: the kernel answers the real-server dump of a missing service with an empty list (see
/// above), so the snapshot checks that each service it found empty still exists. Every service
/// here has two real servers from the start and a deletion takes them along, so an empty one
/// would be a state that never existed.
#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn a_service_deleted_during_a_snapshot_is_never_listed_empty() {
    with_conn(|mut c| async move {
        // 60 services: one datagram per services dump, so no verifying pass runs.
        let (keys, ops) = owned_ops(60, 2);
        let r = c.apply(&ops).await.unwrap();
        assert!(r.all_ok(), "{:?}", r.failures().next());
        let deleter = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut c = Conn::connect().await.unwrap();
                for k in keys.iter().rev() {
                    let r = c.apply(&[Op::DelService(*k)]).await.unwrap();
                    assert!(r.all_ok(), "{r:?}");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            })
        });
        let (mut snapshots, mut torn, mut gave_up) = (0, 0, 0);
        while !deleter.is_finished() {
            // Under changes this fast a snapshot may give up (documented): no table, no check.
            let (table, report) = match c.snapshot_report(SNAPSHOT_TRIES).await {
                Err(Error::Inconsistent { .. }) => {
                    gave_up += 1;
                    continue;
                }
                r => r.unwrap(),
            };
            snapshots += 1;
            torn += report.torn.len();
            for e in &table.services {
                assert_eq!(
                    e.destinations.len(),
                    2,
                    "{} listed with {:?} (snapshot {snapshots}, {report:?})",
                    e.service.key,
                    e.destinations
                );
            }
        }
        deleter.join().unwrap();
        eprintln!(
            "{snapshots} snapshots while 60 services were deleted, {torn} reads torn, \
             {gave_up} gave up"
        );
        assert!(snapshots > 3, "only {snapshots} snapshots");
    });
}
