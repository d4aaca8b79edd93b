//! `director`: the LVS director manager (daemon and CLI).
//!
//! `main` stays thin: parse the command line, hand over to [`cli::main`], turn its result into
//! the process exit code.
#![forbid(unsafe_code)]

mod cli;
mod config;
mod daemon;
mod desired;
mod gate;
mod ipvs_cmd;
mod plan;
mod reconcile;
mod state;
mod status;
mod status_health;
mod target;

fn main() -> std::process::ExitCode {
    cli::main()
}
