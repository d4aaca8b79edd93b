//! A pure, in-memory model of how the kernel applies a batch (tests only), following the
//! checks of `ip_vs_genl_set_cmd` and the handlers it calls in `net/netfilter/ipvs/ip_vs_ctl.c`:
//!
//! - `NEW_SERVICE` on an existing key: `EEXIST`; `SET_SERVICE` / `DEL_SERVICE` and every dest
//!   command on a missing service: `ESRCH`.
//! - an IPv6 service netmask outside 1..=128: `EINVAL` (`ip_vs_add_service`,
//!   `ip_vs_edit_service`).
//! - a new service whose flags carry `HASHED`: `ip_vs_svc_hash` refuses it ("request for already
//!   hashed") and the service never appears in the table; modelled as an error so a test fails.
//! - live services carry `HASHED` (`svc->flags = u->flags | IP_VS_SVC_F_HASHED`).
//! - `NEW_DEST` on an existing real server: `EEXIST`; `SET_DEST` / `DEL_DEST` on a missing one:
//!   `ENOENT`; a negative weight or a lower threshold above the upper: `ERANGE`
//!   (`ip_vs_add_dest`, `ip_vs_edit_dest`); a GUE tunnel with port 0: `EINVAL`; a family other
//!   than the service's without tunnel forwarding: `EINVAL`.
//! - an edit keeps the connection counts; deleting a service deletes its real servers.

use ipvs::{
    AddressFamily, Destination, Forwarding, Netmask, Op, ServiceEntry, ServiceFlags, ServiceKey,
    Table, TunnelType,
};

/// `ESRCH`.
pub const ESRCH: i32 = 3;
/// `ENOENT`.
pub const ENOENT: i32 = 2;
/// `EEXIST`.
pub const EEXIST: i32 = 17;
/// `EINVAL`.
pub const EINVAL: i32 = 22;
/// `ERANGE`.
pub const ERANGE: i32 = 34;

/// The first operation the model refused: its index in the batch, the op and the errno.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub index: usize,
    pub op: Box<Op>,
    pub errno: i32,
}

/// `table` after `ops`, or the first refusal (the real batch goes on after a failure; a plan that
/// fails anywhere is wrong, so the model stops).
pub fn simulate(table: &Table, ops: &[Op]) -> Result<Table, Refused> {
    let mut t = table.clone();
    for (index, op) in ops.iter().enumerate() {
        apply(&mut t, op).map_err(|errno| Refused {
            index,
            op: Box::new(op.clone()),
            errno,
        })?;
    }
    Ok(t)
}

fn find(t: &mut Table, key: &ServiceKey) -> Result<usize, i32> {
    t.services
        .iter()
        .position(|e| e.service.key == *key)
        .ok_or(ESRCH)
}

fn check_netmask(af: AddressFamily, netmask: &Netmask) -> Result<(), i32> {
    match (af, netmask) {
        (AddressFamily::Inet6, Netmask::Inet6(p)) if (1..=128).contains(p) => Ok(()),
        (AddressFamily::Inet6, _) => Err(EINVAL),
        _ => Ok(()),
    }
}

fn check_dest(af: AddressFamily, d: &Destination) -> Result<(), i32> {
    if d.weight < 0 || d.lower_threshold > d.upper_threshold {
        return Err(ERANGE);
    }
    if d.tunnel.kind == TunnelType::Gue && d.tunnel.port == 0 {
        return Err(EINVAL);
    }
    if d.af() != af && d.forwarding != Forwarding::Tunnel {
        return Err(EINVAL);
    }
    Ok(())
}

pub(crate) fn apply(t: &mut Table, op: &Op) -> Result<(), i32> {
    match op {
        Op::AddService(s) => {
            if find(t, &s.key).is_ok() {
                return Err(EEXIST);
            }
            check_netmask(s.key.af(), &s.netmask)?;
            if s.flags.hashed() {
                return Err(EINVAL);
            }
            let mut s = s.clone();
            s.flags = s.flags.with(ServiceFlags::HASHED, true);
            t.services.push(ServiceEntry {
                service: s,
                destinations: Vec::new(),
            });
        }
        Op::EditService(s) => {
            let i = find(t, &s.key)?;
            check_netmask(s.key.af(), &s.netmask)?;
            let mut new = s.clone();
            new.flags = new.flags.with(ServiceFlags::HASHED, true);
            new.stats = t.services[i].service.stats;
            t.services[i].service = new;
        }
        Op::DelService(k) => {
            let i = find(t, k)?;
            t.services.remove(i);
        }
        Op::AddDest(k, d) => {
            let i = find(t, k)?;
            check_dest(k.af(), d)?;
            let e = &mut t.services[i];
            if e.destinations.iter().any(|x| x.key() == d.key()) {
                return Err(EEXIST);
            }
            let mut d = d.clone();
            d.active_conns = 0;
            d.inactive_conns = 0;
            d.persist_conns = 0;
            // `list_add_rcu`: the kernel lists the newest real server first.
            e.destinations.insert(0, d);
        }
        Op::EditDest(k, d) => {
            let i = find(t, k)?;
            check_dest(k.af(), d)?;
            let e = &mut t.services[i];
            let have = e
                .destinations
                .iter_mut()
                .find(|x| x.key() == d.key())
                .ok_or(ENOENT)?;
            let mut new = d.clone();
            new.active_conns = have.active_conns;
            new.inactive_conns = have.inactive_conns;
            new.persist_conns = have.persist_conns;
            new.stats = have.stats;
            *have = new;
        }
        Op::DelDest(k, dk) => {
            let i = find(t, k)?;
            let e = &mut t.services[i];
            let j = e
                .destinations
                .iter()
                .position(|x| x.key() == *dk)
                .ok_or(ENOENT)?;
            e.destinations.remove(j);
        }
        // The diff never emits these; a plan that does is wrong.
        _ => return Err(EINVAL),
    }
    Ok(())
}
