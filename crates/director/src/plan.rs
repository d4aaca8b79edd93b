//! `director plan -c FILE`: the exact IPVS operations that applying FILE would make on this node
//! now, as Master of every instance, without making them. Printed one per line in `ipvsadm -R`
//! notation (`ipvs::ipvsadm::rule`), so the plan can be read as ipvsadm would spell it, or fed
//! to `director ipvs restore` / `ipvsadm -R`; a summary goes to stderr.
//!
//! It reads exactly what the daemon reads (the configured services, by key) and runs the same
//! pure code (`desired::build`, `reconcile::diff`) with every real server counted up (health
//! checks are the daemon's) and the operator drains of `--state-dir`. Foreign services are never
//! read or named. Exit codes: 0 the plan was printed (empty when the kernel already matches),
//! 64 the file is invalid, 1 the kernel could not be read.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use ipvs::{Op, ServiceEntry, Table};

use crate::cli::EXIT_CONFIG;
use crate::config;
use crate::daemon::drains::Drains;
use crate::desired::{self, AllUp, Overrides, ServiceInput};
use crate::reconcile::{self, DrainState, Owned};

/// Runs `director plan`.
pub fn main(path: &Path, state_dir: &Path) -> ExitCode {
    let cfg = match config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let mut overrides = Overrides::default();
    match Drains::load(state_dir) {
        Ok(d) => {
            for (s, r) in d.iter() {
                overrides.drain(*s, *r);
            }
        }
        Err(e) => {
            eprintln!("director plan: {e}");
            return ExitCode::FAILURE;
        }
    }
    match plan(&cfg, &overrides) {
        Ok(ops) => {
            let mut out = String::new();
            for op in &ops {
                match ipvs::ipvsadm::rule(op) {
                    Some(line) => out.push_str(&line),
                    None => {
                        out.push_str("# ");
                        out.push_str(&op.to_string());
                    }
                }
                out.push('\n');
            }
            print!("{out}");
            eprintln!("{}", summary(&ops, cfg.virtual_services.len()));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("director plan: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The operations, against the kernel as it is now.
fn plan(cfg: &config::Config, overrides: &Overrides) -> anyhow::Result<Vec<Op>> {
    let inputs: Vec<ServiceInput> = cfg.virtual_services.iter().map(ServiceInput::of).collect();
    let want = desired::build(&inputs, overrides, &AllUp);
    let keys: Vec<_> = want.keys().copied().collect();
    let t = cfg.ipvs.timeouts;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (read, timeouts) = rt.block_on(async {
        let mut conn = ipvs::Conn::connect().await?;
        let read = conn.read_services(&keys).await?;
        let timeouts = if t.tcp != 0 || t.tcp_fin != 0 || t.udp != 0 {
            Some(conn.timeouts().await?)
        } else {
            None
        };
        Ok::<_, ipvs::Error>((read, timeouts))
    })?;
    let kernel = Table {
        services: read
            .into_iter()
            .filter_map(|(_, s)| s)
            .map(|ks| ServiceEntry {
                destinations: ks.dests.values().cloned().collect(),
                service: ks.service,
            })
            .collect(),
    };
    let owned: Owned = keys.into_iter().collect();
    let mut ops = reconcile::diff(
        &want,
        &kernel,
        &owned,
        &DrainState::default(),
        Instant::now(),
        cfg.ipvs.drain_timeout,
    )
    .ops;
    if let Some(have) = timeouts {
        let keep = |want: u32, have: u32| if want == 0 { have } else { want };
        let next = ipvs::Timeouts {
            tcp: keep(t.tcp, have.tcp),
            tcp_fin: keep(t.tcp_fin, have.tcp_fin),
            udp: keep(t.udp, have.udp),
        };
        if next != have {
            ops.push(Op::SetTimeouts(t));
        }
    }
    Ok(ops)
}

/// `plan: 12 operations (2 service adds, ...) for 3 configured services`.
fn summary(ops: &[Op], services: usize) -> String {
    if ops.is_empty() {
        return format!("plan: no change ({services} configured services match the kernel)");
    }
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for op in ops {
        let what = match op {
            Op::AddService(_) => "service adds",
            Op::EditService(_) => "service edits",
            Op::DelService(_) => "service deletes",
            Op::AddDest(..) => "real-server adds",
            Op::EditDest(..) => "real-server edits",
            Op::DelDest(..) => "real-server deletes",
            _ => "other",
        };
        match counts.iter_mut().find(|(w, _)| *w == what) {
            Some((_, n)) => *n += 1,
            None => counts.push((what, 1)),
        }
    }
    let parts: Vec<String> = counts.iter().map(|(w, n)| format!("{n} {w}")).collect();
    format!(
        "plan: {} operation{} ({}) for {services} configured services",
        ops.len(),
        if ops.len() == 1 { "" } else { "s" },
        parts.join(", ")
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use ipvs::{Destination, Forwarding, Protocol, Scheduler, Service, ServiceKey};

    use super::*;

    #[test]
    fn the_summary_counts_by_kind() {
        let k = ServiceKey::Inet {
            protocol: Protocol::Tcp,
            addr: "10.0.0.1".parse().unwrap(),
            port: 80,
        };
        let d = Destination::new("10.0.0.11".parse().unwrap(), 80, Forwarding::DirectRoute);
        let ops = vec![
            Op::AddService(Service::new(k, Scheduler::Wlc)),
            Op::AddDest(k, d.clone()),
            Op::AddDest(k, d),
        ];
        assert_eq!(
            summary(&ops, 1),
            "plan: 3 operations (1 service adds, 2 real-server adds) for 1 configured services"
        );
        assert_eq!(
            summary(&[], 4),
            "plan: no change (4 configured services match the kernel)"
        );
    }
}
