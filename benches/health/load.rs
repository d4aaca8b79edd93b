//! Load of the health registry: S services x R real servers spread over B backend addresses,
//! one TCP check each at interval I, run for T seconds on the daemon's runtime shape (tokio,
//! 2 worker threads). Reports the probes the registry started per second (asked: B / I, since
//! services share a backend's probe), the connects that succeeded, the process's CPU per probe
//! and its peak RSS. Run inside a namespace with `acceptor 80` listening (benches/health/run.sh).
//!
//! usage: load FIRST_ADDR BACKENDS SERVICES REALS_PER_SERVICE INTERVAL_MS SECONDS
//! (environment: HEALTH_WORKERS=N for N worker threads instead of 2, 0 for a current-thread
//! runtime)
//! e.g.   load 127.0.1.1 100 1000 10 1000 20

#![allow(missing_docs)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use health::{CheckKind, CheckSpec, Registry, State};

/// CPU time of this process (all threads, user + system), in seconds: CLOCK_PROCESS_CPUTIME_ID,
/// the scheduler's precise runtime (the 10 ms ticks of /proc/self/stat could not resolve 100
/// probes per second).
fn cpu_seconds() -> f64 {
    use nix::time::{clock_gettime, ClockId};
    clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .map(|t| t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
        .unwrap_or(0.0)
}

/// Peak resident set size in KiB (VmHWM).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> T {
    args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` passes `--bench`: use the defaults then.
    let args: Vec<String> = args.into_iter().filter(|a| !a.starts_with("--")).collect();
    let first: Ipv4Addr = arg(&args, 1, Ipv4Addr::new(127, 0, 1, 1));
    let backends: u32 = arg(&args, 2, 100);
    let services: u32 = arg(&args, 3, 1000);
    let reals: u32 = arg(&args, 4, 10);
    let interval = Duration::from_millis(arg(&args, 5, 1000));
    let secs: u64 = arg(&args, 6, 10);
    // HEALTH_WORKERS=N: another runtime shape (0: current-thread), to see what the runtime's
    // cross-worker wake-ups cost.
    let workers: usize = std::env::var("HEALTH_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(2);
    let mut builder = if workers == 0 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            std::process::exit(1);
        }
    };
    rt.block_on(async move {
        let Ok(reg) = Registry::new() else { return };
        let mut spec = CheckSpec::new(CheckKind::Tcp);
        spec.interval = interval;
        spec.timeout = Duration::from_millis(500).min(interval);
        let base = u32::from(first);
        let mut rxs = Vec::with_capacity((services * reals) as usize);
        for s in 0..services {
            for r in 0..reals {
                // Service s uses backends s*R .. s*R+R-1 (mod B): each backend serves
                // S*R/B services.
                let b = (s * reals + r) % backends;
                let target = SocketAddr::from((Ipv4Addr::from(base + b), 80));
                rxs.push(reg.subscribe(target, spec.clone()));
            }
        }
        // One interval to spread the first runs, then measure.
        tokio::time::sleep(interval * 2).await;
        let (runs0, cpu0, t0) = (reg.stats().runs, cpu_seconds(), Instant::now());
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let (runs1, cpu1, el) = (reg.stats().runs, cpu_seconds(), t0.elapsed().as_secs_f64());
        let runs = runs1 - runs0;
        let up = rxs.iter().filter(|r| r.borrow().state == State::Up).count();
        let asked = f64::from(backends) / interval.as_secs_f64();
        let cpu = cpu1 - cpu0;
        println!(
            "subscriptions {} over {} backends ({} probes), interval {:?}: probes {} in {:.2} s = \
             {:.0}/s (asked {:.0}/s, keepalived-style per pair: {:.0}/s); cpu {:.2} s = {:.1} us per \
             probe; subscriptions up {}; peak rss {} KiB",
            rxs.len(),
            backends,
            reg.stats().probes,
            interval,
            runs,
            el,
            runs as f64 / el,
            asked,
            f64::from(services * reals) / interval.as_secs_f64(),
            cpu,
            if runs > 0 { cpu * 1e6 / runs as f64 } else { 0.0 },
            up,
            peak_rss_kib(),
        );
    });
}
