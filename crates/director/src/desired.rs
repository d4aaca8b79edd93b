//! The IPVS table this node wants while it is Master: configured services, with the weights that
//! health and operator drains decide. Plain data, no I/O (design.md: `desired` never imports
//! tokio, a socket or `ipvs::Conn`).
//!
//! ```text
//!   config services ─┐
//!   health view ─────┼─> build() ─> Desired ─> into_instances() ─> reconcile::diff
//!   operator drains ─┘
//! ```
//!
//! Rules applied by [`build`], per service, in this order:
//! 1. Health (issue 18): a real server counts as up only when its view says [`Health::Up`];
//!    [`Health::Unknown`] (no result yet) counts as down unless the view flags it as adopted
//!    (a restart found it already in the kernel: keepalived #2064 starts everything up, we do
//!    not). A down real server gets weight 0 ([`OnDown::Inhibit`], kept in the table so its
//!    established connections drain) or is left out ([`OnDown::Remove`]).
//! 2. Operator drains (`director drain SERVICE REALSERVER`): weight 0, whatever the health.
//! 3. Sorry server: when no real server is left with a weight above 0 (all down, drained or
//!    configured at 0), the service's sorry server is added with its configured weight. It is
//!    not health-checked; an operator drain of its key still applies.
//!
//! Duplicates (the config validator rejects them): the first service with a key wins, and within
//! a service the first real server with a key wins.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use ipvs::{DestKey, Destination, Service, ServiceKey};

/// One configured virtual service, as [`build`] reads it (the config's `VirtualService` maps to
/// it one to one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInput {
    /// The VRRP instance whose VIP gates this service.
    pub instance: String,
    /// The service's settings (key, scheduler, flags, persistence).
    pub service: Service,
    /// The configured real servers, with their configured weights.
    pub real_servers: Vec<Destination>,
    /// What a real server that is down gets.
    pub on_down: OnDown,
    /// The real server used while no configured one can take new connections.
    pub sorry_server: Option<Destination>,
}

impl ServiceInput {
    /// A configured virtual service as [`build`] reads it.
    pub fn of(v: &crate::config::VirtualService) -> Self {
        let mut input = ServiceInput::new(
            v.instance.clone(),
            v.service.clone(),
            v.real_servers.iter().map(|r| r.dest.clone()).collect(),
        );
        input.on_down = v.on_down;
        input.sorry_server = v.sorry_server.clone();
        input
    }

    /// A service with the defaults: [`OnDown::Inhibit`], no sorry server.
    pub fn new(
        instance: impl Into<String>,
        service: Service,
        real_servers: Vec<Destination>,
    ) -> Self {
        ServiceInput {
            instance: instance.into(),
            service,
            real_servers,
            on_down: OnDown::default(),
            sorry_server: None,
        }
    }
}

/// What a real server that is not up gets (issue 18, per service).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnDown {
    /// Weight 0, kept in the table: no new connections, established ones continue (keepalived's
    /// `inhibit_on_failure`). Our default: a flapping check then costs no delete + re-add.
    #[default]
    Inhibit,
    /// Left out of the table (keepalived's default).
    Remove,
}

/// The health of one real server of one service, as the checks last decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Its checks pass (or it has none).
    Up,
    /// Its checks fail.
    Down,
    /// No result yet (start, or a check just added).
    Unknown,
}

/// Where [`build`] reads health from. A real server without any check configured must be
/// reported [`Health::Up`] by the implementation.
pub trait HealthView {
    /// The health of real server `dest` of service `service`.
    fn health(&self, service: &ServiceKey, dest: &DestKey) -> Health;

    /// True when `dest` of `service` was found in the kernel at start (adopted): its
    /// [`Health::Unknown`] then counts as up until a check decides.
    fn adopted(&self, _service: &ServiceKey, _dest: &DestKey) -> bool {
        false
    }
}

/// Every real server up: for `director plan` and for configurations without checks.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllUp;

impl HealthView for AllUp {
    fn health(&self, _service: &ServiceKey, _dest: &DestKey) -> Health {
        Health::Up
    }
}

/// A health view held as a map: anything not set is [`Health::Unknown`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthMap {
    states: HashMap<(ServiceKey, DestKey), Health>,
    adopted: HashSet<(ServiceKey, DestKey)>,
}

impl HealthMap {
    /// Records the health of `dest` in `service`.
    pub fn set(&mut self, service: ServiceKey, dest: DestKey, health: Health) {
        self.states.insert((service, dest), health);
    }

    /// Flags `dest` in `service` as adopted from the kernel at start.
    pub fn adopt(&mut self, service: ServiceKey, dest: DestKey) {
        self.adopted.insert((service, dest));
    }
}

impl HealthView for HealthMap {
    fn health(&self, service: &ServiceKey, dest: &DestKey) -> Health {
        self.states
            .get(&(*service, *dest))
            .copied()
            .unwrap_or(Health::Unknown)
    }

    fn adopted(&self, service: &ServiceKey, dest: &DestKey) -> bool {
        self.adopted.contains(&(*service, *dest))
    }
}

/// Operator drains (`director drain` / `undrain`): real servers forced to weight 0 until
/// undrained, across reloads and restarts (the daemon persists this set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    drained: BTreeSet<(ServiceKey, DestKey)>,
}

impl Overrides {
    /// Drains `dest` of `service`; false when it was already drained.
    pub fn drain(&mut self, service: ServiceKey, dest: DestKey) -> bool {
        self.drained.insert((service, dest))
    }

    /// Undrains `dest` of `service`; false when it was not drained.
    pub fn undrain(&mut self, service: &ServiceKey, dest: &DestKey) -> bool {
        self.drained.remove(&(*service, *dest))
    }

    /// True when `dest` of `service` is drained.
    pub fn is_drained(&self, service: &ServiceKey, dest: &DestKey) -> bool {
        self.drained.contains(&(*service, *dest))
    }
}

/// Why a desired real server has the weight it has (for `director status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightReason {
    /// The configured weight.
    Configured,
    /// Weight 0: down, and its service inhibits.
    Inhibited,
    /// Weight 0: drained by the operator.
    OperatorDrain,
    /// The sorry server, in use because no configured real server takes new connections.
    Sorry,
}

/// One real server as this node wants it in the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredDest {
    /// What the kernel should hold (weight already decided).
    pub dest: Destination,
    /// The weight the configuration gives it.
    pub configured_weight: i32,
    /// Why `dest.weight` is what it is.
    pub reason: WeightReason,
}

/// One service as this node wants it in the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredService {
    /// The VRRP instance whose VIP gates it.
    pub instance: String,
    /// Its settings.
    pub service: Service,
    /// Its real servers, by key.
    pub dests: BTreeMap<DestKey, DesiredDest>,
}

/// The table this node wants as Master, by service key (ordered, so plans are deterministic).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    services: BTreeMap<ServiceKey, DesiredService>,
}

impl Desired {
    /// The service with this key.
    pub fn get(&self, key: &ServiceKey) -> Option<&DesiredService> {
        self.services.get(key)
    }

    /// True when a service has this key.
    pub fn contains(&self, key: &ServiceKey) -> bool {
        self.services.contains_key(key)
    }

    /// Every service, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&ServiceKey, &DesiredService)> {
        self.services.iter()
    }

    /// Every service key, in order.
    pub fn keys(&self) -> impl Iterator<Item = &ServiceKey> {
        self.services.keys()
    }

    #[cfg(test)]
    /// The number of services.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    /// True when no service is desired.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// The table split by the instance whose VIP gates each service, moving every service into
    /// its instance's table (no copy: at 10,000 x 10 a table is ~19 MB, and the engine rebuilds
    /// it on every configuration, drain or health change).
    pub fn into_instances(self) -> HashMap<String, Desired> {
        let mut out: HashMap<String, Desired> = HashMap::new();
        for (k, s) in self.services {
            out.entry(s.instance.clone())
                .or_default()
                .services
                .insert(k, s);
        }
        out
    }

    #[cfg(test)]
    /// Adds a service with these real servers as given (no health, no drains): for tests and
    /// for callers that already decided the weights.
    pub fn insert(&mut self, instance: &str, service: Service, dests: Vec<Destination>) {
        let mut map = BTreeMap::new();
        for d in dests {
            map.entry(d.key()).or_insert(DesiredDest {
                configured_weight: d.weight,
                reason: WeightReason::Configured,
                dest: d,
            });
        }
        self.services.insert(
            service.key,
            DesiredService {
                instance: instance.to_string(),
                service,
                dests: map,
            },
        );
    }
}

/// The desired table for every configured service (all instances; filter with
/// [`Desired::into_instances`]), following the rules in the module doc.
pub fn build(services: &[ServiceInput], overrides: &Overrides, health: &dyn HealthView) -> Desired {
    let mut out = BTreeMap::new();
    for input in services {
        let key = input.service.key;
        if out.contains_key(&key) {
            continue;
        }
        out.insert(key, build_service(input, overrides, health));
    }
    Desired { services: out }
}

fn build_service(
    input: &ServiceInput,
    overrides: &Overrides,
    health: &dyn HealthView,
) -> DesiredService {
    let svc = input.service.key;
    let mut dests = BTreeMap::new();
    for rs in &input.real_servers {
        let key = rs.key();
        if dests.contains_key(&key) {
            continue;
        }
        let up = match health.health(&svc, &key) {
            Health::Up => true,
            Health::Down => false,
            Health::Unknown => health.adopted(&svc, &key),
        };
        let mut dest = rs.clone();
        let mut reason = WeightReason::Configured;
        if !up {
            match input.on_down {
                OnDown::Remove => continue,
                OnDown::Inhibit => {
                    dest.weight = 0;
                    reason = WeightReason::Inhibited;
                }
            }
        }
        if overrides.is_drained(&svc, &key) {
            dest.weight = 0;
            reason = WeightReason::OperatorDrain;
        }
        dests.insert(
            key,
            DesiredDest {
                dest,
                configured_weight: rs.weight,
                reason,
            },
        );
    }
    let serving = dests.values().any(|d| d.dest.weight > 0);
    if let (false, Some(sorry)) = (serving, &input.sorry_server) {
        let key = sorry.key();
        let mut dest = sorry.clone();
        if overrides.is_drained(&svc, &key) {
            dest.weight = 0;
        }
        dests.insert(
            key,
            DesiredDest {
                dest,
                configured_weight: sorry.weight,
                reason: WeightReason::Sorry,
            },
        );
    }
    DesiredService {
        instance: input.instance.clone(),
        service: input.service.clone(),
        dests,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ipvs::{Forwarding, Protocol, Scheduler};

    fn svc(port: u16) -> Service {
        Service::new(
            ServiceKey::Inet {
                protocol: Protocol::Tcp,
                addr: "192.0.2.10".parse().unwrap(),
                port,
            },
            Scheduler::Wlc,
        )
    }

    fn rs(last: u8, weight: i32) -> Destination {
        let mut d = Destination::new(
            format!("10.0.0.{last}").parse().unwrap(),
            80,
            Forwarding::DirectRoute,
        );
        d.weight = weight;
        d
    }

    fn weights(d: &Desired, port: u16) -> Vec<(u8, i32, WeightReason)> {
        d.get(&svc(port).key)
            .unwrap()
            .dests
            .values()
            .map(|x| match x.dest.addr {
                std::net::IpAddr::V4(a) => (a.octets()[3], x.dest.weight, x.reason),
                std::net::IpAddr::V6(_) => (0, x.dest.weight, x.reason),
            })
            .collect()
    }

    #[test]
    fn all_up_keeps_configured_weights() {
        let input = [ServiceInput::new("vi_1", svc(80), vec![rs(1, 3), rs(2, 5)])];
        let d = build(&input, &Overrides::default(), &AllUp);
        assert_eq!(
            weights(&d, 80),
            [
                (1, 3, WeightReason::Configured),
                (2, 5, WeightReason::Configured)
            ]
        );
        assert_eq!(d.get(&svc(80).key).unwrap().instance, "vi_1");
    }

    #[test]
    fn unknown_is_down_unless_adopted_and_inhibit_or_remove_applies() {
        let k = svc(80).key;
        let mut h = HealthMap::default();
        h.set(k, rs(1, 1).key(), Health::Up);
        h.set(k, rs(2, 1).key(), Health::Down);
        h.adopt(k, rs(3, 1).key());
        // rs 4: unknown, not adopted.
        let mut input = ServiceInput::new("vi_1", svc(80), (1..=4).map(|i| rs(i, 2)).collect());
        let d = build(&[input.clone()], &Overrides::default(), &h);
        assert_eq!(
            weights(&d, 80),
            [
                (1, 2, WeightReason::Configured),
                (2, 0, WeightReason::Inhibited),
                (3, 2, WeightReason::Configured),
                (4, 0, WeightReason::Inhibited)
            ]
        );
        input.on_down = OnDown::Remove;
        let d = build(&[input], &Overrides::default(), &h);
        assert_eq!(
            weights(&d, 80),
            [
                (1, 2, WeightReason::Configured),
                (3, 2, WeightReason::Configured)
            ]
        );
    }

    #[test]
    fn operator_drain_forces_weight_zero_and_keeps_configured_weight() {
        let k = svc(80).key;
        let mut o = Overrides::default();
        assert!(o.drain(k, rs(2, 1).key()));
        assert!(!o.drain(k, rs(2, 1).key()));
        let input = [ServiceInput::new("vi_1", svc(80), vec![rs(1, 3), rs(2, 5)])];
        let d = build(&input, &o, &AllUp);
        assert_eq!(
            weights(&d, 80),
            [
                (1, 3, WeightReason::Configured),
                (2, 0, WeightReason::OperatorDrain)
            ]
        );
        let dd = &d.get(&k).unwrap().dests[&rs(2, 1).key()];
        assert_eq!(dd.configured_weight, 5);
        assert!(o.undrain(&k, &rs(2, 1).key()));
        assert!(!o.is_drained(&k, &rs(2, 1).key()));
    }

    #[test]
    fn sorry_server_only_while_nothing_serves() {
        let k = svc(80).key;
        let mut input = ServiceInput::new("vi_1", svc(80), vec![rs(1, 3), rs(2, 5)]);
        input.sorry_server = Some(rs(9, 1));
        let mut h = HealthMap::default();
        h.set(k, rs(1, 1).key(), Health::Down);
        h.set(k, rs(2, 1).key(), Health::Up);
        let d = build(&[input.clone()], &Overrides::default(), &h);
        assert_eq!(
            weights(&d, 80).len(),
            2,
            "one real server up: no sorry server"
        );
        h.set(k, rs(2, 1).key(), Health::Down);
        let d = build(&[input.clone()], &Overrides::default(), &h);
        assert_eq!(
            weights(&d, 80),
            [
                (1, 0, WeightReason::Inhibited),
                (2, 0, WeightReason::Inhibited),
                (9, 1, WeightReason::Sorry)
            ]
        );
        // All up but all drained by the operator: the sorry server serves too.
        let mut o = Overrides::default();
        o.drain(k, rs(1, 1).key());
        o.drain(k, rs(2, 1).key());
        let d = build(&[input], &o, &AllUp);
        assert_eq!(weights(&d, 80)[2], (9, 1, WeightReason::Sorry));
    }

    #[test]
    fn per_instance_filtering_and_first_duplicate_wins() {
        let input = [
            ServiceInput::new("a", svc(80), vec![rs(1, 1), rs(1, 7)]),
            ServiceInput::new("b", svc(443), vec![rs(2, 1)]),
            ServiceInput::new("b", svc(80), vec![rs(3, 1)]),
        ];
        let d = build(&input, &Overrides::default(), &AllUp);
        assert_eq!(d.len(), 2);
        assert_eq!(weights(&d, 80), [(1, 1, WeightReason::Configured)]);
        let mut split = d.into_instances();
        assert_eq!(split.len(), 2);
        let only_b = split.remove("b").unwrap_or_default();
        assert_eq!(only_b.keys().copied().collect::<Vec<_>>(), [svc(443).key]);
        let only_a = split.remove("a").unwrap_or_default();
        assert_eq!(only_a.keys().copied().collect::<Vec<_>>(), [svc(80).key]);
        assert_eq!(
            only_a.len() + only_b.len(),
            2,
            "every service in exactly one table"
        );
    }
}
