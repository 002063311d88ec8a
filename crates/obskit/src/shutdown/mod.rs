//! shutdown (placeholder).
