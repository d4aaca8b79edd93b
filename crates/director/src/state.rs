//! What the daemon knows about the IPVS side, typed and in one place: per instance, whether its
//! services are programmed, the last reconcile and its outcome, the drift repairs, and per real
//! server the configured, applied and drained weight. The engine is its only writer (it
//! publishes a new value on a `watch` after every change); the status socket, and later metrics
//! and `director top`, only read it.
//!
//! Plain data, no I/O.

use std::time::{Duration, SystemTime};

use ipvs::{DestKey, ServiceKey};

/// The IPVS side of every instance, in configuration order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpvsState {
    /// One entry per instance that gates virtual services.
    pub instances: Vec<InstanceIpvs>,
    /// The last failure to talk to the kernel's IPVS at all (no module, no permission), if any.
    pub unavailable: Option<String>,
}

impl IpvsState {
    /// The entry of `instance`, if it gates services.
    pub fn instance(&self, instance: &str) -> Option<&InstanceIpvs> {
        self.instances.iter().find(|i| i.instance == instance)
    }
}

/// Where an instance's services stand on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// Not Master: nothing of this instance's is in the kernel (withdrawn or never programmed).
    Withdrawn,
    /// Becoming Master: the services are being programmed; the VIP waits for it.
    Programming,
    /// Master: the kernel holds the services as desired (as of the last reconcile).
    Programmed,
    /// Leaving Master: the VIP is gone, the services are being removed.
    Withdrawing,
    /// No VRRP decision yet (just started): nothing is programmed or withdrawn before it.
    Waiting,
}

impl Ownership {
    /// The word `director status` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Ownership::Withdrawn => "withdrawn",
            Ownership::Programming => "programming",
            Ownership::Programmed => "programmed",
            Ownership::Withdrawing => "withdrawing",
            Ownership::Waiting => "waiting",
        }
    }
}

/// Why a reconcile ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// This node became Master (program before the VIP goes up).
    Takeover,
    /// The periodic verification while Master.
    Drift,
    /// A reload changed the services.
    Reload,
    /// An operator drained or undrained a real server.
    Drain,
    /// A real server's health changed (issue 18).
    Health,
    /// A retry after a failure.
    Retry,
    /// This node left Master (remove what we own after the VIP is gone).
    Withdraw,
}

impl Trigger {
    /// The word `director status` and the logs show.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Takeover => "takeover",
            Trigger::Drift => "drift",
            Trigger::Reload => "reload",
            Trigger::Drain => "drain",
            Trigger::Health => "health",
            Trigger::Retry => "retry",
            Trigger::Withdraw => "withdraw",
        }
    }
}

/// One reconcile: what triggered it, what it sent, how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconcile {
    /// When it started (wall clock).
    pub at: SystemTime,
    /// How long reading, diffing and applying took.
    pub took: Duration,
    /// Why it ran.
    pub trigger: Trigger,
    /// Operations sent to the kernel (0: the kernel already matched).
    pub ops: usize,
    /// `None` when every operation succeeded; else what failed (the first failure, with the
    /// object and the errno, and how many failed).
    pub error: Option<String>,
}

/// The IPVS side of one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceIpvs {
    /// The instance's name.
    pub instance: String,
    /// Where its services stand.
    pub programming: Ownership,
    /// The last reconcile, if any.
    pub last: Option<Reconcile>,
    /// The last takeover's reconcile (programming before the VIP went up), if any.
    pub last_takeover: Option<Reconcile>,
    /// Reconciles whose verification found the kernel changed behind our back (someone ran
    /// ipvsadm) and repaired it.
    pub drift_repairs: u64,
    /// Operations those repairs sent.
    pub drift_ops: u64,
    /// Reconciles that failed transiently (ENOMEM, EBUSY, a lost ack, a socket error) and
    /// were retried with backoff.
    pub retries: u64,
    /// Reconciles the kernel refused for good (an operation it will refuse again).
    pub failures: u64,
    /// Its services, in configuration order.
    pub services: Vec<ServiceState>,
}

/// One virtual service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceState {
    /// The service's key.
    pub key: ServiceKey,
    /// Its scheduler's name.
    pub scheduler: String,
    /// Its real servers, in configuration order, then those still draining out.
    pub real_servers: Vec<RealServerState>,
}

/// One real server of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServerState {
    /// Its key within the service.
    pub key: DestKey,
    /// The weight the configuration gives it (`None`: removed from the configuration, draining
    /// out until its connections end or the drain timeout passes).
    pub configured_weight: Option<i32>,
    /// The weight this node wants in the kernel now (0 when drained or inhibited by health).
    pub desired_weight: i32,
    /// The weight the kernel held at the last reconcile (`None`: not in the kernel, e.g. not
    /// Master).
    pub applied_weight: Option<i32>,
    /// Drained by an operator (`director drain`).
    pub drained: bool,
    /// Active connections at the last reconcile.
    pub active_conns: u32,
}
