//! The status socket: a local Unix stream socket, one request line in, one JSON line out.
//!
//! Protocol (version 1), one request per connection:
//!
//! | request line        | reply (one line of JSON)                                         |
//! |---------------------|------------------------------------------------------------------|
//! | `status`            | [`StatusDoc`]: `{"version":1,"pid":..,"config":..,"instances":[..]}` |
//! | `claim INSTANCE`    | [`Reply`]: `{"ok":true}` or `{"ok":false,"error":"..."}` (`role: external` only) |
//! | `release INSTANCE`  | [`Reply`], as for `claim`                                        |
//! | `drain SERVICE RS`  | [`Reply`]: the real server keeps weight 0 until undrained (kept in the state directory) |
//! | `undrain SERVICE RS`| [`Reply`]: the configured weight again                            |
//!
//! Anything else gets `{"ok":false,"error":"unknown request ..."}`. The socket file is created
//! mode 0600 (root only): it is local control, not a network API. A request line longer than
//! 1 KiB, or one that does not arrive within 2 s, is dropped.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cli::EXIT_UNAVAILABLE;

/// Protocol version carried in every [`StatusDoc`].
pub const PROTOCOL_VERSION: u32 = 1;

/// The reply to `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusDoc {
    /// [`PROTOCOL_VERSION`].
    pub version: u32,
    /// The daemon's process id.
    pub pid: u32,
    /// The configuration file it runs.
    pub config: String,
    /// One entry per instance, in file order.
    pub instances: Vec<InstanceView>,
    /// Every health-checked real server (issue 18), in configuration order; absent from older
    /// daemons.
    #[serde(default)]
    pub health: Vec<crate::status_health::RealServerHealth>,
}

/// One instance as `director status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceView {
    /// Instance name.
    pub name: String,
    /// Interface.
    pub interface: String,
    /// VRID.
    pub vrid: u8,
    /// VRRP version (2 or 3).
    pub vrrp_version: u8,
    /// `INIT`, `BACKUP`, `MASTER` or `FAULT` (havip's `State` as it displays).
    pub state: String,
    /// VIPs, `ADDR/PREFIX`.
    pub vips: Vec<String>,
    /// Address of the current master, when known (this node's own address while Master).
    pub master: Option<String>,
    /// Configured priority.
    pub priority: u8,
    /// Priority after tracking weights.
    pub effective_priority: u8,
    /// Why the instance is in FAULT, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_reason: Option<String>,
    /// The last state change, if any.
    pub last_transition: Option<Transition>,
    /// The virtual services this instance gates, when it gates any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipvs: Option<IpvsView>,
}

/// The IPVS side of one instance (from [`crate::state::InstanceIpvs`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IpvsView {
    /// `waiting`, `programming`, `programmed`, `withdrawing` or `withdrawn`.
    pub programming: String,
    /// The last reconcile, if any.
    pub last_reconcile: Option<ReconcileView>,
    /// The last takeover's reconcile (what programming cost before the VIP went up), if any.
    #[serde(default)]
    pub last_takeover: Option<ReconcileView>,
    /// Verifications that found the kernel changed behind our back and repaired it.
    pub drift_repairs: u64,
    /// Operations those repairs sent.
    pub drift_ops: u64,
    /// Reconciles that failed transiently and were retried with backoff.
    #[serde(default)]
    pub retries: u64,
    /// Reconciles the kernel refused for good.
    #[serde(default)]
    pub failures: u64,
    /// The services, in configuration order.
    pub services: Vec<ServiceView>,
}

/// One reconcile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconcileView {
    /// `takeover`, `drift`, `reload`, `drain`, `health`, `retry` or `withdraw`.
    pub trigger: String,
    /// When it started, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// How long it took, in milliseconds.
    pub took_ms: u64,
    /// Operations sent (0: the kernel already matched).
    pub ops: usize,
    /// `ok`, or what failed.
    pub outcome: String,
}

/// One virtual service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceView {
    /// `tcp:10.0.0.1:80`, `fwmark:5` (what `director drain` takes).
    pub service: String,
    /// Scheduler name.
    pub scheduler: String,
    /// Its real servers.
    pub real_servers: Vec<RealServerView>,
}

/// One real server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RealServerView {
    /// `10.0.0.11:80` (what `director drain` takes).
    pub real_server: String,
    /// Weight in the configuration; `null` once removed from it (draining out).
    pub configured_weight: Option<i32>,
    /// Weight this node wants in the kernel now.
    pub desired_weight: i32,
    /// Weight the kernel held at the last reconcile; `null` when not in the kernel.
    pub applied_weight: Option<i32>,
    /// Drained by an operator.
    pub drained: bool,
    /// Active connections at the last reconcile.
    pub active_conns: u32,
}

impl ReconcileView {
    /// The view of one typed reconcile.
    pub fn of(r: &crate::state::Reconcile) -> ReconcileView {
        ReconcileView {
            trigger: r.trigger.as_str().to_string(),
            at_unix_ms: r
                .at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            took_ms: u64::try_from(r.took.as_millis()).unwrap_or(u64::MAX),
            ops: r.ops,
            outcome: r.error.clone().unwrap_or_else(|| "ok".to_string()),
        }
    }
}

impl IpvsView {
    /// The view of the engine's typed state.
    pub fn of(s: &crate::state::InstanceIpvs) -> IpvsView {
        use crate::target::{DestName, ServiceName};
        IpvsView {
            programming: s.programming.as_str().to_string(),
            last_reconcile: s.last.as_ref().map(ReconcileView::of),
            last_takeover: s.last_takeover.as_ref().map(ReconcileView::of),
            drift_repairs: s.drift_repairs,
            drift_ops: s.drift_ops,
            retries: s.retries,
            failures: s.failures,
            services: s
                .services
                .iter()
                .map(|svc| ServiceView {
                    service: ServiceName(svc.key).to_string(),
                    scheduler: svc.scheduler.clone(),
                    real_servers: svc
                        .real_servers
                        .iter()
                        .map(|rs| RealServerView {
                            real_server: DestName(rs.key).to_string(),
                            configured_weight: rs.configured_weight,
                            desired_weight: rs.desired_weight,
                            applied_weight: rs.applied_weight,
                            drained: rs.drained,
                            active_conns: rs.active_conns,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// A state change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// State before.
    pub from: String,
    /// State after.
    pub to: String,
    /// Why, in words.
    pub reason: String,
    /// When, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
}

/// The reply to `claim` and `release`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// Whether the request was carried out.
    pub ok: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A parsed request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `status`
    Status,
    /// `claim NAME`
    Claim(String),
    /// `release NAME`
    Release(String),
    /// `drain SERVICE REALSERVER`: weight 0 until undrained, across reloads and restarts.
    Drain(String, String),
    /// `undrain SERVICE REALSERVER`
    Undrain(String, String),
}

impl Request {
    /// Parses one request line (without its newline).
    pub fn parse(line: &str) -> Result<Request, String> {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("status"), None, None) => Ok(Request::Status),
            (Some("claim"), Some(n), None) => Ok(Request::Claim(n.to_string())),
            (Some("release"), Some(n), None) => Ok(Request::Release(n.to_string())),
            (Some("drain"), Some(s), Some(r)) if words.next().is_none() => {
                Ok(Request::Drain(s.to_string(), r.to_string()))
            }
            (Some("undrain"), Some(s), Some(r)) if words.next().is_none() => {
                Ok(Request::Undrain(s.to_string(), r.to_string()))
            }
            _ => Err(format!(
                "unknown request `{}`: expected `status`, `claim NAME`, `release NAME`, \
                 `drain SERVICE REALSERVER` or `undrain SERVICE REALSERVER`",
                line.chars().take(80).collect::<String>()
            )),
        }
    }
}

/// Sends one request line and reads the one-line reply.
fn exchange(socket: &Path, request: &str) -> std::io::Result<String> {
    let mut s = UnixStream::connect(socket)?;
    // Long enough for a drain that waits behind a large reconcile, or the status of a large
    // table under load.
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(format!("{request}\n").as_bytes())?;
    let mut reply = String::new();
    BufReader::new(s.take_limit()).read_line(&mut reply)?;
    Ok(reply)
}

/// A reply is at most 256 MiB (the status of 10,000 services x 10 real servers is ~15 MB).
trait TakeLimit {
    fn take_limit(self) -> std::io::Take<UnixStream>;
}
impl TakeLimit for UnixStream {
    fn take_limit(self) -> std::io::Take<UnixStream> {
        std::io::Read::take(self, 256 << 20)
    }
}

/// `director status [--json]`.
pub fn client_status(socket: &Path, json: bool) -> ExitCode {
    let reply = match exchange(socket, "status") {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "director status: cannot reach the daemon at {}: {e} (is `director run` running? \
                 pass its socket with --socket)",
                socket.display()
            );
            return ExitCode::from(EXIT_UNAVAILABLE);
        }
    };
    let doc: StatusDoc = match serde_json::from_str(&reply) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("director status: the daemon's reply is not a status document: {e}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        match serde_json::to_string_pretty(&doc) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("director status: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        let now = now_unix_ms();
        print!("{}", render_table(&doc, now));
        let services = render_services(&doc, now);
        if !services.is_empty() {
            println!();
            print!("{services}");
        }
        let health = crate::status_health::render(&doc.health, now);
        if !health.is_empty() {
            println!();
            print!("{health}");
        }
    }
    ExitCode::SUCCESS
}

/// `director claim|release NAME`.
pub fn client_request(socket: &Path, request: &str) -> ExitCode {
    match exchange(socket, request).map(|r| serde_json::from_str::<Reply>(&r)) {
        Ok(Ok(Reply { ok: true, .. })) => ExitCode::SUCCESS,
        Ok(Ok(Reply { error, .. })) => {
            eprintln!("director: {request}: {}", error.unwrap_or_default());
            ExitCode::FAILURE
        }
        Ok(Err(e)) => {
            eprintln!("director: {request}: bad reply from the daemon: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!(
                "director: cannot reach the daemon at {}: {e}",
                socket.display()
            );
            ExitCode::from(EXIT_UNAVAILABLE)
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The human table of `director status`.
pub fn render_table(doc: &StatusDoc, now_ms: u64) -> String {
    let header = [
        "INSTANCE",
        "IFACE",
        "VRID",
        "STATE",
        "PRIO",
        "MASTER",
        "VIPS",
        "LAST CHANGE",
    ];
    let mut rows: Vec<[String; 8]> = vec![header.map(String::from)];
    for i in &doc.instances {
        let last = match &i.last_transition {
            Some(t) => format!(
                "{} -> {} {} ago: {}",
                t.from,
                t.to,
                ago(now_ms.saturating_sub(t.at_unix_ms)),
                t.reason
            ),
            None => "-".to_string(),
        };
        let last = match &i.fault_reason {
            Some(r) => format!("{last} [fault: {r}]"),
            None => last,
        };
        let prio = if i.priority == i.effective_priority {
            i.priority.to_string()
        } else {
            format!("{}({})", i.effective_priority, i.priority)
        };
        rows.push([
            i.name.clone(),
            i.interface.clone(),
            i.vrid.to_string(),
            i.state.clone(),
            prio,
            i.master.clone().unwrap_or_else(|| "-".into()),
            i.vips.join(","),
            last,
        ]);
    }
    columns(&rows)
}

/// The services part of `director status`: one block per instance that gates services, a line
/// per real server with its weights (configured / wanted now / in the kernel), then the last
/// reconcile and the drift repairs. Empty when no instance gates services.
pub fn render_services(doc: &StatusDoc, now_ms: u64) -> String {
    let mut rows: Vec<[String; 6]> = Vec::new();
    let mut tails = Vec::new();
    for i in &doc.instances {
        let Some(v) = &i.ipvs else { continue };
        for svc in &v.services {
            let mut first = true;
            for rs in &svc.real_servers {
                let w = |x: Option<i32>| x.map_or("-".to_string(), |w| w.to_string());
                let mut notes = Vec::new();
                if rs.drained {
                    notes.push("drained");
                }
                if rs.configured_weight.is_none() {
                    notes.push("removed, draining out");
                }
                rows.push([
                    if first { i.name.clone() } else { String::new() },
                    if first {
                        format!("{} {}", svc.service, svc.scheduler)
                    } else {
                        String::new()
                    },
                    rs.real_server.clone(),
                    format!(
                        "{}/{}/{}",
                        w(rs.configured_weight),
                        rs.desired_weight,
                        w(rs.applied_weight)
                    ),
                    rs.active_conns.to_string(),
                    notes.join(", "),
                ]);
                first = false;
            }
            if first {
                rows.push([
                    i.name.clone(),
                    format!("{} {}", svc.service, svc.scheduler),
                    "-".into(),
                    String::new(),
                    String::new(),
                    "no real server".into(),
                ]);
            }
        }
        let last = match &v.last_reconcile {
            Some(r) => format!(
                "last reconcile {} ago ({}): {} op{} in {} ms, {}",
                ago(now_ms.saturating_sub(r.at_unix_ms)),
                r.trigger,
                r.ops,
                if r.ops == 1 { "" } else { "s" },
                r.took_ms,
                r.outcome
            ),
            None => "no reconcile yet".to_string(),
        };
        tails.push(format!(
            "{}: {}; {last}; drift repairs {} ({} ops); retries {}, failures {}",
            i.name, v.programming, v.drift_repairs, v.drift_ops, v.retries, v.failures
        ));
    }
    if rows.is_empty() && tails.is_empty() {
        return String::new();
    }
    let header = [
        "INSTANCE",
        "SERVICE",
        "REAL SERVER",
        "WEIGHT CFG/WANT/KERNEL",
        "ACTIVE",
        "",
    ];
    rows.insert(0, header.map(String::from));
    let mut out = columns(&rows);
    for t in tails {
        out.push_str(&t);
        out.push('\n');
    }
    out
}

/// Rows as left-aligned columns, two spaces apart, trailing blanks trimmed.
pub(crate) fn columns<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, (w, c)) in widths.iter().zip(r.iter()).enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `1.5s`, `3m20s`, `2h5m`.
pub(crate) fn ago(ms: u64) -> String {
    let s = ms / 1000;
    if s < 60 {
        format!("{}.{}s", s, (ms % 1000) / 100)
    } else if s < 3600 {
        format!("{}m{}s", s / 60, s % 60)
    } else {
        format!("{}h{}m", s / 3600, (s % 3600) / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> StatusDoc {
        StatusDoc {
            version: 1,
            pid: 42,
            config: "/etc/director.yaml".into(),
            instances: vec![InstanceView {
                name: "web".into(),
                interface: "eth0".into(),
                vrid: 51,
                vrrp_version: 3,
                state: "Master".into(),
                vips: vec!["192.0.2.10/24".into()],
                master: Some("192.0.2.1".into()),
                priority: 150,
                effective_priority: 100,
                fault_reason: None,
                last_transition: Some(Transition {
                    from: "Backup".into(),
                    to: "Master".into(),
                    reason: "master down timer expired".into(),
                    at_unix_ms: 1_000,
                }),
                ipvs: None,
            }],
            health: Vec::new(),
        }
    }

    #[test]
    fn requests_parse() {
        assert_eq!(Request::parse("status"), Ok(Request::Status));
        assert_eq!(Request::parse(" status \r"), Ok(Request::Status));
        assert_eq!(Request::parse("claim db"), Ok(Request::Claim("db".into())));
        assert_eq!(
            Request::parse("release db"),
            Ok(Request::Release("db".into()))
        );
        assert!(Request::parse("claim").is_err());
        assert!(Request::parse("status now").is_err());
        assert!(Request::parse("").is_err());
        assert_eq!(
            Request::parse("drain tcp:10.0.0.1:80 10.0.0.11"),
            Ok(Request::Drain("tcp:10.0.0.1:80".into(), "10.0.0.11".into()))
        );
        assert_eq!(
            Request::parse("undrain fwmark:5 10.0.0.11:0"),
            Ok(Request::Undrain("fwmark:5".into(), "10.0.0.11:0".into()))
        );
        assert!(Request::parse("drain tcp:10.0.0.1:80").is_err());
        assert!(Request::parse("drain a b c").is_err());
    }

    #[test]
    fn json_round_trips() {
        let d = doc();
        let text = serde_json::to_string(&d).unwrap();
        assert!(text.contains(r#""state":"Master""#), "{text}");
        assert_eq!(serde_json::from_str::<StatusDoc>(&text).unwrap(), d);
    }

    #[test]
    fn table_shows_state_priority_and_transition() {
        let t = render_table(&doc(), 62_500);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("INSTANCE  IFACE  VRID  STATE"), "{t}");
        assert!(
            lines[1].starts_with("web       eth0   51    Master  100(150)"),
            "{t}"
        );
        assert!(
            lines[1].ends_with("Backup -> Master 1m1s ago: master down timer expired"),
            "{t}"
        );
    }

    #[test]
    fn services_show_weights_drains_and_the_last_reconcile() {
        let mut d = doc();
        assert_eq!(render_services(&d, 0), "", "no services, no section");
        d.instances[0].ipvs = Some(IpvsView {
            programming: "programmed".into(),
            last_reconcile: Some(ReconcileView {
                trigger: "takeover".into(),
                at_unix_ms: 1_000,
                took_ms: 35,
                ops: 11,
                outcome: "ok".into(),
            }),
            last_takeover: None,
            drift_repairs: 1,
            drift_ops: 2,
            retries: 3,
            failures: 0,
            services: vec![ServiceView {
                service: "tcp:192.0.2.10:80".into(),
                scheduler: "wlc".into(),
                real_servers: vec![
                    RealServerView {
                        real_server: "10.0.0.11:80".into(),
                        configured_weight: Some(1),
                        desired_weight: 1,
                        applied_weight: Some(1),
                        drained: false,
                        active_conns: 3,
                    },
                    RealServerView {
                        real_server: "10.0.0.12:80".into(),
                        configured_weight: Some(2),
                        desired_weight: 0,
                        applied_weight: Some(0),
                        drained: true,
                        active_conns: 0,
                    },
                ],
            }],
        });
        let t = render_services(&d, 3_500);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("INSTANCE  SERVICE"), "{t}");
        assert!(
            lines[1].starts_with("web       tcp:192.0.2.10:80 wlc  10.0.0.11:80  1/1/1"),
            "{t}"
        );
        assert!(
            lines[2].contains("10.0.0.12:80  2/0/0") && lines[2].ends_with("drained"),
            "{t}"
        );
        assert_eq!(
            lines[3],
            "web: programmed; last reconcile 2.5s ago (takeover): 11 ops in 35 ms, ok; drift repairs 1 (2 ops); retries 3, failures 0"
        );
        let text = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<StatusDoc>(&text).unwrap(), d);
    }

    #[test]
    fn ago_formats() {
        assert_eq!(ago(1_500), "1.5s");
        assert_eq!(ago(200_000), "3m20s");
        assert_eq!(ago(7_500_000), "2h5m");
    }
}
