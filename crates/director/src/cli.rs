//! Subcommands of the `director` binary and their dispatch.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Command line of the `director` binary.
#[derive(Debug, Parser)]
#[command(name = "director", version, about = "LVS director manager: VRRP failover and IPVS")]
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
}

/// Parses the command line and runs the subcommand; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Ipvs(cmd) => crate::ipvs_cmd::run(cmd),
    }
}
