//! The order in which ipvsadm prints services and real servers.
//!
//! ipvsadm 1.31 sorts with glibc's `qsort` (`libipvs/libipvs.c`: `ipvs_sort_services`,
//! `ipvs_sort_dests`). Its comparators subtract unsigned 32-bit values and keep the result in an
//! `int`, so two addresses more than 2^31 apart compare "backwards" (`10.0.0.1` sorts after
//! `192.168.0.1`), and the relation is not even transitive. The printed order therefore depends on
//! the sorting algorithm and on the kernel's dump order. glibc 2.36 (Debian 12) implements `qsort`
//! as a top-down merge sort (`stdlib/msort.c`): split at `n / 2`, sort both halves, merge taking
//! from the left half while `cmp(left, right) <= 0`. [`merge_sort_by`] is that algorithm, so with
//! the same comparators and the same input order it yields byte-identical output.

use std::net::IpAddr;

use crate::model::{Destination, Service, ServiceEntry, ServiceKey, Table};

/// A service and its real servers in the order ipvsadm prints them.
pub(crate) type SortedEntry<'a> = (&'a Service, Vec<&'a Destination>);

/// The table's services and each one's real servers, sorted as `ipvsadm -L`/`-S` sort them.
pub(crate) fn sorted(table: &Table) -> Vec<SortedEntry<'_>> {
    let mut services: Vec<&ServiceEntry> = table.services.iter().collect();
    merge_sort_by(&mut services, |a, b| cmp_services(&a.service, &b.service));
    services
        .into_iter()
        .map(|e| {
            let mut dests: Vec<&Destination> = e.destinations.iter().collect();
            merge_sort_by(&mut dests, |a, b| cmp_dests(a, b));
            (&e.service, dests)
        })
        .collect()
}

/// A copy of the table with services and real servers in ipvsadm's order (what `save` and
/// `list` print), e.g. for a JSON listing that matches the text one.
pub fn sort_table(table: &Table) -> Table {
    Table {
        services: sorted(table)
            .into_iter()
            .map(|(svc, dests)| ServiceEntry {
                service: svc.clone(),
                destinations: dests.into_iter().cloned().collect(),
            })
            .collect(),
    }
}

/// libipvs `ipvs_cmp_services`: fwmark, then family, then protocol, then address, then port.
pub(crate) fn cmp_services(a: &Service, b: &Service) -> i32 {
    let mark = |k: &ServiceKey| match k {
        ServiceKey::Fwmark { mark, .. } => *mark,
        ServiceKey::Inet { .. } => 0,
    };
    let r = c_sub_u32(mark(&a.key), mark(&b.key));
    if r != 0 {
        return r;
    }
    let r = i32::from(a.key.af().to_raw()) - i32::from(b.key.af().to_raw());
    if r != 0 {
        return r;
    }
    match (&a.key, &b.key) {
        (
            ServiceKey::Inet {
                protocol: pa,
                addr: aa,
                port: ap,
            },
            ServiceKey::Inet {
                protocol: pb,
                addr: ab,
                port: bp,
            },
        ) => {
            let r = i32::from(pa.to_raw()) - i32::from(pb.to_raw());
            if r != 0 {
                return r;
            }
            cmp_addr_port(aa.is_ipv6(), *aa, *ap, *ab, *bp)
        }
        // Equal fwmark and family: the same service.
        _ => 0,
    }
}

/// libipvs `ipvs_cmp_dests`: address (as wide as the first entry's family), then port.
pub(crate) fn cmp_dests(a: &Destination, b: &Destination) -> i32 {
    cmp_addr_port(a.addr.is_ipv6(), a.addr, a.port, b.addr, b.port)
}

/// Sorts `v` like glibc 2.36's `qsort` (its merge sort) with a C-style comparator.
pub(crate) fn merge_sort_by<T: Clone>(v: &mut [T], cmp: impl Fn(&T, &T) -> i32) {
    if v.len() < 2 {
        return;
    }
    let mut tmp: Vec<T> = v.to_vec();
    sort_rec(v, &mut tmp, &cmp);
}

fn sort_rec<T: Clone>(b: &mut [T], tmp: &mut [T], cmp: &impl Fn(&T, &T) -> i32) {
    let n = b.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    {
        let (left, right) = b.split_at_mut(n1);
        let (tl, tr) = tmp.split_at_mut(n1);
        sort_rec(left, tl, cmp);
        sort_rec(right, tr, cmp);
    }
    // Merge into tmp, then copy back: the same sequence of comparisons as msort_with_tmp.
    let (mut i, mut j, mut k) = (0usize, n1, 0usize);
    while i < n1 && j < n {
        let take_left = match (b.get(i), b.get(j)) {
            (Some(l), Some(r)) => cmp(l, r) <= 0,
            _ => true,
        };
        let src = if take_left { i } else { j };
        if let (Some(dst), Some(val)) = (tmp.get_mut(k), b.get(src)) {
            *dst = val.clone();
        }
        if take_left {
            i += 1;
        } else {
            j += 1;
        }
        k += 1;
    }
    while i < n1 {
        if let (Some(dst), Some(val)) = (tmp.get_mut(k), b.get(i)) {
            *dst = val.clone();
        }
        i += 1;
        k += 1;
    }
    // Whatever is left of the right half is already in place.
    for (dst, src) in b.iter_mut().zip(tmp.iter()).take(k) {
        *dst = src.clone();
    }
}

/// `int r = a - b` for two `__u32` values, as C computes it.
pub(crate) fn c_sub_u32(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// The address as libipvs' `union nf_inet_addr` holds it: four host-order 32-bit words, an IPv4
/// address in the first and zeros after it.
pub(crate) fn addr_words(addr: IpAddr) -> [u32; 4] {
    match addr {
        IpAddr::V4(a) => [u32::from(a), 0, 0, 0],
        IpAddr::V6(a) => {
            let o = a.octets();
            let w = |i: usize| {
                u32::from_be_bytes([
                    o.get(i).copied().unwrap_or(0),
                    o.get(i + 1).copied().unwrap_or(0),
                    o.get(i + 2).copied().unwrap_or(0),
                    o.get(i + 3).copied().unwrap_or(0),
                ])
            };
            [w(0), w(4), w(8), w(12)]
        }
    }
}

/// libipvs' address-then-port comparison (`ipvs_cmp_services` tail, `ipvs_cmp_dests`): `v6` is
/// the family of the first entry, which decides whether one word or four are compared.
pub(crate) fn cmp_addr_port(v6: bool, a: IpAddr, ap: u16, b: IpAddr, bp: u16) -> i32 {
    let (wa, wb) = (addr_words(a), addr_words(b));
    let mut r = 0;
    if v6 {
        for (x, y) in wa.iter().zip(wb.iter()) {
            r = c_sub_u32(*x, *y);
            if r != 0 {
                break;
            }
        }
    } else {
        r = c_sub_u32(wa[0], wb[0]);
    }
    if r != 0 {
        return r;
    }
    i32::from(ap) - i32::from(bp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_sort_sorts_and_is_stable() {
        let mut v: Vec<(i32, usize)> = [5, 3, 5, 1, 3, 9, 0].iter().copied().zip(0..).collect();
        merge_sort_by(&mut v, |a, b| a.0 - b.0);
        assert_eq!(
            v,
            vec![(0, 6), (1, 3), (3, 1), (3, 4), (5, 0), (5, 2), (9, 5)]
        );
    }

    #[test]
    fn addresses_far_apart_compare_like_c() {
        let a: IpAddr = "10.0.0.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let b: IpAddr = "192.168.0.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        // 0x0a000001 - 0xc0a80001 wraps to a positive int: 10.0.0.1 sorts after 192.168.0.1.
        assert!(cmp_addr_port(false, a, 80, b, 80) > 0);
        let c: IpAddr = "10.0.0.2".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        assert!(cmp_addr_port(false, a, 80, c, 80) < 0);
        let mut v = vec![(a, 80u16), (b, 80), (c, 80)];
        merge_sort_by(&mut v, |x, y| cmp_addr_port(false, x.0, x.1, y.0, y.1));
        assert_eq!(v, vec![(b, 80), (a, 80), (c, 80)]);
    }
}
