//! TLS settings of the OTLP transports: the CA certificates and the client identity.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::ExportError;
use crate::config::TracingConfig;

/// Largest certificate or key file read; real bundles are far smaller.
const MAX_PEM_BYTES: u64 = 4 * 1024 * 1024;

/// Reads every certificate of the PEM file at `path`.
///
/// # Errors
///
/// A message naming the path when the file cannot be read, is not PEM or contains no certificate.
pub(crate) fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read_pem(path)?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("{} is not a valid PEM file: {error}", path.display()))?;
    if certificates.is_empty() {
        return Err(format!(
            "{} contains no \"BEGIN CERTIFICATE\" block",
            path.display()
        ));
    }
    Ok(certificates)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1) of the PEM file at `path`.
///
/// # Errors
///
/// A message naming the path when the file cannot be read or contains no private key.
pub(crate) fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = read_pem(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|error| {
        format!(
            "{} contains no valid PEM private key: {error}",
            path.display()
        )
    })
}

fn read_pem(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read as _;

    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_PEM_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    if u64::try_from(bytes.len()).map_or(true, |len| len > MAX_PEM_BYTES) {
        return Err(format!(
            "{} is larger than {MAX_PEM_BYTES} bytes",
            path.display()
        ));
    }
    Ok(bytes)
}

fn tls_error(reason: impl Into<String>) -> ExportError {
    ExportError::Tls(reason.into())
}

/// Builds the rustls client configuration for the HTTP/protobuf transport, without ALPN
/// protocols, which the connector sets.
///
/// The CA file replaces the system roots when set. The ring provider is passed explicitly, so
/// no process-wide default provider is installed or needed.
pub(crate) fn rustls_client_config(
    config: &TracingConfig,
) -> Result<rustls::ClientConfig, ExportError> {
    let mut roots = RootCertStore::empty();
    match &config.certificate {
        Some(path) => {
            for certificate in load_certificates(path).map_err(tls_error)? {
                roots.add(certificate).map_err(|error| {
                    tls_error(format!(
                        "invalid CA certificate in {}: {error}",
                        path.display()
                    ))
                })?;
            }
        }
        None => {
            // Unreadable system certificates are skipped; an https endpoint then fails to verify
            // and the failure is counted and logged like any export failure.
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
        }
    }

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| tls_error(error.to_string()))?
        .with_root_certificates(roots);

    let client_config = match (&config.client_certificate, &config.client_key) {
        (Some(certificate), Some(key)) => {
            let chain = load_certificates(certificate).map_err(tls_error)?;
            let key = load_private_key(key).map_err(tls_error)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|error| tls_error(format!("invalid client certificate or key: {error}")))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(client_config)
}

/// Builds the tonic TLS settings for the gRPC transport, or `None` for an `http` endpoint.
///
/// As in the OTLP exporter specification, the scheme decides: an `http` endpoint is plain text
/// even when certificate files are set.
pub(crate) fn tonic_tls_config(
    config: &TracingConfig,
    endpoint: &str,
) -> Result<Option<tonic::transport::ClientTlsConfig>, ExportError> {
    if !endpoint.starts_with("https://") {
        return Ok(None);
    }

    let mut tls = tonic::transport::ClientTlsConfig::new();
    tls = match &config.certificate {
        Some(path) => {
            // Parsed first so that a bad file is reported with its path.
            load_certificates(path).map_err(tls_error)?;
            let pem = read_pem(path).map_err(tls_error)?;
            tls.ca_certificate(tonic::transport::Certificate::from_pem(pem))
        }
        None => tls.with_native_roots(),
    };
    if let (Some(certificate), Some(key)) = (&config.client_certificate, &config.client_key) {
        load_certificates(certificate).map_err(tls_error)?;
        load_private_key(key).map_err(tls_error)?;
        let certificate = read_pem(certificate).map_err(tls_error)?;
        let key = read_pem(key).map_err(tls_error)?;
        tls = tls.identity(tonic::transport::Identity::from_pem(certificate, key));
    }
    Ok(Some(tls))
}
