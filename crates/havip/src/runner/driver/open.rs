//! Opening an instance: validation, netlink, checks (all up front), and attaching to the
//! interface: lookup, source address, VRRP and GARP sockets. An attach that fails (the
//! interface or its address is not there yet, a socket call fails) is not an error: the
//! instance starts in FAULT with the reason and the driver tries again (see `driver.rs`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::SystemTime;

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::parts::{Attachment, Notifier, Outputs, Ownership, TrackedLink, Tracking, Vips};
use super::Driver;
use crate::config::{CheckConfig, InstanceConfig, RoleMode, TrackInterface};
use crate::fsm::{self, Instance, State};
use crate::net::garp::Announcer;
use crate::net::iface::Interface;
use crate::net::socket::{VRRP_GROUP_V4, VRRP_GROUP_V6};
use crate::net::vip::{LinkMonitor, Netlink};
use crate::net::NetError;
use crate::packet::{self, Advert, Auth, Version};
use crate::runner::effects::{spawn_notifier, AttachBackoff, GarpSchedule, VipReconciler};
use crate::runner::receiver::{Key, Membership};
use crate::runner::{
    Command, Counters, Error, InstanceEvent, InstanceStatus, Role, StartOptions, TransitionReason,
};
use crate::track::{spawn_check, CheckState};

fn config_error(cfg: &InstanceConfig, detail: impl Into<String>) -> Error {
    Error::Config {
        instance: cfg.name.clone(),
        detail: detail.into(),
    }
}

/// What an instance holds while its interface is there: dropped when the interface goes away,
/// opened again when it comes back.
pub(in crate::runner) struct Attached {
    /// The interface as looked up.
    pub(in crate::runner) iface: Interface,
    /// The source of the adverts (primary IPv4 / link-local IPv6 / configured unicast source).
    pub(in crate::runner) src: IpAddr,
    /// The instance's place on the interface's shared VRRP socket: its datagrams, and the
    /// socket its adverts go out on.
    pub(in crate::runner) rx: Membership,
    /// GARP / NA sender (none on an interface without an Ethernet address).
    pub(in crate::runner) announcer: Option<Announcer>,
}

/// Looks the interface up, picks the source address and opens the sockets on it.
pub(in crate::runner) fn attach(cfg: &InstanceConfig) -> Result<Attached, NetError> {
    let iface = Interface::lookup(&cfg.interface)?;
    let v6 = cfg.vips.first().is_some_and(|v| v.addr.is_ipv6());
    let vips: Vec<IpAddr> = cfg.vips.iter().map(|v| v.addr).collect();
    let src = match cfg.unicast_src {
        Some(s) => s,
        None if v6 => {
            iface
                .link_local_ipv6()
                .map(IpAddr::V6)
                .ok_or_else(|| NetError::NoAddress {
                    name: cfg.interface.clone(),
                    what: "IPv6 link-local address",
                })?
        }
        None => iface
            .primary_ipv4(&vips)
            .map(IpAddr::V4)
            .ok_or_else(|| NetError::NoAddress {
                name: cfg.interface.clone(),
                what: "IPv4 address",
            })?,
    };
    let key = Key::new(
        &cfg.interface,
        iface.index,
        src,
        cfg.unicast_peers.is_empty(),
    );
    let rx = Membership::join(key, cfg.vrid)?;
    let announcer = match (iface.link, iface.mac) {
        (Some(link), Some(mac)) => Some(Announcer::open(link, mac)?),
        _ => {
            tracing::warn!(instance = %cfg.name, interface = %cfg.interface,
                "interface has no Ethernet address: no gratuitous ARP / NA");
            None
        }
    };
    Ok(Attached {
        iface,
        src,
        rx,
        announcer,
    })
}

/// The operator's words for a failed attach: `interface eth1 not found`, `no IPv4 address on
/// eth0`, or the failing call.
pub(in crate::runner) fn attach_reason(cfg: &InstanceConfig, e: &NetError) -> String {
    match e {
        NetError::NoSuchInterface(n) => format!("interface {n} not found"),
        NetError::NoAddress { name, what } => format!("no {what} on {name}"),
        other => format!("interface {}: {other}", cfg.interface),
    }
}

/// Where the adverts go: every unicast peer, or the VRRP group of the VIPs' family.
pub(in crate::runner) fn destinations(cfg: &InstanceConfig) -> Vec<IpAddr> {
    let v6 = cfg.vips.first().is_some_and(|v| v.addr.is_ipv6());
    match (cfg.unicast_peers.is_empty(), v6) {
        (false, _) => cfg.unicast_peers.clone(),
        (true, true) => vec![IpAddr::V6(VRRP_GROUP_V6)],
        (true, false) => vec![IpAddr::V4(VRRP_GROUP_V4)],
    }
}

/// Refuses what can never run, before anything is opened: no VIP, mixed families, v2 over IPv6,
/// VRID 0, an advert that cannot be encoded (too many addresses, bad interval).
fn validate(cfg: &InstanceConfig) -> Result<(), Error> {
    if cfg.vrid == 0 {
        return Err(config_error(cfg, "VRID 0 is not valid (1..=255)"));
    }
    let first = cfg
        .vips
        .first()
        .ok_or_else(|| config_error(cfg, "no virtual address configured"))?;
    let v6 = first.addr.is_ipv6();
    if cfg.vips.iter().any(|v| v.addr.is_ipv6() != v6) {
        return Err(config_error(cfg, "virtual addresses mix IPv4 and IPv6"));
    }
    if cfg.unicast_peers.iter().any(|p| p.is_ipv6() != v6) {
        return Err(config_error(
            cfg,
            "unicast peers are not of the VIPs' family",
        ));
    }
    if v6 && cfg.version == Version::V2 {
        return Err(config_error(cfg, "VRRPv2 is IPv4 only (RFC 3768)"));
    }
    if cfg.unicast_src.is_some_and(|s| s.is_ipv6() != v6) {
        return Err(config_error(
            cfg,
            "unicast source is not of the VIPs' family",
        ));
    }
    // Every advert this instance will send must encode: check once, before starting (the
    // source only enters the checksum, so a placeholder of the family will do).
    let probe = Advert {
        version: cfg.version,
        vrid: cfg.vrid,
        priority: cfg.priority,
        max_advert_int: cfg.advert_interval,
        addresses: cfg.vips.iter().map(|v| v.addr).collect(),
        auth: auth(cfg),
    };
    for dst in destinations(cfg) {
        packet::encode(&probe, placeholder(v6), dst)
            .map_err(|e| config_error(cfg, e.to_string()))?;
    }
    Ok(())
}

fn auth(cfg: &InstanceConfig) -> Auth {
    match (&cfg.auth_pass, cfg.version) {
        (Some(p), Version::V2) => Auth::simple(&p.0),
        _ => Auth::None,
    }
}

/// The state machine's primary address until the interface's is known (it is in FAULT then,
/// so the address takes part in no election).
fn placeholder(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

/// Looks a tracked link up (its index and whether it is up now); a missing link is down until
/// the link monitor reports it.
pub(super) async fn track_link(
    netlink: &Netlink,
    instance: &str,
    t: &TrackInterface,
) -> TrackedLink {
    let index = nix::net::if_::if_nametoindex(t.name.as_str()).ok();
    let up = match index {
        Some(i) => match netlink.link_state(i).await {
            Ok(l) => l.is_some_and(|l| l.up),
            Err(e) => {
                // Counted as down until the link monitor reports it.
                tracing::warn!(instance = %instance, link = %t.name, error = %e,
                    "tracked link state unknown");
                false
            }
        },
        None => false,
    };
    TrackedLink {
        name: t.name.clone(),
        index,
        weight: t.weight,
        up,
    }
}

/// Starts one task per check and a forwarder that tags its states with the check's index; the
/// tasks (to abort) and the receiver of `(index, state)`.
pub(super) fn spawn_checks(
    checks: &[CheckConfig],
) -> (
    Vec<JoinHandle<()>>,
    mpsc::UnboundedReceiver<(usize, CheckState)>,
) {
    let (track_tx, track_rx) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for (i, c) in checks.iter().enumerate() {
        let (mut rx, h) = spawn_check(c.check.clone());
        let tx = track_tx.clone();
        let fwd = tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let st = rx.borrow_and_update().clone();
                if tx.send((i, st)).is_err() {
                    return;
                }
            }
        });
        tasks.push(h);
        tasks.push(fwd);
    }
    (tasks, track_rx)
}

impl Driver {
    /// Validates the configuration, opens netlink, starts the checks and tries once to attach
    /// to the interface; nothing is changed on the host yet. Only a configuration that can
    /// never run (or a netlink socket that cannot be opened at all) is an error.
    pub(in crate::runner) async fn open(
        cfg: InstanceConfig,
        opts: StartOptions,
        cmd_rx: mpsc::UnboundedReceiver<Command>,
        events: broadcast::Sender<InstanceEvent>,
    ) -> Result<Driver, Error> {
        let net = |source: NetError| Error::Net {
            instance: cfg.name.clone(),
            source,
        };
        validate(&cfg)?;
        let netlink = Netlink::open().map_err(net)?;
        // Subscribe before reading the initial link states so no change falls in between.
        let monitor = LinkMonitor::open().map_err(net)?;
        let (attach, attach_failures) = first_attach(&cfg, &netlink).await;
        let track = start_tracking(&cfg, &netlink, monitor).await;
        let fsm = state_machine(&cfg, attach.att.as_ref());
        Ok(Driver {
            auth: auth(&cfg),
            fsm,
            netlink,
            cmd_rx,
            attach,
            vips: Vips {
                reconciler: VipReconciler::new(),
                garp: GarpSchedule::new(cfg.garp.repeat, cfg.garp.interval, cfg.garp.refresh),
            },
            track,
            notifier: start_notifier(),
            own: Ownership {
                external: match cfg.role {
                    RoleMode::Vrrp => None,
                    RoleMode::External { .. } => Some(State::Backup),
                },
                gate: opts.takeover,
                pending: None,
                begin: false,
            },
            out: outputs(&cfg, events),
            counters: Counters {
                attach_failures,
                ..Counters::default()
            },
            cfg,
        })
    }
}

/// The first attach attempt: attached (with the link's up state), or detached with the reason
/// and a retry scheduled; and the failures to count (0 or 1).
async fn first_attach(cfg: &InstanceConfig, netlink: &Netlink) -> (Attachment, u64) {
    let mut retry = AttachBackoff::new();
    let attempt = match attach(cfg) {
        Ok(a) => match netlink.link_state(a.iface.index).await {
            Ok(l) => Ok((a, l.is_some_and(|l| l.up))),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match attempt {
        Ok((a, up)) => (
            Attachment {
                att: Some(a),
                fault: None,
                retry,
                own_up: up,
            },
            0,
        ),
        Err(e) => {
            let reason = attach_reason(cfg, &e);
            tracing::warn!(instance = %cfg.name, %reason,
                "interface not usable yet: FAULT until it is (retried)");
            retry.failed(Instant::now());
            (
                Attachment {
                    att: None,
                    fault: Some(reason),
                    retry,
                    own_up: false,
                },
                1,
            )
        }
    }
}

/// Reads the tracked links' states and starts the checks (every check `Unknown` until its
/// task reports).
async fn start_tracking(cfg: &InstanceConfig, netlink: &Netlink, monitor: LinkMonitor) -> Tracking {
    let mut links = Vec::new();
    for t in &cfg.track_interfaces {
        links.push(track_link(netlink, &cfg.name, t).await);
    }
    let (tasks, rx) = spawn_checks(&cfg.checks);
    Tracking {
        monitor: Some(monitor),
        links,
        checks: vec![CheckState::Unknown; cfg.checks.len()],
        tasks,
        rx,
        external_weight: 0,
        external_fault: None,
        fault: None,
    }
}

/// The state machine, with the attached source as its primary address (a placeholder of the
/// family while detached).
fn state_machine(cfg: &InstanceConfig, att: Option<&Attached>) -> Instance {
    let v6 = cfg.vips.first().is_some_and(|v| v.addr.is_ipv6());
    Instance::new(fsm::Config {
        vrid: cfg.vrid,
        priority: cfg.priority,
        advert_interval: cfg.advert_interval,
        preempt: cfg.preempt,
        preempt_delay: cfg.preempt_delay,
        accept_mode: cfg.accept,
        version: cfg.version,
        primary_address: att.map_or(placeholder(v6), |a| a.src),
    })
}

fn start_notifier() -> Notifier {
    let (fail_tx, failures) = mpsc::unbounded_channel();
    let (tx, task) = spawn_notifier(fail_tx);
    Notifier {
        tx: Some(tx),
        task: Some(task),
        failures,
    }
}

/// The status and role channels with their first values (Initialize, no VIPs held), and the
/// time origin.
fn outputs(cfg: &InstanceConfig, events: broadcast::Sender<InstanceEvent>) -> Outputs {
    let status = InstanceStatus {
        name: cfg.name.clone(),
        state: State::Initialize,
        vips: cfg.vips.clone(),
        vips_held: false,
        master: None,
        effective_priority: cfg.priority,
        fault_reason: None,
        last_transition: None,
        counters: Counters::default(),
    };
    let (status, _) = watch::channel(status);
    let origin_wall = SystemTime::now();
    let (role, _) = watch::channel(Role {
        state: State::Initialize,
        vips_held: false,
        since: origin_wall,
        reason: TransitionReason::Created,
    });
    Outputs {
        events,
        status,
        role,
        role_since: origin_wall,
        role_reason: TransitionReason::Created,
        last_transition: None,
        origin: Instant::now(),
        origin_wall,
    }
}
