//! One run of one tracking probe, bounded by its timeout, as an [`Outcome`]. None panics on what
//! it reads (a process's output, a socket, a file).
//!
//! TCP, HTTP and exec run on the `health` crate's probes, the ones the director's real-server
//! checks use ([`health::probe::Prober`]): one implementation per kind. The two kinds that only
//! mean something to VRRP tracking live here: a local process by name and a file value.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use health::probe::{ProbeError, Prober};
use health::{CheckKind, ExecCheck, HttpCheck, StatusRange};
use tokio::io::AsyncReadExt;
use tokio::time::timeout;

/// What to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeSpec {
    /// Run `sh -c COMMAND` (in its own process group, output discarded); exit status 0 is up,
    /// anything else (or the timeout, which kills the group) down. Runs as `health`'s exec
    /// probe; there is no real server, so `REAL_SERVER_ADDRESS` / `CHECK_ADDRESS` are `0.0.0.0`
    /// and the ports 0.
    Exec {
        /// The command line, given to `sh -c`.
        command: String,
    },
    /// A TCP connect to `addr` within the timeout is up (`health`'s TCP probe: the connection
    /// is reset at once).
    Tcp {
        /// Where to connect.
        addr: SocketAddr,
    },
    /// An HTTP/1.1 `GET path` to `addr` (`health`'s HTTP probe) whose status is `expect_status`
    /// is up.
    Http {
        /// Where to connect.
        addr: SocketAddr,
        /// The Host header (defaults to the address).
        host: Option<String>,
        /// The request path, e.g. `/healthz`.
        path: String,
        /// The status that means healthy, e.g. 200.
        expect_status: u16,
    },
    /// A process whose name (`/proc/PID/comm`) is `name` exists.
    Process {
        /// The process name (compared with the kernel's 15-byte `comm`).
        name: String,
    },
    /// The file's content is an integer that sets the weight, or `fault` (or anything that is not
    /// a number, or a missing file) for FAULT. Lets any external tool drive the VIP.
    File {
        /// The file to read.
        path: PathBuf,
    },
}

/// The result of one probe run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Healthy.
    Up,
    /// Unhealthy, with why.
    Down(String),
    /// A file probe's value.
    Value(i64),
    /// A file probe asking for FAULT, with why.
    Fault(String),
}

impl Outcome {
    /// True for [`Outcome::Up`] and for a value (a readable file is a working probe).
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Up | Outcome::Value(_))
    }
}

/// Longest file a file probe reads.
const FILE_MAX: u64 = 4096;

/// A probe ready to run again and again: what is built once per check (the `health` prober)
/// is kept between runs.
pub struct Probe {
    kind: Kind,
    limit: Duration,
}

enum Kind {
    /// TCP, HTTP, exec: `health`'s prober, and how a failure's reason is prefixed.
    Health {
        prober: Prober,
        context: Context,
    },
    Process(String),
    File(PathBuf),
}

/// What a failure's reason names, so that it reads as it did before the probes moved to
/// `health` (`connect ADDR: timed out after 200ms`, `GET http://ADDR/PATH: status 503, ...`).
enum Context {
    Tcp(SocketAddr),
    Http(String),
    Exec(String),
}

impl Probe {
    /// A probe of `spec` whose runs are bounded by `limit`. TCP, HTTP and exec become a `health`
    /// check run against the probed address (the unspecified address for exec, which has none).
    pub fn new(spec: &ProbeSpec, limit: Duration) -> Probe {
        let on_health = |target: SocketAddr, kind: CheckKind, context: Context| {
            let check = health::CheckSpec {
                timeout: limit,
                ..health::CheckSpec::new(kind)
            };
            Kind::Health {
                prober: Prober::new(target, Arc::new(check)),
                context,
            }
        };
        let kind = match spec {
            ProbeSpec::Exec { command } => on_health(
                SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
                CheckKind::Exec(ExecCheck {
                    command: command.clone(),
                }),
                Context::Exec(command.clone()),
            ),
            ProbeSpec::Tcp { addr } => on_health(*addr, CheckKind::Tcp, Context::Tcp(*addr)),
            ProbeSpec::Http {
                addr,
                host,
                path,
                expect_status,
            } => {
                let mut h = HttpCheck::get(path);
                h.host = host.clone();
                h.status = StatusRange::exactly(*expect_status);
                on_health(
                    *addr,
                    CheckKind::Http(h),
                    Context::Http(format!("GET http://{addr}{path}")),
                )
            }
            ProbeSpec::Process { name } => Kind::Process(name.clone()),
            ProbeSpec::File { path } => Kind::File(path.clone()),
        };
        Probe { kind, limit }
    }

    /// One run.
    pub async fn run(&mut self) -> Outcome {
        let limit = self.limit;
        match &mut self.kind {
            Kind::Health { prober, context } => match prober.run().await {
                Ok(_) => Outcome::Up,
                Err(e) => Outcome::Down(reason(context, &e)),
            },
            Kind::Process(name) => {
                if process_running(name) {
                    Outcome::Up
                } else {
                    Outcome::Down(format!("no process named {name:?}"))
                }
            }
            Kind::File(path) => match timeout(limit, read_small(path.clone())).await {
                Ok(Ok(text)) => parse_file_value(&text),
                Ok(Err(e)) => Outcome::Fault(format!("read {}: {e}", path.display())),
                Err(_) => Outcome::Fault(format!("read {}: timed out", path.display())),
            },
        }
    }
}

/// A failure's reason: `health`'s message, prefixed with what was probed where the message does
/// not say it already.
fn reason(context: &Context, e: &ProbeError) -> String {
    match (context, e) {
        (Context::Tcp(_), ProbeError::Connect { .. }) => e.to_string(),
        (Context::Tcp(addr), _) => format!("connect {addr}: {e}"),
        (Context::Http(what), _) => format!("{what}: {e}"),
        (Context::Exec(command), ProbeError::Timeout(_)) => format!("`{command}` {e}"),
        (Context::Exec(_), _) => e.to_string(),
    }
}

async fn read_small(path: PathBuf) -> std::io::Result<String> {
    let f = tokio::fs::File::open(path).await?;
    let mut s = String::new();
    f.take(FILE_MAX).read_to_string(&mut s).await?;
    Ok(s)
}

/// A file probe's content: an integer is a value, `fault` or anything else is FAULT.
fn parse_file_value(text: &str) -> Outcome {
    let t = text.trim();
    if t.eq_ignore_ascii_case("fault") {
        return Outcome::Fault("file says fault".into());
    }
    match t.parse::<i64>() {
        Ok(v) => Outcome::Value(v),
        Err(_) => Outcome::Fault(format!(
            "file content {:?} is not a number",
            truncate(t, 32)
        )),
    }
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => s.get(..i).unwrap_or(s),
        None => s,
    }
}

/// True when some process's `comm` equals `name` (truncated to the kernel's 15 bytes).
fn process_running(name: &str) -> bool {
    let want = comm_of(name);
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .any(|e| {
            std::fs::read(e.path().join("comm"))
                .map(|c| c.strip_suffix(b"\n").unwrap_or(&c) == want)
                .unwrap_or(false)
        })
}

fn comm_of(name: &str) -> &[u8] {
    let b = name.as_bytes();
    b.get(..15).unwrap_or(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    /// Runs `spec` once, bounded by `limit` (a [`Probe`] built for one run).
    async fn run(spec: &ProbeSpec, limit: Duration) -> Outcome {
        Probe::new(spec, limit).run().await
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn file_values() {
        assert_eq!(parse_file_value("10\n"), Outcome::Value(10));
        assert_eq!(parse_file_value(" -20 "), Outcome::Value(-20));
        assert!(matches!(parse_file_value("FAULT\n"), Outcome::Fault(_)));
        assert!(matches!(parse_file_value("ten"), Outcome::Fault(_)));
        assert!(matches!(parse_file_value(""), Outcome::Fault(_)));
    }

    #[test]
    fn exec_exit_status_and_timeout() {
        rt().block_on(async {
            let t = Duration::from_secs(5);
            assert_eq!(
                run(
                    &ProbeSpec::Exec {
                        command: "true".into()
                    },
                    t
                )
                .await,
                Outcome::Up
            );
            assert!(!run(
                &ProbeSpec::Exec {
                    command: "exit 3".into()
                },
                t
            )
            .await
            .is_ok());
            let start = std::time::Instant::now();
            let o = run(
                &ProbeSpec::Exec {
                    command: "sleep 10".into(),
                },
                Duration::from_millis(200),
            )
            .await;
            assert!(
                matches!(o, Outcome::Down(ref m) if m.contains("timed out")),
                "{o:?}"
            );
            assert!(start.elapsed() < Duration::from_secs(3));
        });
    }

    #[test]
    fn exec_timeout_kills_the_whole_script() {
        rt().block_on(async {
            let marker = std::env::temp_dir().join(format!("havip-exec-{}", std::process::id()));
            let _ = std::fs::remove_file(&marker);
            // The grandchild would write the marker after 600 ms unless it is killed with the
            // shell at the 200 ms timeout.
            let cmd = format!("(sleep 0.6; touch {}) & wait", marker.display());
            let o = run(
                &ProbeSpec::Exec { command: cmd },
                Duration::from_millis(200),
            )
            .await;
            assert!(matches!(o, Outcome::Down(_)), "{o:?}");
            tokio::time::sleep(Duration::from_millis(800)).await;
            assert!(
                !marker.exists(),
                "a process of the timed-out script survived"
            );
        });
    }

    #[test]
    fn tcp_up_then_down_when_the_listener_closes() {
        rt().block_on(async {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            let spec = ProbeSpec::Tcp { addr };
            assert_eq!(run(&spec, Duration::from_secs(2)).await, Outcome::Up);
            drop(l);
            assert!(!run(&spec, Duration::from_secs(2)).await.is_ok());
        });
    }

    #[test]
    fn http_expected_status_and_a_wrong_one() {
        rt().block_on(async {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            let server = tokio::spawn(async move {
                for status in ["200 OK", "503 Service Unavailable"] {
                    let (mut s, _) = l.accept().await.unwrap();
                    let mut req = [0u8; 512];
                    let n = s.read(&mut req).await.unwrap();
                    assert!(req[..n].starts_with(b"GET /healthz HTTP/1.1\r\n"));
                    let resp = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
                    s.write_all(resp.as_bytes()).await.unwrap();
                }
            });
            let spec = ProbeSpec::Http {
                addr,
                host: None,
                path: "/healthz".into(),
                expect_status: 200,
            };
            assert_eq!(run(&spec, Duration::from_secs(2)).await, Outcome::Up);
            let o = run(&spec, Duration::from_secs(2)).await;
            assert!(
                matches!(o, Outcome::Down(ref m) if m.contains("status 503")),
                "{o:?}"
            );
            server.await.unwrap();
        });
    }

    #[test]
    fn http_hung_server_times_out() {
        rt().block_on(async {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            // Accepts (backlog) but never answers.
            let spec = ProbeSpec::Http {
                addr,
                host: Some("x".into()),
                path: "/".into(),
                expect_status: 200,
            };
            let o = run(&spec, Duration::from_millis(200)).await;
            assert!(
                matches!(o, Outcome::Down(ref m) if m.contains("timed out")),
                "{o:?}"
            );
            drop(l);
        });
    }

    #[test]
    fn process_by_name() {
        let me = std::fs::read_to_string("/proc/self/comm").unwrap();
        assert!(process_running(me.trim()));
        assert!(!process_running("no-such-proc-xyz"));
    }

    #[test]
    fn file_probe_reads_value_and_missing_file_is_fault() {
        rt().block_on(async {
            let dir = std::env::temp_dir().join(format!("havip-file-{}", std::process::id()));
            std::fs::write(&dir, "25\n").unwrap();
            let spec = ProbeSpec::File { path: dir.clone() };
            assert_eq!(run(&spec, Duration::from_secs(1)).await, Outcome::Value(25));
            std::fs::remove_file(&dir).unwrap();
            assert!(matches!(
                run(&spec, Duration::from_secs(1)).await,
                Outcome::Fault(_)
            ));
        });
    }
}
