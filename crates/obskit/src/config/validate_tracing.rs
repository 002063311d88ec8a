//! Range, URL, header and certificate rules of the `tracing` section.

use std::path::Path;
use std::time::Duration;

use super::TracingConfig;
use super::validate::Invalid;

/// Checks the `tracing` section and appends every key that breaks a rule.
///
/// Certificate and key files are read and parsed here, so a wrong path or a DER file fails at
/// startup rather than at the first export.
pub(crate) fn check(config: &TracingConfig, invalid: &mut Vec<Invalid>) {
    let mut reject = |key: &'static str, reason: Option<String>| {
        if let Some(reason) = reason {
            invalid.push(Invalid {
                key,
                expected: reason,
            });
        }
    };

    for (key, url) in [
        ("tracing.endpoint", &config.endpoint),
        ("tracing.traces_endpoint", &config.traces_endpoint),
    ] {
        let reason = url.as_deref().and_then(|url| check_url(url).err());
        reject(key, reason.map(|reason| with_reason(key, &reason)));
    }

    let header_problem = config
        .headers
        .iter()
        .find_map(|(name, value)| check_header(name, value.expose()).err());
    reject(
        "tracing.headers",
        header_problem.map(|reason| with_reason("tracing.headers", &reason)),
    );

    reject("tracing.timeout", zero(config.timeout, "tracing.timeout"));

    reject(
        "tracing.certificate",
        config
            .certificate
            .as_deref()
            .and_then(|path| check_certificates(path).err())
            .map(|reason| with_reason("tracing.certificate", &reason)),
    );
    check_client_identity(config, &mut reject);

    for (key, ratio) in [
        ("tracing.sampler_arg", config.sampler_arg),
        ("tracing.sample_rate", config.sample_rate),
    ] {
        let outside = ratio.is_some_and(|ratio| !(0.0..=1.0).contains(&ratio));
        reject(key, outside.then(|| expected(key)));
    }

    reject(
        "tracing.attribute_value_length_limit",
        (config.attribute_value_length_limit == 0)
            .then(|| expected("tracing.attribute_value_length_limit")),
    );

    let batch = &config.batch;
    reject(
        "tracing.batch.max_queue_size",
        (batch.max_queue_size == 0).then(|| expected("tracing.batch.max_queue_size")),
    );
    let batch_size_invalid =
        batch.max_export_batch_size == 0 || batch.max_export_batch_size > batch.max_queue_size;
    reject(
        "tracing.batch.max_export_batch_size",
        batch_size_invalid.then(|| {
            format!(
                "an integer from 1 to tracing.batch.max_queue_size ({})",
                batch.max_queue_size
            )
        }),
    );
    reject(
        "tracing.batch.schedule_delay",
        zero(batch.schedule_delay, "tracing.batch.schedule_delay"),
    );
    reject(
        "tracing.batch.export_timeout",
        zero(batch.export_timeout, "tracing.batch.export_timeout"),
    );
    reject(
        "tracing.shutdown_timeout",
        zero(config.shutdown_timeout, "tracing.shutdown_timeout"),
    );
}

/// Checks that the client certificate and key are set together and parse.
fn check_client_identity(
    config: &TracingConfig,
    reject: &mut impl FnMut(&'static str, Option<String>),
) {
    match (&config.client_certificate, &config.client_key) {
        (Some(certificate), Some(key)) => {
            reject(
                "tracing.client_certificate",
                check_certificates(certificate)
                    .err()
                    .map(|reason| with_reason("tracing.client_certificate", &reason)),
            );
            reject(
                "tracing.client_key",
                check_private_key(key)
                    .err()
                    .map(|reason| with_reason("tracing.client_key", &reason)),
            );
        }
        (Some(_), None) => reject(
            "tracing.client_certificate",
            Some(
                "a client certificate together with tracing.client_key \
                 (OTEL_EXPORTER_OTLP_CLIENT_KEY); set both or neither"
                    .to_owned(),
            ),
        ),
        (None, Some(_)) => reject(
            "tracing.client_key",
            Some(
                "a client key together with tracing.client_certificate \
                 (OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE); set both or neither"
                    .to_owned(),
            ),
        ),
        (None, None) => {}
    }
}

fn expected(key: &str) -> String {
    super::keys::find_key(key).map_or_else(
        || "a valid value".to_owned(),
        |info| info.expected.to_owned(),
    )
}

fn with_reason(key: &str, reason: &str) -> String {
    format!("{} ({reason})", expected(key))
}

fn zero(duration: Duration, key: &str) -> Option<String> {
    (duration == Duration::ZERO).then(|| expected(key))
}

/// Checks that `url` is an absolute `http` or `https` URL with a host.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|error| format!("{error}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(scheme) => return Err(format!("scheme `{scheme}` is not http or https")),
        None => return Err("the scheme is missing".to_owned()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("the host is missing".to_owned());
    }
    Ok(())
}

/// Checks that a header can be sent over HTTP and as gRPC metadata.
fn check_header(name: &str, value: &str) -> Result<(), String> {
    if http::HeaderName::from_bytes(name.as_bytes()).is_err() || name.is_empty() {
        return Err(format!(
            "header name {name:?} is not a valid HTTP header name"
        ));
    }
    if http::HeaderValue::from_str(value).is_err() {
        return Err(format!(
            "the value of header {name:?} contains characters not allowed in HTTP headers"
        ));
    }
    Ok(())
}

#[cfg(feature = "otlp")]
fn check_certificates(path: &Path) -> Result<(), String> {
    crate::trace::export::tls::load_certificates(path).map(|_| ())
}

#[cfg(feature = "otlp")]
fn check_private_key(path: &Path) -> Result<(), String> {
    crate::trace::export::tls::load_private_key(path).map(|_| ())
}

/// Without the `otlp` feature no TLS is built, so only readability is checked.
#[cfg(not(feature = "otlp"))]
fn check_certificates(path: &Path) -> Result<(), String> {
    std::fs::metadata(path)
        .map(|_| ())
        .map_err(|error| format!("cannot read {}: {error}", path.display()))
}

#[cfg(not(feature = "otlp"))]
fn check_private_key(path: &Path) -> Result<(), String> {
    check_certificates(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn keys(config: &TracingConfig) -> Vec<&'static str> {
        let mut invalid = Vec::new();
        check(config, &mut invalid);
        invalid.into_iter().map(|invalid| invalid.key).collect()
    }

    #[test]
    fn default_section_is_valid() {
        assert!(keys(&TracingConfig::default()).is_empty());
    }

    #[test]
    fn url_rules() {
        assert_eq!(check_url("http://collector:4317"), Ok(()));
        assert_eq!(check_url("https://127.0.0.1:4318/v1/traces"), Ok(()));
        assert!(check_url("ftp://collector").is_err());
        assert!(check_url("collector:4317").is_err());
        assert!(check_url("/v1/traces").is_err());
        assert!(check_url("http://").is_err());
    }

    #[test]
    fn endpoint_with_bad_scheme_rejected() {
        let config = TracingConfig {
            endpoint: Some("grpc://collector:4317".to_owned()),
            traces_endpoint: Some("not a url".to_owned()),
            ..TracingConfig::default()
        };
        assert_eq!(
            keys(&config),
            ["tracing.endpoint", "tracing.traces_endpoint"]
        );
    }

    #[test]
    fn header_with_newline_rejected() {
        let mut config = TracingConfig::default();
        config
            .headers
            .insert("x-key".to_owned(), Secret::new("a\nb"));
        assert_eq!(keys(&config), ["tracing.headers"]);
        config.headers.clear();
        config
            .headers
            .insert("bad name".to_owned(), Secret::new("v"));
        assert_eq!(keys(&config), ["tracing.headers"]);
    }

    #[test]
    fn ratios_outside_unit_interval_rejected() {
        let config = TracingConfig {
            sampler_arg: Some(1.5),
            sample_rate: Some(-0.1),
            ..TracingConfig::default()
        };
        assert_eq!(
            keys(&config),
            ["tracing.sampler_arg", "tracing.sample_rate"]
        );
    }

    #[test]
    fn batch_larger_than_queue_rejected() {
        let mut config = TracingConfig::default();
        config.batch.max_queue_size = 100;
        config.batch.max_export_batch_size = 101;
        assert_eq!(keys(&config), ["tracing.batch.max_export_batch_size"]);
    }

    #[test]
    fn zero_sizes_and_durations_rejected() {
        let mut config = TracingConfig {
            timeout: Duration::ZERO,
            shutdown_timeout: Duration::ZERO,
            ..TracingConfig::default()
        };
        config.batch.max_queue_size = 0;
        config.batch.schedule_delay = Duration::ZERO;
        config.batch.export_timeout = Duration::ZERO;
        assert_eq!(
            keys(&config),
            [
                "tracing.timeout",
                "tracing.batch.max_queue_size",
                "tracing.batch.max_export_batch_size",
                "tracing.batch.schedule_delay",
                "tracing.batch.export_timeout",
                "tracing.shutdown_timeout",
            ]
        );
    }

    #[test]
    fn client_certificate_without_key_rejected() {
        let config = TracingConfig {
            client_certificate: Some("/nonexistent/client.pem".into()),
            ..TracingConfig::default()
        };
        assert_eq!(keys(&config), ["tracing.client_certificate"]);
        let config = TracingConfig {
            client_key: Some("/nonexistent/client.key".into()),
            ..TracingConfig::default()
        };
        assert_eq!(keys(&config), ["tracing.client_key"]);
    }

    #[test]
    fn missing_certificate_file_rejected() {
        let config = TracingConfig {
            certificate: Some("/nonexistent/ca.pem".into()),
            ..TracingConfig::default()
        };
        assert_eq!(keys(&config), ["tracing.certificate"]);
    }
}
