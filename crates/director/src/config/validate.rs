//! Semantic checks on the parsed file. Every value is checked and every problem collected (as
//! linkerd's `env.rs` does for its settings) before the result is returned, so one `check` run
//! shows all of them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde_saphyr::Spanned;

use super::duration::{format_duration, parse_duration};
use super::ipvs_settings::ipvs_settings;
use super::model::*;
use super::schema::{RawConfig, RawGarp, RawGlobal, RawInstance, RawNotify, RawRole};
use super::services::services;
use super::track;
use super::vips::{address, vips};
use super::Diagnostic;

/// Collects diagnostics while the checks run.
#[derive(Default)]
pub(super) struct Cx {
    pub(super) diags: Vec<Diagnostic>,
}

impl Cx {
    /// Records an error at the value `at` points to.
    pub(super) fn err<T>(&mut self, at: &Spanned<T>, message: String, hint: &str) {
        let (line, col) = pos(at);
        let hint = (!hint.is_empty()).then(|| hint.to_string());
        self.diags.push(Diagnostic::at(line, col, message, hint));
    }

    /// Parses a duration value, recording an error when it is not one.
    pub(super) fn duration(&mut self, key: &str, v: &Spanned<String>) -> Option<Duration> {
        match parse_duration(&v.value) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(v, format!("{key}: {e}"), e.hint());
                None
            }
        }
    }

    /// Checks an integer range, recording `what VALUE out of range LO..HI`.
    pub(super) fn int_in(
        &mut self,
        what: &str,
        v: &Spanned<i64>,
        lo: i64,
        hi: i64,
        hint: &str,
    ) -> Option<i64> {
        if (lo..=hi).contains(&v.value) {
            Some(v.value)
        } else {
            self.err(
                v,
                format!("{what} {} out of range {lo}..{hi}", v.value),
                hint,
            );
            None
        }
    }

    /// Checks a command string is not empty.
    pub(super) fn command(&mut self, key: &str, v: &Spanned<String>) -> Option<String> {
        if v.value.trim().is_empty() {
            self.err(
                v,
                format!("{key} is empty"),
                "write the command, or remove the key",
            );
            None
        } else {
            Some(v.value.clone())
        }
    }
}

/// Line and column of a spanned value.
pub(super) fn pos<T>(v: &Spanned<T>) -> (u64, u64) {
    (v.referenced.line(), v.referenced.column())
}

/// Validates the whole file: `Ok` only when there is no problem at all.
pub(super) fn validate(raw: RawConfig) -> Result<Config, Vec<Diagnostic>> {
    let mut cx = Cx::default();
    let global = raw
        .global
        .as_ref()
        .map_or_else(Global::default, |g| global(&mut cx, g));
    let mut instances = Vec::new();
    match &raw.instances {
        None => cx.diags.push(Diagnostic::at(
            1,
            1,
            "no `instances:` list",
            Some("add `instances:` with at least one VRRP instance".into()),
        )),
        Some(list) if list.value.is_empty() => cx.err(
            list,
            "the instance list is empty".into(),
            "add at least one VRRP instance",
        ),
        Some(list) => {
            for inst in &list.value {
                if let Some(i) = instance(&mut cx, inst) {
                    instances.push(i);
                }
            }
            duplicates(&mut cx, &list.value);
        }
    }
    let raw_instances = raw.instances.as_ref().map_or(&[][..], |l| &l.value[..]);
    let ipvs = raw.ipvs.as_ref().map_or_else(IpvsSettings::default, |i| {
        ipvs_settings(&mut cx, i, raw_instances)
    });
    // Written, even if invalid: the kernel's mixed-family rule applies once it is fixed.
    let sync = raw
        .ipvs
        .as_ref()
        .is_some_and(|i| i.value.sync_daemon.is_some());
    let virtual_services = raw
        .virtual_servers
        .as_ref()
        .map_or_else(Vec::new, |l| services(&mut cx, l, raw_instances, sync));
    if cx.diags.is_empty() {
        Ok(Config {
            global,
            instances,
            virtual_services: std::sync::Arc::new(virtual_services),
            ipvs,
        })
    } else {
        Err(cx.diags)
    }
}

fn global(cx: &mut Cx, g: &RawGlobal) -> Global {
    let mut out = Global::default();
    if let Some(s) = &g.status_socket {
        if s.value.starts_with('/') && s.value.len() < 108 {
            out.status_socket = PathBuf::from(&s.value);
        } else {
            cx.err(
                s,
                format!(
                    "status_socket `{}` is not an absolute path under 108 bytes",
                    s.value
                ),
                "use an absolute path such as /run/director/director.sock",
            );
        }
    }
    if let Some(l) = &g.log_level {
        const LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];
        if LEVELS.contains(&l.value.as_str()) {
            out.log_level = l.value.clone();
        } else {
            cx.err(
                l,
                format!("log_level `{}` is not a level", l.value),
                "use one of error, warn, info, debug, trace",
            );
        }
    }
    out
}

/// One instance: each key checked in the file's order of concerns (identity, VRRP timing,
/// addresses, preemption, announcements, tracking, notify, role, authentication), every problem
/// reported; `None` when any was.
fn instance(cx: &mut Cx, raw: &Spanned<RawInstance>) -> Option<Instance> {
    let before = cx.diags.len();
    let r = &raw.value;
    instance_name(cx, &r.name);
    interface_name(cx, "interface", &r.interface);
    let vrid = cx.int_in(
        "VRID",
        &r.virtual_router_id,
        1,
        255,
        "pick a number shared by both nodes of the pair and unique on the interface",
    );
    let version = version(cx, r);
    let priority = priority(cx, r);
    let advert_interval = match &r.advert_interval {
        None => Some(DEFAULT_ADVERT_INTERVAL),
        Some(v) => cx
            .duration("advert_interval", v)
            .and_then(|d| advert_range(cx, v, d, version)),
    };
    let vips = vips(cx, raw, version);
    let fam = vips.first().map(|v| v.addr.is_ipv4());
    let unicast_src_ip = r
        .unicast_src_ip
        .as_ref()
        .and_then(|s| address(cx, "unicast_src_ip", s, fam));
    let unicast_peers = unicast_peers(cx, r, fam, unicast_src_ip);
    let preempt_delay = preempt_delay(cx, r);
    let garp = r
        .garp
        .as_ref()
        .map_or(Some(Garp::default()), |g| garp(cx, &g.value));
    let track_interfaces = track::interfaces(cx, r.track_interface.as_deref().unwrap_or(&[]));
    let checks = track::checks(cx, r.track_check.as_deref().unwrap_or(&[]));
    let notify = r
        .notify
        .as_ref()
        .map_or_else(Notify::default, |n| notify(cx, n));
    let role = role(cx, r);
    refuse_accept(cx, r);
    let auth_pass = auth_pass(cx, r, version);
    if cx.diags.len() > before {
        return None;
    }
    Some(Instance {
        name: r.name.value.clone(),
        interface: r.interface.value.clone(),
        vrid: u8::try_from(vrid?).ok()?,
        priority: u8::try_from(priority?).ok()?,
        version: version?,
        advert_interval: advert_interval?,
        vips,
        unicast_src_ip,
        unicast_peers,
        preempt: r.preempt.as_ref().is_none_or(|p| p.value),
        preempt_delay: preempt_delay?,
        garp: garp?,
        track_interfaces,
        checks,
        notify,
        role,
        auth_pass,
    })
}

/// The instance name: 1 to 64 letters, digits, '-', '_' or '.' (it names the instance in logs,
/// the status and notify arguments).
fn instance_name(cx: &mut Cx, name: &Spanned<String>) {
    let ok = !name.value.is_empty()
        && name.value.len() <= 64
        && name
            .value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !ok {
        cx.err(
            name,
            format!("instance name `{}` is not a plain name", name.value),
            "use 1 to 64 letters, digits, '-', '_' or '.'",
        );
    }
}

/// `version`: 3 (the default) or 2.
fn version(cx: &mut Cx, r: &RawInstance) -> Option<Version> {
    match &r.version {
        None => Some(Version::V3),
        Some(v) if v.value == 3 => Some(Version::V3),
        Some(v) if v.value == 2 => Some(Version::V2),
        Some(v) => {
            cx.err(
                v,
                format!("version {} is not a VRRP version", v.value),
                "use 3 (the default) or 2 for a keepalived pair on VRRPv2",
            );
            None
        }
    }
}

/// `priority`: 1..=255 (default [`DEFAULT_PRIORITY`]).
fn priority(cx: &mut Cx, r: &RawInstance) -> Option<i64> {
    match &r.priority {
        None => Some(i64::from(DEFAULT_PRIORITY)),
        Some(p) => cx.int_in(
            "priority",
            p,
            1,
            255,
            "0 is sent only by a master that resigns; 255 means this node owns the addresses",
        ),
    }
}

/// `unicast_peer`: addresses of the VIPs' family, each once, none the node's own source.
fn unicast_peers(
    cx: &mut Cx,
    r: &RawInstance,
    fam: Option<bool>,
    unicast_src_ip: Option<IpAddr>,
) -> Vec<IpAddr> {
    let mut peers = Vec::new();
    for p in r.unicast_peer.iter().flatten() {
        if let Some(a) = address(cx, "unicast_peer", p, fam) {
            if peers.contains(&a) {
                cx.err(p, format!("unicast_peer {a} is listed twice"), "remove one");
            } else if Some(a) == unicast_src_ip {
                cx.err(
                    p,
                    format!("unicast_peer {a} is this node's own unicast_src_ip"),
                    "list the other nodes only",
                );
            } else {
                peers.push(a);
            }
        }
    }
    peers
}

/// `preempt_delay`: 0s (the default) to 1000s.
fn preempt_delay(cx: &mut Cx, r: &RawInstance) -> Option<Duration> {
    match &r.preempt_delay {
        None => Some(Duration::ZERO),
        Some(v) => cx.duration("preempt_delay", v).and_then(|d| {
            if d > Duration::from_secs(1000) {
                cx.err(
                    v,
                    format!(
                        "preempt_delay {} out of range 0s..1000s",
                        format_duration(d)
                    ),
                    "use at most 1000s",
                );
                None
            } else {
                Some(d)
            }
        }),
    }
}

/// `role` (VRRP by default) and `fence`, which only `role: external` takes.
fn role(cx: &mut Cx, r: &RawInstance) -> Role {
    match r.role.as_ref().map(|r| r.value) {
        None | Some(RawRole::Vrrp) => {
            if let Some(f) = &r.fence {
                cx.err(
                    f,
                    "fence applies only to `role: external`".into(),
                    "remove it, or set `role: external`",
                );
            }
            Role::Vrrp
        }
        Some(RawRole::External) => {
            external_untracked(cx, r);
            Role::External {
                fence: r.fence.as_ref().and_then(|f| cx.command("fence", f)),
            }
        }
    }
}

/// `accept` is refused whatever its value: it would have no effect.
fn refuse_accept(cx: &mut Cx, r: &RawInstance) {
    if let Some(a) = &r.accept {
        cx.err(
            a,
            "`accept` has no effect: a node that holds a VIP always accepts packets addressed to it \
             (the address is on its interface, so the kernel delivers them), and that cannot be \
             switched off here (RFC 9568 Accept_Mode false is not implemented)"
                .into(),
            "remove the key; to keep a VIP unreachable except through IPVS, filter it with nftables",
        );
    }
}

/// `auth_pass`: VRRPv2 only, 1 to 8 bytes.
fn auth_pass(cx: &mut Cx, r: &RawInstance, version: Option<Version>) -> Option<Secret> {
    match (&r.auth_pass, version) {
        (None, _) => None,
        (Some(p), Some(Version::V3)) => {
            cx.err(
                p,
                "auth_pass is VRRPv2 only: VRRPv3 has no authentication (RFC 5798 - Section 9)"
                    .into(),
                "remove it, or set `version: 2` to match a keepalived v2 pair",
            );
            None
        }
        (Some(p), _) => {
            if p.value.0.is_empty() || p.value.0.len() > 8 {
                cx.err(
                    p,
                    "auth_pass must be 1 to 8 bytes (RFC 3768 - Section 5.3.10)".into(),
                    "keepalived truncates longer passwords to 8: write the first 8",
                );
                None
            } else {
                Some(p.value.clone())
            }
        }
    }
}

/// `role: external` runs no VRRP state machine, so nothing would read tracking: refuse it
/// rather than accept keys without effect.
fn external_untracked(cx: &mut Cx, r: &RawInstance) {
    let hint = "remove it: an external-role instance is moved by `director claim` / `release` \
                only; use `role: vrrp` for an instance that follows its checks";
    if let Some(t) = r.track_interface.as_ref().and_then(|l| l.first()) {
        cx.err(
            t,
            "track_interface has no effect with `role: external`: no VRRP election runs, so \
             nothing lowers the priority or enters FAULT"
                .into(),
            hint,
        );
    }
    if let Some(c) = r.track_check.as_ref().and_then(|l| l.first()) {
        cx.err(
            c,
            "track_check has no effect with `role: external`: no VRRP election runs, so \
             nothing lowers the priority or enters FAULT"
                .into(),
            hint,
        );
    }
}

/// Checks an interface name: 1..15 bytes, no '/', no whitespace (the kernel's rules).
pub(super) fn interface_name(cx: &mut Cx, key: &str, v: &Spanned<String>) -> bool {
    let ok = !v.value.is_empty()
        && v.value.len() <= 15
        && !v
            .value
            .contains(|c: char| c == '/' || c == ':' || c.is_whitespace());
    if !ok {
        cx.err(
            v,
            format!("{key} `{}` is not an interface name", v.value),
            "Linux interface names are 1 to 15 characters without '/', ':' or spaces",
        );
    }
    ok
}

/// RFC 9568 - Section 5.2.7: "Max Advertise Interval ... a 12-bit field that indicates the time
/// interval (in centiseconds)". RFC 3768 - Section 5.3.7: "Advertisement Interval ... in seconds",
/// an 8-bit field.
fn advert_range(
    cx: &mut Cx,
    v: &Spanned<String>,
    d: Duration,
    version: Option<Version>,
) -> Option<Duration> {
    let ms = d.as_millis();
    match version {
        Some(Version::V2) if ms % 1000 != 0 => {
            cx.err(
                v,
                format!(
                    "advert_interval {} is not whole seconds, which VRRPv2 requires",
                    v.value
                ),
                "use 1s..255s, or `version: 3` for sub-second intervals",
            );
            None
        }
        Some(Version::V2) if !(1000..=255_000).contains(&ms) => {
            cx.err(
                v,
                format!(
                    "advert_interval {} out of range 1s..255s for VRRPv2",
                    v.value
                ),
                "use 1s..255s",
            );
            None
        }
        Some(Version::V3) if !(10..=40_950).contains(&ms) || ms % 10 != 0 => {
            cx.err(
                v,
                format!(
                    "advert_interval {} out of range 10ms..40.95s for VRRPv3",
                    v.value
                ),
                "VRRPv3 counts centiseconds: use 10ms to 40.95s in steps of 10ms",
            );
            None
        }
        _ => Some(d),
    }
}

fn garp(cx: &mut Cx, g: &RawGarp) -> Option<Garp> {
    let mut out = Garp::default();
    let before = cx.diags.len();
    if let Some(r) = &g.repeat {
        if let Some(n) = cx.int_in("garp repeat", r, 0, 100, "use 0..100") {
            out.repeat = u32::try_from(n).unwrap_or(0);
        }
    }
    if let Some(i) = &g.interval {
        if let Some(d) = cx.duration("garp interval", i) {
            if d > Duration::from_secs(10) {
                cx.err(
                    i,
                    format!("garp interval {} above 10s", i.value),
                    "use 0s..10s",
                );
            }
            out.interval = d;
        }
    }
    if let Some(r) = &g.refresh {
        if let Some(d) = cx.duration("garp refresh", r) {
            out.refresh = (!d.is_zero()).then_some(d);
            if !d.is_zero() && d < Duration::from_secs(1) {
                cx.err(
                    r,
                    format!("garp refresh {} below 1s", r.value),
                    "use 0s (off) or >= 1s",
                );
            }
        }
    }
    (cx.diags.len() == before).then_some(out)
}

fn notify(cx: &mut Cx, n: &RawNotify) -> Notify {
    let mut one = |key: &str, v: &Option<Spanned<String>>| {
        v.as_ref()
            .and_then(|s| cx.command(&format!("notify {key}"), s))
    };
    Notify {
        master: one("master", &n.master),
        backup: one("backup", &n.backup),
        fault: one("fault", &n.fault),
        stop: one("stop", &n.stop),
        any: one("any", &n.any),
    }
}

/// Names unique; (interface, VRID, family) unique: RFC 9568 - Section 7.3 keys a virtual router
/// by its VRID on a LAN, and IPv4 and IPv6 virtual routers are separate.
fn duplicates(cx: &mut Cx, list: &[Spanned<RawInstance>]) {
    let mut names: HashMap<&str, (u64, u64)> = HashMap::new();
    let mut vrids: HashMap<(&str, i64, bool), (u64, u64)> = HashMap::new();
    for inst in list {
        let r = &inst.value;
        if let Some((l, c)) = names.get(r.name.value.as_str()) {
            cx.err(
                &r.name,
                format!(
                    "instance name `{}` is already used at line {l}, column {c}",
                    r.name.value
                ),
                "give each instance its own name",
            );
        } else {
            names.insert(&r.name.value, pos(&r.name));
        }
        // Family of the first VIP that parses; IPv4 when none does.
        let v4 = r
            .virtual_ipaddress
            .as_ref()
            .and_then(|l| {
                l.value.iter().find_map(|v| {
                    let t = v.value.split('/').next().unwrap_or("");
                    t.trim().parse::<IpAddr>().ok()
                })
            })
            .is_none_or(|a| a.is_ipv4());
        let key = (r.interface.value.as_str(), r.virtual_router_id.value, v4);
        if let Some((l, c)) = vrids.get(&key) {
            cx.err(
                &r.virtual_router_id,
                format!(
                    "VRID {} is already used on {} by the instance at line {l}, column {c}",
                    key.1, key.0
                ),
                "each instance on one interface needs its own virtual_router_id",
            );
        } else {
            vrids.insert(key, pos(&r.virtual_router_id));
        }
    }
}
