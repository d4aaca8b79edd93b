//! One long-lived generic-netlink socket to the kernel's IPVS (the I/O edge of this crate).
//!
//! - The family id of `"IPVS"` is resolved once, at [`Conn::connect`] (libipvs, behind ipvsadm,
//!   resolves it for every operation).
//! - [`Conn::apply`] sends a batch: requests packed many to a `send`, success silent (no
//!   `NLM_F_ACK`: the kernel runs a datagram's requests inside our `send` and queues an error
//!   for each refused one, so the errors read after it are all there is), errors matched by
//!   sequence number, and the report says for each operation Ok, Failed (which errno, what it
//!   means) or Unknown (a reply was lost: re-read the table, never retry blindly). One ack per
//!   request cost the plain-C floor about a third of its time (an skb per ack, one `recv` each:
//!   docs/benchmarks.md, "Silent batches").
//! - Why the window: `netlink_unicast` in the kernel drops a reply when the receiving socket's
//!   buffer is full and flags the socket with ENOBUFS, while the operation itself still applied.
//!   A datagram carries at most a window of requests, sized from the receive buffer actually
//!   granted (`SO_RCVBUFFORCE` as root, else `SO_RCVBUF`), so that all their replies fit.
//!
//! - Replies are never waited for: the kernel queues them inside our `send` (and the next dump
//!   chunk inside our `recv`), so an empty queue means no more is coming (see `recv_one`).
//!
//! The socket is neli's low-level `NlSocket` (`crate::socket`) inside a tokio `AsyncFd`, plus two
//! idle sockets of the same namespace for the snapshot's verifying passes (`dump`).

use std::io;
use std::sync::{Arc, Mutex};

use neli::socket::NlSocket;
use tokio::io::unix::AsyncFd;

use crate::codec::info::{decode_family_id, decode_info, decode_timeouts};
use crate::codec::msg::{Message, MessageIter, NLMSG_DONE, NLMSG_ERROR};
use crate::codec::request::{encode_get, encode_get_family};
use crate::codec::{cmd, daemon::decode_daemon_msg};
use crate::error::{DecodeError, Errno, Error, Result};
use crate::model::{Destination, Info, SyncDaemon, Timeouts};
use crate::socket;

mod batch;
mod prepared;

pub use batch::{BatchReport, Outcome};
pub use prepared::PreparedBatch;

/// Receive buffer asked for (`SO_RCVBUFFORCE`, root only; the kernel doubles it).
const RCVBUF_WANTED: usize = 8 << 20;
/// Largest packed `send`.
pub(crate) const MAX_SEND: usize = 128 << 10;
/// Bytes of receive buffer budgeted per request of a datagram (an ack's `truesize` is ~768 bytes; an
/// error ack echoes the request and is larger).
const BYTES_PER_ACK: usize = 2048;
/// Read sizes of the verifying sockets: dumps chunked at up to 24 KiB and 28 KiB instead of ~32
/// KiB (`netlink_dump` trims each chunk to the largest read seen), so that the three dumps of a
/// snapshot have their chunk boundaries at different services (about 81, 95 and 108 plain IPv4
/// services per chunk). Not smaller:
/// each chunk of a services dump makes the kernel walk the service table from its start
/// (`ip_vs_genl_dump_services` resumes by position), so the walking grows with chunks x services;
/// with 4 KiB and 12 KiB reads it was most of the kernel's time in a snapshot of 10,000 services.
const VERIFY_RECV_LENS: [usize; 2] = [24 << 10, 28 << 10];
/// Receive buffer for one datagram (dump skbs are at most 32 KiB: `netlink_recvmsg`).
const RECV_BUF: usize = 64 << 10;

/// A connection to the kernel's IPVS over generic netlink. One request stream at a time (every
/// method takes `&mut self`); one dump at a time, as the kernel requires.
pub struct Conn {
    fd: AsyncFd<NlSocket>,
    family: u16,
    seq: u32,
    window: usize,
    rcvbuf: usize,
    rx: Vec<u8>,
    tx: Vec<u8>,
    /// A dump whose `NLMSG_DONE` was not read yet (its future was dropped).
    dump_open: Option<u32>,
    /// Sockets of the same namespace that read in smaller chunks, for verifying passes. Shared
    /// with the thread that runs the verifying services dumps of a snapshot (`dump`), which
    /// holds the lock while it reads; a snapshot whose future was dropped leaves them here.
    verifiers: Arc<Mutex<Vec<Conn>>>,
    /// Reused while decoding a real-server dump (`dump`).
    dest_scratch: Vec<crate::model::Destination>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::os::fd::AsRawFd;
        f.debug_struct("Conn")
            .field("fd", &self.fd.get_ref().as_raw_fd())
            .field("family", &self.family)
            .field("seq", &self.seq)
            .field("window", &self.window)
            .field("rcvbuf", &self.rcvbuf)
            .finish_non_exhaustive()
    }
}

impl Conn {
    /// Opens the socket in the calling thread's network namespace and resolves the family.
    ///
    /// Fails with [`Error::NotAvailable`] when the kernel has no IPVS ("load ip_vs").
    pub async fn connect() -> Result<Conn> {
        Self::connect_inner(None).await
    }

    /// Like [`Conn::connect`] but with a receive buffer of `bytes` (`SO_RCVBUF`, not forced):
    /// for tests of the flow control and for processes that must stay small.
    pub async fn connect_with_rcvbuf(bytes: usize) -> Result<Conn> {
        Self::connect_inner(Some(bytes)).await
    }

    async fn connect_inner(rcvbuf: Option<usize>) -> Result<Conn> {
        let (fd, rcvbuf) = socket::open(Some(rcvbuf.unwrap_or(RCVBUF_WANTED)), rcvbuf.is_none())?;
        let mut conn = Conn::from_fd(fd, rcvbuf, RECV_BUF)?;
        conn.family = conn.resolve_family().await?;
        // The verifying sockets are opened now, in this thread's namespace (a snapshot may run
        // on another thread later). Each reads with a smaller buffer, so the kernel fills its
        // dumps in smaller chunks (`netlink_dump` sizes them by the largest read seen): their
        // chunk boundaries, where torn dumps lose or repeat entries, fall elsewhere.
        let mut verifiers = Vec::with_capacity(VERIFY_RECV_LENS.len());
        for recv_len in VERIFY_RECV_LENS {
            let (fd, rcvbuf) = socket::open(None, false)?;
            let mut v = Conn::from_fd(fd, rcvbuf, recv_len)?;
            v.family = conn.family;
            verifiers.push(v);
        }
        conn.verifiers = Arc::new(Mutex::new(verifiers));
        Ok(conn)
    }

    fn from_fd(fd: NlSocket, rcvbuf: usize, recv_len: usize) -> Result<Conn> {
        // `AsyncFd::new` is deprecated because a borrowed fd could be closed under the reactor;
        // here the `AsyncFd` owns the `NlSocket`, which stays open until the `AsyncFd` drops it
        // (deregistering first): the contract of the (unsafe) `AsyncFd::register` holds.
        #[allow(deprecated)]
        let fd = AsyncFd::new(fd).map_err(|source| Error::Socket {
            context: "register with tokio",
            source,
        })?;
        Ok(Conn {
            fd,
            family: 0,
            seq: std::process::id().wrapping_mul(7919),
            window: (rcvbuf / BYTES_PER_ACK).clamp(8, 4096),
            rcvbuf,
            rx: vec![0; recv_len],
            tx: Vec::with_capacity(MAX_SEND + 4096),
            dump_open: None,
            verifiers: Arc::default(),
            dest_scratch: Vec::new(),
        })
    }

    /// The family id the kernel gave "IPVS" in this namespace.
    pub fn family(&self) -> u16 {
        self.family
    }

    /// How many requests [`Conn::apply`] packs into one datagram at most (all their replies fit
    /// in the receive buffer).
    pub fn window(&self) -> usize {
        self.window
    }

    /// The receive buffer the kernel granted (bytes, as `SO_RCVBUF` reports it).
    pub fn rcvbuf(&self) -> usize {
        self.rcvbuf
    }

    /// Sets the window (at least 1): more or fewer requests per datagram than the receive
    /// buffer allows, for tests of the flow control.
    pub fn set_window(&mut self, window: usize) {
        self.window = window.max(1);
    }

    pub(crate) fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    pub(crate) async fn send_buf(&mut self) -> Result<()> {
        let mut off = 0;
        // First without the reactor (a netlink send to the kernel rarely blocks).
        match socket::send(self.fd.get_ref(), &self.tx) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(source) => {
                return Err(Error::Socket {
                    context: "send",
                    source,
                })
            }
            Ok(n) => off = n,
        }
        while off < self.tx.len() {
            let mut guard = self.fd.writable().await.map_err(|source| Error::Socket {
                context: "poll writable",
                source,
            })?;
            let chunk = self.tx.get(off..).unwrap_or_default();
            match guard.try_io(|fd| socket::send(fd.get_ref(), chunk)) {
                Ok(Ok(n)) => off += n,
                Ok(Err(source)) => {
                    return Err(Error::Socket {
                        context: "send",
                        source,
                    })
                }
                Err(_would_block) => continue,
            }
        }
        self.tx.clear();
        Ok(())
    }

    /// [`Conn::send_buf`] without the reactor, for the verifying thread (`dump`), which has no
    /// runtime: a request to the kernel is consumed inside `send(2)` (`netlink_unicast_kernel`),
    /// so `EAGAIN` is not expected; should it come, the thread yields and tries again, a bounded
    /// number of times.
    pub(crate) fn send_buf_blocking(&mut self) -> Result<()> {
        let mut off = 0;
        let mut tries = 0u32;
        while off < self.tx.len() {
            let chunk = self.tx.get(off..).unwrap_or_default();
            match socket::send(self.fd.get_ref(), chunk) {
                Ok(n) => off += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && tries < 10_000 => {
                    tries += 1;
                    std::thread::yield_now();
                }
                Err(source) => {
                    return Err(Error::Socket {
                        context: "send",
                        source,
                    })
                }
            }
        }
        self.tx.clear();
        Ok(())
    }

    /// Receives one datagram into `self.rx`; returns its length, or `None` when the socket's
    /// queue is empty. ENOBUFS comes back as `Err(Error::Socket)` with that errno.
    ///
    /// Never waits: the kernel handles a generic-netlink request inside our `send`
    /// (`netlink_unicast_kernel` calls `genl_rcv`) and queues its replies before `send` returns,
    /// and it fills the next chunk of a dump inside our `recv` (`netlink_recvmsg` calls
    /// `netlink_dump`). So an empty queue means that nothing more will come for what was sent:
    /// a request the kernel did not answer stays unanswered (for example `IPVS_CMD_DEL_DAEMON`
    /// when `kthread_stop` returns EINTR: `netlink_rcv_skb` sends no ack for EINTR), and waiting
    /// for it would hang forever.
    pub(crate) fn recv_one(&mut self) -> Result<Option<usize>> {
        match socket::recv(self.fd.get_ref(), &mut self.rx, false) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(source) => Err(Error::Socket {
                context: "recv",
                source,
            }),
            Ok(n) => Ok(Some(n)),
        }
    }

    /// Reads until the `NLMSG_DONE` of a dump whose future was dropped, so the socket can start
    /// another dump (the kernel refuses a second one with EBUSY). Never waits (see `recv_one`),
    /// so it needs no runtime.
    pub(crate) fn finish_open_dump(&mut self) -> Result<()> {
        while let Some(seq) = self.dump_open {
            let n = match self.recv_one() {
                Ok(Some(n)) => n,
                Ok(None) => {
                    self.dump_open = None;
                    break;
                }
                Err(e) if is_enobufs(&e) => continue,
                Err(e) => return Err(e),
            };
            for m in MessageIter::new(self.rx.get(..n).unwrap_or_default()) {
                let m = m?;
                if m.seq == seq && (m.ty == NLMSG_DONE || m.ty == NLMSG_ERROR) {
                    self.dump_open = None;
                }
            }
        }
        Ok(())
    }

    /// Sends one request built by `build` (with `NLM_F_ACK`) and reads until its ack; each
    /// reply message with its sequence number is passed to `each`.
    async fn request<F>(
        &mut self,
        what: &str,
        build: impl FnOnce(&mut Vec<u8>, u32) -> Result<()>,
        mut each: F,
    ) -> Result<()>
    where
        F: FnMut(&Message<'_>) -> Result<()>,
    {
        self.finish_open_dump()?;
        let seq = self.next_seq();
        self.tx.clear();
        build(&mut self.tx, seq)?;
        self.send_buf().await?;
        loop {
            let n = match self.recv_one() {
                Ok(Some(n)) => n,
                Ok(None) => {
                    return Err(Error::Protocol(format!("{what}: the kernel sent no reply")))
                }
                Err(e) if is_enobufs(&e) => {
                    return Err(Error::Lost {
                        request: what.to_string(),
                    })
                }
                Err(e) => return Err(e),
            };
            for m in MessageIter::new(self.rx.get(..n).unwrap_or_default()) {
                let m = m?;
                if m.seq != seq {
                    continue;
                }
                if m.ty == NLMSG_ERROR {
                    let ack = m.ack()?;
                    if ack.error == 0 {
                        return Ok(());
                    }
                    return Err(Error::Request {
                        request: what.to_string(),
                        errno: Errno(ack.error.saturating_neg()),
                    });
                }
                each(&m)?;
            }
        }
    }

    async fn resolve_family(&mut self) -> Result<u16> {
        let mut id = None;
        let r = self
            .request(
                "resolve generic netlink family IPVS",
                |b, seq| Ok(encode_get_family(b, seq)?),
                |m| {
                    id = Some(decode_family_id(m.genl()?.attrs)?);
                    Ok(())
                },
            )
            .await;
        match r {
            Err(Error::Request { errno, .. }) if errno == Errno::ENOENT => Err(Error::NotAvailable),
            Err(e) => Err(e),
            Ok(()) => id.ok_or(Error::NotAvailable),
        }
    }

    /// `IPVS_CMD_GET_INFO`: version and connection table size.
    pub async fn info(&mut self) -> Result<Info> {
        self.get_one("get IPVS info", cmd::GET_INFO, "GET_INFO", decode_info)
            .await
    }

    /// `IPVS_CMD_GET_CONFIG`: the connection timeouts.
    pub async fn timeouts(&mut self) -> Result<Timeouts> {
        self.get_one(
            "get IPVS timeouts",
            cmd::GET_CONFIG,
            "GET_CONFIG",
            decode_timeouts,
        )
        .await
    }

    /// One attribute-less GET (`command`) answered by one message, decoded by `decode`; `what`
    /// names the request in errors, `name` the command in a protocol error (no reply before the
    /// ack).
    async fn get_one<T>(
        &mut self,
        what: &str,
        command: u8,
        name: &str,
        decode: impl Fn(&[u8]) -> std::result::Result<T, DecodeError>,
    ) -> Result<T> {
        let family = self.family;
        let mut out = None;
        self.request(
            what,
            |b, seq| {
                encode_get(b, family, seq, command);
                Ok(())
            },
            |m| {
                out = Some(decode(m.genl()?.attrs)?);
                Ok(())
            },
        )
        .await?;
        out.ok_or_else(|| Error::Protocol(format!("{name}: no reply before the ack")))
    }

    /// `IPVS_CMD_GET_DAEMON` (a dump): the running sync daemons.
    pub async fn daemons(&mut self) -> Result<Vec<SyncDaemon>> {
        let family = self.family;
        let mut out = Vec::new();
        self.dump(
            &|| "list sync daemons".to_string(),
            |b, seq| crate::codec::request::encode_dump_daemons(b, family, seq),
            |m| {
                out.push(decode_daemon_msg(m.genl()?.attrs)?.daemon);
                Ok(())
            },
        )
        .await?;
        Ok(out)
    }

    /// The verifying sockets (see `dump`), shared with the thread that runs a snapshot's
    /// verifying services dumps, which holds the lock while it reads.
    pub(crate) fn verifiers(&self) -> Arc<Mutex<Vec<Conn>>> {
        Arc::clone(&self.verifiers)
    }

    /// The buffer reused while decoding real-server dumps (empty when a dump holds it).
    pub(crate) fn take_dest_scratch(&mut self) -> Vec<Destination> {
        std::mem::take(&mut self.dest_scratch)
    }

    /// Gives the buffer of [`Conn::take_dest_scratch`] back for the next dump.
    pub(crate) fn put_dest_scratch(&mut self, scratch: Vec<Destination>) {
        self.dest_scratch = scratch;
    }

    /// Sends the requests `build` appends to an empty buffer, packed into one `send` (at most
    /// [`MAX_SEND`] bytes: the caller stops appending there).
    pub(crate) async fn send_packed(&mut self, build: impl FnOnce(&mut Vec<u8>)) -> Result<()> {
        self.tx.clear();
        build(&mut self.tx);
        self.send_buf().await
    }

    /// Receives one datagram and passes each of its messages to `each`; `Ok(false)` when the
    /// queue is empty (nothing more will come: see `recv_one`).
    pub(crate) fn recv_each(
        &mut self,
        mut each: impl FnMut(&Message<'_>) -> Result<()>,
    ) -> Result<bool> {
        let Some(n) = self.recv_one()? else {
            return Ok(false);
        };
        for m in MessageIter::new(self.rx.get(..n).unwrap_or_default()) {
            each(&m?)?;
        }
        Ok(true)
    }

    /// Runs one dump: sends the request built by `build`, passes each reply message to `each`,
    /// and returns how many datagrams carried data (1 means the kernel filled it atomically).
    pub(crate) async fn dump<F>(
        &mut self,
        what: &(dyn Fn() -> String + Sync),
        build: impl FnOnce(&mut Vec<u8>, u32),
        each: F,
    ) -> Result<usize>
    where
        F: FnMut(&Message<'_>) -> Result<()>,
    {
        self.finish_open_dump()?;
        let seq = self.next_seq();
        self.tx.clear();
        build(&mut self.tx, seq);
        self.send_buf().await?;
        self.read_dump(seq, what, each)
    }

    /// [`Conn::dump`] for a thread without a runtime (the verifying passes).
    pub(crate) fn dump_blocking<F>(
        &mut self,
        what: &(dyn Fn() -> String + Sync),
        build: impl FnOnce(&mut Vec<u8>, u32),
        each: F,
    ) -> Result<usize>
    where
        F: FnMut(&Message<'_>) -> Result<()>,
    {
        self.finish_open_dump()?;
        let seq = self.next_seq();
        self.tx.clear();
        build(&mut self.tx, seq);
        self.send_buf_blocking()?;
        self.read_dump(seq, what, each)
    }

    /// Reads the replies of the dump `seq` up to its `NLMSG_DONE` (or error). Never waits: the
    /// kernel fills each chunk inside our `recv` (see `Conn::recv_one`).
    fn read_dump<F>(
        &mut self,
        seq: u32,
        what: &(dyn Fn() -> String + Sync),
        mut each: F,
    ) -> Result<usize>
    where
        F: FnMut(&Message<'_>) -> Result<()>,
    {
        self.dump_open = Some(seq);
        let mut datagrams = 0;
        loop {
            let n = match self.recv_one() {
                Ok(Some(n)) => n,
                Ok(None) => {
                    self.dump_open = None;
                    return Err(Error::Protocol(format!(
                        "{}: the dump ended without NLMSG_DONE",
                        what()
                    )));
                }
                Err(e) if is_enobufs(&e) => return Err(Error::Lost { request: what() }),
                Err(e) => return Err(e),
            };
            let mut data = false;
            let mut finished = None;
            for m in MessageIter::new(self.rx.get(..n).unwrap_or_default()) {
                let m = m?;
                if m.seq != seq {
                    continue;
                }
                match m.ty {
                    NLMSG_DONE => {
                        finished = Some(Ok(()));
                        break;
                    }
                    NLMSG_ERROR => {
                        let ack = m.ack()?;
                        finished = Some(if ack.error == 0 {
                            Ok(())
                        } else {
                            Err(Error::Request {
                                request: what(),
                                errno: Errno(ack.error.saturating_neg()),
                            })
                        });
                        break;
                    }
                    _ => {
                        data = true;
                        each(&m)?;
                    }
                }
            }
            datagrams += usize::from(data);
            if let Some(r) = finished {
                self.dump_open = None;
                return r.map(|()| datagrams);
            }
        }
    }
}

/// ENOBUFS: the kernel dropped replies because our receive buffer was full (`netlink_overrun`).
fn libc_enobufs() -> i32 {
    nix::errno::Errno::ENOBUFS as i32
}

pub(crate) fn is_enobufs(e: &Error) -> bool {
    matches!(e, Error::Socket { source, .. } if source.raw_os_error() == Some(libc_enobufs()))
}
