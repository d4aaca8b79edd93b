//! The health part of `director status` (issue 18): per checked real server its health, and per
//! check the last result with its reason and latency and the time of the last change.

use serde::{Deserialize, Serialize};

/// One checked real server of one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RealServerHealth {
    /// `tcp:10.0.0.1:80`, `fwmark:5` (what `director drain` takes).
    pub service: String,
    /// `10.0.0.11:80`.
    pub real_server: String,
    /// `up`, `down` or `unknown` (no result yet: counted as down), all checks combined.
    pub health: String,
    /// Each of its checks.
    pub checks: Vec<CheckHealth>,
}

/// One check of a real server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckHealth {
    /// `tcp`, `http`, `https`, `dns`, `udp` or `exec`.
    pub kind: String,
    /// Where the probe connects (`connect_address` / `connect_port` applied).
    pub connect: String,
    /// `up`, `down` or `unknown`, after rise/fall.
    pub state: String,
    /// The last result's reason (`connected`, `status 503, expected 200-299`, ...); `null`
    /// before the first result.
    pub reason: Option<String>,
    /// The last result's latency in microseconds.
    pub latency_us: Option<u64>,
    /// When `state` last changed, in milliseconds since the Unix epoch.
    pub since_unix_ms: u64,
}

impl RealServerHealth {
    /// The view of the daemon's typed health.
    pub fn of(v: &crate::daemon::health::RealServerView) -> Self {
        RealServerHealth {
            service: crate::target::ServiceName(v.service).to_string(),
            real_server: crate::target::DestName(v.dest).to_string(),
            health: health_word(v.health).to_string(),
            checks: v
                .checks
                .iter()
                .map(|c| CheckHealth {
                    kind: c.kind.to_string(),
                    connect: c.connect.to_string(),
                    state: c.state.to_string(),
                    reason: c.reason.clone(),
                    latency_us: c
                        .latency
                        .map(|l| u64::try_from(l.as_micros()).unwrap_or(u64::MAX)),
                    since_unix_ms: c
                        .since
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0)),
                })
                .collect(),
        }
    }
}

/// `up`, `down`, `unknown`.
pub fn health_word(h: crate::desired::Health) -> &'static str {
    match h {
        crate::desired::Health::Up => "up",
        crate::desired::Health::Down => "down",
        crate::desired::Health::Unknown => "unknown",
    }
}

/// The human table: one line per check. Empty when nothing is checked.
pub fn render(list: &[RealServerHealth], now_ms: u64) -> String {
    if list.is_empty() {
        return String::new();
    }
    let header = [
        "SERVICE",
        "REAL SERVER",
        "HEALTH",
        "CHECK",
        "STATE",
        "SINCE",
        "LAST RESULT",
    ];
    let mut rows: Vec<[String; 7]> = vec![header.map(String::from)];
    for rs in list {
        for c in &rs.checks {
            let last = match (&c.reason, c.latency_us) {
                (Some(r), Some(us)) => format!("{r} ({}.{:03} ms)", us / 1000, us % 1000),
                (Some(r), None) => r.clone(),
                _ => "no result yet".to_string(),
            };
            rows.push([
                rs.service.clone(),
                rs.real_server.clone(),
                rs.health.clone(),
                format!("{} {}", c.kind, c.connect),
                c.state.clone(),
                format!(
                    "{} ago",
                    crate::status::ago(now_ms.saturating_sub(c.since_unix_ms))
                ),
                last,
            ]);
        }
    }
    crate::status::columns(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_reason_latency_and_age() {
        let list = vec![RealServerHealth {
            service: "tcp:192.0.2.10:80".into(),
            real_server: "10.0.0.11:80".into(),
            health: "down".into(),
            checks: vec![CheckHealth {
                kind: "http".into(),
                connect: "10.0.0.11:8080".into(),
                state: "down".into(),
                reason: Some("status 503, expected 200-299".into()),
                latency_us: Some(1_234),
                since_unix_ms: 10_000,
            }],
        }];
        assert_eq!(
            render(&list, 12_500),
            "SERVICE            REAL SERVER   HEALTH  CHECK                STATE  SINCE     LAST RESULT\n\
             tcp:192.0.2.10:80  10.0.0.11:80  down    http 10.0.0.11:8080  down   2.5s ago  \
             status 503, expected 200-299 (1.234 ms)\n"
        );
        assert_eq!(render(&[], 0), "");
        let json = serde_json::to_string(&list).unwrap_or_default();
        let back: Vec<RealServerHealth> = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(back, list);
    }
}
