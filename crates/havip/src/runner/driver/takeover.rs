//! The takeover barrier (see [`crate::runner::TakeoverGate`]): entering Master under a gate
//! publishes the role with `vips_held: false`, sends the owner a request and waits for its
//! answer or the gate's timeout before adding the VIPs and announcing them. The state machine
//! keeps running meanwhile (adverts go out on schedule); leaving Master cancels the wait.

use tokio::sync::oneshot;
use tokio::time::{sleep_until, Instant};

use super::Driver;
use crate::fsm::State;
use crate::runner::TakeoverRequest;

/// A takeover waiting for the owner.
pub(super) struct Pending {
    deadline: Instant,
    ack: oneshot::Receiver<()>,
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The owner answered `ready`.
    Ready,
    /// The owner dropped the request unanswered.
    Dropped,
    /// The gate's timeout passed.
    TimedOut,
}

/// Resolves when the pending takeover (if any) ends; pending forever without one.
pub(super) async fn outcome(p: &mut Option<Pending>) -> Outcome {
    let Some(p) = p else {
        return std::future::pending().await;
    };
    tokio::select! {
        r = &mut p.ack => if r.is_ok() { Outcome::Ready } else { Outcome::Dropped },
        _ = sleep_until(p.deadline) => Outcome::TimedOut,
    }
}

impl Driver {
    /// Entered Master under a gate: publish the role (Master, VIPs not held) and ask the owner.
    pub(super) async fn begin_takeover(&mut self) {
        let Some(gate) = self.own.gate.clone() else {
            return;
        };
        self.own.pending = None;
        self.publish();
        let (ack, rx) = oneshot::channel();
        let req = TakeoverRequest {
            instance: self.cfg.name.clone(),
            since: self.out.role_since,
            ack,
        };
        if gate.requests.send(req).is_err() {
            tracing::warn!(instance = %self.cfg.name,
                "takeover: nobody receives takeover requests any more; adding the VIPs now");
            self.finish_takeover(Outcome::Dropped).await;
            return;
        }
        tracing::info!(instance = %self.cfg.name, timeout = ?gate.timeout,
            "takeover: waiting for the owner before adding the VIPs");
        self.own.pending = Some(Pending {
            deadline: Instant::now() + gate.timeout,
            ack: rx,
        });
    }

    /// The wait is over (answer, dropped request or timeout): add the VIPs and announce them.
    pub(super) async fn finish_takeover(&mut self, o: Outcome) {
        self.own.pending = None;
        if self.fsm.state() != State::Master {
            // Leaving Master cancels the wait first; never add VIPs outside Master.
            return;
        }
        match o {
            Outcome::Ready => tracing::info!(instance = %self.cfg.name,
                "takeover: the owner is ready; adding the VIPs"),
            Outcome::Dropped => tracing::warn!(instance = %self.cfg.name,
                "takeover: the owner dropped the request unanswered; adding the VIPs"),
            Outcome::TimedOut => tracing::warn!(instance = %self.cfg.name,
                timeout = ?self.own.gate.as_ref().map(|g| g.timeout),
                "takeover: the owner did not answer in time; adding the VIPs anyway"),
        }
        self.vips.reconciler.set_want(true);
        self.apply_vips().await;
        self.vips.garp.trigger(Instant::now());
        self.garp_tick();
    }

    /// Left Master (or stopping) while waiting: the request is cancelled, no VIP is added.
    pub(super) fn cancel_takeover(&mut self) {
        self.own.begin = false;
        if self.own.pending.take().is_some() {
            tracing::info!(instance = %self.cfg.name,
                "takeover: cancelled (left Master before the owner answered)");
        }
    }
}
