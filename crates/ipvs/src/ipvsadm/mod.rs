//! ipvsadm's text formats, pure (no I/O): the `ipvsadm -Sn` save text, the `ipvsadm -R` restore
//! input, and the `ipvsadm -Ln` listings, matching ipvsadm 1.31 (Debian 12) byte for byte.
//!
//! - [`save()`]: a [`Table`](crate::model::Table) -> the exact `ipvsadm -Sn` text.
//! - [`parse()`]: restore text -> [`Op`](crate::ops::Op)s with their line numbers, or every
//!   bad line with its number and what is wrong (so that nothing is applied from a bad file).
//! - [`list()`]: the `ipvsadm -Ln` layouts (`--stats`, `--rate`, `--thresholds`,
//!   `--persistent-conn`, `--tun-info`, `--exact`).
//! - [`rule()`]: one [`Op`](crate::ops::Op) as the `ipvsadm -R` line that makes it (what
//!   `director plan` prints).
//!
//! The golden fixtures in `tests/fixtures/ipvsadm/` were captured from the real ipvsadm in the
//! lab VM; `tests/ipvsadm_golden.rs` checks both directions against them.

mod args;
mod fast;
mod fmt;
mod lex;
mod line;
pub mod list;
mod order;
pub mod restore;
pub mod rule;
pub mod save;

pub use lex::count_byte;
pub use list::{list, Layout, ListOptions};
pub use order::sort_table;
pub use restore::{parse, parse_at, LineError, Parsed, RestoreError};
pub use rule::rule;
pub use save::{save, write_save};
