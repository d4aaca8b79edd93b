//! What the owner of an instance gates its own work on: the level-triggered [`Role`] (state,
//! VIPs held, since when, why), and the optional takeover barrier ([`TakeoverGate`]) that lets
//! the owner finish its work (program IPVS) before the VIPs go up.
//!
//! ```text
//!   Backup ──Master_Down_Timer──► Master, vips_held: false ──TakeoverRequest──► owner
//!                                   │  (adverts keep going)     ◄──ready() or timeout──┘
//!                                   ▼
//!                                 VIPs added, GARP/NA ──► Master, vips_held: true
//!   Master ──leaves──► VIPs removed first ──► Backup/Fault, vips_held: false  (owner withdraws)
//! ```

use std::fmt;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};

use crate::fsm::{self, State};

/// Why the role last changed state: the state machine's reason, or a decision the state machine
/// did not make (role-driven claim / release, the stop path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransitionReason {
    /// The instance has not left Initialize yet (the role before the first transition).
    Created,
    /// A VRRP transition (RFC 9568 - Section 6.4), with the state machine's reason.
    Vrrp(fsm::Reason),
    /// Role-driven mode: `InstanceHandle::claim` took the VIPs.
    Claimed,
    /// Role-driven mode: `InstanceHandle::release` gave them up.
    Released,
    /// Role-driven mode: the instance stopped while it held the VIPs.
    Stopped,
}

impl fmt::Display for TransitionReason {
    /// The words the status and the logs have always shown (`claimed by external decision`,
    /// or the state machine's reason as it reads).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransitionReason::Created => f.write_str("created"),
            TransitionReason::Vrrp(r) => r.fmt(f),
            TransitionReason::Claimed => f.write_str("claimed by external decision"),
            TransitionReason::Released => f.write_str("released by external decision"),
            TransitionReason::Stopped => f.write_str("shutdown"),
        }
    }
}

/// The instance's role, for an owner that gates its own work on it (the director programs IPVS
/// only while `state == Master && vips_held`, and withdraws once `vips_held` is false).
///
/// Published on a watch channel ([`super::InstanceHandle::role`]) that changes only when one of
/// these fields changes: never on an advert or a counter, so a reader wakes only for a decision,
/// and (a watch keeps the latest value) never misses the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Role {
    /// The published state (role-driven instances: Master after a claim, Backup after a release;
    /// FAULT while their interface is missing).
    pub state: State,
    /// Every VIP is on the interface (as the last add confirmed). False in Master while a
    /// takeover waits for the owner, and false before the role shows any other state after
    /// Master: the VIPs are removed first.
    pub vips_held: bool,
    /// When `state` was entered (wall clock; the instance's creation for the first role).
    pub since: SystemTime,
    /// Why `state` was entered.
    pub reason: TransitionReason,
}

/// How long a takeover waits for the owner by default: long enough for a large IPVS table
/// (10,000 services x 10 real servers program in well under a second), short enough that a hung
/// owner costs a bounded outage.
pub const DEFAULT_TAKEOVER_TIMEOUT: Duration = Duration::from_secs(5);

/// The takeover barrier, given at start ([`super::StartOptions::takeover`]): on entering Master
/// by VRRP, the runner publishes `Role { state: Master, vips_held: false }`, sends a
/// [`TakeoverRequest`] on `requests`, and adds the VIPs (then GARP/NA) only when the request is
/// answered with [`TakeoverRequest::ready`], or after `timeout` (logged as a warning). A request
/// dropped unanswered, or a closed channel, lets the takeover proceed at once (warned too): a
/// gone owner must not keep the VIP down. Leaving Master before then cancels the request
/// ([`TakeoverRequest::is_cancelled`]); the VIPs are not added.
///
/// Role-driven instances (`claim`) do not use it: their owner decides when to claim.
#[derive(Debug, Clone)]
pub struct TakeoverGate {
    /// Where takeover requests go (one per entry into Master).
    pub requests: mpsc::UnboundedSender<TakeoverRequest>,
    /// The longest a takeover waits for the owner.
    pub timeout: Duration,
}

impl TakeoverGate {
    /// A gate with [`DEFAULT_TAKEOVER_TIMEOUT`] and the receiver its requests arrive on.
    pub fn new() -> (TakeoverGate, mpsc::UnboundedReceiver<TakeoverRequest>) {
        Self::with_timeout(DEFAULT_TAKEOVER_TIMEOUT)
    }

    /// A gate that waits at most `timeout` for each request's answer.
    pub fn with_timeout(
        timeout: Duration,
    ) -> (TakeoverGate, mpsc::UnboundedReceiver<TakeoverRequest>) {
        let (requests, rx) = mpsc::unbounded_channel();
        (TakeoverGate { requests, timeout }, rx)
    }
}

/// One pending takeover: the instance is Master and waits with its VIPs down until this is
/// answered ([`TakeoverRequest::ready`]) or its timeout passes.
#[derive(Debug)]
pub struct TakeoverRequest {
    pub(super) instance: String,
    pub(super) since: SystemTime,
    pub(super) ack: oneshot::Sender<()>,
}

impl TakeoverRequest {
    /// The instance that waits.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// When it entered Master (the [`Role::since`] of the role this request belongs to).
    pub fn since(&self) -> SystemTime {
        self.since
    }

    /// The owner's work is done: add the VIPs and announce them now. Does nothing when the
    /// takeover was cancelled (the instance left Master) or timed out meanwhile.
    pub fn ready(self) {
        let _ = self.ack.send(());
    }

    /// The instance left Master (or stopped, or the timeout passed) since the request was sent:
    /// the owner should undo what it did for this takeover, following the [`Role`].
    pub fn is_cancelled(&self) -> bool {
        self.ack.is_closed()
    }

    /// Resolves when the request is cancelled (see [`TakeoverRequest::is_cancelled`]).
    pub async fn cancelled(&mut self) {
        self.ack.closed().await
    }
}

/// Options of [`super::start_with`]; the default is [`super::start`]'s behaviour.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Wait for the owner before adding the VIPs on each VRRP takeover (see [`TakeoverGate`]).
    pub takeover: Option<TakeoverGate>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_keep_their_words() {
        assert_eq!(
            TransitionReason::Claimed.to_string(),
            "claimed by external decision"
        );
        assert_eq!(
            TransitionReason::Released.to_string(),
            "released by external decision"
        );
        assert_eq!(TransitionReason::Stopped.to_string(), "shutdown");
        assert_eq!(
            TransitionReason::Vrrp(fsm::Reason::Startup).to_string(),
            fsm::Reason::Startup.to_string()
        );
    }

    #[test]
    fn a_request_knows_when_it_is_cancelled() {
        let (tx, rx) = oneshot::channel();
        let req = TakeoverRequest {
            instance: "vi".into(),
            since: SystemTime::UNIX_EPOCH,
            ack: tx,
        };
        assert!(!req.is_cancelled());
        drop(rx);
        assert!(req.is_cancelled());
        req.ready(); // answering a cancelled request is harmless
    }
}
