//! logging (placeholder).
