//! Reading services by key: what a caller owns, without walking the whole table.
//!
//! [`Conn::read_services`] reads each named service with `IPVS_CMD_GET_SERVICE` (not a dump: the
//! kernel looks the key up in its hash table, `ip_vs_genl_get_cmd`), many requests packed to a
//! `send` and in flight together, then dumps the real servers of each service that exists, then
//! reads the same services again the same way:
//!
//! 1. pipelined GETs: each service's settings, or ESRCH (absent: no real-server dump is sent for
//!    it, so reading keys that are not in the table costs one small request each);
//! 2. one `IPVS_CMD_GET_DEST` dump per present service. A dump that fits in one datagram (up to
//!    ~90 real servers) is filled by one call under `__ip_vs_mutex`: an atomic view. A longer one
//!    is dumped again on the verifying sockets (smaller chunks) and must agree, as in
//!    [`Conn::snapshot`];
//! 3. pipelined GETs again: a service whose settings changed or which vanished since step 1 is
//!    read again (steps 1-3 for it alone), up to [`SNAPSHOT_TRIES`] times, then
//!    [`Error::Inconsistent`].
//!
//! Why no concurrent change can tear it: nothing is read by position in the service table (a
//! services dump resumes each chunk by position, counting every namespace's services, so a change
//! anywhere can make it skip or repeat entries: see `dump`). Each service's settings are two
//! atomic lookups that agree, and its real servers an atomic (or verified) dump taken between
//! them. What it is not: one atomic view of several services (the kernel has no such operation).

use std::sync::PoisonError;

use crate::codec::msg::NLMSG_ERROR;
use crate::codec::request::encode_get_service;
use crate::codec::service::decode_service_msg;
use crate::conn::{is_enobufs, Conn, MAX_SEND};
use crate::dump::{verify_dests, ReadError, SNAPSHOT_TRIES};
use crate::error::{Errno, Error, Result};
use crate::model::{Destination, KeyedService, Service, ServiceKey};
use crate::SnapshotReport;

impl Conn {
    /// Each of `keys` as the kernel holds it now: its settings and real servers, or `None` when
    /// there is no such service. One entry per key, in the order given (a key given twice is
    /// read twice).
    ///
    /// Reads only the named services (see the module doc for how and why no concurrent change
    /// can tear the result); fails with [`Error::Inconsistent`] when a service kept changing for
    /// [`SNAPSHOT_TRIES`] reads.
    pub async fn read_services(
        &mut self,
        keys: &[ServiceKey],
    ) -> Result<Vec<(ServiceKey, Option<KeyedService>)>> {
        let mut out: Vec<(ServiceKey, Option<KeyedService>)> =
            keys.iter().map(|k| (*k, None)).collect();
        // Indices into `keys` still to be read.
        let mut pending: Vec<usize> = (0..keys.len()).collect();
        let mut tries = 0;
        while !pending.is_empty() {
            if tries == SNAPSHOT_TRIES {
                return Err(Error::Inconsistent { tries });
            }
            tries += 1;
            let wanted: Vec<ServiceKey> = pending
                .iter()
                .filter_map(|&i| keys.get(i).copied())
                .collect();
            let before = self.get_services(&wanted).await?;
            // Real servers of the services that exist (`None` when the dump was torn).
            let mut read: Vec<(usize, Service, Option<Vec<Destination>>)> = Vec::new();
            for (&i, (key, svc)) in pending.iter().zip(wanted.iter().zip(before)) {
                if let Some(svc) = svc {
                    let dests = self.read_dests_checked(key).await?;
                    read.push((i, svc, dests));
                }
            }
            let again: Vec<ServiceKey> = read.iter().map(|(_, s, _)| s.key).collect();
            let after = self.get_services(&again).await?;
            let mut retry = Vec::new();
            for ((i, first, dests), now) in read.into_iter().zip(after) {
                match (now, dests) {
                    (Some(now), Some(dests)) if now.same_settings(&first) => {
                        if let Some(slot) = out.get_mut(i) {
                            slot.1 = Some(KeyedService::new(now, dests));
                        }
                    }
                    _ => retry.push(i),
                }
            }
            pending = retry;
        }
        Ok(out)
    }

    /// The real servers of `key`, checked: `Ok(None)` when the dump was torn or the service
    /// vanished meanwhile (the caller reads the service again).
    async fn read_dests_checked(&mut self, key: &ServiceKey) -> Result<Option<Vec<Destination>>> {
        let (dests, chunks) = match self.destinations_counted(key).await {
            Ok(r) => r,
            Err(Error::Request { errno, .. }) if errno == Errno::ESRCH => return Ok(None),
            Err(e) => return Err(e),
        };
        if chunks > 1 {
            let verifiers = self.verifiers();
            let mut verifiers = verifiers.lock().unwrap_or_else(PoisonError::into_inner);
            let mut report = SnapshotReport::default();
            for v in verifiers.iter_mut() {
                match verify_dests(v, key, &dests, &mut report) {
                    Ok(()) => {}
                    Err(ReadError::Torn(_)) => return Ok(None),
                    Err(ReadError::Failed(e)) => return Err(e),
                }
            }
        }
        Ok(Some(dests))
    }

    /// `IPVS_CMD_GET_SERVICE` for each key, pipelined: as many requests in flight as the
    /// receive buffer holds replies for ([`Conn::window`]), packed many to a `send`. One entry
    /// per key, `None` for ESRCH.
    pub(crate) async fn get_services(
        &mut self,
        keys: &[ServiceKey],
    ) -> Result<Vec<Option<Service>>> {
        self.finish_open_dump()?;
        let mut out: Vec<Option<Service>> = vec![None; keys.len()];
        let family = self.family();
        // A reply is a whole service (larger than an ack, for which the window is sized).
        let window = (self.window() / 2).max(1);
        let mut next = 0;
        while next < keys.len() {
            let base = self.next_seq();
            let start = next;
            self.send_packed(|tx| {
                while next < keys.len() && next - start < window && tx.len() < MAX_SEND {
                    if let Some(key) = keys.get(next) {
                        let seq = base.wrapping_add((next - start) as u32);
                        encode_get_service(tx, family, seq, key);
                    }
                    next += 1;
                }
            })
            .await?;
            // Sequence numbers base..base+n are this chunk's.
            let n = next - start;
            for _ in 1..n {
                self.next_seq();
            }
            let mut answered = 0;
            while answered < n {
                let received = self.recv_each(|m| {
                    let i = m.seq.wrapping_sub(base) as usize;
                    let Some(key) = keys.get(start + i).filter(|_| i < n) else {
                        return Ok(());
                    };
                    answered += 1;
                    if m.ty == NLMSG_ERROR {
                        // ESRCH: `ip_vs_genl_get_cmd` found no service with the key.
                        let errno = Errno(m.ack()?.error.saturating_neg());
                        if errno.0 != 0 && errno != Errno::ESRCH {
                            return Err(Error::Request {
                                request: format!("get service {key}"),
                                errno,
                            });
                        }
                    } else if let Some(slot) = out.get_mut(start + i) {
                        *slot = Some(decode_service_msg(m.genl()?.attrs)?.service);
                    }
                    Ok(())
                });
                match received {
                    Ok(true) => {}
                    Ok(false) => {
                        return Err(Error::Protocol(format!(
                            "get services by key: {} of {n} requests unanswered",
                            n - answered
                        )))
                    }
                    Err(e) if is_enobufs(&e) => {
                        return Err(Error::Lost {
                            request: "get services by key".into(),
                        })
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(out)
    }
}
