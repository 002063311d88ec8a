//! Shared test servers.

pub mod otlp;
