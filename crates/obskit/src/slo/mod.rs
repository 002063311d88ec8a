//! Service level objectives: definitions, an in-process tracker of error budgets and burn
//! rates, and multi-window, multi-burn-rate alert state.

mod alert;
mod decimal;
mod definition;
mod openslo;
mod registry;
mod target;
mod tracker;
mod window;

pub use alert::{BurnRateAlert, LONGEST_WINDOW, Severity, Window};
pub use decimal::{Decimal, DecimalError, MAX_SCALE};
pub use definition::{
    MAX_PERIOD, Selector, SloDefinition, SloDefinitionBuilder, SloError, SloErrors, SloKind,
    SloSet, SloSpec,
};
pub use openslo::{METHOD_ANNOTATION, OpenSloError, ROUTE_ANNOTATION, parse_openslo};
pub use registry::SloRegistry;
pub use target::{Target, TargetError, TargetText};
pub use tracker::{BurnRates, Outcome, SloStatus, SloTracker};
