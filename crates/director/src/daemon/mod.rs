//! `director run`: start the instances, serve the status socket, handle signals.

pub mod reload;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Runs the daemon until SIGTERM or SIGINT.
pub fn main(config: &Path, status_socket: Option<PathBuf>) -> ExitCode {
    let _ = (config, status_socket);
    eprintln!("director run: waiting for the havip runner");
    ExitCode::FAILURE
}
