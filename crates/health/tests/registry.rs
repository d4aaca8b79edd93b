//! The registry against real loopback servers, on tokio's paused clock: sharing counted at the
//! server, rise/fall timing, the pessimistic and adopted starts, the probe's end with its last
//! subscriber, and the jitter of first runs. Loopback connects and refusals complete inside the
//! syscalls, so the paused clock never jumps over a probe's answer.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use health::{CheckKind, CheckSpec, Registry, Start, State};
use tokio::net::TcpListener;
use tokio::time::{advance, sleep, Instant};

const SEC: Duration = Duration::from_secs(1);

fn tcp(interval: Duration, rise: u32, fall: u32) -> CheckSpec {
    let mut s = CheckSpec::new(CheckKind::Tcp);
    s.interval = interval;
    s.timeout = Duration::from_millis(500);
    s.rise = rise;
    s.fall = fall;
    s
}

/// `n` backends, each checked by TCP every second and all served by the acceptor at `server`
/// (distinct target ports with the check's port set to the acceptor's: distinct loopback
/// addresses would need root; distinct keys are what matters).
fn many_backends(
    reg: &Registry,
    server: SocketAddr,
    n: u16,
) -> Vec<tokio::sync::watch::Receiver<health::Health>> {
    (0..n)
        .map(|port| {
            let target = SocketAddr::new(server.ip(), server.port().wrapping_add(port + 1));
            let mut s = tcp(SEC, 1, 1);
            s.connect.port = Some(server.port());
            reg.subscribe(target, s)
        })
        .collect()
}

/// Subscribes to `spec` (its timeout set to 300 ms) of a backend that never answers and checks
/// the first result: Down, `timed out after 300ms`, with the timeout as its latency, reported
/// 300 ms after the start. Returns the receiver and the start.
async fn first_run_times_out(
    reg: &Registry,
    addr: SocketAddr,
    mut spec: CheckSpec,
) -> (tokio::sync::watch::Receiver<health::Health>, Instant) {
    spec.timeout = Duration::from_millis(300);
    let mut rx = reg.subscribe(addr, spec);
    let t0 = Instant::now();
    rx.changed().await.unwrap();
    let h = rx.borrow_and_update().clone();
    assert_eq!(h.state, State::Down);
    let last = h.last.unwrap();
    assert!(!last.ok);
    assert_eq!(last.reason, "timed out after 300ms");
    assert_eq!(last.latency, Duration::from_millis(300));
    assert_eq!(Instant::now() - t0, Duration::from_millis(300));
    (rx, t0)
}

/// Lets spawned tasks (probes, the acceptor) run without moving the clock.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn two_subscribers_one_probe_per_interval_at_the_server() {
    let (addr, seen) = common::tcp_acceptor().await;
    let reg = Registry::new().unwrap();
    let a = reg.subscribe(addr, tcp(SEC, 1, 1));
    let b = reg.subscribe(addr, tcp(SEC, 1, 1));
    assert_eq!(reg.stats().probes, 1, "same (backend, check): one probe");
    // The first run is within the first interval (its jitter; the registry's first probe has
    // offset 0), then one per interval: 10 runs in [0, 10 s).
    sleep(SEC * 10 - Duration::from_millis(1)).await;
    settle().await;
    assert_eq!(
        seen.hits(),
        10,
        "one connect per interval however many subscribers"
    );
    assert_eq!(reg.stats().runs, 10);
    assert_eq!(a.borrow().state, State::Up);
    assert_eq!(b.borrow().state, State::Up);
    assert_eq!(
        a.borrow().last.as_ref().map(|o| o.reason.as_str()),
        Some("connected")
    );

    // Another timing is another check: a second probe.
    let c = reg.subscribe(addr, tcp(SEC * 2, 1, 1));
    assert_eq!(reg.stats().probes, 2);
    drop(c);
    // One subscriber left of the first: it keeps running; none: it ends.
    drop(a);
    sleep(SEC * 3).await;
    settle().await;
    assert_eq!(reg.stats().probes, 1);
    assert_eq!(seen.hits(), 13);
    drop(b);
    sleep(SEC).await;
    settle().await;
    assert_eq!(
        reg.stats().probes,
        0,
        "the last receiver gone: the probe ends"
    );
    let hits = seen.hits();
    sleep(SEC * 5).await;
    settle().await;
    assert_eq!(seen.hits(), hits, "no run after the end");
}

#[tokio::test(start_paused = true)]
async fn rise_and_fall_on_the_paused_clock() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = l.local_addr().unwrap();
    // Accept and close, until dropped.
    let server = tokio::spawn(async move {
        while let Ok((c, _)) = l.accept().await {
            drop(c);
        }
    });
    let reg = Registry::new().unwrap();
    let t0 = Instant::now();
    let mut rx = reg.subscribe(addr, tcp(SEC, 3, 2));
    assert_eq!(
        rx.borrow().state,
        State::Unknown,
        "pessimistic until a result"
    );

    // First success: Down (rise 3 not reached); Up after the third.
    rx.changed().await.unwrap();
    assert_eq!(rx.borrow_and_update().state, State::Down);
    let first = Instant::now();
    assert!(first - t0 < SEC, "first run within the first interval");
    rx.changed().await.unwrap();
    let h = rx.borrow_and_update().clone();
    assert_eq!(h.state, State::Up);
    let up_at = Instant::now();
    assert_eq!(
        up_at - first,
        SEC * 2,
        "two more successes, one interval apart"
    );
    assert_eq!(h.since, up_at.into_std());

    // The server goes away: Down after fall (2) failures, 2 intervals after the last success.
    server.abort();
    let _ = server.await;
    rx.changed().await.unwrap();
    let h = rx.borrow_and_update().clone();
    let down_at = Instant::now();
    assert_eq!(h.state, State::Down);
    let reason = h
        .last
        .as_ref()
        .map(|o| o.reason.clone())
        .unwrap_or_default();
    assert!(reason.contains("refused"), "{reason}");
    // Its slot after going Up: +1 s fails (streak 1), +2 s fails (streak 2: Down). The abort
    // happened right after the Up run, so the next slot is the first failure.
    assert_eq!(down_at - up_at, SEC * 2);

    // Back: Up after 3 successes.
    let l = TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move {
        while let Ok((c, _)) = l.accept().await {
            drop(c);
        }
    });
    rx.changed().await.unwrap();
    assert_eq!(rx.borrow_and_update().state, State::Up);
    assert_eq!(Instant::now() - down_at, SEC * 3);
}

#[tokio::test(start_paused = true)]
async fn adopted_start_counts_as_up_until_fall_failures() {
    let closed = common::closed_port().await;
    let reg = Registry::new().unwrap();
    let mut rx = reg.subscribe_with(closed, tcp(SEC, 2, 3), Start::Adopted);
    assert_eq!(
        rx.borrow().state,
        State::Up,
        "adopted: up before any result"
    );
    let t0 = Instant::now();
    rx.changed().await.unwrap();
    assert_eq!(rx.borrow().state, State::Down);
    let runs = reg.stats().runs;
    assert_eq!(runs, 3, "down after fall = 3 failures");
    assert!(Instant::now() - t0 >= SEC * 2 && Instant::now() - t0 < SEC * 3);

    // A later subscriber shares the probe and its state; its start is ignored.
    let late = reg.subscribe_with(closed, tcp(SEC, 2, 3), Start::Adopted);
    assert_eq!(late.borrow().state, State::Down);
}

#[tokio::test(start_paused = true)]
async fn pessimistic_start_is_down_after_a_failure() {
    let closed = common::closed_port().await;
    let reg = Registry::new().unwrap();
    let mut rx = reg.subscribe(closed, tcp(SEC, 1, 5));
    assert_eq!(rx.borrow().state, State::Unknown);
    rx.changed().await.unwrap();
    assert_eq!(
        rx.borrow().state,
        State::Down,
        "one failure from Unknown: Down at once"
    );
    assert_eq!(reg.stats().runs, 1);
}

#[tokio::test(start_paused = true)]
async fn first_runs_spread_over_the_interval() {
    let (addr, _seen) = common::tcp_acceptor().await;
    let reg = Registry::new().unwrap();
    let rxs = many_backends(&reg, addr, 100);
    let t0 = Instant::now().into_std();
    for _ in 0..999 {
        advance(Duration::from_millis(1)).await;
        settle().await;
    }
    let ms: Vec<u128> = rxs
        .iter()
        .filter_map(|rx| rx.borrow().last.as_ref().map(|o| (o.at - t0).as_millis()))
        .collect();
    assert!(
        ms.len() >= 99,
        "{} of 100 probes ran in the first 999 ms",
        ms.len()
    );
    let mut distinct = ms.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(
        distinct.len() >= ms.len() - 2,
        "first runs in {} distinct milliseconds of {}",
        distinct.len(),
        ms.len()
    );
}

/// A run that hangs ends at the check's timeout with a `timed out` failure whose latency is the
/// timeout, and the probe keeps its slots: the next run starts one interval after the hung one,
/// not one interval after its timeout (the probe's one timer serves both the timeout and the
/// schedule).
#[tokio::test(start_paused = true)]
async fn a_hung_run_times_out_and_keeps_the_schedule() {
    let (addr, _listener) = common::hung_tcp().await;
    let reg = Registry::new().unwrap();
    let mut spec = CheckSpec::new(CheckKind::Http(health::HttpCheck::get("/")));
    spec.interval = SEC;
    let (rx, t0) = first_run_times_out(&reg, addr, spec).await;
    // Runs at 0 s, 1 s, 2 s (each timing out 300 ms later): 3 runs by 2.5 s, never a 4th.
    sleep(Duration::from_millis(2200)).await;
    settle().await;
    assert_eq!(reg.stats().runs, 3);
    let last = rx.borrow().last.clone().unwrap();
    assert_eq!(
        last.at,
        (t0 + Duration::from_millis(2300)).into_std(),
        "the third run timed out at 2.3 s"
    );
    sleep(Duration::from_millis(600)).await;
    settle().await;
    assert_eq!(reg.stats().runs, 4, "the fourth at 3 s");
}

/// The same through the TCP engine: a connect that never completes (its SYN dropped) fails at
/// the timeout with the timeout as its latency, and the probe keeps its slots.
#[tokio::test(start_paused = true)]
async fn a_tcp_connect_that_never_completes_times_out_and_keeps_the_schedule() {
    let (addr, _listener, _queued) = common::syn_drop_tcp();
    let reg = Registry::new().unwrap();
    let (rx, t0) = first_run_times_out(&reg, addr, tcp(SEC, 1, 1)).await;
    sleep(Duration::from_millis(2200)).await;
    settle().await;
    assert_eq!(reg.stats().runs, 3, "runs at 0, 1 and 2 s, never a burst");
    let last = rx.borrow().last.clone().unwrap();
    assert_eq!(last.at, (t0 + Duration::from_millis(2300)).into_std());
}

/// 600 TCP probes due in the same wake-up (the clock jumps over all their first slots at once):
/// the engine starts all 600 connects and reads their answers in batches of its event buffer
/// (256), and every one is Up after one run.
#[tokio::test(start_paused = true)]
async fn six_hundred_probes_due_at_once_all_answered() {
    let (addr, seen) = common::tcp_acceptor().await;
    let reg = Registry::new().unwrap();
    let rxs = many_backends(&reg, addr, 600);
    assert_eq!(reg.stats().probes, 600);
    advance(SEC - Duration::from_millis(1)).await;
    settle().await;
    assert_eq!(reg.stats().runs, 600);
    let up = rxs
        .iter()
        .filter(|rx| rx.borrow().state == State::Up)
        .count();
    assert_eq!(up, 600, "every connect answered");
    settle().await;
    assert_eq!(seen.hits(), 600, "counted at the server");
}
