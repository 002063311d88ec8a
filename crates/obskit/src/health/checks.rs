//! Built-in checks: TCP connect, HTTP GET, free disk space and resident memory.

use std::path::PathBuf;

use super::check::{BoxFuture, Check, CheckError};

/// Passes when a TCP connection to `address` succeeds. The address is resolved on every run.
///
/// Suited to readiness checks of dependencies without a health endpoint (databases, brokers).
/// Never use it for liveness.
///
/// # Example
///
/// ```
/// use obskit::health::TcpCheck;
///
/// let check = TcpCheck::new("db.internal:5432");
/// # let _ = check;
/// ```
#[derive(Debug, Clone)]
pub struct TcpCheck {
    address: String,
}

impl TcpCheck {
    /// Creates a check of `address` in `host:port` form.
    pub fn new(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
        }
    }
}

impl Check for TcpCheck {
    fn check(&self) -> BoxFuture<'_, Result<(), CheckError>> {
        Box::pin(async move {
            tokio::net::TcpStream::connect(&self.address)
                .await
                .map(drop)
                .map_err(|error| {
                    CheckError::new(format!("TCP connect to {} failed: {error}", self.address))
                })
        })
    }
}

#[cfg(feature = "http")]
pub use http_check::HttpCheck;

#[cfg(feature = "http")]
mod http_check {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioExecutor;

    use super::{BoxFuture, Check, CheckError};

    /// Passes when `GET url` returns a 2xx status. Plain HTTP only; the body is drained.
    ///
    /// The client keeps idle connections for reuse between runs.
    ///
    /// # Example
    ///
    /// ```
    /// use obskit::health::HttpCheck;
    ///
    /// let check = HttpCheck::new("http://search.internal:9200/_cluster/health")?;
    /// # Ok::<(), obskit::health::CheckError>(())
    /// ```
    #[derive(Debug, Clone)]
    pub struct HttpCheck {
        uri: http::Uri,
        client: Client<HttpConnector, Empty<Bytes>>,
    }

    impl HttpCheck {
        /// Creates a check of `url`.
        ///
        /// # Errors
        ///
        /// A [`CheckError`] naming the URL when it does not parse or is not `http://`.
        pub fn new(url: &str) -> Result<Self, CheckError> {
            let uri: http::Uri = url.parse().map_err(|error| {
                CheckError::new(format!(
                    "invalid health check URL {url:?}: {error}; expected http://host:port/path"
                ))
            })?;
            if uri.scheme_str() != Some("http") {
                return Err(CheckError::new(format!(
                    "unsupported health check URL {url:?}: only http:// is supported"
                )));
            }
            let client = Client::builder(TokioExecutor::new()).build_http();
            Ok(Self { uri, client })
        }
    }

    impl Check for HttpCheck {
        fn check(&self) -> BoxFuture<'_, Result<(), CheckError>> {
            Box::pin(async move {
                let response = self.client.get(self.uri.clone()).await.map_err(|error| {
                    CheckError::new(format!("GET {} failed: {}", self.uri, error_chain(&error)))
                })?;
                let status = response.status();
                // Drain the body so the connection goes back to the pool.
                let _ = response.into_body().collect().await;
                if status.is_success() {
                    Ok(())
                } else {
                    Err(CheckError::new(format!(
                        "GET {} returned {status}, expected 2xx",
                        self.uri
                    )))
                }
            })
        }
    }

    fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
        CheckError::from_error(error).message().to_owned()
    }
}

/// Passes when the file system holding `path` has at least `min_free_bytes` available to
/// unprivileged users (`f_bavail`).
///
/// # Example
///
/// ```
/// use obskit::health::DiskSpaceCheck;
///
/// let check = DiskSpaceCheck::new("/var/lib/app", 1 << 30);
/// # let _ = check;
/// ```
#[derive(Debug, Clone)]
pub struct DiskSpaceCheck {
    path: PathBuf,
    min_free_bytes: u64,
}

impl DiskSpaceCheck {
    /// Creates a check of the file system holding `path`.
    pub fn new(path: impl Into<PathBuf>, min_free_bytes: u64) -> Self {
        Self {
            path: path.into(),
            min_free_bytes,
        }
    }

    /// Reads the available bytes of the file system holding `path`.
    ///
    /// # Errors
    ///
    /// A [`CheckError`] naming the path when `statvfs` fails.
    pub fn free_bytes(&self) -> Result<u64, CheckError> {
        let stats = rustix::fs::statvfs(&self.path).map_err(|error| {
            CheckError::new(format!("statvfs {} failed: {error}", self.path.display()))
        })?;
        Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
    }
}

impl Check for DiskSpaceCheck {
    fn check(&self) -> BoxFuture<'_, Result<(), CheckError>> {
        let this = self.clone();
        Box::pin(async move {
            // `statvfs` can block on network file systems, so keep it off the runtime threads.
            let free = tokio::task::spawn_blocking(move || this.free_bytes())
                .await
                .map_err(|error| {
                    CheckError::new(format!("disk space check task failed: {error}"))
                })??;
            if free >= self.min_free_bytes {
                Ok(())
            } else {
                Err(CheckError::new(format!(
                    "{} has {free} bytes free, below the minimum of {} bytes",
                    self.path.display(),
                    self.min_free_bytes
                )))
            }
        })
    }
}

/// Passes when the resident set size of this process is below `max_resident_bytes`.
///
/// Reads `/proc/self/statm`, so it fails with an explanatory error on systems without procfs.
/// An in-process check, suitable for liveness.
///
/// # Example
///
/// ```
/// use obskit::health::MemoryCheck;
///
/// let check = MemoryCheck::new(2 << 30);
/// # let _ = check;
/// ```
#[derive(Debug, Clone, Copy)]
pub struct MemoryCheck {
    max_resident_bytes: u64,
}

impl MemoryCheck {
    /// Creates a check with the given resident memory limit in bytes.
    pub fn new(max_resident_bytes: u64) -> Self {
        Self { max_resident_bytes }
    }

    /// Reads the resident set size of this process in bytes.
    ///
    /// # Errors
    ///
    /// A [`CheckError`] when `/proc/self/statm` cannot be read or parsed.
    pub fn resident_bytes() -> Result<u64, CheckError> {
        let statm = std::fs::read_to_string("/proc/self/statm").map_err(|error| {
            CheckError::new(format!(
                "reading /proc/self/statm failed: {error}; the memory check needs Linux procfs"
            ))
        })?;
        let pages = parse_statm_resident_pages(&statm).ok_or_else(|| {
            CheckError::new(format!("unexpected /proc/self/statm content {statm:?}"))
        })?;
        let page_size = u64::try_from(rustix::param::page_size()).unwrap_or(4096);
        Ok(pages.saturating_mul(page_size))
    }
}

impl Check for MemoryCheck {
    fn check(&self) -> BoxFuture<'_, Result<(), CheckError>> {
        Box::pin(async move {
            let resident = Self::resident_bytes()?;
            if resident < self.max_resident_bytes {
                Ok(())
            } else {
                Err(CheckError::new(format!(
                    "resident memory is {resident} bytes, at or above the limit of {} bytes",
                    self.max_resident_bytes
                )))
            }
        })
    }
}

/// Parses the second field of `/proc/self/statm`: resident pages.
fn parse_statm_resident_pages(statm: &str) -> Option<u64> {
    statm.split_ascii_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn statm_parsing() {
        assert_eq!(
            parse_statm_resident_pages("1000 250 30 1 0 400 0\n"),
            Some(250)
        );
        assert_eq!(parse_statm_resident_pages("1000"), None);
        assert_eq!(parse_statm_resident_pages("1000 x"), None);
    }

    #[test]
    fn resident_bytes_is_plausible() {
        let resident = MemoryCheck::resident_bytes().unwrap();
        assert!(resident > 1 << 20, "{resident}");
    }

    #[cfg(feature = "http")]
    #[test]
    fn https_url_rejected() {
        let error = HttpCheck::new("https://example.invalid/").unwrap_err();
        assert!(error.message().contains("only http://"), "{error}");
    }
}
