//! The VRRP state machine (RFC 9568 - Section 6.4 for v3, RFC 3768 - Section 6.4 for v2) as pure
//! code: inputs are [`Event`]s with an injected [`Timestamp`], outputs are [`Action`]s for the
//! runner to perform. Timers are values: [`Instance::next_deadline`] says when to call
//! [`Instance::poll_timers`] (or send [`Event::TimerFired`]). No I/O, no clock, no tokio.
//!
//! RFC 9568 says "Active" where RFC 3768 says "Master"; this module says Master (what keepalived
//! operators read) and quotes RFC 9568 as written. Quotes are word for word; where the RFC's
//! pseudo-code is a bulleted list, its items are joined with `;` and left-out text is `...`.
//! What could not be checked word for word against the RFC text is marked "paraphrased" and
//! carries no quote marks.
//!
//! Beyond the RFC (issue #10): a [`State::Fault`] for a down interface or a failed tracked check,
//! an effective priority pushed by tracking ([`Event::PriorityChanged`]), keepalived's
//! `preempt_delay`, and a Master that hears a lower-priority Master re-announces itself at once
//! with an advert (as RFC 9568 - Section 6.4.3 asks) AND a gratuitous ARP / unsolicited NA, so
//! that a healed split brain converges, and the clients follow, within one round trip.

mod instance;
mod reason;

use std::net::IpAddr;
use std::time::Duration;

pub use instance::Instance;
pub use reason::{DownCause, Reason};

use crate::packet::{Advert, Version};
use crate::time::{Centisecs, Timestamp};

/// The configuration of one virtual router instance, as far as the state machine needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// RFC 9568 - Section 6.1 (paraphrased): VRID, the Virtual Router Identifier, configured in
    /// 1..=255, with no default.
    pub vrid: u8,
    /// This router's priority in the election. RFC 9568 - Section 5.2.4: "The priority value for
    /// the VRRP Router that owns the IPvX address associated with the Virtual Router MUST be 255
    /// (decimal). VRRP Routers backing up a Virtual Router MUST use priority values between 1-254
    /// (decimal)." (0 is the Active Router resigning; Section 6.1, paraphrased.) A configured 0
    /// is treated as 1.
    pub priority: u8,
    /// RFC 9568 - Section 6.1 (paraphrased): Advertisement_Interval, the time between
    /// ADVERTISEMENTs in centiseconds, 100 (1 second) by default. (v2: a whole number of seconds.)
    pub advert_interval: Centisecs,
    /// RFC 9568 - Section 6.1 (paraphrased): Preempt_Mode, whether a (starting or restarting)
    /// higher-priority Backup preempts a lower-priority Active Router; True by default.
    /// (`nopreempt` = false.)
    pub preempt: bool,
    /// keepalived's `preempt_delay`: after Startup (or leaving Fault) a Backup does not preempt a
    /// lower-priority Master for this long. Zero = preempt at once.
    pub preempt_delay: Duration,
    /// RFC 9568 - Section 6.4.3: "It MUST accept packets addressed to the IPvX address(es)
    /// associated with the Virtual Router if it is the IPvX address owner or if Accept_Mode is
    /// True. Otherwise, it MUST NOT accept these packets." Not used by the state machine: the
    /// runner applies it.
    pub accept_mode: bool,
    /// The protocol version of the instance (decides the Skew_Time formula and whether the
    /// Backup learns the Master's interval).
    pub version: Version,
    /// This router's primary address on the interface (the IP source of its adverts), used for
    /// the tie-break between equal priorities (RFC 9568 - Section 6.4.3).
    pub primary_address: IpAddr,
}

impl Config {
    /// Whether this router owns the virtual addresses (priority 255).
    pub fn is_owner(&self) -> bool {
        self.priority == 255
    }
}

/// The state of an instance.
///
/// RFC 9568 - Section 6.4 (paraphrased): the states {Initialize}, {Backup} and {Active}.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// RFC 9568 - Section 6.4.1 (paraphrased): waiting for a Startup event.
    Initialize,
    /// RFC 9568 - Section 6.4.2 (paraphrased): monitoring the availability and state of the
    /// Active Router.
    Backup,
    /// RFC 9568 - Section 6.4.3 ({Active}, paraphrased): the router forwards for, and answers,
    /// the IPvX address(es) associated with the Virtual Router.
    Master,
    /// Not in the RFC (keepalived's FAULT): the interface is down or a tracked check failed; the
    /// instance holds no VIP and ignores adverts until the fault clears.
    Fault,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::Initialize => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        })
    }
}

/// An input of the state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// RFC 9568 - Section 6.4.1 (paraphrased): the Startup event leaves {Initialize}.
    Startup,
    /// RFC 9568 - Section 6.4.3: "If a Shutdown event is received, then: ... Send an
    /// ADVERTISEMENT with Priority = 0" (graceful stop: the Backup takes over after Skew_Time).
    Shutdown,
    /// A decoded advertisement that passed [`crate::packet::decode`] and
    /// [`crate::packet::check_local`], with the IP source it came from.
    AdvertReceived {
        /// IP source of the packet (the sender's primary address).
        from: IpAddr,
        /// The decoded advert, already past every receive check.
        advert: Advert,
    },
    /// A deadline returned by [`Instance::next_deadline`] has passed (same as
    /// [`Instance::poll_timers`]).
    TimerFired,
    /// The interface lost its link: -> [`State::Fault`].
    InterfaceDown,
    /// The interface is up again (the fault clears if no tracked check is failing).
    InterfaceUp,
    /// A tracked check declared FAULT: -> [`State::Fault`].
    TrackFault,
    /// The tracked checks are all fine again.
    TrackOk,
    /// The effective priority computed by tracking (base priority plus weights). Clamped to
    /// 1..=254 for a non-owner; an owner stays 255.
    PriorityChanged(u8),
    /// This router's primary address changed (the interface was re-created, or a missing
    /// address appeared): the new source of its adverts, used from now on for the
    /// equal-priority tie-break of RFC 9568 - Section 6.4.3 and as the Master's address.
    PrimaryAddressChanged(IpAddr),
}

/// A state change, with its reason and when it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The state before the event (RFC 9568 - Section 6.4).
    pub from: State,
    /// The state the event led to.
    pub to: State,
    /// Why the event led there (the RFC 9568 - Section 6.4 rule that fired).
    pub reason: Reason,
    /// When (the `now` of the event that caused it).
    pub at: Timestamp,
}

/// An output of the state machine, performed by the runner in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send an ADVERTISEMENT with this priority, the configured interval and the instance's
    /// virtual addresses.
    SendAdvert {
        /// The priority to advertise (0 = resigning).
        priority: u8,
    },
    /// Add the virtual addresses to the interface.
    AddVips,
    /// Remove the virtual addresses from the interface.
    RemoveVips,
    /// Send gratuitous ARP (IPv4) / unsolicited Neighbor Advertisements (IPv6) for the virtual
    /// addresses now (the runner repeats them as configured).
    ///
    /// RFC 9568 - Section 6.4.2: "For each IPv4 address associated with the Virtual Router,
    /// broadcast a gratuitous ARP message containing the Virtual Router IPv4 address" (erratum
    /// 7949), and for IPv6 "send an unsolicited ND Neighbor Advertisement".
    SendGratuitous,
    /// A state change to publish (events stream, notify scripts, logs).
    Notify(Transition),
}
