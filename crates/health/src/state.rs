//! The pure part of a check's life: probe results filtered by rise and fall into a neutral
//! Up / Down / Unknown state. No I/O, no clock of its own: every call takes `now`.
//!
//! The law (tested exhaustively and by proptest below):
//! - [`State::Unknown`] until the first result ("start pessimistic": a backend is never taken as
//!   up before a check has passed), unless started [`Start::Adopted`] (Up).
//! - From Unknown, the first result decides between Down and the path to Up: a failure is Down at
//!   once; a success is Up when `rise` is 1, else Down until `rise` consecutive successes.
//! - Down -> Up after `rise` consecutive successes; Up -> Down after `fall` consecutive failures.
//! - A result that agrees with the state resets the opposite streak.

use std::time::{Duration, Instant};

/// The neutral health of one (backend, check).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// No result yet.
    Unknown,
    /// Passing: `rise` consecutive successes (or adopted and not yet failed `fall` times).
    Up,
    /// Failing, or not yet risen.
    Down,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::Unknown => "unknown",
            State::Up => "up",
            State::Down => "down",
        })
    }
}

/// The state a new probe starts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Start {
    /// Unknown until the first result, Up only after `rise` successes.
    #[default]
    Pessimistic,
    /// Up from the start: the backend is already in service (a restart adopted a kernel table
    /// that holds it); Down after `fall` failures like any Up backend.
    Adopted,
}

impl Start {
    /// The state a probe started this way has before its first result.
    pub fn state(self) -> State {
        match self {
            Start::Pessimistic => State::Unknown,
            Start::Adopted => State::Up,
        }
    }
}

/// One probe run's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// The run passed.
    pub ok: bool,
    /// What was seen: `connected`, `status 200`, `connect: Connection refused`, ...
    pub reason: String,
    /// From the start of the run to its result (for a timeout: the timeout).
    pub latency: Duration,
    /// When the result came.
    pub at: Instant,
}

/// What subscribers see: the filtered state, when it last changed, and the last result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// The filtered state.
    pub state: State,
    /// When `state` last changed (the probe's creation while still Unknown or adopted).
    pub since: Instant,
    /// The last probe result, `None` before the first.
    pub last: Option<Observation>,
}

impl Health {
    /// The health of a probe created at `now`.
    pub fn new(start: Start, now: Instant) -> Self {
        Health {
            state: start.state(),
            since: now,
            last: None,
        }
    }

    /// True only when Up.
    pub fn is_up(&self) -> bool {
        self.state == State::Up
    }
}

/// A change of state, for the log and for subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The state before.
    pub from: State,
    /// The state after.
    pub to: State,
}

/// The rise/fall filter: counts consecutive results against the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiseFall {
    state: State,
    /// Consecutive results that disagree with `state` (successes while Down, failures while Up).
    streak: u32,
    rise: u32,
    fall: u32,
}

impl RiseFall {
    /// A filter with thresholds `rise` and `fall` (0 counts as 1).
    pub fn new(rise: u32, fall: u32, start: Start) -> Self {
        RiseFall {
            state: start.state(),
            streak: 0,
            rise: rise.max(1),
            fall: fall.max(1),
        }
    }

    /// The filtered state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Consecutive results that disagree with the state so far (toward `rise` while Down, toward
    /// `fall` while Up).
    pub fn streak(&self) -> u32 {
        self.streak
    }

    /// Feeds one result; returns the transition it caused, if any.
    pub fn observe(&mut self, ok: bool) -> Option<Transition> {
        let from = self.state;
        let to = match (self.state, ok) {
            (State::Unknown, false) => State::Down,
            (State::Unknown, true) => {
                self.streak = 1;
                if self.rise == 1 {
                    State::Up
                } else {
                    State::Down
                }
            }
            (State::Up, true) | (State::Down, false) => {
                self.streak = 0;
                self.state
            }
            (State::Down, true) => {
                self.streak += 1;
                if self.streak >= self.rise {
                    State::Up
                } else {
                    State::Down
                }
            }
            (State::Up, false) => {
                self.streak += 1;
                if self.streak >= self.fall {
                    State::Down
                } else {
                    State::Up
                }
            }
        };
        if to == from {
            return None;
        }
        self.state = to;
        // The first success out of Unknown already counts toward rise.
        if !(from == State::Unknown && to == State::Down && ok) {
            self.streak = 0;
        }
        Some(Transition { from, to })
    }
}

/// Applies one probe result to a published [`Health`]: records it as the last result and, when
/// the filter changes state, the new state and `since = obs.at`. Returns the transition.
pub fn record(filter: &mut RiseFall, health: &mut Health, obs: Observation) -> Option<Transition> {
    let t = observe(filter, health, obs.ok, obs.at);
    health.last = Some(obs);
    t
}

/// Feeds one result to the filter and, on a transition, sets the new state and `since = at`.
fn observe(
    filter: &mut RiseFall,
    health: &mut Health,
    ok: bool,
    at: Instant,
) -> Option<Transition> {
    let t = filter.observe(ok);
    if let Some(t) = t {
        health.state = t.to;
        health.since = at;
    }
    t
}

/// [`record`] with the result given by parts, for the probe loop: the reason is written into
/// the last result's buffer, so a run whose reason fits in it (every run after the first, in the
/// steady state) allocates nothing. Same effect on `health` and the same return as
/// `record(filter, health, Observation { ok, reason: reason.to_string(), latency, at })`.
pub fn record_parts(
    filter: &mut RiseFall,
    health: &mut Health,
    ok: bool,
    reason: &dyn std::fmt::Display,
    latency: Duration,
    at: Instant,
) -> Option<Transition> {
    use std::fmt::Write as _;
    let t = observe(filter, health, ok, at);
    let last = health.last.get_or_insert_with(|| Observation {
        ok,
        reason: String::new(),
        latency,
        at,
    });
    last.ok = ok;
    last.latency = latency;
    last.at = at;
    last.reason.clear();
    // Writing into a String cannot fail (only the Display impl could, and ours do not).
    let _ = write!(last.reason, "{reason}");
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(rise: u32, fall: u32, start: Start, results: &[bool]) -> Vec<State> {
        let mut f = RiseFall::new(rise, fall, start);
        results
            .iter()
            .map(|ok| {
                f.observe(*ok);
                f.state()
            })
            .collect()
    }

    use State::{Down as D, Up as U};

    #[test]
    fn pessimistic_start() {
        assert_eq!(
            RiseFall::new(3, 3, Start::Pessimistic).state(),
            State::Unknown
        );
        assert_eq!(run(3, 3, Start::Pessimistic, &[false]), [D]);
        assert_eq!(run(1, 3, Start::Pessimistic, &[true]), [U]);
        assert_eq!(
            run(3, 3, Start::Pessimistic, &[true, true, true]),
            [D, D, U]
        );
        assert_eq!(
            run(
                3,
                3,
                Start::Pessimistic,
                &[true, true, false, true, true, true]
            ),
            [D, D, D, D, D, U],
            "a failure restarts the rise count"
        );
    }

    #[test]
    fn adopted_start_needs_fall_failures() {
        assert_eq!(RiseFall::new(2, 2, Start::Adopted).state(), State::Up);
        assert_eq!(run(2, 2, Start::Adopted, &[false, false]), [U, D]);
        assert_eq!(run(2, 2, Start::Adopted, &[false, true, false]), [U, U, U]);
    }

    #[test]
    fn fall_and_rise_with_resets() {
        assert_eq!(
            run(
                2,
                3,
                Start::Pessimistic,
                &[true, true, false, false, true, false, false, false]
            ),
            [D, U, U, U, U, U, U, D],
            "a success resets the failure streak"
        );
        assert_eq!(run(2, 1, Start::Adopted, &[false, true, true]), [D, D, U]);
    }

    #[test]
    fn zero_thresholds_act_as_one() {
        assert_eq!(
            run(0, 0, Start::Pessimistic, &[true, false, true]),
            [U, D, U]
        );
    }

    #[test]
    fn record_sets_since_only_on_a_transition() {
        let t0 = Instant::now();
        let mut f = RiseFall::new(2, 1, Start::Pessimistic);
        let mut h = Health::new(Start::Pessimistic, t0);
        let obs = |ok, s| Observation {
            ok,
            reason: "r".into(),
            latency: Duration::from_millis(1),
            at: t0 + Duration::from_secs(s),
        };
        let t = record(&mut f, &mut h, obs(true, 1));
        assert_eq!(
            t,
            Some(Transition {
                from: State::Unknown,
                to: D
            })
        );
        assert_eq!(h.since, t0 + Duration::from_secs(1));
        assert_eq!(
            record(&mut f, &mut h, obs(true, 2)),
            Some(Transition { from: D, to: U })
        );
        assert_eq!(record(&mut f, &mut h, obs(true, 3)), None);
        assert_eq!(h.since, t0 + Duration::from_secs(2));
        assert_eq!(
            h.last.as_ref().map(|o| o.at),
            Some(t0 + Duration::from_secs(3))
        );
        assert!(h.is_up());
    }

    /// Length of the run of equal values at the end of `r` ending in `v`.
    fn tail(r: &[bool], v: bool) -> usize {
        r.iter().rev().take_while(|x| **x == v).count()
    }

    proptest! {
        #[test]
        fn law(rise in 1u32..5, fall in 1u32..5, adopted: bool,
               results in proptest::collection::vec(any::<bool>(), 0..40)) {
            let start = if adopted { Start::Adopted } else { Start::Pessimistic };
            let mut f = RiseFall::new(rise, fall, start);
            let mut prev = f.state();
            for (i, ok) in results.iter().enumerate() {
                let t = f.observe(*ok);
                let seen = &results[..=i];
                let s = f.state();
                // Transitions are reported exactly when the state moves.
                prop_assert_eq!(t.is_some(), s != prev);
                // Never Unknown after a result.
                prop_assert_ne!(s, State::Unknown);
                // Up only on a success, Down (from Up) only on a failure.
                if prev != State::Up && s == State::Up { prop_assert!(*ok); }
                if prev == State::Up && s == State::Down { prop_assert!(!*ok); }
                // Enough agreeing results always decide.
                if tail(seen, true) >= rise as usize { prop_assert_eq!(s, State::Up); }
                if tail(seen, false) >= fall as usize { prop_assert_eq!(s, State::Down); }
                // Up is reached only through `rise` consecutive successes (unless adopted and
                // never down since).
                if prev == State::Down && s == State::Up {
                    prop_assert!(tail(seen, true) >= rise as usize);
                }
                if prev == State::Up && s == State::Down {
                    prop_assert!(tail(seen, false) >= fall as usize);
                }
                // Pessimistic: never Up without `rise` consecutive successes at some point.
                if !adopted && s == State::Up {
                    let longest = seen
                        .split(|ok| !*ok)
                        .map(<[bool]>::len)
                        .max()
                        .unwrap_or(0);
                    prop_assert!(longest >= rise as usize);
                }
                prev = s;
            }
        }

        /// `record_parts` leaves the same health and returns the same transitions as `record`,
        /// whatever the reasons' lengths (the reused buffer never leaks an older, longer one).
        #[test]
        fn record_parts_is_record(rise in 1u32..4, fall in 1u32..4, adopted: bool,
                                  runs in proptest::collection::vec(
                                      (any::<bool>(), "[a-z ]{0,24}", 0u64..2_000), 0..20)) {
            let start = if adopted { Start::Adopted } else { Start::Pessimistic };
            let t0 = Instant::now();
            let (mut fa, mut fb) = (RiseFall::new(rise, fall, start), RiseFall::new(rise, fall, start));
            let (mut ha, mut hb) = (Health::new(start, t0), Health::new(start, t0));
            for (i, (ok, reason, us)) in runs.iter().enumerate() {
                let latency = Duration::from_micros(*us);
                let at = t0 + Duration::from_secs(i as u64 + 1);
                let obs = Observation { ok: *ok, reason: reason.clone(), latency, at };
                let ta = record(&mut fa, &mut ha, obs);
                let tb = record_parts(&mut fb, &mut hb, *ok, reason, latency, at);
                prop_assert_eq!(ta, tb);
                prop_assert_eq!(&ha, &hb);
                prop_assert_eq!(&fa, &fb);
            }
        }
    }
}
