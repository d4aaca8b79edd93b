//! One virtual router instance: the handlers of RFC 9568 - Section 6.4 (and RFC 3768 -
//! Section 6.4 for v2), each quoting the rule it implements.

use std::net::IpAddr;

use super::{Action, Config, DownCause, Event, Reason, State, Transition};
use crate::packet::{Advert, Version};
use crate::time::{master_down, Centisecs, DownTimers, Timestamp};

/// A virtual router instance: its state, timers and learned values.
#[derive(Debug, Clone)]
pub struct Instance {
    config: Config,
    state: State,
    /// The effective priority (configured, adjusted by tracking).
    priority: u8,
    /// RFC 9568 - Section 6.1 (paraphrased): Active_Adver_Interval, the advertisement interval
    /// in the ADVERTISEMENTs received from the Active Router (centiseconds).
    master_adver_interval: Centisecs,
    adver_timer: Option<Timestamp>,
    master_down_timer: Option<Timestamp>,
    down_cause: DownCause,
    preempt_after: Timestamp,
    started: bool,
    link_down: bool,
    track_fault: bool,
    master: Option<IpAddr>,
}

impl Instance {
    /// A new instance in [`State::Initialize`], waiting for [`Event::Startup`].
    pub fn new(config: Config) -> Instance {
        let priority = config.priority.max(1);
        Instance {
            master_adver_interval: config.advert_interval,
            priority,
            state: State::Initialize,
            adver_timer: None,
            master_down_timer: None,
            down_cause: DownCause::NoMasterHeard,
            preempt_after: Timestamp::ZERO,
            started: false,
            link_down: false,
            track_fault: false,
            master: None,
            config,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The effective priority (what this router advertises).
    pub fn priority(&self) -> u8 {
        self.priority
    }

    /// The Master's advertisement interval as learned from its adverts (v3), else ours.
    pub fn master_adver_interval(&self) -> Centisecs {
        self.master_adver_interval
    }

    /// The address of the current Master as far as this router knows (itself when Master).
    pub fn master_address(&self) -> Option<IpAddr> {
        self.master
    }

    /// Skew_Time and Master_Down_Interval as they stand now (local priority, learned interval).
    pub fn down_timers(&self) -> DownTimers {
        master_down(
            self.config.version,
            self.priority,
            self.master_adver_interval,
        )
    }

    /// When the caller must next call [`Instance::poll_timers`]: the Adver_Timer in Master,
    /// the Master_Down_Timer in Backup, none otherwise.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        match self.state {
            State::Master => self.adver_timer,
            State::Backup => self.master_down_timer,
            State::Initialize | State::Fault => None,
        }
    }

    /// Feeds one event at time `now`; returns the actions to perform, in order.
    pub fn handle(&mut self, event: Event, now: Timestamp) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Startup => self.on_startup(now, &mut out),
            Event::Shutdown => self.on_shutdown(now, &mut out),
            Event::AdvertReceived { from, advert } => self.on_advert(from, &advert, now, &mut out),
            Event::TimerFired => self.on_timers(now, &mut out),
            Event::InterfaceDown => {
                self.link_down = true;
                self.enter_fault(Reason::InterfaceDown, now, &mut out);
            }
            Event::TrackFault => {
                self.track_fault = true;
                self.enter_fault(Reason::TrackFault, now, &mut out);
            }
            Event::InterfaceUp => {
                self.link_down = false;
                self.maybe_clear_fault(now, &mut out);
            }
            Event::TrackOk => {
                self.track_fault = false;
                self.maybe_clear_fault(now, &mut out);
            }
            Event::PriorityChanged(p) => self.on_priority(p, now, &mut out),
            Event::PrimaryAddressChanged(a) => {
                self.config.primary_address = a;
                if self.state == State::Master {
                    self.master = Some(a);
                }
            }
        }
        out
    }

    /// Fires every timer whose deadline is at or before `now` (same as [`Event::TimerFired`]).
    pub fn poll_timers(&mut self, now: Timestamp) -> Vec<Action> {
        self.handle(Event::TimerFired, now)
    }

    fn transition(&mut self, to: State, reason: Reason, now: Timestamp, out: &mut Vec<Action>) {
        let from = self.state;
        self.state = to;
        out.push(Action::Notify(Transition {
            from,
            to,
            reason,
            at: now,
        }));
    }

    fn faulted(&self) -> bool {
        self.link_down || self.track_fault
    }

    /// RFC 9568 - Section 6.4.1 (paraphrased): on a Startup event, an address owner (Priority
    /// 255) sends an ADVERTISEMENT and gratuitous ARP / unsolicited NA, sets the Adver_Timer to
    /// Advertisement_Interval and goes {Active}; any other router sets Active_Adver_Interval to
    /// Advertisement_Interval, sets the Active_Down_Timer to Active_Down_Interval and goes
    /// {Backup}.
    fn on_startup(&mut self, now: Timestamp, out: &mut Vec<Action>) {
        if self.started {
            return;
        }
        self.started = true;
        if self.link_down {
            self.enter_fault(Reason::InterfaceDown, now, out);
        } else if self.track_fault {
            self.enter_fault(Reason::TrackFault, now, out);
        } else if self.config.is_owner() {
            self.enter_running(Reason::StartupOwner, now, out);
        } else {
            self.enter_running(Reason::Startup, now, out);
        }
    }

    /// The Startup rule, also used when a fault clears.
    fn enter_running(&mut self, reason: Reason, now: Timestamp, out: &mut Vec<Action>) {
        self.preempt_after = now + self.config.preempt_delay;
        if self.config.is_owner() {
            self.become_master(reason, now, out);
        } else {
            self.master_adver_interval = self.config.advert_interval;
            self.master_down_timer = Some(now + self.down_timers().master_down);
            self.down_cause = DownCause::NoMasterHeard;
            self.adver_timer = None;
            self.master = None;
            self.transition(State::Backup, reason, now, out);
        }
    }

    /// RFC 9568 - Section 6.4.2: "If the Active_Down_Timer fires, then: Send an ADVERTISEMENT;
    /// If the protected IPvX address is an IPv4 address, then: For each IPv4 address associated
    /// with the Virtual Router, broadcast a gratuitous ARP message containing the Virtual Router
    /// IPv4 address ... else // IPv6 ... send an unsolicited ND Neighbor Advertisement ...; Set
    /// the Adver_Timer to Advertisement_Interval; Transition to the {Active} state" (erratum 7949
    /// wording). The VIPs are added first so that the announcement is for addresses this host
    /// answers for. Like keepalived without `use_vmac`, we announce the interface's own MAC.
    fn become_master(&mut self, reason: Reason, now: Timestamp, out: &mut Vec<Action>) {
        out.push(Action::AddVips);
        out.push(Action::SendAdvert {
            priority: self.priority,
        });
        out.push(Action::SendGratuitous);
        self.adver_timer = Some(now + self.config.advert_interval.as_duration());
        self.master_down_timer = None;
        self.master = Some(self.config.primary_address);
        self.transition(State::Master, reason, now, out);
    }

    /// RFC 9568 - Section 6.4.2: "If a Shutdown event is received, then: Cancel the
    /// Active_Down_Timer; Transition to the {Initialize} state"; Section 6.4.3: "If a Shutdown
    /// event is received, then: Cancel the Adver_Timer; Send an ADVERTISEMENT with Priority = 0;
    /// Transition to the {Initialize} state"
    /// Issue #10: the VIPs are removed ("on stop remove the VIP").
    fn on_shutdown(&mut self, now: Timestamp, out: &mut Vec<Action>) {
        if !self.started {
            return;
        }
        self.started = false;
        if self.state == State::Master {
            out.push(Action::SendAdvert { priority: 0 });
            out.push(Action::RemoveVips);
        }
        self.adver_timer = None;
        self.master_down_timer = None;
        self.master = None;
        self.transition(State::Initialize, Reason::Shutdown, now, out);
    }

    fn on_advert(&mut self, from: IpAddr, advert: &Advert, now: Timestamp, out: &mut Vec<Action>) {
        // Our own advert looped back (the runner filters these too): never an election input.
        if from == self.config.primary_address {
            return;
        }
        match self.state {
            State::Backup => self.backup_advert(from, advert, now),
            State::Master => self.master_advert(from, advert, now, out),
            State::Initialize | State::Fault => {}
        }
    }

    /// RFC 9568 - Section 6.4.2, on an ADVERTISEMENT: "If the Priority in the ADVERTISEMENT is 0,
    /// then: Set the Active_Down_Timer to Skew_Time" ... "If Preempt_Mode is False, or if the
    /// Priority in the ADVERTISEMENT is greater than or equal to the local Priority, then: Set
    /// the Active_Adver_Interval to the Max Advertise Interval contained in the ADVERTISEMENT;
    /// Recompute the Skew_Time; Recompute the Active_Down_Interval; Set the Active_Down_Timer to
    /// Active_Down_Interval; else // preempt was true and priority was less than the local
    /// priority; Discard the ADVERTISEMENT"
    ///
    /// RFC 3768 - Section 6.4.2 is the same without learning the interval: "If Preempt_Mode is
    /// False, or If the Priority in the ADVERTISEMENT is greater than or equal to the local
    /// Priority, then: Reset the Master_Down_Timer to Master_Down_Interval" (VRRPv2 requires
    /// equal intervals, checked by [`crate::packet::check_local`]).
    fn backup_advert(&mut self, from: IpAddr, advert: &Advert, now: Timestamp) {
        if advert.priority == 0 {
            self.master_down_timer = Some(now + self.down_timers().skew);
            self.down_cause = DownCause::MasterResigned { from };
            self.master = None;
            return;
        }
        let may_preempt = self.config.preempt && now >= self.preempt_after;
        if !may_preempt || advert.priority >= self.priority {
            if self.config.version == Version::V3 {
                self.master_adver_interval = advert.max_advert_int;
            }
            self.master_down_timer = Some(now + self.down_timers().master_down);
            self.down_cause = DownCause::AdvertsStopped { last_master: from };
            self.master = Some(from);
        } else {
            // Discarded: the timer keeps running and we take over when it fires. The sender is
            // still the Master on the wire until then.
            self.master = Some(from);
            self.down_cause = DownCause::Preempting {
                from,
                priority: advert.priority,
            };
        }
    }

    /// RFC 9568 - Section 6.4.3, on an ADVERTISEMENT: "If the Priority in the ADVERTISEMENT is 0,
    /// then: Send an ADVERTISEMENT; Reset the Adver_Timer to Advertisement_Interval" ... "If the
    /// Priority in the ADVERTISEMENT is greater than the
    /// local Priority or the Priority in the ADVERTISEMENT is equal to the local Priority and the
    /// primary IPvX address of the sender is greater than the local primary IPvX address (based
    /// on an unsigned integer comparison of the IPvX addresses in network byte order), then:
    /// Cancel Adver_Timer; Set the Active_Adver_Interval to the Max Advertise Interval contained
    /// in the ADVERTISEMENT; Recompute the Skew_Time; Recompute the Active_Down_Interval; Set the
    /// Active_Down_Timer to Active_Down_Interval; Transition to the {Backup} state; else // new
    /// Active Router logic; Discard the ADVERTISEMENT; Send an ADVERTISEMENT immediately to
    /// assert the {Active} state to the sending VRRP Router and to update any learning bridges
    /// with the correct Active VRRP Router path."
    ///
    /// Product choice (issue #10) on top: the immediate advert comes with a gratuitous ARP / NA,
    /// so that after a split brain heals the clients that talked to the other side follow us at
    /// once; and we do it for VRRPv2 too (RFC 3768 - Section 6.4.3 only says "Discard
    /// ADVERTISEMENT").
    fn master_advert(
        &mut self,
        from: IpAddr,
        advert: &Advert,
        now: Timestamp,
        out: &mut Vec<Action>,
    ) {
        if advert.priority == 0 {
            out.push(Action::SendAdvert {
                priority: self.priority,
            });
            self.adver_timer = Some(now + self.config.advert_interval.as_duration());
            return;
        }
        // Same family (checked by decode): IpAddr's order is the unsigned network-order order.
        let higher_addr = from > self.config.primary_address;
        let reason = if advert.priority > self.priority {
            Some(Reason::HigherPriority {
                from,
                priority: advert.priority,
            })
        } else if advert.priority == self.priority && higher_addr {
            Some(Reason::EqualPriorityHigherAddress { from })
        } else {
            None
        };
        match reason {
            Some(reason) => {
                self.adver_timer = None;
                if self.config.version == Version::V3 {
                    self.master_adver_interval = advert.max_advert_int;
                } else {
                    self.master_adver_interval = self.config.advert_interval;
                }
                self.master_down_timer = Some(now + self.down_timers().master_down);
                self.down_cause = DownCause::AdvertsStopped { last_master: from };
                self.master = Some(from);
                out.push(Action::RemoveVips);
                self.transition(State::Backup, reason, now, out);
            }
            None => {
                out.push(Action::SendAdvert {
                    priority: self.priority,
                });
                out.push(Action::SendGratuitous);
                self.adver_timer = Some(now + self.config.advert_interval.as_duration());
            }
        }
    }

    /// RFC 9568 - Section 6.4.3: "If the Adver_Timer fires, then: Send an ADVERTISEMENT; Reset
    /// the Adver_Timer to Advertisement_Interval". (Reset from `now`: a late poll does not send
    /// a burst.) Backup: the Active_Down_Timer rule of [`Instance::become_master`].
    fn on_timers(&mut self, now: Timestamp, out: &mut Vec<Action>) {
        match self.state {
            State::Master => {
                if self.adver_timer.is_some_and(|t| t <= now) {
                    out.push(Action::SendAdvert {
                        priority: self.priority,
                    });
                    self.adver_timer = Some(now + self.config.advert_interval.as_duration());
                }
            }
            State::Backup => {
                if self.master_down_timer.is_some_and(|t| t <= now) {
                    self.become_master(Reason::MasterDown(self.down_cause), now, out);
                }
            }
            State::Initialize | State::Fault => {}
        }
    }

    /// Leaves Backup/Master for Fault. A Master resigns first (priority 0) when its link is up,
    /// so the Backup takes over after Skew_Time, then removes its VIPs.
    fn enter_fault(&mut self, reason: Reason, now: Timestamp, out: &mut Vec<Action>) {
        if !self.started || self.state == State::Fault {
            return;
        }
        if self.state == State::Master {
            if !self.link_down {
                out.push(Action::SendAdvert { priority: 0 });
            }
            out.push(Action::RemoveVips);
        }
        self.adver_timer = None;
        self.master_down_timer = None;
        self.master = None;
        self.transition(State::Fault, reason, now, out);
    }

    fn maybe_clear_fault(&mut self, now: Timestamp, out: &mut Vec<Action>) {
        if self.state == State::Fault && !self.faulted() {
            self.enter_running(Reason::FaultCleared, now, out);
        }
    }

    /// A new effective priority from tracking. A Master advertises it at once so a Backup can
    /// react (preempt) without waiting for the next Adver_Timer.
    fn on_priority(&mut self, p: u8, now: Timestamp, out: &mut Vec<Action>) {
        let p = if self.config.is_owner() {
            255
        } else {
            p.clamp(1, 254)
        };
        if p == self.priority {
            return;
        }
        self.priority = p;
        if self.state == State::Master {
            out.push(Action::SendAdvert { priority: p });
            self.adver_timer = Some(now + self.config.advert_interval.as_duration());
        }
    }
}
