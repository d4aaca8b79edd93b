//! Placeholder: filled by the daemon work.
