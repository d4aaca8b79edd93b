//! The IPVS connection on a thread of its own, so that its long runs never hold up anyone else's
//! runtime.
//!
//! A [`Conn`] never yields while it works: the kernel answers inside our system calls (see
//! `conn`), so a checked snapshot of 10,000 services x 10 real servers runs for seconds on the
//! task that awaits it, and every other task of that runtime thread waits as long (a VRRP advert
//! late past Master_Down_Interval fails the pair over for nothing). [`Worker::spawn`] starts an OS
//! thread that owns one `Conn` on its own current-thread tokio runtime; [`WorkerHandle`]s send it
//! requests over a channel and await the answer, so the caller's runtime only waits on a channel.
//!
//! ```text
//!  caller's runtime (VRRP, timers, ...)          thread `name` (its own runtime)
//!  WorkerHandle::snapshot() --- Request ---->    loop { recv; run on the Conn }
//!            .await        <--- oneshot ----     one request at a time, in order
//! ```
//!
//! Network namespace: the thread is created by `clone(2)` from the thread that calls
//! [`Worker::spawn`] and inherits that thread's network namespace; the `Conn` (and its verifying
//! sockets) are opened there. Spawn the worker from a thread in the namespace whose IPVS table it
//! is meant to manage; a later `setns(2)` of the spawning thread does not move the worker.
//!
//! Lifetime: the thread ends, closing its sockets, when the last handle is dropped (after the
//! request it is running, if any). A request whose caller stopped waiting (its future dropped)
//! still runs to its end: an `apply` is never cut in the middle of a batch.

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::conn::{BatchReport, Conn, PreparedBatch};
use crate::dump::SnapshotReport;
use crate::error::{Error, Result};
use crate::model::{Info, KeyedService, ServiceKey, SyncDaemon, Table, Timeouts};
use crate::ops::Op;

/// Requests queued before a sender waits (each is a whole batch or read, so a few suffice).
const QUEUE: usize = 16;

/// Services read by key: each key with its service, or `None` when the kernel has none.
pub type ReadServices = Vec<(ServiceKey, Option<KeyedService>)>;

/// One request to the worker thread and where its answer goes.
enum Request {
    Apply(Vec<Op>, oneshot::Sender<Result<BatchReport>>),
    ApplyShared(Arc<[Op]>, oneshot::Sender<Result<BatchReport>>),
    ApplyPrepared(Arc<PreparedBatch>, oneshot::Sender<Result<BatchReport>>),
    Snapshot(u32, oneshot::Sender<Result<(Table, SnapshotReport)>>),
    ReadServices(Vec<ServiceKey>, oneshot::Sender<Result<ReadServices>>),
    Info(oneshot::Sender<Result<Info>>),
    Timeouts(oneshot::Sender<Result<Timeouts>>),
    Daemons(oneshot::Sender<Result<Vec<SyncDaemon>>>),
}

/// Starts the thread that owns the IPVS connection ([`Worker::spawn`]).
#[derive(Debug)]
pub struct Worker;

impl Worker {
    /// Starts an OS thread named `name` that opens a [`Conn`] in the calling thread's network
    /// namespace (see the module doc) and serves requests from the returned handle and its
    /// clones, one at a time, in the order they arrive.
    ///
    /// Blocks until the connection is open (a few milliseconds: one socket, one family lookup),
    /// so that a kernel without IPVS fails here with [`Error::NotAvailable`], as
    /// [`Conn::connect`] does. Fails with [`Error::Socket`] when no thread or runtime can be
    /// started.
    pub fn spawn(name: &str) -> Result<WorkerHandle> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (ready_tx, ready_rx) = std_mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || run(rx, ready_tx))
            .map_err(|source| Error::Socket {
                context: "spawn the IPVS worker thread",
                source,
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(WorkerHandle { tx }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::WorkerGone),
        }
    }
}

/// The worker thread: a runtime, a `Conn`, and the request loop until every handle is gone.
fn run(mut rx: mpsc::Receiver<Request>, ready: std_mpsc::SyncSender<Result<()>>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
    {
        Ok(rt) => rt,
        Err(source) => {
            // The spawner waits for this; it fails only if the spawner is gone.
            let _ = ready.send(Err(Error::Socket {
                context: "start the IPVS worker's runtime",
                source,
            }));
            return;
        }
    };
    rt.block_on(async move {
        let mut conn = match Conn::connect().await {
            Ok(conn) => {
                let _ = ready.send(Ok(()));
                conn
            }
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        while let Some(req) = rx.recv().await {
            // A send fails only when the caller stopped waiting: the answer is dropped.
            match req {
                Request::Apply(ops, tx) => {
                    let _ = tx.send(conn.apply(&ops).await);
                }
                Request::ApplyShared(ops, tx) => {
                    let _ = tx.send(conn.apply(&ops).await);
                }
                Request::ApplyPrepared(batch, tx) => {
                    let _ = tx.send(conn.apply_prepared(&batch).await);
                }
                Request::Snapshot(tries, tx) => {
                    let _ = tx.send(conn.snapshot_report(tries).await);
                }
                Request::ReadServices(keys, tx) => {
                    let _ = tx.send(conn.read_services(&keys).await);
                }
                Request::Info(tx) => {
                    let _ = tx.send(conn.info().await);
                }
                Request::Timeouts(tx) => {
                    let _ = tx.send(conn.timeouts().await);
                }
                Request::Daemons(tx) => {
                    let _ = tx.send(conn.daemons().await);
                }
            }
        }
    });
}

/// A handle to the worker thread of [`Worker::spawn`]: cheap to clone, usable from any thread
/// and runtime. Each method queues one request and waits for its answer without blocking the
/// caller's runtime; requests from all clones run one at a time, in arrival order. The thread
/// ends when the last handle is dropped.
///
/// Every method fails with [`Error::WorkerGone`] if the thread has ended (it panicked).
#[derive(Debug, Clone)]
pub struct WorkerHandle {
    tx: mpsc::Sender<Request>,
}

impl WorkerHandle {
    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> Request) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| Error::WorkerGone)?;
        rx.await.map_err(|_| Error::WorkerGone)?
    }

    /// [`Conn::apply`] on the worker: the batch in order, one outcome per operation. Setting
    /// the timeouts and starting or stopping a sync daemon are operations too
    /// ([`Op::SetTimeouts`], [`Op::StartDaemon`], [`Op::StopDaemon`]).
    pub async fn apply(&self, ops: Vec<Op>) -> Result<BatchReport> {
        self.call(|tx| Request::Apply(ops, tx)).await
    }

    /// [`WorkerHandle::apply`] of a batch the caller keeps (a prepared batch applied more than
    /// once, or read again after the report): the worker borrows it, nothing is copied.
    pub async fn apply_shared(&self, ops: Arc<[Op]>) -> Result<BatchReport> {
        self.call(|tx| Request::ApplyShared(ops, tx)).await
    }

    /// [`Conn::apply_prepared`] on the worker: a batch encoded ahead of time.
    pub async fn apply_prepared(&self, batch: Arc<PreparedBatch>) -> Result<BatchReport> {
        self.call(|tx| Request::ApplyPrepared(batch, tx)).await
    }

    /// [`Conn::snapshot`] on the worker: the checked whole table.
    pub async fn snapshot(&self) -> Result<Table> {
        Ok(self.snapshot_report(crate::dump::SNAPSHOT_TRIES).await?.0)
    }

    /// [`Conn::snapshot_report`] on the worker.
    pub async fn snapshot_report(&self, tries: u32) -> Result<(Table, SnapshotReport)> {
        self.call(|tx| Request::Snapshot(tries, tx)).await
    }

    /// [`Conn::read_services`] on the worker: each key's service as the kernel holds it now.
    pub async fn read_services(&self, keys: Vec<ServiceKey>) -> Result<ReadServices> {
        self.call(|tx| Request::ReadServices(keys, tx)).await
    }

    /// [`Conn::info`] on the worker.
    pub async fn info(&self) -> Result<Info> {
        self.call(Request::Info).await
    }

    /// [`Conn::timeouts`] on the worker.
    pub async fn timeouts(&self) -> Result<Timeouts> {
        self.call(Request::Timeouts).await
    }

    /// [`Conn::daemons`] on the worker.
    pub async fn daemons(&self) -> Result<Vec<SyncDaemon>> {
        self.call(Request::Daemons).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Handles go to other tasks and threads: a compile-time check.
    #[allow(dead_code)]
    fn handles_are_send_and_sync(h: &WorkerHandle) {
        fn is_send_sync<T: Send + Sync + Clone>(_: &T) {}
        fn is_send<T: Send>(_: &T) {}
        is_send_sync(h);
        is_send(&h.snapshot());
        is_send(&h.apply(Vec::new()));
        is_send(&h.read_services(Vec::new()));
    }
}
