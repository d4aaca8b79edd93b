//! `director ipvs save|restore|list`: the kernel's IPVS table in ipvsadm's formats.

use std::process::ExitCode;

use clap::Subcommand;

/// `director ipvs ...`
#[derive(Debug, Subcommand)]
pub enum IpvsCmd {
    /// Print the table as `ipvsadm -Sn` does.
    Save,
}

/// Runs one `director ipvs` subcommand.
pub fn run(cmd: IpvsCmd) -> ExitCode {
    match cmd {
        IpvsCmd::Save => {
            eprintln!("director ipvs save: not built yet");
            ExitCode::FAILURE
        }
    }
}
