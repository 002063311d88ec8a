//! obskit: observability and resilience for Rust services.

pub mod admin;
pub mod config;
pub mod health;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod shutdown;

pub use config::Config;
