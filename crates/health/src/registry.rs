//! The registry: one probe per (backend address, [`CheckSpec`]), shared by every subscriber.
//!
//! ```text
//!  subscriber A ─ subscribe(10.0.0.5:80, tcp) ─┐            ┌─ watch::Receiver<Health> (A)
//!  subscriber B ─ subscribe(10.0.0.5:80, tcp) ─┼─ Registry ─┼─ watch::Receiver<Health> (B)
//!                                              │  map: key -> watch::Sender
//!                                              ├─ TCP: the engine (one task for all of them)
//!                                              └─ other kinds: one task per key: sleep to its
//!                                                 slot, probe, rise/fall, send_if_modified,
//!                                                 log transitions
//! ```
//!
//! Everything runs on the runtime the registry was created on (no thread per check). TCP
//! connect checks, the kind that scales to thousands of backends, run in the registry's one
//! [`engine`](crate::engine) task with its own epoll set and timer heap; HTTP(S), DNS, UDP and
//! exec run as a task per probe. Reference counting is the watch channel's own: a probe's task
//! sees `closed()` when its last receiver is dropped (the engine looks at its slot), and removes
//! its entry under the map's lock only if nobody subscribed again in between (the subscribe path
//! takes the same lock), then ends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::time::Instant;

use tokio::sync::mpsc;

use crate::engine::{self, Add, EngineTx};
use crate::probe::{ProbeError, Prober};
use crate::schedule::{first_offset, next_run};
use crate::spec::{CheckKind, CheckSpec};
use crate::state::{record_parts, Health, RiseFall, Start, State, Transition};
use crate::Error;

type Probes = HashMap<Key, Arc<watch::Sender<Health>>>;

/// What a probe is keyed by: the backend and the check.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) target: SocketAddr,
    pub(crate) spec: Arc<CheckSpec>,
}

/// What the probes (tasks and the engine) share with the registry.
pub(crate) struct Shared {
    probes: Mutex<Probes>,
    /// Probe runs started so far.
    runs: AtomicU64,
}

struct Inner {
    handle: Handle,
    shared: Arc<Shared>,
    /// Probes created so far: the index into the jitter sequence.
    created: AtomicU64,
    /// The TCP engine, started with the first TCP probe; `Err` when it could not be (then TCP
    /// probes run as tasks like the other kinds).
    engine: Mutex<Option<Result<EngineTx, ()>>>,
}

impl Shared {
    /// Counts a run started.
    pub(crate) fn count_run(&self) {
        self.runs.fetch_add(1, Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, Probes> {
        // A panic while holding the lock cannot leave the map half-updated (single inserts and
        // removes), so a poisoned lock is still usable.
        self.probes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Removes `key` if `tx` has no receiver left; false when someone subscribed again.
    pub(crate) fn retire(&self, key: &Key, tx: &Arc<watch::Sender<Health>>) -> bool {
        let mut probes = self.lock();
        if tx.receiver_count() > 0 {
            return false;
        }
        if probes.get(key).is_some_and(|cur| Arc::ptr_eq(cur, tx)) {
            probes.remove(key);
        }
        true
    }
}

impl Inner {
    /// The TCP engine, started on first use; `None` when it cannot be started (no epoll set:
    /// logged once, and TCP probes run as tasks).
    fn engine(&self) -> Option<EngineTx> {
        let mut e = self.engine.lock().unwrap_or_else(|p| p.into_inner());
        let got = e.get_or_insert_with(|| {
            engine::start(&self.handle, Arc::clone(&self.shared)).map_err(|err| {
                tracing::error!(error = %err, "health: TCP engine not started, TCP probes run as tasks");
            })
        });
        got.as_ref().ok().cloned()
    }
}

/// Counters of a registry, for status and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Probes running now (distinct (backend, check) pairs with at least one subscriber).
    pub probes: usize,
    /// Probe runs started since the registry was created (each one connect, query or command).
    pub runs: u64,
}

/// The shared health-check registry. Cheap to clone (all clones share the probes).
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

impl Registry {
    /// A registry whose probes run on the current tokio runtime.
    pub fn new() -> Result<Self, Error> {
        let handle = Handle::try_current().map_err(|_| Error::NoRuntime)?;
        Ok(Self::with_handle(handle))
    }

    /// A registry whose probes run on `handle`'s runtime.
    pub fn with_handle(handle: Handle) -> Self {
        Registry {
            inner: Arc::new(Inner {
                handle,
                shared: Arc::new(Shared {
                    probes: Mutex::new(HashMap::new()),
                    runs: AtomicU64::new(0),
                }),
                created: AtomicU64::new(0),
                engine: Mutex::new(None),
            }),
        }
    }

    /// Subscribes to the health of `target` (a real server's address and port) checked by
    /// `spec`, starting pessimistic ([`Start::Pessimistic`]). See [`Registry::subscribe_with`].
    pub fn subscribe(&self, target: SocketAddr, spec: CheckSpec) -> watch::Receiver<Health> {
        self.subscribe_with(target, spec, Start::Pessimistic)
    }

    /// Subscribes to the health of `target` checked by `spec`.
    ///
    /// The first subscriber of a (target, spec) pair starts its probe, in `start`'s state; later
    /// ones share it (and its current state: `start` is then ignored). The probe stops when the
    /// last receiver is dropped. The receiver's value is updated after every run (last result,
    /// reason, latency), but `changed()` wakes only on a change of [`State`].
    pub fn subscribe_with(
        &self,
        target: SocketAddr,
        spec: CheckSpec,
        start: Start,
    ) -> watch::Receiver<Health> {
        let key = Key {
            target,
            spec: Arc::new(spec),
        };
        let mut probes = self.inner.shared.lock();
        if let Some(tx) = probes.get(&key) {
            return tx.subscribe();
        }
        let now = Instant::now();
        let (tx, rx) = watch::channel(Health::new(start, now.into_std()));
        let tx = Arc::new(tx);
        probes.insert(key.clone(), Arc::clone(&tx));
        drop(probes);
        let n = self.inner.created.fetch_add(1, Ordering::Relaxed);
        let phase = now + first_offset(n, key.spec.effective_interval());
        let engine = match key.spec.kind {
            CheckKind::Tcp => self.inner.engine(),
            _ => None,
        };
        let (key, tx) = match engine {
            Some(engine) => match engine.send(Add {
                key,
                tx,
                start,
                phase,
            }) {
                Ok(()) => return rx,
                // The engine's task is gone (its runtime shut down): a task instead.
                Err(mpsc::error::SendError(add)) => (add.key, add.tx),
            },
            None => (key, tx),
        };
        let shared = Arc::clone(&self.inner.shared);
        self.inner
            .handle
            .spawn(probe_task(shared, key, tx, start, phase));
        rx
    }

    /// The current health of every running probe: (backend, check, health).
    pub fn snapshot(&self) -> Vec<(SocketAddr, Arc<CheckSpec>, Health)> {
        self.inner
            .shared
            .lock()
            .iter()
            .map(|(k, tx)| (k.target, Arc::clone(&k.spec), tx.borrow().clone()))
            .collect()
    }

    /// Counters: probes running, runs started.
    pub fn stats(&self) -> Stats {
        Stats {
            probes: self.inner.shared.lock().len(),
            runs: self.inner.shared.runs.load(Ordering::Relaxed),
        }
    }
}

/// One probe's life: sleep to its slot, run, publish, until its last receiver is gone.
///
/// Per run it costs one task wake for the slot and one for the connect's answer, and no
/// allocation of its own in the steady state (tokio's socket registration still allocates):
/// the task keeps ONE timer, reset from the slot to the run's deadline (the check's timeout)
/// and on to the next slot (a later deadline: tokio only moves the timer when its earlier
/// deadline passes), instead of a sleep and a timeout per run; the `closed()` future that
/// notices the last receiver leaving is kept across runs instead of registered anew; the reason
/// is written into the published result's buffer ([`record_parts`]).
async fn probe_task(
    inner: Arc<Shared>,
    key: Key,
    tx: Arc<watch::Sender<Health>>,
    start: Start,
    phase: Instant,
) {
    let interval = key.spec.effective_interval();
    let limit = key.spec.timeout;
    let mut filter = RiseFall::new(key.spec.rise, key.spec.fall, start);
    let mut prober = Prober::new(key.target, Arc::clone(&key.spec));
    let timer = tokio::time::sleep_until(phase);
    tokio::pin!(timer);
    let closed = tx.closed();
    tokio::pin!(closed);
    loop {
        tokio::select! {
            biased;
            () = &mut timer => {}
            () = &mut closed => {
                if inner.retire(&key, &tx) {
                    return;
                }
                // Someone subscribed again in between: wait for their receivers to go.
                closed.set(tx.closed());
                continue;
            }
        }
        inner.count_run();
        let t0 = Instant::now();
        let result = if prober.bounds_itself() {
            prober.run_unbounded().await
        } else {
            timer.as_mut().reset(t0 + limit);
            tokio::select! {
                biased;
                r = prober.run_unbounded() => r,
                () = &mut timer => Err(ProbeError::Timeout(limit)),
            }
        };
        let end = Instant::now();
        let seen = result.as_ref().map(|s| s as &dyn std::fmt::Display);
        publish(&key, &tx, &mut filter, seen, end - t0, end);
        drop(result);
        timer.as_mut().reset(Instant::from_std(next_run(
            phase.into_std(),
            interval,
            end.into_std(),
        )));
    }
}

/// Records one run's result in `tx`'s value (every run: last result, reason, latency; receivers
/// are woken only on a change of state) and logs the transition, if any.
pub(crate) fn publish(
    key: &Key,
    tx: &watch::Sender<Health>,
    filter: &mut RiseFall,
    result: Result<&dyn std::fmt::Display, &ProbeError>,
    latency: std::time::Duration,
    end: Instant,
) {
    let mut transition = None;
    tx.send_if_modified(|h| {
        let (ok, reason): (bool, &dyn std::fmt::Display) = match result {
            Ok(seen) => (true, seen),
            Err(e) => (false, e),
        };
        transition = record_parts(filter, h, ok, reason, latency, end.into_std());
        transition.is_some()
    });
    if let Some(t) = transition {
        log_transition(key, t, &tx.borrow());
    }
}

/// One structured event per change of state: a warning when going Down.
fn log_transition(key: &Key, t: Transition, h: &Health) {
    let (reason, latency) = h
        .last
        .as_ref()
        .map(|o| (o.reason.as_str(), o.latency))
        .unwrap_or_default();
    let latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    let (backend, check) = (key.target, key.spec.kind.name());
    let connect = key.spec.connect_addr(key.target);
    if t.to == State::Down {
        tracing::warn!(%backend, check, %connect, from = %t.from, to = %t.to, reason, latency_us, "health changed");
    } else {
        tracing::info!(%backend, check, %connect, from = %t.from, to = %t.to, reason, latency_us, "health changed");
    }
}
