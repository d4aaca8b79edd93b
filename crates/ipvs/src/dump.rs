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
//!    sockets and must agree; a service whose dump was empty is looked up again (this kernel
//!    answers the dump of a missing service with an empty list, not ESRCH): gone means torn;
//! 3. if the services dump spanned several datagrams, dump the services again on each of two
//!    verifying sockets that read in smaller chunks (so that their chunk boundaries, where a torn
//!    dump loses or repeats entries, fall elsewhere): the same services with the same settings,
//!    or it was torn. These two dumps run on a thread of their own (`ipvs-verify`, no runtime:
//!    the kernel answers inside our system calls) while step 2 reads the real servers, so on a
//!    machine with a second CPU they cost little time;
//! 4. on a torn read start over, up to a bounded number of tries, then [`Error::Inconsistent`].

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};

use serde::Serialize;
use tokio::sync::oneshot;

use crate::codec::dest::{decode_dest_msg, DestReply};
use crate::codec::request::{encode_dump_dests, encode_dump_services};
use crate::codec::service::{decode_service_msg, ServiceReply};
use crate::conn::Conn;
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

/// Why one read of the table gave no table.
pub(crate) enum ReadError {
    /// The table changed during the read (what changed): read it again.
    Torn(String),
    /// A real error (socket, decode, a refusal): give up.
    Failed(Error),
}

impl From<Error> for ReadError {
    fn from(e: Error) -> Self {
        ReadError::Failed(e)
    }
}

impl Conn {
    /// The real servers of one service, without a runtime (a verifying pass).
    fn destinations_blocking(&mut self, key: &ServiceKey) -> Result<Vec<Destination>> {
        let family = self.family();
        let af = key.af();
        let mut out = Vec::new();
        self.dump_blocking(
            &|| format!("list real servers of {key} (verifying pass)"),
            |b, seq| encode_dump_dests(b, family, seq, key),
            |m| {
                out.push(decode_dest_msg(m.genl()?.attrs, af)?.dest);
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Every service on a thread without a runtime (a verifying pass).
    fn services_blocking(&mut self) -> Result<Vec<Service>> {
        let family = self.family();
        let mut out = Vec::new();
        self.dump_blocking(
            &|| "list services (verifying pass)".to_string(),
            |b, seq| encode_dump_services(b, family, seq),
            |m| {
                out.push(decode_service_msg(m.genl()?.attrs)?.service);
                Ok(())
            },
        )?;
        Ok(out)
    }

    async fn services_counted(&mut self) -> Result<(Vec<Service>, usize)> {
        let mut out = Vec::new();
        let chunks = self.each_service(|r| out.push(r.service)).await?;
        Ok((out, chunks))
    }

    pub(crate) async fn destinations_counted(
        &mut self,
        key: &ServiceKey,
    ) -> Result<(Vec<Destination>, usize)> {
        // Decoded into a reused buffer, then copied out at its exact size: no regrowing per
        // service (a snapshot reads one such list per service).
        let mut scratch = self.take_dest_scratch();
        scratch.clear();
        let r = self.each_destination(key, |r| scratch.push(r.dest)).await;
        let out = scratch.clone();
        self.put_dest_scratch(scratch);
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
                Err(ReadError::Torn(why)) => report.torn.push(why),
                Err(ReadError::Failed(e)) => return Err(e),
            }
        }
        Err(Error::Inconsistent {
            tries: report.tries,
        })
    }

    async fn read_once(
        &mut self,
        report: &mut SnapshotReport,
    ) -> std::result::Result<Table, ReadError> {
        let (services, chunks) = self.services_counted().await?;
        report.dumps += 1;
        // A dump that arrived in one datagram is an atomic view (see the module doc): only a
        // longer one can repeat an entry, or lose one.
        if chunks > 1 {
            if let Some(key) = first_duplicate(services.iter().map(|s| s.key)) {
                return Err(ReadError::Torn(format!("service {key} listed twice")));
            }
        }
        // The verifying passes run on a thread of their own while this task reads the real
        // servers: they only need to start after the first services dump ended.
        let mut verifying = (chunks > 1).then(|| self.start_verifying());
        let mut table = Table {
            services: Vec::with_capacity(services.len()),
        };
        for service in services {
            let dests = self
                .checked_dests(&service.key, report, &mut verifying)
                .await?;
            table.services.push(ServiceEntry {
                service,
                destinations: dests,
            });
        }
        self.check_empty_still_exist(&table).await?;
        let Some(verifying) = verifying else {
            return Ok(table);
        };
        // A torn dump loses or repeats the entries at its chunk boundaries, which differ between
        // the sockets: all three lists must be the same.
        for again in verifying.lists().await {
            let again = again?;
            report.dumps += 1;
            let differs = again.len() != table.services.len()
                || again
                    .iter()
                    .zip(&table.services)
                    .any(|(a, e)| !a.same_settings(&e.service));
            if differs {
                return Err(ReadError::Torn(format!(
                    "services changed during the read ({} then {})",
                    table.services.len(),
                    again.len()
                )));
            }
        }
        Ok(table)
    }

    /// The kernel answers the real-server dump of a missing service with an empty list, not an
    /// error (`ip_vs_genl_dump_dests`: a service it cannot find is `goto out_err`, which returns
    /// the empty chunk), so a service deleted between the services dump and its real-server dump
    /// would be listed with no real servers, a state that never existed. Each service read
    /// empty is looked up again (pipelined GETs, `read`): one that is gone tears the read.
    async fn check_empty_still_exist(
        &mut self,
        table: &Table,
    ) -> std::result::Result<(), ReadError> {
        let empty: Vec<ServiceKey> = table
            .services
            .iter()
            .filter(|e| e.destinations.is_empty())
            .map(|e| e.service.key)
            .collect();
        if empty.is_empty() {
            return Ok(());
        }
        let now = self.get_services(&empty).await?;
        match empty.iter().zip(&now).find(|(_, s)| s.is_none()) {
            Some((key, _)) => Err(ReadError::Torn(format!(
                "service {key} vanished during the read"
            ))),
            None => Ok(()),
        }
    }

    /// Starts the verifying services dumps on a thread (`ipvs-verify`); when no thread can be
    /// started, runs them here and now.
    fn start_verifying(&self) -> Verifying {
        let verifiers = self.verifiers();
        let (tx, rx) = oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("ipvs-verify".into())
            .spawn(move || {
                let lists = verify_services(&verifiers);
                // Fails only when the snapshot's future was dropped meanwhile: nobody waits.
                let _ = tx.send(lists);
            });
        match spawned {
            Ok(_) => Verifying::Running(rx),
            Err(_) => Verifying::Done(verify_services(&self.verifiers())),
        }
    }

    async fn checked_dests(
        &mut self,
        key: &ServiceKey,
        report: &mut SnapshotReport,
        verifying: &mut Option<Verifying>,
    ) -> std::result::Result<Vec<Destination>, ReadError> {
        let (dests, chunks) = match self.destinations_counted(key).await {
            Ok(r) => r,
            Err(Error::Request { errno, .. }) if errno == Errno::ESRCH => {
                return Err(ReadError::Torn(format!(
                    "service {key} vanished during the read"
                )))
            }
            Err(e) => return Err(ReadError::Failed(e)),
        };
        report.dumps += 1;
        if chunks > 1 {
            if let Some(d) = first_duplicate(dests.iter().map(Destination::key)) {
                return Err(ReadError::Torn(format!(
                    "real server {d} of {key} listed twice"
                )));
            }
            // The verifying sockets are free once the services passes have ended.
            if let Some(v) = verifying.as_mut() {
                v.wait().await;
            }
            let verifiers = self.verifiers();
            let mut verifiers = verifiers.lock().unwrap_or_else(PoisonError::into_inner);
            for v in verifiers.iter_mut() {
                verify_dests(v, key, &dests, report)?;
            }
        }
        Ok(dests)
    }
}

/// The verifying services dumps of one read of the table.
enum Verifying {
    /// Running on their thread; the lists come back on the channel.
    Running(oneshot::Receiver<Vec<Result<Vec<Service>>>>),
    /// Ended: one list (or error) per verifying socket.
    Done(Vec<Result<Vec<Service>>>),
}

impl Verifying {
    /// Waits for the thread to end (without blocking the runtime).
    async fn wait(&mut self) {
        if let Verifying::Running(rx) = self {
            let lists = rx.await.unwrap_or_else(|_| {
                vec![Err(Error::Protocol(
                    "the verifying thread of a snapshot ended without a result".into(),
                ))]
            });
            *self = Verifying::Done(lists);
        }
    }

    /// The lists, once the thread ended.
    async fn lists(mut self) -> Vec<Result<Vec<Service>>> {
        self.wait().await;
        match self {
            Verifying::Done(lists) => lists,
            Verifying::Running(_) => Vec::new(),
        }
    }
}

/// One services dump on each verifying socket, holding their lock meanwhile (a snapshot started
/// while the thread of a dropped one still reads waits for it here).
fn verify_services(verifiers: &Mutex<Vec<Conn>>) -> Vec<Result<Vec<Service>>> {
    let mut verifiers = verifiers.lock().unwrap_or_else(PoisonError::into_inner);
    if verifiers.is_empty() {
        // Never without verifying: a `Conn` always has its sockets (`Conn::connect`).
        return vec![Err(Error::Protocol(
            "no verifying sockets for a snapshot".into(),
        ))];
    }
    verifiers.iter_mut().map(Conn::services_blocking).collect()
}

/// Dumps `key`'s real servers on the verifying socket `v` and compares them with `dests`.
pub(crate) fn verify_dests(
    v: &mut Conn,
    key: &ServiceKey,
    dests: &[Destination],
    report: &mut SnapshotReport,
) -> std::result::Result<(), ReadError> {
    let again = match v.destinations_blocking(key) {
        Ok(again) => again,
        Err(Error::Request { errno, .. }) if errno == Errno::ESRCH => {
            return Err(ReadError::Torn(format!(
                "service {key} vanished during the read"
            )))
        }
        Err(e) => return Err(ReadError::Failed(e)),
    };
    report.dumps += 1;
    let differs =
        again.len() != dests.len() || again.iter().zip(dests).any(|(a, b)| !a.same_settings(b));
    if differs {
        return Err(ReadError::Torn(format!(
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The daemon runs snapshots in spawned tasks: the future must stay `Send` (no lock guard
    /// or `Rc` held across an `.await`). A compile-time check.
    #[allow(dead_code)]
    fn snapshot_future_is_send(conn: &mut Conn) {
        fn is_send<T: Send>(_: &T) {}
        is_send(&conn.snapshot_report(1));
        is_send(&conn.apply(&[]));
        is_send(&conn.info());
        is_send(&conn.daemons());
        is_send(&conn.read_services(&[]));
    }

    #[test]
    fn first_duplicate_finds_the_first_repeated_key() {
        assert_eq!(first_duplicate([1, 2, 3].into_iter()), None);
        assert_eq!(first_duplicate([1, 2, 3, 2, 1].into_iter()), Some(2));
    }
}
