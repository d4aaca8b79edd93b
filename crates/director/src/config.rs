//! Placeholder: filled by the config work.
