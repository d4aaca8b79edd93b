//! The TCP engine's timetable: which probe starts a run, or times out, when. Pure: no clock and
//! no I/O of its own; the engine passes `now` in, so every law here is tested on plain numbers.
//!
//! Each probe has exactly one live timer: while idle, its next slot (`phase + k * interval`,
//! [`next_run`]); while a run is in flight, the run's deadline (its start plus the check's
//! timeout). The timers sit in one binary heap. Cancelling is lazy: each probe's timer carries the
//! probe's epoch, and a timer whose slot was freed or whose epoch moved on is skipped when it
//! reaches the top. So a run that finishes early costs one heap push (its next slot) and leaves
//! its deadline behind as a stale entry, never a search through the heap.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use crate::schedule::next_run;

/// A probe's handle: its slot index and the slot's generation. A removed probe's handle goes
/// stale (the slot's generation moves on), so a late event for it can never reach the probe that
/// reuses the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Id {
    idx: u32,
    gen: u32,
}

impl Id {
    /// The handle packed into an `epoll_event`'s 64-bit data.
    pub(crate) fn token(self) -> u64 {
        (u64::from(self.idx) << 32) | u64::from(self.gen)
    }

    /// The handle a [`Id::token`] packed.
    pub(crate) fn from_token(token: u64) -> Id {
        Id {
            idx: (token >> 32) as u32,
            gen: token as u32,
        }
    }
}

/// What a due timer means for its probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// The probe's slot came: a run starts now (its deadline is armed).
    Run,
    /// The run in flight reached its deadline: it failed, `latency` after its start; the next
    /// slot is armed.
    TimedOut {
        /// From the run's start to now.
        latency: Duration,
    },
}

struct Probe<T> {
    phase: Instant,
    interval: Duration,
    timeout: Duration,
    /// The start of the run in flight.
    running: Option<Instant>,
    /// Moves on whenever a new timer is armed: older timers of this probe are stale.
    epoch: u32,
    payload: T,
}

struct Slot<T> {
    gen: u32,
    probe: Option<Probe<T>>,
}

/// A timer in the heap: (deadline, slot, slot generation, probe epoch), earliest first.
type Timer = Reverse<(Instant, u32, u32, u32)>;

/// The probes of one engine, each with its payload `T` (the engine's socket and subscribers).
pub(crate) struct Slots<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    timers: BinaryHeap<Timer>,
    live: usize,
}

impl<T> Slots<T> {
    /// No probes.
    pub(crate) fn new() -> Self {
        Slots {
            slots: Vec::new(),
            free: Vec::new(),
            timers: BinaryHeap::new(),
            live: 0,
        }
    }

    /// Probes held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Adds a probe whose first run is at `phase`, then every `interval`; each run may last
    /// `timeout`.
    pub(crate) fn insert(
        &mut self,
        phase: Instant,
        interval: Duration,
        timeout: Duration,
        payload: T,
    ) -> Id {
        let probe = Probe {
            phase,
            interval,
            timeout,
            running: None,
            epoch: 0,
            payload,
        };
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    gen: 0,
                    probe: None,
                });
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        let Some(slot) = self.slots.get_mut(idx as usize) else {
            // Only with more than 2^32 probes, which no memory holds.
            return Id { idx, gen: 0 };
        };
        slot.probe = Some(probe);
        let id = Id { idx, gen: slot.gen };
        self.live += 1;
        self.timers.push(Reverse((phase, idx, id.gen, 0)));
        id
    }

    /// Removes the probe `id` and returns its payload; `None` when the handle is stale.
    pub(crate) fn remove(&mut self, id: Id) -> Option<T> {
        let slot = self.slots.get_mut(id.idx as usize)?;
        if slot.gen != id.gen {
            return None;
        }
        let probe = slot.probe.take()?;
        slot.gen = slot.gen.wrapping_add(1);
        self.free.push(id.idx);
        self.live -= 1;
        Some(probe.payload)
    }

    /// The payload of the probe `id`; `None` when the handle is stale.
    pub(crate) fn get_mut(&mut self, id: Id) -> Option<&mut T> {
        self.probe_mut(id).map(|p| &mut p.payload)
    }

    /// The earliest live timer's deadline (stale timers on top are dropped on the way).
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, idx, gen, epoch))) = self.timers.peek().copied() {
            if self.is_live(idx, gen, epoch) {
                return Some(at);
            }
            self.timers.pop();
        }
        None
    }

    /// The next probe whose timer is due at `now`, and what that means; its next timer is armed
    /// (a run's deadline, or after a timeout the next slot). `None` when nothing is due.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Id, Due)> {
        loop {
            let Reverse((at, idx, gen, epoch)) = self.timers.peek().copied()?;
            if !self.is_live(idx, gen, epoch) {
                self.timers.pop();
                continue;
            }
            if at > now {
                return None;
            }
            self.timers.pop();
            let id = Id { idx, gen };
            let probe = self.probe_mut(id)?;
            let (due, next) = match probe.running.take() {
                None => {
                    probe.running = Some(now);
                    (Due::Run, now + probe.timeout)
                }
                Some(t0) => (
                    Due::TimedOut {
                        latency: now.saturating_duration_since(t0),
                    },
                    next_run(probe.phase, probe.interval, now),
                ),
            };
            self.arm(id, next);
            return Some((id, due));
        }
    }

    /// The run in flight of `id` ended at `now`: its latency, and the next slot is armed. `None`
    /// (and nothing changes) when the handle is stale or no run is in flight (it timed out).
    pub(crate) fn finish(&mut self, id: Id, now: Instant) -> Option<Duration> {
        let probe = self.probe_mut(id)?;
        let t0 = probe.running.take()?;
        let next = next_run(probe.phase, probe.interval, now);
        self.arm(id, next);
        Some(now.saturating_duration_since(t0))
    }

    fn arm(&mut self, id: Id, at: Instant) {
        if let Some(p) = self.probe_mut(id) {
            p.epoch = p.epoch.wrapping_add(1);
            let epoch = p.epoch;
            self.timers.push(Reverse((at, id.idx, id.gen, epoch)));
        }
    }

    fn probe_mut(&mut self, id: Id) -> Option<&mut Probe<T>> {
        let slot = self.slots.get_mut(id.idx as usize)?;
        if slot.gen != id.gen {
            return None;
        }
        slot.probe.as_mut()
    }

    fn is_live(&self, idx: u32, gen: u32, epoch: u32) -> bool {
        self.slots
            .get(idx as usize)
            .filter(|s| s.gen == gen)
            .and_then(|s| s.probe.as_ref())
            .is_some_and(|p| p.epoch == epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: Duration = Duration::from_millis(1);

    fn drain(s: &mut Slots<u32>, now: Instant) -> Vec<(u32, Due)> {
        let mut out = Vec::new();
        while let Some((id, due)) = s.pop_due(now) {
            out.push((*s.get_mut(id).unwrap(), due));
        }
        out
    }

    #[test]
    fn runs_at_its_slots_and_times_out_at_the_deadline() {
        let t = Instant::now();
        let mut s = Slots::new();
        let id = s.insert(t + 5 * MS, 100 * MS, 30 * MS, 7u32);
        assert_eq!(s.next_deadline(), Some(t + 5 * MS));
        assert!(drain(&mut s, t + 4 * MS).is_empty());
        assert_eq!(drain(&mut s, t + 5 * MS), vec![(7, Due::Run)]);
        assert_eq!(s.next_deadline(), Some(t + 35 * MS), "the run's deadline");
        // Finishes after 10 ms: the next slot is phase + 100 ms; the deadline is stale.
        assert_eq!(s.finish(id, t + 15 * MS), Some(10 * MS));
        assert_eq!(s.finish(id, t + 16 * MS), None, "not in flight any more");
        assert_eq!(s.next_deadline(), Some(t + 105 * MS));
        assert!(
            drain(&mut s, t + 50 * MS).is_empty(),
            "no timeout after a finish"
        );
        assert_eq!(drain(&mut s, t + 105 * MS), vec![(7, Due::Run)]);
        // This one hangs: timed out at its deadline, 30 ms after its start; next slot kept.
        assert_eq!(
            drain(&mut s, t + 135 * MS),
            vec![(7, Due::TimedOut { latency: 30 * MS })]
        );
        assert_eq!(s.finish(id, t + 140 * MS), None, "a late answer is ignored");
        assert_eq!(s.next_deadline(), Some(t + 205 * MS));
    }

    #[test]
    fn an_overrun_skips_missed_slots_instead_of_bursting() {
        let t = Instant::now();
        let mut s = Slots::new();
        let id = s.insert(t, 10 * MS, 100 * MS, 1u32);
        assert_eq!(drain(&mut s, t), vec![(1, Due::Run)]);
        assert_eq!(s.finish(id, t + 35 * MS), Some(35 * MS));
        assert_eq!(s.next_deadline(), Some(t + 40 * MS));
        assert!(drain(&mut s, t + 39 * MS).is_empty());
    }

    #[test]
    fn a_removed_probe_never_fires_and_its_handle_goes_stale() {
        let t = Instant::now();
        let mut s = Slots::new();
        let a = s.insert(t, 10 * MS, 5 * MS, 1u32);
        assert_eq!(s.remove(a), Some(1));
        assert_eq!(s.remove(a), None);
        assert_eq!(s.len(), 0);
        assert_eq!(s.next_deadline(), None);
        // The slot is reused: the old handle reaches nothing.
        let b = s.insert(t + MS, 10 * MS, 5 * MS, 2u32);
        assert_ne!(a, b);
        assert!(s.get_mut(a).is_none());
        assert_eq!(s.finish(a, t), None);
        assert_eq!(drain(&mut s, t + MS), vec![(2, Due::Run)]);
        assert_eq!(Id::from_token(b.token()), b);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert {
            phase_ms: u64,
            interval_ms: u64,
            timeout_ms: u64,
        },
        Remove(usize),
        Finish(usize),
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u64..50, 1u64..40, 1u64..60).prop_map(|(phase_ms, interval_ms, timeout_ms)| {
                Op::Insert {
                    phase_ms,
                    interval_ms,
                    timeout_ms,
                }
            }),
            (0usize..8).prop_map(Op::Remove),
            (0usize..8).prop_map(Op::Finish),
            (0u64..30).prop_map(Op::Advance),
        ]
    }

    /// What the model remembers of one probe.
    struct Model {
        id: Id,
        phase: Instant,
        interval: Duration,
        timeout: Duration,
        running: Option<Instant>,
        /// When the next run is due: the phase, then the first slot after the last run ended.
        expected: Instant,
        removed: bool,
    }

    proptest! {
        /// Against a model, under any interleaving of inserts, removals, early finishes and clock
        /// steps (every due timer fired at each step): a run starts at the first step that
        /// reaches its slot (the phase, then the first `phase + k * interval` after the previous
        /// run ended), never earlier, never while one is in flight, never for a removed probe;
        /// a run not finished times out at the first step that reaches its start plus the
        /// timeout; and every live probe keeps a timer.
        #[test]
        fn slots_follow_the_schedule(ops in proptest::collection::vec(op(), 1..120)) {
            let mut now = Instant::now();
            let mut s: Slots<usize> = Slots::new();
            let mut m: Vec<Model> = Vec::new();
            for op in ops {
                match op {
                    Op::Insert { phase_ms, interval_ms, timeout_ms } => {
                        let phase = now + Duration::from_millis(phase_ms);
                        let (interval, timeout) = (Duration::from_millis(interval_ms), Duration::from_millis(timeout_ms));
                        let id = s.insert(phase, interval, timeout, m.len());
                        m.push(Model { id, phase, interval, timeout, running: None, expected: phase, removed: false });
                    }
                    Op::Remove(i) => {
                        if let Some(p) = m.get_mut(i) {
                            let got = s.remove(p.id);
                            prop_assert_eq!(got.is_some(), !p.removed);
                            p.removed = true;
                        }
                    }
                    Op::Finish(i) => {
                        if let Some(p) = m.get_mut(i) {
                            let got = s.finish(p.id, now);
                            match (p.running.take(), p.removed) {
                                (Some(start), false) => {
                                    prop_assert_eq!(got, Some(now - start));
                                    p.expected = next_run(p.phase, p.interval, now);
                                }
                                _ => prop_assert_eq!(got, None),
                            }
                        }
                    }
                    Op::Advance(ms) => now += Duration::from_millis(ms),
                }
                while let Some((id, due)) = s.pop_due(now) {
                    let i = *s.get_mut(id).unwrap();
                    let p = &mut m[i];
                    prop_assert!(!p.removed);
                    match due {
                        Due::Run => {
                            prop_assert!(p.running.is_none());
                            prop_assert!(now >= p.expected, "ran before its slot");
                            p.running = Some(now);
                        }
                        Due::TimedOut { latency } => {
                            let start = p.running.take().unwrap_or(now);
                            prop_assert_eq!(latency, now - start);
                            prop_assert!(latency >= p.timeout);
                            p.expected = next_run(p.phase, p.interval, now);
                        }
                    }
                }
                // Nothing is overdue after the step: idle probes wait for a later slot, runs
                // for a later deadline.
                for p in m.iter().filter(|p| !p.removed) {
                    match p.running {
                        None => prop_assert!(p.expected > now, "a slot was missed"),
                        Some(start) => prop_assert!(start + p.timeout > now, "a deadline was missed"),
                    }
                }
                let live = m.iter().filter(|p| !p.removed).count();
                prop_assert_eq!(s.len(), live);
                prop_assert_eq!(s.next_deadline().is_some(), live > 0);
            }
        }
    }
}
