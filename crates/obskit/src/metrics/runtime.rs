//! Tokio runtime metrics of one runtime handle, read at scrape time.
//!
//! | Name | Type | Meaning |
//! |---|---|---|
//! | `tokio_runtime_workers` | gauge | worker threads |
//! | `tokio_runtime_alive_tasks` | gauge | tasks spawned and not yet finished |
//! | `tokio_runtime_global_queue_depth` | gauge | tasks waiting in the global queue |
//! | `tokio_runtime_worker_busy_seconds_total` | counter | time all workers spent busy (64-bit targets only) |

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::{MetricsError, Registry};

const WORKERS: (&str, &str, MetricType) = (
    "tokio_runtime_workers",
    "Number of worker threads of the tokio runtime.",
    MetricType::Gauge,
);
const ALIVE_TASKS: (&str, &str, MetricType) = (
    "tokio_runtime_alive_tasks",
    "Tasks spawned on the tokio runtime and not yet finished.",
    MetricType::Gauge,
);
const GLOBAL_QUEUE_DEPTH: (&str, &str, MetricType) = (
    "tokio_runtime_global_queue_depth",
    "Tasks waiting in the global queue of the tokio runtime.",
    MetricType::Gauge,
);
#[cfg(target_has_atomic = "64")]
const BUSY_SECONDS: (&str, &str, MetricType) = (
    "tokio_runtime_worker_busy_seconds",
    "Time all tokio worker threads spent busy, in seconds.",
    MetricType::Counter,
);

pub(crate) fn register(
    registry: &Registry,
    handle: tokio::runtime::Handle,
) -> Result<(), MetricsError> {
    let views = [
        WORKERS,
        ALIVE_TASKS,
        GLOBAL_QUEUE_DEPTH,
        #[cfg(target_has_atomic = "64")]
        BUSY_SECONDS,
    ];
    registry.register_collector(&views, RuntimeCollector { handle })
}

#[derive(Debug)]
struct RuntimeCollector {
    handle: tokio::runtime::Handle,
}

impl RuntimeCollector {
    fn gauge(
        encoder: &mut DescriptorEncoder<'_>,
        view: (&str, &str, MetricType),
        value: usize,
    ) -> fmt::Result {
        let (name, help, metric_type) = view;
        // Task and thread counts fit i64.
        let value = i64::try_from(value).unwrap_or(i64::MAX);
        ConstGauge::new(value).encode(encoder.encode_descriptor(name, help, None, metric_type)?)
    }
}

impl Collector for RuntimeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let metrics = self.handle.metrics();
        Self::gauge(&mut encoder, WORKERS, metrics.num_workers())?;
        Self::gauge(&mut encoder, ALIVE_TASKS, metrics.num_alive_tasks())?;
        Self::gauge(
            &mut encoder,
            GLOBAL_QUEUE_DEPTH,
            metrics.global_queue_depth(),
        )?;

        #[cfg(target_has_atomic = "64")]
        {
            let busy: f64 = (0..metrics.num_workers())
                .map(|worker| metrics.worker_total_busy_duration(worker).as_secs_f64())
                .sum();
            let (name, help, metric_type) = BUSY_SECONDS;
            ConstCounter::new(busy).encode(encoder.encode_descriptor(
                name,
                help,
                None,
                metric_type,
            )?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Format;

    #[test]
    fn runtime_metrics_report_workers() -> Result<(), Box<dyn std::error::Error>> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()?;
        let registry = Registry::default();
        registry.register_runtime_metrics(runtime.handle().clone())?;

        let text = registry.encode(Format::PrometheusText)?;
        assert!(text.contains("\ntokio_runtime_workers 2\n"), "{text}");
        assert!(text.contains("\ntokio_runtime_alive_tasks 0\n"), "{text}");
        assert!(
            text.contains("\ntokio_runtime_global_queue_depth 0\n"),
            "{text}"
        );
        Ok(())
    }
}
