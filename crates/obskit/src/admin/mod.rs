//! admin (placeholder).
