//! Head sampling: which new traces are recorded and exported.

/// The sampling decision for new spans, with the names of `OTEL_TRACES_SAMPLER`.
///
/// The ratio samplers keep a trace when the right-most 8 bytes of its trace id, read as a
/// big-endian integer and shifted right by one, fall below `ratio × 2⁶³`. This is the rule of the
/// OpenTelemetry SDKs, so services on other SDKs with the same ratio keep the same traces.
///
/// ```
/// use obskit::trace::Sampler;
///
/// let sampler = Sampler::ParentBasedTraceIdRatio(0.25);
/// // A sampled caller wins over the ratio.
/// assert!(sampler.should_sample(Some(true), &[0xff; 16]));
/// // A root span whose trace id is in the kept quarter.
/// assert!(sampler.should_sample(None, &[0; 16]));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampler {
    /// Records every trace (`always_on`).
    AlwaysOn,
    /// Records no trace (`always_off`).
    AlwaysOff,
    /// Records the given share of traces by trace id, ignoring the parent (`traceidratio`).
    TraceIdRatio(f64),
    /// Follows the parent's sampled flag; records every root (`parentbased_always_on`).
    ParentBasedAlwaysOn,
    /// Follows the parent's sampled flag; records no root (`parentbased_always_off`).
    ParentBasedAlwaysOff,
    /// Follows the parent's sampled flag; records the given share of roots
    /// (`parentbased_traceidratio`).
    ParentBasedTraceIdRatio(f64),
}

impl Default for Sampler {
    /// `parentbased_always_on`, the OpenTelemetry default.
    fn default() -> Self {
        Sampler::ParentBasedAlwaysOn
    }
}

impl Sampler {
    /// Decides for a new span. `parent_sampled` is the parent's sampled flag, local or remote,
    /// or `None` for a root span.
    #[must_use]
    pub fn should_sample(&self, parent_sampled: Option<bool>, trace_id: &[u8; 16]) -> bool {
        match (*self, parent_sampled) {
            (Sampler::AlwaysOn, _) | (Sampler::ParentBasedAlwaysOn, None) => true,
            (Sampler::AlwaysOff, _) | (Sampler::ParentBasedAlwaysOff, None) => false,
            (Sampler::TraceIdRatio(ratio), _) | (Sampler::ParentBasedTraceIdRatio(ratio), None) => {
                ratio_keeps(ratio, trace_id)
            }
            (
                Sampler::ParentBasedAlwaysOn
                | Sampler::ParentBasedAlwaysOff
                | Sampler::ParentBasedTraceIdRatio(_),
                Some(sampled),
            ) => sampled,
        }
    }
}

fn ratio_keeps(ratio: f64, trace_id: &[u8; 16]) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    if ratio.is_nan() || ratio <= 0.0 {
        return false;
    }
    let mut low = [0u8; 8];
    low.copy_from_slice(trace_id.get(8..).unwrap_or(&[0; 8]));
    // The float-to-int conversion saturates; ratio < 1 keeps the bound below 2^63.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let bound = (ratio * (1u64 << 63) as f64) as u64;
    (u64::from_be_bytes(low) >> 1) < bound
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(low: u64) -> [u8; 16] {
        let mut id = [0x11; 16];
        id[8..].copy_from_slice(&low.to_be_bytes());
        id
    }

    #[test]
    fn ratio_reads_low_trace_id_half() {
        let sampler = Sampler::TraceIdRatio(0.5);
        assert!(sampler.should_sample(None, &id(0)));
        assert!(sampler.should_sample(None, &id((1 << 63) - 2)));
        assert!(!sampler.should_sample(None, &id(1 << 63)));
        assert!(!sampler.should_sample(None, &id(u64::MAX)));
        // The plain ratio sampler ignores a sampled parent.
        assert!(!sampler.should_sample(Some(true), &id(u64::MAX)));
    }

    #[test]
    fn ratio_edges_keep_all_or_nothing() {
        assert!(Sampler::TraceIdRatio(1.0).should_sample(None, &id(u64::MAX)));
        assert!(!Sampler::TraceIdRatio(0.0).should_sample(None, &id(0)));
        assert!(!Sampler::TraceIdRatio(f64::NAN).should_sample(None, &id(0)));
    }

    #[test]
    fn parent_based_follows_the_parent() {
        for sampler in [
            Sampler::ParentBasedAlwaysOn,
            Sampler::ParentBasedAlwaysOff,
            Sampler::ParentBasedTraceIdRatio(0.5),
        ] {
            assert!(
                sampler.should_sample(Some(true), &id(u64::MAX)),
                "{sampler:?}"
            );
            assert!(!sampler.should_sample(Some(false), &id(0)), "{sampler:?}");
        }
        assert!(Sampler::ParentBasedAlwaysOn.should_sample(None, &id(u64::MAX)));
        assert!(!Sampler::ParentBasedAlwaysOff.should_sample(None, &id(0)));
        assert!(Sampler::ParentBasedTraceIdRatio(0.5).should_sample(None, &id(0)));
        assert!(!Sampler::ParentBasedTraceIdRatio(0.5).should_sample(None, &id(u64::MAX)));
    }

    #[test]
    fn always_samplers_ignore_the_parent() {
        assert!(Sampler::AlwaysOn.should_sample(Some(false), &id(u64::MAX)));
        assert!(!Sampler::AlwaysOff.should_sample(Some(true), &id(0)));
    }
}
