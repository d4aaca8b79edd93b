//! The status socket: a local Unix stream socket, one request line in, one JSON line out.
//!
//! Protocol (version 1), one request per connection:
//!
//! | request line        | reply (one line of JSON)                                         |
//! |---------------------|------------------------------------------------------------------|
//! | `status`            | [`StatusDoc`]: `{"version":1,"pid":..,"config":..,"instances":[..]}` |
//! | `claim INSTANCE`    | [`Reply`]: `{"ok":true}` or `{"ok":false,"error":"..."}` (`role: external` only) |
//! | `release INSTANCE`  | [`Reply`], as for `claim`                                        |
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
    /// `Initialize`, `Backup`, `Master`, `Fault` or `Stopped`.
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
}

impl Request {
    /// Parses one request line (without its newline).
    pub fn parse(line: &str) -> Result<Request, String> {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("status"), None, None) => Ok(Request::Status),
            (Some("claim"), Some(n), None) => Ok(Request::Claim(n.to_string())),
            (Some("release"), Some(n), None) => Ok(Request::Release(n.to_string())),
            _ => Err(format!(
                "unknown request `{}`: expected `status`, `claim NAME` or `release NAME`",
                line.chars().take(80).collect::<String>()
            )),
        }
    }
}

/// Sends one request line and reads the one-line reply.
fn exchange(socket: &Path, request: &str) -> std::io::Result<String> {
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(format!("{request}\n").as_bytes())?;
    let mut reply = String::new();
    BufReader::new(s.take_limit()).read_line(&mut reply)?;
    Ok(reply)
}

/// A reply is at most 4 MiB.
trait TakeLimit {
    fn take_limit(self) -> std::io::Take<UnixStream>;
}
impl TakeLimit for UnixStream {
    fn take_limit(self) -> std::io::Take<UnixStream> {
        std::io::Read::take(self, 4 << 20)
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
        print!("{}", render_table(&doc, now_unix_ms()));
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
    let mut widths = [0usize; 8];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
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
fn ago(ms: u64) -> String {
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
            }],
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
    fn ago_formats() {
        assert_eq!(ago(1_500), "1.5s");
        assert_eq!(ago(200_000), "3m20s");
        assert_eq!(ago(7_500_000), "2h5m");
    }
}
