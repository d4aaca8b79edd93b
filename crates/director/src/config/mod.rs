//! The configuration file: YAML read with `serde-saphyr` (maintained, reports line and column,
//! and [`serde_saphyr::Spanned`] locates values for semantic errors), then validated as a whole.
//!
//! ```text
//!  bytes ──load::read──► UTF-8 text ──load::parse──► schema::RawConfig ──validate──► model::Config
//!     (missing file,        (invalid UTF-8        (syntax, types, unknown     (ranges, addresses,
//!      directory, size)      with line:col)         or duplicate keys: the     duplicates: EVERY
//!                                                   first one, located)        error, located)
//! ```
//!
//! Every error is a [`Diagnostic`] printed as `FILE:LINE:COL: what is wrong (how to fix)`.

pub mod duration;
mod health_checks;
mod ipvs_settings;
mod keys;
pub mod load;
pub mod model;
mod real_servers;
mod schema;
mod schema_health;
mod schema_ipvs;
mod services;
mod track;
mod validate;
mod vips;

use std::fmt;
use std::path::{Path, PathBuf};

pub use load::load;
pub use model::*;

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line and column, or `None` when the problem is the file as a whole.
    pub at: Option<(u64, u64)>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A located diagnostic.
    pub fn at(line: u64, column: u64, message: impl Into<String>, hint: Option<String>) -> Self {
        Diagnostic {
            at: Some((line, column)),
            message: message.into(),
            hint,
        }
    }

    /// A diagnostic about the file as a whole.
    pub fn file(message: impl Into<String>, hint: Option<String>) -> Self {
        Diagnostic {
            at: None,
            message: message.into(),
            hint,
        }
    }
}

/// Every problem found in one file; `Display` prints one `FILE:LINE:COL: message (hint)` line
/// per problem, sorted by position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file as named on the command line.
    pub file: PathBuf,
    /// The problems, sorted by position, at least one.
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigError {
    /// Wraps diagnostics for `file`, sorting them by position.
    pub fn new(file: &Path, mut diagnostics: Vec<Diagnostic>) -> Self {
        diagnostics.sort_by_key(|d| d.at.unwrap_or((0, 0)));
        ConfigError {
            file: file.to_path_buf(),
            diagnostics,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match d.at {
                Some((line, col)) => write!(f, "{file}:{line}:{col}: {}", d.message)?,
                None => write!(f, "{file}: {}", d.message)?,
            }
            if let Some(h) = &d.hint {
                write!(f, " ({h})")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}
#[cfg(test)]
mod health_tests;
#[cfg(test)]
mod ipvs_model_tests;
