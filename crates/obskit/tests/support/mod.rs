//! Shared test servers and scenarios.

pub mod otlp;
pub mod traced;
