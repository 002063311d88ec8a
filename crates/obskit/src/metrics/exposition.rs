//! Exposition formats, `Accept` header negotiation and encoding of a [`Registry`].

use std::sync::atomic::Ordering;

use super::{MetricsError, Registry};

/// Exposition format of `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text.
    OpenMetrics,
    /// Prometheus text format 0.0.4.
    PrometheusText,
}

impl Format {
    /// Chooses the format for a request's `Accept` header.
    ///
    /// OpenMetrics is chosen only when the header lists `application/openmetrics-text` with a
    /// q-value above 0 and with no `version`, `version=1.0.0` or `version=0.0.1`. Version 0.0.1
    /// is the draft that 1.0.0 finalised, and Prometheus still offers it. In addition, no
    /// 0.0.4-compatible range (`text/plain` with no version or `version=0.0.4`, `text/*`, `*/*`)
    /// may have a higher q-value.
    /// Everything else, including a missing or unparseable header, gets 0.0.4. Media types and
    /// parameter names compare case-insensitively.
    ///
    /// # Example
    ///
    /// ```
    /// use obskit::metrics::Format;
    ///
    /// // What Prometheus 2.x sends.
    /// let accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    /// assert_eq!(Format::from_accept(Some(accept)), Format::OpenMetrics);
    /// assert_eq!(Format::from_accept(None), Format::PrometheusText);
    /// assert_eq!(Format::from_accept(Some("application/openmetrics-text;q=0")), Format::PrometheusText);
    /// ```
    pub fn from_accept(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::PrometheusText;
        };

        let mut openmetrics_q = 0.0_f64;
        let mut text_q = 0.0_f64;
        for range in accept.split(',') {
            let Some(range) = MediaRange::parse(range) else {
                continue;
            };
            if range.is("application", "openmetrics-text") {
                if range.version_is(&["1.0.0", "0.0.1"]) {
                    openmetrics_q = openmetrics_q.max(range.q);
                }
            } else if range.is("text", "plain") {
                if range.version_is(&["0.0.4"]) {
                    text_q = text_q.max(range.q);
                }
            } else if range.is("text", "*") || range.is("*", "*") {
                text_q = text_q.max(range.q);
            }
        }

        if openmetrics_q > 0.0 && openmetrics_q >= text_q {
            Format::OpenMetrics
        } else {
            Format::PrometheusText
        }
    }

    /// Returns the `Content-Type` header value of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::PrometheusText => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// One media range of an `Accept` header.
struct MediaRange<'a> {
    kind: &'a str,
    subtype: &'a str,
    version: Option<&'a str>,
    q: f64,
}

impl<'a> MediaRange<'a> {
    /// Parses `type/subtype;param=value...`; returns `None` for a malformed range or q-value.
    fn parse(range: &'a str) -> Option<Self> {
        let mut parts = range.split(';');
        let (kind, subtype) = parts.next()?.trim().split_once('/')?;
        let mut parsed = MediaRange {
            kind: kind.trim(),
            subtype: subtype.trim(),
            version: None,
            q: 1.0,
        };

        for parameter in parts {
            let Some((name, value)) = parameter.split_once('=') else {
                continue;
            };
            let name = name.trim();
            let value = value.trim().trim_matches('"');
            if name.eq_ignore_ascii_case("q") {
                let q: f64 = value.parse().ok()?;
                if !(0.0..=1.0).contains(&q) {
                    return None;
                }
                parsed.q = q;
            } else if name.eq_ignore_ascii_case("version") {
                parsed.version = Some(value);
            }
        }
        Some(parsed)
    }

    fn is(&self, kind: &str, subtype: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind) && self.subtype.eq_ignore_ascii_case(subtype)
    }

    fn version_is(&self, accepted: &[&str]) -> bool {
        self.version
            .is_none_or(|version| accepted.contains(&version))
    }
}

impl Registry {
    /// Encodes every registered family in `format`.
    ///
    /// OpenMetrics output ends with `# EOF` and carries the exemplars of obskit's histogram
    /// buckets. Prometheus text 0.0.4 output has no exemplars.
    ///
    /// # Errors
    ///
    /// [`MetricsError::Encode`] if a metric or collector fails to encode.
    pub fn encode(&self, format: Format) -> Result<String, MetricsError> {
        let mut out = String::with_capacity(self.inner.size_hint.load(Ordering::Relaxed) + 256);
        self.encode_into(format, &mut out)?;
        Ok(out)
    }

    /// Appends every registered family in `format` to `out`, so a caller can reuse one buffer.
    ///
    /// # Errors
    ///
    /// As [`Registry::encode`]; `out` may then hold a partial exposition.
    pub fn encode_into(&self, format: Format, out: &mut String) -> Result<(), MetricsError> {
        let start = out.len();
        self.fold_pending();
        let state = self.inner.state.read();
        match format {
            Format::OpenMetrics => super::exemplar::encode_openmetrics(out, |out| {
                prometheus_client::encoding::text::encode(out, &state.registry)
            })?,
            Format::PrometheusText => {
                prometheus_client::encoding::prometheus_text::encode(out, &state.registry)?;
            }
        }
        drop(state);
        self.inner
            .size_hint
            .store(out.len() - start, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_name_versions() {
        assert_eq!(
            Format::OpenMetrics.content_type(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        assert_eq!(
            Format::PrometheusText.content_type(),
            "text/plain; version=0.0.4; charset=utf-8"
        );
    }

    #[test]
    fn malformed_ranges_are_skipped() {
        assert!(MediaRange::parse("openmetrics").is_none());
        assert!(MediaRange::parse("a/b;q=2").is_none());
        assert!(MediaRange::parse("a/b;q=x").is_none());
        let range = MediaRange::parse(" A/B ; Q=0.5 ; version=\"1\"");
        assert!(range.is_some_and(|range| range.is("a", "b")
            && range.q == 0.5
            && range.version == Some("1")));
    }
}
