//! Invariants of the state machine under long random event sequences (seeded, reproducible):
//! the VIPs are held exactly while Master, a deadline exists exactly in Backup and Master and is
//! never in the past, every Notify matches the state change it reports, a resign (priority 0)
//! is only sent when leaving Master, and nothing panics.

mod fsm_common;

use std::time::Duration;

use fsm_common::*;
use havip::fsm::{Action, Event, Instance, State};
use havip::packet::Version;
use havip::time::{Centisecs, Timestamp};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const PEERS: [&str; 4] = ["10.0.0.1", "10.0.0.4", "10.0.0.6", "10.0.0.200"];

fn random_event(rng: &mut Rng) -> Event {
    match rng.below(16) {
        0 => Event::Startup,
        1 => Event::Shutdown,
        2 => Event::InterfaceDown,
        3 => Event::InterfaceUp,
        4 => Event::TrackFault,
        5 => Event::TrackOk,
        6 => Event::PriorityChanged(rng.below(256) as u8),
        7..=9 => Event::TimerFired,
        _ => {
            let priority = match rng.below(4) {
                0 => 0,
                1 => 255,
                _ => rng.below(256) as u8,
            };
            let interval = 1 + rng.below(300) as u32;
            rx(PEERS[rng.below(4) as usize], priority, interval)
        }
    }
}

fn run(seed: u64, steps: usize) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut c = cfg([1u8, 50, 100, 200, 254, 255][rng.below(6) as usize]);
    c.preempt = rng.below(2) == 0;
    c.preempt_delay = Duration::from_millis(rng.below(5000));
    c.version = if rng.below(3) == 0 {
        Version::V2
    } else {
        Version::V3
    };
    c.advert_interval = if c.version == Version::V2 {
        Centisecs::from_secs(1 + rng.below(3) as u32)
    } else {
        Centisecs(1 + rng.below(200) as u32)
    };
    let mut i = Instance::new(c.clone());
    let mut now = Timestamp::ZERO;
    let mut vips = false;
    for step in 0..steps {
        // Sometimes jump exactly to the deadline, sometimes a bit before or after it.
        now = match (rng.below(3), i.next_deadline()) {
            (0, Some(d)) if d >= now => d,
            _ => now + Duration::from_micros(rng.below(2_000_000)),
        };
        let before = i.state();
        let e = random_event(&mut rng);
        let actions = i.handle(e.clone(), now);
        let ctx = || format!("seed {seed} step {step} {before} {e:?} -> {actions:?} ({c:?})");
        let mut notified = None;
        for a in &actions {
            match a {
                Action::AddVips => {
                    assert!(!vips, "AddVips twice: {}", ctx());
                    vips = true;
                }
                Action::RemoveVips => {
                    assert!(vips, "RemoveVips without VIPs: {}", ctx());
                    vips = false;
                }
                Action::SendAdvert { priority: 0 } => {
                    assert_eq!(before, State::Master, "resign from {before}: {}", ctx());
                }
                Action::SendAdvert { priority } => {
                    assert_eq!(*priority, i.priority(), "{}", ctx());
                    assert_eq!(
                        i.state(),
                        State::Master,
                        "advert while not Master: {}",
                        ctx()
                    );
                }
                Action::SendGratuitous => {
                    assert_eq!(i.state(), State::Master, "{}", ctx());
                }
                Action::Notify(t) => {
                    assert!(notified.is_none(), "two transitions: {}", ctx());
                    assert_eq!(t.from, before, "{}", ctx());
                    assert_ne!(t.from, t.to, "{}", ctx());
                    assert_eq!(t.at, now, "{}", ctx());
                    assert!(!t.reason.to_string().is_empty());
                    notified = Some(t.to);
                }
            }
        }
        assert_eq!(
            notified.unwrap_or(before),
            i.state(),
            "state changed without notify: {}",
            ctx()
        );
        assert_eq!(vips, i.state() == State::Master, "VIPs vs state: {}", ctx());
        match i.state() {
            State::Master | State::Backup => {
                let d = i.next_deadline().expect("a running timer");
                assert!(d >= now || e != Event::TimerFired, "{}", ctx());
            }
            State::Initialize | State::Fault => {
                assert_eq!(i.next_deadline(), None, "{}", ctx())
            }
        }
        if c.priority == 255 {
            assert_eq!(i.priority(), 255);
        } else {
            assert!((1..=254).contains(&i.priority()));
        }
    }
}

#[test]
fn invariants_hold_on_random_sequences() {
    for seed in 0..300 {
        run(seed, 2000);
    }
}
