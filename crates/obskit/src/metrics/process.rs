//! Standard `process_*` metrics of the current process, read from `/proc` at scrape time.
//!
//! The names and meanings match the Prometheus Go client, so existing dashboards work:
//!
//! | Name | Type | Meaning |
//! |---|---|---|
//! | `process_cpu_seconds_total` | counter | user and system CPU time |
//! | `process_resident_memory_bytes` | gauge | resident set size |
//! | `process_virtual_memory_bytes` | gauge | virtual memory size |
//! | `process_open_fds` | gauge | open file descriptors |
//! | `process_max_fds` | gauge | soft limit on open file descriptors |
//! | `process_start_time_seconds` | gauge | start time since the Unix epoch |
//! | `process_threads` | gauge | OS threads |
//! | `obskit_process_metrics_read_errors_total` | counter | scrapes where `/proc` could not be read |
//!
//! # Limitations
//!
//! Linux only. On other targets [`register`] registers nothing.

use prometheus_client::metrics::MetricType;

use super::{MetricsError, Registry};

/// Names, help texts and types the collector writes, in order.
const VIEWS: &[(&str, &str, MetricType)] = &[
    (
        "process_cpu_seconds",
        "Total user and system CPU time spent in seconds.",
        MetricType::Counter,
    ),
    (
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        MetricType::Gauge,
    ),
    (
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes.",
        MetricType::Gauge,
    ),
    (
        "process_open_fds",
        "Number of open file descriptors.",
        MetricType::Gauge,
    ),
    (
        "process_max_fds",
        "Maximum number of open file descriptors.",
        MetricType::Gauge,
    ),
    (
        "process_start_time_seconds",
        "Start time of the process since the Unix epoch in seconds.",
        MetricType::Gauge,
    ),
    (
        "process_threads",
        "Number of OS threads in the process.",
        MetricType::Gauge,
    ),
    (
        "obskit_process_metrics_read_errors",
        "Scrapes that left out process metrics because /proc could not be read.",
        MetricType::Counter,
    ),
];

/// Registers the process collector on Linux; elsewhere does nothing.
pub(crate) fn register(registry: &Registry) -> Result<(), MetricsError> {
    #[cfg(target_os = "linux")]
    {
        registry.register_collector(VIEWS, linux::ProcessCollector::default())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (registry, VIEWS);
        Ok(())
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::fmt;
    use std::sync::atomic::{AtomicU64, Ordering};

    use prometheus_client::collector::Collector;
    use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
    use prometheus_client::metrics::counter::ConstCounter;
    use prometheus_client::metrics::gauge::ConstGauge;

    use super::VIEWS;

    /// Values read from `/proc/self/stat` and `/proc/stat`.
    #[derive(Debug, PartialEq)]
    pub(super) struct Stat {
        pub(super) cpu_seconds: f64,
        pub(super) threads: f64,
        pub(super) start_time_seconds: f64,
        pub(super) virtual_bytes: f64,
        pub(super) resident_bytes: f64,
    }

    /// Parses `/proc/self/stat` (see proc(5)); `boot_time` is `btime` from `/proc/stat`.
    pub(super) fn parse_stat(
        stat: &str,
        boot_time: f64,
        ticks_per_second: f64,
        page_size: f64,
    ) -> Option<Stat> {
        // The command name (field 2) may contain spaces and parentheses, so split after the
        // last ')'. The first field after it is field 3, `state`.
        let (_, rest) = stat.rsplit_once(')')?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |number: usize| -> Option<f64> { fields.get(number - 3)?.parse().ok() };

        let user_ticks = field(14)?;
        let system_ticks = field(15)?;
        Some(Stat {
            cpu_seconds: (user_ticks + system_ticks) / ticks_per_second,
            threads: field(20)?,
            start_time_seconds: boot_time + field(22)? / ticks_per_second,
            virtual_bytes: field(23)?,
            resident_bytes: field(24)? * page_size,
        })
    }

    /// Parses the `btime` line of `/proc/stat`.
    pub(super) fn parse_boot_time(proc_stat: &str) -> Option<f64> {
        proc_stat
            .lines()
            .find_map(|line| line.strip_prefix("btime "))
            .and_then(|value| value.trim().parse().ok())
    }

    fn read_stat() -> Option<Stat> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let boot_time = parse_boot_time(&std::fs::read_to_string("/proc/stat").ok()?)?;
        // Tick and page counts fit f64 exactly far beyond any real process.
        let ticks = rustix::param::clock_ticks_per_second() as f64;
        let page_size = rustix::param::page_size() as f64;
        parse_stat(&stat, boot_time, ticks, page_size)
    }

    fn open_fds() -> Option<f64> {
        let entries = std::fs::read_dir("/proc/self/fd").ok()?;
        Some(entries.count() as f64)
    }

    fn max_fds() -> f64 {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        limit
            .current
            .map_or(f64::INFINITY, |current| current as f64)
    }

    #[derive(Debug, Default)]
    pub(super) struct ProcessCollector {
        read_errors: AtomicU64,
    }

    impl Collector for ProcessCollector {
        fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
            let stat = read_stat();
            let open_fds = open_fds();
            if stat.is_none() || open_fds.is_none() {
                self.read_errors.fetch_add(1, Ordering::Relaxed);
            }

            let mut values: [Option<f64>; 7] = [None; 7];
            if let Some(stat) = stat {
                values = [
                    Some(stat.cpu_seconds),
                    Some(stat.resident_bytes),
                    Some(stat.virtual_bytes),
                    None,
                    None,
                    Some(stat.start_time_seconds),
                    Some(stat.threads),
                ];
            }
            if let Some(slot) = values.get_mut(3) {
                *slot = open_fds;
            }
            if let Some(slot) = values.get_mut(4) {
                *slot = Some(max_fds());
            }

            for ((name, help, metric_type), value) in VIEWS.iter().zip(values) {
                let Some(value) = value else {
                    continue;
                };
                let metric_encoder = encoder.encode_descriptor(name, help, None, *metric_type)?;
                if matches!(metric_type, prometheus_client::metrics::MetricType::Counter) {
                    ConstCounter::new(value).encode(metric_encoder)?;
                } else {
                    ConstGauge::new(value).encode(metric_encoder)?;
                }
            }

            if let Some((name, help, metric_type)) = VIEWS.last() {
                let metric_encoder = encoder.encode_descriptor(name, help, None, *metric_type)?;
                ConstCounter::new(self.read_errors.load(Ordering::Relaxed))
                    .encode(metric_encoder)?;
            }
            Ok(())
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::linux::{Stat, parse_boot_time, parse_stat};
    use super::*;
    use crate::metrics::Format;
    use crate::metrics::naming::validate_metric_name;

    #[test]
    fn view_names_are_valid() {
        for (name, _, metric_type) in VIEWS {
            assert!(validate_metric_name(name, *metric_type).is_ok(), "{name}");
        }
    }

    #[test]
    fn stat_parses_name_with_parens() {
        let stat = "4242 (my (odd) app) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 7 0 1000 104857600 2560 18446744073709551615";
        let parsed = parse_stat(stat, 1_700_000_000.0, 100.0, 4096.0);
        assert_eq!(
            parsed,
            Some(Stat {
                cpu_seconds: 3.0,
                threads: 7.0,
                start_time_seconds: 1_700_000_010.0,
                virtual_bytes: 104_857_600.0,
                resident_bytes: 2560.0 * 4096.0,
            })
        );
        assert_eq!(parse_stat("garbage", 0.0, 100.0, 4096.0), None);
    }

    #[test]
    fn boot_time_from_proc_stat() {
        assert_eq!(
            parse_boot_time("cpu 1 2 3\nbtime 1700000000\nprocesses 9\n"),
            Some(1.7e9)
        );
        assert_eq!(parse_boot_time("cpu 1 2 3\n"), None);
    }

    #[test]
    fn collector_writes_live_values() -> Result<(), MetricsError> {
        let registry = Registry::default();
        register(&registry)?;
        assert!(matches!(
            register(&registry),
            Err(MetricsError::AlreadyRegistered { .. })
        ));

        let text = registry.encode(Format::PrometheusText)?;
        for name in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_max_fds ",
            "process_start_time_seconds ",
            "process_threads ",
            "obskit_process_metrics_read_errors_total 0",
        ] {
            assert!(
                text.contains(&format!("\n{name}")),
                "{name} missing in {text}"
            );
        }

        let value = |name: &str| -> f64 {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
                .and_then(|value| value.parse().ok())
                .unwrap_or(f64::NAN)
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |elapsed| elapsed.as_secs_f64());
        let started = value("process_start_time_seconds");
        assert!(
            started <= now + 1.0 && started > now - 86_400.0,
            "start {started}, now {now}"
        );
        assert!(value("process_resident_memory_bytes") > 1_000_000.0);
        assert!(value("process_virtual_memory_bytes") >= value("process_resident_memory_bytes"));
        assert!(value("process_threads") >= 1.0);
        assert!(value("process_open_fds") >= 3.0);
        assert!(value("process_max_fds") >= value("process_open_fds"));
        Ok(())
    }
}
