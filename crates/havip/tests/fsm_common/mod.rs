//! Helpers shared by the `fsm_*` tests: a configuration, addresses, adverts and time in
//! milliseconds or nanoseconds.
#![allow(dead_code)]

use std::net::IpAddr;
use std::time::Duration;

use havip::fsm::{Action, Config, Event, Instance, Transition};
use havip::packet::{Advert, Auth, Version};
use havip::time::{Centisecs, Timestamp};

/// Our primary address.
pub const ME: &str = "10.0.0.5";
/// A peer with a higher address than ours.
pub const HIGHER: &str = "10.0.0.9";
/// A peer with a lower address than ours.
pub const LOWER: &str = "10.0.0.2";

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

pub fn cfg(priority: u8) -> Config {
    Config {
        vrid: 7,
        priority,
        advert_interval: Centisecs(100),
        preempt: true,
        preempt_delay: Duration::ZERO,
        accept_mode: false,
        version: Version::V3,
        primary_address: ip(ME),
    }
}

pub fn ms(v: u64) -> Timestamp {
    Timestamp::from_millis(v)
}

pub fn ns(v: u64) -> Timestamp {
    Timestamp::from_duration(Duration::from_nanos(v))
}

pub fn advert(priority: u8, interval_cs: u32) -> Advert {
    Advert {
        version: Version::V3,
        vrid: 7,
        priority,
        max_advert_int: Centisecs(interval_cs),
        addresses: vec![ip("10.0.0.100")],
        auth: Auth::None,
    }
}

pub fn rx(from: &str, priority: u8, interval_cs: u32) -> Event {
    Event::AdvertReceived {
        from: ip(from),
        advert: advert(priority, interval_cs),
    }
}

/// The single Notify in `actions`, if any (panics on two).
pub fn notify(actions: &[Action]) -> Option<Transition> {
    let mut it = actions.iter().filter_map(|a| match a {
        Action::Notify(t) => Some(t.clone()),
        _ => None,
    });
    let first = it.next();
    assert!(it.next().is_none(), "two notifications in {actions:?}");
    first
}

/// The actions without the Notify (for comparing the side effects alone).
pub fn effects(actions: &[Action]) -> Vec<Action> {
    actions
        .iter()
        .filter(|a| !matches!(a, Action::Notify(_)))
        .cloned()
        .collect()
}

/// An instance of `priority` started at `at`.
pub fn started(config: Config, at: Timestamp) -> Instance {
    let mut i = Instance::new(config);
    let _ = i.handle(Event::Startup, at);
    i
}

/// An instance driven to Master by its down timer.
pub fn master(config: Config) -> (Instance, Timestamp) {
    let mut i = started(config, ms(0));
    let t = i.next_deadline().expect("down timer");
    let _ = i.poll_timers(t);
    assert_eq!(i.state(), havip::fsm::State::Master);
    (i, t)
}
