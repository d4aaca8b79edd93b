//! `director cleanup -c FILE`: remove the VIPs of the file's instances from their interfaces,
//! for after the daemon has exited (systemd's `ExecStopPost`).
//!
//! A daemon that stops cleanly removes its VIPs itself, and one that starts again removes, as
//! BACKUP, whatever a killed predecessor left. What neither covers is a daemon killed (SIGKILL,
//! OOM, abort) and not started again (start limit hit, the file made invalid, stopped by the
//! operator): its VIPs would stay on the interface, answering ARP beside the peer's. This is the
//! cleanup for that case. It never touches a VIP that a running daemon holds: when something
//! answers on the file's status socket, nothing is removed.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use havip::net::iface::Interface;
use havip::net::vip::{Applied, Netlink};

use crate::cli::EXIT_CONFIG;
use crate::config;
use crate::daemon::convert::to_havip;

/// Runs the cleanup; exit 0 when every VIP is off (or a daemon runs), 1 when a removal failed,
/// 64 when the file is invalid.
pub fn main(config_path: &Path, status_socket: Option<PathBuf>) -> ExitCode {
    let cfg = match config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let socket = status_socket.unwrap_or_else(|| cfg.global.status_socket.clone());
    if UnixStream::connect(&socket).is_ok() {
        println!(
            "a director answers on {}: it holds its VIPs, nothing removed",
            socket.display()
        );
        return ExitCode::SUCCESS;
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ok = rt.block_on(async {
        let netlink = match Netlink::open() {
            Ok(n) => n,
            Err(e) => {
                eprintln!("{e}");
                return false;
            }
        };
        let mut ok = true;
        for inst in &cfg.instances {
            let index = match Interface::lookup(&inst.interface) {
                Ok(i) => i.index,
                // No interface, no address on it.
                Err(_) => continue,
            };
            for vip in to_havip(inst).vips {
                match netlink.remove(index, vip).await {
                    Ok(Applied::Changed) => {
                        println!("{}: removed {vip} from {}", inst.name, inst.interface)
                    }
                    Ok(Applied::AlreadyDone) => {}
                    Err(e) => {
                        eprintln!("{}: {e}", inst.name);
                        ok = false;
                    }
                }
            }
        }
        ok
    });
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
