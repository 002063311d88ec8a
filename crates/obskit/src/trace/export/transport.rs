//! The exporters behind the batch queue: OTLP over gRPC or HTTP/protobuf, and standard output.

use std::fmt;
use std::time::Duration;

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use super::ExportError;
use crate::config::{TraceExporter, TracingConfig};

/// The exporter chosen by [`TracingConfig::effective_exporter`].
pub(crate) enum Transport {
    /// An OTLP collector.
    #[cfg(feature = "otlp")]
    Otlp(Box<opentelemetry_otlp::SpanExporter>),
    /// Standard output.
    Stdout(opentelemetry_stdout::SpanExporter),
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            #[cfg(feature = "otlp")]
            Self::Otlp(_) => f.write_str("Transport::Otlp"),
            Self::Stdout(_) => f.write_str("Transport::Stdout"),
        }
    }
}

impl SpanExporter for Transport {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        match self {
            #[cfg(feature = "otlp")]
            Self::Otlp(exporter) => exporter.export(batch).await,
            Self::Stdout(exporter) => exporter.export(batch).await,
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        match self {
            #[cfg(feature = "otlp")]
            Self::Otlp(exporter) => exporter.shutdown_with_timeout(timeout),
            Self::Stdout(exporter) => exporter.shutdown_with_timeout(timeout),
        }
    }

    fn set_resource(&mut self, resource: &Resource) {
        match self {
            #[cfg(feature = "otlp")]
            Self::Otlp(exporter) => exporter.set_resource(resource),
            Self::Stdout(exporter) => exporter.set_resource(resource),
        }
    }
}

/// Builds the exporter. Call it inside a tokio runtime: the gRPC channel spawns its worker
/// task there.
pub(crate) fn build(config: &TracingConfig) -> Result<Option<Transport>, ExportError> {
    match config.effective_exporter() {
        TraceExporter::None => Ok(None),
        TraceExporter::Stdout => Ok(Some(Transport::Stdout(
            opentelemetry_stdout::SpanExporter::default(),
        ))),
        #[cfg(feature = "otlp")]
        TraceExporter::Otlp => {
            otlp::build(config).map(|exporter| Some(Transport::Otlp(Box::new(exporter))))
        }
        #[cfg(not(feature = "otlp"))]
        TraceExporter::Otlp => Err(ExportError::Build {
            exporter: "otlp",
            endpoint: crate::config::mask_url(&config.effective_endpoint()),
            reason: "obskit was built without its `otlp` feature".to_owned(),
        }),
    }
}

#[cfg(feature = "otlp")]
mod otlp {
    use std::collections::HashMap;

    use opentelemetry_otlp::{
        Compression, Protocol, SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig,
    };

    use super::super::http_client::HyperClient;
    use super::super::tls;
    use super::ExportError;
    use crate::config::{OtlpCompression, OtlpProtocol, TracingConfig};

    pub(super) fn build(config: &TracingConfig) -> Result<SpanExporter, ExportError> {
        match config.protocol {
            OtlpProtocol::Grpc => build_grpc(config),
            OtlpProtocol::HttpProtobuf => build_http(config),
        }
    }

    fn build_grpc(config: &TracingConfig) -> Result<SpanExporter, ExportError> {
        let endpoint = config.effective_endpoint();
        let failed = |reason: String| ExportError::Build {
            exporter: "otlp grpc",
            endpoint: crate::config::mask_url(&endpoint),
            reason,
        };

        let mut metadata = tonic::metadata::MetadataMap::new();
        for (name, value) in &config.headers {
            let key = tonic::metadata::MetadataKey::from_bytes(name.as_bytes())
                .map_err(|_| failed(format!("invalid header name {name:?}")))?;
            let value = value
                .expose()
                .parse()
                .map_err(|_| failed(format!("invalid value of header {name:?}")))?;
            metadata.insert(key, value);
        }

        let mut builder = SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .with_timeout(config.timeout)
            .with_metadata(metadata);
        if config.compression == OtlpCompression::Gzip {
            builder = builder.with_compression(Compression::Gzip);
        }
        if let Some(tls) = tls::tonic_tls_config(config, &endpoint)? {
            builder = builder.with_tls_config(tls);
        }
        builder.build().map_err(|error| failed(error.to_string()))
    }

    fn build_http(config: &TracingConfig) -> Result<SpanExporter, ExportError> {
        let endpoint = config.effective_endpoint();
        let failed = |reason: String| ExportError::Build {
            exporter: "otlp http/protobuf",
            endpoint: crate::config::mask_url(&endpoint),
            reason,
        };

        let client = HyperClient::new(tls::rustls_client_config(config)?, config.timeout);
        let headers: HashMap<String, String> = config
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), value.expose().to_owned()))
            .collect();

        let mut builder = SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint.clone())
            .with_timeout(config.timeout)
            .with_headers(headers);
        if config.compression == OtlpCompression::Gzip {
            builder = builder.with_compression(Compression::Gzip);
        }
        builder.build().map_err(|error| failed(error.to_string()))
    }
}
