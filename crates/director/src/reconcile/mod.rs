//! The diff: (desired table, kernel snapshot, what we own, drains in progress, now) -> the
//! minimal batch of `ipvs::Op`s that makes the kernel hold what we want. Pure: no clock (`now`
//! is injected), no socket (design.md: `reconcile` never imports tokio, a socket or
//! `ipvs::Conn`).
//!
//! Ownership. A service key is ours when the desired table names it or [`Owned`] lists it (the
//! services a previous configuration, or an instance we are no longer Master of, named). A key
//! that is neither is foreign (a hand-added service, another tool's table) and no operation ever
//! names it. Within a service of ours every real server is ours.
//!
//! What the diff emits, per owned key:
//!
//! | kernel \ desired | absent | present |
//! |---|---|---|
//! | absent | nothing | `AddService`, then `AddDest` for each real server |
//! | present | `DelService` (the kernel deletes its real servers with it) | `EditService` when a setting differs; per real server below |
//!
//! Per real server of a service in both:
//! - desired, not in the kernel: `AddDest`;
//! - in both, a setting differs: one `EditDest` in place, never delete + re-add (kubernetes
//!   #117205: a re-add resets the server's counters and its connections' binding). The kernel
//!   edits weight, thresholds, tunnel and the forwarding method in place (`ip_vs_edit_dest` ->
//!   `__ip_vs_update_dest` sets `conn_flags`, rehashing the real server when the method changes);
//! - in the kernel, not desired: drained. See [`DrainState`].
//!
//! Every service setting is editable too (`ip_vs_edit_service` rebinds the scheduler and the
//! persistence engine and sets flags, timeout and netmask); what the kernel cannot edit (address
//! family, protocol, address, port, mark) is the key itself, so a changed key is another service:
//! the old one is deleted (if owned) and the new one added.
//!
//! Ordering: the batch is valid in the order given: a service is added before its real servers;
//! a deleted service takes its real servers with it, so none is deleted first. Deletions come
//! first, in descending key order (the kernel's dest trash: see `diff`), then additions and
//! edits in key order, so equal inputs give equal plans.

#![allow(
    dead_code,
    reason = "accessors used by the tests; the engine uses the rest"
)]

mod compare;
#[cfg(test)]
pub(crate) mod simulate;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use ipvs::{DestKey, Destination, Op, ServiceEntry, ServiceKey, Table};

use crate::desired::{Desired, DesiredService};

/// Service keys we own beyond the desired table: those a previous configuration named or those
/// of an instance this node withdraws. The diff deletes an owned key that is not desired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owned {
    keys: BTreeSet<ServiceKey>,
}

impl Owned {
    /// Every key of a desired table (typically the whole configuration, every instance).
    pub fn of(desired: &Desired) -> Owned {
        desired.keys().copied().collect()
    }

    /// Adds a key; false when it was there.
    pub fn insert(&mut self, key: ServiceKey) -> bool {
        self.keys.insert(key)
    }

    /// True when the key is listed.
    pub fn contains(&self, key: &ServiceKey) -> bool {
        self.keys.contains(key)
    }

    /// Every listed key, in order.
    pub fn iter(&self) -> impl Iterator<Item = &ServiceKey> {
        self.keys.iter()
    }
}

impl FromIterator<ServiceKey> for Owned {
    fn from_iter<I: IntoIterator<Item = ServiceKey>>(iter: I) -> Self {
        Owned {
            keys: iter.into_iter().collect(),
        }
    }
}

impl Extend<ServiceKey> for Owned {
    fn extend<I: IntoIterator<Item = ServiceKey>>(&mut self, iter: I) {
        self.keys.extend(iter);
    }
}

/// Real servers being drained: in the kernel under a desired service, no longer desired.
///
/// keepalived #1228: a real server removed from the configuration first gets weight 0 (one
/// `EditDest`: no new connections, established ones continue) and is deleted once its active
/// connections (`IPVS_DEST_ATTR_ACTIVE_CONNS` in the snapshot) reach 0 or the drain timeout has
/// passed since the drain began. One already at 0 active connections is deleted at once.
/// Pure data: the diff takes it and returns it updated in [`Plan::drain`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainState {
    since: BTreeMap<(ServiceKey, DestKey), Instant>,
}

impl DrainState {
    /// When the drain of `dest` in `service` began, if it is draining.
    pub fn since(&self, service: &ServiceKey, dest: &DestKey) -> Option<Instant> {
        self.since.get(&(*service, *dest)).copied()
    }

    /// Every draining (service, real server) with the start of its drain, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&(ServiceKey, DestKey), &Instant)> {
        self.since.iter()
    }

    /// How many real servers are draining.
    pub fn len(&self) -> usize {
        self.since.len()
    }

    /// True when nothing drains.
    pub fn is_empty(&self) -> bool {
        self.since.is_empty()
    }
}

/// The outcome of a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The operations, in an order the kernel accepts as one batch; empty when the kernel
    /// already holds what we want.
    pub ops: Vec<Op>,
    /// The drains still in progress after `ops` (pass it to the next diff).
    pub drain: DrainState,
    /// The earliest drain timeout still ahead: diff again by then even if nothing else changes
    /// (a drained server whose connections reach 0 is seen at the next drift check).
    pub wake_at: Option<Instant>,
}

impl Plan {
    /// True when there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// The minimal operations that make `kernel` hold `desired` for every key we own (see the module
/// doc), leaving foreign services alone. `drain` is the state the previous plan returned,
/// `drain_timeout` how long a removed real server may keep active connections before it is
/// deleted anyway.
pub fn diff(
    desired: &Desired,
    kernel: &Table,
    owned: &Owned,
    drain: &DrainState,
    now: Instant,
    drain_timeout: Duration,
) -> Plan {
    // Our own index of the snapshot (the kernel never reports a key twice; the first wins).
    let mut by_key: HashMap<ServiceKey, &ServiceEntry> =
        HashMap::with_capacity(kernel.services.len());
    for entry in &kernel.services {
        by_key.entry(entry.service.key).or_insert(entry);
    }

    let mut plan = Plan {
        ops: Vec::new(),
        drain: DrainState::default(),
        wake_at: None,
    };
    // Deletions in descending key order: the reverse of the order additions use. The kernel
    // keeps deleted real servers in its per-namespace "dest trash" for minutes and every
    // real-server add scans that list from its head (`ip_vs_trash_get_dest`), reviving a match.
    // Deleting a service pushes its real servers on the head in reverse order of their adding,
    // so after deletions in descending order the head holds the first service's real servers in
    // the order a re-take adds them: each add of a flap's re-takeover finds its match at the head
    // instead of walking the whole trash (3x slower re-takeover at 1,000 x 10 before this).
    let deleted: BTreeSet<ServiceKey> = kernel
        .services
        .iter()
        .map(|e| e.service.key)
        .filter(|k| owned.contains(k) && !desired.contains(k))
        .collect();
    plan.ops.extend(delete_services(&deleted));
    for (key, want) in desired.iter() {
        match by_key.get(key) {
            None => add_service(want, &mut plan.ops),
            Some(have) => {
                let drains = Drains {
                    old: drain,
                    now,
                    timeout: drain_timeout,
                };
                update_service(want, have, &drains, &mut plan);
            }
        }
    }
    plan
}

/// A withdraw without reading the kernel: every key of `owned` deleted, in the order [`diff`]
/// deletes services (descending: see the dest trash there; ascending made a re-takeover of
/// 10,000 x 10 take 177 s instead of 2 s, measured). A service's deletion takes its real
/// servers along (`ip_vs_del_service`); the caller takes ESRCH for a key the kernel no longer
/// holds as done. When the kernel holds every owned key, this is exactly the plan [`diff`]
/// makes for an empty desired table (property test).
pub fn withdraw(owned: &BTreeSet<ServiceKey>) -> Vec<Op> {
    delete_services(owned).collect()
}

/// `DelService` for each key, in descending key order.
fn delete_services(keys: &BTreeSet<ServiceKey>) -> impl Iterator<Item = Op> + '_ {
    keys.iter().rev().map(|k| Op::DelService(*k))
}

fn add_service(want: &DesiredService, ops: &mut Vec<Op>) {
    let key = want.service.key;
    ops.push(Op::AddService(compare::service_to_send(&want.service)));
    for d in want.dests.values() {
        ops.push(Op::AddDest(key, compare::dest_to_send(&d.dest)));
    }
}

struct Drains<'a> {
    old: &'a DrainState,
    now: Instant,
    timeout: Duration,
}

fn update_service(
    want: &DesiredService,
    have: &ServiceEntry,
    drains: &Drains<'_>,
    plan: &mut Plan,
) {
    let key = want.service.key;
    if !compare::same_service(&want.service, &have.service) {
        plan.ops
            .push(Op::EditService(compare::service_to_send(&want.service)));
    }
    let mut kernel_dests: HashMap<DestKey, &Destination> =
        HashMap::with_capacity(have.destinations.len());
    for d in &have.destinations {
        kernel_dests.entry(d.key()).or_insert(d);
    }
    // Not desired any more: drain, then delete.
    let mut seen = HashSet::new();
    for d in &have.destinations {
        let dkey = d.key();
        if want.dests.contains_key(&dkey) || !seen.insert(dkey) {
            continue;
        }
        let since = drains.old.since(&key, &dkey).unwrap_or(drains.now);
        let deadline = since.checked_add(drains.timeout);
        let expired = deadline.is_none_or(|t| drains.now >= t);
        if d.active_conns == 0 || expired {
            plan.ops.push(Op::DelDest(key, dkey));
            continue;
        }
        if d.weight != 0 {
            let mut quiesced = compare::dest_to_send(d);
            quiesced.weight = 0;
            plan.ops.push(Op::EditDest(key, quiesced));
        }
        plan.drain.since.insert((key, dkey), since);
        plan.wake_at = match (plan.wake_at, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    for (dkey, d) in &want.dests {
        match kernel_dests.get(dkey) {
            None => plan
                .ops
                .push(Op::AddDest(key, compare::dest_to_send(&d.dest))),
            Some(k) if !compare::same_dest(&d.dest, k) => {
                plan.ops
                    .push(Op::EditDest(key, compare::dest_to_send(&d.dest)));
            }
            Some(_) => {}
        }
    }
}
