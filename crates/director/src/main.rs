//! `director`: the LVS director manager (daemon and CLI).
#![forbid(unsafe_code)]

use clap::Parser;

/// Command line of the `director` binary.
#[derive(Debug, Parser)]
#[command(
    name = "director",
    version,
    about = "LVS director manager: VRRP failover and IPVS"
)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    Ok(())
}
