//! Kernel tests (run inside the lab VM): snapshots. A snapshot equals what `ipvsadm -Sn` shows;
//! a snapshot taken while another thread changes the table detects the torn read (never returns
//! a table with a duplicate or a missing stable service) and succeeds once the table is calm.
//! Churn in another namespace tears this one's dumps too (dump positions count every namespace's
//! services): those reads must be refused, and at 10,000 services (the size the chunk sizes were
//! tuned at) every read that does return, under paced churn, must be exact.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use common::*;
use ipvs::*;

const STABLE: u16 = 500;

/// Dump positions count the services of every namespace (`ip_vs_genl_dump_services`:
/// `if (++idx <= start || !net_eq(svc->net, net)) continue;`): the churn of one test tears the
/// other's dumps although they use different namespaces. So these tests run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn stable_key(i: u16) -> ServiceKey {
    tcp("10.1.0.1", 1000 + i)
}

fn churn_key(i: u32) -> ServiceKey {
    tcp("10.7.0.1", 1 + (i % 60000) as u16)
}

async fn fill(c: &mut Conn) {
    let mut ops = Vec::new();
    for i in 0..STABLE {
        ops.push(Op::AddService(svc(stable_key(i), Scheduler::Rr)));
        ops.push(Op::AddDest(
            stable_key(i),
            dest("10.2.0.1", 80, Forwarding::DirectRoute, 1),
        ));
    }
    let r = c.apply(&ops).await.unwrap();
    assert!(r.all_ok(), "{:?}", r.failures().next());
}

/// Sets the flag when dropped, so a failing test still stops its modifier thread.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Waits (bounded: a test never hangs) until the modifier has made a few changes.
async fn wait_for_changes(changes: &AtomicU32, dead: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while changes.load(Ordering::Relaxed) < 10 {
        assert!(!dead(), "the modifier thread died");
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "the modifier made no change in 60 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// The stable services are all there, once each, each with its real server.
fn check_table(t: &Table) {
    let mut seen = HashSet::new();
    for e in &t.services {
        assert!(seen.insert(e.service.key), "duplicate {}", e.service.key);
    }
    for i in 0..STABLE {
        let e = t
            .services
            .iter()
            .find(|e| e.service.key == stable_key(i))
            .unwrap_or_else(|| panic!("stable service {} missing", stable_key(i)));
        assert_eq!(e.destinations.len(), 1);
    }
}

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn snapshot_equals_ipvsadm() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    with_conn(|mut c| async move {
        fill(&mut c).await;
        // What the verifying pass costs: one more services dump (printed for docs/ipvs.md).
        let t0 = std::time::Instant::now();
        let plain = c.services().await.unwrap();
        let one_dump = t0.elapsed();
        let t0 = std::time::Instant::now();
        let (t, report) = c.snapshot_report(SNAPSHOT_TRIES).await.unwrap();
        let whole = t0.elapsed();
        eprintln!(
            "{} services: services dump {one_dump:?}, checked snapshot {whole:?} ({} dumps)",
            plain.len(),
            report.dumps
        );
        assert_eq!(report.tries, 1, "{report:?}");
        assert!(report.torn.is_empty());
        check_table(&t);
        assert_eq!(t.services.len(), STABLE as usize);
        // The same services as ipvsadm's own dump (ipvsadm sorts them; we keep the kernel's order).
        let s = save();
        let mut theirs: Vec<String> = s.iter().filter(|l| l.starts_with("-A")).cloned().collect();
        let mut ours: Vec<String> = t
            .services
            .iter()
            .map(|e| match e.service.key {
                ServiceKey::Inet { addr, port, .. } => format!("-A -t {addr}:{port} -s rr"),
                ServiceKey::Fwmark { .. } => panic!("no fwmark here"),
            })
            .collect();
        theirs.sort();
        ours.sort();
        assert_eq!(ours, theirs);
        assert_eq!(s.len(), 2 * STABLE as usize);
        // One services dump (it spans several datagrams, so two verifying passes), one per
        // service.
        assert_eq!(report.dumps, 1 + 2 + STABLE as u32, "{report:?}");
    });
}

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn snapshot_during_changes_detects_torn_reads() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    with_conn(|mut c| async move {
        fill(&mut c).await;
        let stop = Arc::new(AtomicBool::new(false));
        let changes = Arc::new(AtomicU32::new(0));
        let _stop = StopOnDrop(stop.clone());
        // The modifier runs on a thread spawned from this one: same network namespace.
        let modifier = {
            let (stop, changes) = (stop.clone(), changes.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let mut m = Conn::connect().await.unwrap();
                    let mut i = 0u32;
                    while !stop.load(Ordering::Relaxed) {
                        let mut ops = vec![Op::AddService(svc(churn_key(i), Scheduler::Rr))];
                        if i > 0 {
                            ops.push(Op::DelService(churn_key(i - 1)));
                        }
                        let r = m.apply(&ops).await.unwrap();
                        assert!(r.all_ok(), "{r:?}");
                        i += 1;
                        changes.store(i, Ordering::Relaxed);
                    }
                });
            })
        };
        wait_for_changes(&changes, || modifier.is_finished()).await;
        // How often a plain dump is torn while the table changes (for the record).
        let mut naive_torn = 0;
        for _ in 0..20 {
            let s = c.services().await.unwrap();
            let keys: HashSet<_> = s.iter().map(|x| x.key).collect();
            let stable = (0..STABLE)
                .filter(|i| keys.contains(&stable_key(*i)))
                .count();
            if keys.len() != s.len() || stable != STABLE as usize {
                naive_torn += 1;
            }
        }
        let mut detected = 0;
        let mut ok = 0;
        for _ in 0..3 {
            match c.snapshot_report(3).await {
                Ok((t, report)) => {
                    check_table(&t);
                    detected += report.torn.len();
                    ok += 1;
                }
                Err(Error::Inconsistent { tries }) => {
                    assert_eq!(tries, 3);
                    detected += 3;
                }
                Err(e) => panic!("{e}"),
            }
        }
        stop.store(true, Ordering::Relaxed);
        modifier.join().unwrap();
        eprintln!(
            "changes {}, naive dumps torn {naive_torn}/20, snapshots ok {ok}/3, torn reads detected {detected}",
            changes.load(Ordering::Relaxed)
        );
        assert!(detected > 0, "the changes were never detected");
        // Calm again: one read is enough.
        let (t, report) = c.snapshot_report(SNAPSHOT_TRIES).await.unwrap();
        assert_eq!(report.tries, 1, "{report:?}");
        check_table(&t);
        assert_eq!(t.services.len(), STABLE as usize + 1);
    });
}

/// Churns one service (add the next, delete the previous) in a namespace of its own until `stop`,
/// counting its changes in `changes`, pausing `pause_ms` milliseconds after each change (0: as
/// fast as it can; the test may change the pace while it runs).
fn churn_elsewhere(
    stop: Arc<AtomicBool>,
    changes: Arc<AtomicU32>,
    pause_ms: Arc<AtomicU32>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        with_conn(move |mut m| async move {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let mut ops = vec![Op::AddService(svc(churn_key(i), Scheduler::Rr))];
                if i > 0 {
                    ops.push(Op::DelService(churn_key(i - 1)));
                }
                assert!(m.apply(&ops).await.unwrap().all_ok());
                i += 1;
                changes.store(i, Ordering::Relaxed);
                let pause = pause_ms.load(Ordering::Relaxed);
                if pause > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(pause.into())).await;
                }
            }
            // Leave nothing behind: the kernel tears a deleted namespace's services down later,
            // on a workqueue, and that removal would move the shared hash table under a "calm"
            // read that follows the join (seen: a calm snapshot needing 2 tries in CI).
            if i > 0 {
                assert!(m
                    .apply(&[Op::DelService(churn_key(i - 1))])
                    .await
                    .unwrap()
                    .all_ok());
            }
        })
    })
}

/// What single reads (one try each) of a table that does not change, taken while another
/// namespace churns, came to.
#[derive(Debug, Default)]
struct Reads {
    /// Reads that returned a table (each asserted exact).
    ok: u32,
    /// Reads that saw the table torn and said so.
    detected: u32,
    /// Plain services dumps that were torn (for the record).
    naive_torn: u32,
}

/// Reads the table (of `len` services) with one try per read until `want_detected` reads were
/// torn, `max_reads` were made or `budget` passed; `exact` asserts each table returned.
async fn read_during_churn(
    c: &mut Conn,
    len: usize,
    want_detected: u32,
    max_reads: u32,
    budget: std::time::Duration,
    exact: impl Fn(&Table),
) -> Reads {
    let mut r = Reads::default();
    let start = std::time::Instant::now();
    for _ in 0..5 {
        let s = c.services().await.unwrap();
        let keys: HashSet<_> = s.iter().map(|x| x.key).collect();
        if keys.len() != s.len() || s.len() != len {
            r.naive_torn += 1;
        }
    }
    while r.detected < want_detected && r.ok + r.detected < max_reads && start.elapsed() < budget {
        match c.snapshot_report(1).await {
            Ok((t, report)) => {
                assert!(report.torn.is_empty(), "{report:?}");
                exact(&t);
                r.ok += 1;
            }
            Err(Error::Inconsistent { tries }) => {
                assert_eq!(tries, 1);
                r.detected += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    r
}

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn churn_in_another_namespace_is_detected_here() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stop = Arc::new(AtomicBool::new(false));
    let changes = Arc::new(AtomicU32::new(0));
    let other = churn_elsewhere(stop.clone(), changes.clone(), Arc::default());
    let reads = with_conn(move |mut c| async move {
        let _stop = StopOnDrop(stop);
        fill(&mut c).await;
        wait_for_changes(&changes, || false).await;
        read_during_churn(
            &mut c,
            STABLE as usize,
            3,
            200,
            std::time::Duration::from_secs(60),
            |t| {
                check_table(t);
                assert_eq!(t.services.len(), STABLE as usize);
            },
        )
        .await
    });
    other.join().unwrap();
    eprintln!("other namespace churning: {reads:?}");
    // Nothing changed in this namespace, yet dump positions count every namespace's services
    // (see SERIAL): its multi-datagram dumps are torn, and the snapshot must say so, never return
    // them. Every table it did return was exact (asserted in read_during_churn).
    assert!(
        reads.detected > 0,
        "churn in another namespace never tore a read here: {reads:?}"
    );
}

/// The size the snapshot's chunk sizes were tuned at (docs/ipvs.md).
const LARGE: u16 = 10_000;

#[test]
#[ignore = "needs the IPVS kernel: run inside tests/lab/run (tests/check does)"]
fn snapshot_of_10000_services_is_exact_or_refused_under_churn() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let key = |i: u16| tcp(&format!("10.3.{}.{}", i / 250, i % 250 + 1), 80);
    let exact = move |t: &Table| {
        assert_eq!(t.services.len(), LARGE as usize);
        let mut seen = HashSet::new();
        for e in &t.services {
            assert!(seen.insert(e.service.key), "duplicate {}", e.service.key);
            assert_eq!(e.destinations.len(), 1, "{}", e.service.key);
        }
        for i in 0..LARGE {
            assert!(seen.contains(&key(i)), "service {} missing", key(i));
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let changes = Arc::new(AtomicU32::new(0));
    let pause_ms = Arc::new(AtomicU32::new(0));
    let other = churn_elsewhere(stop.clone(), changes.clone(), pause_ms.clone());
    let t0 = std::time::Instant::now();
    let counted = changes.clone();
    let (fast, paced, fill_time, calm_time) = with_conn(move |mut c| async move {
        let changes = counted;
        let _stop = StopOnDrop(stop.clone());
        let ops: Vec<Op> = (0..LARGE)
            .flat_map(|i| {
                [
                    Op::AddService(svc(key(i), Scheduler::Rr)),
                    Op::AddDest(key(i), dest("10.4.0.1", 80, Forwarding::DirectRoute, 1)),
                ]
            })
            .collect();
        let r = c.apply(&ops).await.unwrap();
        assert!(r.all_ok(), "{:?}", r.failures().next());
        let fill_time = t0.elapsed();
        wait_for_changes(&changes, || other.is_finished()).await;
        let budget = std::time::Duration::from_secs(60);
        // As fast as it can: nearly every read is torn, and must be refused.
        let fast = read_during_churn(&mut c, LARGE as usize, 2, 4, budget, exact).await;
        // A change every 100 ms: some reads fall between changes and return; each is exact.
        pause_ms.store(100, Ordering::Relaxed);
        let mut paced = Reads::default();
        while paced.ok == 0 && paced.ok + paced.detected < 8 {
            let r = read_during_churn(&mut c, LARGE as usize, 1, 1, budget, exact).await;
            paced.ok += r.ok;
            paced.detected += r.detected;
        }
        stop.store(true, Ordering::Relaxed);
        other.join().unwrap();
        // Calm again: the first read is consistent and exact.
        let t1 = std::time::Instant::now();
        let (t, report) = c.snapshot_report(SNAPSHOT_TRIES).await.unwrap();
        assert_eq!(report.tries, 1, "{report:?}");
        exact(&t);
        (fast, paced, fill_time, t1.elapsed())
    });
    eprintln!(
        "{LARGE} services: filled in {fill_time:?}, {} changes elsewhere, as fast as it can {fast:?}, \
         every 100 ms {paced:?}, calm snapshot {calm_time:?}, whole test {:?}",
        changes.load(Ordering::Relaxed),
        t0.elapsed()
    );
    assert!(
        fast.detected > 0,
        "churn never tore a read of {LARGE} services: {fast:?}"
    );
    assert!(
        paced.ok > 0,
        "no read of {LARGE} services returned while the churn was paced: {paced:?}"
    );
}
