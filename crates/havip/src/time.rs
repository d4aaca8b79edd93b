//! Time for the pure VRRP code: the [`Centisecs`] interval newtype, the injected [`Timestamp`]
//! clock, and the one function that implements the RFC timer formulas ([`master_down`]).
//!
//! RFC 9568 - Section 6.1 (paraphrased): Skew_Time, in centiseconds, is
//! ((256 - Priority) * Active_Adver_Interval) / 256, and Active_Down_Interval, the time after
//! which a Backup declares the Active Router down, is 3 * Active_Adver_Interval + Skew_Time.
//!
//! RFC 3768 - Section 6.1 (paraphrased): Skew_Time, in seconds, is (256 - Priority) / 256, and
//! Master_Down_Interval is 3 * Advertisement_Interval + Skew_Time.
//!
//! Rounding (our choice, documented in `docs/havip.md`): the formulas are evaluated exactly in
//! integer nanoseconds and the result is rounded DOWN to a whole nanosecond. One centisecond is
//! 10^7 ns, so `(256 - p) * interval_cs * 10^7 / 256` is exact whenever `(256 - p) * interval_cs`
//! is even and at most 0.5 ns short otherwise. The skew is therefore never truncated to zero
//! (holo-vrrp's bug): priority 100, interval 100 cs gives a skew of exactly 609.375 ms and a
//! Master_Down_Interval of exactly 3.609375 s.

use std::fmt;
use std::ops::Add;
use std::time::Duration;

use crate::packet::Version;

/// A VRRP interval in centiseconds (hundredths of a second).
///
/// RFC 9568 - Section 5.2.7 (paraphrased): the Max Advertise Interval is a 12-bit field, in
/// centiseconds, between ADVERTISEMENTs. VRRPv2 intervals (whole seconds
/// on the wire) are kept in this unit too, so the state machine has a single time unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Centisecs(pub u32);

impl Centisecs {
    /// The largest interval a VRRPv3 packet can carry (12 bits: 40.95 s).
    pub const V3_MAX: Centisecs = Centisecs(0x0fff);
    /// The RFC default Advertisement_Interval: one second.
    ///
    /// RFC 9568 - Section 6.1 (paraphrased): Advertisement_Interval, in centiseconds, defaults
    /// to 100 (1 second).
    pub const ONE_SECOND: Centisecs = Centisecs(100);

    /// An interval of `secs` whole seconds (saturating).
    pub fn from_secs(secs: u32) -> Centisecs {
        Centisecs(secs.saturating_mul(100))
    }

    /// An interval of `ms` milliseconds, rounded down to whole centiseconds (saturating).
    pub fn from_millis_floor(ms: u64) -> Centisecs {
        Centisecs(u32::try_from(ms / 10).unwrap_or(u32::MAX))
    }

    /// The number of centiseconds.
    pub fn get(self) -> u32 {
        self.0
    }

    /// The interval as a [`Duration`] (exact).
    pub fn as_duration(self) -> Duration {
        Duration::from_millis(u64::from(self.0) * 10)
    }

    /// Whole seconds if the interval is a whole number of seconds (what a VRRPv2 packet carries).
    pub fn whole_secs(self) -> Option<u32> {
        (self.0 % 100 == 0).then_some(self.0 / 100)
    }
}

impl fmt::Display for Centisecs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}s", self.0 / 100, self.0 % 100)
    }
}

/// A point on the injected monotonic clock: the time elapsed since an arbitrary origin chosen by
/// the caller (the runner uses its start instant; tests use zero).
///
/// The pure code never reads a clock: every event carries `now: Timestamp`, and timers are
/// returned as `Timestamp` deadlines that the caller waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub Duration);

impl Timestamp {
    /// The origin of the clock.
    pub const ZERO: Timestamp = Timestamp(Duration::ZERO);

    /// A timestamp `d` after the origin.
    pub fn from_duration(d: Duration) -> Timestamp {
        Timestamp(d)
    }

    /// A timestamp `ms` milliseconds after the origin.
    pub fn from_millis(ms: u64) -> Timestamp {
        Timestamp(Duration::from_millis(ms))
    }

    /// The time since the origin.
    pub fn since_origin(self) -> Duration {
        self.0
    }

    /// `self - earlier`, or zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, rhs: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(rhs))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// Nanoseconds in one centisecond.
const NS_PER_CS: u64 = 10_000_000;
/// Nanoseconds in one second.
const NS_PER_S: u64 = 1_000_000_000;

/// The two RFC timer values of a Backup, computed together by [`master_down`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownTimers {
    /// Skew_Time (see the module documentation for its formula per version).
    pub skew: Duration,
    /// Master_Down_Interval (RFC 9568: Active_Down_Interval) = 3 * interval + Skew_Time.
    pub master_down: Duration,
}

/// Skew_Time and Master_Down_Interval for a router of local `priority` that hears adverts every
/// `master_adver_interval`.
///
/// v3 (RFC 9568 - Section 6.1, paraphrased): Skew_Time = ((256 - Priority) *
/// Active_Adver_Interval) / 256 centiseconds; Active_Down_Interval = 3 * Active_Adver_Interval +
/// Skew_Time.
///
/// v2 (RFC 3768 - Section 6.1, paraphrased): Skew_Time = (256 - Priority) / 256 seconds,
/// independent of the interval; Master_Down_Interval = 3 * Advertisement_Interval + Skew_Time.
///
/// Exact in nanoseconds, rounded down (see the module documentation). A priority of 0 is treated
/// as 256 - 0 = 256 (skew = one full interval), which no caller should need.
pub fn master_down(version: Version, priority: u8, master_adver_interval: Centisecs) -> DownTimers {
    let weight = 256 - u64::from(priority);
    let interval_ns = u64::from(master_adver_interval.0) * NS_PER_CS;
    let skew_ns = match version {
        Version::V3 => weight * interval_ns / 256,
        Version::V2 => weight * NS_PER_S / 256,
    };
    DownTimers {
        skew: Duration::from_nanos(skew_ns),
        master_down: Duration::from_nanos(3 * interval_ns + skew_ns),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_priority_100_interval_1s_is_exact() {
        let t = master_down(Version::V3, 100, Centisecs(100));
        // 156 * 100 / 256 = 60.9375 cs
        assert_eq!(t.skew, Duration::from_micros(609_375));
        assert_eq!(t.master_down, Duration::from_micros(3_609_375));
    }

    #[test]
    fn v3_small_interval_skew_is_not_truncated_to_zero() {
        // 10 cs (100 ms) at priority 254: 2 * 10 / 256 cs = 0.078125 cs = 781.25 us
        let t = master_down(Version::V3, 254, Centisecs(10));
        assert_eq!(t.skew, Duration::from_nanos(781_250));
        assert_eq!(t.master_down, Duration::from_nanos(300_781_250));
        // 1 cs at priority 255: 1/256 cs = 39062.5 ns, rounded down.
        let t = master_down(Version::V3, 255, Centisecs(1));
        assert_eq!(t.skew, Duration::from_nanos(39_062));
        assert_eq!(t.master_down, Duration::from_nanos(30_039_062));
    }

    #[test]
    fn v3_skew_depends_on_interval_and_priority() {
        let a = master_down(Version::V3, 200, Centisecs(100));
        let b = master_down(Version::V3, 100, Centisecs(100));
        assert!(
            a.skew < b.skew,
            "higher priority must have the shorter skew"
        );
        let c = master_down(Version::V3, 100, Centisecs(200));
        assert_eq!(c.skew, b.skew * 2);
        assert_eq!(
            master_down(Version::V3, 1, Centisecs::V3_MAX).master_down,
            Duration::from_nanos(3 * 40_950_000_000 + 255 * 40_950_000_000 / 256)
        );
    }

    #[test]
    fn v2_skew_is_in_seconds_independent_of_interval() {
        let t = master_down(Version::V2, 100, Centisecs::from_secs(1));
        assert_eq!(t.skew, Duration::from_micros(609_375));
        assert_eq!(t.master_down, Duration::from_micros(3_609_375));
        let t = master_down(Version::V2, 100, Centisecs::from_secs(5));
        assert_eq!(t.skew, Duration::from_micros(609_375));
        assert_eq!(t.master_down, Duration::from_micros(15_609_375));
    }

    #[test]
    fn centisecs_helpers() {
        assert_eq!(Centisecs(150).as_duration(), Duration::from_millis(1500));
        assert_eq!(Centisecs(300).whole_secs(), Some(3));
        assert_eq!(Centisecs(150).whole_secs(), None);
        assert_eq!(Centisecs(5).to_string(), "0.05s");
        assert_eq!(Centisecs::from_millis_floor(1234), Centisecs(123));
        assert_eq!(
            Timestamp::from_millis(5) + Duration::from_millis(7),
            Timestamp::from_millis(12)
        );
        assert_eq!(
            Timestamp::from_millis(5).saturating_since(Timestamp::from_millis(9)),
            Duration::ZERO
        );
    }
}
