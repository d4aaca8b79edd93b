//! Programs N services x R real servers into the current network namespace with one
//! `Conn::apply`, then reads the table twice: a plain read (one services dump, then each
//! service's real servers: what the C floor's `dump` does, decoded) and a checked snapshot
//! (`Conn::snapshot_report`: the same plus the verifying passes of docs/ipvs.md); prints the
//! times, so that the cost of the verification shows in one process. The table matches the C
//! floor's (`../shared/lab/floor/ipvs-floor.c add N R`): `ipvsadm -Sn` of both is identical.
//!
//! `apply_bench N R` (inside a fresh netns in the lab VM; build with `--release`).
#![forbid(unsafe_code)]
#![allow(missing_docs)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use ipvs::{Conn, Destination, Forwarding, Op, Protocol, Scheduler, Service, ServiceKey};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let r: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let t0 = Instant::now();
        let mut ops = Vec::with_capacity((n * (r + 1)) as usize);
        for s in 0..n {
            let key = ServiceKey::Inet {
                protocol: Protocol::Tcp,
                addr: IpAddr::V4(Ipv4Addr::new(10, 1, (s / 250) as u8, (s % 250 + 1) as u8)),
                port: 80,
            };
            ops.push(Op::AddService(Service::new(key, Scheduler::Wrr)));
            for d in 1..=r {
                let addr = IpAddr::V4(Ipv4Addr::new(10, 2, (s % 200) as u8, d as u8));
                ops.push(Op::AddDest(key, Destination::new(addr, 80, Forwarding::DirectRoute)));
            }
        }
        let mut conn = Conn::connect().await?;
        if let Some(w) = std::env::var("IPVS_WINDOW").ok().and_then(|w| w.parse().ok()) {
            conn.set_window(w);
        }
        let report = conn.apply(&ops).await?;
        let t_apply = t0.elapsed();
        let t2 = Instant::now();
        let services = conn.services().await?;
        let mut dests = 0;
        for s in &services {
            dests += conn.destinations(&s.key).await?.len();
        }
        let t_plain = t2.elapsed();
        let t1 = Instant::now();
        let (table, snap) = conn.snapshot_report(8).await?;
        let t_snap = t1.elapsed();
        println!(
            "plain read {} services, {dests} real servers: {:.0} ms",
            services.len(),
            t_plain.as_secs_f64() * 1e3
        );
        println!(
            "apply {} ops: {} ok, {:.0} ms (window {}, rcvbuf {}); snapshot {} services: {:.0} ms ({} dumps, {} tries)",
            ops.len(),
            report.ok_count(),
            t_apply.as_secs_f64() * 1e3,
            conn.window(),
            conn.rcvbuf(),
            table.services.len(),
            t_snap.as_secs_f64() * 1e3,
            snap.dumps,
            snap.tries
        );
        Ok(())
    })
}
