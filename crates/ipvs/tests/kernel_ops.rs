//! Kernel tests (run inside the lab VM): every operation, IPv4, IPv6 and fwmark, every scheduler,
//! flag, forwarding method and tunnel type; `ipvsadm -Sn` / `-Ln` is the oracle.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::Ipv4Addr;

use common::*;
use ipvs::*;

/// Applies `ops` and asserts every one was acknowledged.
async fn ok(c: &mut Conn, ops: &[Op]) {
    let r = c.apply(ops).await.unwrap();
    assert!(r.all_ok(), "{r:#?}");
}

fn has(lines: &[String], want: &str) -> bool {
    lines.iter().any(|l| l == want)
}

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn services_and_destinations_add_edit_delete_v4_v6_fwmark() {
    with_conn(|mut c| async move {
        let v4 = tcp("10.1.0.1", 80);
        let v6 = tcp("2001:db8::1", 443);
        let fw4 = ServiceKey::Fwmark {
            af: AddressFamily::Inet,
            mark: 0x1234,
        };
        let fw6 = ServiceKey::Fwmark {
            af: AddressFamily::Inet6,
            mark: 7,
        };
        let mut s6 = svc(v6, Scheduler::Wrr);
        s6.flags = ServiceFlags::PERSISTENT;
        s6.timeout = 600;
        s6.netmask = Netmask::Inet6(64);
        ok(
            &mut c,
            &[
                Op::AddService(svc(v4, Scheduler::Rr)),
                Op::AddService(s6.clone()),
                Op::AddService(svc(fw4, Scheduler::Wlc)),
                Op::AddService(svc(fw6, Scheduler::Lc)),
                Op::AddDest(v4, dest("10.2.0.1", 8080, Forwarding::Masq, 3)),
                Op::AddDest(v4, dest("10.2.0.2", 8080, Forwarding::DirectRoute, 1)),
                Op::AddDest(v6, dest("2001:db8::2", 443, Forwarding::DirectRoute, 2)),
                Op::AddDest(fw4, dest("10.3.0.1", 0, Forwarding::DirectRoute, 5)),
                Op::AddDest(fw6, dest("2001:db8::3", 0, Forwarding::DirectRoute, 1)),
            ],
        )
        .await;
        let s = save();
        for want in [
            "-A -t 10.1.0.1:80 -s rr",
            "-a -t 10.1.0.1:80 -r 10.2.0.1:8080 -m -w 3",
            "-a -t 10.1.0.1:80 -r 10.2.0.2:8080 -g -w 1",
            "-A -t [2001:db8::1]:443 -s wrr -p 600 -M 64",
            "-a -t [2001:db8::1]:443 -r [2001:db8::2]:443 -g -w 2",
            "-A -f 4660 -s wlc",
            "-a -f 4660 -r 10.3.0.1:0 -g -w 5",
            "-A -f 7 -6 -s lc",
            "-a -f 7 -6 -r [2001:db8::3]:0 -g -w 1",
        ] {
            assert!(has(&s, want), "missing {want:?} in {s:#?}");
        }
        // Read back through our own dumps.
        let services = c.services().await.unwrap();
        assert_eq!(services.len(), 4);
        let got6 = services.iter().find(|x| x.key == v6).unwrap();
        assert_eq!(got6.netmask, Netmask::Inet6(64));
        assert_eq!(got6.timeout, 600);
        assert!(got6.flags.persistent());
        assert_eq!(got6.scheduler, Scheduler::Wrr);
        // Streamed: same services; this kernel sends no attribute we do not know.
        let mut streamed = Vec::new();
        let chunks = c.each_service(|r| streamed.push(r)).await.unwrap();
        assert_eq!(chunks, 1);
        assert_eq!(streamed.len(), 4);
        assert!(streamed.iter().all(|r| r.unknown.is_empty()));
        let d4 = c.destinations(&v4).await.unwrap();
        assert_eq!(d4.len(), 2);
        assert!(d4
            .iter()
            .any(|d| d.weight == 3 && d.forwarding == Forwarding::Masq));

        // Edit: scheduler and persistence of a service, weight of a destination.
        let mut e4 = svc(v4, Scheduler::Sed);
        e4.flags = ServiceFlags::PERSISTENT;
        e4.timeout = 120;
        e4.netmask = Netmask::Inet(Ipv4Addr::new(255, 255, 255, 0));
        ok(
            &mut c,
            &[
                Op::EditService(e4),
                Op::EditDest(v4, dest("10.2.0.1", 8080, Forwarding::Masq, 9)),
            ],
        )
        .await;
        let s = save();
        assert!(
            has(&s, "-A -t 10.1.0.1:80 -s sed -p 120 -M 255.255.255.0"),
            "{s:#?}"
        );
        assert!(
            has(&s, "-a -t 10.1.0.1:80 -r 10.2.0.1:8080 -m -w 9"),
            "{s:#?}"
        );

        // Delete a destination and services.
        let rs = DestKey {
            addr: "10.2.0.2".parse().unwrap(),
            port: 8080,
        };
        ok(
            &mut c,
            &[Op::DelDest(v4, rs), Op::DelService(v6), Op::DelService(fw6)],
        )
        .await;
        let s = save();
        assert!(!s.iter().any(|l| l.contains("10.2.0.2")), "{s:#?}");
        assert!(!s.iter().any(|l| l.contains("2001:db8")), "{s:#?}");
        assert!(has(&s, "-A -f 4660 -s wlc"), "{s:#?}");
        assert_eq!(c.services().await.unwrap().len(), 2);
    });
}

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn every_scheduler() {
    with_conn(|mut c| async move {
        for (i, s) in Scheduler::KNOWN.iter().enumerate() {
            let key = tcp("10.9.0.1", 1000 + i as u16);
            let r = c
                .apply(&[Op::AddService(svc(key, s.clone()))])
                .await
                .unwrap();
            let available = has_module(&format!("ip_vs_{s}"));
            if available {
                assert!(r.all_ok(), "{s}: {r:#?}");
                assert!(
                    has(&save(), &format!("-A -t 10.9.0.1:{} -s {s}", 1000 + i)),
                    "{s}"
                );
            } else {
                // `twos` is not in every kernel (6.2+): a clean, named error.
                let (_, e) = r.failures().next().unwrap_or_else(|| panic!("{s}: {r:#?}"));
                assert_eq!(e.errno, Errno(2), "{e}");
                assert_eq!(
                    e.to_string(),
                    format!(
                        "add service TCP 10.9.0.1:{}: scheduler or persistence engine not found (ENOENT)",
                        1000 + i
                    )
                );
            }
        }
        let r = c
            .apply(&[Op::AddService(svc(
                tcp("10.9.0.2", 1),
                Scheduler::Other("nosuch".into()),
            ))])
            .await
            .unwrap();
        assert_eq!(r.failures().next().unwrap().1.errno, Errno(2));
    });
}

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn flags_persistence_netmask_and_pe() {
    with_conn(|mut c| async move {
        let sh = tcp("10.1.0.1", 80);
        let mh = tcp("10.1.0.2", 80);
        let udp = ServiceKey::Inet {
            protocol: Protocol::Udp,
            addr: "10.1.0.3".parse().unwrap(),
            port: 53,
        };
        let sip = ServiceKey::Inet {
            protocol: Protocol::Udp,
            addr: "10.1.0.4".parse().unwrap(),
            port: 5060,
        };
        let sctp = ServiceKey::Inet {
            protocol: Protocol::Sctp,
            addr: "10.1.0.5".parse().unwrap(),
            port: 9,
        };
        let mut s1 = svc(sh, Scheduler::Sh);
        s1.flags = ServiceFlags::SCHED1 | ServiceFlags::SCHED2;
        let mut s2 = svc(mh, Scheduler::Mh);
        s2.flags = ServiceFlags::SCHED1 | ServiceFlags::SCHED2;
        let mut s3 = svc(udp, Scheduler::Rr);
        s3.flags = ServiceFlags::ONEPACKET;
        let mut s4 = svc(sip, Scheduler::Rr);
        s4.flags = ServiceFlags::PERSISTENT;
        s4.timeout = 60;
        s4.netmask = Netmask::Inet(Ipv4Addr::new(255, 255, 0, 0));
        s4.pe_name = Some("sip".into());
        ok(
            &mut c,
            &[
                Op::AddService(s1),
                Op::AddService(s2),
                Op::AddService(s3),
                Op::AddService(s4.clone()),
                Op::AddService(svc(sctp, Scheduler::Wlc)),
            ],
        )
        .await;
        let s = save();
        for want in [
            "-A -t 10.1.0.1:80 -s sh -b sh-fallback,sh-port",
            "-A -t 10.1.0.2:80 -s mh -b mh-fallback,mh-port",
            "-A -u 10.1.0.3:53 -s rr -o",
            "-A -u 10.1.0.4:5060 -s rr -p 60 -M 255.255.0.0 --pe sip",
            "-A --sctp-service 10.1.0.5:9 -s wlc",
        ] {
            assert!(has(&s, want), "missing {want:?} in {s:#?}");
        }
        let back = c.services().await.unwrap();
        let got = back.iter().find(|x| x.key == sip).unwrap();
        assert_eq!(got.pe_name.as_deref(), Some("sip"));
        assert_eq!(got.netmask, s4.netmask);
        // Clearing a flag with the mask: edit sh to no flags.
        ok(&mut c, &[Op::EditService(svc(sh, Scheduler::Sh))]).await;
        assert!(has(&save(), "-A -t 10.1.0.1:80 -s sh"));
    });
}

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn forwarding_methods_tunnels_and_thresholds() {
    with_conn(|mut c| async move {
        let k = tcp("10.1.0.1", 80);
        let fw = ServiceKey::Fwmark {
            af: AddressFamily::Inet,
            mark: 9,
        };
        let tun = |addr: &str, kind, port, flags| {
            let mut d = dest(addr, 0, Forwarding::Tunnel, 1);
            d.tunnel = Tunnel { kind, port, flags };
            d
        };
        let mut thr = dest("10.2.0.9", 80, Forwarding::Masq, 4);
        thr.upper_threshold = 100;
        thr.lower_threshold = 10;
        ok(
            &mut c,
            &[
                Op::AddService(svc(k, Scheduler::Wlc)),
                Op::AddService(svc(fw, Scheduler::Rr)),
                Op::AddDest(k, dest("10.2.0.1", 80, Forwarding::Masq, 1)),
                Op::AddDest(k, dest("10.2.0.2", 80, Forwarding::DirectRoute, 1)),
                Op::AddDest(k, dest("10.2.0.3", 80, Forwarding::Tunnel, 1)),
                Op::AddDest(k, thr),
                Op::AddDest(
                    fw,
                    tun("10.3.0.1", TunnelType::Ipip, 0, TunnelFlags::empty()),
                ),
                Op::AddDest(
                    fw,
                    tun("10.3.0.2", TunnelType::Gue, 8080, TunnelFlags::CSUM),
                ),
                Op::AddDest(
                    fw,
                    tun("10.3.0.3", TunnelType::Gue, 6080, TunnelFlags::REMCSUM),
                ),
                Op::AddDest(fw, tun("10.3.0.4", TunnelType::Gre, 0, TunnelFlags::CSUM)),
                // Mixed family: an IPv6 real server behind an IPv4 service, tunnelled.
                Op::AddDest(
                    fw,
                    tun("2001:db8::9", TunnelType::Ipip, 0, TunnelFlags::empty()),
                ),
            ],
        )
        .await;
        let s = save();
        for want in [
            "-a -t 10.1.0.1:80 -r 10.2.0.1:80 -m -w 1",
            "-a -t 10.1.0.1:80 -r 10.2.0.2:80 -g -w 1",
            "-a -t 10.1.0.1:80 -r 10.2.0.3:80 -i -w 1 --tun-type ipip",
            "-a -f 9 -r 10.3.0.1:0 -i -w 1 --tun-type ipip",
            "-a -f 9 -r 10.3.0.2:0 -i -w 1 --tun-type gue --tun-port 8080 --tun-csum",
            "-a -f 9 -r 10.3.0.3:0 -i -w 1 --tun-type gue --tun-port 6080 --tun-remcsum",
            "-a -f 9 -r 10.3.0.4:0 -i -w 1 --tun-type gre --tun-csum",
            "-a -f 9 -r [2001:db8::9]:0 -i -w 1 --tun-type ipip",
        ] {
            assert!(has(&s, want), "missing {want:?} in {s:#?}");
        }
        // ipvsadm prints the GUE port it read from the kernel: byte order proven both ways.
        let l = ipvsadm(&["-Ln", "--tun-info"]);
        assert!(l.contains("8080"), "{l}");
        let t = ipvsadm(&["-Ln", "--thresholds"]);
        let row = t.lines().find(|l| l.contains("10.2.0.9:80")).unwrap();
        let cols: Vec<_> = row.split_whitespace().collect();
        assert!(cols.contains(&"100") && cols.contains(&"10"), "{row}");

        let back = c.destinations(&fw).await.unwrap();
        let gue = back.iter().find(|d| d.tunnel.port == 8080).unwrap();
        assert_eq!(gue.tunnel.kind, TunnelType::Gue);
        assert!(gue.tunnel.flags.csum());
        let v6 = back.iter().find(|d| d.addr.is_ipv6()).unwrap();
        assert_eq!(v6.af(), AddressFamily::Inet6);
        let back = c.destinations(&k).await.unwrap();
        let t = back.iter().find(|d| d.upper_threshold == 100).unwrap();
        assert_eq!(t.lower_threshold, 10);

        // Local node forwarding is accepted and reported as such.
        ok(
            &mut c,
            &[Op::AddDest(k, dest("127.0.0.1", 80, Forwarding::Local, 1))],
        )
        .await;
        let back = c.destinations(&k).await.unwrap();
        let local = back.iter().find(|d| d.addr.is_loopback()).unwrap();
        assert_eq!(local.forwarding, Forwarding::Local);
        // Bypass is accepted and reported as such.
        ok(
            &mut c,
            &[Op::AddDest(k, dest("10.2.0.8", 80, Forwarding::Bypass, 1))],
        )
        .await;
        let back = c.destinations(&k).await.unwrap();
        assert!(back.iter().any(|d| d.forwarding == Forwarding::Bypass));
    });
}

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn zero_flush_and_sync_daemons() {
    with_conn(|mut c| async move {
        let k = tcp("10.1.0.1", 80);
        ok(
            &mut c,
            &[
                Op::AddService(svc(k, Scheduler::Rr)),
                Op::Zero(Some(k)),
                Op::Zero(None),
            ],
        )
        .await;
        let r = c
            .apply(&[Op::Zero(Some(tcp("10.1.0.9", 80)))])
            .await
            .unwrap();
        let (_, e) = r.failures().next().unwrap();
        assert_eq!(e.meaning(), "no such service");

        ok(&mut c, &[Op::Flush]).await;
        assert!(c.services().await.unwrap().is_empty());
        assert!(save().is_empty());

        assert!(c.daemons().await.unwrap().is_empty());
        let mut m = SyncDaemon::new(DaemonState::Master, "lo", 5);
        m.mcast_port = Some(8850);
        m.mcast_ttl = Some(2);
        ok(&mut c, &[Op::StartDaemon(m)]).await;
        let list = c.daemons().await.unwrap();
        assert_eq!(list.len(), 1, "{list:?}");
        assert_eq!(list[0].state, DaemonState::Master);
        assert_eq!(list[0].mcast_ifn, "lo");
        assert_eq!(list[0].syncid, 5);
        assert_eq!(list[0].mcast_port, Some(8850));
        assert_eq!(list[0].mcast_ttl, Some(2));
        let text = ipvsadm(&["-L", "--daemon"]);
        assert!(
            text.contains("master sync daemon (mcast=lo, syncid=5"),
            "{text}"
        );
        assert!(text.contains("port=8850"), "{text}");
        // A second master: EEXIST, named.
        let r = c
            .apply(&[Op::StartDaemon(SyncDaemon::new(
                DaemonState::Master,
                "lo",
                6,
            ))])
            .await
            .unwrap();
        assert_eq!(r.failures().next().unwrap().1.errno, Errno(17));
        // A backup next to the master.
        ok(
            &mut c,
            &[Op::StartDaemon(SyncDaemon::new(
                DaemonState::Backup,
                "lo",
                5,
            ))],
        )
        .await;
        let list = c.daemons().await.unwrap();
        assert_eq!(list.len(), 2, "{list:?}");
        assert!(list.iter().any(|d| d.state == DaemonState::Backup));
        // A stop may go unacknowledged when the daemon's thread has not run yet (see
        // `an_unanswered_request_is_unknown_and_the_batch_goes_on`): Ok or Unknown, never Failed.
        let r = c
            .apply(&[
                Op::StopDaemon(DaemonState::Master),
                Op::StopDaemon(DaemonState::Backup),
            ])
            .await
            .unwrap();
        assert_eq!(r.failures().count(), 0, "{r:?}");
        assert!(c.daemons().await.unwrap().is_empty());
    });
}

/// The kernel does not acknowledge every request: stopping a sync daemon whose thread has not
/// run yet makes `kthread_stop` return EINTR, and `netlink_rcv_skb` sends no ack for EINTR. A
/// start and a stop in one batch provoke it. The batch must neither hang nor report that op Ok
/// without an ack, and the operations after it must still be applied and acknowledged.
#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn an_unanswered_request_is_unknown_and_the_batch_goes_on() {
    with_conn(|mut c| async move {
        let mut unknown = 0;
        for i in 0..5u16 {
            let r = c
                .apply(&[
                    Op::StartDaemon(SyncDaemon::new(DaemonState::Backup, "lo", 9)),
                    Op::StopDaemon(DaemonState::Backup),
                    Op::AddService(svc(tcp("10.1.0.1", 100 + i), Scheduler::Rr)),
                ])
                .await
                .unwrap();
            assert_eq!(r.outcomes[0], Outcome::Ok, "{r:?}");
            assert!(
                matches!(r.outcomes[1], Outcome::Ok | Outcome::Unknown),
                "{r:?}"
            );
            unknown += usize::from(r.outcomes[1] == Outcome::Unknown);
            assert_eq!(r.outcomes[2], Outcome::Ok, "{r:?}");
            assert!(c.daemons().await.unwrap().is_empty());
        }
        eprintln!("stop without an ack: {unknown} of 5");
        assert_eq!(c.services().await.unwrap().len(), 5);
    });
}
