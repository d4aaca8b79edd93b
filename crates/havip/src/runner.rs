//! The runner: one VRRP instance, the one place where the pure state machine meets sockets,
//! timers, netlink and tracking.
//!
//! ```text
//!   InstanceHandle ──cmd (mpsc)──────────────┐
//!   (set_external_weight / _fault, claim,    │
//!    release, update, shutdown)              ▼
//!   receiver (one socket per      ┌───────────────────────┐ ──► VrrpSocket.send_to (adverts)
//!   interface) ──by VRID────────► │   driver task         │
//!   (decode / drop by reason)     │                       │ ──► Netlink add/remove VIP
//!   check tasks ──CheckState──┐   │   fsm::Instance       │       (retry with backoff)
//!   LinkMonitor ──LinkEvent───┴─► │   .handle(ev, now)    │ ──► Announcer (GARP / NA bursts)
//!      (track mpsc)               │   sleep_until(next_   │ ──► notify task (mpsc, serial)
//!                                 │     deadline)         │
//!                                 └──────────────────────┘
//!                                    │ status (watch)    │ events (broadcast)  │ role (watch)
//!                                    ▼                   ▼                     ▼
//!                               InstanceStatus      InstanceEvent          Role (owner: gating)
//!                                              TakeoverRequest (mpsc, optional) ──► owner
//! ```
//!
//! Three outputs, three uses: the status (every change, counters included: `director status`),
//! the events stream (transitions and VIP failures for logs; a slow reader may lag and miss
//! some), and the [`Role`] (level-triggered, changes only with state / VIPs held / reason: what
//! an owner gates work on). With a [`TakeoverGate`] ([`start_with`]) the VIPs go up on a
//! takeover only after the owner answers (or a timeout), see [`role`].
//!
//! Every failure inside the loop (a send, a netlink request, a notify command) is logged with
//! `tracing`, counted in [`Counters`] and retried where it matters (VIPs, with backoff); none ends
//! the task. A missing interface or source address is a FAULT with a reason, not an error: the
//! driver attaches when link / address events (or a retry with backoff) find it. On every exit
//! path (shutdown, handle dropped) the VIPs are removed. An instance that is not Master makes
//! sure its VIPs are not on the interface (at start, on attach, on entering Backup or FAULT), so
//! a process restarted after a SIGKILL does not keep the VIP its peer has taken over.

mod driver;
mod effects;
mod receiver;
pub mod role;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::SystemTime;

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::config::{ConfigField, InstanceConfig, Vip};
use crate::fsm::State;
use crate::net::NetError;
pub use role::{
    Role, StartOptions, TakeoverGate, TakeoverRequest, TransitionReason, DEFAULT_TAKEOVER_TIMEOUT,
};

/// Why an instance could not start, or a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration cannot run (no VIP, mixed families, v2 over IPv6, ...).
    #[error("instance {instance}: {detail}")]
    Config {
        /// The instance's name (`InstanceConfig::name`).
        instance: String,
        /// What is wrong, in the operator's words (`no virtual address configured`, ...).
        detail: String,
    },
    /// A netlink socket could not be opened at all (a missing interface or address, or a
    /// failing socket call or netlink request on the interface, is not an error: the instance
    /// starts in FAULT and retries).
    #[error("instance {instance}: {source}")]
    Net {
        /// The instance's name (`InstanceConfig::name`).
        instance: String,
        /// The failed socket or netlink call.
        #[source]
        source: NetError,
    },
    /// `claim`/`release` on an instance that VRRP drives.
    #[error("instance {0} is VRRP-driven: claim/release need role external")]
    NotExternal(String),
    /// The fence command failed, so the VIP was not taken.
    #[error("instance {instance}: fence command failed: {detail}")]
    FenceFailed {
        /// The instance's name (`InstanceConfig::name`).
        instance: String,
        /// Exit status or spawn error.
        detail: String,
    },
    /// `claim` while the instance is in FAULT (its interface or address is missing).
    #[error("instance {instance} is in FAULT: {reason}")]
    Fault {
        /// The instance's name (`InstanceConfig::name`).
        instance: String,
        /// Why (the status' fault reason).
        reason: String,
    },
    /// The instance's task has ended.
    #[error("instance {0} is not running")]
    Stopped(String),
    /// [`InstanceHandle::update`] with a change to the instance's VRRP identity (or to a setting
    /// that is only read at start): stop it and start it with the new configuration instead.
    #[error("instance {instance}: {} cannot change in place: restart the instance", fields_list(.fields))]
    RestartNeeded {
        /// The instance's name (`InstanceConfig::name`).
        instance: String,
        /// Every changed field that needs a restart (never empty).
        fields: Vec<ConfigField>,
    },
}

fn fields_list(fields: &[ConfigField]) -> String {
    fields
        .iter()
        .map(|f| f.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A state change as published on the events stream and in the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionInfo {
    /// The state before the transition.
    pub from: State,
    /// The state after it (also the status' `state` for a VRRP-driven instance).
    pub to: State,
    /// Why: the state machine's reason (RFC 9568 - Section 6.4) or the owner's decision; its
    /// `Display` is the operator's wording (`higher priority advert from 10.0.0.2`, ...).
    pub reason: TransitionReason,
    /// When (wall clock).
    pub at: SystemTime,
}

/// Counters of one instance (monotonic since start).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Adverts received that passed every check.
    pub adverts_rx: u64,
    /// Adverts sent (one per destination).
    pub adverts_tx: u64,
    /// Datagrams dropped, by reason label (`DropReason::label`, `IpHeaderError::label`).
    pub drops: BTreeMap<&'static str, u64>,
    /// Failed advert sends.
    pub send_failures: u64,
    /// Failed socket receives.
    pub recv_failures: u64,
    /// Failed VIP adds (each attempt).
    pub vip_add_failures: u64,
    /// Failed VIP removes (each attempt).
    pub vip_remove_failures: u64,
    /// Gratuitous ARPs and unsolicited NAs sent.
    pub garp_sent: u64,
    /// Failed GARP/NA sends.
    pub garp_failures: u64,
    /// Notify commands that failed to start or exited non-zero.
    pub notify_failures: u64,
    /// Failed attempts to attach to the interface (missing interface or address, failed socket
    /// call); each is retried.
    pub attach_failures: u64,
}

/// A snapshot of one instance, published on a watch channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceStatus {
    /// The instance's name (`InstanceConfig::name`).
    pub name: String,
    /// The current state.
    pub state: State,
    /// The configured VIPs.
    pub vips: Vec<Vip>,
    /// Whether the VIPs are on the interface now (all of them).
    pub vips_held: bool,
    /// The current master's address, as far as this node knows (its own when Master).
    pub master: Option<IpAddr>,
    /// The priority advertised now (configured + tracking weights).
    pub effective_priority: u8,
    /// Why the instance is in FAULT, when it is.
    pub fault_reason: Option<String>,
    /// The last state change.
    pub last_transition: Option<TransitionInfo>,
    /// Counters.
    pub counters: Counters,
}

/// What the events stream carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceEvent {
    /// The instance changed state.
    Transition {
        /// The instance's name (`InstanceConfig::name`).
        instance: String,
        /// From which state to which, why, and when (the same value as the status'
        /// `last_transition`).
        transition: TransitionInfo,
    },
    /// A VIP could not be added or removed (it is retried with backoff).
    VipFailure {
        /// The instance's name (`InstanceConfig::name`).
        instance: String,
        /// The VIP whose add (entering Master) or remove (leaving it) failed.
        vip: Vip,
        /// The netlink error as the kernel reported it (e.g. `File exists`).
        detail: String,
    },
    /// The instance has stopped; its VIPs are removed.
    Stopped {
        /// The instance's name (`InstanceConfig::name`).
        instance: String,
    },
}

enum Command {
    ExternalWeight(i32),
    ExternalFault(Option<String>),
    Claim(oneshot::Sender<Result<(), Error>>),
    Release(oneshot::Sender<Result<(), Error>>),
    Update(Box<InstanceConfig>, oneshot::Sender<Result<(), Error>>),
    Shutdown,
}

/// The handle of a running instance. Clones share the instance: any of them may command it;
/// it resigns and stops on [`InstanceHandle::shutdown`] from any clone, or when the last clone
/// is dropped.
#[derive(Debug, Clone)]
pub struct InstanceHandle {
    name: String,
    cmd: mpsc::UnboundedSender<Command>,
    status: watch::Receiver<InstanceStatus>,
    role: watch::Receiver<Role>,
    events: broadcast::Sender<InstanceEvent>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::ExternalWeight(w) => write!(f, "ExternalWeight({w})"),
            Command::ExternalFault(r) => write!(f, "ExternalFault({r:?})"),
            Command::Claim(_) => write!(f, "Claim"),
            Command::Release(_) => write!(f, "Release"),
            Command::Update(..) => write!(f, "Update"),
            Command::Shutdown => write!(f, "Shutdown"),
        }
    }
}

/// Starts an instance on the current tokio runtime, in the calling thread's network namespace:
/// looks the interface up, opens the VRRP socket, the netlink connections and the GARP socket,
/// starts the checks, and sends the state machine its Startup event.
///
/// Only a configuration that can never run is refused ([`Error::Config`]). When the interface
/// or its source address is not there yet (a NIC that appears late, an IPv6 link-local address
/// right after link up) or a socket call on it fails, the instance starts in FAULT with the
/// reason in [`InstanceStatus::fault_reason`] (`interface eth1 not found`, `no IPv4 address on
/// eth0`) and attaches by itself when it can: at once on a link or address event, else retried
/// with backoff (100 ms doubling to 2 s).
///
/// RFC 9568 - Section 6.4.1 (paraphrased): a non-owner starts as Backup and waits
/// Master_Down_Interval before becoming Master; an address owner (priority 255) becomes Master
/// at once.
pub async fn start(cfg: InstanceConfig) -> Result<InstanceHandle, Error> {
    start_with(cfg, StartOptions::default()).await
}

/// [`start`] with options: `opts.takeover` makes every VRRP takeover wait for the owner before
/// the VIPs go up (see [`TakeoverGate`]). With `StartOptions::default()` this is [`start`].
pub async fn start_with(cfg: InstanceConfig, opts: StartOptions) -> Result<InstanceHandle, Error> {
    let name = cfg.name.clone();
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (events_tx, _) = broadcast::channel(256);
    let driver = driver::Driver::open(cfg, opts, cmd_rx, events_tx.clone()).await?;
    let status = driver.status_receiver();
    let role = driver.role_receiver();
    // The task is detached: it ends on Shutdown or when every handle is gone, and the end is
    // seen as the status channel closing.
    drop(tokio::spawn(driver.run()));
    Ok(InstanceHandle {
        name,
        cmd: cmd_tx,
        status,
        role,
        events: events_tx,
    })
}

impl InstanceHandle {
    /// The instance's name (`InstanceConfig::name`), as in logs, status and notify arguments.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A receiver of the instance's status (updated on every change).
    pub fn status(&self) -> watch::Receiver<InstanceStatus> {
        self.status.clone()
    }

    /// A receiver of the instance's events (state changes with reasons and timestamps). For
    /// logs: a reader more than 256 events behind misses some (`RecvError::Lagged`); gate work
    /// on [`InstanceHandle::role`] instead.
    pub fn events(&self) -> broadcast::Receiver<InstanceEvent> {
        self.events.subscribe()
    }

    /// A receiver of the instance's [`Role`]: level-triggered, it changes only when the state,
    /// `vips_held` or the reason changes (never on an advert or a counter), and always holds
    /// the latest value. It closes when the instance has stopped.
    pub fn role(&self) -> watch::Receiver<Role> {
        self.role.clone()
    }

    /// Applies `new` without leaving the current state, when it differs from the running
    /// configuration only in settings outside the VRRP identity: notify commands, GARP
    /// settings, tracked interfaces and checks (unchanged checks keep their state), and the
    /// priority of a non-owner (the new effective priority is advertised at once when Master,
    /// so a Backup may preempt). Anything else ([`InstanceConfig::restart_needed`]) is refused
    /// with [`Error::RestartNeeded`] and nothing is changed.
    pub async fn update(&self, new: InstanceConfig) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Command::Update(Box::new(new), tx))
            .map_err(|_| Error::Stopped(self.name.clone()))?;
        rx.await.map_err(|_| Error::Stopped(self.name.clone()))?
    }

    /// Sets the weight pushed by the owner of the instance (e.g. the director's real-server
    /// quorum), added to the priority like a check's weight; replaces the previous value.
    pub fn set_external_weight(&self, w: i32) {
        let _ = self.cmd.send(Command::ExternalWeight(w));
    }

    /// Holds the instance in FAULT for a reason of its owner's (e.g. the director's real-server
    /// quorum lost with `quorum_down: {fault: true}`), or releases it with `None`; replaces the
    /// previous value. The fault reaches the state machine as a tracked check's does
    /// (`fsm::Event::TrackFault`, then `TrackOk` once nothing else holds it): a Master resigns
    /// (priority-0 advert, VIPs removed), the status shows `reason` as its `fault_reason`.
    /// While the fault is set the priority is not advertised at all, unlike any weight. A
    /// role-driven instance (its owner claims and releases) ignores it.
    pub fn set_external_fault(&self, reason: Option<String>) {
        let _ = self.cmd.send(Command::ExternalFault(reason));
    }

    /// Role-driven mode: take the VIP now. The fence command (if any) runs first and must exit
    /// 0, or the VIP is not taken and [`Error::FenceFailed`] is returned.
    pub async fn claim(&self) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Command::Claim(tx))
            .map_err(|_| Error::Stopped(self.name.clone()))?;
        rx.await.map_err(|_| Error::Stopped(self.name.clone()))?
    }

    /// Role-driven mode: give the VIP up now.
    pub async fn release(&self) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Command::Release(tx))
            .map_err(|_| Error::Stopped(self.name.clone()))?;
        rx.await.map_err(|_| Error::Stopped(self.name.clone()))?
    }

    /// Resigns and stops: a Master sends a priority-0 advert (the backup takes over after
    /// Skew_Time), the VIPs are removed, the stop notify runs; returns when all is done (also
    /// when called on a clone, or when the instance had already stopped).
    pub async fn shutdown(self) {
        let _ = self.cmd.send(Command::Shutdown);
        let mut status = self.status;
        // The driver owns the only sender: the channel closes when its task has ended.
        while status.changed().await.is_ok() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Version;

    fn vip(s: &str, len: u8) -> Vip {
        Vip {
            addr: s.parse().unwrap(),
            prefix_len: len,
        }
    }

    fn start_err(cfg: InstanceConfig) -> Error {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(start(cfg)).unwrap_err()
    }

    #[test]
    fn configs_that_cannot_run_are_refused_before_touching_the_host() {
        let base = InstanceConfig::new("vi", "lo", 7, 100, vec![vip("192.0.2.10", 32)]);
        let mut c = base.clone();
        c.vips.clear();
        assert!(
            matches!(start_err(c), Error::Config { ref detail, .. } if detail.contains("no virtual"))
        );
        let mut c = base.clone();
        c.vips.push(vip("2001:db8::1", 128));
        assert!(matches!(start_err(c), Error::Config { ref detail, .. } if detail.contains("mix")));
        let mut c = base.clone();
        c.vips = vec![vip("2001:db8::1", 128)];
        c.version = Version::V2;
        assert!(
            matches!(start_err(c), Error::Config { ref detail, .. } if detail.contains("IPv4 only"))
        );
        let mut c = base.clone();
        c.unicast_peers = vec!["2001:db8::2".parse().unwrap()];
        assert!(
            matches!(start_err(c), Error::Config { ref detail, .. } if detail.contains("peers"))
        );
        let mut c = base.clone();
        c.vrid = 0;
        assert!(
            matches!(start_err(c), Error::Config { ref detail, .. } if detail.contains("VRID 0"))
        );
        let mut c = base;
        c.unicast_src = Some("2001:db8::1".parse().unwrap());
        assert!(
            matches!(start_err(c), Error::Config { ref detail, .. } if detail.contains("source"))
        );
    }

    #[test]
    fn a_missing_interface_starts_in_fault_with_the_reason() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let cfg = InstanceConfig::new("vi", "nosuchif0", 7, 100, vec![vip("192.0.2.10", 32)]);
            let h = start(cfg).await.expect("starts without its interface");
            let mut st = h.status();
            let s = tokio::time::timeout(
                std::time::Duration::from_secs(2),
                st.wait_for(|s| s.state == State::Fault),
            )
            .await
            .expect("FAULT published")
            .expect("status channel open")
            .clone();
            assert_eq!(
                s.fault_reason.as_deref(),
                Some("interface nosuchif0 not found")
            );
            assert!(!s.vips_held);
            // Still not there after a few retries (100, 200, 400 ms): still FAULT, same reason.
            tokio::time::sleep(std::time::Duration::from_millis(800)).await;
            let s = h.status().borrow().clone();
            assert_eq!(s.state, State::Fault);
            assert_eq!(
                s.fault_reason.as_deref(),
                Some("interface nosuchif0 not found")
            );
            h.shutdown().await;
        });
    }
}
