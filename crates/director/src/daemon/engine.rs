//! The IPVS engine: the one place where the ownership gates, the diff, the IPVS worker thread and
//! timers meet (design.md, "engine"). Everything it decides is decided by pure code: `gate`
//! (when to program, withdraw, ack, retry, verify), `desired` (what to want), `reconcile` (which
//! operations); this module only feeds them events and runs their actions.
//!
//! ```text
//!  havip role watch ─► forwarder task ─┐  (MasterHeld / Released, derived by `gate_role`)
//!  havip takeover barrier requests ────┤  (TakeoverPending; the request is kept for the ack)
//!  reload, drain / undrain, stop ──────┼─► engine task ─► gate.handle(event, now) ─► actions
//!  gate deadlines (retry, verify) ─────┘        │
//!                                               ├─ Program(i): read i's services by key, diff, apply
//!                                               ├─ Withdraw(i): delete the services i owns
//!                                               └─ AckTakeover: the kept request's ready()
//!  ipvs::WorkerHandle (its own thread: a long read never delays VRRP adverts)
//!  watch<IpvsState> ─► status socket
//! ```
//!
//! The engine runs one action at a time, in the order the gates emit them, so a Withdraw emitted
//! while a Program ran comes after it. The worker is started at the first action that needs the
//! kernel, so a configuration without virtual services never touches IPVS (a VIP-only pair runs
//! on hosts without the module).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use havip::fsm::State as VrrpState;
use havip::runner::{InstanceHandle, Role as VrrpRole, TakeoverRequest, TransitionReason};
use ipvs::{
    DaemonState, DestKey, Op, Outcome as OpOutcome, ServiceEntry, ServiceKey, Table, WorkerHandle,
};
use tokio::sync::{mpsc, oneshot, watch};

use super::drains::Drains;
use crate::config::{Config, VirtualService};
use crate::desired::{self, Desired, HealthMap, Overrides, ServiceInput};
use crate::gate::{Action, Event, Gate, GateConfig, Outcome, Role, Ticket};
use crate::reconcile::{self, DrainState, Owned};
use crate::state::{
    InstanceIpvs, IpvsState, Ownership, RealServerState, Reconcile, ServiceState, Trigger,
};
use crate::target::{parse_dest, parse_service};

/// A message to the engine task.
enum Msg {
    Role(String, Role),
    Reload(Box<Config>),
    Drain {
        service: String,
        real_server: String,
        on: bool,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Stop(oneshot::Sender<()>),
    Health(Arc<HealthMap>),
}

/// The daemon's handle on the engine task.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::UnboundedSender<Msg>,
    state: watch::Receiver<IpvsState>,
}

impl EngineHandle {
    /// The IPVS side as of now (for the status socket).
    pub fn state(&self) -> IpvsState {
        self.state.borrow().clone()
    }

    /// A new configuration (reload): services reconcile, nothing touches VRRP.
    pub fn reload(&self, cfg: &Config) {
        let _ = self.tx.send(Msg::Reload(Box::new(cfg.clone())));
    }

    /// `director drain` (`on`) or `undrain`: persisted, then reconciled.
    pub async fn drain(&self, service: &str, real_server: &str, on: bool) -> Result<(), String> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Drain {
                service: service.to_string(),
                real_server: real_server.to_string(),
                on,
                reply,
            })
            .map_err(|_| "the IPVS engine has stopped".to_string())?;
        rx.await
            .map_err(|_| "the IPVS engine has stopped".to_string())?
    }

    /// A new health view (`daemon::health`): instances whose desired table changes reconcile.
    pub fn health(&self, view: Arc<HealthMap>) {
        let _ = self.tx.send(Msg::Health(view));
    }

    /// Asks every gate to stop; resolves once each has withdrawn what it owns (the VIPs must be
    /// removed for that: shut the VRRP instances down meanwhile) or had nothing.
    pub fn stop(&self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Msg::Stop(tx));
        rx
    }

    /// Follows one VRRP instance's role: spawns the task that turns havip's level-triggered
    /// role (and the master it knows of) into gate roles. It ends when the instance does (then
    /// its VIPs are gone: havip removes them on every exit path), reporting `Released`.
    ///
    /// `settle`: how long a Backup that has never been Master must stay Backup, with another
    /// master known, before that counts as a decision. A restarted director that will preempt
    /// hears the current (lower) master first and becomes Master within the Master_Down_Interval
    /// (plus its preempt delay); withdrawing at the first advert would delete the very table it
    /// is about to adopt. Pass at least `3 x advert interval + preempt delay`.
    pub fn follow(
        &self,
        name: &str,
        handle: &InstanceHandle,
        settle: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let tx = self.tx.clone();
        let name = name.to_string();
        let mut role = handle.role();
        let mut status = handle.status();
        tokio::spawn(async move {
            let mut last: Option<Role> = None;
            let mut was_master = false;
            // When another master was first heard while Backup (for `settle`).
            let mut heard_since: Option<Instant> = None;
            loop {
                let r = *role.borrow_and_update();
                let heard = {
                    let s = status.borrow_and_update();
                    s.master.is_some() && r.state != VrrpState::Master
                };
                was_master |= r.state == VrrpState::Master;
                heard_since = match (heard, heard_since) {
                    (true, None) => Some(Instant::now()),
                    (true, since) => since,
                    (false, _) => None,
                };
                let settled = heard_since.is_some_and(|t| t.elapsed() >= settle);
                if let Some(g) = gate_role(&r, settled, was_master) {
                    if last != Some(g) {
                        last = Some(g);
                        if tx.send(Msg::Role(name.clone(), g)).is_err() {
                            return;
                        }
                    }
                }
                let wake = match heard_since {
                    Some(t) if !settled && last.is_none() => t + settle,
                    _ => Instant::now() + Duration::from_secs(3600),
                };
                tokio::select! {
                    c = role.changed() => if c.is_err() { break },
                    c = status.changed() => if c.is_err() { break },
                    _ = tokio::time::sleep_until(wake.into()) => {}
                }
            }
            if last != Some(Role::Released) {
                let _ = tx.send(Msg::Role(name, Role::Released));
            }
        })
    }
}

/// havip's role as the gate sees it. `TakeoverPending` is not derived here: it comes with the
/// takeover request, which the engine keeps to ack. `None`: no decision yet (the Backup havip
/// starts in, before another master has been heard for the settle time: a restarted director
/// adopts its table if it becomes Master, and withdraws it only once another master stays).
pub fn gate_role(role: &VrrpRole, other_master_settled: bool, was_master: bool) -> Option<Role> {
    match role.state {
        VrrpState::Master if role.vips_held => Some(Role::MasterHeld),
        VrrpState::Master => None,
        VrrpState::Fault => Some(Role::Released),
        _ if role.reason == TransitionReason::Stopped || was_master || other_master_settled => {
            Some(Role::Released)
        }
        _ => None,
    }
}

/// Starts the engine task. `takeovers` is the receiving end of havip's takeover barrier.
pub fn start(
    cfg: &Config,
    state_dir: &Path,
    takeovers: mpsc::UnboundedReceiver<TakeoverRequest>,
) -> Result<EngineHandle, String> {
    let drains = Drains::load(state_dir)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let (state_tx, state) = watch::channel(IpvsState::default());
    let mut engine = Engine {
        worker: None,
        inputs: Vec::new(),
        services: Vec::new(),
        cfg: cfg.clone(),
        overrides: Overrides::default(),
        drains,
        gates: BTreeMap::new(),
        takeovers: HashMap::new(),
        owned: BTreeMap::new(),
        drain_state: BTreeMap::new(),
        last: BTreeMap::new(),
        last_takeover: BTreeMap::new(),
        applied: HashMap::new(),
        active: HashMap::new(),
        triggers: HashMap::new(),
        drift: BTreeMap::new(),
        queue: VecDeque::new(),
        stop_waiters: Vec::new(),
        state_tx,
        kernel_set: false,
        health: Arc::new(super::health::initial_view(cfg)),
    };
    for (s, d) in engine.drains.iter() {
        engine.overrides.drain(*s, *d);
    }
    engine.configure(cfg);
    tokio::spawn(engine.run(rx, takeovers));
    Ok(EngineHandle { tx, state })
}

struct Engine {
    worker: Option<WorkerHandle>,
    cfg: Config,
    inputs: Vec<ServiceInput>,
    services: Vec<VirtualService>,
    overrides: Overrides,
    drains: Drains,
    gates: BTreeMap<String, Gate>,
    takeovers: HashMap<String, TakeoverRequest>,
    /// Service keys each instance may have in the kernel (this and earlier configurations).
    owned: BTreeMap<String, BTreeSet<ServiceKey>>,
    drain_state: BTreeMap<String, DrainState>,
    last: BTreeMap<String, Reconcile>,
    last_takeover: BTreeMap<String, Reconcile>,
    /// Weights the kernel held at the last read, by service and real server.
    applied: HashMap<(ServiceKey, DestKey), i32>,
    active: HashMap<(ServiceKey, DestKey), u32>,
    /// Why the next Program of an instance runs.
    triggers: HashMap<String, Trigger>,
    drift: BTreeMap<String, (u64, u64)>,
    queue: VecDeque<(String, Action)>,
    stop_waiters: Vec<oneshot::Sender<()>>,
    state_tx: watch::Sender<IpvsState>,
    /// Timeouts and sysctls written (once, at the first programming).
    kernel_set: bool,
    /// The real servers' health (`daemon::health`).
    health: Arc<HealthMap>,
}

impl Engine {
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Msg>,
        mut takeovers: mpsc::UnboundedReceiver<TakeoverRequest>,
    ) {
        self.publish();
        loop {
            let deadline = self.gates.values().filter_map(Gate::next_deadline).min();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(m) => self.on_msg(m),
                    None => break,
                },
                Some(req) = takeovers.recv() => {
                    let name = req.instance().to_string();
                    self.takeovers.insert(name.clone(), req);
                    self.triggers.insert(name.clone(), Trigger::Takeover);
                    self.feed(&name, Event::Role(Role::TakeoverPending));
                }
                _ = sleep => {
                    let now = Instant::now();
                    let due: Vec<String> = self
                        .gates
                        .iter()
                        .filter(|(_, g)| g.next_deadline().is_some_and(|d| d <= now))
                        .map(|(n, _)| n.clone())
                        .collect();
                    for name in due {
                        let retry = matches!(self.gates.get(&name).map(Gate::state),
                            Some(crate::gate::State::RetryProgram { .. }));
                        self.triggers.insert(name.clone(), if retry { Trigger::Retry } else { Trigger::Drift });
                        self.feed(&name, Event::Timer);
                    }
                }
            }
            while let Some((name, action)) = self.queue.pop_front() {
                self.act(&name, action).await;
            }
            self.publish();
            self.check_stopped();
        }
    }

    /// Feeds a gate and queues what it asks for.
    fn feed(&mut self, name: &str, event: Event) {
        let Some(gate) = self.gates.get_mut(name) else {
            return;
        };
        for a in gate.handle(event, Instant::now()) {
            self.queue.push_back((name.to_string(), a));
        }
    }

    fn on_msg(&mut self, msg: Msg) {
        match msg {
            Msg::Role(name, role) => {
                if role == Role::Released {
                    // A takeover that did not happen: havip cancels its request itself.
                    self.takeovers.remove(&name);
                }
                self.feed(&name, Event::Role(role));
            }
            Msg::Reload(cfg) => {
                let before: HashMap<String, Vec<VirtualService>> = self.by_instance();
                self.configure(&cfg);
                let after = self.by_instance();
                let names: Vec<String> = self.gates.keys().cloned().collect();
                for name in names {
                    if before.get(&name) != after.get(&name) {
                        self.triggers.insert(name.clone(), Trigger::Reload);
                        self.feed(&name, Event::DesiredChanged);
                    }
                }
            }
            Msg::Drain {
                service,
                real_server,
                on,
                reply,
            } => {
                let r = self.drain(&service, &real_server, on);
                let _ = reply.send(r);
            }
            Msg::Health(view) => {
                let before = self.desired();
                self.health = view;
                let after = self.desired();
                let names: Vec<String> = self.gates.keys().cloned().collect();
                for name in names {
                    if before.for_instances(&[&name]) != after.for_instances(&[&name]) {
                        self.triggers.insert(name.clone(), Trigger::Health);
                        self.feed(&name, Event::DesiredChanged);
                    }
                }
            }
            Msg::Stop(done) => {
                self.stop_waiters.push(done);
                let names: Vec<String> = self.gates.keys().cloned().collect();
                for name in names {
                    self.feed(&name, Event::StopRequested);
                }
            }
        }
    }

    fn by_instance(&self) -> HashMap<String, Vec<VirtualService>> {
        let mut m: HashMap<String, Vec<VirtualService>> = HashMap::new();
        for s in &self.services {
            m.entry(s.instance.clone()).or_default().push(s.clone());
        }
        m
    }

    /// Takes a configuration: services, and a gate per instance (a gate of an instance that
    /// left the configuration is asked to stop: it withdraws once its VIPs are gone).
    fn configure(&mut self, cfg: &Config) {
        self.cfg = cfg.clone();
        self.services = cfg.virtual_services.clone();
        self.inputs = cfg.virtual_services.iter().map(ServiceInput::of).collect();
        for inst in &cfg.instances {
            self.gates.entry(inst.name.clone()).or_insert_with(|| {
                Gate::new(GateConfig {
                    verify_interval: cfg.ipvs.verify_interval,
                    ..GateConfig::default()
                })
            });
        }
        let gone: Vec<String> = self
            .gates
            .keys()
            .filter(|n| !cfg.instances.iter().any(|i| &i.name == *n))
            .cloned()
            .collect();
        for name in gone {
            self.feed(&name, Event::StopRequested);
        }
    }

    fn drain(&mut self, service: &str, real_server: &str, on: bool) -> Result<(), String> {
        let key = parse_service(service)?;
        let dest = parse_dest(real_server, &key)?;
        let Some(vs) = self.services.iter().find(|v| v.service.key == key) else {
            return Err(format!("no virtual service {service} in the configuration"));
        };
        if !vs.real_servers.iter().any(|r| r.dest.key() == dest) {
            return Err(format!(
                "{service} has no real server {real_server} in the configuration"
            ));
        }
        let instance = vs.instance.clone();
        self.drains
            .set(key, dest, on)
            .map_err(|e| format!("cannot save the drain: {e}"))?;
        if on {
            self.overrides.drain(key, dest);
        } else {
            self.overrides.undrain(&key, &dest);
        }
        tracing::info!(service, real_server, drained = on, "operator drain");
        self.triggers.insert(instance.clone(), Trigger::Drain);
        self.feed(&instance, Event::DesiredChanged);
        Ok(())
    }

    fn desired(&self) -> Desired {
        desired::build(&self.inputs, &self.overrides, &*self.health)
    }

    async fn worker(&mut self) -> Result<WorkerHandle, String> {
        if let Some(w) = &self.worker {
            return Ok(w.clone());
        }
        let w = ipvs::Worker::spawn("ipvs-engine").map_err(|e| e.to_string())?;
        self.worker = Some(w.clone());
        Ok(w)
    }

    /// Runs one gate action and feeds its result back.
    async fn act(&mut self, name: &str, action: Action) {
        match action {
            Action::AckTakeover => {
                if let Some(req) = self.takeovers.remove(name) {
                    tracing::debug!(instance = name, "services programmed: VIPs may go up");
                    req.ready();
                }
            }
            Action::Program(ticket) => {
                let trigger = self.triggers.remove(name).unwrap_or(Trigger::Drift);
                let outcome = self.reconcile(name, trigger, ticket, true).await;
                self.feed(name, Event::ReconcileDone { ticket, outcome });
            }
            Action::Withdraw(ticket) => {
                let outcome = self.reconcile(name, Trigger::Withdraw, ticket, false).await;
                self.feed(name, Event::ReconcileDone { ticket, outcome });
            }
        }
    }

    /// Program (`master`) or withdraw one instance's services: read them by key, diff, apply.
    async fn reconcile(
        &mut self,
        name: &str,
        trigger: Trigger,
        _ticket: Ticket,
        master: bool,
    ) -> Outcome {
        let started = Instant::now();
        let at = SystemTime::now();
        let all = self.desired();
        let want = if master {
            all.for_instances(&[name])
        } else {
            Desired::default()
        };
        let mut owned: BTreeSet<ServiceKey> = self.owned.get(name).cloned().unwrap_or_default();
        owned.extend(all.keys_of(name).copied());
        let sync = self.sync_daemon(name, master);
        if owned.is_empty() && want.is_empty() && sync.is_none() {
            self.owned.remove(name);
            return Outcome::Ok;
        }
        let result = self.reconcile_io(name, &want, &owned, master, sync).await;
        let (outcome, ops, error) = match result {
            Ok((ops, failures)) => match failures {
                None => (Outcome::Ok, ops, None),
                Some((retryable, e)) => (
                    if retryable {
                        Outcome::Retryable
                    } else {
                        Outcome::Fatal
                    },
                    ops,
                    Some(e),
                ),
            },
            Err((retryable, e)) => (
                if retryable {
                    Outcome::Retryable
                } else {
                    Outcome::Fatal
                },
                0,
                Some(e),
            ),
        };
        if outcome == Outcome::Ok {
            if master {
                self.owned
                    .insert(name.to_string(), want.keys().copied().collect());
            } else {
                self.owned.remove(name);
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
    async fn reconcile_io(
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
            let running = worker.daemons().await.map_err(|e| {
                (
                    retryable_error(&e),
                    format!("reading the sync daemons: {e}"),
                )
            })?;
            if running.iter().any(|d| d.state == stop) {
                extra.push(Op::StopDaemon(stop));
            }
            if !running.iter().any(|d| d.state == run.state) {
                extra.push(Op::StartDaemon(run));
            }
        }
        if master && !self.kernel_set {
            self.kernel_set = true;
            self.write_sysctls();
            let t = self.cfg.ipvs.timeouts;
            if t.tcp != 0 || t.tcp_fin != 0 || t.udp != 0 {
                extra.push(Op::SetTimeouts(t));
            }
        }
        let keys: Vec<ServiceKey> = owned.iter().copied().collect();
        let t_read = Instant::now();
        let read = worker
            .read_services(keys)
            .await
            .map_err(|e| (retryable_error(&e), format!("reading the services: {e}")))?;
        let mut kernel = Table::default();
        for (_, found) in read {
            if let Some(ks) = found {
                let entry = ServiceEntry {
                    service: ks.service.clone(),
                    destinations: ks.dests.values().cloned().collect(),
                };
                kernel.services.push(entry);
            }
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
        let mut ops = plan.ops;
        ops.extend(extra);
        if ops.is_empty() {
            return Ok((0, None));
        }
        let n = ops.len();
        let diff_took = t_diff.elapsed();
        let t_apply = Instant::now();
        let report = worker
            .apply(ops.clone())
            .await
            .map_err(|e| (retryable_error(&e), format!("applying {n} operations: {e}")))?;
        let apply_took = t_apply.elapsed();
        let t_book = Instant::now();
        // What the kernel holds now, as far as the report tells.
        for (op, outcome) in ops.iter().zip(report.outcomes.iter()) {
            if !matches!(outcome, OpOutcome::Ok) {
                continue;
            }
            match op {
                Op::AddDest(k, d) | Op::EditDest(k, d) => {
                    self.applied.insert((*k, d.key()), d.weight);
                }
                Op::DelDest(k, d) => {
                    self.applied.remove(&(*k, *d));
                }
                Op::DelService(k) => self.applied.retain(|(s, _), _| s != k),
                _ => {}
            }
        }
        let mut failures = report.failures();
        let first = failures.next().map(|(i, e)| {
            let retry = is_transient(e.errno);
            (i, retry, e.to_string())
        });
        let failed = 1 + failures.count();
        tracing::debug!(
            instance = name,
            ops = n,
            read_ms = read_took.as_millis() as u64,
            diff_ms = diff_took.as_millis() as u64,
            apply_ms = apply_took.as_millis() as u64,
            bookkeeping_ms = t_book.elapsed().as_millis() as u64,
            "reconcile phases"
        );
        let unknown = report.unknown_count();
        Ok((
            n,
            match first {
                Some((_, retry, e)) => Some((
                    retry || unknown > 0,
                    format!("{failed} of {n} operations failed; first: {e}"),
                )),
                None if unknown > 0 => Some((
                    true,
                    format!("{unknown} of {n} operations unacknowledged (verified on retry)"),
                )),
                None => None,
            },
        ))
    }

    /// The sync daemon to run for `name`'s role and the one to stop, if the configuration ties
    /// the sync daemon to it: master while Master, backup otherwise.
    fn sync_daemon(&self, name: &str, master: bool) -> Option<(ipvs::SyncDaemon, DaemonState)> {
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

    fn write_sysctls(&self) {
        for (path, value) in self.cfg.ipvs.sysctls.entries() {
            let full = Path::new("/proc/sys").join(path);
            match std::fs::write(&full, &value) {
                Ok(()) => tracing::info!(sysctl = path, value, "set"),
                Err(e) => tracing::warn!(sysctl = path, value, error = %e, "cannot set"),
            }
        }
    }

    /// Publishes the typed state the status socket reads.
    fn publish(&self) {
        let want = self.desired();
        let mut instances = Vec::new();
        for inst in &self.cfg.instances {
            let Some(gate) = self.gates.get(&inst.name) else {
                continue;
            };
            let mine: Vec<&VirtualService> = self
                .services
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
                    let d = want.get(&key);
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
                services,
            });
        }
        self.state_tx.send_replace(IpvsState {
            instances,
            unavailable: None,
        });
    }

    /// Answers the stop waiters once every gate is done (stopped, or never owned anything).
    fn check_stopped(&mut self) {
        if self.stop_waiters.is_empty() {
            return;
        }
        use crate::gate::State as G;
        let done = self.queue.is_empty()
            && self
                .gates
                .values()
                .all(|g| matches!(g.state(), G::Stopped | G::Standby | G::Undecided));
        if done {
            for w in self.stop_waiters.drain(..) {
                let _ = w.send(());
            }
        }
    }
}

/// Whether an error of the IPVS library is worth retrying (a socket or a torn read), rather
/// than a refusal that will repeat.
fn retryable_error(e: &ipvs::Error) -> bool {
    !matches!(e, ipvs::Error::NotAvailable)
}

/// The errnos a retry can cure: the kernel was short of memory or busy (Seesaw #19/#46).
fn is_transient(errno: ipvs::Errno) -> bool {
    [
        ipvs::Errno::ENOMEM,
        ipvs::Errno::EBUSY,
        ipvs::Errno::EAGAIN,
        ipvs::Errno::EINTR,
    ]
    .contains(&errno)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(state: VrrpState, vips_held: bool, reason: TransitionReason) -> VrrpRole {
        VrrpRole {
            state,
            vips_held,
            since: SystemTime::UNIX_EPOCH,
            reason,
        }
    }

    #[test]
    fn only_real_decisions_become_gate_roles() {
        use TransitionReason::Created;
        let backup = role(VrrpState::Backup, false, Created);
        // The Backup havip starts in is no decision: a restart may still preempt and adopt.
        assert_eq!(gate_role(&backup, false, false), None);
        // Another master heard for the settle time, or a Master that stepped down: withdraw.
        assert_eq!(gate_role(&backup, true, false), Some(Role::Released));
        assert_eq!(gate_role(&backup, false, true), Some(Role::Released));
        assert_eq!(
            gate_role(
                &role(VrrpState::Backup, false, TransitionReason::Stopped),
                false,
                false
            ),
            Some(Role::Released)
        );
        assert_eq!(
            gate_role(&role(VrrpState::Fault, false, Created), false, false),
            Some(Role::Released)
        );
        // Master: held VIPs are MasterHeld; without them the takeover request speaks.
        assert_eq!(
            gate_role(&role(VrrpState::Master, true, Created), false, false),
            Some(Role::MasterHeld)
        );
        assert_eq!(
            gate_role(&role(VrrpState::Master, false, Created), true, true),
            None
        );
        assert_eq!(
            gate_role(&role(VrrpState::Initialize, false, Created), false, false),
            None
        );
    }

    #[test]
    fn transient_errnos_are_retried() {
        assert!(is_transient(ipvs::Errno::ENOMEM));
        assert!(is_transient(ipvs::Errno::EBUSY));
        assert!(!is_transient(ipvs::Errno::EINVAL));
        assert!(!is_transient(ipvs::Errno::ENOENT));
    }
}
