//! The engine against a simulated kernel (`reconcile::simulate`, the checks of
//! `ip_vs_ctl.c`) with injected faults: transient failures (ENOMEM, EBUSY, lost acks, a socket
//! error) are retried with backoff and counted, a refusal that will repeat is counted once and
//! not retried in a loop, the engine never stops on either, and a withdraw leaves someone
//! else's service alone. Real time, the gate's default backoff (200 ms, doubled).

use std::collections::VecDeque;
use std::sync::Mutex;

use ipvs::{
    Errno, KeyedService, Op, OpError, OpKind, Outcome as Out, Service, ServiceEntry, Table,
};

use crate::state::{InstanceIpvs, Ownership};

use super::kernel::KernelFuture;
use super::*;
use crate::reconcile::simulate;

/// One injected fault, for the next batch.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// The batch's first operation is refused with this errno (not applied); the rest apply.
    Errno(i32),
    /// Everything applies, every ack is lost.
    LostAcks,
    /// Nothing is sent: the socket fails.
    Socket,
}

#[derive(Default)]
struct Sim {
    table: Mutex<Table>,
    /// Faults for the next batches, in order.
    faults: Mutex<VecDeque<Fault>>,
    /// A fault for every batch (a refusal that will repeat).
    always: Mutex<Option<Fault>>,
    batches: Mutex<u32>,
    /// `read_services` calls.
    reads: Mutex<u32>,
    /// The sync daemons running (`StartDaemon` / `StopDaemon` apply here, not to the table).
    daemons: Mutex<Vec<ipvs::SyncDaemon>>,
}

impl Sim {
    fn batches(&self) -> u32 {
        *self.batches.lock().unwrap()
    }

    fn table(&self) -> Table {
        self.table.lock().unwrap().clone()
    }
}

fn refused(op: &Op, errno: i32) -> Out {
    Out::Failed(OpError {
        op: op.to_string(),
        kind: OpKind::Service,
        errno: Errno(errno),
    })
}

impl Kernel for Sim {
    fn read_services(&self, keys: Vec<ServiceKey>) -> KernelFuture<'_, ipvs::ReadServices> {
        *self.reads.lock().unwrap() += 1;
        let t = self.table();
        Box::pin(async move {
            Ok(keys
                .into_iter()
                .map(|k| {
                    let found = t.services.iter().find(|e| e.service.key == k).map(|e| {
                        KeyedService::new(e.service.clone(), e.destinations.iter().cloned())
                    });
                    (k, found)
                })
                .collect())
        })
    }

    fn apply(&self, ops: Arc<[Op]>) -> KernelFuture<'_, ipvs::BatchReport> {
        if ops
            .iter()
            .all(|op| matches!(op, Op::StartDaemon(_) | Op::StopDaemon(_)))
        {
            let mut running = self.daemons.lock().unwrap();
            for op in ops.iter() {
                match op {
                    Op::StartDaemon(d) => running.push(d.clone()),
                    Op::StopDaemon(s) => running.retain(|d| d.state != *s),
                    _ => {}
                }
            }
            let outcomes = vec![Out::Ok; ops.len()];
            return Box::pin(async move {
                Ok(ipvs::BatchReport {
                    outcomes,
                    interrupted: None,
                })
            });
        }
        *self.batches.lock().unwrap() += 1;
        let fault = self
            .faults
            .lock()
            .unwrap()
            .pop_front()
            .or(*self.always.lock().unwrap());
        let mut t = self.table.lock().unwrap();
        let result = match fault {
            Some(Fault::Socket) => Err(ipvs::Error::Socket {
                context: "send",
                source: std::io::Error::from_raw_os_error(105),
            }),
            _ => {
                let outcomes = ops
                    .iter()
                    .enumerate()
                    .map(|(i, op)| match fault {
                        Some(Fault::Errno(e)) if i == 0 => refused(op, e),
                        _ => match simulate::apply(&mut t, op) {
                            Ok(()) if matches!(fault, Some(Fault::LostAcks)) => Out::Unknown,
                            Ok(()) => Out::Ok,
                            Err(e) => refused(op, e),
                        },
                    })
                    .collect();
                Ok(ipvs::BatchReport {
                    outcomes,
                    interrupted: None,
                })
            }
        };
        Box::pin(async move { result })
    }

    fn apply_prepared(
        &self,
        batch: Arc<ipvs::PreparedBatch>,
    ) -> KernelFuture<'_, ipvs::BatchReport> {
        self.apply(Arc::clone(batch.ops()))
    }

    fn daemons(&self) -> KernelFuture<'_, Vec<ipvs::SyncDaemon>> {
        let running = self.daemons.lock().unwrap().clone();
        Box::pin(async move { Ok(running) })
    }
}

const CONFIG: &str = "instances:
  - {name: web, interface: eth0, virtual_router_id: 1, virtual_ipaddress: [192.0.2.100]}
virtual_servers:
  - instance: web
    address: 192.0.2.100
    port: 80
    real_servers:
      - {address: 198.51.100.11}
      - {address: 198.51.100.12}
  - instance: web
    address: 192.0.2.100
    port: 443
    real_servers:
      - {address: 198.51.100.11}
      - {address: 198.51.100.12}
";

/// An engine over `sim`, with a state directory of its own.
fn engine(sim: &Arc<Sim>) -> (EngineHandle, StateDir) {
    engine_with(sim, CONFIG)
}

fn engine_with(sim: &Arc<Sim>, config: &str) -> (EngineHandle, StateDir) {
    let cfg = crate::config::load::parse(Path::new("t.yaml"), config.as_bytes()).unwrap();
    let dir = StateDir::new();
    let (_tx, rx) = mpsc::unbounded_channel();
    let s = Arc::clone(sim);
    let connect: Connect = Box::new(move || Ok(Arc::clone(&s) as Arc<dyn Kernel>));
    let h = start_with(&cfg, &dir.0, rx, connect).unwrap();
    (h, dir)
}

/// A state directory removed when the test ends.
struct StateDir(std::path::PathBuf);

impl StateDir {
    fn new() -> StateDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("director-engine-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        StateDir(p)
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn role(h: &EngineHandle, r: Role) {
    h.tx.send(Msg::Role("web".into(), r)).unwrap();
}

/// Waits up to 10 s for `f` of the instance's IPVS state.
async fn until(h: &EngineHandle, what: &str, f: impl Fn(&InstanceIpvs) -> bool) -> InstanceIpvs {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(i) = h.state().instances.first() {
            if f(i) {
                return i.clone();
            }
        }
        assert!(Instant::now() < deadline, "{what}: {:?}", h.state());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Ours: both services with both real servers.
fn programmed(t: &Table) -> bool {
    t.services
        .iter()
        .filter(|e| {
            matches!(e.service.key, ipvs::ServiceKey::Inet { port, .. } if port == 80 || port == 443)
        })
        .map(|e| e.destinations.len())
        .collect::<Vec<_>>()
        == vec![2, 2]
}

fn foreign() -> Service {
    let key = crate::target::parse_service("tcp:192.0.2.200:8080").unwrap();
    Service::new(key, ipvs::Scheduler::Rr)
}

/// An engine over `sim` whose table holds someone else's service, Master and programmed.
async fn programmed_beside_a_foreign_service(sim: &Arc<Sim>) -> (EngineHandle, StateDir) {
    sim.table.lock().unwrap().services.push(ServiceEntry {
        service: foreign(),
        destinations: Vec::new(),
    });
    let (h, dir) = engine(sim);
    role(&h, Role::MasterHeld);
    until(&h, "programmed", |i| i.programming == Ownership::Programmed).await;
    (h, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_with_backoff_and_counted() {
    let sim = Arc::new(Sim::default());
    sim.faults.lock().unwrap().extend([
        Fault::Errno(Errno::ENOMEM.0), // the prepared batch: its first add refused
        Fault::Errno(Errno::EBUSY.0),  // the same takeover's repair batch
        Fault::LostAcks,               // retry 1: applied, no ack
        Fault::Socket,                 // retry 2's repair, if it sends one (it should not)
    ]);
    let (h, _dir) = engine(&sim);
    role(&h, Role::MasterHeld);
    let i = until(&h, "programmed after retries", |i| {
        i.programming == Ownership::Programmed
    })
    .await;
    assert!(programmed(&sim.table()), "{:?}", sim.table());
    assert_eq!(i.retries, 2, "EBUSY, then the lost acks: {i:?}");
    assert_eq!(i.failures, 0);
    assert!(i.last.as_ref().is_some_and(|r| r.error.is_none()), "{i:?}");
    assert_eq!(
        sim.faults.lock().unwrap().len(),
        1,
        "retry 2 read a complete table and sent nothing"
    );
    // Still running: a release withdraws everything.
    role(&h, Role::Released);
    until(&h, "withdrawn", |i| i.programming == Ownership::Withdrawn).await;
    assert!(sim.table().services.is_empty(), "{:?}", sim.table());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_that_repeats_is_counted_once_and_not_retried_in_a_loop() {
    let sim = Arc::new(Sim::default());
    *sim.always.lock().unwrap() = Some(Fault::Errno(Errno::EINVAL.0));
    let (h, _dir) = engine(&sim);
    role(&h, Role::MasterHeld);
    let i = until(&h, "a failed reconcile", |i| i.failures > 0).await;
    let err = i.last.as_ref().and_then(|r| r.error.clone()).unwrap();
    assert!(err.contains("add service"), "names the operation: {err}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let i = h.state().instances[0].clone();
    assert_eq!((i.failures, i.retries), (1, 0), "{i:?}");
    assert!(
        sim.batches() <= 2,
        "no hot loop: {} batches (the prepared one, its repair)",
        sim.batches()
    );
    // The refusal goes away (the operator fixed the kernel): the next verification or
    // desired change repairs; here a drain is the change.
    *sim.always.lock().unwrap() = None;
    h.drain("tcp:192.0.2.100:80", "198.51.100.11", true)
        .await
        .unwrap();
    until(&h, "repaired", |i| {
        i.last.as_ref().is_some_and(|r| r.error.is_none())
    })
    .await;
    assert!(programmed(&sim.table()), "{:?}", sim.table());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdraw_leaves_someone_elses_service() {
    let sim = Arc::new(Sim::default());
    let (h, _dir) = programmed_beside_a_foreign_service(&sim).await;
    assert!(programmed(&sim.table()));
    role(&h, Role::Released);
    until(&h, "withdrawn", |i| i.programming == Ownership::Withdrawn).await;
    let t = sim.table();
    assert_eq!(t.services.len(), 1, "{t:?}");
    assert_eq!(t.services[0].service.key, foreign().key);
}

/// A withdraw deletes by key without reading: a service someone already deleted by hand
/// (ESRCH) counts as withdrawn, not as a failure to retry; the foreign one stays; the report
/// counts only what was deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdraw_by_key_takes_a_service_already_gone_as_done() {
    let sim = Arc::new(Sim::default());
    let (h, _dir) = programmed_beside_a_foreign_service(&sim).await;
    let gone = crate::target::parse_service("tcp:192.0.2.100:443").unwrap();
    sim.table
        .lock()
        .unwrap()
        .services
        .retain(|e| e.service.key != gone);
    let batches = sim.batches();
    let reads = *sim.reads.lock().unwrap();
    role(&h, Role::Released);
    let i = until(&h, "withdrawn", |i| i.programming == Ownership::Withdrawn).await;
    let t = sim.table();
    assert_eq!(t.services.len(), 1, "{t:?}");
    assert_eq!(t.services[0].service.key, foreign().key);
    let last = i.last.as_ref().unwrap();
    assert!(last.error.is_none(), "{last:?}");
    assert_eq!(
        last.ops, 1,
        "one service deleted, the other was gone: {last:?}"
    );
    assert_eq!((i.failures, i.retries), (0, 0), "{i:?}");
    assert_eq!(sim.batches(), batches + 1, "one batch, no retry");
    assert_eq!(*sim.reads.lock().unwrap(), reads, "no read before deleting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_sync_daemon_runs_before_the_first_decision_and_switches_with_the_role() {
    let sim = Arc::new(Sim::default());
    let config = format!("{CONFIG}ipvs:\n  sync_daemon: {{instance: web, interface: eth0}}\n");
    let (h, _dir) = engine_with(&sim, &config);
    let states = || -> Vec<ipvs::DaemonState> {
        sim.daemons
            .lock()
            .unwrap()
            .iter()
            .map(|d| d.state)
            .collect()
    };
    // No VRRP decision yet: the backup daemon runs already.
    let deadline = Instant::now() + Duration::from_secs(10);
    while states() != vec![ipvs::DaemonState::Backup] {
        assert!(Instant::now() < deadline, "backup daemon: {:?}", states());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    role(&h, Role::MasterHeld);
    until(&h, "programmed", |i| i.programming == Ownership::Programmed).await;
    assert_eq!(
        states(),
        vec![ipvs::DaemonState::Master],
        "switched on takeover"
    );
    role(&h, Role::Released);
    until(&h, "withdrawn", |i| i.programming == Ownership::Withdrawn).await;
    assert_eq!(states(), vec![ipvs::DaemonState::Backup], "switched back");
}
