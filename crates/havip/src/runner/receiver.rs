//! One VRRP socket per interface and family, shared by every instance on it, with one receive
//! task that hands each datagram to the instance of its VRID (the shape keepalived and holo use:
//! the interface owns the socket, the instances are looked up by VRID).
//!
//! ```text
//!   raw socket (proto 112) ──recv──► receive task ──VRID 7──► instance 7 (Delivery channel)
//!   one per Key                       │          ──VRID 9──► instance 9
//!                                     └─ VRID no instance here, or no VRID byte: to every
//!                                        instance on the socket (each counts its drop reason)
//! ```
//!
//! With one socket per instance every instance read every datagram on the link and counted the
//! other instances' VRIDs as `vrid_not_configured`: work and drop counters grew with the square
//! of the instances. Here a datagram for a VRID some instance on the socket has reaches that
//! instance only; a datagram no instance on the socket can take (a VRID configured nowhere on
//! this socket, a payload too short to carry a VRID, an unreadable IP header, a failed receive)
//! reaches every instance on it, as before, since it is a real drop for each of them.
//!
//! Lifetime: [`Membership::join`] opens the socket and starts the task for the first instance
//! of a [`Key`]; the others share them. Dropping a [`Membership`] (detach, stop, reload removing
//! the instance) unregisters it; when the last one goes, the task is aborted and the socket
//! closed. Instances share a socket only within one tokio runtime (the socket is registered
//! with the reactor of the runtime that opened it); the director runs all of them on one.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::net::socket::{IpHeaderError, Received, SocketConfig, Transport, VrrpSocket};
use crate::net::NetError;

/// How long the receive task pauses after a socket error (no busy loop on a broken socket).
const RX_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// Datagrams queued for one instance before the receive task discards more for it (counted as
/// receive failures of that instance): an instance stuck for a moment does not hold up the
/// others, and a flood does not grow memory without bound.
const QUEUE: usize = 256;

/// What the receive task hands an instance.
#[derive(Debug, Clone)]
pub(super) enum Delivery {
    /// A datagram for the instance's VRID, or one no instance on the socket takes (the
    /// instance decodes it and counts its drop reason).
    Datagram(Received),
    /// A datagram that is not a readable IP packet (counted under its label).
    Malformed(IpHeaderError),
    /// The socket's receive call failed (the task pauses [`RX_ERROR_PAUSE`] before the next).
    RecvFailed(Arc<io::Error>),
}

/// What decides whether two instances can share a socket: the same network namespace, the
/// same interface, the same source address (it is the socket's bound address or its
/// `IP_MULTICAST_IF`) and the same mode (a multicast socket joins the group and, for IPv4, is
/// not bound; a unicast one is bound to the source). The family is the source's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Key {
    /// `(st_dev, st_ino)` of `/proc/thread-self/ns/net`: interface indexes repeat across
    /// namespaces, and one process may run instances in several (the netns tests do).
    netns: (u64, u64),
    /// The tokio runtime: the socket is registered with the reactor of the runtime that
    /// opened it, and its receive task runs there (one process may run several runtimes).
    runtime: tokio::runtime::Id,
    ifindex: u32,
    ifname: String,
    src: IpAddr,
    multicast: bool,
}

impl Key {
    /// The key of an instance on `ifname` (index `ifindex`) sending from `src`, in the calling
    /// thread's network namespace and tokio runtime (panics outside a runtime).
    pub(super) fn new(ifname: &str, ifindex: u32, src: IpAddr, multicast: bool) -> Key {
        Key {
            netns: netns_id(),
            runtime: tokio::runtime::Handle::current().id(),
            ifindex,
            ifname: ifname.to_string(),
            src,
            multicast,
        }
    }
}

fn netns_id() -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/thread-self/ns/net").map_or((0, 0), |m| (m.dev(), m.ino()))
}

/// A registered instance's way to the routes table; the sender and the discard counter.
struct Route {
    id: u64,
    tx: mpsc::Sender<Delivery>,
    discarded: Arc<AtomicU64>,
}

/// VRID -> the instances of that VRID on one socket (normally one).
type Routes = BTreeMap<u8, Vec<Route>>;

/// One shared socket: alive while a [`Membership`] holds it.
struct Shared {
    socket: Arc<VrrpSocket>,
    routes: Arc<Mutex<Routes>>,
    task: AbortHandle,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The last instance is gone: the receive task ends and with it the socket.
        self.task.abort();
    }
}

fn registry() -> &'static Mutex<HashMap<Key, Weak<Shared>>> {
    static REGISTRY: std::sync::OnceLock<Mutex<HashMap<Key, Weak<Shared>>>> =
        std::sync::OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// One instance's place on a shared socket: its deliveries, and the socket to send on.
/// Dropping it unregisters the instance.
pub(super) struct Membership {
    shared: Arc<Shared>,
    vrid: u8,
    id: u64,
    rx: mpsc::Receiver<Delivery>,
    discarded: Arc<AtomicU64>,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("vrid", &self.vrid)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Membership {
    /// Registers VRID `vrid` on the socket of `key`, opening the socket and starting its
    /// receive task when this is the first instance on it. Must be called inside a tokio
    /// runtime. Fails only when the socket has to be opened and cannot be.
    pub(super) fn join(key: Key, vrid: u8) -> Result<Membership, NetError> {
        let mut reg = registry().lock().unwrap_or_else(PoisonError::into_inner);
        reg.retain(|_, w| w.strong_count() > 0);
        let live = reg
            .get(&key)
            .and_then(Weak::upgrade)
            .filter(|s| !s.task.is_finished());
        let shared = match live {
            Some(s) => s,
            None => {
                let s = Arc::new(open(&key)?);
                reg.insert(key, Arc::downgrade(&s));
                s
            }
        };
        drop(reg);
        let (tx, rx) = mpsc::channel(QUEUE);
        let id = next_id();
        let discarded = Arc::new(AtomicU64::new(0));
        lock(&shared.routes).entry(vrid).or_default().push(Route {
            id,
            tx,
            discarded: discarded.clone(),
        });
        Ok(Membership {
            shared,
            vrid,
            id,
            rx,
            discarded,
        })
    }

    /// The shared socket, for sending adverts.
    pub(super) fn socket(&self) -> &VrrpSocket {
        &self.shared.socket
    }

    /// The next delivery for this instance (pending forever once the task has ended, which
    /// happens only with its runtime).
    pub(super) async fn recv(&mut self) -> Delivery {
        match self.rx.recv().await {
            Some(d) => d,
            None => std::future::pending().await,
        }
    }

    /// Datagrams discarded for this instance since the last call because its queue was full.
    pub(super) fn take_discarded(&self) -> u64 {
        self.discarded.swap(0, Ordering::Relaxed)
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        let mut routes = lock(&self.shared.routes);
        if let Some(list) = routes.get_mut(&self.vrid) {
            list.retain(|r| r.id != self.id);
            if list.is_empty() {
                routes.remove(&self.vrid);
            }
        }
        // `self.shared` drops after this: the last membership's drop ends the task.
    }
}

fn lock(routes: &Mutex<Routes>) -> std::sync::MutexGuard<'_, Routes> {
    routes.lock().unwrap_or_else(PoisonError::into_inner)
}

fn open(key: &Key) -> Result<Shared, NetError> {
    let socket = Arc::new(VrrpSocket::open(SocketConfig {
        ifname: key.ifname.clone(),
        ifindex: key.ifindex,
        src: key.src,
        // The peers are each instance's own (its destinations and its source filter): the
        // socket only needs the mode.
        transport: if key.multicast {
            Transport::Multicast
        } else {
            Transport::Unicast(Vec::new())
        },
    })?);
    let routes = Arc::new(Mutex::new(Routes::new()));
    let task = tokio::spawn(receive(socket.clone(), routes.clone())).abort_handle();
    tracing::debug!(interface = %key.ifname, src = %key.src, multicast = key.multicast,
        "VRRP socket opened");
    Ok(Shared {
        socket,
        routes,
        task,
    })
}

/// The receive task: reads the socket and dispatches until aborted.
async fn receive(socket: Arc<VrrpSocket>, routes: Arc<Mutex<Routes>>) {
    loop {
        let d = match socket.recv().await {
            Err(e) => Delivery::RecvFailed(Arc::new(e)),
            Ok(Err(h)) => Delivery::Malformed(h),
            Ok(Ok(p)) => Delivery::Datagram(p),
        };
        let failed = matches!(d, Delivery::RecvFailed(_));
        dispatch(&lock(&routes), d);
        if failed {
            tokio::time::sleep(RX_ERROR_PAUSE).await;
        }
    }
}

/// Hands `d` to the instances of its VRID (byte 1 of a VRRP message, v2 and v3 alike), or to
/// every instance when no instance has that VRID or there is none to read.
fn dispatch(routes: &Routes, d: Delivery) {
    let vrid = match &d {
        Delivery::Datagram(p) => p.payload.get(1).copied(),
        _ => None,
    };
    match vrid.and_then(|v| routes.get(&v)) {
        Some(list) => list.iter().for_each(|r| deliver(r, d.clone())),
        None => routes
            .values()
            .flatten()
            .for_each(|r| deliver(r, d.clone())),
    }
}

fn deliver(r: &Route, d: Delivery) {
    if let Err(mpsc::error::TrySendError::Full(_)) = r.tx.try_send(d) {
        r.discarded.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(routes: &mut Routes, vrid: u8) -> mpsc::Receiver<Delivery> {
        let (tx, rx) = mpsc::channel(2);
        routes.entry(vrid).or_default().push(Route {
            id: next_id(),
            tx,
            discarded: Arc::new(AtomicU64::new(0)),
        });
        rx
    }

    fn datagram(payload: &[u8]) -> Delivery {
        Delivery::Datagram(Received {
            src: "192.0.2.1".parse().unwrap(),
            dst: "224.0.0.18".parse().unwrap(),
            ttl: 255,
            payload: payload.to_vec(),
        })
    }

    fn count(rx: &mut mpsc::Receiver<Delivery>) -> usize {
        let mut n = 0;
        while rx.try_recv().is_ok() {
            n += 1;
        }
        n
    }

    #[test]
    fn a_datagram_reaches_only_the_instance_of_its_vrid() {
        let mut routes = Routes::new();
        let mut a = route(&mut routes, 7);
        let mut b = route(&mut routes, 9);
        dispatch(&routes, datagram(&[0x31, 7, 100, 1]));
        assert_eq!((count(&mut a), count(&mut b)), (1, 0));
        dispatch(&routes, datagram(&[0x31, 9, 100, 1]));
        assert_eq!((count(&mut a), count(&mut b)), (0, 1));
    }

    #[test]
    fn what_no_instance_takes_reaches_every_instance() {
        let mut routes = Routes::new();
        let mut a = route(&mut routes, 7);
        let mut b = route(&mut routes, 9);
        // A VRID configured nowhere on the socket, a payload without a VRID byte, an IP
        // header error and a failed receive: each instance counts it.
        dispatch(&routes, datagram(&[0x31, 99, 100, 1]));
        dispatch(&routes, datagram(&[0x31]));
        dispatch(&routes, Delivery::Malformed(IpHeaderError::Short(3)));
        dispatch(
            &routes,
            Delivery::RecvFailed(Arc::new(io::Error::other("test"))),
        );
        assert_eq!(count(&mut a), 2, "queue of 2: the rest are discarded");
        assert_eq!(count(&mut b), 2);
        let discarded: u64 = routes
            .values()
            .flatten()
            .map(|r| r.discarded.load(Ordering::Relaxed))
            .sum();
        assert_eq!(discarded, 4);
    }

    #[test]
    fn two_instances_of_one_vrid_both_receive() {
        let mut routes = Routes::new();
        let mut a = route(&mut routes, 7);
        let mut b = route(&mut routes, 7);
        dispatch(&routes, datagram(&[0x21, 7, 100, 1]));
        assert_eq!((count(&mut a), count(&mut b)), (1, 1));
    }

    #[test]
    fn instances_share_a_socket_and_the_last_one_closes_it() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            // Opening a raw socket needs CAP_NET_RAW: without it there is nothing to share.
            let key = Key::new("lo", 1, "127.0.0.1".parse().unwrap(), true);
            let Ok(a) = Membership::join(key.clone(), 7) else {
                return;
            };
            let b = Membership::join(key.clone(), 9).expect("joins the open socket");
            assert!(Arc::ptr_eq(&a.shared, &b.shared), "one socket for both");
            let task = a.shared.task.clone();
            assert_eq!(lock(&a.shared.routes).len(), 2);
            drop(a);
            assert_eq!(lock(&b.shared.routes).len(), 1);
            assert!(!task.is_finished());
            drop(b);
            tokio::task::yield_now().await;
            assert!(task.is_finished(), "the last one ends the receive task");
            assert!(registry()
                .lock()
                .unwrap()
                .get(&key)
                .is_none_or(|w| w.strong_count() == 0));
        });
    }
}
