//! The TCP connect engine: every TCP probe of a registry in one task, on its own epoll set and
//! timer heap, instead of a tokio task, timer and socket registration per probe.
//!
//! ```text
//!  Registry::subscribe (TCP) ── Add ──▶ engine task (one per registry, on its runtime)
//!                                        ├─ Slots: one timer per probe (slot or deadline)
//!                                        ├─ epoll set: the connects in flight, token = probe id
//!                                        └─ tokio sees two things: the epoll fd (AsyncFd) and
//!                                           one Sleep to the earliest timer
//! ```
//!
//! A run is the plain-C floor's (`benches/health`): `socket` (non-blocking), SO_LINGER 0,
//! `connect`, `epoll_ctl` ADD, then at its event `getsockopt` SO_ERROR and `close` (which drops
//! it from the set: no DEL). What a probe task per check paid on top, measured (docs/
//! benchmarks.md): a timer-wheel entry and two task wakes per run, an `epoll_ctl` DEL and an
//! allocation for tokio's socket registration. Here a wake-up serves every probe due or
//! answered by then, and the connects started in it that complete at once (loopback, a refusal)
//! are harvested before the task sleeps again.
//!
//! Results go through the same rise/fall filter, `watch` publication and transition log as the
//! other kinds' probe tasks (`registry`). A probe ends at its first slot after its last receiver
//! is gone, without running. The engine runs on tokio's clock (`tokio::time`), so tests on the
//! paused clock drive it like any other probe.

pub(crate) mod slots;

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use socket2::{Domain, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::probe::ProbeError;
use crate::registry::{publish, Key, Shared};
use crate::state::{Health, RiseFall, Start};
use slots::{Due, Id, Slots};

/// A probe handed to the engine by the registry.
pub(crate) struct Add {
    pub(crate) key: Key,
    pub(crate) tx: Arc<watch::Sender<Health>>,
    pub(crate) start: Start,
    /// Its first run.
    pub(crate) phase: Instant,
}

/// The registry's end of an engine.
pub(crate) type EngineTx = mpsc::UnboundedSender<Add>;

/// Starts an engine task on `handle`'s runtime.
pub(crate) fn start(handle: &Handle, shared: Arc<Shared>) -> io::Result<EngineTx> {
    let _rt = handle.enter();
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(io::Error::from)?;
    // tokio 1.54 deprecates the safe constructors (their replacement is `unsafe`, which this
    // crate forbids) because a generic `AsRawFd` may hand out another or a closed fd later.
    // `EpollFd` owns its fd for its whole life and always returns that one.
    #[allow(deprecated)]
    let fd = AsyncFd::with_interest(EpollFd(epoll), Interest::READABLE)?;
    let (tx, rx) = mpsc::unbounded_channel();
    handle.spawn(run(fd, rx, shared));
    Ok(tx)
}

/// The epoll set, as tokio's reactor sees it (readable when a connect in it has an event).
struct EpollFd(Epoll);

impl AsRawFd for EpollFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0 .0.as_raw_fd()
    }
}

/// One probe's state beside its timer.
struct Probe {
    key: Key,
    tx: Arc<watch::Sender<Health>>,
    filter: RiseFall,
    addr: SocketAddr,
    /// `addr` as the socket calls take it, built once.
    sockaddr: SockAddr,
    /// The connect in flight.
    sock: Option<Socket>,
}

/// Events read per `epoll_wait`.
const BATCH: usize = 256;

struct Engine {
    slots: Slots<Probe>,
    shared: Arc<Shared>,
    events: Vec<EpollEvent>,
}

async fn run(fd: AsyncFd<EpollFd>, mut rx: mpsc::UnboundedReceiver<Add>, shared: Arc<Shared>) {
    let mut e = Engine {
        slots: Slots::new(),
        shared,
        events: vec![EpollEvent::empty(); BATCH],
    };
    // Far enough to never fire; reset to the earliest timer before every wait.
    let idle = || Instant::now() + Duration::from_secs(86_400 * 365);
    let sleep = tokio::time::sleep_until(idle());
    tokio::pin!(sleep);
    let mut open = true;
    loop {
        let next = e.slots.next_deadline().map(Instant::from_std);
        if next.is_none() && !open {
            return; // the registry is gone and so is every probe
        }
        let next = next.unwrap_or_else(idle);
        if sleep.deadline() != next {
            sleep.as_mut().reset(next);
        }
        tokio::select! {
            biased;
            ready = fd.readable() => {
                if let Ok(mut guard) = ready {
                    e.harvest(&fd.get_ref().0);
                    guard.clear_ready();
                }
            }
            add = rx.recv(), if open => match add {
                Some(a) => {
                    e.add(a);
                    while let Ok(a) = rx.try_recv() {
                        e.add(a);
                    }
                }
                None => open = false,
            },
            () = &mut sleep => {}
        }
        let ep = &fd.get_ref().0;
        if e.fire_due(ep) {
            e.harvest(ep);
        }
    }
}

impl Engine {
    fn add(&mut self, a: Add) {
        let addr = a.key.spec.connect_addr(a.key.target);
        let probe = Probe {
            filter: RiseFall::new(a.key.spec.rise, a.key.spec.fall, a.start),
            addr,
            sockaddr: SockAddr::from(addr),
            key: a.key,
            tx: a.tx,
            sock: None,
        };
        let (interval, timeout) = (probe.key.spec.effective_interval(), probe.key.spec.timeout);
        self.slots
            .insert(a.phase.into_std(), interval, timeout, probe);
    }

    /// Reads the events of the set without waiting, batch after batch until a batch is not full
    /// (the set is drained: tokio's readiness may be cleared), and ends their runs.
    fn harvest(&mut self, ep: &Epoll) {
        loop {
            let n = match ep.wait(&mut self.events, EpollTimeout::ZERO) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "health: epoll_wait failed");
                    return;
                }
            };
            let now = Instant::now();
            for i in 0..n {
                let Some(ev) = self.events.get(i) else { break };
                let id = Id::from_token(ev.data());
                self.answered(id, now);
            }
            if n < self.events.len() {
                return;
            }
        }
    }

    /// The connect of `id` has an event: connected, or refused/unreachable (SO_ERROR).
    fn answered(&mut self, id: Id, now: Instant) {
        let Some(p) = self.slots.get_mut(id) else {
            return;
        };
        let Some(sock) = p.sock.take() else { return };
        let result = match sock.take_error() {
            Ok(None) => Ok(()),
            Ok(Some(source)) | Err(source) => Err(ProbeError::Connect {
                addr: p.addr,
                source,
            }),
        };
        drop(sock); // close: leaves the epoll set with it
        self.end_run(id, result, now);
    }

    /// Runs or times out every probe due now. True when a connect was started (its answer may
    /// already be in the set).
    fn fire_due(&mut self, ep: &Epoll) -> bool {
        let now = Instant::now();
        let mut started = false;
        while let Some((id, due)) = self.slots.pop_due(now.into_std()) {
            match due {
                Due::Run => started |= self.start_run(ep, id, now),
                Due::TimedOut { latency } => {
                    let Some(p) = self.slots.get_mut(id) else {
                        continue;
                    };
                    p.sock = None; // close the hung connect
                    let limit = p.key.spec.timeout;
                    self.publish(id, Err(ProbeError::Timeout(limit)), latency, now);
                }
            }
        }
        started
    }

    /// Starts the run of `id`, or ends the probe when nobody listens any more. True when a
    /// connect is in flight.
    fn start_run(&mut self, ep: &Epoll, id: Id, now: Instant) -> bool {
        let Some(p) = self.slots.get_mut(id) else {
            return false;
        };
        if p.tx.receiver_count() == 0 && self.shared.retire(&p.key, &p.tx) {
            self.slots.remove(id);
            return false;
        }
        self.shared.count_run();
        match connect(p) {
            Ok(sock) => {
                let ev = EpollEvent::new(EpollFlags::EPOLLOUT, id.token());
                match ep.add(&sock, ev) {
                    Ok(()) => {
                        p.sock = Some(sock);
                        true
                    }
                    Err(e) => {
                        let err = ProbeError::Io {
                            what: "epoll_ctl ADD",
                            source: e.into(),
                        };
                        self.end_run(id, Err(err), now);
                        false
                    }
                }
            }
            Err(source) => {
                let err = ProbeError::Connect {
                    addr: p.addr,
                    source,
                };
                self.end_run(id, Err(err), now);
                false
            }
        }
    }

    /// The run in flight of `id` ended before its deadline (answered, or failed before waiting:
    /// no socket, refused at once): its next slot is armed and the result published.
    fn end_run(&mut self, id: Id, result: Result<(), ProbeError>, now: Instant) {
        if let Some(latency) = self.slots.finish(id, now.into_std()) {
            self.publish(id, result, latency, now);
        }
    }

    fn publish(&mut self, id: Id, result: Result<(), ProbeError>, latency: Duration, now: Instant) {
        let Some(p) = self.slots.get_mut(id) else {
            return;
        };
        let seen = result
            .as_ref()
            .map(|()| &"connected" as &dyn std::fmt::Display);
        publish(&p.key, &p.tx, &mut p.filter, seen, latency, now);
    }
}

/// A non-blocking connect with SO_LINGER 0 (closing resets: no TIME_WAIT on the director), as
/// `probe::tcp::connect` makes it. `Ok` when the connect is in flight (or done).
fn connect(p: &Probe) -> io::Result<Socket> {
    let domain = if p.addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let sock = Socket::new(domain, Type::STREAM.nonblocking(), None)?;
    sock.set_linger(Some(Duration::ZERO))?;
    match sock.connect(&p.sockaddr) {
        Ok(()) => Ok(sock),
        Err(e) if e.raw_os_error() == Some(nix::libc::EINPROGRESS) => Ok(sock),
        Err(e) => Err(e),
    }
}
