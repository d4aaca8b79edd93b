//! Placeholder: filled by the status work.
