//! Kernel tests (run inside the lab VM): batches. A partial failure is reported per operation;
//! a batch of thousands applies whole and says so; when error replies are lost anyway (ENOBUFS)
//! the report says Unknown, never Ok for something that did not apply.
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
        let table = settled_snapshot(&mut c).await;
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
fn lost_replies_are_unknown_never_ok() {
    // Success is silent, so only errors can be lost: 3,000 refused operations (EEXIST)
    // interleaved with 3,000 that apply, a small receive buffer and a window far beyond it:
    // the kernel drops error replies (ENOBUFS). No refused operation may be reported Ok.
    let ns = testns::Netns::new("ipvs").unwrap();
    ns.run(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut big = Conn::connect().await.unwrap();
            let first = table_ops(1, 3000);
            let r = big.apply(&first).await.unwrap();
            assert!(r.all_ok(), "{:?}", r.failures().next());
            let key = tcp("10.1.0.1", 1000);
            let mut ops = Vec::new();
            for i in 0..3000 {
                let again = Destination::new(rs(i), 80, Forwarding::DirectRoute);
                let new = Destination::new(rs(3000 + i), 80, Forwarding::DirectRoute);
                ops.push(Op::AddDest(key, again)); // even: EEXIST
                ops.push(Op::AddDest(key, new)); // odd: applies
            }
            let mut c = Conn::connect_with_rcvbuf(4096).await.unwrap();
            c.set_window(100_000);
            let r = c.apply(&ops).await.unwrap();
            assert!(r.interrupted.is_some(), "expected lost replies: {r:?}");
            assert!(r.unknown_count() > 0);
            let table = settled_snapshot(&mut big).await;
            let present: std::collections::HashSet<_> = table
                .services
                .iter()
                .flat_map(|e| e.destinations.iter().map(|d| d.key()))
                .collect();
            for (i, (op, o)) in ops.iter().zip(&r.outcomes).enumerate() {
                match o {
                    Outcome::Ok => {
                        assert!(i % 2 == 1, "{op}: refused by the kernel, reported Ok");
                        if let Op::AddDest(_, d) = op {
                            assert!(present.contains(&d.key()), "{op} reported Ok but absent");
                        }
                    }
                    Outcome::Failed(e) => {
                        assert!(i % 2 == 0, "{op}: applied, reported {e}");
                        assert_eq!(e.errno, Errno::EEXIST, "{op}");
                    }
                    Outcome::Unknown | Outcome::NotSent => {}
                    other => panic!("{op}: {other:?}"),
                }
            }
            assert_eq!(
                r.ok_count() + r.failures().count() + r.unknown_count() + r.not_sent_count(),
                ops.len()
            );
        });
    })
    .unwrap();
}
