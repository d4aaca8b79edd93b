//! When probes run: pure arithmetic, no clock of its own.
//!
//! Each probe gets a phase when it is created: its creation time plus an offset in
//! `[0, interval)`. It then runs at `phase + k * interval`. A run that overruns its slot skips the
//! slots it missed (never a burst of catch-up runs), so the probe keeps its phase.
//!
//! The offset of the n-th probe a registry creates is `frac(n / golden ratio) * interval` (a Weyl
//! sequence, the "golden ratio" low-discrepancy sequence): however many probes are created at once,
//! they spread evenly over the interval (with N probes over M buckets no bucket holds more than a
//! couple over N / M), instead of firing in the same millisecond like probes started by a loop.

use std::time::{Duration, Instant};

/// 2^64 divided by the golden ratio: the Weyl sequence's step in 64-bit fixed point.
const GOLDEN_STEP: u64 = 0x9E37_79B9_7F4A_7C15;

/// The offset, within `interval`, of the `n`-th probe created.
pub fn first_offset(n: u64, interval: Duration) -> Duration {
    let frac = n.wrapping_mul(GOLDEN_STEP);
    let nanos = (u128::from(frac) * interval.as_nanos()) >> 64;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// The first slot `phase + k * interval` (k >= 0) strictly after `after`; `phase` itself when
/// `after` is before it. `interval` must not be zero (the spec raises it to its minimum).
pub fn next_run(phase: Instant, interval: Duration, after: Instant) -> Instant {
    let Some(late) = after.checked_duration_since(phase) else {
        return phase;
    };
    let step = interval.as_nanos().max(1);
    let k = late.as_nanos() / step + 1;
    let ahead = step.saturating_mul(k);
    phase + Duration::from_nanos(u64::try_from(ahead).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// `next_run` is the first slot strictly after `after` (or the phase before it).
        #[test]
        fn next_run_law(interval_ms in 1u64..10_000, late_ms in -20_000i64..100_000) {
            let phase = Instant::now() + Duration::from_secs(100);
            let interval = Duration::from_millis(interval_ms);
            let after = if late_ms < 0 {
                phase - Duration::from_millis(late_ms.unsigned_abs())
            } else {
                phase + Duration::from_millis(late_ms.unsigned_abs())
            };
            let next = next_run(phase, interval, after);
            if after < phase {
                prop_assert_eq!(next, phase);
            } else {
                prop_assert!(next > after);
                prop_assert!(next - after <= interval);
                prop_assert_eq!((next - phase).as_nanos() % interval.as_nanos(), 0);
            }
        }

        /// Every offset is inside the interval.
        #[test]
        fn offsets_inside_the_interval(n in any::<u64>(), interval_ms in 1u64..100_000) {
            let interval = Duration::from_millis(interval_ms);
            prop_assert!(first_offset(n, interval) < interval);
        }
    }

    #[test]
    fn ten_thousand_probes_spread_over_one_second() {
        let interval = Duration::from_secs(1);
        let mut per_ms = vec![0u32; 1000];
        for n in 0..10_000 {
            let off = first_offset(n, interval);
            assert!(off < interval);
            per_ms[off.as_millis() as usize] += 1;
        }
        let max = per_ms.iter().max().copied().unwrap_or(0);
        let min = per_ms.iter().min().copied().unwrap_or(0);
        assert!(
            max <= 12 && min >= 8,
            "per-millisecond load {min}..{max}, mean 10"
        );
    }

    #[test]
    fn a_hundred_probes_never_share_a_millisecond() {
        let interval = Duration::from_secs(1);
        let mut ms: Vec<u128> = (0..100)
            .map(|n| first_offset(n, interval).as_millis())
            .collect();
        ms.sort_unstable();
        ms.dedup();
        assert_eq!(ms.len(), 100);
    }

    #[test]
    fn offsets_scale_with_the_interval() {
        assert_eq!(first_offset(0, Duration::from_secs(1)), Duration::ZERO);
        let a = first_offset(7, Duration::from_secs(1));
        let b = first_offset(7, Duration::from_secs(10));
        assert!(b.abs_diff(a * 10) < Duration::from_micros(1));
        assert_eq!(first_offset(123, Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn next_run_keeps_the_phase_and_skips_missed_slots() {
        let p = Instant::now();
        let i = Duration::from_millis(100);
        let ms = Duration::from_millis;
        assert_eq!(next_run(p, i, p - ms(5)), p, "before the phase: the phase");
        assert_eq!(
            next_run(p, i, p),
            p + ms(100),
            "strictly after a run at the slot"
        );
        assert_eq!(next_run(p, i, p + ms(30)), p + ms(100));
        assert_eq!(next_run(p, i, p + ms(100)), p + ms(200));
        assert_eq!(
            next_run(p, i, p + ms(350)),
            p + ms(400),
            "an overrun skips 2 slots"
        );
    }
}
