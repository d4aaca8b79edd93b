//! Dev-only helpers for tests that need a network namespace (host tests of VRRP, the VIP and health
//! checks) or the IPVS lab kernel (tests run inside `tests/lab/run`).
//!
//! Every test gets its own throwaway namespace, named uniquely and deleted on drop, so tests never
//! touch the host's namespace and never see each other's IPVS tables or addresses.
//!
//! Gating: tests that need root and namespaces live in test targets named `netns_*`, tests that
//! need the IPVS kernel in test targets named `kernel_*`; both are `#[ignore = "..."]` with the
//! reason, so a plain `cargo test` skips them visibly, and `tests/check` runs them where they can
//! run (namespaces on the host, IPVS inside the lab VM).
#![forbid(unsafe_code)]

use std::fs::File;
use std::io;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use nix::sched::{setns, CloneFlags};

/// The reason string kernel tests carry in `#[ignore = ...]`.
pub const KERNEL_IGNORE: &str =
    "needs the IPVS kernel: run inside tests/lab/run (tests/check does)";
/// The reason string namespace tests carry in `#[ignore = ...]`.
pub const NETNS_IGNORE: &str = "needs root and network namespaces: tests/check runs it";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A short name unique to this process and call, `<prefix><pid36><n>`, at most 15 bytes (an
/// interface name limit), so the same helper can name namespaces, bridges and veths.
pub fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    let mut s = format!("{prefix}{}{n}", radix36(pid));
    s.truncate(15);
    s
}

fn radix36(mut v: u32) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(v % 36) as usize]);
        v /= 36;
        if v == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs a command, returning an error that names the command and its stderr when it fails.
pub fn run(args: &[&str]) -> io::Result<Output> {
    let (prog, rest) = args
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
    let out = Command::new(prog)
        .args(rest)
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "`{}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out)
}

/// Runs `sh -c SCRIPT`, failing with its stderr when it exits non-zero.
pub fn sh(script: &str) -> io::Result<String> {
    let out = run(&["sh", "-c", script])?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// True when this process runs as root (namespaces and raw sockets need it).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// True when the running kernel has IPVS (inside the lab VM; never on these build hosts).
pub fn has_ipvs() -> bool {
    Path::new("/proc/net/ip_vs").exists()
        || Command::new("modprobe")
            .arg("ip_vs")
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
            && Path::new("/proc/net/ip_vs").exists()
}

/// A throwaway network namespace (`ip netns add`), `lo` up, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a fresh namespace whose name starts with `prefix` and brings its `lo` up (IPVS
    /// refuses real servers in a namespace whose `lo` is down: "address not unicast").
    pub fn new(prefix: &str) -> io::Result<Self> {
        let name = unique_name(prefix);
        run(&["ip", "netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n NAME ARGS...`.
    pub fn ip(&self, args: &[&str]) -> io::Result<Output> {
        let mut v = vec!["ip", "-n", &self.name];
        v.extend_from_slice(args);
        run(&v)
    }

    /// A `Command` that runs `prog` inside the namespace (`ip netns exec`).
    pub fn command(&self, prog: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, prog]);
        c
    }

    /// Runs `args` inside the namespace, failing with its stderr when it exits non-zero.
    pub fn exec(&self, args: &[&str]) -> io::Result<Output> {
        let mut v = vec!["ip", "netns", "exec", &self.name];
        v.extend_from_slice(args);
        run(&v)
    }

    /// Runs `sh -c SCRIPT` inside the namespace and returns its stdout.
    pub fn sh(&self, script: &str) -> io::Result<String> {
        let out = self.exec(&["sh", "-c", script])?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs `f` on a new thread that has entered this namespace (`setns(2)` changes only the
    /// calling thread), so sockets it opens and processes it spawns live in the namespace.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> io::Result<T> {
        let file = File::open(format!("/run/netns/{}", self.name))?;
        let handle = std::thread::spawn(move || -> io::Result<T> {
            setns(&file, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
            Ok(f())
        });
        handle
            .join()
            .map_err(|_| io::Error::other("closure panicked inside the namespace"))?
    }

    /// Creates a veth pair with `ifname` (carrying `cidr`, up) inside this namespace and its peer
    /// enslaved to `bridge` in the caller's namespace. Returns the peer's name.
    pub fn plug(&self, bridge: &Bridge, ifname: &str, cidr: &str) -> io::Result<String> {
        let peer = unique_name("v");
        run(&[
            "ip", "link", "add", &peer, "type", "veth", "peer", "name", ifname, "netns", &self.name,
        ])?;
        run(&["ip", "link", "set", &peer, "master", &bridge.name, "up"])?;
        if !cidr.is_empty() {
            self.ip(&["addr", "add", cidr, "dev", ifname])?;
        }
        self.ip(&["link", "set", ifname, "up"])?;
        Ok(peer)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// A Linux bridge in the caller's namespace, up, deleted on drop: the shared LAN of a test.
#[derive(Debug)]
pub struct Bridge {
    name: String,
}

impl Bridge {
    /// Creates a bridge with a unique name starting with `prefix`. Multicast snooping is turned
    /// off so VRRP multicast reaches every port at once.
    pub fn new(prefix: &str) -> io::Result<Self> {
        let name = unique_name(prefix);
        run(&[
            "ip",
            "link",
            "add",
            &name,
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        let b = Bridge { name };
        run(&["ip", "link", "set", &b.name, "up"])?;
        Ok(b)
    }

    /// The bridge's interface name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_fit_an_interface_name_and_differ() {
        let a = unique_name("brtest");
        let b = unique_name("brtest");
        assert_ne!(a, b);
        assert!(a.len() <= 15, "{a}");
        assert!(a.starts_with("brtest"));
    }

    #[test]
    fn radix36_digits() {
        assert_eq!(radix36(0), "0");
        assert_eq!(radix36(35), "z");
        assert_eq!(radix36(36), "10");
    }

    #[test]
    fn run_reports_the_failing_command() {
        let err = run(&["sh", "-c", "echo boom >&2; exit 4"]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("exit status: 4"), "{msg}");
        assert!(msg.contains("boom"), "{msg}");
    }
}
