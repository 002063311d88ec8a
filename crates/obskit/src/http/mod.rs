//! http (placeholder).
