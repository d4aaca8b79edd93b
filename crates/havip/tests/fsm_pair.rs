//! Two (or three) state machines on a simulated LAN with injected time: election by priority and
//! by address, crash and graceful failover times, preempt and nopreempt, and a split brain that
//! heals. Adverts are delivered instantly; the clock jumps from deadline to deadline.

mod fsm_common;

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Duration;

use fsm_common::*;
use havip::fsm::{Action, Config, Event, Instance, State};
use havip::packet::{Advert, Auth};
use havip::time::Timestamp;

struct Node {
    inst: Instance,
    alive: bool,
    /// Every action with the time it was emitted.
    log: Vec<(Timestamp, Action)>,
}

struct Lan {
    nodes: Vec<Node>,
    /// `links[i][j]`: packets from i reach j.
    links: Vec<Vec<bool>>,
    now: Timestamp,
}

impl Lan {
    fn new(configs: Vec<Config>) -> Lan {
        let n = configs.len();
        Lan {
            nodes: configs
                .into_iter()
                .map(|c| Node {
                    inst: Instance::new(c),
                    alive: true,
                    log: Vec::new(),
                })
                .collect(),
            links: vec![vec![true; n]; n],
            now: Timestamp::ZERO,
        }
    }

    fn addr(&self, i: usize) -> IpAddr {
        self.nodes[i].inst.config().primary_address
    }

    fn event(&mut self, i: usize, e: Event) {
        let mut queue = VecDeque::new();
        self.apply(i, e, &mut queue);
        let mut steps = 0;
        while let Some((from, advert)) = queue.pop_front() {
            steps += 1;
            assert!(steps < 100, "advert storm at {}", self.now);
            for j in 0..self.nodes.len() {
                if j != from && self.nodes[j].alive && self.links[from][j] {
                    let ev = Event::AdvertReceived {
                        from: self.addr(from),
                        advert: advert.clone(),
                    };
                    self.apply(j, ev, &mut queue);
                }
            }
        }
    }

    fn apply(&mut self, i: usize, e: Event, queue: &mut VecDeque<(usize, Advert)>) {
        let now = self.now;
        let actions = self.nodes[i].inst.handle(e, now);
        let c = self.nodes[i].inst.config().clone();
        for a in actions {
            if let Action::SendAdvert { priority } = a {
                queue.push_back((
                    i,
                    Advert {
                        version: c.version,
                        vrid: c.vrid,
                        priority,
                        max_advert_int: c.advert_interval,
                        addresses: vec![ip("10.0.0.100")],
                        auth: Auth::None,
                    },
                ));
            }
            self.nodes[i].log.push((now, a));
        }
    }

    /// Runs every timer up to and including `end`.
    fn run_until(&mut self, end: Timestamp) {
        loop {
            let next = self
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.alive)
                .filter_map(|(i, n)| n.inst.next_deadline().map(|d| (d, i)))
                .min();
            match next {
                Some((d, i)) if d <= end => {
                    self.now = d;
                    self.event(i, Event::TimerFired);
                }
                _ => break,
            }
        }
        self.now = end;
    }

    fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.event(i, Event::Startup);
        }
    }

    fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].alive && self.nodes[*i].inst.state() == State::Master)
            .collect()
    }

    /// When node `i` last became Master.
    fn became_master_at(&self, i: usize) -> Option<Timestamp> {
        self.nodes[i].log.iter().rev().find_map(|(t, a)| match a {
            Action::Notify(tr) if tr.to == State::Master => Some(*t),
            _ => None,
        })
    }

    fn crash(&mut self, i: usize) {
        self.nodes[i].alive = false;
    }

    fn partition(&mut self, cut: bool) {
        let n = self.nodes.len();
        for i in 0..n {
            for j in 0..n {
                self.links[i][j] = !cut || i == j;
            }
        }
    }
}

fn node(addr: &str, priority: u8) -> Config {
    let mut c = cfg(priority);
    c.primary_address = ip(addr);
    c
}

#[test]
fn election_by_priority() {
    let mut lan = Lan::new(vec![node("10.0.0.1", 100), node("10.0.0.2", 200)]);
    lan.start_all();
    lan.run_until(ms(60_000));
    assert_eq!(lan.masters(), vec![1]);
    // The higher priority has the shorter skew: Master at 3 s + 56/256 s.
    assert_eq!(lan.became_master_at(1), Some(ns(3_218_750_000)));
    assert_eq!(lan.became_master_at(0), None);
    assert_eq!(lan.nodes[0].inst.master_address(), Some(ip("10.0.0.2")));
}

#[test]
fn election_by_address_on_equal_priority() {
    let mut lan = Lan::new(vec![node("10.0.0.2", 100), node("10.0.0.1", 100)]);
    lan.start_all();
    lan.run_until(ms(60_000));
    assert_eq!(lan.masters(), vec![0], "the higher primary address wins");
}

#[test]
fn crash_failover_within_master_down_interval() {
    let mut lan = Lan::new(vec![node("10.0.0.1", 100), node("10.0.0.2", 200)]);
    lan.start_all();
    lan.run_until(ms(10_000));
    // The Master's adverts went out at 3.21875 s + k s; the last one before the crash at
    // 9.21875 s.
    lan.crash(1);
    lan.run_until(ms(30_000));
    assert_eq!(lan.masters(), vec![0]);
    let took_over = lan.became_master_at(0).expect("took over");
    assert_eq!(took_over, ns(9_218_750_000 + 3_609_375_000));
}

#[test]
fn graceful_stop_hands_over_after_skew_time() {
    let mut lan = Lan::new(vec![node("10.0.0.1", 100), node("10.0.0.2", 200)]);
    lan.start_all();
    lan.run_until(ms(10_000));
    lan.event(1, Event::Shutdown);
    lan.crash(1);
    lan.run_until(ms(30_000));
    assert_eq!(lan.masters(), vec![0]);
    // Skew_Time of priority 100 at 1 s: 609.375 ms after the priority 0 advert.
    assert_eq!(lan.became_master_at(0), Some(ns(10_609_375_000)));
}

#[test]
fn preempt_and_nopreempt_when_a_higher_priority_joins() {
    for preempt in [true, false] {
        let mut high = node("10.0.0.2", 200);
        high.preempt = preempt;
        let mut lan = Lan::new(vec![node("10.0.0.1", 100), high]);
        lan.event(0, Event::Startup);
        lan.run_until(ms(10_000));
        assert_eq!(lan.masters(), vec![0]);
        lan.event(1, Event::Startup);
        lan.run_until(ms(60_000));
        if preempt {
            assert_eq!(lan.masters(), vec![1]);
            // Joined at 10 s; Master_Down_Interval of priority 200 = 3.21875 s.
            assert_eq!(lan.became_master_at(1), Some(ns(13_218_750_000)));
        } else {
            assert_eq!(lan.masters(), vec![0]);
        }
    }
}

#[test]
fn split_brain_heals_within_one_round_trip() {
    let mut lan = Lan::new(vec![node("10.0.0.1", 100), node("10.0.0.2", 200)]);
    lan.start_all();
    lan.run_until(ms(10_000));
    lan.partition(true);
    lan.run_until(ms(20_500));
    assert_eq!(lan.masters(), vec![0, 1], "both Master while partitioned");
    lan.partition(false);
    // The higher one advertises at x.21875 s, the lower one (Master since 12.828125 s) at
    // x.828125 s: healed at 20.5 s, the lower one speaks first.
    let healed = ms(20_500);
    // The next advert of either side settles it, at most one advert interval after the heal.
    lan.run_until(healed + Duration::from_secs(1));
    assert_eq!(lan.masters(), vec![1]);
    let gone = lan.nodes[0]
        .log
        .iter()
        .find_map(|(t, a)| match a {
            Action::Notify(tr) if tr.from == State::Master && *t >= healed => Some(*t),
            _ => None,
        })
        .expect("the lower one stepped down");
    assert!(gone <= healed + Duration::from_secs(1));
    // If the lower side spoke first, the higher one re-announced (advert + gratuitous) at once.
    let lower_spoke_first = lan.nodes[0]
        .log
        .iter()
        .any(|(t, a)| *t >= healed && *t <= gone && matches!(a, Action::SendAdvert { .. }));
    let reannounced = lan.nodes[1]
        .log
        .iter()
        .any(|(t, a)| *t >= healed && matches!(a, Action::SendGratuitous));
    assert_eq!(lower_spoke_first, reannounced);
    assert!(
        reannounced,
        "the lower master spoke first: the higher one re-announced"
    );
}

#[test]
fn three_nodes_one_master_after_each_failure() {
    let mut lan = Lan::new(vec![
        node("10.0.0.1", 100),
        node("10.0.0.2", 150),
        node("10.0.0.3", 200),
    ]);
    lan.start_all();
    lan.run_until(ms(10_000));
    assert_eq!(lan.masters(), vec![2]);
    lan.crash(2);
    lan.run_until(ms(20_000));
    assert_eq!(lan.masters(), vec![1]);
    lan.crash(1);
    lan.run_until(ms(30_000));
    assert_eq!(lan.masters(), vec![0]);
}
