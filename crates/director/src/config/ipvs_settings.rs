//! Checks on `ipvs:`: connection timeouts, the sync daemon, and the `net.ipv4.vs.*` sysctls.

use std::net::IpAddr;
use std::time::Duration;

use serde_saphyr::Spanned;

use super::model::{IpvsSettings, SyncDaemonConfig, Sysctls};
use super::schema::RawInstance;
use super::schema_ipvs::{RawIpvs, RawSyncDaemon, RawTimeouts};
use super::services::{instance_facts, unknown_instance};
use super::validate::{interface_name, Cx};

/// Largest IPVS timeout in seconds: `ip_vs_set_timeout` refuses values above `INT_MAX / HZ`,
/// 2147483 at HZ=1000 (the largest HZ a kernel is built with).
const MAX_TIMEOUT_SECS: u128 = 2_147_483;

/// Validates the `ipvs:` section.
pub(super) fn ipvs_settings(
    cx: &mut Cx,
    raw: &Spanned<RawIpvs>,
    instances: &[Spanned<RawInstance>],
) -> IpvsSettings {
    let r = &raw.value;
    let mut out = IpvsSettings::default();
    let mut bounded = |key: &str,
                       v: &Option<Spanned<String>>,
                       lo: Duration,
                       hi: Duration,
                       into: &mut Duration| {
        let Some(v) = v else { return };
        let Some(d) = cx.duration(key, v) else { return };
        if d < lo || d > hi {
            cx.err(
                v,
                format!("{key} {} out of range {lo:?}..{hi:?}", v.value),
                "see docs/configuration.md, `ipvs:`",
            );
        } else {
            *into = d;
        }
    };
    bounded(
        "verify_interval",
        &r.verify_interval,
        Duration::from_secs(1),
        Duration::from_secs(3600),
        &mut out.verify_interval,
    );
    bounded(
        "drain_timeout",
        &r.drain_timeout,
        Duration::ZERO,
        Duration::from_secs(86_400),
        &mut out.drain_timeout,
    );
    if let Some(t) = &r.timeouts {
        out.timeouts = timeouts(cx, &t.value);
    }
    if let Some(s) = &r.sync_daemon {
        out.sync_daemon = sync_daemon(cx, s, instances);
    }
    out.sysctls = Sysctls {
        expire_nodest_conn: r.expire_nodest_conn.as_ref().map(|v| v.value),
        expire_quiescent_template: r.expire_quiescent_template.as_ref().map(|v| v.value),
        conn_reuse_mode: r.conn_reuse_mode.as_ref().and_then(|v| {
            cx.int_in(
                "conn_reuse_mode",
                v,
                0,
                2,
                "0: no special handling, 1: the kernel's default, 2: also reschedule after \
                 FIN_WAIT (see docs/configuration.md)",
            )
            .and_then(|n| u8::try_from(n).ok())
        }),
    };
    out
}

fn timeouts(cx: &mut Cx, r: &RawTimeouts) -> ipvs::Timeouts {
    let mut one = |key: &str, v: &Option<Spanned<String>>| -> u32 {
        let Some(v) = v else { return 0 };
        let Some(d) = cx.duration(key, v) else {
            return 0;
        };
        let ms = d.as_millis();
        if ms % 1000 != 0 || !(1..=MAX_TIMEOUT_SECS).contains(&(ms / 1000)) {
            cx.err(
                v,
                format!(
                    "timeout {key} {} out of range 1s..2147483s in whole seconds",
                    v.value
                ),
                "the kernel counts IPVS timeouts in seconds (defaults: tcp 15m, tcp_fin 2m, udp 5m)",
            );
            return 0;
        }
        u32::try_from(ms / 1000).unwrap_or(0)
    };
    ipvs::Timeouts {
        tcp: one("tcp", &r.tcp),
        tcp_fin: one("tcp_fin", &r.tcp_fin),
        udp: one("udp", &r.udp),
    }
}

fn sync_daemon(
    cx: &mut Cx,
    raw: &Spanned<RawSyncDaemon>,
    instances: &[Spanned<RawInstance>],
) -> Option<SyncDaemonConfig> {
    let before = cx.diags.len();
    let r = &raw.value;
    let facts = instance_facts(instances);
    let instance = match &r.instance {
        Some(i) if facts.contains_key(i.value.as_str()) => Some(i.value.clone()),
        Some(i) => {
            unknown_instance(cx, i, &facts);
            None
        }
        None if instances.len() == 1 => instances.first().map(|i| i.value.name.value.clone()),
        None => {
            cx.err(
                raw,
                "sync_daemon needs `instance:` when the file has several instances".into(),
                "name the instance whose state decides sync master (its Master) or backup",
            );
            None
        }
    };
    interface_name(cx, "sync_daemon interface", &r.interface);
    let syncid = match &r.syncid {
        Some(s) => cx.int_in(
            "syncid",
            s,
            0,
            255,
            "use 0..255, the same on both directors",
        ),
        None => instance
            .as_deref()
            .and_then(|i| facts.get(i))
            .map(|f| f.vrid.clamp(0, 255)),
    };
    let maxlen = r.maxlen.as_ref().and_then(|m| {
        cx.int_in(
            "sync_daemon maxlen",
            m,
            1,
            65_507,
            "the largest sync message payload in bytes; leave it out for the MTU's",
        )
    });
    let group = r
        .group
        .as_ref()
        .and_then(|g| match g.value.trim().parse::<IpAddr>() {
            Ok(a) if a.is_multicast() => Some(a),
            _ => {
                cx.err(
                g,
                format!("sync_daemon group `{}` is not a multicast address", g.value),
                "leave it out for the kernel's 224.0.0.81, or write e.g. 239.0.0.81 or ff02::8:81",
            );
                None
            }
        });
    let port = r
        .port
        .as_ref()
        .and_then(|p| cx.int_in("sync_daemon port", p, 1, 65_535, "the default is 8848"));
    let ttl = r
        .ttl
        .as_ref()
        .and_then(|t| cx.int_in("sync_daemon ttl", t, 1, 255, "the default is 1"));
    if cx.diags.len() > before {
        return None;
    }
    Some(SyncDaemonConfig {
        instance: instance?,
        interface: r.interface.value.clone(),
        syncid: u8::try_from(syncid?).ok()?,
        maxlen: maxlen.and_then(|m| u16::try_from(m).ok()),
        group,
        port: port.and_then(|p| u16::try_from(p).ok()),
        ttl: ttl.and_then(|t| u8::try_from(t).ok()),
    })
}
