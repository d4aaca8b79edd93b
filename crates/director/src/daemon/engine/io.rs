//! One reconcile of one instance: read its services by key (or send the prepared batch), diff,
//! apply, and record what the kernel holds; a withdraw deletes the owned services by key
//! without reading them; the sync daemon, timeouts and sysctls with it.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use ipvs::{DaemonState, Op, Outcome as OpOutcome, ServiceEntry, ServiceKey, Table};

use super::kernel::Kernel;
use super::Engine;
use crate::desired::Desired;
use crate::gate::Outcome;
use crate::reconcile::{self, Owned};
use crate::state::{Reconcile, Trigger};

impl Engine {
    /// Program (`master`) or withdraw one instance's services: read them by key, diff, apply.
    pub(super) async fn reconcile(
        &mut self,
        name: &str,
        trigger: Trigger,
        master: bool,
    ) -> Outcome {
        let started = Instant::now();
        let at = SystemTime::now();
        let want = match self.want_of.get(name) {
            Some(w) if master => Arc::clone(w),
            _ => Arc::new(Desired::default()),
        };
        let owned = self.owned_keys(name);
        let sync = self.sync_daemon(name, master);
        if owned.is_empty() && want.is_empty() && sync.is_none() {
            self.owned.remove(name);
            return Outcome::Ok;
        }
        let result = self.reconcile_io(name, &want, &owned, master, sync).await;
        let failed = |retryable| {
            if retryable {
                Outcome::Retryable
            } else {
                Outcome::Fatal
            }
        };
        let (outcome, ops, error) = match result {
            Ok((ops, None)) => (Outcome::Ok, ops, None),
            Ok((ops, Some((retryable, e)))) => (failed(retryable), ops, Some(e)),
            Err((retryable, e)) => (failed(retryable), 0, Some(e)),
        };
        if outcome == Outcome::Ok {
            if master {
                self.owned
                    .insert(name.to_string(), want.keys().copied().collect());
            } else {
                self.owned.remove(name);
                self.absent.insert(name.to_string());
            }
        }
        if trigger == Trigger::Drift && ops > 0 {
            let d = self.drift.entry(name.to_string()).or_default();
            d.0 += 1;
            d.1 += ops as u64;
            tracing::warn!(
                instance = name,
                ops,
                "drift: the kernel's table was changed behind our back; repaired"
            );
        }
        let took = started.elapsed();
        match &error {
            None => tracing::info!(
                instance = name,
                trigger = trigger.as_str(),
                ops,
                took_ms = took.as_millis() as u64,
                "reconciled"
            ),
            Some(e) => tracing::warn!(
                instance = name,
                trigger = trigger.as_str(),
                ops,
                error = %e,
                retry = outcome == Outcome::Retryable,
                "reconcile failed"
            ),
        }
        let done = Reconcile {
            at,
            took,
            trigger,
            ops,
            error,
        };
        if trigger == Trigger::Takeover {
            self.last_takeover.insert(name.to_string(), done.clone());
        }
        self.last.insert(name.to_string(), done);
        outcome
    }

    /// The I/O of one reconcile: `Ok((ops sent, first failure))` or `Err((retryable, what))`
    /// when nothing could be sent.
    #[allow(clippy::type_complexity)]
    pub(super) async fn reconcile_io(
        &mut self,
        name: &str,
        want: &Desired,
        owned: &BTreeSet<ServiceKey>,
        master: bool,
        sync: Option<(ipvs::SyncDaemon, DaemonState)>,
    ) -> Result<(usize, Option<(bool, String)>), (bool, String)> {
        let worker = self.worker().await.map_err(|e| (false, e))?;
        let mut extra = Vec::new();
        if let Some((run, stop)) = sync {
            extra = daemon_ops(worker.as_ref(), run, Some(stop))
                .await
                .map_err(|e| {
                    (
                        retryable_error(&e),
                        format!("reading the sync daemons: {e}"),
                    )
                })?;
        }
        if master && !self.kernel_set {
            self.kernel_set = true;
            self.write_sysctls();
            let t = self.cfg.ipvs.timeouts;
            if t.tcp != 0 || t.tcp_fin != 0 || t.udp != 0 {
                extra.push(Op::SetTimeouts(t));
            }
        }
        if !extra.is_empty() {
            let report = worker
                .apply(std::mem::take(&mut extra).into())
                .await
                .map_err(|e| {
                    (
                        retryable_error(&e),
                        format!("setting the sync daemon / timeouts: {e}"),
                    )
                })?;
            let failed = report
                .failures()
                .next()
                .map(|(_, e)| (is_transient(e.errno), e.to_string()));
            if let Some(f) = failed {
                return Err(f);
            }
        }
        let mut sent = 0;
        if master && self.absent.remove(name) {
            // The kernel held none of our keys at our last look: send the prepared batch.
            let batch = match self.fresh.remove(name) {
                Some(batch) => batch,
                None => self.fresh_batch(name),
            };
            let ops = Arc::clone(batch.ops());
            let t_apply = Instant::now();
            let report = worker.apply_prepared(batch).await.map_err(|e| {
                (
                    retryable_error(&e),
                    format!("applying {} operations: {e}", ops.len()),
                )
            })?;
            self.record(&ops, &report);
            tracing::debug!(
                instance = name,
                ops = ops.len(),
                apply_ms = t_apply.elapsed().as_millis() as u64,
                "reconcile phases (prepared batch, no read)"
            );
            if report.all_ok() {
                return Ok((ops.len(), None));
            }
            // Someone added one of our keys since: read, diff and repair what is left.
            tracing::info!(
                instance = name,
                failed = ops.len() - report.ok_count(),
                "the kernel held some of our services after all: reading them"
            );
            sent = ops.len();
        }
        if !master {
            return self.withdraw_by_key(name, worker.as_ref(), owned).await;
        }
        let keys: Vec<ServiceKey> = owned.iter().copied().collect();
        let t_read = Instant::now();
        let read = worker
            .read_services(keys)
            .await
            .map_err(|e| (retryable_error(&e), format!("reading the services: {e}")))?;
        let mut kernel = Table::default();
        for ks in read.into_iter().filter_map(|(_, found)| found) {
            kernel.services.push(ServiceEntry {
                service: ks.service,
                destinations: ks.dests.into_values().collect(),
            });
        }
        for e in &kernel.services {
            for d in &e.destinations {
                self.applied.insert((e.service.key, d.key()), d.weight);
                self.active.insert((e.service.key, d.key()), d.active_conns);
            }
        }
        let owned_set: Owned = owned.iter().copied().collect();
        let drains = self.drain_state.remove(name).unwrap_or_default();
        let read_took = t_read.elapsed();
        let t_diff = Instant::now();
        let plan = reconcile::diff(
            want,
            &kernel,
            &owned_set,
            &drains,
            Instant::now(),
            self.cfg.ipvs.drain_timeout,
        );
        self.drain_state
            .insert(name.to_string(), plan.drain.clone());
        if plan.ops.is_empty() {
            return Ok((sent, None));
        }
        let ops: Arc<[Op]> = plan.ops.into();
        let n = ops.len();
        let diff_took = t_diff.elapsed();
        let t_apply = Instant::now();
        let report = worker
            .apply(Arc::clone(&ops))
            .await
            .map_err(|e| (retryable_error(&e), format!("applying {n} operations: {e}")))?;
        let apply_took = t_apply.elapsed();
        let t_book = Instant::now();
        self.record(&ops, &report);
        let n = n + sent;
        tracing::debug!(
            instance = name,
            ops = n,
            read_ms = read_took.as_millis() as u64,
            diff_ms = diff_took.as_millis() as u64,
            apply_ms = apply_took.as_millis() as u64,
            bookkeeping_ms = t_book.elapsed().as_millis() as u64,
            "reconcile phases"
        );
        Ok((n, failure(&report, n, "operations", |_| false)))
    }

    /// A withdraw: delete every owned service by key, without reading them first (a service's
    /// deletion takes its real servers along, `ip_vs_del_service`); one the kernel no longer
    /// holds (ESRCH) is as good as deleted. Reading them first would change nothing: the keys
    /// are ours whatever the kernel holds under them, and every one is deleted either way. It
    /// saved 6-9 s of reading at 10,000 x 10 under emulation, during which the node's CPU was
    /// not the VRRP runtime's (docs/benchmarks.md). Returns the services actually deleted.
    async fn withdraw_by_key(
        &mut self,
        name: &str,
        worker: &dyn Kernel,
        owned: &BTreeSet<ServiceKey>,
    ) -> Result<(usize, Option<(bool, String)>), (bool, String)> {
        self.drain_state.remove(name);
        if owned.is_empty() {
            return Ok((0, None));
        }
        let ops: Arc<[Op]> = reconcile::withdraw(owned).into();
        let n = ops.len();
        let t_apply = Instant::now();
        let report = worker
            .apply(Arc::clone(&ops))
            .await
            .map_err(|e| (retryable_error(&e), format!("deleting {n} services: {e}")))?;
        let gone = |e: &ipvs::OpError| e.errno == ipvs::Errno::ESRCH;
        // Deleted now or already gone: forget their weights and connection counts. A deletion
        // that failed otherwise (or whose reply was lost) keeps what we knew of that service.
        let removed: HashSet<ServiceKey> = ops
            .iter()
            .zip(&report.outcomes)
            .filter_map(|(op, outcome)| match (op, outcome) {
                (Op::DelService(k), OpOutcome::Ok) => Some(*k),
                (Op::DelService(k), OpOutcome::Failed(e)) if gone(e) => Some(*k),
                _ => None,
            })
            .collect();
        self.applied.retain(|(k, _), _| !removed.contains(k));
        self.active.retain(|(k, _), _| !removed.contains(k));
        let deleted = report.ok_count();
        tracing::debug!(
            instance = name,
            ops = n,
            deleted,
            apply_ms = t_apply.elapsed().as_millis() as u64,
            "reconcile phases (withdraw by key, no read)"
        );
        Ok((deleted, failure(&report, n, "deletions", gone)))
    }

    /// What the kernel holds after a batch, as far as its report tells: the applied weights.
    pub(super) fn record(&mut self, ops: &[Op], report: &ipvs::BatchReport) {
        self.applied.reserve(ops.len());
        // Deleted services, dropped from the maps in one pass at the end (one pass per deleted
        // service would be services x real servers: seconds for a 10,000 x 10 withdraw).
        let mut deleted: HashSet<ServiceKey> = HashSet::new();
        for (op, outcome) in ops.iter().zip(report.outcomes.iter()) {
            if !matches!(outcome, OpOutcome::Ok) {
                continue;
            }
            match op {
                Op::AddService(s) if deleted.remove(&s.key) => {
                    // Deleted and added again in one batch: forget the old one's real servers now.
                    self.applied.retain(|(k, _), _| *k != s.key);
                    self.active.retain(|(k, _), _| *k != s.key);
                }
                Op::AddDest(k, d) | Op::EditDest(k, d) => {
                    self.applied.insert((*k, d.key()), d.weight);
                }
                Op::DelDest(k, d) => {
                    self.applied.remove(&(*k, *d));
                    self.active.remove(&(*k, *d));
                }
                Op::DelService(k) => {
                    deleted.insert(*k);
                }
                _ => {}
            }
        }
        if !deleted.is_empty() {
            self.applied.retain(|(k, _), _| !deleted.contains(k));
            self.active.retain(|(k, _), _| !deleted.contains(k));
        }
    }

    /// The sync daemon to run for `name`'s role and the one to stop, if the configuration ties
    /// the sync daemon to it: master while Master, backup otherwise.
    pub(super) fn sync_daemon(
        &self,
        name: &str,
        master: bool,
    ) -> Option<(ipvs::SyncDaemon, DaemonState)> {
        let sd = self.cfg.ipvs.sync_daemon.as_ref()?;
        if sd.instance != name {
            return None;
        }
        let (start, stop) = if master {
            (DaemonState::Master, DaemonState::Backup)
        } else {
            (DaemonState::Backup, DaemonState::Master)
        };
        Some((sd.daemon(start), stop))
    }

    pub(super) fn write_sysctls(&self) {
        for (path, value) in self.cfg.ipvs.sysctls.entries() {
            let full = Path::new("/proc/sys").join(path);
            match std::fs::write(&full, &value) {
                Ok(()) => tracing::info!(sysctl = path, value, "set"),
                Err(e) => tracing::warn!(sysctl = path, value, error = %e, "cannot set"),
            }
        }
    }
}

/// What a batch's report makes of a reconcile: `None` when everything applied (failures
/// `ignore` accepts count as applied), else whether to retry and what to say. `n` is the number
/// of `what` sent. A lost reply (`Unknown`) makes it retryable: the retry reads and verifies.
fn failure(
    report: &ipvs::BatchReport,
    n: usize,
    what: &str,
    ignore: impl Fn(&ipvs::OpError) -> bool,
) -> Option<(bool, String)> {
    let mut failures = report.failures().filter(|(_, e)| !ignore(e));
    let first = failures
        .next()
        .map(|(_, e)| (is_transient(e.errno), e.to_string()));
    let unknown = report.unknown_count();
    match first {
        Some((retry, e)) => Some((
            retry || unknown > 0,
            format!("{} of {n} {what} failed; first: {e}", 1 + failures.count()),
        )),
        None if unknown > 0 => Some((
            true,
            format!("{unknown} of {n} {what} unacknowledged (verified on retry)"),
        )),
        None => None,
    }
}

/// The operations that leave the sync daemon `run` running (started if it is not) and, when
/// given, the daemon in state `stop` stopped; empty when the kernel already runs exactly that.
pub(super) async fn daemon_ops(
    kernel: &dyn Kernel,
    run: ipvs::SyncDaemon,
    stop: Option<DaemonState>,
) -> Result<Vec<Op>, ipvs::Error> {
    let running = kernel.daemons().await?;
    let mut ops = Vec::new();
    if let Some(stop) = stop.filter(|s| running.iter().any(|d| d.state == *s)) {
        ops.push(Op::StopDaemon(stop));
    }
    if !running.iter().any(|d| d.state == run.state) {
        ops.push(Op::StartDaemon(run));
    }
    Ok(ops)
}

/// Whether an error of the IPVS library is worth retrying (a socket or a torn read), rather
/// than a refusal that will repeat.
pub(super) fn retryable_error(e: &ipvs::Error) -> bool {
    !matches!(e, ipvs::Error::NotAvailable)
}

/// The errnos a retry can cure: the kernel was short of memory or busy (Seesaw #19/#46).
pub(super) fn is_transient(errno: ipvs::Errno) -> bool {
    [
        ipvs::Errno::ENOMEM,
        ipvs::Errno::EBUSY,
        ipvs::Errno::EAGAIN,
        ipvs::Errno::EINTR,
    ]
    .contains(&errno)
}
