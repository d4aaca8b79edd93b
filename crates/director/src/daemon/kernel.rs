//! What the engine asks of the kernel's IPVS, as a trait: read services by key, apply a batch,
//! list the sync daemons. In the daemon it is [`ipvs::WorkerHandle`] (the IPVS connection on its
//! own thread); in tests a simulated kernel with injected faults drives the same engine, so
//! retries, backoff and their counters are tested without a kernel (see `engine::tests`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use ipvs::{BatchReport, Op, PreparedBatch, ReadServices, ServiceKey, SyncDaemon, WorkerHandle};

/// A boxed, sendable future of an IPVS call.
pub type KernelFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ipvs::Error>> + Send + 'a>>;

/// The kernel calls the engine makes (their meaning: [`ipvs::Conn`]'s methods of the same name).
pub trait Kernel: Send + Sync {
    /// Each key's service as the kernel holds it now (`None`: absent).
    fn read_services(&self, keys: Vec<ServiceKey>) -> KernelFuture<'_, ReadServices>;
    /// One pipelined batch, one outcome per operation.
    fn apply(&self, ops: Arc<[Op]>) -> KernelFuture<'_, BatchReport>;
    /// A batch encoded ahead of time ([`ipvs::Conn::apply_prepared`]).
    fn apply_prepared(&self, batch: Arc<PreparedBatch>) -> KernelFuture<'_, BatchReport>;
    /// The sync daemons running.
    fn daemons(&self) -> KernelFuture<'_, Vec<SyncDaemon>>;
}

impl Kernel for WorkerHandle {
    fn read_services(&self, keys: Vec<ServiceKey>) -> KernelFuture<'_, ReadServices> {
        Box::pin(WorkerHandle::read_services(self, keys))
    }

    fn apply(&self, ops: Arc<[Op]>) -> KernelFuture<'_, BatchReport> {
        Box::pin(self.apply_shared(ops))
    }

    fn apply_prepared(&self, batch: Arc<PreparedBatch>) -> KernelFuture<'_, BatchReport> {
        Box::pin(WorkerHandle::apply_prepared(self, batch))
    }

    fn daemons(&self) -> KernelFuture<'_, Vec<SyncDaemon>> {
        Box::pin(WorkerHandle::daemons(self))
    }
}

/// Opens the kernel connection the first time the engine needs it (a configuration without
/// virtual services never touches IPVS).
pub type Connect = Box<dyn FnMut() -> Result<Arc<dyn Kernel>, String> + Send>;

/// The production [`Connect`]: an [`ipvs::Worker`] thread in the caller's network namespace.
pub fn worker() -> Connect {
    Box::new(|| {
        let w = ipvs::Worker::spawn("ipvs-engine").map_err(|e| e.to_string())?;
        Ok(Arc::new(w) as Arc<dyn Kernel>)
    })
}
