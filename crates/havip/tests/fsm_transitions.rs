//! Every transition of RFC 9568 - Section 6.4 (and our Fault / priority / re-announce additions),
//! driven by events and injected time. Each test names the rule it checks.

mod fsm_common;

use std::time::Duration;

use fsm_common::*;
use havip::fsm::{Action, DownCause, Event, Instance, Reason, State};
use havip::time::Timestamp;

#[test]
fn initialize_waits_for_startup() {
    // RFC 9568 - Section 6.4.1 (paraphrased): {Initialize} waits for a Startup event.
    let mut i = Instance::new(cfg(100));
    assert_eq!(i.state(), State::Initialize);
    assert_eq!(i.next_deadline(), None);
    assert!(i.handle(rx(HIGHER, 200, 100), ms(1)).is_empty());
    assert!(i.poll_timers(ms(100_000)).is_empty());
    assert!(i.handle(Event::Shutdown, ms(2)).is_empty());
    assert!(i.handle(Event::PriorityChanged(50), ms(3)).is_empty());
    assert_eq!(i.state(), State::Initialize);
}

#[test]
fn startup_non_owner_goes_backup_and_waits_master_down_interval() {
    // RFC 9568 - Section 6.4.1 (paraphrased): a non-owner sets the Active_Down_Timer to
    // Active_Down_Interval and goes {Backup}.
    let mut i = Instance::new(cfg(100));
    let a = i.handle(Event::Startup, ms(1000));
    assert_eq!(effects(&a), vec![]);
    let t = notify(&a).expect("notify");
    assert_eq!(
        (t.from, t.to, t.reason, t.at),
        (State::Initialize, State::Backup, Reason::Startup, ms(1000))
    );
    // 3 * 100 cs + (256 - 100) * 100 / 256 cs = 360.9375 cs
    assert_eq!(
        i.next_deadline(),
        Some(ms(1000) + Duration::from_micros(3_609_375))
    );
    // A second Startup changes nothing.
    assert!(i.handle(Event::Startup, ms(1001)).is_empty());
}

#[test]
fn startup_owner_goes_master_at_once() {
    // RFC 9568 - Section 6.4.1 (paraphrased): an owner (Priority 255) sends an ADVERTISEMENT,
    // sets the Adver_Timer to Advertisement_Interval and goes {Active}.
    let mut i = Instance::new(cfg(255));
    let a = i.handle(Event::Startup, ms(10));
    assert_eq!(
        effects(&a),
        vec![
            Action::AddVips,
            Action::SendAdvert { priority: 255 },
            Action::SendGratuitous
        ]
    );
    assert_eq!(notify(&a).map(|t| t.reason), Some(Reason::StartupOwner));
    assert_eq!(i.state(), State::Master);
    assert_eq!(i.next_deadline(), Some(ms(1010)));
    assert_eq!(i.master_address(), Some(ip(ME)));
}

#[test]
fn backup_master_down_timer_fires_exactly_at_deadline() {
    // RFC 9568 - Section 6.4.2: "If the Active_Down_Timer fires, then: Send an ADVERTISEMENT
    // ... broadcast a gratuitous ARP message ... Set the Adver_Timer to Advertisement_Interval;
    // Transition to the {Active} state."
    let mut i = started(cfg(100), ms(0));
    let deadline = ns(3_609_375_000);
    assert_eq!(i.next_deadline(), Some(deadline));
    assert!(i.poll_timers(ns(3_609_374_999)).is_empty());
    assert_eq!(i.state(), State::Backup);
    let a = i.poll_timers(deadline);
    assert_eq!(
        effects(&a),
        vec![
            Action::AddVips,
            Action::SendAdvert { priority: 100 },
            Action::SendGratuitous
        ]
    );
    assert_eq!(
        notify(&a).map(|t| (t.from, t.to, t.reason)),
        Some((
            State::Backup,
            State::Master,
            Reason::MasterDown(DownCause::NoMasterHeard)
        ))
    );
    assert_eq!(i.next_deadline(), Some(deadline + Duration::from_secs(1)));
    // Event::TimerFired is the same as poll_timers.
    let a = i.handle(Event::TimerFired, deadline + Duration::from_secs(1));
    assert_eq!(a, vec![Action::SendAdvert { priority: 100 }]);
}

#[test]
fn backup_accepts_higher_priority_and_learns_interval() {
    // RFC 9568 - Section 6.4.2: "Set the Active_Adver_Interval to the Max Advertise Interval
    // contained in the ADVERTISEMENT; Recompute the Skew_Time; Recompute the Active_Down_Interval;
    // Set the Active_Down_Timer to Active_Down_Interval"
    let mut i = started(cfg(100), ms(0));
    assert!(i.handle(rx(HIGHER, 200, 50), ms(500)).is_empty());
    assert_eq!(i.master_adver_interval().get(), 50);
    assert_eq!(i.master_address(), Some(ip(HIGHER)));
    // 3 * 50 cs + 156 * 50 / 256 cs = 150 + 30.46875 cs = 1.8046875 s
    assert_eq!(
        i.next_deadline(),
        Some(ms(500) + Duration::from_nanos(1_804_687_500))
    );
    // Adverts keep it Backup forever.
    for k in 1..50u64 {
        assert!(i.handle(rx(HIGHER, 200, 50), ms(500 + 500 * k)).is_empty());
        assert!(i.poll_timers(ms(500 + 500 * k + 400)).is_empty());
    }
    assert_eq!(i.state(), State::Backup);
}

#[test]
fn backup_accepts_equal_priority() {
    // RFC 9568 - Section 6.4.2: "... or if the Priority in the ADVERTISEMENT is greater than or
    // equal to the local Priority, then: ... Set the Active_Down_Timer to Active_Down_Interval".
    let mut i = started(cfg(100), ms(0));
    assert!(i.handle(rx(LOWER, 100, 100), ms(3000)).is_empty());
    assert_eq!(
        i.next_deadline(),
        Some(ms(3000) + Duration::from_micros(3_609_375))
    );
}

#[test]
fn backup_preempts_lower_priority_master() {
    // RFC 9568 - Section 6.4.2: "else // preempt was true and priority was less than the local
    // priority; Discard the ADVERTISEMENT" The timer is not reset, so it fires and we take over.
    let mut i = started(cfg(150), ms(0));
    let deadline = i.next_deadline().expect("timer");
    assert!(i.handle(rx(HIGHER, 100, 100), ms(1000)).is_empty());
    assert!(i.handle(rx(HIGHER, 100, 100), ms(2000)).is_empty());
    assert_eq!(i.next_deadline(), Some(deadline));
    let a = i.poll_timers(deadline);
    assert_eq!(
        notify(&a).map(|t| t.reason),
        Some(Reason::MasterDown(DownCause::Preempting {
            from: ip(HIGHER),
            priority: 100
        }))
    );
}

#[test]
fn backup_nopreempt_never_takes_over_from_a_live_lower_master() {
    // RFC 9568 - Section 6.4.2: "If Preempt_Mode is False, or ... then: ... Set the
    // Active_Down_Timer to Active_Down_Interval"
    let mut c = cfg(200);
    c.preempt = false;
    let mut i = started(c, ms(0));
    for k in 0..100u64 {
        assert!(i.handle(rx(LOWER, 50, 100), ms(1000 * k)).is_empty());
        assert!(i.poll_timers(ms(1000 * k + 999)).is_empty());
    }
    assert_eq!(i.state(), State::Backup);
    // ... but takes over when it dies.
    let a = i.poll_timers(ms(99_000) + Duration::from_nanos(3_218_750_000));
    assert_eq!(
        notify(&a).map(|t| t.reason),
        Some(Reason::MasterDown(DownCause::AdvertsStopped {
            last_master: ip(LOWER)
        }))
    );
}

#[test]
fn backup_priority_zero_sets_timer_to_skew_time() {
    // RFC 9568 - Section 6.4.2: "If the Priority in the ADVERTISEMENT is 0, then: Set the
    // Active_Down_Timer to Skew_Time"
    let mut i = started(cfg(100), ms(0));
    let _ = i.handle(rx(HIGHER, 200, 100), ms(1000));
    assert!(i.handle(rx(HIGHER, 0, 100), ms(1500)).is_empty());
    let skew = ms(1500) + Duration::from_micros(609_375);
    assert_eq!(i.next_deadline(), Some(skew));
    let a = i.poll_timers(skew);
    assert_eq!(
        notify(&a).map(|t| t.reason),
        Some(Reason::MasterDown(DownCause::MasterResigned {
            from: ip(HIGHER)
        }))
    );
    assert_eq!(i.state(), State::Master);
}

#[test]
fn master_adver_timer_sends_and_rearms_from_now() {
    // RFC 9568 - Section 6.4.3: "If the Adver_Timer fires, then: Send an ADVERTISEMENT; Reset
    // the Adver_Timer to Advertisement_Interval."
    let (mut i, t) = master(cfg(100));
    assert!(i.poll_timers(t + Duration::from_millis(999)).is_empty());
    let late = t + Duration::from_millis(3500);
    assert_eq!(
        i.poll_timers(late),
        vec![Action::SendAdvert { priority: 100 }]
    );
    // Late by 2.5 intervals: one advert, not a burst; next one an interval after.
    assert!(i.poll_timers(late).is_empty());
    assert_eq!(i.next_deadline(), Some(late + Duration::from_secs(1)));
}

#[test]
fn master_priority_zero_answers_at_once() {
    // RFC 9568 - Section 6.4.3: "If the Priority in the ADVERTISEMENT is 0, then: Send an
    // ADVERTISEMENT; Reset the Adver_Timer to Advertisement_Interval"
    let (mut i, t) = master(cfg(100));
    let now = t + Duration::from_millis(300);
    assert_eq!(
        i.handle(rx(HIGHER, 0, 100), now),
        vec![Action::SendAdvert { priority: 100 }]
    );
    assert_eq!(i.state(), State::Master);
    assert_eq!(i.next_deadline(), Some(now + Duration::from_secs(1)));
}

#[test]
fn master_steps_down_for_higher_priority() {
    // RFC 9568 - Section 6.4.3: "If the Priority in the ADVERTISEMENT is greater than the local
    // Priority ... Cancel Adver_Timer; Set the Active_Adver_Interval to the Max Advertise Interval
    // contained in the ADVERTISEMENT; Recompute the Skew_Time; Recompute the
    // Active_Down_Interval; Set the Active_Down_Timer to Active_Down_Interval; Transition to the
    // {Backup} state"
    let (mut i, t) = master(cfg(100));
    let now = t + Duration::from_millis(10);
    let a = i.handle(rx(LOWER, 101, 200), now);
    assert_eq!(effects(&a), vec![Action::RemoveVips]);
    assert_eq!(
        notify(&a).map(|t| (t.from, t.to, t.reason)),
        Some((
            State::Master,
            State::Backup,
            Reason::HigherPriority {
                from: ip(LOWER),
                priority: 101
            }
        ))
    );
    // 3 * 200 cs + 156 * 200 / 256 cs = 7.21875 s
    assert_eq!(
        i.next_deadline(),
        Some(now + Duration::from_micros(7_218_750))
    );
    assert_eq!(i.master_address(), Some(ip(LOWER)));
}

#[test]
fn master_tie_break_on_primary_address() {
    // RFC 9568 - Section 6.4.3: "... or the Priority in the ADVERTISEMENT is equal to the local
    // Priority and the primary IPvX address of the sender is greater than the local primary IPvX
    // address (based on an unsigned integer comparison of the IPvX addresses in network byte
    // order)".
    let (mut i, t) = master(cfg(100));
    let a = i.handle(rx(LOWER, 100, 100), t);
    assert_eq!(
        effects(&a),
        vec![Action::SendAdvert { priority: 100 }, Action::SendGratuitous],
        "equal priority, lower address: we stay Master and re-announce"
    );
    assert_eq!(i.state(), State::Master);
    let a = i.handle(rx(HIGHER, 100, 100), t);
    assert_eq!(effects(&a), vec![Action::RemoveVips]);
    assert_eq!(
        notify(&a).map(|t| t.reason),
        Some(Reason::EqualPriorityHigherAddress { from: ip(HIGHER) })
    );
    // Network byte order, not string order: 10.0.0.10 > 10.0.0.5, though "10.0.0.10" < "10.0.0.5".
    let (mut i, t) = master(cfg(100));
    let a = i.handle(rx("10.0.0.10", 100, 100), t);
    assert_eq!(i.state(), State::Backup, "{a:?}");
}

#[test]
fn tie_break_uses_the_new_primary_address_after_a_change() {
    // The interface was re-created with another address: the election must compare the
    // address the adverts now come from, not the one the instance started with.
    let (mut i, t) = master(cfg(100));
    let _ = i.handle(rx("10.0.0.3", 100, 100), t);
    assert_eq!(i.state(), State::Master, "10.0.0.3 < 10.0.0.5 (ME)");
    assert!(i
        .handle(Event::PrimaryAddressChanged(ip("10.0.0.1")), t)
        .is_empty());
    assert_eq!(i.config().primary_address, ip("10.0.0.1"));
    assert_eq!(
        i.master_address(),
        Some(ip("10.0.0.1")),
        "a Master is itself"
    );
    let a = i.handle(rx("10.0.0.3", 100, 100), t);
    assert_eq!(i.state(), State::Backup, "10.0.0.3 > 10.0.0.1 now: {a:?}");
    assert_eq!(
        notify(&a).map(|t| t.reason),
        Some(Reason::EqualPriorityHigherAddress {
            from: ip("10.0.0.3")
        })
    );
    // Its own adverts are recognised by the new address too (and ignored).
    let (mut i, t) = master(cfg(100));
    let _ = i.handle(Event::PrimaryAddressChanged(ip("10.0.0.7")), t);
    assert!(i.handle(rx("10.0.0.7", 100, 100), t).is_empty());
    assert_eq!(i.state(), State::Master);
}

#[test]
fn master_tie_break_ipv6() {
    let mut c = cfg(100);
    c.primary_address = ip("fe80::5");
    let (mut i, t) = master(c);
    let _ = i.handle(rx("fe80::4", 100, 100), t);
    assert_eq!(i.state(), State::Master);
    let _ = i.handle(rx("fe80::1:0", 100, 100), t);
    assert_eq!(i.state(), State::Backup);
}

#[test]
fn master_re_announces_when_it_hears_a_lower_priority_master() {
    // RFC 9568 - Section 6.4.3: "Discard the ADVERTISEMENT; Send an ADVERTISEMENT immediately";
    // issue #10 product choice on top: a gratuitous ARP / NA too, so a healed split brain
    // converges and clients follow us.
    let (mut i, t) = master(cfg(200));
    let now = t + Duration::from_millis(250);
    assert_eq!(
        i.handle(rx(HIGHER, 100, 100), now),
        vec![Action::SendAdvert { priority: 200 }, Action::SendGratuitous]
    );
    assert_eq!(i.state(), State::Master);
    assert_eq!(i.next_deadline(), Some(now + Duration::from_secs(1)));
}

#[test]
fn shutdown_from_master_resigns_and_removes_vips() {
    // RFC 9568 - Section 6.4.3: "If a Shutdown event is received, then: Cancel the Adver_Timer;
    // Send an ADVERTISEMENT with Priority = 0; Transition to the {Initialize} state."
    let (mut i, t) = master(cfg(100));
    let a = i.handle(Event::Shutdown, t);
    assert_eq!(
        effects(&a),
        vec![Action::SendAdvert { priority: 0 }, Action::RemoveVips]
    );
    assert_eq!(
        notify(&a).map(|t| (t.from, t.to, t.reason)),
        Some((State::Master, State::Initialize, Reason::Shutdown))
    );
    assert_eq!(i.next_deadline(), None);
    assert!(i.handle(Event::Shutdown, t).is_empty());
    // A later Startup starts over (as Backup).
    let _ = i.handle(Event::Startup, t + Duration::from_secs(1));
    assert_eq!(i.state(), State::Backup);
}

#[test]
fn shutdown_from_backup_cancels_timer() {
    // RFC 9568 - Section 6.4.2: "If a Shutdown event is received, then: Cancel the
    // Active_Down_Timer; Transition to the {Initialize} state."
    let mut i = started(cfg(100), ms(0));
    let a = i.handle(Event::Shutdown, ms(10));
    assert_eq!(effects(&a), vec![]);
    assert_eq!(notify(&a).map(|t| t.to), Some(State::Initialize));
    assert_eq!(i.next_deadline(), None);
    assert!(i.poll_timers(ms(100_000)).is_empty());
}

#[test]
fn interface_down_from_master_is_fault_without_advert() {
    let (mut i, t) = master(cfg(100));
    let a = i.handle(Event::InterfaceDown, t);
    assert_eq!(effects(&a), vec![Action::RemoveVips]);
    assert_eq!(
        notify(&a).map(|t| (t.from, t.to, t.reason)),
        Some((State::Master, State::Fault, Reason::InterfaceDown))
    );
    assert_eq!(i.next_deadline(), None);
    assert!(i.handle(rx(LOWER, 10, 100), t).is_empty());
    assert!(i.handle(Event::InterfaceDown, t).is_empty());
    let up = t + Duration::from_secs(5);
    let a = i.handle(Event::InterfaceUp, up);
    assert_eq!(
        notify(&a).map(|t| (t.from, t.to, t.reason)),
        Some((State::Fault, State::Backup, Reason::FaultCleared))
    );
    assert_eq!(
        i.next_deadline(),
        Some(up + Duration::from_micros(3_609_375))
    );
}

#[test]
fn track_fault_from_master_resigns_first() {
    let (mut i, t) = master(cfg(100));
    let a = i.handle(Event::TrackFault, t);
    assert_eq!(
        effects(&a),
        vec![Action::SendAdvert { priority: 0 }, Action::RemoveVips]
    );
    assert_eq!(notify(&a).map(|t| t.reason), Some(Reason::TrackFault));
    // Two fault sources: both must clear.
    assert!(i.handle(Event::InterfaceDown, t).is_empty());
    assert!(i.handle(Event::TrackOk, t).is_empty());
    assert_eq!(i.state(), State::Fault);
    let a = i.handle(Event::InterfaceUp, t);
    assert_eq!(notify(&a).map(|t| t.to), Some(State::Backup));
}

#[test]
fn fault_from_backup_and_shutdown_from_fault() {
    let mut i = started(cfg(100), ms(0));
    let a = i.handle(Event::TrackFault, ms(5));
    assert_eq!(effects(&a), vec![]);
    assert_eq!(i.state(), State::Fault);
    let a = i.handle(Event::Shutdown, ms(6));
    assert_eq!(
        notify(&a).map(|t| (t.from, t.to)),
        Some((State::Fault, State::Initialize))
    );
}

#[test]
fn startup_with_interface_down_is_fault() {
    let mut i = Instance::new(cfg(100));
    assert!(i.handle(Event::InterfaceDown, ms(0)).is_empty());
    let a = i.handle(Event::Startup, ms(1));
    assert_eq!(
        notify(&a).map(|t| (t.from, t.to, t.reason)),
        Some((State::Initialize, State::Fault, Reason::InterfaceDown))
    );
    let a = i.handle(Event::InterfaceUp, ms(2));
    assert_eq!(notify(&a).map(|t| t.to), Some(State::Backup));
}

#[test]
fn owner_fault_clear_goes_master_at_once() {
    let mut i = started(cfg(255), ms(0));
    let _ = i.handle(Event::InterfaceDown, ms(1));
    let a = i.handle(Event::InterfaceUp, ms(2));
    assert_eq!(
        effects(&a),
        vec![
            Action::AddVips,
            Action::SendAdvert { priority: 255 },
            Action::SendGratuitous
        ]
    );
    assert_eq!(i.state(), State::Master);
}

#[test]
fn priority_change_is_advertised_at_once_by_master_and_clamped() {
    let (mut i, t) = master(cfg(100));
    assert_eq!(
        i.handle(Event::PriorityChanged(80), t),
        vec![Action::SendAdvert { priority: 80 }]
    );
    assert_eq!(i.next_deadline(), Some(t + Duration::from_secs(1)));
    assert!(i.handle(Event::PriorityChanged(80), t).is_empty());
    let _ = i.handle(Event::PriorityChanged(255), t);
    assert_eq!(i.priority(), 254, "a non-owner never claims 255");
    let _ = i.handle(Event::PriorityChanged(0), t);
    assert_eq!(i.priority(), 1, "0 is reserved for resigning");
    let mut o = started(cfg(255), ms(0));
    assert!(o.handle(Event::PriorityChanged(10), ms(1)).is_empty());
    assert_eq!(o.priority(), 255);
}

#[test]
fn lowered_master_is_preempted_by_backup() {
    // Tracking lowers the Master below the Backup: the Backup (preempt) discards its adverts
    // and takes over when its Master_Down_Timer fires.
    let mut b = started(cfg(150), ms(0));
    let _ = b.handle(rx(HIGHER, 200, 100), ms(100));
    let _ = b.handle(rx(HIGHER, 100, 100), ms(1100));
    let _ = b.handle(rx(HIGHER, 100, 100), ms(2100));
    // Last accepted advert at 100 ms: 3 s + (106 * 100 / 256) cs = 3.4140625 s after.
    let deadline = ms(100) + Duration::from_nanos(3_414_062_500);
    assert_eq!(b.next_deadline(), Some(deadline));
    let a = b.poll_timers(deadline);
    assert_eq!(notify(&a).map(|t| t.to), Some(State::Master));
}

#[test]
fn preempt_delay_holds_preemption_after_startup() {
    // keepalived's preempt_delay: for this long after Startup a lower Master is accepted.
    let mut c = cfg(200);
    c.preempt_delay = Duration::from_secs(10);
    let mut i = started(c, ms(0));
    for k in 0..10u64 {
        assert!(i.handle(rx(LOWER, 100, 100), ms(1000 * k)).is_empty());
    }
    // At 9 s the last accepted advert; from 10 s on the adverts are discarded.
    let _ = i.handle(rx(LOWER, 100, 100), ms(10_000));
    let _ = i.handle(rx(LOWER, 100, 100), ms(11_000));
    // 3 s + 56 * 100 / 256 cs = 3.21875 s after the advert accepted at 9 s... but the one at
    // exactly 10 s is already discarded (now >= startup + delay).
    let deadline = ms(9000) + Duration::from_micros(3_218_750);
    assert_eq!(i.next_deadline(), Some(deadline));
    let a = i.poll_timers(deadline);
    assert_eq!(notify(&a).map(|t| t.to), Some(State::Master));
}

#[test]
fn own_looped_advert_is_ignored() {
    let (mut i, t) = master(cfg(100));
    assert!(i.handle(rx(ME, 100, 100), t).is_empty());
    let mut b = started(cfg(100), ms(0));
    let d = b.next_deadline();
    assert!(b.handle(rx(ME, 200, 100), ms(10)).is_empty());
    assert_eq!(b.next_deadline(), d);
}

#[test]
fn every_transition_is_notified_with_a_readable_reason() {
    let mut i = Instance::new(cfg(100));
    let mut seen = Vec::new();
    let script: Vec<(Event, Timestamp)> = vec![
        (Event::Startup, ms(0)),
        (Event::TimerFired, ms(4000)),
        (rx(HIGHER, 200, 100), ms(4100)),
        (Event::TrackFault, ms(4200)),
        (Event::TrackOk, ms(4300)),
        (Event::Shutdown, ms(4400)),
    ];
    for (e, t) in script {
        for a in i.handle(e, t) {
            if let Action::Notify(tr) = a {
                seen.push(format!("{} -> {}: {}", tr.from, tr.to, tr.reason));
            }
        }
    }
    assert_eq!(
        seen,
        vec![
            "INIT -> BACKUP: startup",
            "BACKUP -> MASTER: master down timer fired: no master heard",
            "MASTER -> BACKUP: heard higher priority 200 from 10.0.0.9",
            "BACKUP -> FAULT: tracked check failed",
            "FAULT -> BACKUP: fault cleared",
            "BACKUP -> INIT: shutdown",
        ]
    );
}
