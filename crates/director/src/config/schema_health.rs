//! The YAML of real-server health checks as written (issue 18): `checks:`, `on_down:`,
//! `sorry_server:`, `quorum:` and `quorum_down:` on a virtual service, `checks:` on a real server.
//! Same rules as `schema`: loosely typed values in [`Spanned`], checked in `health_checks`.

use serde::Deserialize;
use serde_saphyr::Spanned;

/// One entry of `checks:`. `kind` selects the probe; the options of other kinds are refused.
#[derive(Debug, Deserialize)]
pub struct RawHealthCheck {
    /// `tcp`, `http`, `https`, `dns`, `udp` or `exec`.
    pub kind: Spanned<String>,
    /// Time between two probe starts (default 5s).
    #[serde(default)]
    pub interval: Option<Spanned<String>>,
    /// Limit of one probe (default 2s; at most the interval).
    #[serde(default)]
    pub timeout: Option<Spanned<String>>,
    /// Successes in a row to count as up (default 1).
    #[serde(default)]
    pub rise: Option<Spanned<i64>>,
    /// Failures in a row to count as down (default 1).
    #[serde(default)]
    pub fall: Option<Spanned<i64>>,
    /// Probe this address instead of the real server's.
    #[serde(default)]
    pub connect_address: Option<Spanned<String>>,
    /// Probe this port instead of the real server's.
    #[serde(default)]
    pub connect_port: Option<Spanned<i64>>,
    /// http/https: the request path (default `/`).
    #[serde(default)]
    pub path: Option<Spanned<String>>,
    /// http/https: the Host header.
    #[serde(default)]
    pub host: Option<Spanned<String>>,
    /// http/https: the accepted status, `200` or a range `200-399` (default 200-299).
    #[serde(default)]
    pub status: Option<Spanned<String>>,
    /// http/https: text the body must contain.
    #[serde(default)]
    pub body_contains: Option<Spanned<String>>,
    /// https: verify the certificate (default true, against the system store or `ca_file`).
    #[serde(default)]
    pub verify: Option<Spanned<bool>>,
    /// https: a PEM file of trusted certificates.
    #[serde(default)]
    pub ca_file: Option<Spanned<String>>,
    /// https: the SNI name.
    #[serde(default)]
    pub sni: Option<Spanned<String>>,
    /// dns: the name asked for.
    #[serde(default)]
    pub query: Option<Spanned<String>>,
    /// dns: the query type (default A).
    #[serde(default)]
    pub query_type: Option<Spanned<String>>,
    /// dns: the expected RCODE number (default 0, NOERROR).
    #[serde(default)]
    pub rcode: Option<Spanned<i64>>,
    /// udp: the datagram sent.
    #[serde(default)]
    pub send: Option<Spanned<String>>,
    /// udp: text the answer must contain.
    #[serde(default)]
    pub expect: Option<Spanned<String>>,
    /// exec: the command, run with `sh -c`.
    #[serde(default)]
    pub command: Option<Spanned<String>>,
}

/// `sorry_server:` of a virtual service.
#[derive(Debug, Deserialize)]
pub struct RawSorryServer {
    /// Address.
    pub address: Spanned<String>,
    /// Port (default: the service's).
    #[serde(default)]
    pub port: Option<Spanned<i64>>,
    /// Weight (default 1).
    #[serde(default)]
    pub weight: Option<Spanned<i64>>,
    /// `dr`, `nat` or `tunnel` (default: the service's).
    #[serde(default)]
    pub forwarding: Option<Spanned<String>>,
}

/// `quorum_down:` of a virtual service: exactly one of the two.
#[derive(Debug, Deserialize)]
pub struct RawQuorumDown {
    /// Lower the instance's VRRP priority by this much while the quorum is lost.
    #[serde(default)]
    pub priority_decrease: Option<Spanned<i64>>,
    /// `true`: put the instance in FAULT while the quorum is lost.
    #[serde(default)]
    pub fault: Option<Spanned<bool>>,
}
