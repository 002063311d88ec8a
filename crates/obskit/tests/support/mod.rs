//! Shared test servers and scenarios.

pub mod capture;
pub mod otlp;
pub mod traced;
