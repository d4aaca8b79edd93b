//! Subcommands of the `director` binary and their dispatch.
//!
//! Exit codes: 0 success; 64 (`EX_USAGE`) an invalid configuration file; 69 (`EX_UNAVAILABLE`)
//! the daemon's status socket cannot be reached; 1 any other failure (start-up failed).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config;

/// Exit code for an invalid configuration (sysexits.h `EX_USAGE`).
pub const EXIT_CONFIG: u8 = 64;
/// Exit code when the daemon cannot be reached (sysexits.h `EX_UNAVAILABLE`).
pub const EXIT_UNAVAILABLE: u8 = 69;

/// Command line of the `director` binary.
#[derive(Debug, Parser)]
#[command(
    name = "director",
    version,
    about = "LVS director manager: VRRP failover and IPVS"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read the kernel's IPVS table, or program it, in ipvsadm's formats.
    #[command(subcommand)]
    Ipvs(crate::ipvs_cmd::IpvsCmd),
    /// Validate a configuration file: every problem, each as FILE:LINE:COL; exit 0 only if valid.
    Check {
        /// The YAML configuration file.
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
    },
    /// Run the VRRP instances of a configuration file until SIGTERM or SIGINT.
    Run {
        /// The YAML configuration file.
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
        /// Status socket path (overrides `global.status_socket`).
        #[arg(long)]
        status_socket: Option<PathBuf>,
        /// Directory of the daemon's persistent state (the operator drains).
        #[arg(long, default_value = crate::daemon::drains::DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
    },
    /// Print the IPVS operations that applying a configuration file would make on this node now
    /// (as Master of every instance), in `ipvsadm -R` notation, without making them.
    Plan {
        /// The YAML configuration file.
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
        /// Directory of the daemon's persistent state (its operator drains apply to the plan).
        #[arg(long, default_value = crate::daemon::drains::DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
    },
    /// Drain a real server: weight 0 (established connections continue, no new ones) until
    /// undrained, across reloads and restarts.
    Drain {
        /// The service: `tcp:ADDR:PORT`, `udp:...`, `sctp:...`, `fwmark:MARK`, `fwmark6:MARK`.
        service: String,
        /// The real server: `ADDR:PORT`, or `ADDR` for the service's port.
        real_server: String,
        /// Status socket path.
        #[arg(long, default_value = config::DEFAULT_STATUS_SOCKET)]
        socket: PathBuf,
    },
    /// Undo `drain`: the real server gets its configured weight again.
    Undrain {
        /// The service, as for `drain`.
        service: String,
        /// The real server, as for `drain`.
        real_server: String,
        /// Status socket path.
        #[arg(long, default_value = config::DEFAULT_STATUS_SOCKET)]
        socket: PathBuf,
    },
    /// Remove the VIPs of a file's instances from their interfaces, unless a daemon answers on
    /// its status socket: the unit's cleanup after a daemon that was killed (ExecStopPost).
    Cleanup {
        /// The YAML configuration file.
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
        /// Status socket path (overrides `global.status_socket`).
        #[arg(long)]
        status_socket: Option<PathBuf>,
    },
    /// Show the running daemon's instances: state, VIPs, master, last transition.
    Status {
        /// Print the daemon's JSON document instead of a table.
        #[arg(long)]
        json: bool,
        /// Status socket path.
        #[arg(long, default_value = config::DEFAULT_STATUS_SOCKET)]
        socket: PathBuf,
    },
    /// Role-driven instances (`role: external`): take the VIP (runs the fence first).
    Claim {
        /// Instance name.
        instance: String,
        /// Status socket path.
        #[arg(long, default_value = config::DEFAULT_STATUS_SOCKET)]
        socket: PathBuf,
    },
    /// Role-driven instances (`role: external`): give the VIP up.
    Release {
        /// Instance name.
        instance: String,
        /// Status socket path.
        #[arg(long, default_value = config::DEFAULT_STATUS_SOCKET)]
        socket: PathBuf,
    },
}

/// `director ipvs ...` parsed on its own: the same `ipvs` subcommand as in [`Cli`], without
/// building the parsers of the daemon's subcommands (start-up is part of every `director ipvs`
/// run: docs/benchmarks.md).
#[derive(Debug, Parser)]
#[command(name = "director", version)]
struct IpvsOnly {
    #[command(subcommand)]
    command: IpvsOnlyCommand,
}

#[derive(Debug, Subcommand)]
enum IpvsOnlyCommand {
    /// Read the kernel's IPVS table, or program it, in ipvsadm's formats.
    #[command(subcommand)]
    Ipvs(crate::ipvs_cmd::IpvsCmd),
}

/// Parses the command line and runs the subcommand; returns the process exit code.
pub fn main() -> ExitCode {
    if std::env::args_os().nth(1).is_some_and(|a| a == "ipvs") {
        let IpvsOnly {
            command: IpvsOnlyCommand::Ipvs(cmd),
        } = IpvsOnly::parse();
        return crate::ipvs_cmd::run(cmd);
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Ipvs(cmd) => crate::ipvs_cmd::run(cmd),
        Command::Check { config } => check(&config),
        Command::Run {
            config,
            status_socket,
            state_dir,
        } => crate::daemon::main(&config, status_socket, state_dir),
        Command::Plan { config, state_dir } => crate::plan::main(&config, &state_dir),
        Command::Drain {
            service,
            real_server,
            socket,
        } => crate::status::client_request(&socket, &format!("drain {service} {real_server}")),
        Command::Undrain {
            service,
            real_server,
            socket,
        } => crate::status::client_request(&socket, &format!("undrain {service} {real_server}")),
        Command::Cleanup {
            config,
            status_socket,
        } => crate::daemon::cleanup::main(&config, status_socket),
        Command::Status { json, socket } => crate::status::client_status(&socket, json),
        Command::Claim { instance, socket } => {
            crate::status::client_request(&socket, &format!("claim {instance}"))
        }
        Command::Release { instance, socket } => {
            crate::status::client_request(&socket, &format!("release {instance}"))
        }
    }
}

/// `director check -c FILE`.
fn check(path: &std::path::Path) -> ExitCode {
    match config::load(path) {
        Ok(cfg) => {
            println!(
                "{}: OK ({} instance{})",
                path.display(),
                cfg.instances.len(),
                if cfg.instances.len() == 1 { "" } else { "s" }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            let n = e.diagnostics.len();
            eprintln!(
                "{}: {n} error{}, configuration not valid",
                path.display(),
                if n == 1 { "" } else { "s" }
            );
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn ipvs_help(mut cmd: clap::Command) -> String {
        cmd.build();
        let ipvs = cmd.find_subcommand_mut("ipvs").expect("an ipvs subcommand");
        let mut text = ipvs.render_long_help().to_string();
        for sub in ["save", "restore", "list"] {
            let s = ipvs.find_subcommand_mut(sub).expect("an ipvs subcommand");
            text.push_str(&s.render_long_help().to_string());
        }
        text
    }

    #[test]
    fn the_ipvs_only_parser_is_the_full_parsers_ipvs_subcommand() {
        assert_eq!(ipvs_help(IpvsOnly::command()), ipvs_help(Cli::command()));
        let full = Cli::try_parse_from(["director", "ipvs", "restore", "--dry-run"]);
        let only = IpvsOnly::try_parse_from(["director", "ipvs", "restore", "--dry-run"]);
        assert!(matches!(
            full.map(|c| c.command),
            Ok(Command::Ipvs(crate::ipvs_cmd::IpvsCmd::Restore {
                dry_run: true
            }))
        ));
        assert!(matches!(
            only.map(|c| c.command),
            Ok(IpvsOnlyCommand::Ipvs(crate::ipvs_cmd::IpvsCmd::Restore {
                dry_run: true
            }))
        ));
        assert!(IpvsOnly::try_parse_from(["director", "ipvs", "bogus"]).is_err());
    }

    #[test]
    fn top_level_help_still_lists_every_subcommand() {
        let help = Cli::command().render_long_help().to_string();
        for sub in [
            "ipvs", "check", "run", "plan", "drain", "undrain", "status", "claim", "release",
            "cleanup",
        ] {
            assert!(help.contains(sub), "{sub} missing from:\n{help}");
        }
    }
}
