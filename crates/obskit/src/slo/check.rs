//! A readiness check that fails while an SLO's error budget is spent.

use std::sync::Arc;

use super::SloRegistry;
use crate::health::{BoxFuture, Check, CheckError};

/// Fails while any SLO has spent its whole error budget over its period.
///
/// Register it as a non-critical readiness check, so an exhausted budget shows as `warn` in
/// `/health/ready` without taking the instance out of the load balancer:
///
/// ```no_run
/// # fn demo(obskit: &obskit::Obskit) -> Result<(), Box<dyn std::error::Error>> {
/// use obskit::health::CheckOptions;
///
/// if let Some(slos) = obskit.slo() {
///     obskit.health().add_readiness(
///         "slo_budget",
///         slos.budget_check(),
///         CheckOptions::default().critical(false),
///     )?;
/// }
/// # Ok(())
/// # }
/// ```
///
/// A critical check would fail readiness instead; do that only when a spent budget should stop
/// traffic to the instance. An SLO without traffic in its period has no known budget and does
/// not fail the check.
#[derive(Debug, Clone)]
pub struct BudgetCheck {
    slos: Arc<SloRegistry>,
}

impl BudgetCheck {
    pub(crate) fn new(slos: Arc<SloRegistry>) -> Self {
        Self { slos }
    }
}

impl Check for BudgetCheck {
    fn check(&self) -> BoxFuture<'_, Result<(), CheckError>> {
        let spent: Vec<String> = self
            .slos
            .statuses()
            .into_iter()
            .filter(|status| {
                status
                    .error_budget_remaining
                    .is_some_and(|left| left <= 0.0)
            })
            .map(|status| status.name)
            .collect();
        Box::pin(async move {
            if spent.is_empty() {
                Ok(())
            } else {
                Err(CheckError::new(format!(
                    "error budget spent for SLO {}",
                    spent.join(", ")
                )))
            }
        })
    }
}
