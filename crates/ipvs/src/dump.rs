//! Streamed dumps (services, destinations) and consistent snapshots of the whole table.
//!
//! The kernel never flags an IPVS dump as interrupted: `ip_vs_genl_dump_services` and
//! `ip_vs_genl_dump_dests` (`net/netfilter/ipvs/ip_vs_ctl.c`) resume each chunk by position
//! (`cb->args[0]`) and never set `NLM_F_DUMP_INTR`, so a dump that spans several datagrams while
//! the table changes can skip or repeat entries. Each chunk, though, is filled in one call under
//! `__ip_vs_mutex`: a dump whose data arrives in a single datagram is an atomic view.
//!
//! [`Conn::snapshot`] builds on that (see docs/ipvs.md, "Consistent snapshots"):
//! 1. dump the services; duplicates mean a torn read;
//! 2. dump each service's destinations; ESRCH (the service vanished) or duplicates mean a torn
//!    read; a destination dump that spanned several datagrams is read again on the verifying
//!    sockets and must agree;
//! 3. if the services dump spanned several datagrams, dump the services again on each of two
//!    verifying sockets that read in smaller chunks (so that their chunk boundaries, where a torn
//!    dump loses or repeats entries, fall elsewhere): the same services with the same settings,
//!    or it was torn;
//! 4. on a torn read start over, up to a bounded number of tries, then [`Error::Inconsistent`].

use std::collections::HashSet;
use std::hash::Hash;

use serde::Serialize;

use crate::codec::dest::{decode_dest_msg, DestReply};
use crate::codec::msg::{Message, MessageIter, NLMSG_DONE, NLMSG_ERROR};
use crate::codec::request::{encode_dump_dests, encode_dump_services};
use crate::codec::service::{decode_service_msg, ServiceReply};
use crate::conn::{is_enobufs, Conn};
use crate::error::{Errno, Error, Result};
use crate::model::{Destination, Service, ServiceEntry, ServiceKey, Table};

/// How many times [`Conn::snapshot`] reads the table before giving up.
pub const SNAPSHOT_TRIES: u32 = 8;

/// What a snapshot went through.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SnapshotReport {
    /// How many reads of the table were started (1 when the first was consistent).
    pub tries: u32,
    /// Why each discarded read was discarded.
    pub torn: Vec<String>,
    /// Dumps issued in total (services and destinations, verifying passes included).
    pub dumps: u32,
}

/// The same service with the same settings (counters ignored), compared without copying.
fn same_settings_service(a: &Service, b: &Service) -> bool {
    let Service {
        key,
        scheduler,
        flags,
        timeout,
        netmask,
        pe_name,
        stats: _,
    } = a;
    *key == b.key
        && *scheduler == b.scheduler
        && *flags == b.flags
        && *timeout == b.timeout
        && *netmask == b.netmask
        && *pe_name == b.pe_name
}

/// The same real server with the same settings (connection counts and counters ignored).
fn same_settings_dest(a: &Destination, b: &Destination) -> bool {
    let Destination {
        addr,
        port,
        forwarding,
        weight,
        upper_threshold,
        lower_threshold,
        tunnel,
        active_conns: _,
        inactive_conns: _,
        persist_conns: _,
        stats: _,
    } = a;
    *addr == b.addr
        && *port == b.port
        && *forwarding == b.forwarding
        && *weight == b.weight
        && *upper_threshold == b.upper_threshold
        && *lower_threshold == b.lower_threshold
        && *tunnel == b.tunnel
}

enum Torn {
    Yes(String),
    Err(Error),
}

impl From<Error> for Torn {
    fn from(e: Error) -> Self {
        Torn::Err(e)
    }
}

impl Conn {
    /// Runs one dump: sends the request built by `build`, passes each reply message to `each`,
    /// and returns how many datagrams carried data (1 means the kernel filled it atomically).
    pub(crate) async fn dump<F>(
        &mut self,
        what: &dyn Fn() -> String,
        build: impl FnOnce(&mut Vec<u8>, u32),
        mut each: F,
    ) -> Result<usize>
    where
        F: FnMut(&Message<'_>) -> Result<()>,
    {
        self.finish_open_dump().await?;
        let seq = self.next_seq();
        self.tx.clear();
        build(&mut self.tx, seq);
        self.send_buf().await?;
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

    async fn services_counted(&mut self) -> Result<(Vec<Service>, usize)> {
        let mut out = Vec::new();
        let chunks = self.each_service(|r| out.push(r.service)).await?;
        Ok((out, chunks))
    }

    async fn destinations_counted(
        &mut self,
        key: &ServiceKey,
    ) -> Result<(Vec<Destination>, usize)> {
        // Decoded into a reused buffer, then copied out at its exact size: no regrowing per
        // service (a snapshot reads one such list per service).
        let mut scratch = std::mem::take(&mut self.dest_scratch);
        scratch.clear();
        let r = self.each_destination(key, |r| scratch.push(r.dest)).await;
        let out = scratch.clone();
        self.dest_scratch = scratch;
        Ok((out, r?))
    }

    /// Streams every service to `f` as it is decoded (`IPVS_CMD_GET_SERVICE` dump), with the
    /// attributes this crate does not know kept raw. Returns how many datagrams carried data (1
    /// means the kernel filled the whole dump in one call: an atomic view).
    pub async fn each_service(&mut self, mut f: impl FnMut(ServiceReply)) -> Result<usize> {
        let family = self.family();
        self.dump(
            &|| "list services".to_string(),
            |b, seq| encode_dump_services(b, family, seq),
            |m| {
                f(decode_service_msg(m.genl()?.attrs)?);
                Ok(())
            },
        )
        .await
    }

    /// Streams the real servers of one service to `f` (`IPVS_CMD_GET_DEST` dump), unknown
    /// attributes kept raw; ESRCH when the service does not exist. Returns the datagram count.
    pub async fn each_destination(
        &mut self,
        key: &ServiceKey,
        mut f: impl FnMut(DestReply),
    ) -> Result<usize> {
        let family = self.family();
        let af = key.af();
        self.dump(
            &|| format!("list real servers of {key}"),
            |b, seq| encode_dump_dests(b, family, seq, key),
            |m| {
                f(decode_dest_msg(m.genl()?.attrs, af)?);
                Ok(())
            },
        )
        .await
    }

    /// Every service, in the kernel's order (`IPVS_CMD_GET_SERVICE` dump). A single dump: while
    /// the table changes it may skip or repeat entries; use [`Conn::snapshot`] for a checked view.
    pub async fn services(&mut self) -> Result<Vec<Service>> {
        Ok(self.services_counted().await?.0)
    }

    /// The real servers of one service (`IPVS_CMD_GET_DEST` dump); ESRCH when it does not exist.
    pub async fn destinations(&mut self, key: &ServiceKey) -> Result<Vec<Destination>> {
        Ok(self.destinations_counted(key).await?.0)
    }

    /// A typed, consistent snapshot of the whole table (services with their real servers).
    ///
    /// Fails with [`Error::Inconsistent`] when the table kept changing for
    /// [`SNAPSHOT_TRIES`] reads.
    pub async fn snapshot(&mut self) -> Result<Table> {
        Ok(self.snapshot_report(SNAPSHOT_TRIES).await?.0)
    }

    /// [`Conn::snapshot`] with a bound on the reads and a report of what it went through.
    pub async fn snapshot_report(&mut self, tries: u32) -> Result<(Table, SnapshotReport)> {
        let mut report = SnapshotReport::default();
        while report.tries < tries.max(1) {
            report.tries += 1;
            match self.read_once(&mut report).await {
                Ok(table) => return Ok((table, report)),
                Err(Torn::Yes(why)) => report.torn.push(why),
                Err(Torn::Err(e)) => return Err(e),
            }
        }
        Err(Error::Inconsistent {
            tries: report.tries,
        })
    }

    async fn read_once(&mut self, report: &mut SnapshotReport) -> std::result::Result<Table, Torn> {
        let (services, chunks) = self.services_counted().await?;
        report.dumps += 1;
        // A dump that arrived in one datagram is an atomic view (see the module doc): only a
        // longer one can repeat an entry.
        if chunks > 1 {
            if let Some(key) = first_duplicate(services.iter().map(|s| s.key)) {
                return Err(Torn::Yes(format!("service {key} listed twice")));
            }
        }
        let mut table = Table {
            services: Vec::with_capacity(services.len()),
        };
        for service in services {
            let dests = self.checked_dests(&service.key, report).await?;
            table.services.push(ServiceEntry {
                service,
                destinations: dests,
            });
        }
        if chunks > 1 {
            // Verifying passes on the sockets that read in smaller chunks: a torn dump loses or
            // repeats the entries at its chunk boundaries, which differ between the sockets.
            let mut verifiers = std::mem::take(&mut self.verifiers);
            let mut verdict = Ok(());
            for v in &mut verifiers {
                let again = match v.services_counted().await {
                    Ok((again, _)) => again,
                    Err(e) => {
                        verdict = Err(Torn::Err(e));
                        break;
                    }
                };
                report.dumps += 1;
                let differs = again.len() != table.services.len()
                    || again
                        .iter()
                        .zip(&table.services)
                        .any(|(a, e)| !same_settings_service(a, &e.service));
                if differs {
                    verdict = Err(Torn::Yes(format!(
                        "services changed during the read ({} then {})",
                        table.services.len(),
                        again.len()
                    )));
                    break;
                }
            }
            self.verifiers = verifiers;
            verdict?;
        }
        Ok(table)
    }

    async fn checked_dests(
        &mut self,
        key: &ServiceKey,
        report: &mut SnapshotReport,
    ) -> std::result::Result<Vec<Destination>, Torn> {
        let (dests, chunks) = match self.destinations_counted(key).await {
            Ok(r) => r,
            Err(Error::Request { errno, .. }) if errno.0 == 3 => {
                return Err(Torn::Yes(format!("service {key} vanished during the read")))
            }
            Err(e) => return Err(Torn::Err(e)),
        };
        report.dumps += 1;
        if chunks > 1 {
            if let Some(d) = first_duplicate(dests.iter().map(Destination::key)) {
                return Err(Torn::Yes(format!("real server {d} of {key} listed twice")));
            }
            let mut verifiers = std::mem::take(&mut self.verifiers);
            let mut verdict = Ok(());
            for v in &mut verifiers {
                verdict = verify_dests(v, key, &dests, report).await;
                if verdict.is_err() {
                    break;
                }
            }
            self.verifiers = verifiers;
            verdict?;
        }
        Ok(dests)
    }
}

/// Dumps `key`'s real servers on the verifying socket `v` and compares them with `dests`.
async fn verify_dests(
    v: &mut Conn,
    key: &ServiceKey,
    dests: &[Destination],
    report: &mut SnapshotReport,
) -> std::result::Result<(), Torn> {
    let again = match v.destinations_counted(key).await {
        Ok((again, _)) => again,
        Err(Error::Request { errno, .. }) if errno.0 == 3 => {
            return Err(Torn::Yes(format!("service {key} vanished during the read")))
        }
        Err(e) => return Err(Torn::Err(e)),
    };
    report.dumps += 1;
    let differs = again.len() != dests.len()
        || again
            .iter()
            .zip(dests)
            .any(|(a, b)| !same_settings_dest(a, b));
    if differs {
        return Err(Torn::Yes(format!(
            "real servers of {key} changed during the read"
        )));
    }
    Ok(())
}

/// The first key that occurs twice.
fn first_duplicate<K: Hash + Eq + Copy>(keys: impl ExactSizeIterator<Item = K>) -> Option<K> {
    let mut seen = HashSet::with_capacity(keys.len());
    keys.into_iter().find(|k| !seen.insert(*k))
}
