//! Real-server health checks in the daemon (issue 18): one [`health::Registry`] for the process,
//! a subscription per (service, real server, check), and a supervisor task that turns check
//! states into the engine's health view and each instance's quorum effect (a weight, a FAULT).
//!
//! ```text
//!  config ─► subscriptions ─► health::Registry (one probe per (backend, check))
//!                 │ state changes (one Notify, coalesced)
//!                 ▼
//!            supervisor ─► HealthMap ─► EngineHandle::health ─► desired (inhibit/remove/sorry)
//!                       └─► quorum effects (watch) ─► follow_quorum ─► set_external_weight
//!                                                                   └► set_external_fault
//! ```
//!
//! Both directors of a pair run the checks whatever their VRRP role, so a new Master programs
//! only healthy real servers at its takeover. A real server with several checks is up when
//! every one is up, down when one is down, unknown otherwise (no result yet: counted as down,
//! the pessimistic start). A real server without checks is always up.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use health::{CheckSpec, Registry, Start, State};
use ipvs::{DestKey, ServiceKey};
use tokio::sync::{mpsc, watch, Mutex, Notify};

use crate::config::{Config, QuorumDown};
use crate::desired::{Health, HealthMap};

/// What the quorums of an instance's services ask of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuorumEffect {
    /// The external weight (`InstanceHandle::set_external_weight`): the most negative
    /// `quorum_down: {priority_decrease: N}` (-N) of its services whose quorum is lost, else 0.
    pub weight: i32,
    /// Set while a service with `quorum_down: {fault: true}` has lost its quorum: the instance
    /// is held in VRRP FAULT (`InstanceHandle::set_external_fault`) with this reason (each such
    /// service, `; `-separated).
    pub fault: Option<String>,
}

/// One check of one real server of one service, for `director status`.
#[derive(Debug, Clone)]
pub struct CheckView {
    /// The check's kind (`tcp`, `http`, ...).
    pub kind: &'static str,
    /// Where the probe connects.
    pub connect: SocketAddr,
    /// The filtered state.
    pub state: State,
    /// The last result's reason (`connected`, `status 503, expected 200-299`, ...).
    pub reason: Option<String>,
    /// The last result's latency.
    pub latency: Option<Duration>,
    /// Wall-clock time of the last change of `state` (the subscription's start while unknown).
    pub since: std::time::SystemTime,
}

/// The health of one real server of one service, for `director status`.
#[derive(Debug, Clone)]
pub struct RealServerView {
    /// The service.
    pub service: ServiceKey,
    /// The real server.
    pub dest: DestKey,
    /// Its health, all checks combined.
    pub health: Health,
    /// Each check.
    pub checks: Vec<CheckView>,
}

struct Sub {
    service: ServiceKey,
    dest: DestKey,
    rx: watch::Receiver<health::Health>,
    spec: Arc<CheckSpec>,
    target: SocketAddr,
    /// The task that turns this receiver's changes into the supervisor's wake-up; it holds a
    /// receiver too, so it must end with the subscription or the probe would never stop.
    forward: tokio::task::JoinHandle<()>,
}

impl Drop for Sub {
    fn drop(&mut self) {
        self.forward.abort();
    }
}

/// The daemon's handle on its health checks.
#[derive(Clone)]
pub struct HealthChecks {
    reload: mpsc::UnboundedSender<Config>,
    subs: watch::Receiver<Arc<Vec<Sub>>>,
    quorum: watch::Receiver<BTreeMap<String, QuorumEffect>>,
}

/// The view the engine starts with, before any check result: real servers without checks up,
/// the others unknown (down).
pub fn initial_view(cfg: &Config) -> HealthMap {
    let mut m = HealthMap::default();
    for v in cfg.virtual_services.iter() {
        for r in &v.real_servers {
            if r.checks.is_empty() {
                m.set(v.service.key, r.dest.key(), Health::Up);
            }
        }
    }
    m
}

impl HealthChecks {
    /// Starts the checks of `cfg` on the current runtime; health changes go to `engine`.
    pub fn start(cfg: &Config, engine: super::engine::EngineHandle) -> Result<Self, String> {
        let registry = Registry::new().map_err(|e| e.to_string())?;
        let (reload, reload_rx) = mpsc::unbounded_channel();
        let (subs_tx, subs) = watch::channel(Arc::new(Vec::new()));
        let (quorum_tx, quorum) = watch::channel(BTreeMap::new());
        tokio::spawn(supervise(
            registry,
            cfg.clone(),
            engine,
            reload_rx,
            subs_tx,
            quorum_tx,
        ));
        Ok(HealthChecks {
            reload,
            subs,
            quorum,
        })
    }

    /// A new configuration: checks added and removed (unchanged ones keep their state).
    pub fn reload(&self, cfg: &Config) {
        let _ = self.reload.send(cfg.clone());
    }

    /// Every checked real server's health as of now, in service then real-server order.
    pub fn status(&self) -> Vec<RealServerView> {
        let subs = self.subs.borrow().clone();
        let mut out: Vec<RealServerView> = Vec::new();
        let now_i = std::time::Instant::now();
        let now_w = std::time::SystemTime::now();
        for s in subs.iter() {
            let h = s.rx.borrow().clone();
            let check = CheckView {
                kind: s.spec.kind.name(),
                connect: s.spec.connect_addr(s.target),
                state: h.state,
                reason: h.last.as_ref().map(|o| o.reason.clone()),
                latency: h.last.as_ref().map(|o| o.latency),
                since: now_w - now_i.saturating_duration_since(h.since),
            };
            match out.last_mut() {
                Some(v) if v.service == s.service && v.dest == s.dest => v.checks.push(check),
                _ => out.push(RealServerView {
                    service: s.service,
                    dest: s.dest,
                    health: Health::Unknown,
                    checks: vec![check],
                }),
            }
        }
        for v in &mut out {
            v.health = combine(v.checks.iter().map(|c| c.state));
        }
        out
    }

    /// The effect each instance should carry for its services' quorums (by instance name).
    pub fn quorum_effects(&self) -> watch::Receiver<BTreeMap<String, QuorumEffect>> {
        self.quorum.clone()
    }
}

/// A real server's health from its checks' states.
pub fn combine(states: impl Iterator<Item = State>) -> Health {
    let mut all_up = true;
    for s in states {
        match s {
            State::Down => return Health::Down,
            State::Unknown => all_up = false,
            State::Up => {}
        }
    }
    if all_up {
        Health::Up
    } else {
        Health::Unknown
    }
}

/// Real servers with a weight above 0 in the kernel's table now, of the configured services: a
/// restarted director adopts them as up (keepalived #2064 starts everything up; we start only
/// these up, until `fall` failures). Empty when IPVS cannot be read (no module, no privilege).
async fn kernel_held(cfg: &Config) -> Adopted {
    let keys: HashSet<ServiceKey> = cfg.virtual_services.iter().map(|v| v.service.key).collect();
    let table = match ipvs::Worker::spawn("ipvs-health") {
        Ok(w) => w.snapshot().await,
        Err(e) => Err(e),
    };
    match table {
        Ok(t) => t
            .services
            .iter()
            .filter(|s| keys.contains(&s.service.key))
            .flat_map(|s| {
                s.destinations
                    .iter()
                    .filter(|d| d.weight > 0)
                    .map(move |d| (s.service.key, d.key()))
            })
            .collect(),
        Err(e) => {
            tracing::debug!(error = %e, "no IPVS table to adopt: every checked real server starts down");
            HashSet::new()
        }
    }
}

type Adopted = HashSet<(ServiceKey, DestKey)>;

fn subscribe(
    registry: &Registry,
    cfg: &Config,
    notify: &Arc<Notify>,
    adopted: &Adopted,
) -> Vec<Sub> {
    let mut out = Vec::new();
    for v in cfg.virtual_services.iter() {
        for r in &v.real_servers {
            for spec in &r.checks {
                let target = SocketAddr::new(r.dest.addr, r.dest.port);
                let start = if adopted.contains(&(v.service.key, r.dest.key())) {
                    Start::Adopted
                } else {
                    Start::Pessimistic
                };
                let rx = registry.subscribe_with(target, spec.clone(), start);
                let mut fwd = rx.clone();
                let n = Arc::clone(notify);
                let forward = tokio::spawn(async move {
                    while fwd.changed().await.is_ok() {
                        n.notify_one();
                    }
                });
                out.push(Sub {
                    service: v.service.key,
                    dest: r.dest.key(),
                    rx,
                    spec: Arc::new(spec.clone()),
                    target,
                    forward,
                });
            }
        }
    }
    out
}

/// The engine's view and each instance's quorum effect from the current states.
fn compute(
    cfg: &Config,
    subs: &[Sub],
    adopted: &Adopted,
) -> (HealthMap, BTreeMap<String, QuorumEffect>) {
    let mut states: HashMap<(ServiceKey, DestKey), Vec<State>> = HashMap::new();
    for s in subs {
        states
            .entry((s.service, s.dest))
            .or_default()
            .push(s.rx.borrow().state);
    }
    let mut map = HealthMap::default();
    for (svc, dest) in adopted {
        map.adopt(*svc, *dest);
    }
    let mut effects: BTreeMap<String, QuorumEffect> = BTreeMap::new();
    for v in cfg.virtual_services.iter() {
        let mut healthy: u64 = 0;
        for r in &v.real_servers {
            let h = match states.get(&(v.service.key, r.dest.key())) {
                _ if r.checks.is_empty() => Health::Up,
                Some(s) => combine(s.iter().copied()),
                None => Health::Unknown,
            };
            map.set(v.service.key, r.dest.key(), h);
            if h == Health::Up {
                healthy += u64::try_from(r.dest.weight).unwrap_or(0);
            }
        }
        let e = effects.entry(v.instance.clone()).or_default();
        if let Some(q) = &v.quorum {
            if healthy < q.min_weight {
                match q.on_lost {
                    QuorumDown::PriorityDecrease(n) => e.weight = e.weight.min(-i32::from(n)),
                    QuorumDown::Fault => {
                        let why = format!(
                            "quorum lost: {} has a healthy weight of {healthy}, needs {}",
                            v.service.key, q.min_weight
                        );
                        e.fault = Some(match e.fault.take() {
                            Some(f) => format!("{f}; {why}"),
                            None => why,
                        });
                    }
                }
            }
        }
    }
    (map, effects)
}

async fn supervise(
    registry: Registry,
    mut cfg: Config,
    engine: super::engine::EngineHandle,
    mut reload: mpsc::UnboundedReceiver<Config>,
    subs_tx: watch::Sender<Arc<Vec<Sub>>>,
    quorum_tx: watch::Sender<BTreeMap<String, QuorumEffect>>,
) {
    let notify = Arc::new(Notify::new());
    let adopted = kernel_held(&cfg).await;
    let mut subs = Arc::new(subscribe(&registry, &cfg, &notify, &adopted));
    subs_tx.send_replace(Arc::clone(&subs));
    let mut last: Option<HealthMap> = None;
    loop {
        let (map, effects) = compute(&cfg, &subs, &adopted);
        if last.as_ref() != Some(&map) {
            engine.health(Arc::new(map.clone()));
            last = Some(map);
        }
        quorum_tx.send_if_modified(|q| {
            if *q == effects {
                return false;
            }
            for (inst, e) in &effects {
                if q.get(inst).cloned().unwrap_or_default() != *e {
                    tracing::warn!(instance = %inst, external_weight = e.weight,
                        fault = e.fault.as_deref().unwrap_or(""), "quorum changed");
                }
            }
            *q = effects;
            true
        });
        tokio::select! {
            _ = notify.notified() => {}
            new = reload.recv() => match new {
                Some(new) => {
                    cfg = new;
                    // Subscribe the new set before dropping the old: unchanged checks keep
                    // their probe and state.
                    let fresh = Arc::new(subscribe(&registry, &cfg, &notify, &HashSet::new()));
                    subs_tx.send_replace(Arc::clone(&fresh));
                    subs = fresh;
                }
                None => return,
            },
        }
    }
}

/// Applies the quorum effects to the running instances (again after an instance restarts): the
/// weight, and the FAULT of `quorum_down: {fault: true}`.
pub async fn follow_quorum(
    mut effects: watch::Receiver<BTreeMap<String, QuorumEffect>>,
    running: Arc<Mutex<super::Running>>,
) {
    let mut applied: HashMap<String, (usize, QuorumEffect)> = HashMap::new();
    loop {
        {
            let all = effects.borrow_and_update().clone();
            let r = running.lock().await;
            for (name, handle) in r.handles() {
                let want = all.get(&name).cloned().unwrap_or_default();
                let id = Arc::as_ptr(&handle) as usize;
                let before = applied.get(&name).filter(|(i, _)| *i == id).map(|(_, e)| e);
                if before.map(|e| e.weight) != Some(want.weight) {
                    handle.set_external_weight(want.weight);
                }
                if before.map(|e| &e.fault) != Some(&want.fault) {
                    handle.set_external_fault(want.fault.clone());
                }
                applied.insert(name, (id, want));
            }
        }
        tokio::select! {
            c = effects.changed() => if c.is_err() { return },
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_server_is_up_only_when_every_check_is() {
        use State::{Down as D, Unknown as U, Up};
        assert_eq!(combine([].into_iter()), Health::Up, "no checks: up");
        assert_eq!(combine([Up, Up].into_iter()), Health::Up);
        assert_eq!(combine([Up, U].into_iter()), Health::Unknown);
        assert_eq!(combine([U, D, Up].into_iter()), Health::Down);
    }

    fn cfg(quorum: &str) -> Config {
        let text = format!(
            "instances:
  - {{name: web, interface: eth0, virtual_router_id: 51, virtual_ipaddress: [192.0.2.10]}}
virtual_servers:
  - instance: web
    address: 192.0.2.10
    port: 80
{quorum}    checks: [{{kind: tcp}}]
    real_servers:
      - {{address: 10.0.0.11, weight: 3}}
      - {{address: 10.0.0.12, weight: 2}}
      - {{address: 10.0.0.13, checks: []}}
"
        );
        crate::config::load::parse(std::path::Path::new("t.yaml"), text.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn sub(c: &Config, i: usize, state: State) -> (Sub, watch::Sender<health::Health>) {
        let v = &c.virtual_services[0];
        let r = &v.real_servers[i];
        let mut h = health::Health::new(Start::Pessimistic, std::time::Instant::now());
        h.state = state;
        let (tx, rx) = watch::channel(h);
        let spec = r
            .checks
            .first()
            .cloned()
            .unwrap_or_else(|| CheckSpec::new(health::CheckKind::Tcp));
        let s = Sub {
            service: v.service.key,
            dest: r.dest.key(),
            rx,
            spec: Arc::new(spec),
            target: SocketAddr::new(r.dest.addr, r.dest.port),
            forward: tokio::spawn(async {}),
        };
        (s, tx)
    }

    #[tokio::test]
    async fn quorum_counts_the_configured_weight_of_healthy_servers() {
        let c = cfg("    quorum: 4\n    quorum_down: {priority_decrease: 30}\n");
        let (a, _ta) = sub(&c, 0, State::Up);
        let (b, _tb) = sub(&c, 1, State::Down);
        let (map, w) = compute(&c, &[a, b], &HashSet::new());
        let key = c.virtual_services[0].service.key;
        let rs = |i: usize| c.virtual_services[0].real_servers[i].dest.key();
        use crate::desired::HealthView;
        assert_eq!(map.health(&key, &rs(0)), Health::Up);
        assert_eq!(map.health(&key, &rs(1)), Health::Down);
        assert_eq!(map.health(&key, &rs(2)), Health::Up, "no checks: up");
        // 3 (checked, up) + 1 (unchecked) = 4: quorum held.
        assert_eq!(w.get("web"), Some(&QuorumEffect::default()));
        let (a, _ta) = sub(&c, 0, State::Unknown);
        let (b, _tb) = sub(&c, 1, State::Up);
        let (_, w) = compute(&c, &[a, b], &HashSet::new());
        let lost = QuorumEffect {
            weight: -30,
            fault: None,
        };
        assert_eq!(w.get("web"), Some(&lost), "2 + 1 < 4: lost");
        let c = cfg("    quorum: 6\n    quorum_down: {fault: true}\n");
        let (a, _ta) = sub(&c, 0, State::Up);
        let (b, _tb) = sub(&c, 1, State::Up);
        let (_, w) = compute(&c, &[a, b], &HashSet::new());
        assert_eq!(
            w.get("web"),
            Some(&QuorumEffect::default()),
            "3 + 2 + 1 = 6"
        );
        let (a, _ta) = sub(&c, 0, State::Down);
        let (_, w) = compute(&c, &[a], &HashSet::new());
        // A true FAULT, the priority untouched.
        let fault = QuorumEffect {
            weight: 0,
            fault: Some("quorum lost: TCP 192.0.2.10:80 has a healthy weight of 1, needs 6".into()),
        };
        assert_eq!(w.get("web"), Some(&fault));
    }
}
