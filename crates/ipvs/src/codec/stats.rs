//! `IPVS_STATS_ATTR_*`: the counters nested in `IPVS_SVC_ATTR_STATS(64)` and
//! `IPVS_DEST_ATTR_STATS(64)`.
//!
//! `ip_vs_ctl.c` (`ip_vs_genl_fill_stats`) writes conns, packets and rates as `u32` and bytes as
//! `u64`; `ip_vs_genl_fill_stats64` writes every counter as `u64`. The decoder reads each value by
//! its length (4 or 8 bytes) so both forms decode.

use crate::error::DecodeError;
use crate::model::Stats;

use super::attr::{nest_end, nest_start_noflag, put_bytes, put_u32, Attr, RawAttr};

/// `IPVS_STATS_ATTR_CONNS`: connections scheduled since the counters were last zeroed.
pub const CONNS: u16 = 1;
/// `IPVS_STATS_ATTR_INPKTS`: packets from clients (to the virtual service).
pub const INPKTS: u16 = 2;
/// `IPVS_STATS_ATTR_OUTPKTS`: packets back to clients (seen only with NAT).
pub const OUTPKTS: u16 = 3;
/// `IPVS_STATS_ATTR_INBYTES`: bytes from clients.
pub const INBYTES: u16 = 4;
/// `IPVS_STATS_ATTR_OUTBYTES`: bytes back to clients (seen only with NAT).
pub const OUTBYTES: u16 = 5;
/// `IPVS_STATS_ATTR_CPS`: connections per second, the kernel estimator's ~2 s average.
pub const CPS: u16 = 6;
/// `IPVS_STATS_ATTR_INPPS`: incoming packets per second (estimator).
pub const INPPS: u16 = 7;
/// `IPVS_STATS_ATTR_OUTPPS`: outgoing packets per second (estimator).
pub const OUTPPS: u16 = 8;
/// `IPVS_STATS_ATTR_INBPS`: incoming bytes per second (estimator).
pub const INBPS: u16 = 9;
/// `IPVS_STATS_ATTR_OUTBPS`: outgoing bytes per second (estimator).
pub const OUTBPS: u16 = 10;
/// `IPVS_STATS_ATTR_PAD`: an empty attribute the kernel puts before a `u64` to align it.
pub const PAD: u16 = 11;

fn fields(s: &Stats) -> [(u16, u64); 10] {
    [
        (CONNS, s.conns),
        (INPKTS, s.inpkts),
        (OUTPKTS, s.outpkts),
        (INBYTES, s.inbytes),
        (OUTBYTES, s.outbytes),
        (CPS, s.cps),
        (INPPS, s.inpps),
        (OUTPPS, s.outpps),
        (INBPS, s.inbps),
        (OUTBPS, s.outbps),
    ]
}

/// Appends a nested 32-bit stats attribute of type `ty` as `ip_vs_genl_fill_stats` does
/// (bytes as `u64`, the rest truncated to `u32`).
pub fn encode_stats32(buf: &mut Vec<u8>, ty: u16, s: &Stats) {
    let at = nest_start_noflag(buf, ty);
    for (t, v) in fields(s) {
        if t == INBYTES || t == OUTBYTES {
            put_bytes(buf, t, &v.to_ne_bytes());
        } else {
            put_u32(buf, t, v as u32);
        }
    }
    nest_end(buf, at);
}

/// Appends a nested 64-bit stats attribute of type `ty` (as `ip_vs_genl_fill_stats64` does).
pub fn encode_stats64(buf: &mut Vec<u8>, ty: u16, s: &Stats) {
    let at = nest_start_noflag(buf, ty);
    for (t, v) in fields(s) {
        put_bytes(buf, t, &v.to_ne_bytes());
    }
    nest_end(buf, at);
}

fn value(a: &Attr<'_>) -> Result<u64, DecodeError> {
    match a.value.len() {
        4 => a.u32("stats counter").map(u64::from),
        8 => a.u64("stats counter"),
        len => Err(DecodeError::BadLength {
            context: "stats counter",
            len,
        }),
    }
}

/// Decodes a nested stats attribute; unknown counters are appended to `unknown`.
pub fn decode_stats(nest: &Attr<'_>, unknown: &mut Vec<RawAttr>) -> Result<Stats, DecodeError> {
    let mut s = Stats::default();
    for a in nest.nested() {
        let a = a?;
        let slot = match a.ty {
            CONNS => &mut s.conns,
            INPKTS => &mut s.inpkts,
            OUTPKTS => &mut s.outpkts,
            INBYTES => &mut s.inbytes,
            OUTBYTES => &mut s.outbytes,
            CPS => &mut s.cps,
            INPPS => &mut s.inpps,
            OUTPPS => &mut s.outpps,
            INBPS => &mut s.inbps,
            OUTBPS => &mut s.outbps,
            PAD => continue,
            _ => {
                unknown.push(a.to_raw());
                continue;
            }
        };
        *slot = value(&a)?;
    }
    Ok(s)
}

/// Decodes the stats of an entry that may carry both forms: the 64-bit nest when present (the
/// 32-bit one then holds the same counters truncated and is not decoded), else the 32-bit one.
pub fn decode_preferred_stats(
    stats64: Option<Attr<'_>>,
    stats32: Option<Attr<'_>>,
    unknown: &mut Vec<RawAttr>,
) -> Result<Option<Stats>, DecodeError> {
    match stats64.or(stats32) {
        Some(a) => decode_stats(&a, unknown).map(Some),
        None => Ok(None),
    }
}
