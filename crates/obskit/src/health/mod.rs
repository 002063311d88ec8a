//! health (placeholder).
