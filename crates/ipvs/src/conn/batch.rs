//! Batches: [`Conn::apply`] packs operations many requests to a `send`, success silent (no
//! `NLM_F_ACK`), the errors read after each `send` and matched by sequence number, and a report
//! with one [`Outcome`] per operation (see [`Conn::apply_with`] for why silence after a `send`
//! means applied).

use serde::Serialize;

use super::{is_enobufs, libc_enobufs, Conn, MAX_SEND};
use crate::codec::msg::{Message, MessageIter, NLMSG_ERROR, NLMSG_OVERRUN, NLM_F_ACK};
use crate::codec::request::{encode_op, op_kind};
use crate::error::{Errno, OpError, Result};
use crate::ops::Op;

use super::PreparedBatch;
use crate::socket;

/// What happened to one operation of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum Outcome {
    /// The kernel applied it: no error came back for it (an ack, for the sync-daemon
    /// operations).
    Ok,
    /// The kernel refused it.
    Failed(OpError),
    /// Sent, but a reply was lost (ENOBUFS), unreadable, or the socket failed before its
    /// datagram's replies were read: it may or may not have applied.
    Unknown,
    /// Not sent, because an earlier failure of the socket stopped the batch.
    NotSent,
}

/// The result of [`Conn::apply`]: one outcome per operation, in order. A batch that returned
/// `Ok` may still have refused operations: look at [`BatchReport::failures`].
#[must_use = "a batch's report carries the operations the kernel refused"]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchReport {
    /// One outcome per operation, in the order given.
    pub outcomes: Vec<Outcome>,
    /// Why the batch stopped early (lost replies, a socket error), if it did.
    pub interrupted: Option<String>,
}

impl BatchReport {
    /// True when every operation applied.
    pub fn all_ok(&self) -> bool {
        self.outcomes.iter().all(|o| *o == Outcome::Ok)
    }

    /// The refused operations with their index in the batch.
    pub fn failures(&self) -> impl Iterator<Item = (usize, &OpError)> {
        self.outcomes
            .iter()
            .enumerate()
            .filter_map(|(i, o)| match o {
                Outcome::Failed(e) => Some((i, e)),
                _ => None,
            })
    }

    /// How many operations applied.
    pub fn ok_count(&self) -> usize {
        self.outcomes.iter().filter(|o| **o == Outcome::Ok).count()
    }

    /// How many operations have an unknown result (sent, replies lost).
    pub fn unknown_count(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| **o == Outcome::Unknown)
            .count()
    }

    /// How many operations were not sent.
    pub fn not_sent_count(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| **o == Outcome::NotSent)
            .count()
    }
}

impl Conn {
    /// Applies `ops` as one batch, in order, and reports each operation's outcome.
    ///
    /// Returns `Err` only when nothing could be sent; once requests are on the wire the report
    /// carries what happened to each (a socket failure mid-batch makes those whose replies
    /// were not read `Unknown` and the rest `NotSent`, with the reason in `interrupted`).
    pub async fn apply(&mut self, ops: &[Op]) -> Result<BatchReport> {
        let family = self.family;
        self.apply_with(ops, |tx, i, seq| {
            if let Some(op) = ops.get(i) {
                encode_op(tx, family, seq, op);
            }
        })
        .await
    }

    /// [`Conn::apply`] of a batch encoded ahead of time: each request is copied and its family
    /// and sequence number patched, nothing is encoded now.
    pub async fn apply_prepared(&mut self, batch: &PreparedBatch) -> Result<BatchReport> {
        let family = self.family;
        self.apply_with(batch.ops(), |tx, i, seq| batch.write(i, tx, family, seq))
            .await
    }

    /// The batch loop: `write(tx, i, seq)` appends operation `i`'s request (encoded with
    /// `NLM_F_ACK`; the flag is cleared here for every operation that does not need it).
    ///
    /// Success is silent: a request without `NLM_F_ACK` gets a reply only when it fails
    /// (`netlink_rcv_skb` acks when `nlh->nlmsg_flags & NLM_F_ACK || err`). And the kernel
    /// handles a datagram inside our `send`: `netlink_unicast_kernel` calls the generic-netlink
    /// receive function, which runs every request of the datagram (`genl_rcv` ->
    /// `netlink_rcv_skb`) before `send` returns, queueing each error on this socket. So after
    /// each `send` the queued replies are read without waiting; a request of that datagram
    /// with no error among them applied. A reply the kernel could not queue (receive buffer
    /// full, or no memory for it) flags the socket with ENOBUFS (`netlink_overrun`, or
    /// `sk_err` in `netlink_ack`), which the same reading sees: then the datagram's requests
    /// without a reply are `Unknown`, never `Ok`, and the batch stops.
    ///
    /// The sync-daemon operations keep `NLM_F_ACK`: `netlink_rcv_skb` sends neither ack nor
    /// error when a handler returns EINTR, which `IPVS_CMD_DEL_DAEMON` can
    /// (`stop_sync_thread` -> `kthread_stop`), so for them silence proves nothing and only an
    /// ack is `Ok`. Every other IPVS command takes `__ip_vs_mutex` uninterruptibly
    /// (`ip_vs_genl_set_cmd`).
    ///
    /// A datagram carries at most [`Conn::window`] requests, so that all their error replies
    /// fit in the receive buffer.
    async fn apply_with(
        &mut self,
        ops: &[Op],
        mut write: impl FnMut(&mut Vec<u8>, usize, u32),
    ) -> Result<BatchReport> {
        self.finish_open_dump()?;
        let n = ops.len();
        let mut outcomes = vec![Outcome::NotSent; n];
        let base = self.seq.wrapping_add(1);
        self.seq = self.seq.wrapping_add(n as u32);
        let mut next = 0usize; // next op to send
        let mut interrupted = None;
        while next < n {
            self.tx.clear();
            let start = next;
            while next < n && next - start < self.window && self.tx.len() < MAX_SEND {
                let at = self.tx.len();
                write(&mut self.tx, next, base.wrapping_add(next as u32));
                if !ops.get(next).is_some_and(needs_ack) {
                    clear_ack_flag(&mut self.tx, at);
                }
                next += 1;
            }
            if let Err(e) = self.send_buf().await {
                // A netlink datagram is delivered whole or not at all.
                if start == 0 {
                    return Err(e);
                }
                interrupted = Some(e.to_string());
                break;
            }
            let sent = outcomes.get_mut(start..next).unwrap_or_default();
            for o in sent.iter_mut() {
                *o = Outcome::Unknown;
            }
            match self.read_replies(base, ops, &mut outcomes) {
                Ok(()) => {
                    let sent = outcomes.get_mut(start..next).unwrap_or_default();
                    for (o, op) in sent
                        .iter_mut()
                        .zip(ops.get(start..next).unwrap_or_default())
                    {
                        // No error reported: applied. An acked operation without its ack stays
                        // Unknown (the kernel sent none: see above).
                        if *o == Outcome::Unknown && !needs_ack(op) {
                            *o = Outcome::Ok;
                        }
                    }
                }
                Err(why) => {
                    interrupted = Some(why);
                    break;
                }
            }
        }
        Ok(BatchReport {
            outcomes,
            interrupted,
        })
    }

    /// Reads every reply queued after a `send`, without waiting, into `outcomes`. `Err` says
    /// why replies may be missing (ENOBUFS, an unreadable message, a socket error): the
    /// caller then trusts no silence. Never waits (see `recv_one`).
    fn read_replies(
        &mut self,
        base: u32,
        ops: &[Op],
        outcomes: &mut [Outcome],
    ) -> std::result::Result<(), String> {
        loop {
            let len = match self.recv_one() {
                Ok(Some(len)) => len,
                Ok(None) => return Ok(()),
                Err(e) if is_enobufs(&e) => {
                    // Replies were dropped. Collect what is still queued, then stop.
                    self.drain_replies(base, ops, outcomes);
                    return Err("replies lost (ENOBUFS): operations without a reply may or \
                                may not have applied; re-read the table"
                        .to_string());
                }
                Err(e) => return Err(e.to_string()),
            };
            let rx = self.rx.get(..len).unwrap_or_default();
            for m in MessageIter::new(rx) {
                match m {
                    Ok(m) => {
                        record_ack(&m, base, ops, outcomes);
                    }
                    // An error we cannot read would pass for a success: trust no silence.
                    Err(e) => return Err(format!("malformed reply from the kernel: {e}")),
                }
            }
        }
    }

    /// After ENOBUFS: reads every reply still queued, without waiting.
    fn drain_replies(&mut self, base: u32, ops: &[Op], outcomes: &mut [Outcome]) {
        loop {
            let res = loop {
                match socket::recv(self.fd.get_ref(), &mut self.rx, true) {
                    Err(e) if e.raw_os_error() == Some(libc_enobufs()) => continue,
                    other => break other,
                }
            };
            let Ok(len) = res else { return };
            let rx = self.rx.get(..len).unwrap_or_default();
            for m in MessageIter::new(rx).flatten() {
                record_ack(&m, base, ops, outcomes);
            }
        }
    }
}

/// Whether `op` must be sent with `NLM_F_ACK` (see [`Conn::apply_with`]).
fn needs_ack(op: &Op) -> bool {
    matches!(op, Op::StartDaemon(_) | Op::StopDaemon(_))
}

/// Clears `NLM_F_ACK` in the flags of the request that starts at `at` in `tx` (`nlmsghdr`:
/// length u32, type u16, flags u16, in host order).
fn clear_ack_flag(tx: &mut [u8], at: usize) {
    if let Some([lo, hi]) = tx.get_mut(at + 6..at + 8) {
        let v = u16::from_ne_bytes([*lo, *hi]) & !NLM_F_ACK;
        [*lo, *hi] = v.to_ne_bytes();
    }
}

/// Records the ack `m` in `outcomes` when it answers an operation of this batch that is still
/// waiting; returns that operation's index.
fn record_ack(m: &Message<'_>, base: u32, ops: &[Op], outcomes: &mut [Outcome]) -> Option<usize> {
    if m.ty != NLMSG_ERROR && m.ty != NLMSG_OVERRUN {
        return None;
    }
    let i = m.seq.wrapping_sub(base) as usize;
    let slot = outcomes.get_mut(i)?;
    if *slot != Outcome::Unknown {
        return None;
    }
    let ack = m.ack().ok()?;
    let op = ops.get(i)?;
    *slot = if ack.error == 0 {
        Outcome::Ok
    } else {
        Outcome::Failed(OpError {
            op: op.to_string(),
            kind: op_kind(op),
            errno: Errno(ack.error.saturating_neg()),
        })
    };
    Some(i)
}
