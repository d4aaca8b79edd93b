//! Opening an instance: validation, interface lookup, sockets, netlink, checks; and reopening
//! the sockets when the interface is re-created.

use std::net::IpAddr;
use std::time::SystemTime;

use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;

use super::{Driver, TrackedLink};
use crate::config::{InstanceConfig, RoleMode};
use crate::fsm::{self, Instance, State};
use crate::net::garp::Announcer;
use crate::net::iface::Interface;
use crate::net::socket::{SocketConfig, Transport, VrrpSocket};
use crate::net::vip::{LinkMonitor, Netlink};
use crate::net::NetError;
use crate::packet::{self, Advert, Auth, Version};
use crate::runner::effects::{spawn_notifier, GarpSchedule, VipReconciler};
use crate::runner::{Command, Counters, Error, InstanceEvent, InstanceStatus};
use crate::track::{spawn_check, CheckSpec, CheckState};

fn config_error(cfg: &InstanceConfig, detail: impl Into<String>) -> Error {
    Error::Config {
        instance: cfg.name.clone(),
        detail: detail.into(),
    }
}

impl Driver {
    /// Validates the configuration and opens every socket; nothing is changed on the host yet.
    pub(in crate::runner) async fn open(
        cfg: InstanceConfig,
        cmd_rx: mpsc::UnboundedReceiver<Command>,
        events: broadcast::Sender<InstanceEvent>,
    ) -> Result<Driver, Error> {
        let net = |source: NetError| Error::Net {
            instance: cfg.name.clone(),
            source,
        };
        if cfg.vrid == 0 {
            return Err(config_error(&cfg, "VRID 0 is not valid (1..=255)"));
        }
        let first = cfg
            .vips
            .first()
            .ok_or_else(|| config_error(&cfg, "no virtual address configured"))?;
        let v6 = first.addr.is_ipv6();
        if cfg.vips.iter().any(|v| v.addr.is_ipv6() != v6) {
            return Err(config_error(&cfg, "virtual addresses mix IPv4 and IPv6"));
        }
        if cfg.unicast_peers.iter().any(|p| p.is_ipv6() != v6) {
            return Err(config_error(
                &cfg,
                "unicast peers are not of the VIPs' family",
            ));
        }
        if v6 && cfg.version == Version::V2 {
            return Err(config_error(&cfg, "VRRPv2 is IPv4 only (RFC 3768)"));
        }
        let iface = Interface::lookup(&cfg.interface).map_err(net)?;
        let vip_addrs: Vec<IpAddr> = cfg.vips.iter().map(|v| v.addr).collect();
        let src = match cfg.unicast_src {
            Some(s) => s,
            None if v6 => iface.link_local_ipv6().map(IpAddr::V6).ok_or_else(|| {
                net(NetError::NoAddress {
                    name: cfg.interface.clone(),
                    what: "IPv6 link-local address",
                })
            })?,
            None => iface
                .primary_ipv4(&vip_addrs)
                .map(IpAddr::V4)
                .ok_or_else(|| {
                    net(NetError::NoAddress {
                        name: cfg.interface.clone(),
                        what: "IPv4 address",
                    })
                })?,
        };
        if src.is_ipv6() != v6 {
            return Err(config_error(
                &cfg,
                "unicast source is not of the VIPs' family",
            ));
        }
        let auth = match (&cfg.auth_pass, cfg.version) {
            (Some(p), Version::V2) => Auth::simple(&p.0),
            _ => Auth::None,
        };
        let transport = if cfg.unicast_peers.is_empty() {
            Transport::Multicast
        } else {
            Transport::Unicast(cfg.unicast_peers.clone())
        };
        let socket = VrrpSocket::open(SocketConfig {
            ifname: cfg.interface.clone(),
            ifindex: iface.index,
            src,
            transport,
        })
        .map_err(net)?;
        // Every advert this instance will send must encode: check once, before starting.
        let probe = Advert {
            version: cfg.version,
            vrid: cfg.vrid,
            priority: cfg.priority,
            max_advert_int: cfg.advert_interval,
            addresses: vip_addrs.clone(),
            auth: auth.clone(),
        };
        for dst in socket.destinations() {
            packet::encode(&probe, src, dst).map_err(|e| config_error(&cfg, e.to_string()))?;
        }
        let netlink = Netlink::open().map_err(net)?;
        // Subscribe before reading the initial link states so no change falls in between.
        let links = LinkMonitor::open().map_err(net)?;
        let own_up = netlink
            .link_state(iface.index)
            .await
            .map_err(net)?
            .is_some_and(|l| l.up);
        let mut tracked_links = Vec::new();
        for t in &cfg.track_interfaces {
            let index = nix::net::if_::if_nametoindex(t.name.as_str()).ok();
            let up = match index {
                Some(i) => netlink
                    .link_state(i)
                    .await
                    .map_err(net)?
                    .is_some_and(|l| l.up),
                None => false,
            };
            tracked_links.push(TrackedLink {
                name: t.name.clone(),
                index,
                weight: t.weight,
                up,
            });
        }
        let announcer = match (iface.link, iface.mac) {
            (Some(link), Some(mac)) => Some(Announcer::open(link, mac).map_err(net)?),
            _ => {
                tracing::warn!(instance = %cfg.name, interface = %cfg.interface,
                    "interface has no Ethernet address: no gratuitous ARP / NA");
                None
            }
        };
        let (track_tx, track_rx) = mpsc::unbounded_channel();
        let mut check_tasks = Vec::new();
        for (i, c) in cfg.checks.iter().enumerate() {
            let (mut rx, h) = spawn_check(CheckSpec {
                name: c.name.clone(),
                probe: c.probe.clone(),
                interval: c.interval,
                timeout: c.timeout,
                rise: c.rise,
                fall: c.fall,
            });
            let tx = track_tx.clone();
            let fwd = tokio::spawn(async move {
                while rx.changed().await.is_ok() {
                    let st = rx.borrow_and_update().clone();
                    if tx.send((i, st)).is_err() {
                        return;
                    }
                }
            });
            check_tasks.push(h);
            check_tasks.push(fwd);
        }
        let fsm = Instance::new(fsm::Config {
            vrid: cfg.vrid,
            priority: cfg.priority,
            advert_interval: cfg.advert_interval,
            preempt: cfg.preempt,
            preempt_delay: cfg.preempt_delay,
            accept_mode: cfg.accept,
            version: cfg.version,
            primary_address: src,
        });
        let external = match cfg.role {
            RoleMode::Vrrp => None,
            RoleMode::External { .. } => Some(State::Backup),
        };
        let (fail_tx, notify_fail_rx) = mpsc::unbounded_channel();
        let (notify_tx, notifier) = spawn_notifier(fail_tx);
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
        let (status_tx, _) = watch::channel(status);
        Ok(Driver {
            garp: GarpSchedule::new(cfg.garp.repeat, cfg.garp.interval, cfg.garp.refresh),
            checks: vec![CheckState::Unknown; cfg.checks.len()],
            cfg,
            iface,
            src,
            auth,
            fsm,
            external,
            socket,
            netlink,
            announcer,
            links: Some(links),
            own_up,
            tracked_links,
            check_tasks,
            track_rx,
            external_weight: 0,
            track_fault: None,
            cmd_rx,
            events,
            status_tx,
            origin: Instant::now(),
            origin_wall: SystemTime::now(),
            vip: VipReconciler::new(),
            notify_tx: Some(notify_tx),
            notifier: Some(notifier),
            notify_fail_rx,
            rx_pause_until: None,
            counters: Counters::default(),
            last_transition: None,
        })
    }

    /// Looks the interface up again and reopens the VRRP and GARP sockets on it. The source
    /// address is kept when the interface still has it (the state machine's tie-break address
    /// cannot change), else the new primary / link-local address is used.
    pub(super) fn reopen(&mut self) -> Result<(), NetError> {
        let iface = Interface::lookup(&self.cfg.interface)?;
        let vips: Vec<IpAddr> = self.cfg.vips.iter().map(|v| v.addr).collect();
        let still_ours = match self.src {
            IpAddr::V4(a) => iface.ipv4.contains(&a),
            IpAddr::V6(a) => iface.ipv6.contains(&a),
        };
        let src = if self.cfg.unicast_src.is_some() || still_ours {
            self.src
        } else if self.src.is_ipv6() {
            iface
                .link_local_ipv6()
                .map(IpAddr::V6)
                .ok_or_else(|| NetError::NoAddress {
                    name: self.cfg.interface.clone(),
                    what: "IPv6 link-local address",
                })?
        } else {
            iface
                .primary_ipv4(&vips)
                .map(IpAddr::V4)
                .ok_or_else(|| NetError::NoAddress {
                    name: self.cfg.interface.clone(),
                    what: "IPv4 address",
                })?
        };
        let mut sc = self.socket.config().clone();
        sc.ifindex = iface.index;
        sc.src = src;
        let socket = VrrpSocket::open(sc)?;
        let announcer = match (iface.link, iface.mac) {
            (Some(link), Some(mac)) => Some(Announcer::open(link, mac)?),
            _ => None,
        };
        self.socket = socket;
        self.announcer = announcer;
        self.src = src;
        self.iface = iface;
        Ok(())
    }
}
