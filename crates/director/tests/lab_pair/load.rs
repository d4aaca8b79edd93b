//! A bounded HTTP load generator (std `TcpStream`, short timeouts) and what a failover did to it.
//!
//! One request = connect, `GET / HTTP/1.0`, read to the end; the body is the real server's name.
//! Under emulation one request through the VIP costs a few milliseconds, where a `curl` process
//! costs ~200 ms and a `busybox wget` ~15 ms (measured in the lab, 2026-12-05).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Bounds and pace of a load run: it stops after `max_requests` or `max_time`, whichever first.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// Pause between the end of one request and the start of the next.
    pub interval: Duration,
    pub max_requests: usize,
    pub max_time: Duration,
    /// Connect timeout, and read/write timeout once connected.
    pub timeout: Duration,
}

impl Load {
    /// 20 ms pace, 300 ms timeouts, at most `max_time` and 10,000 requests.
    pub fn for_time(max_time: Duration) -> Load {
        Load {
            interval: Duration::from_millis(20),
            max_requests: 10_000,
            max_time,
            timeout: Duration::from_millis(300),
        }
    }
}

/// One request: when it started and ended (since the run's common origin) and the real server's
/// name or the error.
#[derive(Clone, Debug)]
pub struct Sample {
    pub start: Duration,
    pub end: Duration,
    pub outcome: Result<String, String>,
}

/// One HTTP/1.0 GET to `to`; the response body, trimmed (the real server's name).
pub fn get(to: SocketAddr, timeout: Duration) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&to, timeout).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP header end in {} bytes", buf.len()))?;
    if !head.starts_with("HTTP/1.") || !head.contains(" 200 ") {
        return Err(format!(
            "status: {}",
            head.lines().next().unwrap_or_default()
        ));
    }
    Ok(body.trim().to_string())
}

/// Runs `load` against `to` (call it inside the client's namespace); times are since `origin`.
pub fn run(to: SocketAddr, load: Load, origin: Instant) -> Vec<Sample> {
    let began = Instant::now();
    let mut out = Vec::new();
    while out.len() < load.max_requests && began.elapsed() < load.max_time {
        let start = origin.elapsed();
        let outcome = get(to, load.timeout);
        out.push(Sample {
            start,
            end: origin.elapsed(),
            outcome,
        });
        std::thread::sleep(load.interval);
    }
    out
}

/// Requests per real server name among the successes.
pub fn spread(samples: &[Sample]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for s in samples {
        if let Ok(name) = &s.outcome {
            *m.entry(name.clone()).or_insert(0) += 1;
        }
    }
    m
}

/// What a failover did to the load: times are from the crash.
#[derive(Clone, Debug)]
pub struct Failover {
    /// When the Master stopped (SIGSTOP: its adverts end), on the samples' clock.
    pub crash: Duration,
    /// When it was completely gone (killed, and for a node crash its links down): requests
    /// started from here on cannot reach it.
    pub gone: Duration,
    pub requests: usize,
    pub failed: usize,
    /// Crash -> the Backup holds the VIP (None: never within the watch).
    pub detection: Option<Duration>,
    /// Crash -> the end of the first successful request started after `gone`.
    pub first_success: Option<Duration>,
    /// Crash -> the end of the last failed request (zero when none failed).
    pub last_failure: Duration,
    pub samples: Vec<Sample>,
}

impl Failover {
    /// Sums up `samples` against the crash at `crash`, complete at `gone` (same origin), and the
    /// VIP seen on the Backup at `vip_at`.
    pub fn from_samples(
        samples: Vec<Sample>,
        crash: Duration,
        gone: Duration,
        vip_at: Option<Duration>,
    ) -> Self {
        let since = |t: Duration| t.saturating_sub(crash);
        Failover {
            crash,
            gone,
            requests: samples.len(),
            failed: samples.iter().filter(|s| s.outcome.is_err()).count(),
            detection: vip_at.map(since),
            first_success: samples
                .iter()
                .find(|s| s.start >= gone && s.outcome.is_ok())
                .map(|s| since(s.end)),
            last_failure: samples
                .iter()
                .filter(|s| s.outcome.is_err())
                .map(|s| since(s.end))
                .max()
                .unwrap_or_default(),
            samples,
        }
    }

    /// One line for test output and the bench: `requests N failed N detection_ms N ...`.
    pub fn line(&self) -> String {
        let ms = |d: Option<Duration>| d.map_or("none".into(), |d| d.as_millis().to_string());
        format!(
            "requests {} failed {} gone_ms {} detection_ms {} first_success_ms {} last_failure_ms {}",
            self.requests,
            self.failed,
            self.gone.saturating_sub(self.crash).as_millis(),
            ms(self.detection),
            ms(self.first_success),
            self.last_failure.as_millis()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(start: u64, end: u64, ok: bool) -> Sample {
        Sample {
            start: Duration::from_millis(start),
            end: Duration::from_millis(end),
            outcome: if ok { Ok("r1".into()) } else { Err("x".into()) },
        }
    }

    #[test]
    fn failover_counts_from_the_crash() {
        let f = Failover::from_samples(
            vec![
                s(0, 5, true),
                s(90, 400, false),
                s(120, 125, true),
                s(420, 720, false),
                s(740, 745, true),
            ],
            Duration::from_millis(100),
            Duration::from_millis(150),
            Some(Duration::from_millis(700)),
        );
        assert_eq!((f.requests, f.failed), (5, 2));
        assert_eq!(f.detection, Some(Duration::from_millis(600)));
        assert_eq!(f.first_success, Some(Duration::from_millis(645)));
        assert_eq!(f.last_failure, Duration::from_millis(620));
        assert_eq!(spread(&f.samples).get("r1"), Some(&3));
    }
}
