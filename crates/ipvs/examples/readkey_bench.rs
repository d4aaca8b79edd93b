//! Reading what one owns by key (`Conn::read_services`) against the checked whole-table snapshot
//! (`Conn::snapshot`) and a plain unchecked read, on the table of `apply_bench` (N services x R
//! real servers, the C floor's table).
//!
//! `readkey_bench N R [ROUNDS]` (inside a fresh netns in the lab VM; build with `--release`).
//! Each round times, back to back on one `Conn`: the plain read (a services dump, then each
//! service's real servers), the checked snapshot, `read_services` of every key, and
//! `read_services` of N keys that are not in the table (what a takeover reads when the node
//! holds nothing of its own yet). Prints one line per round, then the best of each.
#![forbid(unsafe_code)]
#![allow(missing_docs)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use ipvs::{Conn, Destination, Forwarding, Op, Protocol, Scheduler, Service, ServiceKey};

fn key(s: u32, third: u8) -> ServiceKey {
    ServiceKey::Inet {
        protocol: Protocol::Tcp,
        addr: IpAddr::V4(Ipv4Addr::new(
            10,
            third,
            (s / 250) as u8,
            (s % 250 + 1) as u8,
        )),
        port: 80,
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let r: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let rounds: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut ops = Vec::with_capacity((n * (r + 1)) as usize);
        let keys: Vec<ServiceKey> = (0..n).map(|s| key(s, 1)).collect();
        let absent: Vec<ServiceKey> = (0..n).map(|s| key(s, 99)).collect();
        for (s, k) in (0..n).zip(&keys) {
            ops.push(Op::AddService(Service::new(*k, Scheduler::Wrr)));
            for d in 1..=r {
                let addr = IpAddr::V4(Ipv4Addr::new(10, 2, (s % 200) as u8, d as u8));
                ops.push(Op::AddDest(*k, Destination::new(addr, 80, Forwarding::DirectRoute)));
            }
        }
        let mut conn = Conn::connect().await?;
        let report = conn.apply(&ops).await?;
        if !report.all_ok() {
            return Err(format!("apply: {} of {} ok", report.ok_count(), ops.len()).into());
        }
        let mut best = [f64::MAX; 4];
        println!("# {n} x {r}, {rounds} rounds; ms: plain snapshot by-key absent-by-key");
        for round in 1..=rounds {
            let t = Instant::now();
            let services = conn.services().await?;
            for s in &services {
                conn.destinations(&s.key).await?;
            }
            let plain = ms(t);
            let t = Instant::now();
            let table = conn.snapshot().await?;
            let snap = ms(t);
            let t = Instant::now();
            let read = conn.read_services(&keys).await?;
            let by_key = ms(t);
            let t = Instant::now();
            let none = conn.read_services(&absent).await?;
            let absent_ms = ms(t);
            let found = read.iter().filter(|(_, s)| s.is_some()).count();
            let dests: usize = read.iter().filter_map(|(_, s)| s.as_ref()).map(|s| s.dests.len()).sum();
            if found != n as usize || table.services.len() != n as usize || dests != (n * r) as usize {
                return Err(format!("read {found} services, {dests} real servers; snapshot {}", table.services.len()).into());
            }
            if none.iter().any(|(_, s)| s.is_some()) {
                return Err("an absent key was found".into());
            }
            println!("round {round}: {plain:.0} {snap:.0} {by_key:.0} {absent_ms:.0}");
            for (b, v) in best.iter_mut().zip([plain, snap, by_key, absent_ms]) {
                *b = b.min(v);
            }
        }
        println!(
            "best of {rounds}: plain {:.0} ms, snapshot {:.0} ms, by key {:.0} ms ({:.2}x the snapshot, {:.2}x plain), {n} absent keys {:.0} ms",
            best[0],
            best[1],
            best[2],
            best[2] / best[1],
            best[2] / best[0],
            best[3]
        );
        Ok(())
    })
}
