//! The driver task of one instance: opens everything in [`Driver::open`], then [`Driver::run`]
//! loops over commands, datagrams, timers and tracking until shutdown (see the diagram in
//! `runner.rs`). Its state is split by concern in [`parts`]. [`open`]: setup and attaching to the interface; [`link`]: link and address
//! events, attach retries, detach; [`claim`]: role-driven claim/release; [`publish`]:
//! transitions, notify, status and role; [`takeover`]: the takeover barrier; [`update`]: configuration changes in place.

mod claim;
mod link;
mod open;
mod parts;
mod publish;
mod takeover;
mod update;

use std::net::IpAddr;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, Instant};

use super::receiver::Delivery;
use super::{Command, Counters, InstanceEvent, InstanceStatus, Role, TransitionReason};
use crate::config::InstanceConfig;
use crate::fsm::{Action, Event, Instance, Reason, State};
use crate::net::vip::{LinkEvent, LinkMonitor, Netlink};
use crate::packet::{self, Advert, Auth, DropReason, LocalCheck, RxMeta};
use crate::time::Timestamp;
use crate::track::{verdict, Tracked, Verdict};
use parts::{Attachment, Notifier, Outputs, Ownership, Tracking, Vips};

/// Attempts to remove the VIPs on stop before giving up (with the reconciler's backoff).
const STOP_REMOVE_ATTEMPTS: u32 = 5;
/// Longest a fence command may run.
const FENCE_TIMEOUT: Duration = Duration::from_secs(30);

/// One instance's state and I/O, owned by its task: the configuration and the pure state
/// machine, plus one part per concern (see [`parts`]).
pub(super) struct Driver {
    cfg: InstanceConfig,
    /// VRRPv2 simple-text authentication from `cfg.auth_pass` (RFC 3768 - Section 5.3.6; VRRPv3
    /// has none: RFC 5798 removed it).
    auth: Auth,
    fsm: Instance,
    /// VIP add / remove and link state queries.
    netlink: Netlink,
    cmd_rx: mpsc::UnboundedReceiver<Command>,
    attach: Attachment,
    vips: Vips,
    track: Tracking,
    notifier: Notifier,
    own: Ownership,
    out: Outputs,
    counters: Counters,
}

impl Driver {
    /// A receiver of the status channel.
    pub(super) fn status_receiver(&self) -> watch::Receiver<InstanceStatus> {
        self.out.status.subscribe()
    }

    /// A receiver of the role channel.
    pub(super) fn role_receiver(&self) -> watch::Receiver<Role> {
        self.out.role.subscribe()
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_duration(self.out.origin.elapsed())
    }

    /// The instance's loop; returns after shutdown (or when every handle is gone), VIPs removed.
    pub(super) async fn run(mut self) {
        tracing::info!(instance = %self.cfg.name, interface = %self.cfg.interface,
            src = ?self.attach.att.as_ref().map(|a| a.src), vrid = self.cfg.vrid,
            priority = self.cfg.priority, "starting");
        if self.own.external.is_none() {
            let a = self.fsm.handle(Event::Startup, self.now());
            self.execute(a).await;
            if !self.attach.own_up {
                let a = self.fsm.handle(Event::InterfaceDown, self.now());
                self.execute(a).await;
            }
            self.retrack().await;
        }
        if !self.vips.reconciler.want && !self.vips.reconciler.settled {
            // Not Master (a role-driven instance starts as Backup; a VRRP one that entered
            // Backup or FAULT has done this already): a VIP left by a killed process goes now.
            self.ensure_vips_absent().await;
        }
        self.publish();
        loop {
            let fsm_deadline = self
                .fsm
                .next_deadline()
                .map(|t| self.out.origin + t.since_origin());
            let vip_retry = self.vips.reconciler.retry_at();
            let garp_due = self.vips.garp.next_due();
            let attach_due = self
                .attach
                .retry
                .due()
                .filter(|_| self.attach.att.is_none());
            let waiting = self.own.pending.is_some();
            tokio::select! {
                o = takeover::outcome(&mut self.own.pending), if waiting => {
                    self.finish_takeover(o).await;
                }
                cmd = self.cmd_rx.recv() => match cmd {
                    None | Some(Command::Shutdown) => break,
                    Some(c) => self.on_command(c).await,
                },
                d = recv_opt(&mut self.attach.att) => self.on_delivery(d).await,
                _ = sleep_opt(attach_due), if attach_due.is_some() => self.try_attach().await,
                _ = sleep_opt(fsm_deadline), if fsm_deadline.is_some() => {
                    let a = self.fsm.poll_timers(self.now());
                    self.execute(a).await;
                }
                _ = sleep_opt(vip_retry), if vip_retry.is_some() => self.apply_vips().await,
                _ = sleep_opt(garp_due), if garp_due.is_some() => self.garp_tick(),
                Some((i, st)) = self.track.rx.recv() => {
                    if let Some(slot) = self.track.checks.get_mut(i) {
                        *slot = st;
                    }
                    self.retrack().await;
                }
                ev = next_link(&mut self.track.monitor) => match ev {
                    Some(ev) => self.on_link_event(ev).await,
                    None => {
                        tracing::warn!(instance = %self.cfg.name, "link monitor ended");
                        self.track.monitor = None;
                    }
                },
                Some(_) = self.notifier.failures.recv() => self.counters.notify_failures += 1,
            }
            self.publish();
        }
        self.stop().await;
    }

    async fn on_command(&mut self, c: Command) {
        match c {
            Command::ExternalWeight(w) => {
                self.track.external_weight = w;
                self.retrack().await;
            }
            Command::ExternalFault(reason) => {
                self.track.external_fault = reason;
                self.retrack().await;
            }
            Command::Claim(reply) => {
                let r = self.claim().await;
                let _ = reply.send(r);
            }
            Command::Release(reply) => {
                let r = self.release().await;
                let _ = reply.send(r);
            }
            Command::Update(cfg, reply) => {
                let r = self.update(*cfg).await;
                let _ = reply.send(r);
            }
            Command::Shutdown => {}
        }
    }

    fn count_drop(&mut self, label: &'static str) {
        *self.counters.drops.entry(label).or_insert(0) += 1;
    }

    async fn on_delivery(&mut self, d: Delivery) {
        let discarded = self
            .attach
            .att
            .as_ref()
            .map_or(0, |a| a.rx.take_discarded());
        if discarded > 0 {
            self.counters.recv_failures += discarded;
            tracing::warn!(instance = %self.cfg.name, discarded, "receive queue full: datagrams discarded");
        }
        let p = match d {
            Delivery::RecvFailed(e) => {
                self.counters.recv_failures += 1;
                tracing::warn!(instance = %self.cfg.name, error = %e, "VRRP socket receive failed");
                return;
            }
            Delivery::Malformed(h) => {
                tracing::debug!(instance = %self.cfg.name, error = %h, "datagram dropped");
                self.count_drop(h.label());
                return;
            }
            Delivery::Datagram(p) => p,
        };
        let Some(own) = self.attach.att.as_ref().map(|a| a.src) else {
            return;
        };
        if p.src == own {
            self.count_drop(DropReason::FromSelf.label());
            return;
        }
        if !self.cfg.unicast_peers.is_empty() && !self.cfg.unicast_peers.contains(&p.src) {
            self.count_drop(DropReason::NotFromPeer.label());
            return;
        }
        let meta = RxMeta {
            src: p.src,
            dst: p.dst,
            ttl_or_hop_limit: p.ttl,
        };
        let advert = match packet::decode(&meta, &p.payload) {
            Ok(a) => a,
            Err(reason) => {
                tracing::debug!(instance = %self.cfg.name, from = %p.src, ?reason, "advert dropped");
                self.count_drop(reason.label());
                return;
            }
        };
        if advert.vrid != self.cfg.vrid {
            self.count_drop(DropReason::VridNotConfigured { vrid: advert.vrid }.label());
            return;
        }
        let local = LocalCheck {
            version: self.cfg.version,
            priority: self.cfg.priority,
            advert_interval: self.cfg.advert_interval,
            auth: &self.auth,
            addresses: None,
        };
        if let Err(reason) = packet::check_local(&advert, &local) {
            tracing::debug!(instance = %self.cfg.name, from = %p.src, ?reason, "advert dropped");
            self.count_drop(reason.label());
            return;
        }
        self.counters.adverts_rx += 1;
        if self.own.external.is_some() {
            return;
        }
        let a = self.fsm.handle(
            Event::AdvertReceived {
                from: p.src,
                advert,
            },
            self.now(),
        );
        self.execute(a).await;
    }

    /// Recomputes the tracking verdict and tells the state machine what changed.
    async fn retrack(&mut self) {
        if self.own.external.is_some() {
            return;
        }
        let names: Vec<String> = self
            .cfg
            .checks
            .iter()
            .map(|c| c.check.name.clone())
            .collect();
        let mut tracked = Vec::new();
        for t in &self.track.links {
            tracked.push(Tracked::Link {
                name: &t.name,
                weight: t.weight,
                up: t.up,
            });
        }
        for ((c, st), name) in self.cfg.checks.iter().zip(&self.track.checks).zip(&names) {
            tracked.push(Tracked::Check {
                name,
                weight: c.weight,
                state: st,
            });
        }
        if let Some(reason) = &self.track.external_fault {
            tracked.push(Tracked::OwnerFault { reason });
        }
        let v = verdict(self.cfg.priority, &tracked, self.track.external_weight);
        let now = self.now();
        let mut actions = Vec::new();
        match v {
            Verdict::Fault(reason) => {
                let was = self.track.fault.replace(reason.clone());
                if was.is_none() {
                    tracing::warn!(instance = %self.cfg.name, %reason, "tracking: FAULT");
                    actions.extend(self.fsm.handle(Event::TrackFault, now));
                }
            }
            Verdict::Priority(p) => {
                if p != self.fsm.priority() {
                    tracing::info!(instance = %self.cfg.name, priority = p, "tracking: priority changed");
                    actions.extend(self.fsm.handle(Event::PriorityChanged(p), now));
                }
                if self.track.fault.take().is_some() {
                    tracing::info!(instance = %self.cfg.name, "tracking: fault cleared");
                    actions.extend(self.fsm.handle(Event::TrackOk, now));
                }
            }
        }
        self.execute(actions).await;
    }

    async fn execute(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::SendAdvert { priority } => self.send_advert(priority).await,
                Action::AddVips if self.own.gate.is_some() => {
                    // Gated: the VIPs go up when the owner answers (see `takeover`).
                    self.own.begin = true;
                }
                Action::AddVips => {
                    self.vips.reconciler.set_want(true);
                    self.apply_vips().await;
                }
                Action::RemoveVips => {
                    self.cancel_takeover();
                    self.vips.garp.stop();
                    self.vips.reconciler.set_want(false);
                    self.apply_vips().await;
                }
                Action::SendGratuitous if self.own.begin || self.own.pending.is_some() => {
                    // Announced when the VIPs go up.
                }
                Action::SendGratuitous => {
                    self.vips.garp.trigger(Instant::now());
                    self.garp_tick();
                }
                Action::Notify(t) => {
                    if matches!(t.to, State::Backup | State::Fault) && t.from != State::Master {
                        // Entering Backup or FAULT other than from Master (which removed its
                        // VIPs just before): make sure none is left, e.g. by a killed process
                        // that held them before this one started.
                        self.ensure_vips_absent().await;
                    }
                    let stepped_down = t.from == State::Master
                        && t.to == State::Backup
                        && matches!(
                            t.reason,
                            Reason::HigherPriority { .. }
                                | Reason::EqualPriorityHigherAddress { .. }
                        );
                    self.on_transition(t);
                    if stepped_down {
                        // Product choice (split brain heal): the Master we yield to may never
                        // hear us again (its advert reached us first), so it would not know to
                        // announce the VIP to the clients that followed us during the split.
                        // One last advert with our (lower) priority makes it answer with an
                        // advert and a gratuitous ARP / NA burst (its RFC 9568 - Section 6.4.3
                        // "Send an ADVERTISEMENT immediately" rule, plus our announcement).
                        let p = self.fsm.priority();
                        self.send_advert(p).await;
                    }
                }
            }
        }
        if std::mem::take(&mut self.own.begin) && self.fsm.state() == State::Master {
            self.begin_takeover().await;
        }
    }

    /// Makes sure no VIP of this instance is on the interface ("address not there" counts as
    /// done; a failure is retried with backoff like any removal).
    pub(super) async fn ensure_vips_absent(&mut self) {
        self.vips.garp.stop();
        self.vips.reconciler.set_want(false);
        self.apply_vips().await;
    }

    async fn send_advert(&mut self, priority: u8) {
        let Some(att) = &self.attach.att else {
            // No interface: nothing to send on (the instance is in FAULT).
            return;
        };
        let advert = Advert {
            version: self.cfg.version,
            vrid: self.cfg.vrid,
            priority,
            max_advert_int: self.cfg.advert_interval,
            addresses: self.cfg.vips.iter().map(|v| v.addr).collect(),
            auth: self.auth.clone(),
        };
        for dst in open::destinations(&self.cfg) {
            let bytes = match packet::encode(&advert, att.src, dst) {
                Ok(b) => b,
                Err(e) => {
                    self.counters.send_failures += 1;
                    tracing::error!(instance = %self.cfg.name, error = %e, "advert cannot be encoded");
                    continue;
                }
            };
            match att.rx.socket().send_to(&bytes, dst).await {
                Ok(()) => self.counters.adverts_tx += 1,
                Err(e) => {
                    self.counters.send_failures += 1;
                    tracing::warn!(instance = %self.cfg.name, %dst, error = %e, "advert send failed");
                }
            }
        }
    }

    /// Brings every VIP to the wanted state; failures are counted, published, and retried by
    /// the reconciler's backoff.
    async fn apply_vips(&mut self) {
        let want = self.vips.reconciler.want;
        let Some(index) = self.attach.att.as_ref().map(|a| a.iface.index) else {
            self.vips.reconciler.interface_missing();
            return;
        };
        let mut ok = true;
        for vip in self.cfg.vips.clone() {
            let r = if want {
                self.netlink.add(index, vip).await
            } else {
                self.netlink.remove(index, vip).await
            };
            if let Err(e) = r {
                ok = false;
                if want {
                    self.counters.vip_add_failures += 1;
                } else {
                    self.counters.vip_remove_failures += 1;
                }
                tracing::warn!(instance = %self.cfg.name, %vip, error = %e, "VIP change failed, will retry");
                let _ = self.out.events.send(InstanceEvent::VipFailure {
                    instance: self.cfg.name.clone(),
                    vip,
                    detail: e.to_string(),
                });
            } else {
                tracing::debug!(instance = %self.cfg.name, %vip, want, "VIP applied");
            }
        }
        self.vips.reconciler.attempted(ok, Instant::now());
    }

    fn garp_tick(&mut self) {
        if !self.vips.garp.poll(Instant::now()) {
            return;
        }
        let Some(ann) = self.attach.att.as_ref().and_then(|a| a.announcer.as_ref()) else {
            return;
        };
        for vip in &self.cfg.vips {
            let r = match vip.addr {
                IpAddr::V4(a) => ann.send_arp(a),
                IpAddr::V6(a) => ann.send_na(a),
            };
            match r {
                Ok(()) => self.counters.garp_sent += 1,
                Err(e) => {
                    self.counters.garp_failures += 1;
                    tracing::warn!(instance = %self.cfg.name, %vip, error = %e, "GARP/NA send failed");
                }
            }
        }
    }

    /// The stop path: resign (priority-0 advert when Master), remove the VIPs (retried a few
    /// times), run the stop notify, and wait for the notify queue to drain.
    async fn stop(mut self) {
        tracing::info!(instance = %self.cfg.name, "stopping");
        self.cancel_takeover();
        let before = self.own.external.unwrap_or_else(|| self.fsm.state());
        if self.own.external.is_none() {
            let a = self.fsm.handle(Event::Shutdown, self.now());
            self.execute(a).await;
        } else if self.own.external == Some(State::Master) {
            self.own.external = Some(State::Initialize);
            self.publish_transition(
                State::Master,
                State::Initialize,
                TransitionReason::Stopped,
                self.now(),
            );
        }
        self.vips.garp.stop();
        self.vips.reconciler.set_want(false);
        for attempt in 0..STOP_REMOVE_ATTEMPTS {
            self.apply_vips().await;
            if self.vips.reconciler.settled {
                break;
            }
            if let Some(at) = self.vips.reconciler.retry_at() {
                if attempt + 1 < STOP_REMOVE_ATTEMPTS {
                    sleep_until(at).await;
                }
            }
        }
        if !self.vips.reconciler.settled {
            tracing::error!(instance = %self.cfg.name, "VIPs could not be removed on stop");
        }
        for h in &self.track.tasks {
            h.abort();
        }
        if let Some(cmd) = self.cfg.notify.stop.clone() {
            self.notify(cmd, "STOP", &before.to_string(), "shutdown");
        }
        self.notifier.tx = None;
        if let Some(h) = self.notifier.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(35), h).await;
        }
        self.publish();
        let _ = self.out.events.send(InstanceEvent::Stopped {
            instance: self.cfg.name.clone(),
        });
        tracing::info!(instance = %self.cfg.name, "stopped, VIPs removed");
    }
}

async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(t) => sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn recv_opt(att: &mut Option<open::Attached>) -> Delivery {
    match att {
        Some(a) => a.rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn next_link(m: &mut Option<LinkMonitor>) -> Option<LinkEvent> {
    match m {
        Some(m) => m.next().await,
        None => std::future::pending().await,
    }
}
