//! The interface comes and goes: link and address events, attach retries with backoff, and
//! detaching when the interface (or the source address) disappears.
//!
//! ```text
//!   detached (FAULT, reason) ──attach ok──► attached (fsm InterfaceUp when the link is up)
//!        ▲   └─attach fails: retry at 100 ms .. 2 s, and at once on any link/address event
//!        └────── link deleted, or the source address gone and no other one ◄──┘
//! ```
//!
//! Attaching (re)reads the source address and feeds it to the state machine
//! ([`Event::PrimaryAddressChanged`]), so an interface re-created with another address takes
//! part in the tie-break with the address its adverts now carry.

use std::net::IpAddr;

use tokio::time::Instant;

use super::open::{attach, attach_reason, Attached};
use super::Driver;
use crate::fsm::Event;
use crate::net::iface::Interface;
use crate::net::vip::{LinkEvent, LinkState};

impl Driver {
    /// One event of the link monitor.
    pub(super) async fn on_link_event(&mut self, ev: LinkEvent) {
        match ev {
            LinkEvent::Link(l) => self.on_link(l).await,
            LinkEvent::Address { index } => self.on_address(index).await,
        }
    }

    async fn on_link(&mut self, l: LinkState) {
        let ours = l.name.as_deref() == Some(self.cfg.interface.as_str());
        match self.attach.att.as_ref().map(|a| a.iface.index) {
            None => {
                if ours && !l.deleted {
                    self.try_attach().await;
                }
            }
            Some(index) if l.index == index && l.deleted => {
                let reason = format!("interface {} not found", self.cfg.interface);
                self.detach(reason).await;
                // A link of the same name may already exist again (events are in order, but
                // the lookup is not): try at once.
                self.try_attach().await;
            }
            Some(index) if l.index != index && ours && !l.deleted => {
                // Re-created (new index) before we saw it go: the sockets are bound to the old
                // one. Attach to the new one; until that works the instance is in FAULT.
                tracing::info!(instance = %self.cfg.name, index = l.index, "interface re-created");
                self.reattach().await;
            }
            Some(index) if l.index == index => self.set_own_up(l.up).await,
            Some(_) => {}
        }
        let mut changed = false;
        for t in &mut self.track.links {
            let same = t.index == Some(l.index) || l.name.as_deref() == Some(t.name.as_str());
            if same {
                t.index = if l.deleted { None } else { Some(l.index) };
                if t.up != l.up {
                    t.up = l.up;
                    changed = true;
                }
            }
        }
        if changed {
            self.retrack().await;
        }
    }

    /// An address was added or removed on interface `index`.
    async fn on_address(&mut self, index: u32) {
        let Some(att) = &self.attach.att else {
            // Perhaps the address we wait for (IPv6 link-local after link up, an IPv4 address
            // added late).
            self.try_attach().await;
            return;
        };
        if att.iface.index != index || self.cfg.unicast_src.is_some() {
            return;
        }
        let src = att.src;
        let still_ours = Interface::lookup(&self.cfg.interface).is_ok_and(|i| match src {
            IpAddr::V4(a) => i.ipv4.contains(&a),
            IpAddr::V6(a) => i.ipv6.contains(&a),
        });
        if !still_ours {
            tracing::info!(instance = %self.cfg.name, %src, "source address removed");
            self.reattach().await;
        }
    }

    /// Attaches again (a new index or a new source address) without leaving the current state
    /// when it works; detaches (FAULT) when it does not.
    async fn reattach(&mut self) {
        match attach(&self.cfg) {
            Ok(a) => self.attached(a).await,
            Err(e) => {
                let reason = attach_reason(&self.cfg, &e);
                self.detach(reason).await;
            }
        }
    }

    /// A retry (timer, or a link / address event while detached).
    pub(super) async fn try_attach(&mut self) {
        if self.attach.att.is_some() {
            return;
        }
        match attach(&self.cfg) {
            Ok(a) => self.attached(a).await,
            Err(e) => {
                let reason = attach_reason(&self.cfg, &e);
                if self.attach.fault.as_deref() != Some(reason.as_str()) {
                    tracing::warn!(instance = %self.cfg.name, %reason,
                        "interface not usable yet: FAULT until it is (retried)");
                }
                self.attach.fault = Some(reason);
                self.attach.retry.failed(Instant::now());
                self.counters.attach_failures += 1;
            }
        }
    }

    /// Takes `a` as the instance's interface: the state machine learns the (perhaps new)
    /// source address, wanted VIPs are put on the (perhaps new) interface, and the link state
    /// decides whether the fault clears.
    async fn attached(&mut self, a: Attached) {
        let index = a.iface.index;
        let src = a.src;
        tracing::info!(instance = %self.cfg.name, interface = %self.cfg.interface, index, %src,
            "interface attached");
        self.attach.att = Some(a);
        self.attach.fault = None;
        self.attach.retry.reset();
        if self.fsm.config().primary_address != src {
            let actions = self
                .fsm
                .handle(Event::PrimaryAddressChanged(src), self.now());
            self.execute(actions).await;
        }
        if self.vips.reconciler.want {
            // A re-created interface has none of our VIPs (adding is idempotent otherwise).
            self.vips.reconciler.unsettle();
            self.apply_vips().await;
            self.vips.garp.trigger(Instant::now());
            self.garp_tick();
        } else {
            // Not Master: an interface that was there all along (the first attach failed for
            // want of an address) may carry a VIP left by a killed process.
            self.ensure_vips_absent().await;
        }
        let up = match self.netlink.link_state(index).await {
            Ok(l) => l.is_some_and(|l| l.up),
            Err(e) => {
                tracing::warn!(instance = %self.cfg.name, error = %e,
                    "link state unknown: waiting for a link event");
                false
            }
        };
        // Told to the state machine even when unchanged: the link may have come up while
        // detached, when no event was acted on.
        self.set_own_up_forced(up).await;
    }

    /// The interface (or its address) is gone: FAULT with `reason`; retried with backoff.
    pub(super) async fn detach(&mut self, reason: String) {
        tracing::warn!(instance = %self.cfg.name, %reason, "interface lost: FAULT until it is back");
        // The state machine leaves Master first (VIP removal on the old index: ENODEV when it
        // is gone, which counts as done), then the sockets go.
        self.set_own_up(false).await;
        self.attach.att = None;
        self.attach.fault = Some(reason);
        self.attach.retry.reset();
        self.attach.retry.failed(Instant::now());
        if self.vips.reconciler.want {
            self.vips.reconciler.interface_missing();
        }
    }

    async fn set_own_up(&mut self, up: bool) {
        if up != self.attach.own_up {
            self.set_own_up_forced(up).await;
        }
    }

    /// Records the link state and tells the state machine (InterfaceUp / InterfaceDown).
    async fn set_own_up_forced(&mut self, up: bool) {
        let changed = up != self.attach.own_up;
        self.attach.own_up = up;
        if changed {
            tracing::info!(instance = %self.cfg.name, interface = %self.cfg.interface, up,
                "interface link changed");
        }
        if self.own.external.is_none() {
            let ev = if up {
                Event::InterfaceUp
            } else {
                Event::InterfaceDown
            };
            let actions = self.fsm.handle(ev, self.now());
            self.execute(actions).await;
        }
    }
}
