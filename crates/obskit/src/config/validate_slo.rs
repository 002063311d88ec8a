//! Rules of the `slo` section: every `[slo.objectives.<name>]` table is a valid SLO.

use super::keys::SLO_OBJECTIVES_KEY;
use super::slo::SloConfig;
use crate::slo::SloDefinition;

/// A key under `slo.objectives` whose value breaks a rule, with what it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvalidEntry {
    /// Dotted key, such as `slo.objectives.orders.target`.
    pub(crate) key: String,
    /// The SLO's error message, which names the value and the fix.
    pub(crate) message: String,
}

/// Checks every SLO table and returns one entry per problem.
pub(crate) fn check(config: &SloConfig) -> Vec<InvalidEntry> {
    let mut errors = Vec::new();
    for (name, spec) in &config.objectives {
        SloDefinition::check_spec(name, spec, &mut errors);
    }
    errors
        .into_iter()
        .map(|error| {
            let name = error.slo().unwrap_or_default();
            let key = if error.field() == "name" {
                format!("{SLO_OBJECTIVES_KEY}.{name}")
            } else {
                format!("{SLO_OBJECTIVES_KEY}.{name}.{}", error.field())
            };
            InvalidEntry {
                key,
                message: error.to_string(),
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use crate::slo::{SloSpec, TargetText};

    fn spec(target: &str, period: &str) -> SloSpec {
        SloSpec {
            kind: "availability".to_owned(),
            target: TargetText(target.to_owned()),
            period: period.to_owned(),
            route: "/orders".to_owned(),
            method: None,
            threshold: None,
            description: None,
            runbook_url: None,
        }
    }

    #[test]
    fn default_section_is_valid() {
        assert!(check(&SloConfig::default()).is_empty());
    }

    #[test]
    fn every_problem_gets_its_key() {
        let mut config = SloConfig::default();
        config
            .objectives
            .insert("orders".to_owned(), spec("100", "1d"));
        config
            .objectives
            .insert("bad name".to_owned(), spec("99.9", "28d"));
        let keys: Vec<String> = check(&config).into_iter().map(|entry| entry.key).collect();
        assert_eq!(
            keys,
            [
                "slo.objectives.bad name",
                "slo.objectives.orders.target",
                "slo.objectives.orders.period",
            ]
        );
    }

    #[test]
    fn message_names_value_and_fix() {
        let mut config = SloConfig::default();
        config
            .objectives
            .insert("orders".to_owned(), spec("99.9", "2d"));
        let entries = check(&config);
        assert_eq!(entries.len(), 1);
        assert!(
            entries[0]
                .message
                .contains("period = \"2d\" is shorter than"),
            "{}",
            entries[0].message
        );
    }
}
