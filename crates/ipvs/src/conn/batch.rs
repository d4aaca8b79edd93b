//! Batches: [`Conn::apply`] pipelines operations, many requests to a `send`, a bounded window
//! in flight (see the `conn` module doc for why the window), acks matched by sequence number,
//! and a report with one [`Outcome`] per operation.

use serde::Serialize;

use super::{is_enobufs, libc_enobufs, Conn, MAX_SEND, REFILL_CHUNK};
use crate::codec::msg::{Message, MessageIter, NLMSG_ERROR, NLMSG_OVERRUN};
use crate::codec::request::{encode_op, op_kind};
use crate::error::{Errno, OpError, Result};
use crate::ops::Op;

use super::PreparedBatch;
use crate::socket;

/// What happened to one operation of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum Outcome {
    /// The kernel acknowledged it.
    Ok,
    /// The kernel refused it.
    Failed(OpError),
    /// Sent, but its ack was lost (ENOBUFS) or the socket failed: it may or may not have applied.
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
    /// Why the batch stopped early (lost acks, a socket error), if it did.
    pub interrupted: Option<String>,
}

impl BatchReport {
    /// True when every operation was acknowledged.
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

    /// How many operations were acknowledged.
    pub fn ok_count(&self) -> usize {
        self.outcomes.iter().filter(|o| **o == Outcome::Ok).count()
    }

    /// How many operations have an unknown result (sent, no ack).
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
    /// Applies `ops` as one pipelined batch, in order, and reports each operation's outcome.
    ///
    /// Returns `Err` only when nothing could be sent; once requests are on the wire the report
    /// carries what happened to each (a socket failure mid-batch makes the unacknowledged ones
    /// `Unknown` and the rest `NotSent`, with the reason in `interrupted`).
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

    /// The batch loop: `write(tx, i, seq)` appends operation `i`'s request.
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
        let mut inflight = 0usize;
        let mut settled = 0usize; // acknowledged, or known never to be
        let mut interrupted = None;
        while settled < next || next < n {
            // Refill the window in chunks (not one request per ack: one `send` per request would
            // double the system calls), or fill it when nothing is in flight.
            let refill = (self.window / 2).clamp(1, REFILL_CHUNK);
            if next < n && (inflight == 0 || inflight + refill <= self.window) {
                self.tx.clear();
                let chunk_start = next;
                while next < n && inflight < self.window && self.tx.len() < MAX_SEND {
                    write(&mut self.tx, next, base.wrapping_add(next as u32));
                    next += 1;
                    inflight += 1;
                }
                match self.send_buf().await {
                    Ok(()) => {
                        for o in outcomes.get_mut(chunk_start..next).unwrap_or_default() {
                            *o = Outcome::Unknown;
                        }
                    }
                    Err(e) => {
                        // A netlink datagram is delivered whole or not at all.
                        if chunk_start == 0 {
                            return Err(e);
                        }
                        interrupted = Some(e.to_string());
                        break;
                    }
                }
                continue;
            }
            let len = match self.recv_one() {
                Ok(Some(len)) => len,
                Ok(None) => {
                    // Everything sent was answered or never will be (see `recv_one`): those
                    // without an ack stay Unknown.
                    settled += inflight;
                    inflight = 0;
                    continue;
                }
                Err(e) if is_enobufs(&e) => {
                    // Acks were dropped. Collect what is still queued, then stop: everything
                    // unacknowledged is unknown.
                    interrupted = Some(
                        "acks lost (ENOBUFS): unacknowledged operations may or may not have \
                         applied; re-read the table"
                            .to_string(),
                    );
                    self.drain_acks(base, ops, &mut outcomes).await;
                    break;
                }
                Err(e) => {
                    interrupted = Some(e.to_string());
                    break;
                }
            };
            let rx = self.rx.get(..len).unwrap_or_default();
            let mut malformed = None;
            for m in MessageIter::new(rx) {
                match m {
                    Ok(m) => {
                        if record_ack(&m, base, ops, &mut outcomes).is_some() {
                            inflight = inflight.saturating_sub(1);
                            settled += 1;
                        }
                    }
                    Err(e) => malformed = Some(e),
                }
            }
            if let Some(e) = malformed {
                // An ack we cannot read would be waited for forever: stop, the rest is unknown.
                interrupted = Some(format!("malformed reply from the kernel: {e}"));
                break;
            }
        }
        Ok(BatchReport {
            outcomes,
            interrupted,
        })
    }

    /// After ENOBUFS: reads every ack still queued without waiting.
    async fn drain_acks(&mut self, base: u32, ops: &[Op], outcomes: &mut [Outcome]) {
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
