//! Every (state, event) pair, with and without a stop pending; the takeover, give-up, retry and
//! stop flows end to end; and the ordering rules over random event sequences.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum K {
    Undecided,
    Programming,
    RetryProgram,
    Active,
    Withdrawing,
    RetryWithdraw,
    Holding,
    Standby,
    Stopped,
}

fn kind(s: State) -> K {
    match s {
        State::Undecided => K::Undecided,
        State::Programming { .. } => K::Programming,
        State::RetryProgram { .. } => K::RetryProgram,
        State::Active { .. } => K::Active,
        State::Withdrawing { .. } => K::Withdrawing,
        State::RetryWithdraw { .. } => K::RetryWithdraw,
        State::Holding => K::Holding,
        State::Standby => K::Standby,
        State::Stopped => K::Stopped,
    }
}

#[derive(Debug, Clone, Copy)]
enum Ev {
    Takeover,
    Held,
    Released,
    DoneOk,
    DoneRetry,
    DoneFatal,
    DoneStale,
    Desired,
    TimerDue,
    TimerEarly,
    Stop,
}

const EVENTS: [Ev; 11] = [
    Ev::Takeover,
    Ev::Held,
    Ev::Released,
    Ev::DoneOk,
    Ev::DoneRetry,
    Ev::DoneFatal,
    Ev::DoneStale,
    Ev::Desired,
    Ev::TimerDue,
    Ev::TimerEarly,
    Ev::Stop,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum A {
    P,
    W,
    Ack,
}

const IN_FLIGHT: Ticket = Ticket(1);

/// A gate put in the state `k` (in-flight ticket 1, deadlines at t0 + 5 s).
fn gate_in(k: K, stopping: bool, t0: Instant) -> Gate {
    let at = t0 + Duration::from_secs(5);
    let state = match k {
        K::Undecided => State::Undecided,
        K::Programming => State::Programming {
            ticket: IN_FLIGHT,
            attempt: 0,
            ack_owed: true,
            again: false,
        },
        K::RetryProgram => State::RetryProgram {
            at,
            attempt: 1,
            ack_owed: true,
        },
        K::Active => State::Active {
            verify_at: at,
            degraded: false,
        },
        K::Withdrawing => State::Withdrawing {
            ticket: IN_FLIGHT,
            attempt: 0,
        },
        K::RetryWithdraw => State::RetryWithdraw { at, attempt: 1 },
        K::Holding => State::Holding,
        K::Standby => State::Standby,
        K::Stopped => State::Stopped,
    };
    let mut g = Gate::new(GateConfig::default());
    g.state = state;
    g.stopping = stopping;
    g.next_ticket = 2;
    g
}

fn fire(g: &mut Gate, ev: Ev, t0: Instant) -> Vec<A> {
    let done = |ticket, outcome| Event::ReconcileDone { ticket, outcome };
    let (event, now) = match ev {
        Ev::Takeover => (Event::Role(Role::TakeoverPending), t0),
        Ev::Held => (Event::Role(Role::MasterHeld), t0),
        Ev::Released => (Event::Role(Role::Released), t0),
        Ev::DoneOk => (done(IN_FLIGHT, Outcome::Ok), t0),
        Ev::DoneRetry => (done(IN_FLIGHT, Outcome::Retryable), t0),
        Ev::DoneFatal => (done(IN_FLIGHT, Outcome::Fatal), t0),
        Ev::DoneStale => (done(Ticket(0), Outcome::Ok), t0),
        Ev::Desired => (Event::DesiredChanged, t0),
        Ev::TimerDue => (Event::Timer, t0 + Duration::from_secs(3600)),
        Ev::TimerEarly => (Event::Timer, t0),
        Ev::Stop => (Event::StopRequested, t0),
    };
    g.handle(event, now)
        .into_iter()
        .map(|a| match a {
            Action::Program(t) => {
                assert_eq!(t, Ticket(2), "a new action takes the next ticket");
                A::P
            }
            Action::Withdraw(t) => {
                assert_eq!(t, Ticket(2));
                A::W
            }
            Action::AckTakeover => A::Ack,
        })
        .collect()
}

/// One row per event, in `EVENTS` order: (state after, actions).
type Row = [(K, &'static [A]); 11];

fn check_table(stopping: bool, table: &[(K, Row)]) {
    let t0 = Instant::now();
    for (from, row) in table {
        for (ev, (to, actions)) in EVENTS.iter().zip(row.iter()) {
            let mut g = gate_in(*from, stopping, t0);
            let got = fire(&mut g, *ev, t0);
            assert_eq!(
                (kind(g.state()), got.as_slice()),
                (*to, *actions),
                "{from:?} (stopping: {stopping}) + {ev:?}"
            );
        }
    }
}

use K::*;
const N: &[A] = &[];

#[test]
fn every_state_and_event() {
    #[rustfmt::skip]
    let table: [(K, Row); 8] = [
        //             Takeover                 Held                     Released                 DoneOk                   DoneRetry              DoneFatal                DoneStale        Desired                  TimerDue                 TimerEarly       Stop
        (Undecided,   [(Programming, &[A::P]), (Programming, &[A::P]), (Withdrawing, &[A::W]), (Undecided, N),          (Undecided, N),        (Undecided, N),          (Undecided, N),   (Undecided, N),          (Undecided, N),          (Undecided, N),   (Undecided, N)]),
        (Programming, [(Programming, N),       (Programming, N),       (Withdrawing, &[A::W]), (Active, &[A::Ack]),     (RetryProgram, N),     (Active, &[A::Ack]),     (Programming, N), (Programming, N),        (Programming, N),        (Programming, N), (Programming, N)]),
        (RetryProgram,[(RetryProgram, N),      (RetryProgram, N),      (Withdrawing, &[A::W]), (RetryProgram, N),       (RetryProgram, N),     (RetryProgram, N),       (RetryProgram, N),(RetryProgram, N),       (Programming, &[A::P]), (RetryProgram, N),(RetryProgram, N)]),
        (Active,      [(Active, &[A::Ack]),    (Active, N),            (Withdrawing, &[A::W]), (Active, N),             (Active, N),           (Active, N),             (Active, N),      (Programming, &[A::P]), (Programming, &[A::P]), (Active, N),      (Active, N)]),
        (Withdrawing, [(Programming, &[A::P]), (Programming, &[A::P]), (Withdrawing, N),       (Standby, N),            (RetryWithdraw, N),    (RetryWithdraw, N),      (Withdrawing, N), (Withdrawing, N),        (Withdrawing, N),        (Withdrawing, N), (Withdrawing, N)]),
        (RetryWithdraw,[(Programming, &[A::P]),(Programming, &[A::P]), (RetryWithdraw, N),     (RetryWithdraw, N),      (RetryWithdraw, N),    (RetryWithdraw, N),      (RetryWithdraw, N),(RetryWithdraw, N),     (Withdrawing, &[A::W]), (RetryWithdraw, N),(RetryWithdraw, N)]),
        (Standby,     [(Programming, &[A::P]), (Programming, &[A::P]), (Standby, N),           (Standby, N),            (Standby, N),          (Standby, N),            (Standby, N),     (Standby, N),            (Standby, N),            (Standby, N),     (Stopped, N)]),
        (Stopped,     [(Stopped, N),           (Stopped, N),           (Stopped, N),           (Stopped, N),            (Stopped, N),          (Stopped, N),            (Stopped, N),     (Stopped, N),            (Stopped, N),            (Stopped, N),     (Stopped, N)]),
    ];
    check_table(false, &table);
}

#[test]
fn every_state_and_event_while_stopping() {
    // Standby with a stop pending does not exist: the stop request ends it at once. Holding
    // exists only with a stop pending.
    #[rustfmt::skip]
    let table: [(K, Row); 8] = [
        //             Takeover            Held                Released                 DoneOk            DoneRetry           DoneFatal         DoneStale          Desired             TimerDue                TimerEarly          Stop
        (Undecided,   [(Undecided, N),    (Undecided, N),     (Withdrawing, &[A::W]), (Undecided, N),   (Undecided, N),     (Undecided, N),   (Undecided, N),    (Undecided, N),     (Undecided, N),         (Undecided, N),     (Undecided, N)]),
        (Programming, [(Programming, N),  (Programming, N),   (Withdrawing, &[A::W]), (Active, N),      (Active, N),        (Active, N),      (Programming, N),  (Programming, N),   (Programming, N),       (Programming, N),   (Programming, N)]),
        (RetryProgram,[(RetryProgram, N), (RetryProgram, N),  (Withdrawing, &[A::W]), (RetryProgram, N),(RetryProgram, N),  (RetryProgram, N),(RetryProgram, N), (RetryProgram, N),  (RetryProgram, N),      (RetryProgram, N),  (RetryProgram, N)]),
        (Active,      [(Active, N),       (Active, N),        (Withdrawing, &[A::W]), (Active, N),      (Active, N),        (Active, N),      (Active, N),       (Active, N),        (Active, N),            (Active, N),        (Active, N)]),
        (Withdrawing, [(Holding, N),      (Holding, N),       (Withdrawing, N),       (Stopped, N),     (RetryWithdraw, N), (Stopped, N),     (Withdrawing, N),  (Withdrawing, N),   (Withdrawing, N),       (Withdrawing, N),   (Withdrawing, N)]),
        (RetryWithdraw,[(Holding, N),     (Holding, N),       (RetryWithdraw, N),     (RetryWithdraw, N),(RetryWithdraw, N),(RetryWithdraw, N),(RetryWithdraw, N),(RetryWithdraw, N),(Withdrawing, &[A::W]),(RetryWithdraw, N),(RetryWithdraw, N)]),
        (Holding,     [(Holding, N),      (Holding, N),       (Withdrawing, &[A::W]), (Holding, N),     (Holding, N),       (Holding, N),     (Holding, N),      (Holding, N),       (Holding, N),           (Holding, N),       (Holding, N)]),
        (Stopped,     [(Stopped, N),      (Stopped, N),       (Stopped, N),           (Stopped, N),     (Stopped, N),       (Stopped, N),     (Stopped, N),      (Stopped, N),       (Stopped, N),           (Stopped, N),       (Stopped, N)]),
    ];
    check_table(true, &table);
}

fn program_ticket(actions: &[Action]) -> Ticket {
    actions
        .iter()
        .find_map(|a| match a {
            Action::Program(t) | Action::Withdraw(t) => Some(*t),
            Action::AckTakeover => None,
        })
        .unwrap()
}

fn done(ticket: Ticket, outcome: Outcome) -> Event {
    Event::ReconcileDone { ticket, outcome }
}

#[test]
fn takeover_programs_then_acks_then_verifies_periodically() {
    let t0 = Instant::now();
    let mut g = Gate::new(GateConfig::default());
    assert!(
        g.handle(Event::DesiredChanged, t0).is_empty(),
        "nothing before a decision"
    );
    assert!(g.handle(Event::Timer, t0).is_empty());
    let a = g.handle(Event::Role(Role::TakeoverPending), t0);
    let t1 = program_ticket(&a);
    assert_eq!(a, [Action::Program(t1)]);
    assert_eq!(g.handle(done(t1, Outcome::Ok), t0), [Action::AckTakeover]);
    assert!(g.handle(Event::Role(Role::MasterHeld), t0).is_empty());
    let verify = t0 + Duration::from_secs(10);
    assert_eq!(g.next_deadline(), Some(verify));
    let a = g.handle(Event::Timer, verify);
    let t2 = program_ticket(&a);
    assert_eq!(g.handle(done(t2, Outcome::Ok), verify), [], "no second ack");
    assert_eq!(g.counters().acks, 1);
    assert_eq!(g.counters().programs, 2);
}

#[test]
fn a_barrier_that_timed_out_needs_no_ack() {
    let t0 = Instant::now();
    let mut g = Gate::new(GateConfig::default());
    let t1 = program_ticket(&g.handle(Event::Role(Role::TakeoverPending), t0));
    assert!(g.handle(Event::Role(Role::MasterHeld), t0).is_empty());
    assert!(g.handle(done(t1, Outcome::Ok), t0).is_empty());
    assert_eq!(kind(g.state()), Active);
}

#[test]
fn transient_failures_back_off_exponentially_up_to_the_cap() {
    let mut now = Instant::now();
    let mut g = Gate::new(GateConfig::default());
    let mut t = program_ticket(&g.handle(Event::Role(Role::TakeoverPending), now));
    let mut waits = Vec::new();
    for _ in 0..8 {
        assert!(g.handle(done(t, Outcome::Retryable), now).is_empty());
        let at = g.next_deadline().unwrap();
        waits.push(at - now);
        assert!(g
            .handle(Event::Timer, at - Duration::from_millis(1))
            .is_empty());
        now = at;
        t = program_ticket(&g.handle(Event::Timer, now));
    }
    let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
    assert_eq!(ms, [200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]);
    assert_eq!(g.counters().retries, 8);
    // Success after retries still acks (havip's barrier may still be waiting).
    assert_eq!(g.handle(done(t, Outcome::Ok), now), [Action::AckTakeover]);
    // A later transient failure starts from the base again.
    let t = program_ticket(&g.handle(Event::DesiredChanged, now));
    g.handle(done(t, Outcome::Retryable), now);
    assert_eq!(g.next_deadline(), Some(now + Duration::from_millis(200)));
}

#[test]
fn a_change_during_programming_programs_again_after_the_ack() {
    let t0 = Instant::now();
    let mut g = Gate::new(GateConfig::default());
    let t1 = program_ticket(&g.handle(Event::Role(Role::TakeoverPending), t0));
    assert!(g.handle(Event::DesiredChanged, t0).is_empty());
    let a = g.handle(done(t1, Outcome::Ok), t0);
    assert_eq!(a[0], Action::AckTakeover);
    assert!(matches!(a[1], Action::Program(t) if t > t1));
}

#[test]
fn giving_up_mid_program_withdraws_and_ignores_the_stale_result() {
    let t0 = Instant::now();
    let mut g = Gate::new(GateConfig::default());
    let t1 = program_ticket(&g.handle(Event::Role(Role::TakeoverPending), t0));
    let t2 = program_ticket(&g.handle(Event::Role(Role::Released), t0));
    assert!(
        g.handle(done(t1, Outcome::Ok), t0).is_empty(),
        "stale: no ack"
    );
    assert_eq!(kind(g.state()), Withdrawing);
    g.handle(done(t2, Outcome::Ok), t0);
    assert_eq!(g.state(), State::Standby);
    assert_eq!(g.next_deadline(), None);
}

#[test]
fn stop_waits_for_the_vip_then_withdraws_then_is_silent() {
    let t0 = Instant::now();
    let mut g = Gate::new(GateConfig::default());
    let t1 = program_ticket(&g.handle(Event::Role(Role::MasterHeld), t0));
    g.handle(done(t1, Outcome::Ok), t0);
    assert!(g.handle(Event::StopRequested, t0).is_empty());
    assert_eq!(g.next_deadline(), None, "no verification while stopping");
    assert!(g.handle(Event::DesiredChanged, t0).is_empty());
    let t2 = program_ticket(&g.handle(Event::Role(Role::Released), t0));
    g.handle(done(t2, Outcome::Ok), t0);
    assert_eq!(g.state(), State::Stopped);
    assert!(g.handle(Event::Role(Role::TakeoverPending), t0).is_empty());
}

#[derive(Debug, Clone)]
enum Step {
    Role(Role),
    /// Answer the newest (`true`) or an older ticket.
    Done(bool, Outcome),
    Desired,
    /// Advance the clock by this many milliseconds, then fire the timer.
    Timer(u64),
    Stop,
}

fn step() -> impl Strategy<Value = Step> {
    let role = prop_oneof![
        Just(Role::TakeoverPending),
        Just(Role::MasterHeld),
        Just(Role::Released)
    ];
    let outcome = prop_oneof![
        4 => Just(Outcome::Ok),
        2 => Just(Outcome::Retryable),
        1 => Just(Outcome::Fatal)
    ];
    prop_oneof![
        3 => role.prop_map(Step::Role),
        4 => (any::<bool>(), outcome).prop_map(|(n, o)| Step::Done(n, o)),
        1 => Just(Step::Desired),
        2 => (0u64..20_000).prop_map(Step::Timer),
        1 => Just(Step::Stop),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// "program, then VIP" and "VIP off, then withdraw" over any sequence of events.
    #[test]
    fn ordering_rules_hold_for_any_event_sequence(steps in prop::collection::vec(step(), 0..40)) {
        let mut now = Instant::now();
        let mut g = Gate::new(GateConfig::default());
        let mut last_role: Option<Role> = None;
        let mut newest = Ticket(0);
        let mut stop_requested = false;
        for s in steps {
            let before = g.state();
            let event = match s {
                Step::Role(r) => Event::Role(r),
                Step::Done(true, o) => done(newest, o),
                Step::Done(false, o) => done(Ticket(newest.0.saturating_sub(1)), o),
                Step::Desired => Event::DesiredChanged,
                Step::Timer(ms) => {
                    now += Duration::from_millis(ms);
                    Event::Timer
                }
                Step::Stop => Event::StopRequested,
            };
            let actions = g.handle(event, now);
            if let Event::Role(r) = event {
                last_role = Some(r);
            }
            stop_requested |= event == Event::StopRequested;
            if before == State::Stopped {
                prop_assert!(actions.is_empty());
            }
            for a in &actions {
                match a {
                    Action::Program(t) => {
                        prop_assert!(matches!(last_role, Some(Role::TakeoverPending | Role::MasterHeld)));
                        prop_assert!(!stop_requested, "programs while stopping");
                        prop_assert!(*t > newest);
                        newest = *t;
                    }
                    Action::Withdraw(t) => {
                        prop_assert_eq!(last_role, Some(Role::Released), "withdraw with the VIP up");
                        prop_assert!(*t > newest);
                        newest = *t;
                    }
                    Action::AckTakeover => {
                        prop_assert_eq!(last_role, Some(Role::TakeoverPending));
                        let programmed_now = matches!(
                            (before, event),
                            (State::Programming { ticket, .. }, Event::ReconcileDone { ticket: d, outcome })
                                if ticket == d && outcome != Outcome::Retryable
                        );
                        prop_assert!(programmed_now || matches!(before, State::Active { .. }),
                            "ack before programming: {:?} + {:?}", before, event);
                    }
                }
            }
            // A timer event leaves no deadline due (the caller never spins on a past deadline).
            if event == Event::Timer {
                prop_assert!(g.next_deadline().is_none_or(|at| at > now), "{:?}", g.state());
            }
        }
    }
}

#[test]
fn a_reload_shortens_the_next_verification_at_once() {
    let t0 = Instant::now();
    let mut g = Gate::new(GateConfig::default());
    let Action::Program(ticket) = g.handle(Event::Role(Role::MasterHeld), t0)[0] else {
        panic!("a Master programs")
    };
    g.handle(
        Event::ReconcileDone {
            ticket,
            outcome: Outcome::Ok,
        },
        t0,
    );
    assert_eq!(g.next_deadline(), Some(t0 + Duration::from_secs(10)));
    let short = GateConfig {
        verify_interval: Duration::from_secs(2),
        ..GateConfig::default()
    };
    let t1 = t0 + Duration::from_secs(1);
    g.reconfigure(short, t1);
    assert_eq!(g.next_deadline(), Some(t1 + Duration::from_secs(2)));
    // A longer interval waits for the verification already planned, then applies.
    let long = GateConfig {
        verify_interval: Duration::from_secs(60),
        ..GateConfig::default()
    };
    g.reconfigure(long, t1);
    assert_eq!(g.next_deadline(), Some(t1 + Duration::from_secs(2)));
    let t3 = t1 + Duration::from_secs(2);
    let Action::Program(ticket) = g.handle(Event::Timer, t3)[0] else {
        panic!("verification programs")
    };
    g.handle(
        Event::ReconcileDone {
            ticket,
            outcome: Outcome::Ok,
        },
        t3,
    );
    assert_eq!(g.next_deadline(), Some(t3 + Duration::from_secs(60)));
}
