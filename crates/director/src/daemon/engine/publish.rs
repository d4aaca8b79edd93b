//! The typed state the status socket reads, published after every engine step.

use super::Engine;
use crate::config::VirtualService;
use crate::state::{InstanceIpvs, IpvsState, Ownership, RealServerState, ServiceState};

impl Engine {
    /// Publishes the typed state the status socket reads.
    pub(super) fn publish(&self) {
        let mut instances = Vec::new();
        for inst in &self.cfg.instances {
            let Some(gate) = self.gates.get(&inst.name) else {
                continue;
            };
            let mine: Vec<&VirtualService> = self
                .cfg
                .virtual_services
                .iter()
                .filter(|s| s.instance == inst.name)
                .collect();
            if mine.is_empty() && self.cfg.ipvs.sync_daemon.is_none() {
                continue;
            }
            use crate::gate::State as G;
            let programming = match gate.state() {
                G::Undecided => Ownership::Waiting,
                G::Programming { .. } | G::RetryProgram { .. } => Ownership::Programming,
                G::Active { .. } => Ownership::Programmed,
                G::Withdrawing { .. } | G::RetryWithdraw { .. } | G::Holding => {
                    Ownership::Withdrawing
                }
                G::Standby | G::Stopped => Ownership::Withdrawn,
            };
            let live = programming != Ownership::Withdrawn;
            let services = mine
                .iter()
                .map(|vs| {
                    let key = vs.service.key;
                    let d = self.want_of.get(&inst.name).and_then(|w| w.get(&key));
                    ServiceState {
                        key,
                        scheduler: vs.service.scheduler.as_str().to_string(),
                        real_servers: vs
                            .real_servers
                            .iter()
                            .map(|r| {
                                let k = r.dest.key();
                                RealServerState {
                                    key: k,
                                    configured_weight: Some(r.dest.weight),
                                    desired_weight: d
                                        .and_then(|d| d.dests.get(&k))
                                        .map_or(0, |x| x.dest.weight),
                                    applied_weight: if live {
                                        self.applied.get(&(key, k)).copied()
                                    } else {
                                        None
                                    },
                                    drained: self.overrides.is_drained(&key, &k),
                                    active_conns: self.active.get(&(key, k)).copied().unwrap_or(0),
                                }
                            })
                            .collect(),
                    }
                })
                .collect();
            let (drift_repairs, drift_ops) =
                self.drift.get(&inst.name).copied().unwrap_or_default();
            instances.push(InstanceIpvs {
                instance: inst.name.clone(),
                programming,
                last: self.last.get(&inst.name).cloned(),
                last_takeover: self.last_takeover.get(&inst.name).cloned(),
                drift_repairs,
                drift_ops,
                retries: gate.counters().retries,
                failures: gate.counters().failures,
                services,
            });
        }
        self.state_tx.send_replace(IpvsState {
            instances,
            unavailable: None,
        });
    }
}
