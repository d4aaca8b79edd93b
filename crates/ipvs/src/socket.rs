//! The netlink socket under [`crate::Conn`]: neli's low-level [`NlSocket`], sized for batches.
//!
//! `/work/shared/dependency-findings.md` measured the ways of driving IPVS through neli 0.7.5: its
//! `NlRouter` (one `sendmsg` per request) and attribute builders cost 2-5x the plain-C floor on
//! tables, while requests packed by hand and sent on neli's low-level `NlSocket` inside a tokio
//! `AsyncFd` came within ~1.2x. So this crate writes its own request bytes (`codec`) and uses
//! neli for the socket itself (`socket(2)`, `bind(2)`, `send(2)`, `recvfrom(2)`, non-blocking
//! mode, `SO_RCVBUF`) and for the one control request (`codec::request::encode_get_family`).
//!
//! neli does not wrap the options a batch depends on: `SO_RCVBUFFORCE` (a receive buffer above
//! `net.core.rmem_max`, so that a window of thousands of acks fits: see `conn`), `SO_SNDBUFFORCE`
//! (a packed `send` of up to 128 KiB must stay below `sk_sndbuf - 32`, `netlink_sendmsg`) and
//! reading back the buffer granted. They are set through `nix`, which takes an `AsFd`; neli's
//! `NlSocket` implements only `AsRawFd`, so [`borrow`] is the one `unsafe` of this crate.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use neli::consts::socket::{Msg, NlFamily};
use neli::socket::NlSocket;
use neli::utils::Groups;
use nix::sys::socket::{getsockopt, setsockopt, sockopt};

use crate::error::{Error, Result};

/// Send buffer asked for: a packed `send` must stay below `sk_sndbuf - 32` (`netlink_sendmsg`).
const SNDBUF_WANTED: usize = 1 << 20;

/// Borrows the descriptor of `sock` for as long as `sock` is borrowed.
///
/// Why `unsafe` (the crate is `#![deny(unsafe_code)]` and this is the only exception): neli 0.7.5's
/// `NlSocket` has no `AsFd`, and `nix`'s `setsockopt`/`getsockopt` take one.
#[allow(unsafe_code)]
fn borrow(sock: &NlSocket) -> BorrowedFd<'_> {
    // SAFETY: `NlSocket` owns its descriptor from `socket(2)` until its `Drop` closes it, and it
    // has no method that closes or replaces it while borrowed; the returned `BorrowedFd` cannot
    // outlive the `&NlSocket` it came from, so the descriptor is open for its whole lifetime.
    unsafe { BorrowedFd::borrow_raw(sock.as_raw_fd()) }
}

fn io_err(context: &'static str) -> impl Fn(io::Error) -> Error {
    move |source| Error::Socket { context, source }
}

fn nix_err(context: &'static str) -> impl Fn(nix::errno::Errno) -> Error {
    move |e| Error::Socket {
        context,
        source: io::Error::from(e),
    }
}

/// Opens a non-blocking, close-on-exec `NETLINK_GENERIC` socket bound to a kernel-chosen port and
/// sizes its buffers: a receive buffer of `rcvbuf` bytes (`SO_RCVBUFFORCE` first when `force`,
/// else neli's `SO_RCVBUF`), and a send buffer for packed requests. Returns the socket and the
/// receive buffer the kernel granted.
pub(crate) fn open(rcvbuf: Option<usize>, force: bool) -> Result<(NlSocket, usize)> {
    let sock = NlSocket::connect(NlFamily::Generic, None, Groups::empty())
        .map_err(io_err("open and bind a generic netlink socket"))?;
    sock.nonblock().map_err(io_err("O_NONBLOCK"))?;
    let granted = {
        let fd = borrow(&sock);
        if let Some(bytes) = rcvbuf {
            if !(force && setsockopt(&fd, sockopt::RcvBufForce, &bytes).is_ok()) {
                sock.set_recv_buffer_size(bytes)
                    .map_err(io_err("SO_RCVBUF"))?;
            }
            if setsockopt(&fd, sockopt::SndBufForce, &SNDBUF_WANTED).is_err() {
                // Unprivileged: as much as `net.core.wmem_max` allows; `conn` packs less then.
                let _ = setsockopt(&fd, sockopt::SndBuf, &SNDBUF_WANTED);
            }
        }
        getsockopt(&fd, sockopt::RcvBuf).map_err(nix_err("getsockopt SO_RCVBUF"))?
    };
    Ok((sock, granted))
}

/// One `send(2)` of `buf` (a datagram: delivered whole or not at all), retried on EINTR.
pub(crate) fn send(sock: &NlSocket, buf: &[u8]) -> io::Result<usize> {
    loop {
        match sock.send(buf, Msg::empty()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// One `recvfrom(2)` into `buf`, retried on EINTR; `dontwait` adds `MSG_DONTWAIT`.
pub(crate) fn recv(sock: &NlSocket, buf: &mut [u8], dontwait: bool) -> io::Result<usize> {
    let flags = if dontwait {
        Msg::DONTWAIT
    } else {
        Msg::empty()
    };
    loop {
        match sock.recv(&mut *buf, flags) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other.map(|(n, _groups)| n),
        }
    }
}
