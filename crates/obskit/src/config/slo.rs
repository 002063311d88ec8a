//! The `slo` section: service level objectives, one table per SLO.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::slo::{SloDefinition, SloErrors, SloSet, SloSpec};

/// Service level objectives, each in a `[slo.objectives.<name>]` table.
///
/// # Example
///
/// ```
/// // The same as this TOML file section:
/// //
/// // [slo.objectives.orders-availability]
/// // kind = "availability"
/// // target = 99.9
/// // period = "28d"
/// // route = "/orders/{id}"
/// let config = obskit::Config::builder()
///     .env(false)
///     .set("slo.objectives.orders-availability", serde_json::json!({
///         "kind": "availability",
///         "target": 99.9,
///         "period": "28d",
///         "route": "/orders/{id}",
///     }))
///     .build()?;
/// let slos = config.slo.definitions()?;
/// assert_eq!(slos.definitions()[0].target.error_budget().to_string(), "0.001");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SloConfig {
    /// The SLOs by name.
    pub objectives: BTreeMap<String, SloSpec>,
}

impl SloConfig {
    /// Validates every table and returns the definitions, in name order.
    ///
    /// # Errors
    ///
    /// [`SloErrors`] with every problem of every SLO.
    pub fn definitions(&self) -> Result<SloSet, SloErrors> {
        let mut errors = Vec::new();
        let definitions: Vec<SloDefinition> = self
            .objectives
            .iter()
            .filter_map(|(name, spec)| SloDefinition::check_spec(name, spec, &mut errors))
            .collect();
        if errors.is_empty() {
            SloSet::new(definitions)
        } else {
            Err(SloErrors { errors })
        }
    }
}
