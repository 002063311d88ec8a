//! The decision and eviction counters of one limiter.

use crate::metrics::{Counter, Registry};

use super::RateLimitError;

/// Counter handles of one limiter, resolved once so a decision costs one atomic add.
#[derive(Debug, Clone)]
pub(crate) struct LimiterMetrics {
    pub(crate) allowed: Counter,
    pub(crate) rejected: Counter,
    pub(crate) evictions: Counter,
}

impl LimiterMetrics {
    pub(crate) fn new(registry: &Registry, name: &str) -> Result<Self, RateLimitError> {
        let decisions = registry.get_or_register_counter_family(
            "obskit_rate_limit_decisions",
            "Rate limiter decisions by limiter name and decision: allowed or rejected.",
            ["name", "decision"],
        )?;
        let evictions = registry.get_or_register_counter_family(
            "obskit_rate_limit_evictions",
            "Keys a keyed rate limiter forgot before they turned idle, because it tracked its maximum of keys; each such client gets a fresh burst.",
            ["name"],
        )?;
        Ok(Self {
            allowed: decisions.get(&[name, "allowed"]),
            rejected: decisions.get(&[name, "rejected"]),
            evictions: evictions.get(&[name]),
        })
    }
}
