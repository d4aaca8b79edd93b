//! Helpers shared by the kernel tests: a fresh network namespace per test, a current-thread
//! tokio runtime and a `Conn` created on the namespace's thread, and `ipvsadm` as the oracle.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::process::Command;

use ipvs::{Conn, Destination, Forwarding, Protocol, Scheduler, Service, ServiceKey};
use testns::Netns;

/// Runs `f` with a fresh `Conn` inside a fresh network namespace (on the namespace's thread).
pub fn with_conn<F, Fut, T>(f: F) -> T
where
    F: FnOnce(Conn) -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let ns = Netns::new("ipvs").expect("create netns");
    ns.run(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let conn = Conn::connect().await.expect("connect");
            f(conn).await
        })
    })
    .expect("run in netns")
}

/// Runs ipvsadm (in the calling thread's namespace) and returns its stdout; panics on failure.
pub fn ipvsadm(args: &[&str]) -> String {
    let out = Command::new("ipvsadm")
        .args(args)
        .output()
        .expect("ipvsadm");
    assert!(
        out.status.success(),
        "ipvsadm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ipvsadm -Sn` in the caller's namespace, read until two reads agree.
///
/// The kernel hashes every namespace's services into one table and
/// ipvsadm's dump walks it by position without a consistency check, so
/// a namespace another test churns can make one dump skip or repeat
/// entries of this namespace (our `snapshot()` detects that and retries;
/// ipvsadm does not). Two equal dumps in a row are this table.
pub fn save() -> Vec<String> {
    let mut last = ipvsadm_lines();
    for _ in 0..20 {
        let next = ipvsadm_lines();
        if next == last {
            return next;
        }
        last = next;
    }
    panic!("ipvsadm -Sn never gave the same table twice in 21 reads");
}

fn ipvsadm_lines() -> Vec<String> {
    ipvsadm(&["-Sn"]).lines().map(str::to_string).collect()
}

/// A TCP key.
pub fn tcp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Inet {
        protocol: Protocol::Tcp,
        addr: addr.parse().unwrap(),
        port,
    }
}

/// A service with ipvsadm's defaults.
pub fn svc(key: ServiceKey, s: Scheduler) -> Service {
    Service::new(key, s)
}

/// A destination.
pub fn dest(addr: &str, port: u16, fwd: Forwarding, weight: i32) -> Destination {
    let mut d = Destination::new(addr.parse().unwrap(), port, fwd);
    d.weight = weight;
    d
}

/// True when the running kernel has the scheduler module `ip_vs_NAME`.
pub fn has_module(name: &str) -> bool {
    let rel = String::from_utf8_lossy(
        &Command::new("uname")
            .arg("-r")
            .output()
            .expect("uname")
            .stdout,
    )
    .trim()
    .to_string();
    Command::new("modinfo")
        .args(["-k", &rel, name])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// A checked snapshot for a test's setup or its final check, taken again while other tests'
/// namespaces churn: a services dump resumes by position in the kernel's one table of every
/// namespace's services, so a busy neighbour can tear every try of one `snapshot()` and make
/// it refuse with `Inconsistent` (as it must). The neighbours' churn ends; this waits for a
/// quiet moment (up to 10 s). Tests of the snapshot under churn call `snapshot()` itself.
pub async fn settled_snapshot(c: &mut Conn) -> ipvs::Table {
    for _ in 0..100 {
        match c.snapshot().await {
            Ok(t) => return t,
            Err(ipvs::Error::Inconsistent { .. }) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            Err(e) => panic!("snapshot: {e}"),
        }
    }
    panic!("the table kept changing for 10 s")
}
