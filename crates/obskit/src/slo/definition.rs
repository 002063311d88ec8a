//! SLO definitions: what is measured, the objective, the period and the requests selected.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::alert::LONGEST_WINDOW;
use super::target::{Target, TargetError, TargetText};
use crate::metrics::{DEFAULT_DURATION_BUCKETS, normalize_method};

/// Longest accepted SLO period: 366 days. The tracker keeps one 24-byte bucket per hour of
/// the period, so this bounds its memory to about 211 KiB per SLO.
pub const MAX_PERIOD: Duration = Duration::from_secs(366 * 24 * 3600);

/// The SLI of an SLO, computed from the HTTP server metrics `http_server_request_duration_seconds`
/// (labels `http_request_method`, `http_route`, `http_response_status_code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SloKind {
    /// Good: responses whose status is not 5xx. Valid: all responses.
    Availability,
    /// Good: responses that took at most `threshold`, whatever their status. Valid: all
    /// responses. The threshold is one of the histogram's bucket boundaries
    /// ([`DEFAULT_DURATION_BUCKETS`]), so rules can count it with `le`.
    Latency {
        /// The duration a good response does not exceed.
        threshold: Duration,
    },
    /// As [`SloKind::Availability`], with the objective written as the maximum share of 5xx
    /// responses in percent: `target = 0.5` means at most 0.5 % errors, an objective of
    /// 99.5 % and an error budget of 0.005.
    ErrorRate,
}

impl SloKind {
    /// Returns the name used in configuration and in [`SloStatus`](super::SloStatus):
    /// `availability`, `latency` or `error_rate`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Availability => "availability",
            Self::Latency { .. } => "latency",
            Self::ErrorRate => "error_rate",
        }
    }

    /// Returns the latency threshold in seconds, exactly as written in
    /// [`DEFAULT_DURATION_BUCKETS`], or `None` for other kinds.
    pub fn threshold_seconds(self) -> Option<f64> {
        match self {
            Self::Latency { threshold } => bucket_boundary(threshold),
            Self::Availability | Self::ErrorRate => None,
        }
    }
}

/// The requests an SLO counts: one HTTP route and, optionally, one method.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Selector {
    /// Route template as the router writes it, such as `/orders/{id}` (the `http_route` label).
    pub route: String,
    /// Request method such as `GET` (the `http_request_method` label); `None` selects all.
    pub method: Option<String>,
}

/// One service level objective.
///
/// Build it in code with [`SloDefinition::builder`], from a `[slo.objectives.<name>]` table
/// with [`SloDefinition::from_spec`], or from an OpenSLO document with
/// [`parse_openslo`](super::parse_openslo). Every constructor validates the result; the public
/// fields let a caller read it.
///
/// # Example
///
/// ```
/// use obskit::slo::{SloDefinition, SloKind};
///
/// let slo = SloDefinition::builder("orders-availability")
///     .availability()
///     .target(99.9)
///     .period("28d")
///     .route("/orders/{id}")
///     .method("GET")
///     .build()?;
/// assert_eq!(slo.kind, SloKind::Availability);
/// assert_eq!(slo.target.error_budget().to_string(), "0.001");
/// assert_eq!(slo.period.as_secs(), 28 * 86_400);
/// # Ok::<(), obskit::slo::SloError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "NamedSpec", into = "NamedSpec")]
pub struct SloDefinition {
    /// Name: ASCII letters, digits, `_` and `-`, starting with a letter. It is the `slo`
    /// label of the SLO's metrics.
    pub name: String,
    /// The SLI.
    pub kind: SloKind,
    /// Share of valid events that must be good.
    pub target: Target,
    /// Length of the rolling window of the objective, from 3 days to [`MAX_PERIOD`].
    pub period: Duration,
    /// The requests counted.
    pub selector: Selector,
    /// Free text for dashboards and alerts.
    pub description: Option<String>,
    /// Link to what to do when the SLO's alerts fire.
    pub runbook_url: Option<String>,
}

/// One SLO as written in a `[slo.objectives.<name>]` table; the name is the table's key.
///
/// ```toml
/// [slo.objectives.orders-latency]
/// kind = "latency"          # availability, latency or error_rate
/// target = 99               # percent (99.9), ratio (0.999) or "99.9%"; see Target
/// threshold = "250ms"       # latency only: a bucket boundary
/// period = "28d"
/// route = "/orders/{id}"
/// method = "GET"            # optional
/// description = "Order pages load fast"
/// runbook_url = "https://runbooks.example.com/orders"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloSpec {
    /// `availability`, `latency` or `error_rate`.
    pub kind: String,
    /// The objective; for `error_rate`, the maximum percentage of errors.
    pub target: TargetText,
    /// Period as a duration string, such as `"28d"` or `"4w"`.
    pub period: String,
    /// Route template, such as `/orders/{id}`.
    pub route: String,
    /// Optional request method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Latency threshold as a duration string, such as `"250ms"`; `latency` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<String>,
    /// Free text for dashboards and alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Link to what to do when the SLO's alerts fire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook_url: Option<String>,
}

/// An invalid SLO definition or set. Each message names the SLO and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SloError {
    /// The name is empty.
    #[error("SLO name is empty; give every SLO a name such as \"orders-availability\"")]
    EmptyName,
    /// The name has characters other than ASCII letters, digits, `_` and `-`, or more than
    /// [`MAX_NAME_LENGTH`] of them.
    #[error(
        "SLO {name:?}: invalid name; use at most 64 ASCII letters, digits, \"_\" and \"-\", starting with a letter"
    )]
    InvalidName {
        /// The name.
        name: String,
    },
    /// Two SLOs have the same name.
    #[error("SLO {name:?}: duplicate name; give each SLO its own name")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// The kind is not `availability`, `latency` or `error_rate`.
    #[error(
        "SLO {slo:?}: kind = {kind:?} is unknown; expected \"availability\", \"latency\" or \"error_rate\""
    )]
    UnknownKind {
        /// SLO name.
        slo: String,
        /// The kind as written.
        kind: String,
    },
    /// The target is not a number or not strictly between 0 % and 100 %.
    #[error("SLO {slo:?}: target = {value:?}: {source}")]
    Target {
        /// SLO name.
        slo: String,
        /// The target as written.
        value: String,
        /// The reason for the rejection.
        source: TargetError,
    },
    /// The period is not a duration.
    #[error(
        "SLO {slo:?}: period = {value:?} is not a duration ({reason}); use a duration such as \"28d\" or \"4w\""
    )]
    InvalidPeriod {
        /// SLO name.
        slo: String,
        /// The period as written.
        value: String,
        /// The parser's message.
        reason: String,
    },
    /// The period is shorter than the longest alert window.
    #[error(
        "SLO {slo:?}: period = {value:?} is shorter than the longest alert window, 3d; use a period of at least \"3d\", such as \"28d\""
    )]
    PeriodTooShort {
        /// SLO name.
        slo: String,
        /// The period as written.
        value: String,
    },
    /// The period is longer than [`MAX_PERIOD`].
    #[error(
        "SLO {slo:?}: period = {value:?} is longer than 366d; use a shorter period such as \"28d\""
    )]
    PeriodTooLong {
        /// SLO name.
        slo: String,
        /// The period as written.
        value: String,
    },
    /// A latency SLO without a threshold.
    #[error(
        "SLO {slo:?}: threshold is missing; a latency SLO needs one of the bucket boundaries {boundaries}"
    )]
    MissingThreshold {
        /// SLO name.
        slo: String,
        /// The accepted thresholds.
        boundaries: String,
    },
    /// A threshold on an SLO that is not a latency SLO.
    #[error(
        "SLO {slo:?}: threshold is set but kind = {kind:?}; only latency SLOs take a threshold, so remove it or set kind = \"latency\""
    )]
    UnexpectedThreshold {
        /// SLO name.
        slo: String,
        /// The SLO's kind.
        kind: &'static str,
    },
    /// The threshold is not a duration.
    #[error(
        "SLO {slo:?}: threshold = {value:?} is not a duration ({reason}); use a bucket boundary such as \"250ms\""
    )]
    InvalidThreshold {
        /// SLO name.
        slo: String,
        /// The threshold as written.
        value: String,
        /// The parser's message.
        reason: String,
    },
    /// The threshold is not a bucket boundary of `http_server_request_duration_seconds`.
    #[error(
        "SLO {slo:?}: threshold = {value:?} is not a bucket boundary of http_server_request_duration_seconds; use one of {boundaries}"
    )]
    ThresholdNotBucket {
        /// SLO name.
        slo: String,
        /// The threshold as written.
        value: String,
        /// The accepted thresholds.
        boundaries: String,
    },
    /// The route is not a route template.
    #[error(
        "SLO {slo:?}: route = {route:?} is invalid; use a route template starting with \"/\", such as \"/orders/{{id}}\", without spaces, query or fragment"
    )]
    InvalidRoute {
        /// SLO name.
        slo: String,
        /// The route as written.
        route: String,
    },
    /// The route is not among the application's routes.
    #[error("SLO {slo:?}: route = {route:?} is not a route of the application{}", RouteHint(.suggestion.as_deref(), .known))]
    UnknownRoute {
        /// SLO name.
        slo: String,
        /// The route as written.
        route: String,
        /// The nearest known route, if one is close.
        suggestion: Option<String>,
        /// The known routes, comma-separated.
        known: String,
    },
    /// The method is not an HTTP method the metrics record by name.
    #[error(
        "SLO {slo:?}: method = {method:?} is invalid; use one of CONNECT, DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT, TRACE in upper case, or leave it unset"
    )]
    InvalidMethod {
        /// SLO name.
        slo: String,
        /// The method as written.
        method: String,
    },
    /// The runbook URL is not an http or https URL.
    #[error("SLO {slo:?}: runbook_url = {url:?} is invalid; use an http:// or https:// URL")]
    InvalidRunbookUrl {
        /// SLO name.
        slo: String,
        /// The URL as written.
        url: String,
    },
}

impl SloError {
    /// Returns the name of the SLO at fault, or `None` for an empty name.
    pub fn slo(&self) -> Option<&str> {
        match self {
            Self::EmptyName => None,
            Self::InvalidName { name } | Self::DuplicateName { name } => Some(name),
            Self::UnknownKind { slo, .. }
            | Self::Target { slo, .. }
            | Self::InvalidPeriod { slo, .. }
            | Self::PeriodTooShort { slo, .. }
            | Self::PeriodTooLong { slo, .. }
            | Self::MissingThreshold { slo, .. }
            | Self::UnexpectedThreshold { slo, .. }
            | Self::InvalidThreshold { slo, .. }
            | Self::ThresholdNotBucket { slo, .. }
            | Self::InvalidRoute { slo, .. }
            | Self::UnknownRoute { slo, .. }
            | Self::InvalidMethod { slo, .. }
            | Self::InvalidRunbookUrl { slo, .. } => Some(slo),
        }
    }

    /// Returns the field at fault, as named in a `[slo.objectives.<name>]` table.
    pub fn field(&self) -> &'static str {
        match self {
            Self::EmptyName | Self::InvalidName { .. } | Self::DuplicateName { .. } => "name",
            Self::UnknownKind { .. } => "kind",
            Self::Target { .. } => "target",
            Self::InvalidPeriod { .. }
            | Self::PeriodTooShort { .. }
            | Self::PeriodTooLong { .. } => "period",
            Self::MissingThreshold { .. }
            | Self::UnexpectedThreshold { .. }
            | Self::InvalidThreshold { .. }
            | Self::ThresholdNotBucket { .. } => "threshold",
            Self::InvalidRoute { .. } | Self::UnknownRoute { .. } => "route",
            Self::InvalidMethod { .. } => "method",
            Self::InvalidRunbookUrl { .. } => "runbook_url",
        }
    }
}

struct RouteHint<'a>(Option<&'a str>, &'a String);

impl fmt::Display for RouteHint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(route) => write!(f, "; did you mean {route:?}? Known routes: {}", self.1),
            None => write!(f, "; known routes: {}", self.1),
        }
    }
}

impl SloDefinition {
    /// Starts a builder for the SLO `name`. The kind defaults to availability.
    pub fn builder(name: impl Into<String>) -> SloDefinitionBuilder {
        SloDefinitionBuilder {
            name: name.into(),
            spec: SloSpec {
                kind: SloKind::Availability.name().to_owned(),
                target: TargetText(String::new()),
                period: String::new(),
                route: String::new(),
                method: None,
                threshold: None,
                description: None,
                runbook_url: None,
            },
        }
    }

    /// Validates a `[slo.objectives.<name>]` table.
    ///
    /// # Errors
    ///
    /// The first [`SloError`] found, checking the name, kind, target, period, threshold,
    /// route, method and runbook URL in that order.
    pub fn from_spec(name: &str, spec: &SloSpec) -> Result<Self, SloError> {
        let mut errors = Vec::new();
        let definition = Self::check_spec(name, spec, &mut errors);
        match (definition, errors.into_iter().next()) {
            (Some(definition), None) => Ok(definition),
            (_, Some(error)) => Err(error),
            (None, None) => Err(SloError::EmptyName),
        }
    }

    /// Validates a table and appends every problem to `errors`, not only the first.
    pub(crate) fn check_spec(
        name: &str,
        spec: &SloSpec,
        errors: &mut Vec<SloError>,
    ) -> Option<Self> {
        let before = errors.len();
        check_name(name, errors);
        let slo = name.to_owned();

        let kind = match spec.kind.as_str() {
            "availability" => Some(SloKind::Availability),
            "error_rate" => Some(SloKind::ErrorRate),
            "latency" => parse_threshold(&slo, spec.threshold.as_deref(), errors)
                .map(|threshold| SloKind::Latency { threshold }),
            other => {
                errors.push(SloError::UnknownKind {
                    slo: slo.clone(),
                    kind: other.to_owned(),
                });
                None
            }
        };
        if let (Some(kind @ (SloKind::Availability | SloKind::ErrorRate)), Some(_)) =
            (kind, &spec.threshold)
        {
            errors.push(SloError::UnexpectedThreshold {
                slo: slo.clone(),
                kind: kind.name(),
            });
        }

        let target = match kind {
            Some(SloKind::ErrorRate) => Target::from_max_error_percent(&spec.target.0),
            _ => Target::parse(&spec.target.0),
        };
        let target = target
            .map_err(|source| {
                errors.push(SloError::Target {
                    slo: slo.clone(),
                    value: spec.target.0.clone(),
                    source,
                });
            })
            .ok();

        let period = check_period(&slo, &spec.period, errors);
        let selector = Selector {
            route: spec.route.clone(),
            method: spec.method.clone(),
        };
        check_selector(&slo, &selector, errors);
        if let Some(url) = &spec.runbook_url {
            let is_url = ["http://", "https://"].iter().any(|scheme| {
                url.strip_prefix(scheme)
                    .is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace))
            });
            if !is_url {
                errors.push(SloError::InvalidRunbookUrl {
                    slo: slo.clone(),
                    url: url.clone(),
                });
            }
        }

        if errors.len() > before {
            return None;
        }
        Some(Self {
            name: slo,
            kind: kind?,
            target: target?,
            period: period?,
            selector,
            description: spec.description.clone(),
            runbook_url: spec.runbook_url.clone(),
        })
    }

    /// Returns the table that [`SloDefinition::from_spec`] reads back into this definition.
    pub fn to_spec(&self) -> SloSpec {
        let target = match self.kind {
            SloKind::ErrorRate => self
                .target
                .error_budget()
                .ratio_to_percent()
                .map_or_else(|| self.target.to_string(), |percent| percent.to_string()),
            // A ratio is at most 1, so `Target::parse` reads it back as a ratio.
            SloKind::Availability | SloKind::Latency { .. } => self.target.to_string(),
        };
        let threshold = match self.kind {
            SloKind::Latency { threshold } => Some(format_duration(threshold)),
            SloKind::Availability | SloKind::ErrorRate => None,
        };
        SloSpec {
            kind: self.kind.name().to_owned(),
            target: TargetText(target),
            period: format_duration(self.period),
            route: self.selector.route.clone(),
            method: self.selector.method.clone(),
            threshold,
            description: self.description.clone(),
            runbook_url: self.runbook_url.clone(),
        }
    }

    /// Checks the definition's fields again, for a definition built or changed field by field.
    ///
    /// # Errors
    ///
    /// As [`SloDefinition::from_spec`].
    pub fn validate(&self) -> Result<(), SloError> {
        let checked = Self::from_spec(&self.name, &self.to_spec())?;
        if checked.period == self.period && checked.target == self.target {
            Ok(())
        } else {
            Err(SloError::InvalidPeriod {
                slo: self.name.clone(),
                value: format_duration(self.period),
                reason: "the period does not round-trip through its duration string".to_owned(),
            })
        }
    }

    /// Returns whether a finished request is bad for this SLO, given that the selector matched.
    ///
    /// Availability and error-rate SLOs count 5xx statuses as bad. Latency SLOs count
    /// durations above the threshold as bad, whatever the status, as the histogram's `le`
    /// buckets do.
    #[inline]
    pub fn is_bad(&self, status: u16, duration: Duration) -> bool {
        match self.kind {
            SloKind::Availability | SloKind::ErrorRate => (500..600).contains(&status),
            SloKind::Latency { threshold } => duration > threshold,
        }
    }
}

/// Builds a [`SloDefinition`] in code; see [`SloDefinition::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct SloDefinitionBuilder {
    name: String,
    spec: SloSpec,
}

impl SloDefinitionBuilder {
    /// Measures the share of responses that are not 5xx.
    pub fn availability(mut self) -> Self {
        SloKind::Availability.name().clone_into(&mut self.spec.kind);
        self.spec.threshold = None;
        self
    }

    /// Measures the share of responses that took at most `threshold`, a bucket boundary.
    pub fn latency(mut self, threshold: Duration) -> Self {
        "latency".clone_into(&mut self.spec.kind);
        self.spec.threshold = Some(format_duration(threshold));
        self
    }

    /// Measures the share of 5xx responses; the target is then the maximum percentage of
    /// errors.
    pub fn error_rate(mut self) -> Self {
        SloKind::ErrorRate.name().clone_into(&mut self.spec.kind);
        self.spec.threshold = None;
        self
    }

    /// Sets the objective, read as [`Target::parse`] reads it, or as the maximum percentage
    /// of errors for an error-rate SLO.
    pub fn target(mut self, target: impl Into<TargetText>) -> Self {
        self.spec.target = target.into();
        self
    }

    /// Sets the period as a duration string, such as `"28d"`.
    pub fn period(mut self, period: &str) -> Self {
        period.clone_into(&mut self.spec.period);
        self
    }

    /// Sets the route template, such as `/orders/{id}`.
    pub fn route(mut self, route: &str) -> Self {
        route.clone_into(&mut self.spec.route);
        self
    }

    /// Counts only requests with this method.
    pub fn method(mut self, method: &str) -> Self {
        self.spec.method = Some(method.to_owned());
        self
    }

    /// Sets the description.
    pub fn description(mut self, description: &str) -> Self {
        self.spec.description = Some(description.to_owned());
        self
    }

    /// Sets the runbook URL.
    pub fn runbook_url(mut self, url: &str) -> Self {
        self.spec.runbook_url = Some(url.to_owned());
        self
    }

    /// Validates and returns the definition.
    ///
    /// # Errors
    ///
    /// As [`SloDefinition::from_spec`].
    pub fn build(self) -> Result<SloDefinition, SloError> {
        SloDefinition::from_spec(&self.name, &self.spec)
    }
}

/// The serde form of a [`SloDefinition`]: its [`SloSpec`] with the name.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NamedSpec {
    name: String,
    kind: String,
    target: TargetText,
    period: String,
    route: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    threshold: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    runbook_url: Option<String>,
}

impl TryFrom<NamedSpec> for SloDefinition {
    type Error = SloError;

    fn try_from(named: NamedSpec) -> Result<Self, Self::Error> {
        let spec = SloSpec {
            kind: named.kind,
            target: named.target,
            period: named.period,
            route: named.route,
            method: named.method,
            threshold: named.threshold,
            description: named.description,
            runbook_url: named.runbook_url,
        };
        Self::from_spec(&named.name, &spec)
    }
}

impl From<SloDefinition> for NamedSpec {
    fn from(definition: SloDefinition) -> Self {
        let spec = definition.to_spec();
        Self {
            name: definition.name,
            kind: spec.kind,
            target: spec.target,
            period: spec.period,
            route: spec.route,
            method: spec.method,
            threshold: spec.threshold,
            description: spec.description,
            runbook_url: spec.runbook_url,
        }
    }
}

/// A validated list of SLOs with unique names.
///
/// # Example
///
/// ```
/// use obskit::slo::{SloDefinition, SloSet};
///
/// let orders = SloDefinition::builder("orders").target(99.9).period("28d").route("/orders").build()?;
/// let set = SloSet::new(vec![orders])?;
/// assert!(set.check_routes(&["/orders", "/orders/{id}"]).is_ok());
/// assert!(set.check_routes(&["/order"]).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SloSet {
    definitions: Vec<SloDefinition>,
}

/// Every problem found in a set of SLOs. `Display` prints one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", Lines(.errors))]
pub struct SloErrors {
    /// The problems, in the order found.
    pub errors: Vec<SloError>,
}

struct Lines<'a>(&'a [SloError]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl SloSet {
    /// Checks every definition again and that names are unique.
    ///
    /// # Errors
    ///
    /// [`SloErrors`] with every problem found.
    pub fn new(definitions: Vec<SloDefinition>) -> Result<Self, SloErrors> {
        let mut errors = Vec::new();
        for (index, definition) in definitions.iter().enumerate() {
            if let Err(error) = definition.validate() {
                errors.push(error);
            }
            let earlier = definitions.get(..index).unwrap_or_default();
            if earlier.iter().any(|other| other.name == definition.name) {
                errors.push(SloError::DuplicateName {
                    name: definition.name.clone(),
                });
            }
        }
        if errors.is_empty() {
            Ok(Self { definitions })
        } else {
            Err(SloErrors { errors })
        }
    }

    /// Returns the definitions in the order given.
    pub fn definitions(&self) -> &[SloDefinition] {
        &self.definitions
    }

    /// Checks that every SLO's route is one of `known`, the application's route templates.
    ///
    /// # Errors
    ///
    /// [`SloErrors`] with one [`SloError::UnknownRoute`] per SLO whose route is not known.
    pub fn check_routes(&self, known: &[&str]) -> Result<(), SloErrors> {
        let errors: Vec<SloError> = self
            .definitions
            .iter()
            .filter(|definition| !known.contains(&definition.selector.route.as_str()))
            .map(|definition| SloError::UnknownRoute {
                slo: definition.name.clone(),
                route: definition.selector.route.clone(),
                suggestion: crate::config::nearest_name(
                    &definition.selector.route,
                    known.iter().copied(),
                )
                .map(ToOwned::to_owned),
                known: known.join(", "),
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(SloErrors { errors })
        }
    }
}

impl IntoIterator for SloSet {
    type Item = SloDefinition;
    type IntoIter = std::vec::IntoIter<SloDefinition>;

    fn into_iter(self) -> Self::IntoIter {
        self.definitions.into_iter()
    }
}

/// Longest SLO name: the name is a label value of every `obskit_slo_*` series and part of the
/// generated rule and alert names.
pub const MAX_NAME_LENGTH: usize = 64;

fn check_name(name: &str, errors: &mut Vec<SloError>) {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        errors.push(SloError::EmptyName);
        return;
    };
    let valid = first.is_ascii_alphabetic()
        && name.len() <= MAX_NAME_LENGTH
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        errors.push(SloError::InvalidName {
            name: name.to_owned(),
        });
    }
}

fn check_period(slo: &str, text: &str, errors: &mut Vec<SloError>) -> Option<Duration> {
    let period = match humantime::parse_duration(text.trim()) {
        Ok(period) => period,
        Err(error) => {
            errors.push(SloError::InvalidPeriod {
                slo: slo.to_owned(),
                value: text.to_owned(),
                reason: error.to_string(),
            });
            return None;
        }
    };
    if period < LONGEST_WINDOW {
        errors.push(SloError::PeriodTooShort {
            slo: slo.to_owned(),
            value: text.to_owned(),
        });
        return None;
    }
    if period > MAX_PERIOD {
        errors.push(SloError::PeriodTooLong {
            slo: slo.to_owned(),
            value: text.to_owned(),
        });
        return None;
    }
    Some(period)
}

fn check_selector(slo: &str, selector: &Selector, errors: &mut Vec<SloError>) {
    let route = &selector.route;
    let valid_route = route.starts_with('/')
        && !route.contains(|c: char| c.is_whitespace() || c == '?' || c == '#');
    if !valid_route {
        errors.push(SloError::InvalidRoute {
            slo: slo.to_owned(),
            route: route.clone(),
        });
    }
    if let Some(method) = &selector.method
        && (normalize_method(method) != method || method == "_OTHER")
    {
        errors.push(SloError::InvalidMethod {
            slo: slo.to_owned(),
            method: method.clone(),
        });
    }
}

fn parse_threshold(slo: &str, text: Option<&str>, errors: &mut Vec<SloError>) -> Option<Duration> {
    let Some(text) = text else {
        errors.push(SloError::MissingThreshold {
            slo: slo.to_owned(),
            boundaries: boundaries(),
        });
        return None;
    };
    let threshold = match humantime::parse_duration(text.trim()) {
        Ok(threshold) => threshold,
        Err(error) => {
            errors.push(SloError::InvalidThreshold {
                slo: slo.to_owned(),
                value: text.to_owned(),
                reason: error.to_string(),
            });
            return None;
        }
    };
    if bucket_boundary(threshold).is_none() {
        errors.push(SloError::ThresholdNotBucket {
            slo: slo.to_owned(),
            value: text.to_owned(),
            boundaries: boundaries(),
        });
        return None;
    }
    Some(threshold)
}

/// Returns the bucket boundary in seconds that equals `threshold` to the nanosecond.
fn bucket_boundary(threshold: Duration) -> Option<f64> {
    DEFAULT_DURATION_BUCKETS
        .iter()
        .copied()
        .find(|bound| bound_nanos(*bound) == threshold.as_nanos())
}

/// Returns a bucket boundary in whole nanoseconds. Rounding undoes the binary error of
/// boundaries such as 0.075, whose `f64` is slightly below 75 ms.
fn bound_nanos(bound: f64) -> u128 {
    // Boundaries are positive and far below u64::MAX nanoseconds.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "see above"
    )]
    let nanos = (bound * 1e9).round() as u64;
    u128::from(nanos)
}

/// Lists the accepted latency thresholds as duration strings, such as `"250ms"` and
/// `"2.5s"`, as the configuration reference writes them.
fn boundaries() -> String {
    DEFAULT_DURATION_BUCKETS
        .iter()
        .map(|bound| {
            if *bound < 1.0 {
                // Every boundary below 1 s is a whole number of milliseconds.
                format!("\"{}ms\"", bound_nanos(*bound) / 1_000_000)
            } else {
                format!("\"{bound}s\"")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Formats a duration as `humantime` does, such as `28days` or `250ms`.
pub(crate) fn format_duration(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests;
