//! The periodic task of one check: run the probe every `interval`, bounded by `timeout`, filter
//! the results through [`RiseFall`], and publish the [`CheckState`] on a watch channel that the
//! runner reads.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::probe::{Outcome, Probe};
use super::risefall::{Filtered, RiseFall};
use crate::config::CheckSpec;

/// The published state of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckState {
    /// No result yet.
    Unknown,
    /// Up (rise reached).
    Up,
    /// Down (fall reached), with the last failure's reason.
    Down {
        /// Why the last probe failed.
        reason: String,
    },
    /// A file probe's current value.
    Value(i64),
    /// A file probe asking for FAULT, with why.
    Fault {
        /// Why.
        reason: String,
    },
}

/// Starts the check's task on the current tokio runtime. The first probe runs at once. The task
/// ends when every receiver is dropped (or when the handle is aborted).
pub fn spawn_check(spec: CheckSpec) -> (watch::Receiver<CheckState>, JoinHandle<()>) {
    let (tx, rx) = watch::channel(CheckState::Unknown);
    let handle = tokio::spawn(async move {
        let mut filter = RiseFall::new(spec.rise, spec.fall);
        let mut probe = Probe::new(&spec.probe, spec.timeout);
        let mut ticker = tokio::time::interval(spec.interval.max(Duration::from_millis(10)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = tx.closed() => return,
            }
            let outcome = probe.run().await;
            let next = apply(&mut filter, &outcome, &tx.borrow());
            if let Some(next) = next {
                tracing::info!(check = %spec.name, state = ?next, "check changed");
                if tx.send(next).is_err() {
                    return;
                }
            }
        }
    });
    (rx, handle)
}

/// The new state after `outcome`, or `None` when it does not change what is published.
fn apply(filter: &mut RiseFall, outcome: &Outcome, current: &CheckState) -> Option<CheckState> {
    let next = match outcome {
        Outcome::Value(v) => CheckState::Value(*v),
        Outcome::Fault(reason) => CheckState::Fault {
            reason: reason.clone(),
        },
        Outcome::Up | Outcome::Down(_) => {
            let changed = filter.observe(outcome.is_ok());
            match (changed.unwrap_or(filter.state()), outcome) {
                (Filtered::Up, _) => CheckState::Up,
                (Filtered::Down, Outcome::Down(reason)) => CheckState::Down {
                    reason: reason.clone(),
                },
                (Filtered::Down, _) => match current {
                    CheckState::Down { .. } => current.clone(),
                    _ => CheckState::Down {
                        reason: "failing".into(),
                    },
                },
                (Filtered::Unknown, _) => CheckState::Unknown,
            }
        }
    };
    // A new failure reason while already down is not a change worth publishing.
    let same = match (&next, current) {
        (CheckState::Down { .. }, CheckState::Down { .. }) => true,
        (a, b) => a == b,
    };
    (!same).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::ProbeSpec;
    use std::time::Instant;

    /// Waits for the next published state: a task that never publishes fails the test after
    /// 5 s instead of hanging it.
    async fn next_state(rx: &mut watch::Receiver<CheckState>) -> CheckState {
        next_state_within(rx, Duration::from_secs(5)).await
    }

    async fn next_state_within(
        rx: &mut watch::Receiver<CheckState>,
        limit: Duration,
    ) -> CheckState {
        tokio::time::timeout(limit, rx.changed())
            .await
            .unwrap_or_else(|_| panic!("no state published within {limit:?}"))
            .expect("the check task ended");
        let state = rx.borrow().clone();
        state
    }

    #[test]
    fn apply_filters_and_publishes_changes_only() {
        let mut f = RiseFall::new(2, 2);
        let mut cur = CheckState::Unknown;
        let mut step = |o: Outcome, cur: &mut CheckState| {
            let n = apply(&mut f, &o, cur);
            if let Some(n) = &n {
                *cur = n.clone();
            }
            n
        };
        assert_eq!(step(Outcome::Up, &mut cur), Some(CheckState::Up));
        assert_eq!(step(Outcome::Down("x".into()), &mut cur), None);
        assert_eq!(
            step(Outcome::Down("y".into()), &mut cur),
            Some(CheckState::Down { reason: "y".into() })
        );
        assert_eq!(step(Outcome::Down("z".into()), &mut cur), None);
        assert_eq!(step(Outcome::Up, &mut cur), None);
        assert_eq!(step(Outcome::Up, &mut cur), Some(CheckState::Up));
        assert_eq!(
            step(Outcome::Value(5), &mut cur),
            Some(CheckState::Value(5))
        );
        assert_eq!(step(Outcome::Value(5), &mut cur), None);
        assert!(matches!(
            step(Outcome::Fault("f".into()), &mut cur),
            Some(CheckState::Fault { .. })
        ));
    }

    #[test]
    fn task_reports_a_port_that_stops_accepting() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            let (mut rx, h) = spawn_check(CheckSpec {
                name: "port".into(),
                probe: ProbeSpec::Tcp { addr },
                interval: Duration::from_millis(20),
                timeout: Duration::from_millis(200),
                rise: 2,
                fall: 3,
            });
            assert_eq!(next_state(&mut rx).await, CheckState::Up);
            drop(l);
            let t0 = Instant::now();
            let down = next_state(&mut rx).await;
            assert!(matches!(down, CheckState::Down { .. }), "{down:?}");
            // fall = 3 at 20 ms: about 60 ms, never immediately on the first failure.
            assert!(
                t0.elapsed() >= Duration::from_millis(35),
                "{:?}",
                t0.elapsed()
            );
            h.abort();
        });
    }

    #[test]
    fn a_check_that_never_publishes_fails_the_wait_instead_of_hanging() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (_tx, mut rx) = watch::channel(CheckState::Unknown);
        let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(next_state_within(&mut rx, Duration::from_millis(20)))
        }));
        assert!(waited.is_err(), "next_state returned without a change");
    }
}
