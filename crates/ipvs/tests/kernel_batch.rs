//! Kernel tests (run inside the lab VM): pipelined batches. A partial failure is reported per
//! operation; a batch of thousands loses no ack; when acks are lost anyway (ENOBUFS) the report
//! says Unknown, never Ok for something that did not apply.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::*;
use ipvs::*;

fn rs(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a64_0000 + i))
}

/// `services` services with `per` real servers each: adds, in an order that is valid.
fn table_ops(services: u32, per: u32) -> Vec<Op> {
    let mut ops = Vec::new();
    for s in 0..services {
        let key = tcp("10.1.0.1", 1000 + s as u16);
        ops.push(Op::AddService(svc(key, Scheduler::Wrr)));
        for r in 0..per {
            let mut d = Destination::new(rs(s * per + r), 80, Forwarding::DirectRoute);
            d.weight = (r + 1) as i32;
            ops.push(Op::AddDest(key, d));
        }
    }
    ops
}

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn partial_failure_report_is_precise() {
    with_conn(|mut c| async move {
        let a = tcp("10.1.0.1", 80);
        let missing = tcp("10.1.0.9", 80);
        let ops = vec![
            Op::AddService(svc(a, Scheduler::Rr)),
            Op::AddService(svc(a, Scheduler::Rr)),
            Op::AddDest(missing, dest("10.2.0.1", 80, Forwarding::Masq, 1)),
            Op::DelDest(
                a,
                DestKey {
                    addr: "10.2.0.7".parse().unwrap(),
                    port: 80,
                },
            ),
            Op::AddDest(a, dest("10.2.0.1", 80, Forwarding::Masq, -1)),
            Op::AddDest(a, dest("10.2.0.1", 80, Forwarding::Masq, 1)),
            Op::DelService(missing),
        ];
        let r = c.apply(&ops).await.unwrap();
        assert_eq!(r.interrupted, None);
        assert_eq!(r.outcomes[0], Outcome::Ok);
        assert_eq!(r.outcomes[5], Outcome::Ok);
        let msgs: Vec<(usize, String)> = r.failures().map(|(i, e)| (i, e.to_string())).collect();
        assert_eq!(
            msgs,
            vec![
                (1, "add service TCP 10.1.0.1:80: already exists (EEXIST)".to_string()),
                (
                    2,
                    "add real server 10.2.0.1:80 to TCP 10.1.0.9:80: no such service (ESRCH)"
                        .to_string()
                ),
                (
                    3,
                    "delete real server 10.2.0.7:80 from TCP 10.1.0.1:80: no such destination (ENOENT)"
                        .to_string()
                ),
                (
                    4,
                    "add real server 10.2.0.1:80 to TCP 10.1.0.1:80: out of range (a negative weight, or lower threshold above upper) (ERANGE)"
                        .to_string()
                ),
                (6, "delete service TCP 10.1.0.9:80: no such service (ESRCH)".to_string()),
            ]
        );
        // The table holds exactly what the Ok operations made.
        assert_eq!(
            save(),
            vec![
                "-A -t 10.1.0.1:80 -s rr".to_string(),
                "-a -t 10.1.0.1:80 -r 10.2.0.1:80 -m -w 1".to_string(),
            ]
        );
    });
}

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn big_batch_loses_no_ack() {
    with_conn(|mut c| async move {
        let ops = table_ops(600, 10); // 6,600 operations in one batch
        let r = c.apply(&ops).await.unwrap();
        assert_eq!(r.interrupted, None);
        assert_eq!(r.ok_count(), ops.len(), "{:?}", r.failures().next());
        let table = c.snapshot().await.unwrap();
        assert_eq!(table.services.len(), 600);
        assert!(table.services.iter().all(|e| e.destinations.len() == 10));
        assert_eq!(save().len(), 6600);
        // Delete everything again in one batch, destinations first.
        let dels: Vec<Op> = ops
            .iter()
            .rev()
            .map(|op| match op {
                Op::AddService(s) => Op::DelService(s.key),
                Op::AddDest(k, d) => Op::DelDest(*k, d.key()),
                other => other.clone(),
            })
            .collect();
        let r = c.apply(&dels).await.unwrap();
        assert!(r.all_ok(), "{:?}", r.failures().next());
        assert!(save().is_empty());
    });
}

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn lost_acks_are_unknown_never_ok() {
    // A small receive buffer and a window far beyond it: the kernel drops acks (ENOBUFS).
    let ns = testns::Netns::new("ipvs").unwrap();
    ns.run(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut c = Conn::connect_with_rcvbuf(4096).await.unwrap();
            c.set_window(100_000);
            let ops = table_ops(1, 3000);
            let r = c.apply(&ops).await.unwrap();
            assert!(r.interrupted.is_some(), "expected lost acks: {r:?}");
            assert!(r.unknown_count() > 0);
            assert_eq!(r.failures().count(), 0);
            // Every operation reported Ok really applied; Unknown ones may or may not have.
            let mut big = Conn::connect().await.unwrap();
            let table = big.snapshot().await.unwrap();
            let present: std::collections::HashSet<_> = table
                .services
                .iter()
                .flat_map(|e| e.destinations.iter().map(|d| d.key()))
                .collect();
            for (op, o) in ops.iter().zip(&r.outcomes) {
                if let (Op::AddDest(_, d), Outcome::Ok) = (op, o) {
                    assert!(present.contains(&d.key()), "{op} reported Ok but absent");
                }
            }
            assert_eq!(
                r.ok_count() + r.unknown_count() + r.not_sent_count(),
                ops.len()
            );
        });
    })
    .unwrap();
}
