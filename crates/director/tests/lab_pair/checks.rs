//! The scenario assertions both pair test files share (keepalived and our director run the same
//! ones): bring a pair up, spread, failover under load with bounds, the echo connection.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::{Crash, Failover, Implementation, Lab, Load, PairSpec};

/// Seconds as a `Duration`.
pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// VRRPv3, 200 ms adverts, Backup priority 100: Master_Down_Interval is
/// 3 x 200 ms + (256 - 100) x 200 ms / 256 = 722 ms (RFC 9568 - Section 6.1). The bound is
/// ~4x that: generous under emulation with two tests in parallel.
pub const DETECTION_BOUND: Duration = Duration::from_secs(3);

/// A pair of `imp` up and programmed, dir1 Master; the Backup holds no VIP, and no service
/// unless `imp` programs the Backup too.
pub fn pair(spec: PairSpec, imp: &Implementation) -> Lab {
    let lab = Lab::up(spec).expect("lab topology");
    lab.start_pair(imp).expect("the pair starts");
    assert!(!lab.holds_vip(1), "the Backup holds no VIP");
    if !imp.programs_backup() {
        assert_eq!(
            lab.ipvs_counts(1).expect("ipvsadm"),
            (0, 0),
            "the Backup's table"
        );
    }
    lab
}

/// Round robin over `reals` real servers: every one answers, evenly, nothing fails.
pub fn assert_spread(lab: &Lab, reals: usize) {
    let m = lab.spread(6 * reals);
    assert!(
        !m.contains_key("<failed>"),
        "failures: {m:?}\n{}",
        lab.logs()
    );
    for i in 1..=reals {
        assert_eq!(m.get(&format!("r{i}")), Some(&6), "round robin: {m:?}");
    }
}

/// The Master dies (`how`) 1 s into a 4.5 s load (taking a node down takes up to ~2 s of
/// `ip link` under a loaded emulator): the Backup takes the VIP within the bound,
/// requests succeed again within another second, and at most `late` fail once they do.
pub fn assert_failover(lab: &Lab, how: Crash, late: usize) -> Failover {
    let f = lab
        .failover(Load::for_time(secs(4.5)), secs(1.0), how)
        .expect("failover run");
    eprintln!("failover ({how:?}): {}", f.line());
    let detection = f.detection.expect("the Backup never took the VIP");
    assert!(detection < DETECTION_BOUND, "{}\n{}", f.line(), lab.logs());
    let first = f
        .first_success
        .expect("no request succeeded after the crash");
    // first_success counts only requests started once the node was gone (`ip link set down`
    // can take seconds on a busy emulator): within 1 s of the later of the two
    let gone = f.gone.saturating_sub(f.crash);
    assert!(
        first < detection.max(gone) + secs(1.0),
        "{}\n{}",
        f.line(),
        lab.logs()
    );
    let after: Vec<_> = f
        .samples
        .iter()
        .filter(|s| s.outcome.is_err() && s.start > f.crash + first)
        .collect();
    assert!(
        after.len() <= late,
        "{}\nfailures after recovery: {after:?}\n{}",
        f.line(),
        lab.logs()
    );
    f
}

/// Opens a connection to the echo service through the VIP: (stream, reader, real server name).
pub fn open_echo(lab: &Lab) -> (TcpStream, BufReader<TcpStream>, String) {
    let to = lab.vip_addr(lab.spec.echo_port.expect("echo port"));
    let s = lab.clients[0]
        .run(move || TcpStream::connect_timeout(&to, secs(2.0)))
        .expect("netns")
        .expect("connect to the echo service");
    s.set_read_timeout(Some(secs(3.0))).expect("timeout");
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    let mut name = String::new();
    r.read_line(&mut name).expect("the real server's name");
    (s, r, name.trim().to_string())
}

/// Sends `line` on the echo connection and reads the answer.
pub fn echo(
    s: &mut TcpStream,
    r: &mut BufReader<TcpStream>,
    line: &str,
) -> std::io::Result<String> {
    s.write_all(format!("{line}\n").as_bytes())?;
    let mut got = String::new();
    r.read_line(&mut got)?;
    Ok(got.trim().to_string())
}

/// Whether dir`node+1` lists a connection to the VIP's echo port (`ipvsadm -Lnc`).
pub fn has_echo_conn(lab: &Lab, node: usize) -> bool {
    let want = format!("{}:{}", lab.spec.vip, lab.spec.echo_port.unwrap_or(9000));
    lab.directors[node]
        .exec(&["ipvsadm", "-Lnc"])
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(&want))
        .unwrap_or(false)
}
