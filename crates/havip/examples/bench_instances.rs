//! Load generator for `benches/havip/run.sh`: runs N VRRP instances (VRIDs 1..=N) on one
//! interface in this process, lets them settle, then measures over a window the process' CPU time
//! (`CLOCK_PROCESS_CPUTIME_ID`) and the instances' status counters (adverts sent and
//! received, drops by reason). Prints one line of `key=value` pairs.
//!
//! Usage: `bench_instances IFACE N PRIORITY INTERVAL_CS SETTLE_S WINDOW_S`
//! (run inside the namespace that owns IFACE, as root). VIP of VRID v: 10.99.v.1/32.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use havip::config::{InstanceConfig, Vip};
use havip::runner::{self, Counters, InstanceHandle};
use havip::time::Centisecs;

/// CPU time (user + system, every thread) of this process so far, in microseconds
/// (`CLOCK_PROCESS_CPUTIME_ID`).
fn cpu_us() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID) {
        Ok(t) => t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1_000,
        Err(_) => 0,
    }
}

/// Summed counters of every instance: (adverts sent, adverts received, drops by label).
fn totals(hs: &[InstanceHandle]) -> (u64, u64, BTreeMap<&'static str, u64>) {
    let (mut tx, mut rx, mut drops) = (0, 0, BTreeMap::new());
    for h in hs {
        let c: Counters = h.status().borrow().counters.clone();
        tx += c.adverts_tx;
        rx += c.adverts_rx;
        for (k, v) in c.drops {
            *drops.entry(k).or_insert(0) += v;
        }
    }
    (tx, rx, drops)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize| args.get(i).and_then(|s| s.parse::<u64>().ok());
    let (Some(iface), Some(n), Some(prio), Some(iv), Some(settle), Some(window)) =
        (args.first(), num(1), num(2), num(3), num(4), num(5))
    else {
        eprintln!("usage: bench_instances IFACE N PRIORITY INTERVAL_CS SETTLE_S WINDOW_S");
        return ExitCode::from(2);
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let mut hs = Vec::new();
        for v in 1..=n.min(255) as u8 {
            let mut c = InstanceConfig::new(
                &format!("v{v}"),
                iface,
                v,
                prio.min(254) as u8,
                vec![Vip {
                    addr: std::net::IpAddr::from([10, 99, v, 1]),
                    prefix_len: 32,
                }],
            );
            c.advert_interval = Centisecs(iv as u32);
            match runner::start(c).await {
                Ok(h) => hs.push(h),
                Err(e) => {
                    eprintln!("start v{v}: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(settle)).await;
        let (tx0, rx0, d0) = totals(&hs);
        let c0 = cpu_us();
        tokio::time::sleep(Duration::from_secs(window)).await;
        let c1 = cpu_us();
        let (tx1, rx1, d1) = totals(&hs);
        let drops: BTreeMap<_, _> = d1
            .iter()
            .map(|(k, v)| (*k, v - d0.get(k).copied().unwrap_or(0)))
            .filter(|(_, v)| *v > 0)
            .collect();
        let adverts = (tx1 - tx0) + (rx1 - rx0);
        let cpu = c1 - c0;
        let per = if adverts > 0 {
            cpu as f64 / adverts as f64
        } else {
            0.0
        };
        println!(
            "instances={n} window_s={window} cpu_ms={:.1} adverts_tx={} adverts_rx={} \
             cpu_us_per_advert={per:.1} drops={} drops_by_reason={drops:?}",
            cpu as f64 / 1000.0,
            tx1 - tx0,
            rx1 - rx0,
            drops.values().sum::<u64>(),
        );
        for h in hs {
            h.shutdown().await;
        }
        ExitCode::SUCCESS
    })
}
