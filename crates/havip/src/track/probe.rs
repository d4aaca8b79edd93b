//! One run of one probe. Every probe is bounded by its timeout and reports an [`Outcome`]; none
//! panics on what it reads (a process's output, a socket, a file).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// What to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeSpec {
    /// Run `sh -c COMMAND`; exit status 0 is up, anything else (or the timeout) down. The child is
    /// killed when the timeout expires.
    Exec {
        /// The command line, given to `sh -c`.
        command: String,
    },
    /// A TCP connect to `addr` within the timeout is up.
    Tcp {
        /// Where to connect.
        addr: SocketAddr,
    },
    /// An HTTP/1.0 `GET path` to `addr` whose status line carries `expect_status` is up.
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

/// Longest status line read from an HTTP server.
const HTTP_HEAD_MAX: usize = 1024;
/// Longest file a file probe reads.
const FILE_MAX: u64 = 4096;

/// Runs `spec` once, bounded by `limit`.
pub async fn run(spec: &ProbeSpec, limit: Duration) -> Outcome {
    match spec {
        ProbeSpec::Exec { command } => exec(command, limit).await,
        ProbeSpec::Tcp { addr } => match timeout(limit, TcpStream::connect(addr)).await {
            Ok(Ok(_)) => Outcome::Up,
            Ok(Err(e)) => Outcome::Down(format!("connect {addr}: {e}")),
            Err(_) => Outcome::Down(format!("connect {addr}: timed out after {limit:?}")),
        },
        ProbeSpec::Http {
            addr,
            host,
            path,
            expect_status,
        } => {
            let host = host.clone().unwrap_or_else(|| addr.to_string());
            match timeout(limit, http_status(*addr, &host, path)).await {
                Ok(Ok(code)) if code == *expect_status => Outcome::Up,
                Ok(Ok(code)) => Outcome::Down(format!(
                    "GET http://{addr}{path}: status {code}, expected {expect_status}"
                )),
                Ok(Err(e)) => Outcome::Down(format!("GET http://{addr}{path}: {e}")),
                Err(_) => Outcome::Down(format!(
                    "GET http://{addr}{path}: timed out after {limit:?}"
                )),
            }
        }
        ProbeSpec::Process { name } => {
            if process_running(name) {
                Outcome::Up
            } else {
                Outcome::Down(format!("no process named {name:?}"))
            }
        }
        ProbeSpec::File { path } => match timeout(limit, read_small(path.clone())).await {
            Ok(Ok(text)) => parse_file_value(&text),
            Ok(Err(e)) => Outcome::Fault(format!("read {}: {e}", path.display())),
            Err(_) => Outcome::Fault(format!("read {}: timed out", path.display())),
        },
    }
}

async fn exec(command: &str, limit: Duration) -> Outcome {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        // Its own process group, so a timeout kills the whole script (`a | b`, `sleep`, ...),
        // not only the shell.
        .process_group(0)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return Outcome::Down(format!("spawn `{command}`: {e}")),
    };
    match timeout(limit, child.wait()).await {
        Ok(Ok(st)) if st.success() => Outcome::Up,
        Ok(Ok(st)) => Outcome::Down(format!("`{command}` exited with {st}")),
        Ok(Err(e)) => Outcome::Down(format!("wait for `{command}`: {e}")),
        Err(_) => {
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.kill().await;
            Outcome::Down(format!("`{command}` timed out after {limit:?}"))
        }
    }
}

async fn http_status(addr: SocketAddr, host: &str, path: &str) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(addr).await?;
    let req = format!(
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: havip\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    while !buf.contains(&b'\n') && buf.len() < HTTP_HEAD_MAX {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
    }
    parse_status_line(&buf)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "no HTTP status line"))
}

/// The status code of an HTTP/1.x status line (`HTTP/1.1 200 OK`).
pub fn parse_status_line(head: &[u8]) -> Option<u16> {
    let line_end = head.iter().position(|b| *b == b'\n').unwrap_or(head.len());
    let line = std::str::from_utf8(head.get(..line_end)?).ok()?;
    let mut parts = line.split_ascii_whitespace();
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

async fn read_small(path: PathBuf) -> std::io::Result<String> {
    let f = tokio::fs::File::open(path).await?;
    let mut s = String::new();
    f.take(FILE_MAX).read_to_string(&mut s).await?;
    Ok(s)
}

/// A file probe's content: an integer is a value, `fault` or anything else is FAULT.
pub fn parse_file_value(text: &str) -> Outcome {
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
pub fn process_running(name: &str) -> bool {
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
    use tokio::net::TcpListener;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(parse_status_line(b"HTTP/1.0 503 Busy\r\nX: y"), Some(503));
        assert_eq!(parse_status_line(b"HTTP/1.1 204"), Some(204));
        assert_eq!(parse_status_line(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status_line(b"HTTP/1.1 2000 OK\r\n"), None);
        assert_eq!(parse_status_line(b""), None);
        assert_eq!(parse_status_line(&[0xff, 0xfe, b'\n']), None);
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
                    assert!(req[..n].starts_with(b"GET /healthz HTTP/1.0\r\n"));
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
