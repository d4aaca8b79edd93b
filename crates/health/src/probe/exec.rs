//! The exec probe: `sh -c COMMAND` in its own process group, output discarded, the whole group
//! killed when the timeout expires (a script's children included: `a | b`, `sleep`, ...).

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use super::ProbeError;

/// Runs `command` with the real server (`target`) and the probe's connect address (`connect`) in
/// its environment: `REAL_SERVER_ADDRESS`, `REAL_SERVER_PORT`, `CHECK_ADDRESS`, `CHECK_PORT`.
/// Exit status 0 is a success; the timeout kills the process group and fails.
pub async fn run(
    command: &str,
    target: SocketAddr,
    connect: SocketAddr,
    limit: Duration,
) -> Result<String, ProbeError> {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("REAL_SERVER_ADDRESS", target.ip().to_string())
        .env("REAL_SERVER_PORT", target.port().to_string())
        .env("CHECK_ADDRESS", connect.ip().to_string())
        .env("CHECK_PORT", connect.port().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .process_group(0)
        .spawn()
        .map_err(|source| ProbeError::Spawn {
            command: command.to_owned(),
            source,
        })?;
    match tokio::time::timeout(limit, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok("exit 0".to_owned()),
        Ok(Ok(status)) => Err(ProbeError::Exit {
            command: command.to_owned(),
            status,
        }),
        Ok(Err(source)) => Err(ProbeError::Io {
            what: "wait for the command",
            source,
        }),
        Err(_) => {
            // The group's id is the shell's pid (process_group(0)).
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            // Reaps the shell (already killed with its group).
            let _ = child.kill().await;
            Err(ProbeError::Timeout(limit))
        }
    }
}
