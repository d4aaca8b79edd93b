//! The parts a [`super::Driver`] is made of, one concern each (holo-vrrp's
//! `Instance { config, state, net }` cut, made finer): the configuration and the pure state
//! machine stay on the driver itself; what it holds on the interface ([`Attachment`]), the VIPs
//! and their announcement ([`Vips`]), the tracking inputs ([`Tracking`]), the notify queue
//! ([`Notifier`]), role-driven ownership and the takeover barrier ([`Ownership`]) and everything
//! published to the owner ([`Outputs`]) live here. Each is built by one step of
//! [`super::Driver::open`].

use std::time::SystemTime;

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::open::Attached;
use super::takeover::Pending;
use crate::fsm::State;
use crate::net::vip::LinkMonitor;
use crate::runner::effects::{AttachBackoff, GarpSchedule, NotifyJob, VipReconciler};
use crate::runner::{
    InstanceEvent, InstanceStatus, Role, TakeoverGate, TransitionInfo, TransitionReason,
};
use crate::track::CheckState;

/// What the instance holds on its interface, and why it holds nothing.
pub(super) struct Attachment {
    /// The interface, source address and sockets; `None` while the interface (or its address)
    /// is missing: the instance is in FAULT then.
    pub(super) att: Option<Attached>,
    /// Why `att` is `None` (`interface eth1 not found`, `no IPv4 address on eth0`, ...).
    pub(super) fault: Option<String>,
    /// When to try attaching again (100 ms doubling to 2 s; link / address events try at once).
    pub(super) retry: AttachBackoff,
    /// The instance's own interface is up (IFF_UP as the link monitor last reported it); down
    /// puts the instance in FAULT (`Event::InterfaceDown`).
    pub(super) own_up: bool,
}

/// The VIPs: the wanted state and its retries, and the gratuitous ARP / NA schedule that
/// announces them while held.
pub(super) struct Vips {
    /// Wanted on the interface or not, whether the last attempt settled it, and the backoff of
    /// the next retry.
    pub(super) reconciler: VipReconciler,
    /// The burst after taking the VIPs (`garp.repeat` x `garp.interval`) and the periodic
    /// refresh (`garp.refresh`).
    pub(super) garp: GarpSchedule,
}

/// One tracked interface (`track_interfaces`): its weight and its last known link state.
pub(super) struct TrackedLink {
    /// The interface name as configured.
    pub(super) name: String,
    /// Its ifindex while it exists (`None`: not there, counted as down).
    pub(super) index: Option<u32>,
    /// Added to the priority while up (0: a FAULT while down), as configured.
    pub(super) weight: i32,
    /// IFF_UP as last reported.
    pub(super) up: bool,
}

/// The tracking inputs that make the effective priority or a FAULT (`track::verdict`).
pub(super) struct Tracking {
    /// Link and address events of the host (own interface and tracked links); `None` once it
    /// has ended (logged).
    pub(super) monitor: Option<LinkMonitor>,
    /// Tracked interfaces, in configuration order.
    pub(super) links: Vec<TrackedLink>,
    /// The last state of each configured check, in configuration order.
    pub(super) checks: Vec<CheckState>,
    /// The check tasks and their forwarders (aborted on stop or when the checks change).
    pub(super) tasks: Vec<JoinHandle<()>>,
    /// `(check index, new state)` from the forwarders.
    pub(super) rx: mpsc::UnboundedReceiver<(usize, CheckState)>,
    /// The owner's weight (`InstanceHandle::set_external_weight`), added to the priority.
    pub(super) external_weight: i32,
    /// The owner's fault (`InstanceHandle::set_external_fault`): FAULT while set.
    pub(super) external_fault: Option<String>,
    /// The tracking FAULT reason while the verdict is a FAULT.
    pub(super) fault: Option<String>,
}

/// The serial notify queue: commands run one at a time by a task, failures reported back.
pub(super) struct Notifier {
    /// Jobs to the notify task; `None` once stopping (the task drains and ends).
    pub(super) tx: Option<mpsc::UnboundedSender<NotifyJob>>,
    /// The notify task, awaited (with a timeout) on stop.
    pub(super) task: Option<JoinHandle<()>>,
    /// One message per command that failed to start or exited non-zero (`notify_failures`).
    pub(super) failures: mpsc::UnboundedReceiver<String>,
}

/// Who decides Master: VRRP, or the owner (role `external`, claim / release); and the owner's
/// takeover barrier.
pub(super) struct Ownership {
    /// The published state of a role-driven instance (`None`: VRRP decides).
    pub(super) external: Option<State>,
    /// The owner's takeover barrier, when it asked for one at start.
    pub(super) gate: Option<TakeoverGate>,
    /// A takeover waiting for the owner (Master, VIPs not added yet).
    pub(super) pending: Option<Pending>,
    /// Set while executing a batch of actions that entered Master under a gate: the request
    /// goes out once the batch (with its transition) is done.
    pub(super) begin: bool,
}

/// Everything published about the instance, and the time origin its timestamps count from.
pub(super) struct Outputs {
    /// Transitions and VIP failures (lossy for slow readers).
    pub(super) events: broadcast::Sender<InstanceEvent>,
    /// The status (every change, counters included).
    pub(super) status: watch::Sender<InstanceStatus>,
    /// The role (changes only with state / VIPs held / reason).
    pub(super) role: watch::Sender<Role>,
    /// When the published state was entered (the role's `since`).
    pub(super) role_since: SystemTime,
    /// Why the published state was entered (the role's `reason`).
    pub(super) role_reason: TransitionReason,
    /// The last transition, as the status shows it.
    pub(super) last_transition: Option<TransitionInfo>,
    /// The monotonic instant the state machine's [`crate::time::Timestamp`]s count from.
    pub(super) origin: Instant,
    /// The wall clock at `origin` (a transition's `at` = `origin_wall` + its timestamp).
    pub(super) origin_wall: SystemTime,
}
