//! The ownership gate of one VRRP instance: when this node programs the instance's virtual
//! services, when it withdraws them, in which order relative to the VIP, and what it retries.
//! Pure, like havip's `fsm`: `(state, event, now) -> (state, actions)`; timers are deadlines the
//! caller reads with [`Gate::next_deadline`] and reports with [`Event::Timer`]. No tokio, no
//! socket, no `ipvs::Conn` (design.md); the engine runs the actions.
//!
//! Two ordering rules (issue 16), both enforced here:
//!
//! ```text
//!  taking over: "program, then VIP"          giving up: "VIP off, then withdraw"
//!
//!  havip          gate           engine       havip          gate           engine
//!  Master, VIPs   |              |            Backup/Fault/  |              |
//!  not up yet --> | Program(t) ->| diff+apply stop: VIPs  -> | Withdraw(t)->| diff+apply
//!  (barrier       |              |            removed        |              | (instance's
//!   waits)        |<- Done(t,ok)-|                           |<- Done(t,ok)-|  keys only)
//!             <-- | AckTakeover  |                           | Standby      |
//!  VIPs up, GARP  | Active       |
//! ```
//!
//! havip's takeover barrier bounds the wait: if we never ack (retries keep failing), it raises
//! the VIP after its timeout and reports [`Role::MasterHeld`]; the gate then stops owing an ack
//! and keeps retrying. A failure that retrying cannot fix ([`Outcome::Fatal`], e.g. the kernel
//! has no module for a scheduler) still acks: the services that did apply should serve, and
//! the periodic verification tries again.
//!
//! The main transitions (M = [`Role::TakeoverPending`] or [`Role::MasterHeld`], R =
//! [`Role::Released`]; every `(state, event)` pair is tested in `tests.rs`):
//!
//! ```text
//!  from                          event                     to             actions
//!  Undecided                     M                         Programming    Program
//!  Undecided                     R                         Withdrawing    Withdraw
//!  Programming                   done: ok | fatal          Active         AckTakeover if owed,
//!                                                                         Program if changed
//!  Programming                   done: retryable           RetryProgram   (backoff deadline)
//!  RetryProgram                  timer                     Programming    Program
//!  Active                        verify timer | desired    Programming    Program
//!  Active                        TakeoverPending           Active         AckTakeover
//!  Programming|RetryProgram|     R                         Withdrawing    Withdraw
//!    Active
//!  Withdrawing                   done: ok                  Standby        -
//!  Withdrawing                   done: retryable | fatal   RetryWithdraw  (deadline)
//!  RetryWithdraw                 timer                     Withdrawing    Withdraw
//!  Standby|Withdrawing|          M                         Programming    Program
//!    RetryWithdraw
//!  Standby                       stop                      Stopped        -
//!  -- with a stop pending: nothing is programmed; --
//!  Withdrawing                   done: ok | fatal          Stopped        -
//!  Withdrawing|RetryWithdraw     M (the VIP came back)     Holding        -
//!  Holding|Undecided|Active|...  R                         Withdrawing    Withdraw
//! ```
//!
//! - Start: [`State::Undecided`]. Nothing is programmed or withdrawn before the first VRRP
//!   decision (the first [`Event::Role`]): a director restarted after `kill -9` adopts the
//!   table it left if it becomes Master again, and withdraws it once it knows it is not.
//!   The engine maps havip's role signal so that [`Role::Released`] is a decision (another node
//!   is Master, or this one is in Fault or stopped), not the Backup havip starts in.
//! - Master: drift verification every [`GateConfig::verify_interval`] (a reconcile: the engine
//!   snapshots, diffs and repairs, counting repairs).
//! - Transient failures ([`Outcome::Retryable`]: ENOMEM, EBUSY, a lost ack) are retried with
//!   exponential backoff from [`GateConfig::retry_base`] up to [`GateConfig::retry_max`].
//! - Stop ([`Event::StopRequested`]): no more programming; the gate waits for the VIP to go
//!   ([`Role::Released`], which havip's shutdown produces), withdraws, then is
//!   [`State::Stopped`]. From [`State::Standby`] it stops at once (nothing of ours is there).
//!
//! Contract with the engine: it runs `Program`/`Withdraw` in the order emitted (one IPVS actor,
//! first in first out) and answers each with [`Event::ReconcileDone`] carrying its ticket; a
//! result whose ticket is not the one the gate waits for is ignored (a Withdraw emitted while a
//! Program ran supersedes it).

#![allow(
    dead_code,
    reason = "counters and stopping are for status and metrics, which read them next"
)]

#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

/// Timers and backoff of a gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateConfig {
    /// How often a programmed Master verifies the kernel against the desired table (drift).
    pub verify_interval: Duration,
    /// The wait before the first retry of a transient failure; doubled per retry.
    pub retry_base: Duration,
    /// The longest wait between retries.
    pub retry_max: Duration,
}

impl Default for GateConfig {
    /// Verify every 10 s; retry after 200 ms, 400 ms, ... at most 10 s apart.
    fn default() -> Self {
        GateConfig {
            verify_interval: Duration::from_secs(10),
            retry_base: Duration::from_millis(200),
            retry_max: Duration::from_secs(10),
        }
    }
}

/// Identifies one Program or Withdraw the gate asked for; its result must carry it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub u64);

/// This node's VRRP role for the instance, as havip's level-triggered role signal reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Master, VIPs not up yet: havip waits for [`Action::AckTakeover`] (bounded by its
    /// timeout) before adding them.
    TakeoverPending,
    /// Master, VIPs held.
    MasterHeld,
    /// Backup, Fault or stopped, VIPs removed.
    Released,
}

/// How a Program or Withdraw ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every operation applied (or there was nothing to do).
    Ok,
    /// A transient failure (ENOMEM, EBUSY, a lost ack, the snapshot torn every try): retry.
    Retryable,
    /// A failure retrying will not fix (the kernel refused an operation for good).
    Fatal,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// havip's role for this instance changed.
    Role(Role),
    /// The engine finished a Program or Withdraw.
    ReconcileDone {
        /// The ticket of the action it answers.
        ticket: Ticket,
        /// How it ended.
        outcome: Outcome,
    },
    /// The desired table of this instance changed (reload, health transition, operator drain,
    /// a drain deadline from `reconcile::Plan::wake_at`).
    DesiredChanged,
    /// [`Gate::next_deadline`] was reached.
    Timer,
    /// The daemon is stopping (SIGTERM, or the instance left the configuration).
    StopRequested,
}

/// What the engine must do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Reconcile this instance's services as Master (snapshot, diff, apply), then answer with
    /// [`Event::ReconcileDone`] and this ticket.
    Program(Ticket),
    /// Tell havip the takeover may proceed: the services are programmed, raise the VIPs.
    AckTakeover,
    /// Remove exactly the services this instance owns (diff with nothing desired for it), then
    /// answer with [`Event::ReconcileDone`] and this ticket.
    Withdraw(Ticket),
}

/// Where the gate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Started, no VRRP decision yet: nothing programmed or withdrawn.
    Undecided,
    /// Master: a Program runs.
    Programming {
        /// The Program being waited for.
        ticket: Ticket,
        /// Failed tries before this one (backoff exponent).
        attempt: u32,
        /// havip waits for our ack (VIPs not up yet).
        ack_owed: bool,
        /// The desired table changed meanwhile: program again when this one ends.
        again: bool,
    },
    /// Master: the last Program failed transiently; the next one starts at `at`.
    RetryProgram {
        /// When to retry.
        at: Instant,
        /// Failed tries so far.
        attempt: u32,
        /// havip waits for our ack.
        ack_owed: bool,
    },
    /// Master, programmed; verification at `verify_at`.
    Active {
        /// The next drift verification.
        verify_at: Instant,
        /// The last Program ended with a fatal failure (status shows it).
        degraded: bool,
    },
    /// VIPs gone: a Withdraw runs.
    Withdrawing {
        /// The Withdraw being waited for.
        ticket: Ticket,
        /// Failed tries before this one.
        attempt: u32,
    },
    /// VIPs gone: the last Withdraw failed; the next starts at `at`.
    RetryWithdraw {
        /// When to retry.
        at: Instant,
        /// Failed tries so far.
        attempt: u32,
    },
    /// Stopping, and havip reports Master again while we were withdrawing: wait for
    /// [`Role::Released`] before withdrawing (nothing programmed while stopping).
    Holding,
    /// Not Master, nothing of this instance's in the kernel.
    Standby,
    /// Stopped after withdrawing: no more actions.
    Stopped,
}

/// What the gate did so far (for `director status` and metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Programs asked for (takeovers, verifications, desired changes, retries).
    pub programs: u64,
    /// Withdraws asked for.
    pub withdraws: u64,
    /// Transient failures (each one retried).
    pub retries: u64,
    /// Fatal failures.
    pub failures: u64,
    /// Takeover acks sent to havip.
    pub acks: u64,
}

/// The ownership state machine of one instance.
#[derive(Debug, Clone)]
pub struct Gate {
    config: GateConfig,
    state: State,
    stopping: bool,
    next_ticket: u64,
    counters: Counters,
}

impl Gate {
    /// A gate in [`State::Undecided`].
    pub fn new(config: GateConfig) -> Gate {
        Gate {
            config,
            state: State::Undecided,
            stopping: false,
            next_ticket: 1,
            counters: Counters::default(),
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// True once [`Event::StopRequested`] arrived.
    pub fn stopping(&self) -> bool {
        self.stopping
    }

    /// What the gate did so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Takes new timers (a reload changed `verify_interval`): backoff from the next failure,
    /// and a programmed Master verifies at most `verify_interval` after `now`, so a shorter
    /// interval applies at once and a longer one from the next verification.
    pub fn reconfigure(&mut self, config: GateConfig, now: Instant) {
        self.config = config;
        if let State::Active { verify_at, .. } = &mut self.state {
            *verify_at = (*verify_at).min(now + config.verify_interval);
        }
    }

    /// When the caller must send [`Event::Timer`]: a retry, or the next verification while
    /// Master (none while stopping).
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.state {
            State::RetryWithdraw { at, .. } => Some(at),
            State::RetryProgram { at, .. } if !self.stopping => Some(at),
            State::Active { verify_at, .. } if !self.stopping => Some(verify_at),
            _ => None,
        }
    }

    /// Feeds one event at `now`; returns the actions to run, in order.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Stopped {
            return out;
        }
        match event {
            Event::Role(role) => self.on_role(role, &mut out),
            Event::ReconcileDone { ticket, outcome } => {
                self.on_done(ticket, outcome, now, &mut out)
            }
            Event::DesiredChanged => self.on_desired_changed(&mut out),
            Event::Timer => self.on_timer(now, &mut out),
            Event::StopRequested => {
                self.stopping = true;
                if self.state == State::Standby {
                    self.state = State::Stopped;
                }
            }
        }
        out
    }

    fn ticket(&mut self) -> Ticket {
        let t = Ticket(self.next_ticket);
        self.next_ticket += 1;
        t
    }

    fn program(&mut self, attempt: u32, ack_owed: bool, out: &mut Vec<Action>) {
        let ticket = self.ticket();
        self.counters.programs += 1;
        out.push(Action::Program(ticket));
        self.state = State::Programming {
            ticket,
            attempt,
            ack_owed,
            again: false,
        };
    }

    fn withdraw(&mut self, attempt: u32, out: &mut Vec<Action>) {
        let ticket = self.ticket();
        self.counters.withdraws += 1;
        out.push(Action::Withdraw(ticket));
        self.state = State::Withdrawing { ticket, attempt };
    }

    fn ack(&mut self, out: &mut Vec<Action>) {
        self.counters.acks += 1;
        out.push(Action::AckTakeover);
    }

    /// `retry_base * 2^attempt`, at most `retry_max`.
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt).unwrap_or(u32::MAX);
        self.config
            .retry_base
            .saturating_mul(factor)
            .min(self.config.retry_max)
    }

    fn on_role(&mut self, role: Role, out: &mut Vec<Action>) {
        match role {
            Role::TakeoverPending | Role::MasterHeld if self.stopping => {
                // No programming while stopping, and no withdrawing while the VIP may be up.
                if matches!(
                    self.state,
                    State::Withdrawing { .. } | State::RetryWithdraw { .. }
                ) {
                    self.state = State::Holding;
                }
            }
            Role::TakeoverPending | Role::MasterHeld => {
                let pending = role == Role::TakeoverPending;
                match &mut self.state {
                    State::Undecided
                    | State::Standby
                    | State::Withdrawing { .. }
                    | State::RetryWithdraw { .. } => self.program(0, pending, out),
                    State::Programming { ack_owed, .. } | State::RetryProgram { ack_owed, .. } => {
                        *ack_owed = pending;
                    }
                    // Already programmed and verified: the new term need not wait.
                    State::Active { .. } if pending => self.ack(out),
                    State::Active { .. } | State::Holding | State::Stopped => {}
                }
            }
            Role::Released => match self.state {
                State::Undecided
                | State::Programming { .. }
                | State::RetryProgram { .. }
                | State::Active { .. }
                | State::Holding => self.withdraw(0, out),
                State::Withdrawing { .. }
                | State::RetryWithdraw { .. }
                | State::Standby
                | State::Stopped => {}
            },
        }
    }

    fn on_done(&mut self, done: Ticket, outcome: Outcome, now: Instant, out: &mut Vec<Action>) {
        match self.state {
            State::Programming {
                ticket,
                attempt,
                ack_owed,
                again,
            } if ticket == done => {
                let verify_at = now + self.config.verify_interval;
                match outcome {
                    Outcome::Retryable if !self.stopping => {
                        self.counters.retries += 1;
                        self.state = State::RetryProgram {
                            at: now + self.backoff(attempt),
                            attempt: attempt.saturating_add(1),
                            ack_owed,
                        };
                        return;
                    }
                    Outcome::Retryable => self.counters.retries += 1,
                    Outcome::Fatal => self.counters.failures += 1,
                    Outcome::Ok => {}
                }
                let degraded = outcome != Outcome::Ok;
                self.state = State::Active {
                    verify_at,
                    degraded,
                };
                if self.stopping {
                    return;
                }
                if ack_owed {
                    self.ack(out);
                }
                if again {
                    self.program(0, false, out);
                }
            }
            State::Withdrawing { ticket, attempt } if ticket == done => match outcome {
                Outcome::Ok => {
                    self.state = if self.stopping {
                        State::Stopped
                    } else {
                        State::Standby
                    };
                }
                Outcome::Retryable => {
                    self.counters.retries += 1;
                    self.state = State::RetryWithdraw {
                        at: now + self.backoff(attempt),
                        attempt: attempt.saturating_add(1),
                    };
                }
                Outcome::Fatal => {
                    self.counters.failures += 1;
                    // Stopping: give up (the engine reports what is left). Otherwise try again
                    // at the verification pace: nothing of ours should stay on a Backup.
                    self.state = if self.stopping {
                        State::Stopped
                    } else {
                        State::RetryWithdraw {
                            at: now + self.config.verify_interval,
                            attempt: attempt.saturating_add(1),
                        }
                    };
                }
            },
            _ => {}
        }
    }

    fn on_desired_changed(&mut self, out: &mut Vec<Action>) {
        if self.stopping {
            return;
        }
        match &mut self.state {
            State::Programming { again, .. } => *again = true,
            State::Active { .. } => self.program(0, false, out),
            // A retry reads the new table; elsewhere nothing of ours is programmed.
            _ => {}
        }
    }

    fn on_timer(&mut self, now: Instant, out: &mut Vec<Action>) {
        match self.state {
            State::RetryProgram {
                at,
                attempt,
                ack_owed,
            } if at <= now && !self.stopping => self.program(attempt, ack_owed, out),
            State::Active { verify_at, .. } if verify_at <= now && !self.stopping => {
                self.program(0, false, out);
            }
            State::RetryWithdraw { at, attempt } if at <= now => self.withdraw(attempt, out),
            _ => {}
        }
    }
}
