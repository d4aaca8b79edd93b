//! The RFC timer formulas, exact to the nanosecond, through the state machine (not only through
//! `time::master_down`): Master_Down_Interval after Startup and after an advert, Skew_Time
//! after a priority 0 advert, for v3 (centisecond intervals) and v2 (seconds).

mod fsm_common;

use std::time::Duration;

use fsm_common::*;
use havip::fsm::{Event, Instance};
use havip::packet::Version;
use havip::time::{master_down, Centisecs};

/// (version, local priority, interval in cs, Skew_Time ns, Master_Down_Interval ns)
const TABLE: [(Version, u8, u32, u64, u64); 10] = [
    // 156 * 100 / 256 = 60.9375 cs
    (Version::V3, 100, 100, 609_375_000, 3_609_375_000),
    // 1 * 100 / 256 = 0.390625 cs
    (Version::V3, 255, 100, 3_906_250, 3_003_906_250),
    (Version::V3, 254, 100, 7_812_500, 3_007_812_500),
    (Version::V3, 1, 100, 996_093_750, 3_996_093_750),
    // 100 ms adverts: 156 * 10 / 256 = 6.09375 cs
    (Version::V3, 100, 10, 60_937_500, 360_937_500),
    // 10 ms adverts (the v3 minimum): 156 / 256 cs = 6.09375 ms
    (Version::V3, 100, 1, 6_093_750, 36_093_750),
    // 40.95 s (the v3 maximum): 156 * 4095 / 256 = 2495.390625 cs
    (Version::V3, 100, 4095, 24_953_906_250, 147_803_906_250),
    // v2: (256 - 100) / 256 s, whatever the interval
    (Version::V2, 100, 100, 609_375_000, 3_609_375_000),
    (Version::V2, 100, 300, 609_375_000, 9_609_375_000),
    (Version::V2, 200, 100, 218_750_000, 3_218_750_000),
];

#[test]
fn formula_table() {
    for (v, p, cs, skew, down) in TABLE {
        let t = master_down(v, p, Centisecs(cs));
        assert_eq!(t.skew, Duration::from_nanos(skew), "{v} p{p} {cs}cs skew");
        assert_eq!(
            t.master_down,
            Duration::from_nanos(down),
            "{v} p{p} {cs}cs down"
        );
    }
}

#[test]
fn startup_deadline_is_master_down_interval_of_own_interval() {
    for (v, p, cs, _, down) in TABLE {
        if p == 255 {
            continue; // the owner does not wait
        }
        let mut c = cfg(p);
        c.version = v;
        c.advert_interval = Centisecs(cs);
        let mut i = Instance::new(c);
        let _ = i.handle(Event::Startup, ms(7));
        assert_eq!(
            i.next_deadline(),
            Some(ms(7) + Duration::from_nanos(down)),
            "{v} p{p} {cs}cs"
        );
    }
}

#[test]
fn advert_deadline_uses_learned_interval_in_v3_only() {
    for (v, p, cs, _, _) in TABLE {
        if p == 255 {
            continue;
        }
        let mut c = cfg(p);
        c.version = v;
        c.advert_interval = Centisecs(100);
        let mut i = Instance::new(c);
        let _ = i.handle(Event::Startup, ms(0));
        // The Master advertises `cs`; v3 learns it, v2 keeps its own 1 s.
        let _ = i.handle(rx(HIGHER, 255, cs), ms(50));
        let learned = if v == Version::V3 { cs } else { 100 };
        let want = master_down(v, p, Centisecs(learned)).master_down;
        assert_eq!(i.next_deadline(), Some(ms(50) + want), "{v} p{p} {cs}cs");
        assert_eq!(i.master_adver_interval(), Centisecs(learned));
    }
}

#[test]
fn priority_zero_deadline_is_skew_time() {
    for (v, p, cs, skew, _) in TABLE {
        if p == 255 {
            continue;
        }
        let mut c = cfg(p);
        c.version = v;
        c.advert_interval = Centisecs(cs);
        let mut i = Instance::new(c);
        let _ = i.handle(Event::Startup, ms(0));
        let _ = i.handle(rx(HIGHER, 0, cs), ms(20));
        assert_eq!(
            i.next_deadline(),
            Some(ms(20) + Duration::from_nanos(skew)),
            "{v} p{p} {cs}cs"
        );
    }
}

#[test]
fn skew_follows_the_effective_priority() {
    // Tracking lowered us to 50: the next Master_Down_Interval uses 50.
    let mut i = started(cfg(200), ms(0));
    let _ = i.handle(Event::PriorityChanged(50), ms(1));
    let _ = i.handle(rx(HIGHER, 210, 100), ms(2));
    // 3 s + 206 * 100 / 256 cs = 3.8046875 s
    assert_eq!(
        i.next_deadline(),
        Some(ms(2) + Duration::from_nanos(3_804_687_500))
    );
}
