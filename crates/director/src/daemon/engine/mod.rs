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
//!                                               ├─ Program(i): the prepared batch, or read
//!                                               │  i's services by key, diff, apply
//!                                               ├─ Withdraw(i): delete the services i owns
//!                                               └─ AckTakeover: the kept request's ready()
//!  idle, not Master: read the owned keys once, prepare the takeover batch (`takeover`)
//!  kernel::Kernel = ipvs::WorkerHandle (its own thread: a long read never delays VRRP adverts)
//!  watch<IpvsState> ─► status socket (`publish`)
//! ```
//!
//! | module | concern |
//! |---|---|
//! | `mod.rs` | the handle, the task's loop, messages, configuration, drains |
//! | `takeover` | desired tables, the ahead-of-takeover read, the prepared batch |
//! | `io` | one reconcile: read, diff, apply, record; sync daemon, timeouts, sysctls |
//! | `publish` | the typed state for `director status` |
//!
//! The engine task runs on a thread of its own (`director-engine`, a current-thread runtime), and
//! the IPVS connection on another (`ipvs-engine`): neither its CPU work (desired tables, diffs,
//! the status of a large table) nor the kernel's replies ever hold up the runtime that sends VRRP
//! adverts (lab test `kernel_director_takeover`, "adverts on schedule").
//!
//! The engine runs one action at a time, in the order the gates emit them, so a Withdraw emitted
//! while a Program ran comes after it. The worker is started at the first action that needs the
//! kernel, so a configuration without virtual services never touches IPVS (a VIP-only pair runs
//! on hosts without the module).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use havip::fsm::State as VrrpState;
use havip::runner::{InstanceHandle, Role as VrrpRole, TakeoverRequest, TransitionReason};
use ipvs::{DestKey, ServiceKey};
use tokio::sync::{mpsc, oneshot, watch};

use super::drains::Drains;
use super::kernel::{self, Connect, Kernel};
use crate::config::{Config, VirtualService};
use crate::desired::{Desired, HealthMap, Overrides, ServiceInput};
use crate::gate::{Action, Event, Gate, GateConfig, Role};
use crate::reconcile::DrainState;
use crate::state::{IpvsState, Reconcile, Trigger};
use crate::target::{parse_dest, parse_service};

mod io;
mod publish;
mod takeover;

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
    start_with(cfg, state_dir, takeovers, kernel::worker())
}

/// [`start`] with the kernel connection `connect` opens (a simulated kernel in tests).
pub fn start_with(
    cfg: &Config,
    state_dir: &Path,
    takeovers: mpsc::UnboundedReceiver<TakeoverRequest>,
    connect: Connect,
) -> Result<EngineHandle, String> {
    let drains = Drains::load(state_dir)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let (state_tx, state) = watch::channel(IpvsState::default());
    let mut engine = Engine {
        worker: None,
        connect,
        inputs: Vec::new(),
        want_of: HashMap::new(),
        absent: BTreeSet::new(),
        looked: BTreeSet::new(),
        sync_checked: BTreeSet::new(),
        fresh: HashMap::new(),
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
    engine.refresh_desired();
    // Its own thread and runtime: building desired tables, diffing and publishing a large
    // table's state are CPU work of seconds at 10,000 x 10 under emulation. On the daemon's
    // runtime that work would hold a worker thread (and any task tokio parked in that worker's
    // LIFO slot, which other workers cannot steal) while VRRP adverts are due.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the IPVS engine's runtime: {e}"))?;
    std::thread::Builder::new()
        .name("director-engine".into())
        .spawn(move || rt.block_on(engine.run(rx, takeovers)))
        .map_err(|e| format!("cannot start the IPVS engine's thread: {e}"))?;
    Ok(EngineHandle { tx, state })
}

struct Engine {
    worker: Option<Arc<dyn Kernel>>,
    connect: Connect,
    cfg: Config,
    inputs: Vec<ServiceInput>,
    /// The desired table of each instance (rebuilt when the configuration, a drain or a
    /// health result changes; never per reconcile or per status publish).
    want_of: HashMap<String, Arc<Desired>>,
    /// Instances none of whose owned keys the kernel held at our last look (a withdraw we
    /// completed, or a read while not Master): their takeover sends the prepared batch without
    /// reading first. An add refused because the key exists after all (someone added it since)
    /// falls back to the read-diff-apply path within the same takeover.
    absent: BTreeSet<String>,
    /// Instances whose owned keys were read while not Master (once per engine).
    looked: BTreeSet<String>,
    /// Instances whose backup sync daemon was checked while not Master (once per engine).
    sync_checked: BTreeSet<String>,
    /// Per instance in `absent`: the batch that programs its desired table from nothing,
    /// prepared while not Master so a takeover does no diffing (dropped when `want` changes).
    fresh: HashMap<String, Arc<ipvs::PreparedBatch>>,
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
        self.prepare().await;
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
            self.prepare().await;
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
                self.refresh_desired();
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
                let before = self.want_of.clone();
                self.health = view;
                self.refresh_desired();
                let names: Vec<String> = self.gates.keys().cloned().collect();
                for name in names {
                    if before.get(&name) != self.want_of.get(&name) {
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
        for s in self.cfg.virtual_services.iter() {
            m.entry(s.instance.clone()).or_default().push(s.clone());
        }
        m
    }

    /// Takes a configuration: services, and a gate per instance (a gate of an instance that
    /// left the configuration is asked to stop: it withdraws once its VIPs are gone).
    fn configure(&mut self, cfg: &Config) {
        self.cfg = cfg.clone();
        self.inputs = cfg.virtual_services.iter().map(ServiceInput::of).collect();
        let timers = GateConfig {
            verify_interval: cfg.ipvs.verify_interval,
            ..GateConfig::default()
        };
        for inst in &cfg.instances {
            self.gates
                .entry(inst.name.clone())
                .or_insert_with(|| Gate::new(timers))
                .reconfigure(timers, Instant::now());
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
        let Some(vs) = self
            .cfg
            .virtual_services
            .iter()
            .find(|v| v.service.key == key)
        else {
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
        self.refresh_desired();
        tracing::info!(service, real_server, drained = on, "operator drain");
        self.triggers.insert(instance.clone(), Trigger::Drain);
        self.feed(&instance, Event::DesiredChanged);
        Ok(())
    }

    async fn worker(&mut self) -> Result<Arc<dyn Kernel>, String> {
        if let Some(w) = &self.worker {
            return Ok(Arc::clone(w));
        }
        let w = (self.connect)()?;
        self.worker = Some(Arc::clone(&w));
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
                let outcome = self.reconcile(name, trigger, true).await;
                self.feed(name, Event::ReconcileDone { ticket, outcome });
            }
            Action::Withdraw(ticket) => {
                let outcome = self.reconcile(name, Trigger::Withdraw, false).await;
                self.feed(name, Event::ReconcileDone { ticket, outcome });
            }
        }
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

#[cfg(test)]
mod sim_tests;

#[cfg(test)]
mod tests;
