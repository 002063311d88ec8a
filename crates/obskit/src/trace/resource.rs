//! The OpenTelemetry resource that describes the service on every exported span.

use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;

use crate::config::ServiceConfig;

/// Value of `telemetry.sdk.name` on spans that obskit exports.
pub const TELEMETRY_SDK_NAME: &str = "obskit";

/// Builds the resource of the service from its configuration.
///
/// Attributes, lowest to highest precedence, where a later one replaces an earlier one of the
/// same name:
///
/// 1. detected: `host.name` (from `/proc/sys/kernel/hostname`, else `HOSTNAME`; left out when
///    neither is readable), `process.pid`, `telemetry.sdk.name` (`obskit`),
///    `telemetry.sdk.language` (`rust`) and `telemetry.sdk.version` (the obskit version);
/// 2. `service.resource_attributes`, which contains the `OTEL_RESOURCE_ATTRIBUTES` entries;
/// 3. `service.name`, `service.version` and `deployment.environment.name` from the typed keys.
///
/// # Example
///
/// ```
/// use opentelemetry::{Key, Value};
///
/// let mut service = obskit::config::ServiceConfig::default();
/// service.name = "checkout".to_owned();
/// let resource = obskit::trace::service_resource(&service);
/// assert_eq!(resource.get(&Key::new("service.name")), Some(Value::from("checkout")));
/// ```
#[must_use]
pub fn service_resource(service: &ServiceConfig) -> Resource {
    let mut detected = vec![
        KeyValue::new("process.pid", i64::from(std::process::id())),
        KeyValue::new("telemetry.sdk.name", TELEMETRY_SDK_NAME),
        KeyValue::new("telemetry.sdk.language", "rust"),
        KeyValue::new("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
    ];
    if let Some(host) = host_name() {
        detected.push(KeyValue::new("host.name", host));
    }

    let configured = service
        .resource_attributes
        .iter()
        .map(|(name, value)| KeyValue::new(name.clone(), value.clone()));

    let typed = [
        KeyValue::new("service.name", service.name.clone()),
        KeyValue::new("service.version", service.version.clone()),
        KeyValue::new("deployment.environment.name", service.environment.clone()),
    ];

    Resource::builder_empty()
        .with_attributes(detected)
        .with_attributes(configured)
        .with_attributes(typed)
        .build()
}

/// Reads the host name the kernel reports, or `HOSTNAME` when that file is not readable.
fn host_name() -> Option<String> {
    let from_kernel = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned());
    from_kernel
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use opentelemetry::{Key, Value};

    use super::*;

    fn get(resource: &Resource, key: &'static str) -> Option<Value> {
        resource.get(&Key::from_static_str(key))
    }

    #[test]
    fn typed_keys_become_attributes() {
        let service = ServiceConfig {
            name: "checkout".to_owned(),
            environment: "production".to_owned(),
            version: "1.2.3".to_owned(),
            resource_attributes: BTreeMap::new(),
        };
        let resource = service_resource(&service);
        assert_eq!(
            get(&resource, "service.name"),
            Some(Value::from("checkout"))
        );
        assert_eq!(
            get(&resource, "service.version"),
            Some(Value::from("1.2.3"))
        );
        assert_eq!(
            get(&resource, "deployment.environment.name"),
            Some(Value::from("production"))
        );
    }

    #[test]
    fn detected_attributes_are_present() {
        let resource = service_resource(&ServiceConfig::default());
        assert_eq!(
            get(&resource, "process.pid"),
            Some(Value::I64(i64::from(std::process::id())))
        );
        assert_eq!(
            get(&resource, "telemetry.sdk.name"),
            Some(Value::from("obskit"))
        );
        assert_eq!(
            get(&resource, "telemetry.sdk.language"),
            Some(Value::from("rust"))
        );
        assert_eq!(
            get(&resource, "telemetry.sdk.version"),
            Some(Value::from(env!("CARGO_PKG_VERSION")))
        );
        assert_eq!(
            get(&resource, "host.name").map(|v| v.to_string()),
            host_name()
        );
    }

    #[test]
    fn configured_attributes_override_detected_ones() {
        let service = ServiceConfig {
            resource_attributes: BTreeMap::from([
                ("host.name".to_owned(), "pod-7".to_owned()),
                ("k8s.namespace.name".to_owned(), "shop".to_owned()),
            ]),
            ..ServiceConfig::default()
        };
        let resource = service_resource(&service);
        assert_eq!(get(&resource, "host.name"), Some(Value::from("pod-7")));
        assert_eq!(
            get(&resource, "k8s.namespace.name"),
            Some(Value::from("shop"))
        );
    }

    #[test]
    fn typed_name_wins_over_attribute() {
        let service = ServiceConfig {
            name: "typed".to_owned(),
            resource_attributes: BTreeMap::from([(
                "service.name".to_owned(),
                "attribute".to_owned(),
            )]),
            ..ServiceConfig::default()
        };
        let resource = service_resource(&service);
        assert_eq!(get(&resource, "service.name"), Some(Value::from("typed")));
    }
}
