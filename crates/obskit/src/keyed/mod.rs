//! Per-client state with a hard maximum of keys, shared by the admin endpoint and the rate limiters.
//!
//! [`BoundedTable`] maps keys to state and never holds more than its capacity.
//! [`BoundedStateStore`] puts sharded tables behind governor's `StateStore` trait, so a governor
//! limiter keyed by client address, API key or any other key keeps bounded memory.

mod client;
mod store;
mod table;

// Public through `resilience::rate_limit`; the admin routes use it inside the crate only.
#[cfg_attr(not(feature = "resilience"), allow(unreachable_pub))]
pub use client::ClientKey;
pub(crate) use store::BoundedStateStore;
pub(crate) use table::{BoundedTable, CountEvictions};
