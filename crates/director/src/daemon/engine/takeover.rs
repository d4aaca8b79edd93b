//! The engine's work ahead of a takeover: the desired tables (rebuilt once per change), the
//! read made while not Master, and the batch prepared for an instance the kernel holds none of
//! (docs/director.md, "The takeover path").

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use ipvs::{PreparedBatch, ServiceKey, Table};

use super::Engine;
use crate::desired;
use crate::reconcile::{self, DrainState, Owned};

impl Engine {
    /// Rebuilds the desired tables (after a configuration, drain or health change) and drops
    /// the prepared takeover batches built from the old ones.
    pub(super) fn refresh_desired(&mut self) {
        // The old tables go first: at most one copy of the table is alive at a time.
        self.want_of.clear();
        let mut split =
            desired::build(&self.inputs, &self.overrides, &*self.health).into_instances();
        self.want_of = self
            .gates
            .keys()
            .map(|n| (n.clone(), Arc::new(split.remove(n).unwrap_or_default())))
            .collect();
        self.fresh.clear();
    }

    /// Work that makes a later takeover cheaper, done while not Master: read the owned keys
    /// once (an idle Backup, or a director before its first VRRP decision), and prepare the
    /// batch that programs an instance from nothing while the kernel holds none of its keys.
    /// Reads change nothing in the kernel; a belief gone stale by the takeover is caught there.
    pub(super) async fn prepare(&mut self) {
        use crate::gate::State as G;
        let names: Vec<String> = self
            .gates
            .iter()
            .filter(|(_, g)| matches!(g.state(), G::Undecided | G::Standby))
            .map(|(n, _)| n.clone())
            .filter(|n| self.want_of.get(n).is_some_and(|w| !w.is_empty()))
            .collect();
        for name in names {
            if self.sync_checked.insert(name.clone()) {
                self.backup_sync_daemon(&name).await;
            }
            if !self.absent.contains(&name) && self.looked.insert(name.clone()) {
                let keys: Vec<ServiceKey> = self.owned_keys(&name).into_iter().collect();
                let Ok(worker) = self.worker().await else {
                    return;
                };
                match worker.read_services(keys).await {
                    Ok(read) if read.iter().all(|(_, found)| found.is_none()) => {
                        self.absent.insert(name.clone());
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(instance = name, error = %e, "ahead-of-takeover read")
                    }
                }
            }
            if self.absent.contains(&name) && !self.fresh.contains_key(&name) {
                let batch = self.fresh_batch(&name);
                self.fresh.insert(name, batch);
            }
        }
    }

    /// Starts the backup sync daemon of an instance that is not Master yet, if the
    /// configuration ties the sync daemon to it and none runs: a Backup receives the Master's
    /// connections from its start, not from its first reconcile (a connection opened before
    /// that would never reach it). A master daemon left running is stopped by the next
    /// reconcile, which switches both by role.
    async fn backup_sync_daemon(&mut self, name: &str) {
        let Some((run, _)) = self.sync_daemon(name, false) else {
            return;
        };
        let Ok(worker) = self.worker().await else {
            return;
        };
        match super::io::daemon_ops(worker.as_ref(), run, None).await {
            Ok(ops) if ops.is_empty() => {}
            Ok(ops) => match worker.apply(Arc::from(ops)).await {
                Ok(r) if r.all_ok() => {
                    tracing::info!(instance = name, "backup sync daemon started")
                }
                Ok(r) => {
                    tracing::warn!(instance = name, report = ?r.failures().next(), "cannot start the backup sync daemon")
                }
                Err(e) => {
                    tracing::warn!(instance = name, error = %e, "cannot start the backup sync daemon")
                }
            },
            Err(e) => tracing::warn!(instance = name, error = %e, "reading the sync daemons"),
        }
    }

    /// The batch that programs `name`'s desired table into a kernel holding none of its keys,
    /// encoded (encoding is most of a batch's user-space cost: none of it on the takeover).
    pub(super) fn fresh_batch(&self, name: &str) -> Arc<PreparedBatch> {
        let Some(want) = self.want_of.get(name) else {
            return Arc::new(PreparedBatch::new(Arc::from(Vec::new())));
        };
        let owned: Owned = want.keys().copied().collect();
        let plan = reconcile::diff(
            want,
            &Table::default(),
            &owned,
            &DrainState::default(),
            Instant::now(),
            self.cfg.ipvs.drain_timeout,
        );
        Arc::new(PreparedBatch::new(plan.ops.into()))
    }

    /// The keys `name` may have in the kernel: what it programmed and what it wants now.
    pub(super) fn owned_keys(&self, name: &str) -> BTreeSet<ServiceKey> {
        let mut owned: BTreeSet<ServiceKey> = self.owned.get(name).cloned().unwrap_or_default();
        if let Some(w) = self.want_of.get(name) {
            owned.extend(w.keys().copied());
        }
        owned
    }
}
