//! Service level objectives: definitions, an in-process tracker of error budgets and burn
//! rates, and multi-window, multi-burn-rate alert state.

mod alert;
mod check;
mod dashboard;
mod decimal;
mod definition;
mod openslo;
mod registry;
mod rules;
mod target;
mod tracker;
mod window;

pub use alert::{BurnRateAlert, LONGEST_WINDOW, Severity, Window};
pub use check::BudgetCheck;
pub use dashboard::{DASHBOARD_UID, GRAFANA_SCHEMA_VERSION, dashboard};
pub use decimal::{Decimal, DecimalError, MAX_SCALE};
pub use definition::{
    MAX_NAME_LENGTH, MAX_PERIOD, Selector, SloDefinition, SloDefinitionBuilder, SloError,
    SloErrors, SloKind, SloSet, SloSpec,
};
pub use openslo::{METHOD_ANNOTATION, OpenSloError, ROUTE_ANNOTATION, parse_openslo};
pub use registry::SloRegistry;
pub use rules::{
    AlertingRule, BUDGET_REMAINING_RECORD, BURN_ALERT, DEFAULT_RUNBOOK_URL, DURATION_HISTOGRAM,
    ERROR_BUDGET_RECORD, ERROR_RATIO_RECORD, OBJECTIVE_RECORD, RecordingRule, Rule, RuleFile,
    RuleGroup, error_ratio_expr, error_ratio_record, le_label, le_matcher, period_range,
    promql_duration, promql_string, rules, slo_series,
};
pub use target::{Target, TargetError, TargetText};
pub use tracker::{BurnRates, Outcome, SloStatus, SloTracker};
