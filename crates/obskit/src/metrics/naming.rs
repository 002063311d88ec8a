//! Metric and label name validation against the Prometheus data model and the `promtool` lints.

use prometheus_client::metrics::MetricType;

use super::MetricsError;

/// Label name that marks the series into which label sets beyond the cardinality cap fold.
pub const OVERFLOW_LABEL: &str = "otel_metric_overflow";

/// Units that `promtool check metrics` wants replaced by a base unit, with the base unit.
const NON_BASE_UNITS: &[(&str, &str)] = &[
    ("minutes", "seconds"),
    ("hours", "seconds"),
    ("days", "seconds"),
    ("weeks", "seconds"),
    ("bits", "bytes"),
    ("percent", "ratio (0..1)"),
    ("fahrenheit", "celsius"),
    ("inches", "meters"),
    ("miles", "meters"),
    ("calories", "joules"),
    ("pounds", "grams"),
];

/// SI and binary prefixes that make a unit a non-base unit (`milliseconds`, `kilobytes`).
const UNIT_PREFIXES: &[&str] = &[
    "pico", "nano", "micro", "milli", "centi", "deci", "deca", "hecto", "kilo", "kibi", "mega",
    "mebi", "mibi", "giga", "gibi", "tera", "tebi", "peta", "pebi",
];

/// Base units that may follow one of [`UNIT_PREFIXES`].
const BASE_UNITS: &[&str] = &[
    "seconds", "bytes", "meters", "metres", "grams", "joules", "volts", "amperes",
];

/// Unit abbreviations that `promtool check metrics` rejects as name tokens.
const UNIT_ABBREVIATIONS: &[&str] = &[
    "s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb", "m", "h", "d",
];

/// Validates `name` for a metric of `metric_type`, as written to [`Registry::register`](super::Registry::register).
///
/// The rules are those of the Prometheus data model: `[a-zA-Z_:][a-zA-Z0-9_:]*` and no `__`
/// prefix. On top come the lints of `promtool check metrics`: snake case, base units and no
/// unit abbreviations. A name must not end in a suffix that the encoder adds itself (`_total`
/// on counters, `_info` on info metrics) or that belongs to another type (`_bucket`, `_count`,
/// `_sum` outside histograms). `percent` is rejected in favour of a 0..1 ratio.
///
/// # Errors
///
/// [`MetricsError::InvalidName`] naming the rule that failed and the fix.
///
/// # Example
///
/// ```
/// use obskit::metrics::naming::validate_metric_name;
/// use prometheus_client::metrics::MetricType;
///
/// assert!(validate_metric_name("http_requests", MetricType::Counter).is_ok());
/// assert!(validate_metric_name("http_requests_total", MetricType::Counter).is_err());
/// assert!(validate_metric_name("latency_milliseconds", MetricType::Histogram).is_err());
/// ```
pub fn validate_metric_name(name: &str, metric_type: MetricType) -> Result<(), MetricsError> {
    let invalid = |reason: String| MetricsError::InvalidName {
        name: name.to_owned(),
        reason,
    };

    check_syntax(name, true).map_err(invalid)?;
    if name.starts_with("__") {
        return Err(invalid(
            "names starting with \"__\" are reserved for Prometheus internal use; drop the leading underscores".to_owned(),
        ));
    }
    check_snake_case(name).map_err(invalid)?;
    check_suffix(name, metric_type).map_err(invalid)?;
    check_units(name).map_err(invalid)
}

/// Validates the label names of a family: syntax, no reserved names, no duplicates.
///
/// `le` is rejected for histograms because the encoder adds it to every bucket sample.
///
/// # Errors
///
/// [`MetricsError::InvalidLabel`] naming the metric, the label and the fix.
///
/// # Example
///
/// ```
/// use obskit::metrics::naming::validate_label_names;
/// use prometheus_client::metrics::MetricType;
///
/// assert!(validate_label_names("rpc", &["method", "code"], MetricType::Counter).is_ok());
/// assert!(validate_label_names("rpc", &["le"], MetricType::Histogram).is_err());
/// ```
pub fn validate_label_names(
    metric: &str,
    labels: &[&str],
    metric_type: MetricType,
) -> Result<(), MetricsError> {
    for (index, label) in labels.iter().enumerate() {
        let invalid = |reason: String| MetricsError::InvalidLabel {
            metric: metric.to_owned(),
            label: (*label).to_owned(),
            reason,
        };

        check_syntax(label, false).map_err(invalid)?;
        if label.starts_with("__") {
            return Err(invalid(
                "label names starting with \"__\" are reserved for Prometheus internal use"
                    .to_owned(),
            ));
        }
        if *label == OVERFLOW_LABEL {
            return Err(invalid(format!(
                "{OVERFLOW_LABEL:?} is reserved for the series that collects label sets beyond the cardinality limit"
            )));
        }
        if *label == "le" && metric_type == MetricType::Histogram {
            return Err(invalid(
                "\"le\" is added to every histogram bucket by the encoder; choose another name"
                    .to_owned(),
            ));
        }
        if *label == "quantile" {
            return Err(invalid(
                "\"quantile\" is reserved for summary quantiles; choose another name".to_owned(),
            ));
        }
        if labels.iter().take(index).any(|earlier| earlier == label) {
            return Err(invalid(
                "the label name appears twice; label names must be unique".to_owned(),
            ));
        }
    }
    Ok(())
}

/// Validates help text so that both text formats stay parseable.
///
/// # Errors
///
/// [`MetricsError::InvalidHelp`] if the text is empty or contains a line break, a backslash or
/// a double quote. OpenMetrics requires these escaped in help text, but prometheus-client 0.26
/// writes OpenMetrics help text unescaped.
pub(crate) fn validate_help(name: &str, help: &str) -> Result<(), MetricsError> {
    let invalid = |reason: &str| MetricsError::InvalidHelp {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };

    if help.trim().is_empty() {
        return Err(invalid(
            "help text is empty; describe what the metric measures, `promtool check metrics` requires it",
        ));
    }
    if help.contains(['\n', '\r', '\\', '"']) {
        return Err(invalid(
            "help text contains a line break, a backslash or a double quote, which the OpenMetrics encoder does not escape; remove them",
        ));
    }
    Ok(())
}

/// Names of the samples a metric of `metric_type` registered as `name` writes, without labels.
pub(crate) fn sample_names(name: &str, metric_type: MetricType) -> Vec<String> {
    match metric_type {
        MetricType::Counter => vec![format!("{name}_total"), format!("{name}_created")],
        MetricType::Histogram => vec![
            format!("{name}_bucket"),
            format!("{name}_sum"),
            format!("{name}_count"),
            format!("{name}_created"),
        ],
        MetricType::Info => vec![format!("{name}_info")],
        MetricType::Gauge | MetricType::Unknown => vec![name.to_owned()],
    }
}

fn check_syntax(name: &str, allow_colon: bool) -> Result<(), String> {
    let pattern = if allow_colon {
        "[a-zA-Z_:][a-zA-Z0-9_:]*"
    } else {
        "[a-zA-Z_][a-zA-Z0-9_]*"
    };
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err(format!("the name is empty; it must match {pattern}"));
    };
    let valid_first = first.is_ascii_alphabetic() || first == '_' || (allow_colon && first == ':');
    if !valid_first {
        return Err(format!(
            "it starts with {first:?}; it must match {pattern}, so start with a letter or '_'"
        ));
    }
    if let Some(bad) =
        chars.find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || (allow_colon && *c == ':')))
    {
        return Err(format!(
            "it contains {bad:?}; it must match {pattern}, so replace it with '_'"
        ));
    }
    Ok(())
}

fn check_snake_case(name: &str) -> Result<(), String> {
    let bytes = name.as_bytes();
    let camel = bytes
        .windows(2)
        .any(|pair| matches!(pair, [a, b] if a.is_ascii_lowercase() && b.is_ascii_uppercase()));
    if camel {
        return Err(format!(
            "it is camelCase; write it in snake_case, such as {:?}",
            to_snake_case(name)
        ));
    }
    Ok(())
}

fn to_snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut previous_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() && previous_lower {
            out.push('_');
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn check_suffix(name: &str, metric_type: MetricType) -> Result<(), String> {
    if let (MetricType::Counter, Some(base)) = (metric_type, name.strip_suffix("_total")) {
        return Err(format!(
            "counter names must not end in \"_total\" because the encoder appends it; register {base:?}"
        ));
    }
    if let (MetricType::Info, Some(base)) = (metric_type, name.strip_suffix("_info")) {
        return Err(format!(
            "info metric names must not end in \"_info\" because the encoder appends it; register {base:?}"
        ));
    }
    if metric_type != MetricType::Counter && name.ends_with("_total") {
        return Err(
            "only counters may end in \"_total\"; drop the suffix or register a counter".to_owned(),
        );
    }
    if metric_type != MetricType::Histogram {
        for suffix in ["_bucket", "_count", "_sum"] {
            if name.ends_with(suffix) {
                return Err(format!(
                    "the suffix {suffix:?} is reserved for histogram and summary samples; rename the metric"
                ));
            }
        }
    }
    Ok(())
}

fn check_units(name: &str) -> Result<(), String> {
    for token in name.split(['_', ':']) {
        let token = token.to_ascii_lowercase();
        if UNIT_ABBREVIATIONS.contains(&token.as_str()) {
            return Err(format!(
                "it contains the unit abbreviation {token:?}; spell out the base unit, such as \"seconds\" or \"bytes\""
            ));
        }
        if let Some((_, base)) = NON_BASE_UNITS.iter().find(|(unit, _)| *unit == token) {
            return Err(format!("use the base unit {base} instead of {token:?}"));
        }
        for prefix in UNIT_PREFIXES {
            let Some(unit) = token.strip_prefix(prefix) else {
                continue;
            };
            if BASE_UNITS.contains(&unit) {
                return Err(format!("use the base unit {unit:?} instead of {token:?}"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(name: &str, metric_type: MetricType) -> String {
        match validate_metric_name(name, metric_type) {
            Err(MetricsError::InvalidName { reason, .. }) => reason,
            other => format!("unexpected: {other:?}"),
        }
    }

    #[test]
    fn valid_names_pass() {
        for (name, metric_type) in [
            (
                "http_server_request_duration_seconds",
                MetricType::Histogram,
            ),
            ("process_cpu_seconds", MetricType::Counter),
            ("job:requests:rate5m", MetricType::Gauge),
            ("_private_gauge", MetricType::Gauge),
            ("target", MetricType::Info),
            ("obskit_build_info", MetricType::Gauge),
        ] {
            assert!(
                validate_metric_name(name, metric_type).is_ok(),
                "{name} should be valid"
            );
        }
    }

    #[test]
    fn invalid_names_explain_fix() {
        let cases = [
            ("", MetricType::Gauge, "empty"),
            ("1st_metric", MetricType::Gauge, "starts with '1'"),
            ("http-requests", MetricType::Counter, "contains '-'"),
            ("héllo", MetricType::Gauge, "contains 'é'"),
            ("__internal", MetricType::Gauge, "reserved"),
            (
                "requests_total",
                MetricType::Counter,
                "register \"requests\"",
            ),
            ("queue_total", MetricType::Gauge, "only counters"),
            ("build_info", MetricType::Info, "register \"build\""),
            ("latency_milliseconds", MetricType::Histogram, "\"seconds\""),
            ("payload_kilobytes", MetricType::Gauge, "\"bytes\""),
            ("latency_ms", MetricType::Histogram, "abbreviation"),
            ("uptime_hours", MetricType::Gauge, "seconds"),
            ("httpRequests", MetricType::Counter, "\"http_requests\""),
            ("queue_count", MetricType::Gauge, "reserved for histogram"),
        ];
        for (name, metric_type, expected) in cases {
            let reason = reason(name, metric_type);
            assert!(
                reason.contains(expected),
                "{name:?}: {reason:?} lacks {expected:?}"
            );
        }
    }

    #[test]
    fn label_names_are_checked() {
        assert!(validate_label_names("m", &["method", "route"], MetricType::Counter).is_ok());
        assert!(validate_label_names("m", &["le"], MetricType::Counter).is_ok());
        for labels in [
            &["le"][..],
            &["__name__"],
            &["bad-label"],
            &["a", "a"],
            &[OVERFLOW_LABEL],
            &["quantile"],
            &["method:x"],
        ] {
            assert!(
                validate_label_names("m", labels, MetricType::Histogram).is_err(),
                "{labels:?} should be rejected"
            );
        }
    }

    #[test]
    fn help_without_breaks_passes() {
        assert!(validate_help("m", "Requests served, by route.").is_ok());
        assert!(validate_help("m", "Requests \"served\".").is_err());
        assert!(validate_help("m", "").is_err());
        assert!(validate_help("m", "two\nlines").is_err());
        assert!(validate_help("m", "back\\slash").is_err());
    }
}
